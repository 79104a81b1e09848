"""Chargebee webhooks: renewal reminders and subscription changes of a customer.

Chargebee does not sign its webhooks; it sends HTTP Basic credentials set on the webhook. The password
must be the source's secret (constant-time); the user name is free (docs/sources.md uses `chargebee`).
Basic auth carries no timestamp: a replay is caught by the event id.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from survey_service.sources.base import (
    Delivery,
    EventItem,
    Malformed,
    Parsed,
    any_secret_matches,
    clean_text,
    dig,
    event_type_for,
    from_unix,
    identify_by,
    ignored,
    person_ref,
)

DEFAULT_TYPES = {
    "subscription_renewal_reminder": "renewal_upcoming",
    "subscription_created": "signed_up",
    "subscription_cancelled": "cancelled",
    "subscription_trial_end_reminder": "trial_ending",
    "subscription_renewed": "renewed",
}


def verify(delivery: Delivery, secrets: list[str], now: datetime, mapping: dict[str, Any]) -> str | None:
    """None when the Basic password is the source's secret; else why not."""
    scheme, _, value = delivery.authorization.partition(" ")
    if scheme.lower() != "basic" or not value:
        return "no HTTP Basic credentials (set them on the Chargebee webhook)"
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "the Basic credentials are not readable"
    password = decoded.partition(":")[2]
    return None if password and any_secret_matches(secrets, lambda s: s, password) else "wrong Basic password"


def _iso(value: Any) -> str | None:
    when = from_unix(value)
    return when.isoformat().replace("+00:00", "Z") if when else None


def parse(payload: Any, mapping: dict[str, Any]) -> Parsed:
    """One Chargebee event as an event of its customer, or ignored."""
    if not isinstance(payload, dict) or not isinstance(payload.get("content"), dict):
        raise Malformed("A Chargebee webhook body is an event with content.")
    event_id, kind = clean_text(payload.get("id")), payload.get("event_type")
    if not event_id or not isinstance(kind, str):
        raise Malformed("A Chargebee event has an id and an event_type.")
    event_type = event_type_for(kind, DEFAULT_TYPES.get(kind), mapping)
    if event_type is None:
        return ignored(kind, f"Chargebee {kind} is not mapped to an event type")
    customer = dig(payload, "content", "customer")
    customer = customer if isinstance(customer, dict) else {}
    subscription = dig(payload, "content", "subscription")
    subscription = subscription if isinstance(subscription, dict) else {}
    name = " ".join(str(customer.get(k) or "") for k in ("first_name", "last_name")).strip()
    external_id = (
        None if identify_by(mapping) == "email" else customer.get("id") or subscription.get("customer_id")
    )
    person = person_ref(external_id, customer.get("email"), name)
    if person is None:
        return ignored(kind, "the event names no customer")
    renewal = _iso(subscription.get("next_billing_at")) or _iso(subscription.get("current_term_end"))
    properties = {
        "subscription": clean_text(subscription.get("id")),
        "status": clean_text(subscription.get("status"), 32),
        "renewal_date": renewal,
        "trial_end": _iso(subscription.get("trial_end")),
    }
    event = EventItem(
        external_id=event_id,
        type=event_type,
        person=person,
        occurred_at=from_unix(payload.get("occurred_at")),
        properties={key: value for key, value in properties.items() if value is not None},
    )
    return Parsed(provider_event=kind, events=[event])
