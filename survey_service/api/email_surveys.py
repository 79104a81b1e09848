"""Email-channel endpoints: signed survey links, email survey requests, unsubscribes, bounces, funnel."""

from __future__ import annotations

from typing import Any

from survey_service.api import api_blueprint, current_project_id
from survey_service.models import EmailSuppression, SurveyRequest
from survey_service.reporting.funnel import funnel_by_channel
from survey_service.schemas.email import (
    BounceOut,
    BouncePage,
    FunnelQuery,
    FunnelReport,
    SuppressionIn,
    SuppressionQuery,
    SurveyLinkIn,
    SurveyLinkOut,
    SurveyRequestIn,
    UnsubscribeOut,
    UnsubscribePage,
)
from survey_service.schemas.lifecycle import SurveyRequestOut
from survey_service.services import email_requests, suppressions

bp = api_blueprint("email_surveys", __name__, "Email surveys: signed links, sends, unsubscribes, bounces")


@bp.post("/survey_links")
@bp.arguments(SurveyLinkIn)
@bp.response(201, SurveyLinkOut)
def create_survey_links(data: dict[str, Any]) -> dict[str, Any]:
    """Create a "link" survey request and return its signed landing and score URLs."""
    request = email_requests.create_link_request(current_project_id(), data["person"], data.get("survey_id"))
    return email_requests.survey_links(request)


@bp.post("/survey_requests")
@bp.arguments(SurveyRequestIn)
@bp.response(201, SurveyRequestOut)
def create_survey_request(data: dict[str, Any]) -> SurveyRequest:
    """Email a person the survey now (queued for the worker).

    409 `email_suppressed` if the address unsubscribed or bounced; 409 `quiet_period` or `open_request`
    when the fatigue rules every channel shares forbid the ask (`"force": true` asks anyway).
    """
    return email_requests.request_email_survey(
        current_project_id(),
        data["person"],
        data.get("survey_id"),
        data.get("delay_seconds", 0),
        force=data.get("force", False),
    )


@bp.get("/survey_requests/<int:request_id>")
@bp.response(200, SurveyRequestOut)
def get_survey_request(request_id: int) -> SurveyRequest:
    """One survey request with its funnel timestamps."""
    return email_requests.get_request(current_project_id(), request_id)


def _page(reason: str, query: dict[str, Any]) -> dict[str, Any]:
    rows, next_cursor = suppressions.page_suppressions(current_project_id(), reason, **query)
    return {"data": rows, "next_cursor": next_cursor}


def _add(reason: str, data: dict[str, Any]) -> EmailSuppression:
    project_id = current_project_id()
    suppressions.add_suppression(project_id, data["email"], reason, data.get("detail"))
    row = suppressions.list_suppressions(project_id, reason, limit=1, email=data["email"])
    return row[0]


@bp.get("/unsubscribes")
@bp.arguments(SuppressionQuery, location="query")
@bp.response(200, UnsubscribePage)
def list_unsubscribes(query: dict[str, Any]) -> dict[str, Any]:
    """Addresses that unsubscribed, oldest first, with cursor paging."""
    return _page("unsubscribed", query)


@bp.post("/unsubscribes")
@bp.arguments(SuppressionIn)
@bp.response(201, UnsubscribeOut)
def add_unsubscribe(data: dict[str, Any]) -> EmailSuppression:
    """Unsubscribe an address (for example one that unsubscribed in the product)."""
    return _add("unsubscribed", data)


@bp.get("/bounces")
@bp.arguments(SuppressionQuery, location="query")
@bp.response(200, BouncePage)
def list_bounces(query: dict[str, Any]) -> dict[str, Any]:
    """Addresses that bounced, oldest first, with cursor paging."""
    return _page("bounced", query)


@bp.post("/bounces")
@bp.arguments(SuppressionIn)
@bp.response(201, BounceOut)
def add_bounce(data: dict[str, Any]) -> EmailSuppression:
    """Mark an address bounced (for example from an email provider's bounce webhook)."""
    return _add("bounced", data)


@bp.get("/reports/funnel")
@bp.arguments(FunnelQuery, location="query")
@bp.response(200, FunnelReport)
def get_funnel(query: dict[str, Any]) -> dict[str, Any]:
    """Requests, sent, delivered, clicked and responded per channel, with the response rate."""
    return {"channels": funnel_by_channel(current_project_id(), query.get("since"), query.get("until"))}
