"""The CS team's dashboard: sign-in, NPS with trend, segments and comments, exports, users (admins)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import wraps
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import generate_csrf, validate_csrf
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select
from werkzeug.wrappers import Response as WerkzeugResponse
from wtforms.validators import ValidationError as CsrfError

from survey_service.core import nps
from survey_service.dashboard.charts import share_bar, trend_svg
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import (
    CHANNELS,
    FOLLOWUP_STATUSES,
    DashboardUser,
    Project,
    Response,
    Survey,
    TriggerRule,
)
from survey_service.reporting.dashboard import latest_comments
from survey_service.reporting.exports import (
    CSV,
    JSONL,
    promoters_csv,
    property_keys,
    responses_csv,
    responses_jsonl,
    streamed,
)
from survey_service.reporting.filters import ResponseFilter, property_text
from survey_service.reporting.reports import nps_report
from survey_service.schemas import EVENT_TYPE, MAX_ID, PROPERTY_NAME, FollowupIn, PropertyCondition
from survey_service.services import login_limits
from survey_service.services.followups import update_followup
from survey_service.services.users import (
    MultipleAccounts,
    authenticate_user,
    create_user,
    end_sessions,
    project_users,
)

bp = Blueprint("dashboard", __name__)

RANGES = {
    "30d": ("Last 30 days", 30),
    "90d": ("Last 90 days", 90),
    "12m": ("Last 12 months", 365),
    "all": ("All time", None),
}
INTERVALS = ("day", "week", "month", "quarter")
DEFAULT_INTERVAL = {"30d": "day", "90d": "week", "12m": "month", "all": "quarter"}
MAX_SEGMENT_VALUES = 50
PICKER_SAMPLE = 5000  # newest responses looked at to fill the property and segment pickers
Handler = Callable[..., Any]
# Where the responses came from: the report's and the exports' own filters, under the same names.
ORIGIN_KEYS = ("survey_id", "channel", "trigger_id", "event_type")
CHANNEL_LABELS = {"api": "API", "email": "Email", "in_app": "In-app", "link": "Link", "import": "Imported"}
EXPORTS: dict[str, tuple[Callable[[ResponseFilter], Any], str, str]] = {
    "responses.csv": (responses_csv, "responses", CSV),
    "responses.jsonl": (responses_jsonl, "responses", JSONL),
    "promoters.csv": (promoters_csv, "promoters", CSV),
}


class DashboardQuery(Schema):
    """The dashboard's filter bar; invalid values are dropped (and reported), never a 500."""

    range = fields.String(load_default="12m", validate=validate.OneOf(tuple(RANGES)))
    interval = fields.String(validate=validate.OneOf(INTERVALS))
    by = fields.String(validate=validate.Regexp(PROPERTY_NAME))
    segment = PropertyCondition()
    category = fields.String(validate=validate.OneOf(nps.CATEGORIES))
    q = fields.String(validate=validate.Length(1, 200))
    followup = fields.String(validate=validate.OneOf(FOLLOWUP_STATUSES))
    survey_id = fields.Integer(validate=validate.Range(1, MAX_ID))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    trigger_id = fields.Integer(validate=validate.Range(1, MAX_ID))
    event_type = fields.String(validate=EVENT_TYPE)


@dataclass(frozen=True)
class Origins:
    """The project's NPS surveys and trigger rules: the pickers' choices, and the ids a query may name."""

    surveys: dict[int, str]
    triggers: dict[int, str]
    event_types: list[str]

    @classmethod
    def of(cls, project_id: int) -> Origins:
        """Two small SELECTs on the project's configuration (no responses read)."""
        surveys = db.session.execute(
            select(Survey.id, Survey.name)
            .where(Survey.project_id == project_id, Survey.kind == "nps")
            .order_by(Survey.name, Survey.id)
        ).all()
        same_name = Counter(s.name for s in surveys)
        rules = db.session.execute(
            select(TriggerRule.id, TriggerRule.event_type, TriggerRule.channel, TriggerRule.enabled)
            .where(TriggerRule.project_id == project_id)
            .order_by(TriggerRule.event_type, TriggerRule.id)
        ).all()
        return cls(
            surveys={s.id: s.name if same_name[s.name] == 1 else f"{s.name} (#{s.id})" for s in surveys},
            triggers={
                r.id: f"{r.event_type} · {CHANNEL_LABELS.get(r.channel, r.channel)} (#{r.id})"
                + ("" if r.enabled else " · off")
                for r in rules
            },
            event_types=sorted({r.event_type for r in rules}),
        )

    def check(self, query: dict[str, Any], invalid: list[str]) -> dict[str, Any]:
        """The query's origin filters; a survey or rule id not of this project is dropped as invalid."""
        if query.get("survey_id") is not None and query["survey_id"] not in self.surveys:
            del query["survey_id"]
            invalid.append("survey_id")
        if query.get("trigger_id") is not None and query["trigger_id"] not in self.triggers:
            del query["trigger_id"]
            invalid.append("trigger_id")
        invalid.sort()
        return {key: query[key] for key in ORIGIN_KEYS if query.get(key) is not None}


def current_user() -> DashboardUser | None:
    """The signed-in user of this request, if the session's version is still the user's (not signed out)."""
    if "user" in g:
        user: DashboardUser | None = g.user
        return user
    user = None
    uid = session.get("uid")
    if isinstance(uid, int):
        found = db.session.get(DashboardUser, uid)
        if found is not None and session.get("ver") == found.session_version:
            user = found
    g.user = user
    return user


def login_required(view: Handler) -> Handler:
    """Send anonymous visitors to the sign-in form."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("dashboard.login"))
        return view(*args, **kwargs)

    return wrapped


def admin_required(view: Handler) -> Handler:
    """Only admins; viewers get 403."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None or user.role != "admin":
            return render_template("dashboard_error.html", title="Not allowed", message="Admins only."), 403
        return view(*args, **kwargs)

    return wrapped


@bp.before_request
def check_csrf() -> Any:
    """Every form post carries the session's CSRF token."""
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except CsrfError:
            message = "The form expired or did not come from this site. Go back, reload and try again."
            return render_template("dashboard_error.html", title="Form expired", message=message), 400
    return None


@bp.after_request
def security_headers(response: WerkzeugResponse) -> WerkzeugResponse:
    """No framing, no inline script, no caching of team data."""
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    )
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.app_context_processor
def template_helpers() -> dict[str, Any]:
    return {"csrf_token": generate_csrf, "format_nps": nps.format_nps}


def _wait_text(seconds: int) -> str:
    """A wait in words: seconds under two minutes, whole minutes (rounded up) beyond."""
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{-(-seconds // 60)} minutes"


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Show the sign-in form; sign in with email and password."""
    if request.method == "GET":
        if current_user() is not None:
            return redirect(url_for("dashboard.dashboard"))
        return render_template("dashboard_login.html", email="", error=None)
    email = (request.form.get("email") or "").strip()[:320]
    password = request.form.get("password") or ""
    address = request.remote_addr or "unknown"  # the client's, through TRUSTED_PROXY_HOPS proxies
    # Checked before the password: a throttled pair learns nothing, not even whether a guess was right.
    wait = login_limits.retry_after(email, address)
    if wait:
        error = f"Too many failed attempts. Try again in {_wait_text(wait)}."
        retry = {"Retry-After": str(wait)}
        return render_template("dashboard_login.html", email=email, error=error), 429, retry
    try:
        user = authenticate_user(email, password, _chosen_project()) if email and password else None
    except MultipleAccounts as several:
        # The password opened accounts in several projects: ask which (only now, never before).
        return render_template("dashboard_login.html", email=email, error=None, projects=several.projects)
    if user is None:
        login_limits.record_failure(email, address)
        return render_template("dashboard_login.html", email=email, error="Wrong email or password."), 401
    login_limits.clear_failures(email, address)
    session.clear()  # a fresh session on sign-in: nothing planted before survives
    session.permanent = True
    session["uid"], session["ver"] = user.id, user.session_version
    return redirect(url_for("dashboard.dashboard"))


def _chosen_project() -> int | None:
    """The project picked on the sign-in form when one email and password open several."""
    chosen = request.form.get("project") or ""
    return int(chosen) if chosen.isascii() and chosen.isdigit() and len(chosen) < 10 else None


@bp.post("/logout")
def logout() -> WerkzeugResponse:
    """Sign out, revoking the user's sessions on the server (a copied cookie stops working too)."""
    user = current_user()
    if user is not None:
        end_sessions(user.id)
    session.clear()
    return redirect(url_for("dashboard.login"))


def _parse(args: Any) -> tuple[dict[str, Any], list[str]]:
    try:
        return DashboardQuery().load(args.to_dict()), []
    except ValidationError as err:
        valid = dict(err.valid_data or {})
        valid.setdefault("range", "12m")
        return valid, sorted(str(k) for k in err.messages_dict)


def _since(range_key: str) -> datetime | None:
    days = RANGES[range_key][1]
    if days is None:
        return None
    today = datetime.now(UTC).date()
    return datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)


def _channels(flt: ResponseFilter) -> list[str]:
    """The channels among the newest responses (for the channel picker), in CHANNELS order."""
    newest = (
        select(Response.channel)
        .where(*flt.conditions())
        .order_by(Response.created_at.desc())
        .limit(PICKER_SAMPLE)
        .subquery()
    )
    found = set(db.session.scalars(select(newest.c.channel).distinct()))
    return [channel for channel in CHANNELS if channel in found]


def _without(args: dict[str, Any], key: str) -> str:
    """The dashboard's URL with the same filters but one."""
    return url_for("dashboard.dashboard", **{k: v for k, v in args.items() if k != key})


def _segment_values(flt: ResponseFilter, key: str) -> list[str]:
    """Values of a property among the newest responses (for the segment picker)."""
    newest = (
        select(property_text(key).label("value"))
        .where(*flt.conditions())
        .order_by(Response.created_at.desc())
        .limit(PICKER_SAMPLE)
        .subquery()
    )
    stmt = (
        select(newest.c.value)
        .where(newest.c.value.is_not(None))
        .group_by(newest.c.value)
        .order_by(newest.c.value)
        .limit(MAX_SEGMENT_VALUES)
    )
    return [row.value for row in db.session.execute(stmt)]


@bp.get("/dashboard")
@login_required
def dashboard() -> str:
    """The project's NPS with n and margin, the trend, a segment table and the latest comments."""
    user = current_user()
    assert user is not None
    query, invalid = _parse(request.args)
    origins = Origins.of(user.project_id)
    origin = origins.check(query, invalid)
    range_key = query["range"]
    interval = query.get("interval") or DEFAULT_INTERVAL[range_key]
    since = _since(range_key)
    base = ResponseFilter(user.project_id, since=since)
    keys = property_keys(base, sample=PICKER_SAMPLE)
    by = query.get("by") or ("plan" if "plan" in keys else (keys[0] if keys else None))
    segment = query.get("segment")
    where = (segment,) if segment else ()
    report = nps_report(user.project_id, since=since, group_by=by, interval=interval, where=where, **origin)
    segment_key = segment[0] if segment else by
    if segment_key and segment_key == by and not segment:
        # The segment table already holds every value of this property: no second scan.
        segment_values = sorted(str(g["key"]) for g in report["groups"] if g["key"] is not None)
    else:
        segment_values = _segment_values(base, segment_key) if segment_key else []
    if segment and segment[1] not in segment_values:
        segment_values.append(segment[1])
    comment_filter = ResponseFilter(
        user.project_id,
        since=since,
        where=where,
        category=query.get("category"),
        search=query.get("q"),
        followup_status=query.get("followup"),
        with_comment=True,
        **origin,
    )
    overall = report["overall"]
    export_args = {
        k: v for k, v in {"range": range_key, "segment": ":".join(segment) if segment else None}.items() if v
    } | origin
    # Each picker only when picking can change what the page shows: a survey or channel out of two or
    # more, any rule or event type (the rest of the responses came from none of them); always when in use.
    channels = _channels(base)
    if origin.get("channel") and origin["channel"] not in channels:
        channels.append(origin["channel"])
    event_types = list(origins.event_types)
    if origin.get("event_type") and origin["event_type"] not in event_types:
        event_types.append(origin["event_type"])
    pickers = {
        "survey_id": len(origins.surveys) > 1 or "survey_id" in origin,
        "channel": len(channels) > 1 or "channel" in origin,
        "trigger_id": bool(origins.triggers),
        "event_type": bool(event_types),
    }
    shown = {k: v for k, v in request.args.items() if k in DashboardQuery().fields and k not in invalid}
    active = [
        (f"{prefix}{label}", _without(shown, key))
        for key, prefix, label in (
            ("segment", "", f"{segment[0]} = {segment[1]}" if segment else None),
            ("survey_id", "Survey: ", origins.surveys.get(origin.get("survey_id", 0))),
            ("channel", "Channel: ", CHANNEL_LABELS.get(origin.get("channel", ""))),
            ("trigger_id", "Rule: ", origins.triggers.get(origin.get("trigger_id", 0))),
            ("event_type", "Event: ", origin.get("event_type")),
        )
        if label
    ]
    return render_template(
        "dashboard.html",
        user=user,
        project=db.session.get(Project, user.project_id),
        query=query,
        invalid=invalid,
        ranges=RANGES,
        intervals=INTERVALS,
        range_key=range_key,
        interval=interval,
        keys=keys,
        by=by,
        segment=":".join(segment) if segment else "",
        segment_key=segment_key,
        segment_values=segment_values,
        overall=overall,
        share=share_bar(
            overall["promoter_percent"], overall["passive_percent"], overall["detractor_percent"]
        ),
        trend=trend_svg(
            report["series"],
            interval,
            "No responses match these filters." if active else "No responses in this range yet.",
        ),
        groups=report["groups"],
        share_bar=share_bar,
        comments=latest_comments(comment_filter),
        comments_total=overall["comments"],
        export_args=export_args,
        exports=tuple(EXPORTS),
        followup_statuses=FOLLOWUP_STATUSES,
        origin=origin,
        origins=origins,
        channels=channels,
        channel_labels=CHANNEL_LABELS,
        event_types=event_types,
        pickers=pickers,
        active=active,
        back=urlencode(list(request.args.items(multi=True))),
    )


@bp.get("/dashboard/exports/<name>")
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
    origin = Origins.of(user.project_id).check(query, invalid)
    if invalid:
        plural = "s" if len(invalid) > 1 else ""
        message = f"Invalid filter{plural}: {', '.join(invalid)}. Export from the dashboard's buttons."
        return render_template("dashboard_error.html", title="Not exported", message=message), 400
    segment = query.get("segment")
    flt = ResponseFilter(
        user.project_id,
        since=_since(query["range"]),
        where=(segment,) if segment else (),
        category=query.get("category"),
        **origin,
    )
    chunks, base_name, ext = EXPORTS[name]
    return streamed(chunks, flt, base_name, ext)


@bp.post("/dashboard/responses/<int:response_id>/followup")
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
            for field, msgs in sorted(err.normalized_messages().items())
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


@bp.route("/dashboard/users", methods=["GET", "POST"])
@admin_required
def users() -> Any:
    """List the project's dashboard users; admins add new ones."""
    user = current_user()
    assert user is not None
    error, created, status = None, None, 200
    if request.method == "POST":
        try:
            created = create_user(
                user.project_id,
                request.form.get("email") or "",
                request.form.get("password") or "",
                request.form.get("role") or "viewer",
            )
        except ApiError as exc:
            error, status = exc.message, exc.status
    return (
        render_template(
            "dashboard_users.html",
            user=user,
            project=db.session.get(Project, user.project_id),
            users=project_users(user.project_id),
            error=error,
            created=created,
        ),
        status,
    )
