"""Marshmallow In/Out schemas of the NPS report: its parameters and its figures."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from survey_service.schemas.common import Instant, OriginQuery, PropertyCondition, PropertyName


class ReportQuery(OriginQuery):
    """GET /api/v1/reports/nps parameters."""

    since = Instant()
    until = Instant(end_of_day=True)
    group_by = PropertyName(metadata={"description": "a person property (its name as stored: lower-case)"})
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


class Stats(Schema):
    nps = fields.Float(allow_none=True, metadata={"description": "% promoters - % detractors, one decimal"})
    responses = fields.Integer()
    promoters = fields.Integer()
    passives = fields.Integer()
    detractors = fields.Integer()
    promoter_percent = fields.Float(allow_none=True)
    passive_percent = fields.Float(allow_none=True)
    detractor_percent = fields.Float(allow_none=True)
    margin_of_error = fields.Float(
        allow_none=True,
        metadata={
            "description": "95% margin in NPS points: half the width of the adjusted-Wald interval "
            "(3 pseudo-responses added), at least 0.1 with responses, at most 98"
        },
    )
    nps_low = fields.Float(
        allow_none=True, metadata={"description": "lower end of the 95% interval of the NPS, -100…100"}
    )
    nps_high = fields.Float(
        allow_none=True, metadata={"description": "upper end of the 95% interval of the NPS, -100…100"}
    )
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


class StepRatesQuery(OriginQuery):
    """GET /api/v1/reports/response_rates/steps parameters: which email first asks to follow."""

    since = Instant(metadata={"description": "first asks sent at or after this instant"})
    until = Instant(end_of_day=True, metadata={"description": "first asks sent before this instant"})
    campaign = fields.String(
        validate=validate.Length(1, 64), metadata={"description": "only first asks of this campaign"}
    )

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("since must be before until.", "until")


class RateInterval(Schema):
    response_rate = fields.Float(allow_none=True, metadata={"description": "percent, one decimal"})
    rate_low = fields.Float(
        allow_none=True, metadata={"description": "lower end of the 95% Wilson interval, percent"}
    )
    rate_high = fields.Float(
        allow_none=True, metadata={"description": "upper end of the 95% Wilson interval, percent"}
    )


class StepRate(RateInterval):
    step = fields.Integer(metadata={"description": "0: the first ask; 1..3: its reminders"})
    channel = fields.String(metadata={"description": "`email`, or `in_app` for the in-app fallback"})
    label = fields.String(metadata={"description": "e.g. `Reminder 1 (in-app)`"})
    reached = fields.Integer(
        metadata={
            "description": "first asks whose step reached the person (sent or shown; not failed/bounced)"
        }
    )
    responses = fields.Integer(metadata={"description": "answers that came after this step: what it added"})


class CumulativeRate(RateInterval):
    after_step = fields.Integer()
    reached = fields.Integer(metadata={"description": "first asks that reached the person"})
    responses = fields.Integer(metadata={"description": "answers after this step or an earlier one"})


class RemindedComparison(Schema):
    first_ask = fields.Nested(Stats, metadata={"description": "answers after the first ask only"})
    reminded = fields.Nested(Stats, metadata={"description": "answers after at least one reminder"})
    change = fields.Float(
        allow_none=True, metadata={"description": "reminded NPS minus first-ask NPS, in points"}
    )
    z = fields.Float(allow_none=True)
    p_value = fields.Float(allow_none=True)
    significant = fields.Boolean(allow_none=True, metadata={"description": "two-sided p < 0.05"})
    test = fields.String()


class StepRatesReport(Schema):
    first_asks = fields.Integer(metadata={"description": "email first asks sent in the range"})
    steps = fields.List(fields.Nested(StepRate))
    cumulative = fields.List(fields.Nested(CumulativeRate))
    reminded_vs_first_ask = fields.Nested(RemindedComparison)
