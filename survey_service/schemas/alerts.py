"""Marshmallow In/Out schemas of alert rules and their webhook deliveries."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from survey_service.core import nps
from survey_service.schemas.common import NO_CONTROL_CHARACTERS, Instant, Page


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


class AlertRuleList(Page):
    data = fields.List(fields.Nested(AlertRuleOut))


class WebhookDeliveryOut(Schema):
    id = fields.Integer()
    response_id = fields.Integer()
    event = fields.String()
    status = fields.String(
        metadata={
            "description": "pending | retrying | delivered | logged (an email alert kept in "
            "instance/outbox/ because SMTP_URL is unset, not sent) | failed"
        }
    )
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = Instant()
    delivered_at = Instant(allow_none=True)


class WebhookDeliveryList(Page):
    data = fields.List(fields.Nested(WebhookDeliveryOut))
