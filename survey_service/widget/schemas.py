"""Marshmallow schemas of the in-app widget: what a browser sends (public key), the server's settings API."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, post_load, validate

from survey_service.models import WIDGET_POSITIONS
from survey_service.schemas.common import (
    MAX_COMMENT,
    MAX_PROPERTIES,
    Instant,
    Page,
    PageQuery,
    Properties,
    PropertyName,
    StrictScore,
)

# --- what a browser sends to /api/widget (the public key's door) -------------------------------


class WidgetUser(Schema):
    """The signed-in user as the host page describes them to npsWidget("identify", …)."""

    class Meta:
        unknown = EXCLUDE  # hosts pass extra fields; the widget must not break on them

    id = fields.String(required=True, validate=validate.Length(1, 255))
    user_hash = fields.String(validate=validate.Length(0, 128), allow_none=True)
    email = fields.Email(validate=validate.Length(3, 320), allow_none=True)
    name = fields.String(validate=validate.Length(0, 255), allow_none=True)
    locale = fields.String(
        validate=validate.Regexp(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$"), allow_none=True
    )
    properties = Properties()

    @post_load
    def _normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("email"):
            data["email"] = data["email"].strip().lower()
        return data


class IdentifyIn(Schema):
    key = fields.String(required=True, validate=validate.Length(1, 64))
    user = fields.Nested(WidgetUser, required=True)
    force = fields.Boolean(load_default=False)
    lang = fields.String(validate=validate.Length(0, 35), allow_none=True)
    verdict = fields.String(
        validate=validate.Length(0, 512),
        allow_none=True,
        metadata={"description": "An earlier answer's verdict, kept by the widget (ignored unless valid)."},
    )


class AnswerIn(Schema):
    key = fields.String(required=True, validate=validate.Length(1, 64))
    token = fields.String(required=True, validate=validate.Length(1, 512))
    score = StrictScore(required=True)
    comment = fields.String(validate=validate.Length(0, MAX_COMMENT), allow_none=True)


class DismissIn(Schema):
    key = fields.String(required=True, validate=validate.Length(1, 64))
    token = fields.String(required=True, validate=validate.Length(1, 512))


# --- the project's server: /api/v1/widget/* (the secret key's door) ----------------------------


class WidgetSettingsSchema(Schema):
    """The recurring in-app rule, sampling, dismissal cool-down and placement."""

    recurring_enabled = fields.Boolean()
    first_survey_after_days = fields.Integer(strict=True, validate=validate.Range(0, 3650))
    resurvey_every_days = fields.Integer(strict=True, validate=validate.Range(1, 3650))
    sample_percent = fields.Integer(strict=True, validate=validate.Range(0, 100))
    dismiss_cooldown_days = fields.Integer(strict=True, validate=validate.Range(0, 3650))
    position = fields.String(validate=validate.OneOf(WIDGET_POSITIONS))
    browser_property_keys = fields.List(
        PropertyName(),
        validate=validate.Length(max=MAX_PROPERTIES),
        allow_none=True,
        metadata={
            "description": "Person property keys a browser may set through the widget (never ones your server"
            " set): null (the default) allows any such key, [] none."
        },
    )


class DismissalQuery(PageQuery):
    since = Instant()
    until = Instant(end_of_day=True)


class DismissalOut(Schema):
    person_id = fields.Integer()
    external_id = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    request_id = fields.Integer(allow_none=True)
    dismissed_at = Instant()


class DismissalPage(Page):
    total = fields.Integer(metadata={"description": "dismissals in the range"})
    data = fields.List(fields.Nested(DismissalOut))
