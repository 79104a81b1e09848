"""Segment's Webhooks destination (and RudderStack's, which sends the same spec): identify and track.

Signature: `X-Signature`, the hex HMAC-SHA1 of the body keyed with the destination's shared secret.
Segment signs no timestamp, so replays are caught by the message id (the event id). RudderStack cannot
sign: with `"secret_header": true` in the mapping, an `X-Source-Secret` header equal to the secret is
accepted instead.
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
    from_iso,
    hmac_digest,
    identify_by,
    obj,
    person_ref,
    snake_case,
)

# Traits that are the person's own fields, not properties.
PERSON_TRAITS = frozenset(
    {"email", "name", "first_name", "last_name", "firstname", "lastname", "id", "user_id"}
)
MAX_BATCH = 100


def verify(delivery: Delivery, secrets: list[str], now: datetime, mapping: dict[str, Any]) -> str | None:
    """None when X-Signature (or, if allowed, X-Source-Secret) proves the secret; else why not."""
    signature = delivery.headers.get("x-signature", "")
    if signature:
        if any_secret_matches(
            secrets, lambda s: hmac_digest(s, delivery.body, "sha1").hex(), signature.lower()
        ):
            return None
        return "X-Signature does not match the body under the source's secret"
    header = delivery.headers.get("x-source-secret", "")
    if header and mapping.get("secret_header"):
        return None if any_secret_matches(secrets, lambda s: s, header) else "X-Source-Secret is wrong"
    return "no X-Signature header (set the shared secret in the destination's settings)"


def _person(
    message: dict[str, Any], traits: dict[str, Any], mapping: dict[str, Any]
) -> dict[str, Any] | None:
    name = traits.get("name")
    if not name and (traits.get("firstName") or traits.get("lastName")):
        name = " ".join(str(traits.get(k) or "") for k in ("firstName", "lastName")).strip()
    external_id = None if identify_by(mapping) == "email" else message.get("userId")
    email = traits.get("email") or dig(message, "context", "traits", "email")
    return person_ref(external_id, email, name, clean_properties(traits, PERSON_TRAITS))


def _one(message: Any, mapping: dict[str, Any], into: Parsed) -> None:
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise Malformed("A Segment message is an object with a type.")
    kind = message["type"]
    if kind == "identify":
        person = _person(message, obj(message.get("traits")), mapping)
        if person is None:
            into.skipped.append("identify without a userId or an email trait")
        else:
            into.people.append(person)
        return
    if kind != "track":
        into.skipped.append(f"Segment {kind} calls are not mapped (identify and track are)")
        return
    name = clean_text(message.get("event"), 200)
    message_id = clean_text(message.get("messageId"))
    if not name or not message_id:
        raise Malformed("A track call has an event name and a messageId.")
    event_type = event_type_for(name, snake_case(name), mapping)
    person = _person(message, obj(dig(message, "context", "traits")), mapping)
    if event_type is None:
        into.skipped.append(f"track {name!r} is not mapped to an event type")
    elif person is None:
        into.skipped.append(f"track {name!r} names no userId (or email in context.traits)")
    else:
        person.pop("properties", None)  # a track call's context traits may be stale; identify sets them
        into.events.append(
            EventItem(
                external_id=message_id,
                type=event_type,
                person=person,
                occurred_at=from_iso(message.get("timestamp")) or from_iso(message.get("originalTimestamp")),
                properties=clean_properties(message.get("properties")),
            )
        )


def parse(payload: Any, mapping: dict[str, Any]) -> Parsed:
    """A message (or a `{"batch": [...]}` of them) as people and events."""
    messages = payload.get("batch") if isinstance(payload, dict) and "batch" in payload else [payload]
    if not isinstance(messages, list) or not messages or len(messages) > MAX_BATCH:
        raise Malformed(f"A batch is a list of 1 to {MAX_BATCH} messages.")
    first = messages[0] if isinstance(messages[0], dict) else {}
    parsed = Parsed(provider_event=str(first.get("type", ""))[:100] or None)
    for message in messages:
        _one(message, mapping, parsed)
    return parsed
