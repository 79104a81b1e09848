"""The promoter loop's settings: review or referral links offered to promoters, per project or survey."""

from __future__ import annotations

from typing import Any

from survey_service.api import api_blueprint, current_project_id
from survey_service.schemas.promoters import (
    PromoterLoopIn,
    PromoterLoopOut,
    PromoterLoopQuery,
    PromoterLoopSurveyQuery,
)
from survey_service.services import promoters

bp = api_blueprint("promoter_loop", __name__, "The promoter loop: review and referral links for promoters")


@bp.get("/promoter_loop")
@bp.arguments(PromoterLoopQuery, location="query")
@bp.response(200, PromoterLoopOut)
def get_promoter_loop(query: dict[str, Any]) -> dict[str, Any]:
    """The project's review targets, or a survey's (its own, else the project's)."""
    return promoters.loop_settings(current_project_id(), query.get("survey_id"))


@bp.put("/promoter_loop")
@bp.arguments(PromoterLoopIn)
@bp.response(200, PromoterLoopOut)
def put_promoter_loop(data: dict[str, Any]) -> dict[str, Any]:
    """Replace the project's review targets (or, with survey_id, that survey's own)."""
    return promoters.save_loop_settings(
        current_project_id(), data.get("survey_id"), data["enabled"], data["targets"]
    )


@bp.delete("/promoter_loop")
@bp.arguments(PromoterLoopSurveyQuery, location="query")
@bp.response(204)
def delete_promoter_loop(query: dict[str, Any]) -> None:
    """Drop a survey's own review targets so it inherits the project's (survey_id is required)."""
    promoters.delete_survey_override(current_project_id(), query["survey_id"])
