"""The dashboard's pages: NPS with trend, segments and comments, exports, follow-ups, users (admins)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import current_app, redirect, render_template, request, session, url_for
from flask_wtf.csrf import generate_csrf
from marshmallow import ValidationError

from survey_service.core import clock, nps
from survey_service.dashboard.auth import admin_required, current_user, login_required
from survey_service.dashboard.charts import share_bar, trend_svg
from survey_service.dashboard.follow_through import follow_through_view
from survey_service.dashboard.forms import DashboardQuery
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import FOLLOWUP_STATUSES, DashboardUser
from survey_service.reporting.dashboard import (
    CHANNEL_LABELS,
    INTERVALS,
    RANGES,
    dashboard_page,
    export_filter,
    project_of,
    range_start,
)
from survey_service.reporting.exports import (
    CSV,
    JSONL,
    promoters_csv,
    responses_csv,
    responses_jsonl,
    streamed,
)
from survey_service.reporting.filters import ResponseFilter
from survey_service.schemas.followups import FollowupIn
from survey_service.services.followups import update_followup
from survey_service.services.projects import new_identity_secret, new_server_key
from survey_service.services.users import (
    change_password,
    create_user,
    matching_users,
    project_member,
    project_users,
    remove_user,
    set_role,
)
from survey_service.themes import service as themes

EXPORTS: dict[str, tuple[Callable[[ResponseFilter], Any], str, str]] = {
    "responses.csv": (responses_csv, "responses", CSV),
    "responses.jsonl": (responses_jsonl, "responses", JSONL),
    "promoters.csv": (promoters_csv, "promoters", CSV),
}


PREVIEW_CHARS, PREVIEW_LINES = 200, 4


def template_helpers() -> dict[str, Any]:
    """What every template may call: the CSRF token, NPS and margin formatting, a long comment's preview."""
    return {
        "csrf_token": generate_csrf,
        "format_nps": nps.format_nps,
        "format_margin": nps.format_margin,
        "comment_preview": comment_preview,
    }


def comment_preview(text: str | None) -> str | None:
    """The first few lines of a long comment (the page adds "Show more"); None when it is short enough."""
    if not text:
        return None
    lines = text.splitlines()
    if len(text) <= PREVIEW_CHARS and len(lines) <= PREVIEW_LINES:
        return None
    preview = "\n".join(lines[:PREVIEW_LINES])[:PREVIEW_CHARS]
    cut = preview.rfind(" ", PREVIEW_CHARS // 2)
    return (preview[:cut] if len(preview) == PREVIEW_CHARS and cut > 0 else preview).rstrip() + "…"


def _parse(args: Any) -> tuple[dict[str, Any], list[str]]:
    try:
        return DashboardQuery().load(args.to_dict()), []
    except ValidationError as err:
        valid = dict(err.valid_data or {})
        valid.setdefault("range", "12m")
        return valid, sorted(str(k) for k in err.messages_dict)


def _without(args: dict[str, Any], key: str) -> str:
    """The dashboard's URL with the same filters but one."""
    return url_for("dashboard.dashboard", **{k: v for k, v in args.items() if k != key})


@login_required
def dashboard() -> str:
    """The project's NPS with n and margin, the trend, a segment table and the latest comments."""
    user = current_user()
    assert user is not None
    query, invalid = _parse(request.args)
    themes.ensure_project(user.project_id)
    page = dashboard_page(user.project_id, query, invalid)
    suggestions = None
    if query.get("suggest") and user.role == "admin":
        suggestions = themes.suggestions(
            ResponseFilter(user.project_id, since=range_start(page.range_key)), 5
        )
    origin, origins, segment = page.origin, page.origins, page.segment
    overall = page.report["overall"]
    theme_labels = {t["key"]: t["label"] for t in page.themes["themes"]}
    shown: dict[str, Any] = {
        k: v for k, v in request.args.items() if k in DashboardQuery().fields and k not in invalid
    }
    active = [
        (f"{prefix}{label}", _without(shown, key))
        for key, prefix, label in (
            ("segment", "", f"{segment[0]} = {segment[1]}" if segment else None),
            ("survey_id", "Survey: ", origins.surveys.get(origin.get("survey_id", 0))),
            ("channel", "Channel: ", CHANNEL_LABELS.get(origin.get("channel", ""))),
            ("trigger_id", "Rule: ", origins.triggers.get(origin.get("trigger_id", 0))),
            ("event_type", "Event: ", origin.get("event_type")),
            ("theme", "Theme: ", theme_labels.get(query.get("theme", ""))),
        )
        if label
    ]
    return render_template(
        "dashboard.html",
        user=user,
        project=page.project,
        query=query,
        invalid=invalid,
        ranges=RANGES,
        intervals=INTERVALS,
        range_key=page.range_key,
        interval=page.interval,
        keys=page.keys,
        by=page.by,
        segment=":".join(segment) if segment else "",
        segment_key=page.segment_key,
        segment_values=page.segment_values,
        overall=overall,
        share=share_bar(
            overall["promoter_percent"], overall["passive_percent"], overall["detractor_percent"]
        ),
        trend=trend_svg(
            page.report["series"],
            page.interval,
            "No responses match these filters." if active else "No responses in this range yet.",
        ),
        groups=page.report["groups"],
        share_bar=share_bar,
        comments=page.comments,
        themes=page.themes,
        suggestions=suggestions,
        theme_url=lambda key: url_for(
            "dashboard.dashboard", **{**shown, "theme": key, "suggest": None}, _anchor="comments"
        ),
        suggest_url=url_for("dashboard.dashboard", **{**shown, "suggest": "1"}, _anchor="themes"),
        comments_total=overall["comments"],
        export_args=page.export_args,
        exports=tuple(EXPORTS),
        followup_statuses=FOLLOWUP_STATUSES,
        origin=origin,
        origins=origins,
        channels=page.channels,
        channel_labels=CHANNEL_LABELS,
        event_types=page.event_types,
        pickers=page.pickers,
        active=active,
        back=urlencode(list(request.args.items(multi=True))),
        first_run=page.first_run,
        promoter_loop=page.promoter_loop,
        campaigns=page.campaigns,
        follow_through=follow_through_view(page.follow_through) if page.follow_through else None,
        base_url=(current_app.config.get("BASE_URL") or request.host_url).rstrip("/"),
    )


@login_required
def export(name: str) -> Any:
    """Download an export of the dashboard's current range, segment, survey, channel, rule and event type.

    An invalid filter (or a survey or rule of another project) is refused rather than dropped: a file
    has nowhere to say so, and dropping a filter would export more than was asked for.
    """
    user = current_user()
    assert user is not None
    if name not in EXPORTS:
        return render_template("dashboard_error.html", title="Not found", message="No such export."), 404
    query, invalid = _parse(request.args)
    flt = export_filter(user.project_id, query, invalid)
    if invalid:
        plural = "s" if len(invalid) > 1 else ""
        message = f"Invalid filter{plural}: {', '.join(invalid)}. Export from the dashboard's buttons."
        return render_template("dashboard_error.html", title="Not exported", message=message), 400
    chunks, base_name, ext = EXPORTS[name]
    return streamed(chunks, flt, base_name, ext)


@admin_required
def followup(response_id: int) -> Any:
    """Set a comment's follow-up status and owner, then go back to the same dashboard view."""
    user = current_user()
    assert user is not None
    form = request.form
    changes: dict[str, Any] = {
        "followup_status": form.get("followup_status") or "",
        "followup_owner": (form.get("followup_owner") or "").strip() or None,
    }
    # The card's form holds every field; older pages without notes or tags leave them as they are.
    if "followup_notes" in form:
        changes["followup_notes"] = form["followup_notes"].replace("\r\n", "\n").strip() or None
    if "followup_tags" in form:
        changes["followup_tags"] = [t.strip() for t in form["followup_tags"].split(",") if t.strip()]
    try:
        update_followup(user.project_id, response_id, FollowupIn().load(changes))
    except ValidationError as err:
        message = "Not saved: " + "; ".join(
            f"{field.replace('followup_', '')}: {' '.join(str(m) for m in _flat(msgs))}"
            for field, msgs in sorted(err.messages_dict.items())
        )
        return render_template("dashboard_error.html", title="Not saved", message=message), 422
    except ApiError as exc:
        return render_template("dashboard_error.html", title="Not saved", message=exc.message), exc.status
    # Only a query string for our own page: never an open redirect.
    query = urlencode(parse_qsl((request.form.get("back") or "")[:2000]))
    return redirect(f"{url_for('dashboard.dashboard')}?{query}#comments")


def _flat(messages: Any) -> list[Any]:
    """Marshmallow's messages of one field (a list, or a dict by list index for tags) as one list."""
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in _flat(value)]
    return list(messages) if isinstance(messages, list) else [messages]


@admin_required
def users() -> Any:
    """List the project's dashboard users; admins add new ones."""
    user = current_user()
    assert user is not None
    if request.method in ("GET", "HEAD"):
        return _users_page()
    try:
        created = create_user(
            user.project_id,
            request.form.get("email") or "",
            request.form.get("password") or "",
            request.form.get("role") or "viewer",
        )
    except ApiError as exc:
        return _users_page(error=exc.message, status=exc.status)
    return _users_page(notice=f"Added {created.email} as {created.role}.")


def _users_page(
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
    shown: dict[str, str] | None = None,
) -> Any:
    """The team page with an outcome: an error, a notice, or a new secret shown once."""
    user = current_user()
    assert user is not None
    return (
        render_template(
            "dashboard_users.html",
            user=user,
            project=project_of(user.project_id),
            users=project_users(user.project_id),
            error=error,
            notice=notice,
            shown=shown,
        ),
        status,
    )


def _member(member_id: int) -> DashboardUser:
    """A user of the signed-in admin's project (another project's id is 404: never found)."""
    user = current_user()
    assert user is not None
    return project_member(user.project_id, member_id)


@admin_required
def member_role(member_id: int) -> Any:
    """Change a team member's role (the project keeps at least one admin)."""
    try:
        member = set_role(_member(member_id), request.form.get("role") or "")
    except ApiError as exc:
        return _users_page(error=exc.message, status=exc.status)
    return _users_page(notice=f"{member.email} is now {member.role}.")


@admin_required
def member_remove(member_id: int) -> Any:
    """Remove a team member (not the project's last admin); their sessions end with them."""
    user = current_user()
    assert user is not None
    try:
        member = _member(member_id)
        email, is_self = member.email, member.id == user.id
        remove_user(member)
    except ApiError as exc:
        return _users_page(error=exc.message, status=exc.status)
    if is_self:  # the admin removed themself: signed out
        session.clear()
        return redirect(url_for("dashboard.login"))
    return _users_page(notice=f"Removed {email}.")


@admin_required
def member_password(member_id: int) -> Any:
    """Set a team member's new password (ending their sessions): how an admin answers "I forgot mine"."""
    user = current_user()
    assert user is not None
    try:
        member = _member(member_id)
        change_password(member.id, request.form.get("password") or "")
    except ApiError as exc:
        return _users_page(error=exc.message, status=exc.status)
    if member.id == user.id:  # this session goes on with the new password; others end
        db.session.refresh(user)
        session["ver"] = user.session_version
    return _users_page(notice=f"New password set for {member.email}; their sessions ended.")


@login_required
def account() -> Any:
    """Any signed-in user changes their own password (the current one required)."""
    user = current_user()
    assert user is not None
    error, notice, status = None, None, 200
    if request.method == "POST":
        current = request.form.get("current_password") or ""
        new = request.form.get("password") or ""
        if user not in matching_users(user.email, current):
            error, status = "The current password is wrong.", 403
        elif new != (request.form.get("confirm") or ""):
            error, status = "The new passwords do not match.", 422
        else:
            try:
                change_password(user.id, new)
            except ApiError as exc:
                error, status = exc.message, exc.status
            else:
                db.session.refresh(user)
                session["ver"] = user.session_version  # this session stays; every other one ends
                notice = "Password changed. Your other sessions were signed out."
    page = render_template(
        "dashboard_account.html", user=user, project=project_of(user.project_id), error=error, notice=notice
    )
    return page, status


def _overlap() -> timedelta:
    """The form's overlap in hours (0 to 90 days; anything else: the default 24)."""
    raw = (request.form.get("overlap_hours") or "").strip()
    hours = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 5 else 24
    return timedelta(hours=hours if hours <= 24 * 90 else 24)


def _until(overlap: timedelta) -> str:
    if not overlap:
        return "The old one stopped working now."
    return f"The old one keeps working until {(clock.now() + overlap).strftime('%Y-%m-%d %H:%M UTC')}."


@admin_required
def rotate_secret_key() -> Any:
    """Give the project a new server secret key, shown once; the old one works for the overlap."""
    user = current_user()
    assert user is not None
    overlap = _overlap()
    secret_key = new_server_key(user.project_id, overlap)
    return _users_page(shown={"label": "New secret key", "value": secret_key, "note": _until(overlap)})


@admin_required
def rotate_identity_secret() -> Any:
    """Give the project a new widget identity secret, shown once; old user_hashes verify for the overlap."""
    user = current_user()
    assert user is not None
    overlap = _overlap()
    secret = new_identity_secret(user.project_id, overlap)
    return _users_page(shown={"label": "New identity secret", "value": secret, "note": _until(overlap)})
