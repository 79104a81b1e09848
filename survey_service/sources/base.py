"""What every provider module shares: the delivery as received, what a payload maps to, signature checks.

A provider module (segment, stripe, …) exposes `verify(delivery, secrets, now) -> refusal or None` and
`parse(payload, mapping) -> Parsed`; nothing in it touches the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from survey_service.core.properties import EVENT_TYPE, is_property_name, normalize_property_name

# Providers sign a timestamp with the body; older or newer than this is a replay (Stripe's own default).
TOLERANCE_SECONDS = 300
MAX_PROPERTIES = 50
MAX_PROPERTY_STRING = 500
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


@dataclass(frozen=True)
class Delivery:
    """One HTTP request to a source URL, as the provider sent it."""

    method: str
    url: str  # the full URL the provider called (HubSpot signs it)
    body: bytes
    headers: Mapping[str, str]  # names lower-cased
    authorization: str = ""


@dataclass
class EventItem:
    """A lifecycle event to record (the provider's id is the idempotency key)."""

    external_id: str
    type: str
    person: dict[str, Any]
    occurred_at: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Parsed:
    """What one payload maps to: events, people to upsert, or why it is ignored (acknowledged anyway)."""

    provider_event: str | None = None
    events: list[EventItem] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why parts of the payload were not mapped


class Malformed(ValueError):
    """The body is not the provider's shape at all (a 400): not a payload to acknowledge."""


Verifier = Callable[[Delivery, list[str], datetime, dict[str, Any]], str | None]
Parser = Callable[[Any, dict[str, Any]], Parsed]


def ignored(provider_event: str | None, reason: str) -> Parsed:
    """A payload acknowledged and not mapped (the provider must not retry it)."""
    return Parsed(provider_event=provider_event, skipped=[reason])


def hmac_digest(secret: str, message: bytes, algorithm: str = "sha256") -> bytes:
    """HMAC of message keyed with the secret's UTF-8 bytes."""
    return hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).digest()


def same(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures (False for non-ASCII, which no signature contains)."""
    if not given.isascii():
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def any_secret_matches(secrets: list[str], sign: Callable[[str], str], given: str) -> bool:
    """Whether given is the signature under any of the secrets (current first, then the rotated-out one)."""
    matched = False
    for secret in secrets:
        # Every secret is tried (no early exit), so timing says nothing about which one matched.
        matched = same(sign(secret), given) or matched
    return matched


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def stale(timestamp: datetime, now: datetime, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """Whether a signed timestamp is further than tolerance seconds from now (either way)."""
    return abs((now - timestamp).total_seconds()) > tolerance


def from_unix(value: Any) -> datetime | None:
    """A Unix time in seconds (int or numeric string) as an aware datetime, else None."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def from_iso(value: Any) -> datetime | None:
    """An ISO 8601 date-time string as an aware datetime (UTC when it has no offset), else None."""
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def snake_case(name: str) -> str:
    """`Order Completed` → `order_completed`, `trialEnding` → `trial_ending`: Segment's default mapping."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")


def event_type_for(name: str, default: str | None, mapping: dict[str, Any]) -> str | None:
    """Our event type for a provider's event name: the source's table first, then the kind's default.

    A name mapped to null in the table is ignored; a type that is not a valid event type is ignored too.
    """
    table = mapping.get("events") or {}
    chosen = table.get(name, default)
    if chosen is None or not EVENT_TYPE.fullmatch(chosen):
        return None
    return str(chosen)


def clean_email(value: Any) -> str | None:
    """A plausible email address, lower-cased, else None."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    return email if len(email) <= 320 and EMAIL.fullmatch(email) else None


def clean_text(value: Any, limit: int = 255) -> str | None:
    """A non-empty string (numbers as text) cut to limit, without control characters, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = "".join(ch for ch in value.strip() if ch.isprintable())[:limit]
    return text or None


def clean_properties(values: Any, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A provider's attributes as person or event properties, by the one property-name normalisation.

    Scalars only (nested objects and lists are left out), names that are not valid property names left
    out, strings cut to 500 characters, at most 50 properties: a provider's odd field never refuses the rest.
    """
    if not isinstance(values, dict):
        return {}
    found: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            continue
        name = normalize_property_name(key)
        if name in skip or name in found or not is_property_name(name):
            continue
        if isinstance(value, str):
            found[name] = value[:MAX_PROPERTY_STRING]
        elif isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
            found[name] = value
        if len(found) >= MAX_PROPERTIES:
            break
    return found


def person_ref(
    external_id: Any = None, email: Any = None, name: Any = None, properties: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """A person as services.people.upsert_person takes it, or None when neither id nor email is usable."""
    person: dict[str, Any] = {}
    ext = clean_text(external_id)
    mail = clean_email(email)
    if ext:
        person["external_id"] = ext
    if mail:
        person["email"] = mail
    if not person:
        return None
    full_name = clean_text(name)
    if full_name:
        person["name"] = full_name
    if properties:
        person["properties"] = properties
    return person


def dig(payload: Any, *path: str) -> Any:
    """payload[path[0]][path[1]]…, or None where a step is missing or not an object."""
    for step in path:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(step)
    return payload


def obj(value: Any) -> dict[str, Any]:
    """value when it is a JSON object, else an empty one (providers leave fields out or null)."""
    return value if isinstance(value, dict) else {}


def identify_by(mapping: dict[str, Any]) -> str:
    """Which identifier names a person: "external_id" (the provider's id, the default) or "email"."""
    return "email" if mapping.get("identify_by") == "email" else "external_id"
