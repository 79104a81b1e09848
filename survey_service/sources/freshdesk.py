"""Freshdesk automation webhooks: a ticket resolved or closed → `ticket_closed` for its contact.

Freshdesk does not sign its webhooks; the automation rule sends a custom header instead:
`X-Source-Secret: <the source's secret>`, compared in constant time. The body is the rule's JSON (the one
in docs/sources.md, or Freshdesk's "simple" content with every ticket field), wrapped in
`freshdesk_webhook` or not.
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
    clean_text,
    event_type_for,
    from_iso,
    identify_by,
    ignored,
    person_ref,
)

CLOSING = frozenset({"resolved", "closed"})


def verify(delivery: Delivery, secrets: list[str], now: datetime, mapping: dict[str, Any]) -> str | None:
    """None when X-Source-Secret is the source's secret; else why not."""
    header = delivery.headers.get("x-source-secret", "")
    if not header:
        return "no X-Source-Secret header (add it to the automation rule's webhook)"
    return None if any_secret_matches(secrets, lambda s: s, header) else "X-Source-Secret is wrong"


def parse(payload: Any, mapping: dict[str, Any]) -> Parsed:
    """The rule's ticket fields as a `ticket_closed` event of the ticket's contact, or ignored."""
    if isinstance(payload, dict) and isinstance(payload.get("freshdesk_webhook"), dict):
        payload = payload["freshdesk_webhook"]
    if not isinstance(payload, dict) or "ticket_id" not in payload:
        raise Malformed("A Freshdesk webhook body has ticket_id (see docs/sources.md).")
    ticket_id = clean_text(payload.get("ticket_id"), 40)
    status = (clean_text(payload.get("ticket_status"), 40) or "").lower()
    if not ticket_id:
        raise Malformed("ticket_id is empty.")
    name = f"ticket.{status or 'unknown'}"
    if status not in CLOSING:
        return ignored(name, f"ticket status {status or 'missing'!r} is not resolved or closed")
    event_type = event_type_for(name, "ticket_closed", mapping)
    if event_type is None:
        return ignored(name, f"Freshdesk {name} is mapped to no event type")
    email = payload.get("ticket_contact_email") or payload.get("ticket_requester_email")
    external_id = (
        None if identify_by(mapping) == "email" else payload.get("ticket_contact_unique_external_id")
    )
    person = person_ref(external_id, email, payload.get("ticket_contact_name"))
    if person is None:
        return ignored(name, "the ticket's contact has no email")
    event = EventItem(
        external_id=f"freshdesk:ticket:{ticket_id}:closed",  # resolved, then closed: one closing
        type=event_type,
        person=person,
        occurred_at=from_iso(payload.get("ticket_updated_at") or payload.get("triggered_at")),
        properties={"ticket_id": ticket_id, "status": status},
    )
    return Parsed(provider_event=name, events=[event])
