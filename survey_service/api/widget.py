"""In-app widget settings and dismissals, for the project's server (secret key)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from survey_service.api import api_blueprint, current_project
from survey_service.models import WIDGET_POSITIONS, WidgetSettings
from survey_service.schemas import MAX_PROPERTIES, PROPERTY_NAME, Instant
from survey_service.widget import service as in_app

bp = api_blueprint("widget_settings", __name__, "The in-app widget's rules and dismissals")


class WidgetSettingsSchema(Schema):
    """The recurring in-app rule, sampling, dismissal cool-down and placement."""

    recurring_enabled = fields.Boolean()
    first_survey_after_days = fields.Integer(strict=True, validate=validate.Range(0, 3650))
    resurvey_every_days = fields.Integer(strict=True, validate=validate.Range(1, 3650))
    sample_percent = fields.Integer(strict=True, validate=validate.Range(0, 100))
    dismiss_cooldown_days = fields.Integer(strict=True, validate=validate.Range(0, 3650))
    position = fields.String(validate=validate.OneOf(WIDGET_POSITIONS))
    browser_property_keys = fields.List(
        fields.String(validate=validate.Regexp(PROPERTY_NAME)),
        validate=validate.Length(max=MAX_PROPERTIES),
        allow_none=True,
        metadata={
            "description": "Person property keys a browser may set through the widget (never ones your server"
            " set): null (the default) allows any such key, [] none."
        },
    )


class DismissalQuery(Schema):
    since = Instant()
    until = Instant(end_of_day=True)
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class DismissalOut(Schema):
    person_id = fields.Integer()
    external_id = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    request_id = fields.Integer(allow_none=True)
    dismissed_at = Instant()


class DismissalPage(Schema):
    total = fields.Integer(metadata={"description": "dismissals in the range"})
    data = fields.List(fields.Nested(DismissalOut))


@bp.get("/widget/settings")
@bp.response(200, WidgetSettingsSchema)
def get_widget_settings() -> WidgetSettings:
    """The in-app widget settings (defaults until changed)."""
    return in_app.settings_for(current_project().id)


@bp.patch("/widget/settings")
@bp.arguments(WidgetSettingsSchema)
@bp.response(200, WidgetSettingsSchema)
def patch_widget_settings(changes: dict[str, Any]) -> WidgetSettings:
    """Change some of the in-app widget settings."""
    return in_app.update_settings(current_project().id, changes)


@bp.get("/widget/dismissals")
@bp.arguments(DismissalQuery, location="query")
@bp.response(200, DismissalPage)
def get_widget_dismissals(query: dict[str, Any]) -> dict[str, Any]:
    """Who closed the in-app survey without answering, newest first."""
    return in_app.list_dismissals(current_project().id, **query)
