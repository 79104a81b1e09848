"""Intercom webhooks: a conversation closed by a teammate → `ticket_closed` for the contact.

Signature, as Intercom documents it: `X-Hub-Signature: sha1=<hex>`, the HMAC-SHA1 of the raw body keyed
with the app's client secret. Intercom signs no timestamp: a replay is caught by the notification id (the
event id), so it never records twice.
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
    dig,
    event_type_for,
    from_unix,
    hmac_digest,
    identify_by,
    ignored,
    obj,
    person_ref,
)

DEFAULT_TYPES = {"conversation.admin.closed": "ticket_closed"}
PEOPLE = frozenset({"user", "lead", "contact"})


def verify(delivery: Delivery, secrets: list[str], now: datetime, mapping: dict[str, Any]) -> str | None:
    """None when X-Hub-Signature is sha1=<hex HMAC-SHA1 of the body> under a secret; else why not."""
    header = delivery.headers.get("x-hub-signature", "")
    scheme, _, signature = header.partition("=")
    if scheme != "sha1" or not signature:
        return "no X-Hub-Signature: sha1=… header"
    if any_secret_matches(secrets, lambda s: hmac_digest(s, delivery.body, "sha1").hex(), signature.lower()):
        return None
    return "X-Hub-Signature does not match the body under the source's secret"


def _contact(item: dict[str, Any], mapping: dict[str, Any]) -> dict[str, Any] | None:
    """The conversation's customer: its first contact (API 2.x), else the source's author or `user` (1.x)."""
    contacts = dig(item, "contacts", "contacts")
    contact = contacts[0] if isinstance(contacts, list) and contacts and isinstance(contacts[0], dict) else {}
    author = obj(dig(item, "source", "author"))
    author = author if author.get("type") in PEOPLE else {}
    user = obj(item.get("user"))
    external_id = contact.get("external_id") or user.get("user_id") or author.get("user_id")
    email = contact.get("email") or author.get("email") or user.get("email")
    name = contact.get("name") or author.get("name") or user.get("name")
    if identify_by(mapping) == "email":
        external_id = None
    return person_ref(external_id, email, name)


def parse(payload: Any, mapping: dict[str, Any]) -> Parsed:
    """One notification_event as an event of the conversation's contact, or ignored."""
    if not isinstance(payload, dict) or payload.get("type") != "notification_event":
        raise Malformed("An Intercom webhook body is a notification_event.")
    topic, notification_id = payload.get("topic"), clean_text(payload.get("id"))
    item = dig(payload, "data", "item")
    if not isinstance(topic, str) or not notification_id:
        raise Malformed("An Intercom notification has an id and a topic.")
    event_type = event_type_for(topic, DEFAULT_TYPES.get(topic), mapping)
    if event_type is None:
        return ignored(topic, f"Intercom {topic} is not mapped to an event type")
    if not isinstance(item, dict):
        return ignored(topic, "the notification has no data.item")
    person = _contact(item, mapping)
    if person is None:
        return ignored(topic, "the conversation's contact has no email or external_id")
    event = EventItem(
        external_id=notification_id,
        type=event_type,
        person=person,
        occurred_at=from_unix(payload.get("created_at")),
        properties={"conversation_id": clean_text(item.get("id"), 40) or ""},
    )
    return Parsed(provider_event=topic, events=[event])
