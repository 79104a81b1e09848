"""Shared schema parts: bounds, field types and validators, the origin filters, the one error shape."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from survey_service.core import instants, nps
from survey_service.core.cursors import MAX_CURSOR_LENGTH
from survey_service.core.properties import EVENT_TYPE as EVENT_TYPE_PATTERN
from survey_service.core.properties import PROPERTY_NAME as PROPERTY_NAME  # re-exported
from survey_service.core.properties import is_property_name, normalize_property_name

MAX_PROPERTIES = 50
MAX_PROPERTY_KEY = 64
MAX_PROPERTY_STRING = 500
MAX_COMMENT = 5000
# Database ids are 32-bit: a larger one cannot exist, and must not reach the database as a query.
MAX_ID = 2**31 - 1
# PROPERTY_NAME (core.properties) is what a name is after normalize_property_name: see PropertyName.
PROPERTY_NAME_RULE = (
    "Property names are 1-64 letters, digits, '_', '.' or '-' (compared lower-case, spaces as '_')."
)


class _WholeMatch(validate.Regexp):
    """A Regexp the whole value must match: Python's `$` also matches before a final newline."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# Names end up in email headers (To, Subject), where a line break cannot go: refuse control characters.
# The pattern is also the OpenAPI document's, so it keeps to what ECMAScript reads the same way.
NO_CONTROL_CHARACTERS = _WholeMatch(
    r"^[^\x00-\x1f\x7f\u0085\u2028\u2029]*$", error="Line breaks and control characters are not allowed."
)


class StrictScore(fields.Integer):
    """An integer score 0-10: no strings, no floats, no booleans."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, validate=validate.Range(nps.MIN_SCORE, nps.MAX_SCORE), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class Properties(fields.Field[dict[str, Any]]):
    """A flat object of scalar values (string, number, boolean, null) with bounded keys and sizes."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError("Must be an object of scalar values.")
        if len(value) > MAX_PROPERTIES:
            raise ValidationError(f"At most {MAX_PROPERTIES} properties.")
        errors: dict[str, str] = {}
        normalized: dict[str, Any] = {}
        spellings: dict[str, str] = {}
        for key, item in value.items():
            name = normalize_property_name(key) if isinstance(key, str) else ""
            if not is_property_name(name):
                errors[str(key)] = PROPERTY_NAME_RULE
            elif name in spellings:
                errors[key] = f"The same property as {spellings[name]!r} ({name}): send it once."
            elif isinstance(item, str) and len(item) > MAX_PROPERTY_STRING:
                errors[key] = f"At most {MAX_PROPERTY_STRING} characters."
            elif isinstance(item, float) and not math.isfinite(item):
                errors[key] = "Numbers must be finite."
            elif item is not None and not isinstance(item, str | int | float | bool):
                errors[key] = "Must be a string, number, boolean or null."
            else:
                spellings[name], normalized[name] = key, item
        if errors:
            raise ValidationError(errors)
        return normalized

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value or {}


class Instant(fields.Field[datetime]):
    """A point in time: an ISO 8601 date-time (UTC when no offset) or a date (its midnight UTC).

    A range bound (the default) is clamped into instants.RANGE_FLOOR..RANGE_CEILING; a `fact=True`
    field (something that happened) outside instants.check_fact's range is a validation error.
    """

    def __init__(self, *, end_of_day: bool = False, fact: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.end_of_day = end_of_day
        self.fact = fact

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 40:
            raise ValidationError("Not a valid ISO 8601 date or date-time.")
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
                moment = datetime.combine(day, time.min, tzinfo=UTC)
                # A bare date as an upper bound means "through that whole day".
                if self.end_of_day:
                    moment = min(moment, instants.RANGE_CEILING) + timedelta(days=1)
            else:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                moment = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
        except ValueError as exc:
            raise ValidationError("Not a valid ISO 8601 date or date-time.") from exc
        # Bounded before astimezone(UTC): an offset could move year 1 or 9999 out of datetime's range.
        if not self.fact:
            return instants.clamp_range(moment).astimezone(UTC)
        try:
            return instants.check_fact(moment).astimezone(UTC)
        except instants.OutOfRange as exc:
            raise ValidationError(str(exc)) from exc

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class PropertyName(fields.String):
    """A property name (group_by, relative_to, allow-lists), normalised as everywhere: `Plan` is `plan`.

    With `event_prefix=True` (trigger conditions) an `event.` before the name is kept.
    """

    def __init__(self, *, event_prefix: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.event_prefix = event_prefix

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        name = normalize_property_name(super()._deserialize(value, attr, data, **kwargs))
        prefix = "event." if self.event_prefix and name.startswith("event.") else ""
        if not is_property_name(name.removeprefix(prefix)):
            raise ValidationError("Not a valid property name.")
        return name


class PropertyCondition(fields.Field[tuple[str, str]]):
    """A frozen-property filter written `key:value` (e.g. `where=plan:pro`); repeat to AND them."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[str, str]:
        if not isinstance(value, str) or ":" not in value or len(value) > MAX_PROPERTY_STRING + 65:
            raise ValidationError("Write a property filter as key:value.")
        key, _, wanted = value.partition(":")
        key = normalize_property_name(key)
        if not is_property_name(key):
            raise ValidationError("Not a valid property name.")
        return key, wanted


EVENT_TYPE = validate.Regexp(EVENT_TYPE_PATTERN, error="Event types are lower-case snake_case, 1-64.")


THEME_KEY = validate.Regexp(r"^[a-z0-9_]{1,40}$", error="a theme key: 1-40 of a-z, 0-9 and _")


def theme_filter() -> fields.String:
    """The `theme=<key>` filter of lists and exports (an unknown key is a 404)."""
    return fields.String(
        validate=THEME_KEY, metadata={"description": "only responses carrying this theme (its key)"}
    )


class OriginQuery(Schema):
    """Which survey, trigger rule or event type the responses came from (reports and exports)."""

    survey_id = fields.Integer(validate=validate.Range(1, MAX_ID))
    trigger_id = fields.Integer(
        validate=validate.Range(1, MAX_ID),
        metadata={
            "description": "only responses to survey requests this trigger rule made; "
            "an id of no rule of the project matches nothing"
        },
    )
    event_type = fields.String(
        validate=EVENT_TYPE,
        metadata={"description": "only responses to survey requests made for an event of this type"},
    )


class PageQuery(Schema):
    """The paging arguments of every /api/v1 list: `limit` rows after the row `cursor` names.

    A list with another default or bound of `limit` overrides the field; the cursor is always the one
    kind (core/cursors.py): opaque, from the list's own `next_cursor`.
    """

    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    cursor = fields.String(
        validate=_WholeMatch(rf"^[A-Za-z0-9_\-.]{{1,{MAX_CURSOR_LENGTH}}}$", error="Not valid."),
        metadata={"description": "the `next_cursor` of the previous page (opaque); none for the first page"},
    )


class Page(Schema):
    """The envelope of every /api/v1 list page; a list's page schema adds `data`, its items."""

    next_cursor = fields.String(
        allow_none=True,
        metadata={"description": "pass as `cursor` for the next page; null on the last page"},
    )


class ErrorOut(Schema):
    """The one error shape (documented in /openapi.json for every error answer)."""

    status = fields.Integer(required=True, metadata={"description": "the HTTP status"})
    code = fields.String(required=True, metadata={"description": "a stable snake_case code"})
    message = fields.String(required=True)
    details = fields.Raw(allow_none=True, metadata={"description": "what failed, e.g. per field"})
