"""Marshmallow In/Out schemas of the lifecycle: events, trigger rules, survey requests, enrolments."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from survey_service.schemas.common import (
    EVENT_TYPE,
    MAX_ID,
    Instant,
    Page,
    PageQuery,
    Properties,
    PropertyName,
)
from survey_service.schemas.people import PersonRef
from survey_service.services import reminder_plans as plans

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
    property = PropertyName(required=True, event_prefix=True)
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


class ReminderPlan(Schema):
    """A reminder plan: up to 3 reminders to people who have not answered, each after a delay of 1 hour
    to 30 days (the last delay repeats), by email, in-app first, or both; {"count": 0} means none."""

    count = fields.Integer(
        strict=True, load_default=plans.DEFAULT_PLAN["count"], validate=validate.Range(0, plans.MAX_COUNT)
    )
    delays_seconds = fields.List(
        fields.Integer(strict=True, validate=validate.Range(plans.MIN_DELAY, plans.MAX_DELAY)),
        load_default=lambda: list(plans.DEFAULT_PLAN["delays_seconds"]),
        validate=validate.Length(1, plans.MAX_COUNT),
    )
    mode = fields.String(load_default=plans.DEFAULT_PLAN["mode"], validate=validate.OneOf(plans.MODES))
    in_app_window_days = fields.Integer(
        strict=True,
        load_default=plans.DEFAULT_PLAN["in_app_window_days"],
        validate=validate.Range(*plans.IN_APP_WINDOW_DAYS),
    )


def reminders_field() -> fields.Nested:
    """A `reminders` field: a plan, or null for none of its own (a rule or enrolment then takes its
    survey's plan; a survey asks with no reminders)."""
    return fields.Nested(ReminderPlan, allow_none=True, metadata={"description": ReminderPlan.__doc__})


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
    relative_to = PropertyName(allow_none=True)
    conditions = fields.List(fields.Nested(Condition), validate=validate.Length(0, 20))
    sample_percent = fields.Integer(strict=True, validate=validate.Range(0, 100))
    send_window = fields.Nested(SendWindow, allow_none=True)
    enabled = fields.Boolean()
    reminders = reminders_field()


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
    reminders = fields.Nested(ReminderPlan, allow_none=True)
    created_at = Instant()

    def _window(self, rule: Any) -> dict[str, int] | None:
        if rule.send_window_start is None:
            return None
        return {"start_hour": rule.send_window_start, "end_hour": rule.send_window_end}


class TriggerList(Page):
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
    # Reminders: the first ask a reminder belongs to and its step (0: a first ask), the first ask's plan.
    reminder_of_id = fields.Integer(allow_none=True)
    step = fields.Integer()
    reminder_plan = fields.Nested(ReminderPlan, allow_none=True)
    next_reminder_at = Instant(allow_none=True)


class SurveyRequestQuery(PageQuery):
    person_id = fields.Integer(validate=validate.Range(1, MAX_ID))
    status = fields.String(validate=validate.Length(1, 16))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


class SurveyRequestList(Page):
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
    reminders = reminders_field()


class EnrollmentOut(Schema):
    id = fields.Integer()
    person_id = fields.Integer()
    survey_id = fields.Integer()
    channel = fields.String()
    interval_days = fields.Integer()
    next_run_at = Instant()
    active = fields.Boolean()
    reminders = fields.Nested(ReminderPlan, allow_none=True)


class EnrollmentList(Page):
    data = fields.List(fields.Nested(EnrollmentOut))


class SurveyOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    name = fields.String()
    product_name = fields.String()
    locale = fields.String()
    link_expiry_days = fields.Integer()
    is_default = fields.Boolean()
    is_open = fields.Boolean()
    reminders = fields.Nested(ReminderPlan, allow_none=True)
    created_at = Instant()


class SurveyList(Schema):
    data = fields.List(fields.Nested(SurveyOut))


class SurveyPatch(Schema):
    """PATCH /api/v1/surveys/<id>: the survey's reminder plan (its email asks from now on)."""

    reminders = reminders_field()
