"""Theme endpoints: the rules (list, add, change, merge, delete), suggestions, and the reports."""

from __future__ import annotations

from typing import Any

from survey_service.api import api_blueprint, current_project_id
from survey_service.models import Theme
from survey_service.reporting.filters import ResponseFilter
from survey_service.reporting.theme_report import contradictions, themes_report
from survey_service.schemas.themes import (
    ContradictionQuery,
    SentimentReport,
    SuggestionIn,
    SuggestionQuery,
    Suggestions,
    ThemeIn,
    ThemeList,
    ThemeMerge,
    ThemeOut,
    ThemePatch,
    ThemeReport,
    ThemeReportQuery,
)
from survey_service.themes import service

bp = api_blueprint("themes", __name__, "Themes and sentiment of comments")


@bp.get("/themes")
@bp.response(200, ThemeList)
def list_themes() -> dict[str, Any]:
    """List the project's themes (the built-in set is added on first use)."""
    return {"data": service.list_themes(current_project_id())}


@bp.post("/themes")
@bp.arguments(ThemeIn)
@bp.response(201, ThemeOut)
def create_theme(data: dict[str, Any]) -> Theme:
    """Add a theme; existing comments are re-applied in the background."""
    return service.create_theme(current_project_id(), data)


@bp.get("/themes/<int:theme_id>")
@bp.response(200, ThemeOut)
def get_theme(theme_id: int) -> Theme:
    """Fetch one theme."""
    return service.get_theme(current_project_id(), theme_id)


@bp.patch("/themes/<int:theme_id>")
@bp.arguments(ThemePatch)
@bp.response(200, ThemeOut)
def update_theme(data: dict[str, Any], theme_id: int) -> Theme:
    """Rename a theme, change its keywords or switch it on or off."""
    return service.update_theme(current_project_id(), theme_id, data)


@bp.delete("/themes/<int:theme_id>")
@bp.response(204)
def delete_theme(theme_id: int) -> None:
    """Delete a theme and its assignments."""
    service.delete_theme(current_project_id(), theme_id)


@bp.post("/themes/<int:theme_id>/merge")
@bp.arguments(ThemeMerge)
@bp.response(200, ThemeOut)
def merge_theme(data: dict[str, Any], theme_id: int) -> Theme:
    """Merge a theme into another (its keywords join the other's)."""
    return service.merge_theme(current_project_id(), theme_id, data["into"])


@bp.get("/themes/suggestions")
@bp.arguments(SuggestionQuery, location="query")
@bp.response(200, Suggestions)
def get_suggestions(query: dict[str, Any]) -> dict[str, Any]:
    """Phrases detractors use far more than promoters and vice versa (log-odds with a Dirichlet prior)."""
    flt = ResponseFilter(current_project_id(), since=query.get("since"), until=query.get("until"))
    return service.suggestions(flt, query["limit"])


@bp.post("/themes/suggestions")
@bp.arguments(SuggestionIn)
@bp.response(201, ThemeOut)
def accept_suggestion(data: dict[str, Any]) -> Theme:
    """Turn a suggested phrase into a theme."""
    return service.theme_from_suggestion(current_project_id(), data["phrase"], data.get("label"))


@bp.get("/reports/themes")
@bp.arguments(ThemeReportQuery, location="query")
@bp.response(200, ThemeReport)
def get_themes_report(query: dict[str, Any]) -> dict[str, Any]:
    """Each theme's NPS with its margin, share of comments and impact on the score."""
    project_id = current_project_id()
    service.ensure_project(project_id)
    return themes_report(project_id, **query)


@bp.get("/reports/sentiment")
@bp.arguments(ContradictionQuery, location="query")
@bp.response(200, SentimentReport)
def get_sentiment_report(query: dict[str, Any]) -> dict[str, Any]:
    """Sentiment counts and the comments whose sentiment contradicts their score."""
    flt = ResponseFilter(current_project_id(), since=query.get("since"), until=query.get("until"))
    return contradictions(flt, query["limit"])
