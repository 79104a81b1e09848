"""Marshmallow In/Out schemas of the email channel's API: links, requests, suppressions, funnel."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from survey_service.schemas.common import Instant, Page, PageQuery
from survey_service.schemas.people import PersonRef


class SurveyLinkIn(Schema):
    """POST /api/v1/survey_links."""

    person = fields.Nested(PersonRef, required=True)
    survey_id = fields.Integer(strict=True, validate=validate.Range(1, 2**31 - 1))


class SurveyLinkOut(Schema):
    id = fields.Integer(metadata={"description": "the survey request the links answer"})
    url = fields.String(metadata={"description": "the landing page with no score chosen"})
    score_urls = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": '"0"…"10"'}
    )
    unsubscribe_url = fields.String()
    expires_at = Instant()


class SurveyRequestIn(Schema):
    """POST /api/v1/survey_requests: ask a person now (the email is sent by the worker)."""

    person = fields.Nested(PersonRef, required=True)
    channel = fields.String(load_default="email", validate=validate.OneOf(("email",)))
    survey_id = fields.Integer(strict=True, validate=validate.Range(1, 2**31 - 1))
    delay_seconds = fields.Integer(
        strict=True,
        load_default=0,
        validate=validate.Range(0, 90 * 86400),
        metadata={"description": "send after this many seconds (the worker's scheduler)"},
    )
    force = fields.Boolean(
        load_default=False,
        metadata={
            "description": "ask even within the project's quiet period or while an earlier ask is open "
            "(otherwise 409 quiet_period / open_request)"
        },
    )


class SuppressionQuery(PageQuery):
    """GET /api/v1/unsubscribes and /api/v1/bounces."""

    since = Instant()


class SuppressionIn(Schema):
    """POST /api/v1/unsubscribes or /api/v1/bounces: record one from another system."""

    email = fields.Email(required=True, validate=validate.Length(3, 320))
    detail = fields.String(validate=validate.Length(0, 500))


class UnsubscribeOut(Schema):
    email = fields.String()
    unsubscribed_at = Instant(attribute="created_at")


class BounceOut(Schema):
    email = fields.String()
    bounced_at = Instant(attribute="created_at")


class UnsubscribePage(Page):
    data = fields.List(fields.Nested(UnsubscribeOut))


class BouncePage(Page):
    data = fields.List(fields.Nested(BounceOut))


class FunnelQuery(Schema):
    """GET /api/v1/reports/funnel."""

    since = Instant()
    until = Instant(end_of_day=True)


class ChannelFunnel(Schema):
    channel = fields.String()
    requests = fields.Integer()
    sent = fields.Integer()
    delivered = fields.Integer()
    opened = fields.Integer(metadata={"description": "only counted when EMAIL_OPEN_TRACKING is on"})
    clicked = fields.Integer()
    responded = fields.Integer()
    bounced = fields.Integer()
    response_rate = fields.Float(allow_none=True, metadata={"description": "responded / sent, percent"})


class FunnelReport(Schema):
    channels = fields.List(fields.Nested(ChannelFunnel))
