"""Report endpoints."""

from __future__ import annotations

from typing import Any

from survey_service.api import api_blueprint, current_project_id
from survey_service.reporting.filters import ResponseFilter
from survey_service.reporting.follow_through import step_response_rates
from survey_service.reporting.reports import nps_report
from survey_service.schemas.reports import NpsReport, ReportQuery, StepRatesQuery, StepRatesReport

bp = api_blueprint("reports", __name__, "NPS reports")


@bp.get("/reports/nps")
@bp.arguments(ReportQuery, location="query")
@bp.response(200, NpsReport)
def get_nps_report(query: dict[str, Any]) -> dict[str, Any]:
    """NPS overall, by a frozen person property, and per day/week/month, each with n and margin."""
    return nps_report(current_project_id(), **query)


@bp.get("/reports/response_rates/steps")
@bp.arguments(StepRatesQuery, location="query")
@bp.response(200, StepRatesReport)
def get_step_response_rates(query: dict[str, Any]) -> dict[str, Any]:
    """Response rate per step of the email first asks (first ask, reminders, in-app fallback), each with
    a 95% interval and the answers it added; and whether reminded answers score differently."""
    return step_response_rates(ResponseFilter(current_project_id(), **query))
