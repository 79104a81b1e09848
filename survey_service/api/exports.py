"""Export endpoints: responses as CSV or JSON lines and promoters for marketing, streamed."""

from __future__ import annotations

from typing import Any

from flask import Response

from survey_service.api import api_blueprint, current_project_id
from survey_service.reporting.exports import (
    CSV,
    JSONL,
    promoters_csv,
    responses_csv,
    responses_jsonl,
    streamed,
)
from survey_service.reporting.filters import ResponseFilter
from survey_service.schemas.exports import ExportQuery
from survey_service.themes import service as themes

bp = api_blueprint("exports", __name__, "Streamed exports (CSV, JSON lines)")


def export_filter(project_id: int, query: dict[str, Any]) -> ResponseFilter:
    """The ResponseFilter of an export query."""
    return ResponseFilter(
        project_id=project_id,
        since=query.get("since"),
        until=query.get("until"),
        category=query.get("category"),
        channel=query.get("channel"),
        survey_id=query.get("survey_id"),
        trigger_id=query.get("trigger_id"),
        event_type=query.get("event_type"),
        where=tuple(query.get("where") or ()),
        theme_id=themes.theme_id_for_key(project_id, query["theme"]) if query.get("theme") else None,
    )


DOC = {"responses": {"200": {"description": "a streamed file"}}}


@bp.get("/exports/responses.csv")
@bp.arguments(ExportQuery, location="query")
@bp.doc(**DOC)
def export_responses_csv(query: dict[str, Any]) -> Response:
    """Stream the filtered responses as CSV: email, name, score, comment, created_at, …, properties."""
    return streamed(responses_csv, export_filter(current_project_id(), query), "responses", CSV)


@bp.get("/exports/responses.jsonl")
@bp.arguments(ExportQuery, location="query")
@bp.doc(**DOC)
def export_responses_jsonl(query: dict[str, Any]) -> Response:
    """Stream the filtered responses as JSON lines, one object per response."""
    return streamed(responses_jsonl, export_filter(current_project_id(), query), "responses", JSONL)


@bp.get("/exports/promoters.csv")
@bp.arguments(ExportQuery, location="query")
@bp.doc(**DOC)
def export_promoters_csv(query: dict[str, Any]) -> Response:
    """Stream promoters for marketing: contact data, score, comment, consent, segment values."""
    return streamed(promoters_csv, export_filter(current_project_id(), query), "promoters", CSV)
