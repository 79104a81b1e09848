"""Report endpoints."""

from __future__ import annotations

from typing import Any

from survey_service.api import api_blueprint, current_project_id
from survey_service.reporting.reports import nps_report
from survey_service.schemas.reports import NpsReport, ReportQuery

bp = api_blueprint("reports", __name__, "NPS reports")


@bp.get("/reports/nps")
@bp.arguments(ReportQuery, location="query")
@bp.response(200, NpsReport)
def get_nps_report(query: dict[str, Any]) -> dict[str, Any]:
    """NPS overall, by a frozen person property, and per day/week/month, each with n and margin."""
    return nps_report(current_project_id(), **query)
