"""Reading Delighted-style parameters: JSON or form bodies, Unix times, booleans, lenient properties."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from flask import request
from marshmallow import ValidationError, validate

from survey_service.core import instants
from survey_service.core.properties import normalize_property_name
from survey_service.errors import ApiError

# Delighted accepted any property name ("Purchase Experience"); keep them printable and bounded.
PROPERTY_KEY = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
MAX_PROPERTIES = 100
MAX_PROPERTY_STRING = 500
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
BRACKETED = re.compile(r"^([^\[\]]+)\[([^\[\]]*)\]$")
_email = validate.Email()


class Errors:
    """Collects per-field messages and raises one 422 in the service's error shape."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            first = next(iter(self.fields.items()))
            raise ApiError(422, "validation_error", f"{first[0]}: {first[1][0]}", self.fields)


def body() -> dict[str, Any]:
    """The request parameters: a JSON object, or a form with Delighted's `key[sub]=value` nesting."""
    if request.is_json:
        data = request.get_json(silent=True)
        if data is None and request.get_data():
            raise ApiError(400, "bad_request", "The body is not valid JSON.")
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ApiError(422, "validation_error", "The body must be a JSON object.")
        return data
    return nest(request.form.items(multi=True))


def nest(pairs: Any) -> dict[str, Any]:
    """Turn `properties[plan]=pro` and `expand[]=person` pairs into nested dicts and lists."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        match = BRACKETED.match(key)
        if match is None:
            out[key] = value
        elif match.group(2) == "":
            out.setdefault(match.group(1), []).append(value)
        else:
            inner = out.setdefault(match.group(1), {})
            if isinstance(inner, dict):
                inner[match.group(2)] = value
    return out


def unix_time(value: Any, field: str, errors: Errors) -> datetime | None:
    """A Unix timestamp (int, or digits from a query string) as an aware UTC datetime: a range bound,
    clamped into instants.RANGE_FLOOR..RANGE_CEILING (so `until + 1 s` stays a datetime)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,12}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 253402300800:
        errors.add(field, "Must be a Unix timestamp in seconds.")
        return None
    return instants.clamp_range(datetime.fromtimestamp(value, UTC))


def unix_fact(value: Any, field: str, errors: Errors) -> datetime | None:
    """A Unix timestamp of something that happened (a response, a last send): within instants.check_fact."""
    moment = unix_time(value, field, errors)
    if moment is None:
        return None
    try:
        return instants.check_fact(moment)
    except instants.OutOfRange as exc:
        errors.add(field, str(exc))
        return None


def integer(value: Any, field: str, errors: Errors, low: int, high: int, default: int) -> int:
    """An integer within [low, high] (digits accepted from query strings and forms)."""
    if value is None or value == "":
        return default
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.add(field, f"Must be an integer from {low} to {high}.")
        return default
    return value


def boolean(value: Any, field: str, errors: Errors, default: bool) -> bool:
    """true/false, also as the strings a form sends."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    errors.add(field, "Must be true or false.")
    return default


def email(value: Any, field: str, errors: Errors) -> str | None:
    """A syntactically valid email, lower-cased."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 320:
        errors.add(field, "Not a valid email address.")
        return None
    try:
        _email(value.strip())
    except ValidationError:
        errors.add(field, "Not a valid email address.")
        return None
    return value.strip().lower()


def phone(value: Any, field: str, errors: Errors) -> str | None:
    """An E.164 phone number such as +17132746524."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not PHONE.match(value.strip()):
        errors.add(field, "Must be an E.164 phone number, e.g. +17132746524.")
        return None
    return value.strip()


def text(value: Any, field: str, errors: Errors, max_length: int) -> str | None:
    """An optional string of at most max_length characters."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        errors.add(field, f"Must be a string of at most {max_length} characters.")
        return None
    return value


def properties(value: Any, field: str, errors: Errors) -> dict[str, Any] | None:
    """A flat map of scalar values with printable keys, under their normalised names.

    Delighted allowed spaces and capitals in names: they are normalised as everywhere
    (core.properties: "Purchase Experience" is `purchase_experience`), other printable characters kept.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.add(field, "Must be an object of scalar values.")
        return None
    if len(value) > MAX_PROPERTIES:
        errors.add(field, f"At most {MAX_PROPERTIES} properties.")
        return None
    normalized: dict[str, Any] = {}
    spellings: dict[str, str] = {}
    for key, item in value.items():
        name = normalize_property_name(key) if isinstance(key, str) else ""
        if not PROPERTY_KEY.match(name):
            errors.add(field, f"{key!r}: names are 1-64 printable characters.")
        elif name in spellings:
            errors.add(field, f"{key}: the same property as {spellings[name]!r} ({name}).")
        elif isinstance(item, str) and len(item) > MAX_PROPERTY_STRING:
            errors.add(field, f"{key}: at most {MAX_PROPERTY_STRING} characters.")
        elif isinstance(item, float) and not math.isfinite(item):
            errors.add(field, f"{key}: numbers must be finite.")
        elif item is not None and not isinstance(item, str | int | float | bool):
            errors.add(field, f"{key}: must be a string, number, boolean or null.")
        else:
            spellings[name], normalized[name] = key, item
    return normalized


def score(value: Any, field: str, errors: Errors, required: bool) -> int | None:
    """A 0-10 integer score (digits accepted from forms; never floats or booleans)."""
    if value is None:
        if required:
            errors.add(field, "Missing data for required field.")
        return None
    if isinstance(value, str) and not request.is_json and re.fullmatch(r"[0-9]{1,2}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        errors.add(field, "Must be an integer from 0 to 10.")
        return None
    return value


def expand() -> set[str]:
    """The objects to expand (`expand[]=person`)."""
    return set(request.args.getlist("expand[]")) | set(request.args.getlist("expand"))
