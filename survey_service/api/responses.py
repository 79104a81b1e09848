"""Response endpoints: record a score, list them, fetch one."""

from __future__ import annotations

from typing import Any

from survey_service.api import api_blueprint, current_project_id
from survey_service.models import Response
from survey_service.schemas.responses import ResponseIn, ResponseOut, ResponsePage, ResponseQuery
from survey_service.services.responses import get_response as project_response
from survey_service.services.responses import list_responses, record_response
from survey_service.themes import service as themes

bp = api_blueprint("responses", __name__, "0-10 responses with comments")


@bp.post("/responses")
@bp.arguments(ResponseIn)
@bp.response(201, ResponseOut)
def create_response(data: dict[str, Any]) -> Response:
    """Record a 0-10 score (and comment) for a person, upserting the person."""
    response, _ = record_response(
        current_project_id(),
        data["person"],
        data["score"],
        data.get("comment"),
        channel="api",
        created_at=data.get("created_at"),
        reference_consent=data.get("reference_consent"),
    )
    return response


@bp.get("/responses")
@bp.arguments(ResponseQuery, location="query")
@bp.response(200, ResponsePage)
def get_responses(query: dict[str, Any]) -> dict[str, Any]:
    """List responses newest first, filtered by category and time, with cursor paging."""
    project_id = current_project_id()
    theme = query.pop("theme", None)
    theme_id = themes.theme_id_for_key(project_id, theme) if theme else None
    rows, next_cursor = list_responses(project_id, theme_id=theme_id, **query)
    return {"data": rows, "next_cursor": next_cursor}


@bp.get("/responses/<int:response_id>")
@bp.response(200, ResponseOut)
def get_response(response_id: int) -> Response:
    """Fetch one response of this project."""
    return project_response(current_project_id(), response_id)
