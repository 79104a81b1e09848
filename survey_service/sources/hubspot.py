"""HubSpot webhooks: contact lifecycle-stage and deal-stage changes mapped to event types.

Signature v3, as HubSpot documents it: `X-HubSpot-Signature-v3` is base64(HMAC-SHA256(method + URI + body +
timestamp)) keyed with the app's client secret, the timestamp being `X-HubSpot-Request-Timestamp` (Unix
milliseconds), refused when older than 5 minutes. The URI is the source's public URL (BASE_URL + path).

HubSpot's events name the object by id only (no email): a contact is the person with external_id
`hubspot:<contact id>` (give them an email with POST /api/v1/people); a deal event maps only when the
mapping names a contact property carrying the person, so by default deal events are logged as ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote

from survey_service.sources.base import (
    Delivery,
    EventItem,
    Malformed,
    Parsed,
    any_secret_matches,
    b64,
    clean_text,
    event_type_for,
    from_unix,
    hmac_digest,
    snake_case,
    stale,
)

MAX_EVENTS = 100
STAGE_PROPERTIES = frozenset({"lifecyclestage", "dealstage"})


def verify(delivery: Delivery, secrets: list[str], now: datetime, mapping: dict[str, Any]) -> str | None:
    """None when the v3 signature matches under a secret and the timestamp is fresh; else why not."""
    signature = delivery.headers.get("x-hubspot-signature-v3", "")
    stamp = delivery.headers.get("x-hubspot-request-timestamp", "")
    if not signature or not stamp.isdigit():
        return "no X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp header"
    # HubSpot signs the URI with its percent-escapes decoded.
    signed = (delivery.method + unquote(delivery.url)).encode() + delivery.body + stamp.encode()
    if not any_secret_matches(secrets, lambda s: b64(hmac_digest(s, signed)), signature):
        return "X-HubSpot-Signature-v3 does not match under the source's secret"
    signed_at = from_unix(int(stamp) / 1000)
    if signed_at is None or stale(signed_at, now):
        return "X-HubSpot-Request-Timestamp is more than 5 minutes from now"
    return None


def _event(change: Any, mapping: dict[str, Any], into: Parsed) -> None:
    if not isinstance(change, dict) or "eventId" not in change or "subscriptionType" not in change:
        raise Malformed("A HubSpot event has an eventId and a subscriptionType.")
    subscription = str(change["subscriptionType"])[:60]
    prop = str(change.get("propertyName") or "")[:60]
    value = clean_text(change.get("propertyValue"), 100) or ""
    name = f"{prop}:{value}" if prop else subscription
    into.provider_event = into.provider_event or subscription
    if subscription != "contact.propertyChange" or prop not in STAGE_PROPERTIES:
        into.skipped.append(f"HubSpot {subscription} {prop} is not mapped (contact stage changes are)")
        return
    event_type = event_type_for(name, snake_case(f"{prop} {value}"), mapping)
    object_id = clean_text(change.get("objectId"), 40)
    if event_type is None or not object_id:
        into.skipped.append(f"HubSpot {name} is mapped to no event type")
        return
    into.events.append(
        EventItem(
            external_id=f"hubspot:{change['eventId']}",
            type=event_type,
            person={"external_id": f"hubspot:{object_id}"},
            occurred_at=from_unix((change.get("occurredAt") or 0) / 1000)
            if isinstance(change.get("occurredAt"), int)
            else None,
            properties={"hubspot_object_id": object_id, prop: value},
        )
    )


def parse(payload: Any, mapping: dict[str, Any]) -> Parsed:
    """HubSpot's array of events (up to 100 a request)."""
    if not isinstance(payload, list) or not payload or len(payload) > MAX_EVENTS:
        raise Malformed(f"A HubSpot webhook body is a list of 1 to {MAX_EVENTS} events.")
    parsed = Parsed()
    for change in payload:
        _event(change, mapping, parsed)
    return parsed
