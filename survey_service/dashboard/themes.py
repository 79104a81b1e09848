"""The dashboard's themes page (admins): add, rename, switch off, merge; a suggestion becomes a theme."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import flash, redirect, render_template, request, url_for
from marshmallow import Schema, ValidationError

from survey_service.dashboard.auth import admin_required, current_user
from survey_service.errors import ApiError
from survey_service.reporting.dashboard import project_of
from survey_service.schemas.themes import SuggestionIn, ThemeIn, ThemeMerge, ThemePatch
from survey_service.themes import service


def _project_id() -> int:
    user = current_user()
    assert user is not None
    return user.project_id


def _keywords(raw: str | None) -> list[str]:
    """The form's comma-separated keywords as a list (the schema checks each one)."""
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def _load(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    """Validate a form with the API's schema; a bad field is an ApiError with a readable message."""
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as err:
        message = "; ".join(
            f"{field}: {' '.join(_flat(msgs))}" for field, msgs in sorted(err.messages_dict.items())
        )
        raise ApiError(422, "validation_error", message) from err
    return loaded


def _flat(messages: Any) -> list[str]:
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in _flat(value)]
    return [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]


def _page(error: str | None = None, status: int = 200) -> Any:
    user = current_user()
    assert user is not None
    found = service.list_themes(user.project_id)
    return (
        render_template(
            "dashboard_themes.html",
            user=user,
            project=project_of(user.project_id),
            themes=found,
            error=error,
        ),
        status,
    )


def _done(message: str) -> Any:
    """Post/Redirect/Get: the outcome travels as a flashed message."""
    flash(message)
    return redirect(url_for("dashboard.themes"))


@admin_required
def themes() -> Any:
    """List the project's themes; a POST adds one (label + comma-separated keywords)."""
    if request.method in ("GET", "HEAD"):
        return _page()
    form = request.form
    try:
        data = _load(
            ThemeIn(), {"label": form.get("label") or "", "keywords": _keywords(form.get("keywords"))}
        )
        theme = service.create_theme(_project_id(), data)
    except ApiError as exc:
        return _page(error=exc.message, status=exc.status)
    return _done(f"Added the theme {theme.label}.")


@admin_required
def theme_edit(theme_id: int) -> Any:
    """Rename a theme and change its keywords."""
    form = request.form
    try:
        data = _load(
            ThemePatch(), {"label": form.get("label") or "", "keywords": _keywords(form.get("keywords"))}
        )
        theme = service.update_theme(_project_id(), theme_id, data)
    except ApiError as exc:
        return _page(error=exc.message, status=exc.status)
    return _done(f"Saved the theme {theme.label}.")


@admin_required
def theme_enabled(theme_id: int) -> Any:
    """Switch a theme on or off."""
    try:
        data = _load(ThemePatch(), {"enabled": request.form.get("enabled") or ""})
        theme = service.update_theme(_project_id(), theme_id, data)
    except ApiError as exc:
        return _page(error=exc.message, status=exc.status)
    return _done(f"{theme.label} is now {'on' if theme.enabled else 'off'}.")


@admin_required
def theme_merge(theme_id: int) -> Any:
    """Fold a theme into another one of the project's themes."""
    try:
        data = _load(ThemeMerge(), {"into": request.form.get("into") or ""})
        project_id = _project_id()
        label = service.get_theme(project_id, theme_id).label
        target = service.merge_theme(project_id, theme_id, data["into"])
    except ApiError as exc:
        return _page(error=exc.message, status=exc.status)
    return _done(f"Merged {label} into {target.label}.")


@admin_required
def theme_from_suggestion() -> Any:
    """One click on the dashboard turns a suggested phrase into a theme, then back to the same view."""
    try:
        data = _load(SuggestionIn(), {"phrase": request.form.get("phrase") or ""})
        theme = service.theme_from_suggestion(_project_id(), data["phrase"])
    except ApiError as exc:
        return render_template("dashboard_error.html", title="Not saved", message=exc.message), exc.status
    flash(f"Added the theme {theme.label}.")
    # Only a query string for our own page: never an open redirect.
    query = urlencode(parse_qsl((request.form.get("back") or "")[:2000]))
    return redirect(f"{url_for('dashboard.dashboard')}?{query}#themes")
