"""Zendesk webhooks: a ticket solved (or closed without being solved first) → `ticket_closed`.

Signature, as Zendesk documents it: `X-Zendesk-Webhook-Signature` is base64(HMAC-SHA256(timestamp + body))
keyed with the webhook's signing secret, timestamp being the `X-Zendesk-Webhook-Signature-Timestamp` header
(ISO 8601), which must be within 5 minutes of now.

Two bodies are understood: the JSON a trigger sends (its body is written in Zendesk; docs/sources.md gives
the one to paste, with the requester's email), and Zendesk's own ticket event
(`zen:event-type:ticket.status_changed`), which names the requester by Zendesk id only and so maps to a
person only through the mapping `"person_external_id": "zendesk_requester_id"`.
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
    b64,
    clean_text,
    dig,
    event_type_for,
    from_iso,
    hmac_digest,
    identify_by,
    ignored,
    obj,
    person_ref,
    stale,
)

CLOSING = frozenset({"solved", "closed"})
STATUS_CHANGED = "zen:event-type:ticket.status_changed"


def verify(delivery: Delivery, secrets: list[str], now: datetime, mapping: dict[str, Any]) -> str | None:
    """None when the signature matches timestamp + body under a secret and the timestamp is fresh."""
    signature = delivery.headers.get("x-zendesk-webhook-signature", "")
    stamp = delivery.headers.get("x-zendesk-webhook-signature-timestamp", "")
    if not signature or not stamp:
        return "no X-Zendesk-Webhook-Signature or X-Zendesk-Webhook-Signature-Timestamp header"
    signed = stamp.encode() + delivery.body
    if not any_secret_matches(secrets, lambda s: b64(hmac_digest(s, signed)), signature):
        return "X-Zendesk-Webhook-Signature does not match under the source's secret"
    signed_at = from_iso(stamp)
    if signed_at is None or stale(signed_at, now):
        return "the signature's timestamp is missing or more than 5 minutes from now"
    return None


def _from_trigger(payload: dict[str, Any], mapping: dict[str, Any]) -> Parsed:
    ticket = payload.get("ticket")
    if not isinstance(ticket, dict):
        raise Malformed("A Zendesk trigger body has a ticket object (see docs/sources.md).")
    ticket_id = clean_text(ticket.get("id"), 40)
    status = (clean_text(ticket.get("status"), 40) or "").lower()
    if not ticket_id:
        raise Malformed("The ticket has no id.")
    name = f"ticket.{status or 'unknown'}"
    if status not in CLOSING:
        return ignored(name, f"ticket status {status or 'missing'!r} is not solved or closed")
    event_type = event_type_for(name, "ticket_closed", mapping)
    if event_type is None:
        return ignored(name, f"Zendesk {name} is mapped to no event type")
    requester = obj(payload.get("requester"))
    external_id = None if identify_by(mapping) == "email" else requester.get("external_id")
    person = person_ref(external_id, requester.get("email"), requester.get("name"))
    if person is None:
        return ignored(name, "the ticket's requester has no email or external id")
    event = EventItem(
        # Solved, then closed days later, is one closing: one event per ticket.
        external_id=f"zendesk:ticket:{ticket_id}:closed",
        type=event_type,
        person=person,
        occurred_at=from_iso(ticket.get("updated_at")),
        properties={"ticket_id": ticket_id, "status": status},
    )
    return Parsed(provider_event=name, events=[event])


def _from_event(payload: dict[str, Any], mapping: dict[str, Any]) -> Parsed:
    kind = str(payload.get("type"))[:100]
    if kind != STATUS_CHANGED:
        return ignored(kind, f"Zendesk {kind} is not mapped (ticket status changes are)")
    current = str(dig(payload, "event", "current") or "").lower()
    previous = str(dig(payload, "event", "previous") or "").lower()
    if current not in CLOSING or (current == "closed" and previous == "solved"):
        return ignored(kind, f"status {previous or '?'} → {current or '?'} is not a closing")
    requester_id = clean_text(dig(payload, "detail", "requester_id"), 40)
    if mapping.get("person_external_id") != "zendesk_requester_id" or not requester_id:
        return ignored(kind, "a Zendesk event names its requester by Zendesk id only: use the trigger body")
    event_type = event_type_for("ticket.status_changed", "ticket_closed", mapping)
    event_id = clean_text(payload.get("id"))
    if event_type is None or not event_id:
        return ignored(kind, "mapped to no event type, or the event has no id")
    event = EventItem(
        external_id=event_id,
        type=event_type,
        person={"external_id": requester_id},
        occurred_at=from_iso(payload.get("time")),
        properties={"ticket_id": clean_text(dig(payload, "detail", "id"), 40) or "", "status": current},
    )
    return Parsed(provider_event=kind, events=[event])


def parse(payload: Any, mapping: dict[str, Any]) -> Parsed:
    """A trigger's ticket body or a Zendesk ticket event."""
    if not isinstance(payload, dict):
        raise Malformed("A Zendesk webhook body is a JSON object.")
    if isinstance(payload.get("type"), str) and payload["type"].startswith("zen:event-type:"):
        return _from_event(payload, mapping)
    return _from_trigger(payload, mapping)
