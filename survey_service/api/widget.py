"""In-app widget settings and dismissals, for the project's server (secret key)."""

from __future__ import annotations

from typing import Any

from survey_service.api import api_blueprint, current_project_id
from survey_service.models import WidgetSettings
from survey_service.widget import answers, settings
from survey_service.widget.schemas import DismissalPage, DismissalQuery, WidgetSettingsSchema

bp = api_blueprint("widget_settings", __name__, "The in-app widget's rules and dismissals")


@bp.get("/widget/settings")
@bp.response(200, WidgetSettingsSchema)
def get_widget_settings() -> WidgetSettings:
    """The in-app widget settings (defaults until changed)."""
    return settings.settings_for(current_project_id())


@bp.patch("/widget/settings")
@bp.arguments(WidgetSettingsSchema)
@bp.response(200, WidgetSettingsSchema)
def patch_widget_settings(changes: dict[str, Any]) -> WidgetSettings:
    """Change some of the in-app widget settings."""
    return settings.update_settings(current_project_id(), changes)


@bp.get("/widget/dismissals")
@bp.arguments(DismissalQuery, location="query")
@bp.response(200, DismissalPage)
def get_widget_dismissals(query: dict[str, Any]) -> dict[str, Any]:
    """Who closed the in-app survey without answering, newest first."""
    return answers.list_dismissals(current_project_id(), **query)
