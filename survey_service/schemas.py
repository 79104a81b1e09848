"""Marshmallow In/Out schemas: the shape of every request and answer, nothing more."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from . import instants, nps

MAX_PROPERTIES = 50
MAX_PROPERTY_KEY = 64
MAX_PROPERTY_STRING = 500
MAX_COMMENT = 5000
# Database ids are 32-bit: a larger one cannot exist, and must not reach the database as a query.
MAX_ID = 2**31 - 1
PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")


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
        for key, item in value.items():
            if not PROPERTY_NAME.match(key):
                errors[key] = "Property names are 1-64 letters, digits, '_', '.' or '-'."
            elif isinstance(item, str) and len(item) > MAX_PROPERTY_STRING:
                errors[key] = f"At most {MAX_PROPERTY_STRING} characters."
            elif isinstance(item, float) and not math.isfinite(item):
                errors[key] = "Numbers must be finite."
            elif item is not None and not isinstance(item, str | int | float | bool):
                errors[key] = "Must be a string, number, boolean or null."
        if errors:
            raise ValidationError(errors)
        return dict(value)

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


class PersonRef(Schema):
    """Who answered: found by external_id, else email; created when new."""

    external_id = fields.String(validate=validate.Length(1, 255))
    email = fields.Email(validate=validate.Length(3, 320))
    name = fields.String(validate=[validate.Length(0, 255), NO_CONTROL_CHARACTERS], allow_none=True)
    locale = fields.String(
        validate=[validate.Length(2, 35), validate.Regexp(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")],
        allow_none=True,
    )
    time_zone = fields.String(validate=validate.Length(1, 64), allow_none=True)
    properties = Properties(metadata={"type": "object", "additionalProperties": True})

    @validates_schema
    def _identified(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("external_id") and not data.get("email"):
            raise ValidationError("Give external_id or email.", "_schema")

    @post_load
    def _normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("email"):
            data["email"] = data["email"].strip().lower()
        return data


class PersonIn(PersonRef):
    """POST /api/v1/people."""


class PersonOut(Schema):
    id = fields.Integer()
    external_id = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    locale = fields.String(allow_none=True)
    time_zone = fields.String(allow_none=True)
    properties = Properties()
    created_at = Instant()
    updated_at = Instant()


class ResponseIn(Schema):
    """POST /api/v1/responses."""

    person = fields.Nested(PersonRef, required=True)
    score = StrictScore(required=True)
    comment = fields.String(validate=validate.Length(0, MAX_COMMENT), allow_none=True)
    created_at = Instant(fact=True)
    reference_consent = fields.Boolean(
        allow_none=True, metadata={"description": "agreed to be contacted for a reference (when asked)"}
    )


class PersonSummary(Schema):
    id = fields.Integer()
    external_id = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class ResponseOut(Schema):
    id = fields.Integer()
    survey_id = fields.Integer()
    person_id = fields.Integer()
    person = fields.Nested(PersonSummary)
    score = fields.Integer()
    category = fields.String(validate=validate.OneOf(nps.CATEGORIES))
    comment = fields.String(allow_none=True)
    channel = fields.String()
    properties = Properties(metadata={"description": "the person's properties frozen when answering"})
    reference_consent = fields.Boolean(allow_none=True)
    followup_status = fields.String(metadata={"description": "new | contacted | resolved"})
    followup_owner = fields.String(allow_none=True)
    followup_notes = fields.String(allow_none=True)
    followup_tags = fields.List(fields.String())
    created_at = Instant()
    updated_at = Instant()


class ResponsePage(Schema):
    data = fields.List(fields.Nested(ResponseOut))
    next_cursor = fields.String(allow_none=True)


class ResponseQuery(Schema):
    """GET /api/v1/responses filters."""

    category = fields.String(validate=validate.OneOf(nps.CATEGORIES))
    since = Instant()
    until = Instant(end_of_day=True)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(validate=validate.Length(1, 64))


class FollowupIn(Schema):
    """PATCH /api/v1/responses/<id>: close the loop on one answer (give at least one field)."""

    followup_status = fields.String(validate=validate.OneOf(("new", "contacted", "resolved")))
    followup_owner = fields.String(validate=validate.Length(1, 255), allow_none=True)
    followup_notes = fields.String(validate=validate.Length(0, MAX_COMMENT), allow_none=True)
    followup_tags = fields.List(
        fields.String(
            validate=validate.Regexp(r"^[\w .:/-]{1,50}$", error="Tags are 1-50 plain characters.")
        ),
        validate=validate.Length(max=20),
    )

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give followup_status, followup_owner, followup_notes or followup_tags.")


class AlertRuleIn(Schema):
    """POST /api/v1/alert_rules: when a response matches every given condition, POST a signed webhook."""

    name = fields.String(required=True, validate=[validate.Length(1, 200), NO_CONTROL_CHARACTERS])
    target_url = fields.String(required=True, validate=validate.Length(8, 2000))
    format = fields.String(
        load_default="webhook",
        validate=validate.OneOf(("webhook", "slack", "delighted", "email")),
        metadata={
            "description": "webhook: signed JSON; slack: a Slack incoming-webhook message; delighted:"
            " Delighted's survey_response.created/updated body and X-Delighted-Webhook-Signature;"
            " email: an email to target_url mailto:<address>, or mailto:owner (the response's"
            " follow-up owner, else the person's owner/csm property)"
        },
    )
    max_score = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(0, 10),
        metadata={"description": "score <= this"},
    )
    categories = fields.List(
        fields.String(validate=validate.OneOf(nps.CATEGORIES)), validate=validate.Length(max=3)
    )
    require_comment = fields.Boolean(load_default=False)
    events = fields.List(
        fields.String(
            validate=validate.OneOf(("response.created", "response.updated", "unsubscribe.created"))
        ),
        validate=validate.Length(1, 3),
        metadata={
            "description": "default [response.created]; unsubscribe.created (Delighted's event, when an"
            " address unsubscribes) needs format delighted and ignores the response conditions"
        },
    )
    enabled = fields.Boolean(load_default=True)

    @validates_schema
    def _unsubscribe_needs_delighted(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "unsubscribe.created" in (data.get("events") or []) and data.get("format") != "delighted":
            raise ValidationError("unsubscribe.created is sent in Delighted's format only.", "events")


class AlertRulePatch(Schema):
    """PATCH /api/v1/alert_rules/<id>: the fields to change (at least one); the signing secret stays."""

    name = fields.String(validate=[validate.Length(1, 200), NO_CONTROL_CHARACTERS])
    target_url = fields.String(validate=validate.Length(8, 2000))
    format = fields.String(validate=validate.OneOf(("webhook", "slack", "delighted", "email")))
    max_score = fields.Integer(strict=True, allow_none=True, validate=validate.Range(0, 10))
    categories = fields.List(
        fields.String(validate=validate.OneOf(nps.CATEGORIES)), validate=validate.Length(max=3)
    )
    require_comment = fields.Boolean()
    events = fields.List(
        fields.String(
            validate=validate.OneOf(("response.created", "response.updated", "unsubscribe.created"))
        ),
        validate=validate.Length(1, 3),
    )
    enabled = fields.Boolean()

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one field to change.")


class AlertRuleOut(Schema):
    id = fields.Integer()
    name = fields.String()
    target_url = fields.String()
    format = fields.String()
    max_score = fields.Integer(allow_none=True)
    categories = fields.List(fields.String())
    require_comment = fields.Boolean()
    events = fields.List(fields.String())
    enabled = fields.Boolean()
    created_at = Instant()


class AlertRuleCreated(AlertRuleOut):
    secret = fields.String(metadata={"description": "HMAC-SHA256 signing secret; shown only now"})


class AlertRuleList(Schema):
    data = fields.List(fields.Nested(AlertRuleOut))


class WebhookDeliveryOut(Schema):
    id = fields.Integer()
    response_id = fields.Integer()
    event = fields.String()
    status = fields.String(metadata={"description": "pending | retrying | delivered | failed"})
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = Instant()
    delivered_at = Instant(allow_none=True)


class WebhookDeliveryList(Schema):
    data = fields.List(fields.Nested(WebhookDeliveryOut))


class PropertyCondition(fields.Field[tuple[str, str]]):
    """A frozen-property filter written `key:value` (e.g. `where=plan:pro`); repeat to AND them."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[str, str]:
        if not isinstance(value, str) or ":" not in value or len(value) > MAX_PROPERTY_STRING + 65:
            raise ValidationError("Write a property filter as key:value.")
        key, _, wanted = value.partition(":")
        if not PROPERTY_NAME.match(key):
            raise ValidationError("Not a valid property name.")
        return key, wanted


EVENT_TYPE = validate.Regexp(
    r"^[a-z][a-z0-9_.\-]{0,63}$", error="Event types are lower-case snake_case, 1-64."
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


class ReportQuery(OriginQuery):
    """GET /api/v1/reports/nps parameters."""

    since = Instant()
    until = Instant(end_of_day=True)
    group_by = fields.String(validate=validate.Regexp(PROPERTY_NAME, error="Not a valid property name."))
    interval = fields.String(
        load_default="month", validate=validate.OneOf(("day", "week", "month", "quarter"))
    )
    channel = fields.String(validate=validate.Length(1, 8))
    where = fields.List(
        PropertyCondition(),
        load_default=list,
        validate=validate.Length(max=10),
        metadata={"description": "frozen-property filters `key:value`; repeat to combine (AND)"},
    )
    mode = fields.String(
        load_default="all",
        validate=validate.OneOf(("all", "last_per_person")),
        metadata={"description": "`last_per_person`: only each person's latest response in the range"},
    )
    compare = fields.String(
        validate=validate.OneOf(("previous",)),
        metadata={"description": "compare with the period of the same length just before `since`"},
    )
    rolling_days = fields.Integer(
        validate=validate.Range(1, 366),
        metadata={"description": "also give each period a `rolling` Stats over the N days up to its end"},
    )
    min_responses = fields.Integer(
        validate=validate.Range(1, 100000),
        metadata={"description": "below this n, figures are flagged too_few_responses (default 30)"},
    )

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("since must be before until.", "until")
        if data.get("compare") and not data.get("since"):
            raise ValidationError("compare=previous needs since (and optionally until).", "compare")


class ExportQuery(OriginQuery):
    """GET /api/v1/exports/* filters (the same meaning as on the report)."""

    category = fields.String(validate=validate.OneOf(nps.CATEGORIES))
    since = Instant()
    until = Instant(end_of_day=True)
    channel = fields.String(validate=validate.Length(1, 8))
    where = fields.List(PropertyCondition(), validate=validate.Length(max=10), load_default=list)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("since must be before until.", "until")


class Stats(Schema):
    nps = fields.Float(allow_none=True, metadata={"description": "% promoters - % detractors, one decimal"})
    responses = fields.Integer()
    promoters = fields.Integer()
    passives = fields.Integer()
    detractors = fields.Integer()
    promoter_percent = fields.Float(allow_none=True)
    passive_percent = fields.Float(allow_none=True)
    detractor_percent = fields.Float(allow_none=True)
    margin_of_error = fields.Float(allow_none=True, metadata={"description": "95% margin in NPS points"})
    comments = fields.Integer(metadata={"description": "responses with a non-empty comment"})
    too_few_responses = fields.Boolean(metadata={"description": "responses < min_responses"})


class GroupStats(Stats):
    key = fields.Raw(allow_none=True, metadata={"description": "the property value; null when missing"})


class PeriodStats(Stats):
    period = fields.String(metadata={"description": "start of the period, YYYY-MM-DD (UTC)"})
    rolling = fields.Nested(Stats, metadata={"description": "with rolling_days: the trailing window"})


class Comparison(Schema):
    since = Instant()
    until = Instant()
    previous = fields.Nested(Stats)
    change = fields.Float(allow_none=True, metadata={"description": "NPS now minus NPS before, in points"})
    z = fields.Float(allow_none=True)
    p_value = fields.Float(allow_none=True)
    significant = fields.Boolean(allow_none=True, metadata={"description": "two-sided p < 0.05"})
    test = fields.String()


class ResponseRate(Schema):
    channel = fields.String()
    sent = fields.Integer(metadata={"description": "survey requests sent in the range"})
    responded = fields.Integer(metadata={"description": "of those, answered"})
    response_rate = fields.Float(allow_none=True, metadata={"description": "percent, one decimal"})


class TriggerResponseRate(ResponseRate):
    trigger_id = fields.Integer(allow_none=True, metadata={"description": "null: requests no rule made"})
    event_type = fields.String(allow_none=True, metadata={"description": "the rule's event type"})


class NpsReport(Schema):
    overall = fields.Nested(Stats)
    groups = fields.List(fields.Nested(GroupStats))
    series = fields.List(fields.Nested(PeriodStats))
    mode = fields.String()
    min_responses = fields.Integer()
    comparison = fields.Nested(Comparison)
    response_rates = fields.List(fields.Nested(ResponseRate))
    response_rates_by_trigger = fields.List(
        fields.Nested(TriggerResponseRate),
        metadata={"description": "survey requests sent and answered per trigger rule and channel"},
    )


# --- lifecycle triggers -------------------------------------------------------------------------

MAX_DELAY = 400 * 24 * 3600
CONDITION_OPS = ("eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "exists")


class EventIn(Schema):
    """POST /api/v1/events."""

    id = fields.String(required=True, validate=validate.Length(1, 255))
    type = fields.String(required=True, validate=EVENT_TYPE)
    person = fields.Nested(PersonRef, required=True)
    occurred_at = Instant(fact=True)
    properties = Properties(metadata={"type": "object", "additionalProperties": True})


class ScheduledOut(Schema):
    id = fields.Integer()
    channel = fields.String()
    status = fields.String()
    scheduled_at = Instant()
    trigger_id = fields.Integer(allow_none=True)


class EventAccepted(Schema):
    id = fields.String()
    duplicate = fields.Boolean()
    scheduled = fields.List(fields.Nested(ScheduledOut))
    skipped = fields.List(fields.Dict())


class Condition(Schema):
    property = fields.String(
        required=True, validate=validate.Regexp(r"^(event\.)?[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
    )
    op = fields.String(required=True, validate=validate.OneOf(CONDITION_OPS))
    value = fields.Raw(allow_none=True)

    @validates_schema
    def _value_fits_op(self, data: dict[str, Any], **kwargs: Any) -> None:
        value = data.get("value")
        if data.get("op") in ("in", "not_in"):
            if not isinstance(value, list) or len(value) > 100:
                raise ValidationError("in/not_in take a list of at most 100 values.", "value")
            items = value
        else:
            items = [value]
        if any(item is not None and not isinstance(item, str | int | float | bool) for item in items):
            raise ValidationError("Values are strings, numbers, booleans or null.", "value")


class SendWindow(Schema):
    start_hour = fields.Integer(required=True, strict=True, validate=validate.Range(0, 23))
    end_hour = fields.Integer(required=True, strict=True, validate=validate.Range(1, 24))

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["start_hour"] >= data["end_hour"]:
            raise ValidationError("start_hour must be before end_hour.", "end_hour")


class TriggerBase(Schema):
    survey_id = fields.Integer(strict=True, allow_none=True, validate=validate.Range(1, MAX_ID))
    channel = fields.String(validate=validate.OneOf(("email", "in_app")))
    delay_seconds = fields.Integer(strict=True, validate=validate.Range(-MAX_DELAY, MAX_DELAY))
    relative_to = fields.String(allow_none=True, validate=validate.Regexp(PROPERTY_NAME))
    conditions = fields.List(fields.Nested(Condition), validate=validate.Length(0, 20))
    sample_percent = fields.Integer(strict=True, validate=validate.Range(0, 100))
    send_window = fields.Nested(SendWindow, allow_none=True)
    enabled = fields.Boolean()


class TriggerIn(TriggerBase):
    """POST /api/v1/triggers: built-in event types get the template's delay when none is given."""

    event_type = fields.String(required=True, validate=EVENT_TYPE)
    channel = fields.String(required=True, validate=validate.OneOf(("email", "in_app")))


class TriggerPatch(TriggerBase):
    """PATCH /api/v1/triggers/<id>: any subset of the fields."""


class TriggerOut(Schema):
    id = fields.Integer()
    event_type = fields.String()
    survey_id = fields.Integer()
    channel = fields.String()
    delay_seconds = fields.Integer()
    relative_to = fields.String(allow_none=True)
    conditions = fields.List(fields.Dict())
    sample_percent = fields.Integer()
    send_window = fields.Method("_window", allow_none=True)
    enabled = fields.Boolean()
    created_at = Instant()

    def _window(self, rule: Any) -> dict[str, int] | None:
        if rule.send_window_start is None:
            return None
        return {"start_hour": rule.send_window_start, "end_hour": rule.send_window_end}


class TriggerList(Schema):
    data = fields.List(fields.Nested(TriggerOut))


class TemplateOut(Schema):
    event_type = fields.String()
    delay_seconds = fields.Integer()
    relative_to = fields.String(allow_none=True)
    description = fields.String()


class TemplateList(Schema):
    data = fields.List(fields.Nested(TemplateOut))


class SurveyRequestOut(Schema):
    id = fields.Integer()
    person_id = fields.Integer()
    survey_id = fields.Integer()
    channel = fields.String()
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    trigger_id = fields.Integer(allow_none=True)
    created_at = Instant()
    scheduled_at = Instant(allow_none=True)
    sent_at = Instant(allow_none=True)
    delivered_at = Instant(allow_none=True)
    opened_at = Instant(allow_none=True)
    clicked_at = Instant(allow_none=True)
    responded_at = Instant(allow_none=True)
    expires_at = Instant(allow_none=True)


class SurveyRequestQuery(Schema):
    person_id = fields.Integer(validate=validate.Range(1, MAX_ID))
    status = fields.String(validate=validate.Length(1, 16))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


class SurveyRequestList(Schema):
    data = fields.List(fields.Nested(SurveyRequestOut))


class CancelledOut(Schema):
    cancelled = fields.Integer()


class EnrollmentIn(Schema):
    """POST /api/v1/recurring: ask a person every interval_days (relationship NPS)."""

    person = fields.Nested(PersonRef, required=True)
    interval_days = fields.Integer(required=True, strict=True, validate=validate.Range(1, 3660))
    channel = fields.String(load_default="email", validate=validate.OneOf(("email", "in_app")))
    first_at = Instant()
    survey_id = fields.Integer(strict=True, allow_none=True, validate=validate.Range(1, MAX_ID))


class EnrollmentOut(Schema):
    id = fields.Integer()
    person_id = fields.Integer()
    survey_id = fields.Integer()
    channel = fields.String()
    interval_days = fields.Integer()
    next_run_at = Instant()
    active = fields.Boolean()


class EnrollmentList(Schema):
    data = fields.List(fields.Nested(EnrollmentOut))


class ProjectSettings(Schema):
    quiet_period_days = fields.Integer(strict=True, validate=validate.Range(0, 3660))
    allow_custom_events = fields.Boolean()


class ProjectOut(ProjectSettings):
    id = fields.Integer()
    name = fields.String()
    public_key = fields.String()
    created_at = Instant()


class FailedJobOut(Schema):
    job_id = fields.String()
    request_id = fields.Integer(allow_none=True)
    function = fields.String()
    failed_at = Instant()
    error = fields.String()


class FailedJobList(Schema):
    data = fields.List(fields.Nested(FailedJobOut))


class ErrorOut(Schema):
    """The one error shape (documented in /openapi.json for every error answer)."""

    status = fields.Integer(required=True, metadata={"description": "the HTTP status"})
    code = fields.String(required=True, metadata={"description": "a stable snake_case code"})
    message = fields.String(required=True)
    details = fields.Raw(allow_none=True, metadata={"description": "what failed, e.g. per field"})
