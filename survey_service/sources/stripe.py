"""Stripe webhooks: billing moments (renewal upcoming, trial ending, subscription changes) and customers.

Signature, as Stripe documents it: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, each v1 the hex
HMAC-SHA256 of `<t>.<raw body>` keyed with the endpoint's signing secret (`whsec_…`); any v1 may match
(Stripe sends several while a rolled secret is still valid); `t` within 5 minutes of now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from survey_service.sources.base import (
    Delivery,
    EventItem,
    Malformed,
    Parsed,
    any_secret_matches,
    clean_properties,
    clean_text,
    dig,
    event_type_for,
    from_unix,
    hmac_digest,
    identify_by,
    ignored,
    person_ref,
    stale,
)

# Stripe event type -> our event type (subscription updates are decided by _subscription_updated).
DEFAULT_TYPES: dict[str, str] = {
    "invoice.upcoming": "renewal_upcoming",
    "customer.subscription.created": "signed_up",
    "customer.subscription.deleted": "cancelled",
    "customer.subscription.trial_will_end": "trial_ending",
}
CUSTOMER_EVENTS = frozenset({"customer.created", "customer.updated"})


def verify(delivery: Delivery, secrets: list[str], now: datetime, mapping: dict[str, Any]) -> str | None:
    """None when a v1 signature of the header matches under a secret and t is fresh; else why not."""
    header = delivery.headers.get("stripe-signature", "")
    if not header:
        return "no Stripe-Signature header"
    pairs = [item.strip().partition("=") for item in header.split(",")]
    stamps = [value for key, _, value in pairs if key == "t"]
    signatures = [value for key, _, value in pairs if key == "v1" and value]
    signed_at = from_unix(stamps[0]) if len(stamps) == 1 and stamps[0].isdigit() else None
    if signed_at is None or not signatures:
        return "Stripe-Signature has no timestamp or no v1 signature"
    signed = stamps[0].encode() + b"." + delivery.body
    expected = [hmac_digest(secret, signed).hex() for secret in secrets]
    matched = False
    for signature in signatures:
        matched = any_secret_matches(expected, lambda e: e, signature) or matched
    if not matched:
        return "no v1 signature matches the body under the source's secret"
    if stale(signed_at, now):
        return "the signature's timestamp is more than 5 minutes from now"
    return None


def _customer(obj: dict[str, Any], mapping: dict[str, Any]) -> dict[str, Any] | None:
    """The person of a Stripe object: the customer id as external_id (unless mapped to email), its email."""
    customer = obj.get("customer")
    customer_id = customer.get("id") if isinstance(customer, dict) else customer
    email = obj.get("customer_email") or (customer.get("email") if isinstance(customer, dict) else None)
    name = obj.get("customer_name") or (customer.get("name") if isinstance(customer, dict) else None)
    if obj.get("object") == "customer":
        customer_id, email, name = obj.get("id"), obj.get("email"), obj.get("name")
    if identify_by(mapping) == "email":
        customer_id = None
    return person_ref(customer_id, email, name)


def _renewal_date(invoice: dict[str, Any]) -> datetime | None:
    """When the upcoming invoice renews: its next payment attempt, else its first line's period start."""
    lines = dig(invoice, "lines", "data")
    first_line = lines[0] if isinstance(lines, list) and lines and isinstance(lines[0], dict) else {}
    for value in (
        invoice.get("next_payment_attempt"),
        dig(first_line, "period", "start"),
        invoice.get("period_end"),
    ):
        when = from_unix(value)
        if when is not None:
            return when
    return None


def _amount(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _quantity(holder: dict[str, Any]) -> int:
    quantity = holder.get("quantity")
    return quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 1


def _price(subscription: dict[str, Any]) -> float | None:
    """What a subscription costs per period (sum of its items' unit amount × quantity), if readable."""
    items = dig(subscription, "items", "data")
    if isinstance(items, list) and items:
        total = 0.0
        for item in items:
            amount = _amount(dig(item, "price", "unit_amount")) or _amount(dig(item, "plan", "amount"))
            if amount is None or not isinstance(item, dict):
                return None
            total += amount * _quantity(item)
        return total
    amount = _amount(dig(subscription, "plan", "amount"))
    return None if amount is None else amount * _quantity(subscription)


def _subscription_updated(obj: dict[str, Any], previous: Any) -> str | None:
    """`upgraded` when the update raised the price; None for any other update."""
    if not isinstance(previous, dict) or not ({"items", "plan", "quantity"} & set(previous)):
        return None
    now_price, before = _price(obj), _price({**obj, **previous})
    if now_price is None or before is None or now_price <= before:
        return None
    return "upgraded"


def _properties(stripe_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {"stripe_object_id": clean_text(obj.get("id"))}
    if stripe_type == "invoice.upcoming":
        renewal = _renewal_date(obj)
        props |= {
            "renewal_date": renewal.isoformat().replace("+00:00", "Z") if renewal else None,
            "amount_due": obj.get("amount_due") if isinstance(obj.get("amount_due"), int) else None,
            "currency": clean_text(obj.get("currency"), 8),
            "subscription": clean_text(obj.get("subscription")),
        }
    elif obj.get("object") == "subscription":
        items = dig(obj, "items", "data")
        first = items[0] if isinstance(items, list) and items else None
        plan = dig(obj, "plan", "id") or dig(first, "price", "id")
        trial_end = from_unix(obj.get("trial_end"))
        props |= {
            "status": clean_text(obj.get("status"), 32),
            "plan": clean_text(plan),
            "trial_end": trial_end.isoformat().replace("+00:00", "Z") if trial_end else None,
        }
    return {key: value for key, value in props.items() if value is not None}


def parse(payload: Any, mapping: dict[str, Any]) -> Parsed:
    """One Stripe event as a lifecycle event of the customer, a customer upsert, or ignored."""
    if not isinstance(payload, dict) or payload.get("object") != "event":
        raise Malformed("A Stripe webhook body is an event object.")
    event_id, stripe_type, obj = payload.get("id"), payload.get("type"), dig(payload, "data", "object")
    if not isinstance(event_id, str) or not isinstance(stripe_type, str) or not isinstance(obj, dict):
        raise Malformed("A Stripe event has an id, a type and data.object.")
    person = _customer(obj, mapping)
    if stripe_type in CUSTOMER_EVENTS and not (mapping.get("events") or {}).get(stripe_type):
        if person is None:
            return ignored(stripe_type, "the customer has no email (and the source identifies by email)")
        person["properties"] = clean_properties(obj.get("metadata"))
        return Parsed(provider_event=stripe_type, people=[person])
    default = DEFAULT_TYPES.get(stripe_type)
    if stripe_type == "customer.subscription.updated":
        default = _subscription_updated(obj, dig(payload, "data", "previous_attributes"))
    event_type = event_type_for(stripe_type, default, mapping)
    if event_type is None:
        return ignored(stripe_type, f"Stripe {stripe_type} is not mapped to an event type")
    if person is None:
        return ignored(stripe_type, "the event names no customer (or no email, when identifying by email)")
    event = EventItem(
        external_id=event_id,
        type=event_type,
        person=person,
        occurred_at=from_unix(payload.get("created")),
        properties=_properties(stripe_type, obj),
    )
    return Parsed(provider_event=stripe_type, events=[event])
