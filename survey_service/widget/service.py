"""In-app surveys: who the widget may ask and when, identity checks, answers and dismissals."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Integer, and_, bindparam, func, or_, select, text
from sqlalchemy.orm import aliased

from survey_service.core import cursors, keys
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import (
    Person,
    Project,
    Response,
    Survey,
    SurveyRequest,
    UTCDateTime,
    WidgetDismissal,
    WidgetSettings,
    utcnow,
)
from survey_service.services import projects
from survey_service.services.people import identify_browser_person
from survey_service.services.responses import record_response
from survey_service.services.tx import commit_with_retry
from survey_service.widget.text import widget_text

CHANNEL = "in_app"
OPEN_STATUSES = ("pending", "scheduled")
# A shown but unanswered survey is offered again on later page loads for this long, then left alone.
SHOWN_OPEN_FOR = timedelta(hours=24)
TOKEN_MAX_AGE = 2 * 24 * 3600
# A token answers its request only while the request is in one of these states and not past expires_at.
ANSWERABLE_STATUSES = ("sent", "responded")
TOKEN_SALT = "in-app-widget-answer"
SETTINGS_FIELDS = (
    "recurring_enabled",
    "first_survey_after_days",
    "resurvey_every_days",
    "sample_percent",
    "dismiss_cooldown_days",
    "position",
)
# What the settings API may change: the decision's rules and which person properties a browser may set.
EDITABLE_SETTINGS = (*SETTINGS_FIELDS, "browser_property_keys")


SHOW_REASONS = frozenset({"forced", "requested", "recurring"})


@dataclass(frozen=True)
class WidgetRules:
    """The widget settings a decision reads, as plain values (from a WidgetSettings row or its defaults)."""

    recurring_enabled: bool
    first_survey_after_days: int
    resurvey_every_days: int
    sample_percent: int
    dismiss_cooldown_days: int
    position: str

    @classmethod
    def of(cls, settings: WidgetSettings | Any) -> WidgetRules:
        """The rules of a WidgetSettings (saved or default) or of a row holding its columns."""
        return cls(**{field: getattr(settings, field) for field in SETTINGS_FIELDS})


@dataclass(frozen=True)
class Decision:
    """Whether to show the widget now, why, and the in-app request to answer when one is open."""

    show: bool
    reason: str
    request: SurveyRequest | None = None
    # The request is an earlier ask a forced show shows again (forced_request), not an open one.
    reused: bool = False


def project_for_public_key(public_key: str | None) -> Project | None:
    """The project whose widget key this is, or None."""
    if not public_key or not public_key.startswith("pk_") or len(public_key) > 64:
        return None
    return db.session.scalar(select(Project).where(Project.public_key == public_key))


def project_by_public_key(public_key: str | None) -> Project:
    """The project of a widget key, or a 401 in the one error shape."""
    project = project_for_public_key(public_key)
    if project is None:
        raise ApiError(401, "unauthorized", "Unknown widget key.")
    return project


@lru_cache(maxsize=1)
def _widget_project_statement() -> Any:
    """Built once: on the widget's hot path, building a statement costs more than running it."""
    return (
        select(Project, WidgetSettings)
        .outerjoin(WidgetSettings, WidgetSettings.project_id == Project.id)
        .where(Project.public_key == bindparam("public_key"))
    )


def widget_project(public_key: str | None) -> tuple[Project, WidgetSettings]:
    """The project of a widget key with its widget settings, in one query; a 401 when unknown."""
    row = None
    if public_key and public_key.startswith("pk_") and len(public_key) <= 64:
        row = db.session.execute(_widget_project_statement(), {"public_key": public_key}).first()
    if row is None:
        raise ApiError(401, "unauthorized", "Unknown widget key.")
    project, settings = row
    return project, settings if settings is not None else default_settings(project.id)


def settings_for(project_id: int) -> WidgetSettings:
    """The project's widget settings; the defaults (unsaved) when it never changed them."""
    found = db.session.get(WidgetSettings, project_id)
    return found if found is not None else default_settings(project_id)


def default_settings(project_id: int) -> WidgetSettings:
    """The widget settings of a project that never changed them (not added to the session)."""
    defaults = {c.name: c.default.arg for c in WidgetSettings.__table__.columns if c.default is not None}
    defaults.pop("updated_at", None)
    return WidgetSettings(project_id=project_id, **defaults)


def update_settings(project_id: int, changes: dict[str, Any]) -> WidgetSettings:
    """Change some of the project's widget settings and return them all."""

    def work() -> WidgetSettings:
        current = settings_for(project_id)
        if current not in db.session:
            db.session.add(current)
        for field in EDITABLE_SETTINGS:
            if field in changes:
                setattr(current, field, changes[field])
        db.session.flush()
        return current

    return commit_with_retry(work)


def in_sample(project_id: int, person_id: int, percent: int) -> bool:
    """Stable sampling: the same person is always in (or out of) the project's sample."""
    if percent >= 100:
        return True
    digest = hashlib.sha256(f"{project_id}:{person_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def verify_identity(project: Project, user_id: str, given: str | None) -> bool:
    """Check the user_hash of a widget user; refuse a wrong one, and a missing one when required."""
    return check_identity(
        project.require_identity_verification, project.identity_secret_encrypted, user_id, given
    )


def check_identity(required: bool, secret_encrypted: str, user_id: str, given: str | None) -> bool:
    """verify_identity on the project's two columns: True when verified, False when unverified but allowed."""
    if given:
        secret = projects.decrypt_identity_secret(secret_encrypted)
        if not keys.verify_user_hash(secret, user_id, given):
            raise ApiError(403, "identity_refused", "The user_hash does not match this user id.")
        return True
    if required:
        raise ApiError(403, "identity_required", "This project requires a user_hash with every user id.")
    return False


def facts_columns(project_id: Any, person_id: Any) -> tuple[Any, Any, Any, Any]:
    """What a decision reads of one person, as four scalar subqueries on these project and person ids:
    the open in-app request's id, the last answer, the last ask (other than that request), the last dismissal.

    They take the bind parameters `now` and `shown_since` (now - SHOWN_OPEN_FOR).
    """
    now, shown_since = bindparam("now", type_=UTCDateTime()), bindparam("shown_since", type_=UTCDateTime())
    req = aliased(SurveyRequest, name="open_request")
    due = and_(req.status.in_(OPEN_STATUSES), or_(req.scheduled_at.is_(None), req.scheduled_at <= now))
    shown = and_(req.status == "sent", req.sent_at >= shown_since)
    open_id = (
        select(req.id)
        .where(
            req.project_id == project_id,
            req.person_id == person_id,
            req.channel == CHANNEL,
            req.responded_at.is_(None),
            or_(due, shown),
            or_(req.expires_at.is_(None), req.expires_at > now),
        )
        .order_by(req.id)
        .limit(1)
        # Correlated to the enclosing statement's project and person even when nested in last_asked.
        .correlate_except(req)
        .scalar_subquery()
    )
    last_response = (
        select(func.max(Response.created_at))
        .where(Response.project_id == project_id, Response.person_id == person_id)
        .correlate_except(Response)
    )
    last_asked = (
        select(func.max(SurveyRequest.sent_at))
        .where(
            SurveyRequest.project_id == project_id,
            SurveyRequest.person_id == person_id,
            SurveyRequest.id != func.coalesce(open_id, -1),
        )
        .correlate_except(SurveyRequest)
    )
    last_dismissed = (
        select(func.max(WidgetDismissal.dismissed_at))
        .where(WidgetDismissal.project_id == project_id, WidgetDismissal.person_id == person_id)
        .correlate_except(WidgetDismissal)
    )
    return (
        open_id,
        last_response.scalar_subquery(),
        last_asked.scalar_subquery(),
        last_dismissed.scalar_subquery(),
    )


@lru_cache(maxsize=1)
def _facts_statement() -> Any:
    """The decision query, built once: constructing it (aliases, subqueries) costs more than running it."""
    project_id, person_id = bindparam("project_id", type_=Integer()), bindparam("person_id", type_=Integer())
    open_id, response, asked, dismissed = facts_columns(project_id, person_id)
    return select(
        open_id.label("open_id"),
        response.label("response"),
        asked.label("asked"),
        dismissed.label("dismissed"),
    )


def _facts(project_id: int, person_id: int, now: datetime) -> Any:
    """In one round trip: the open in-app request, last answer, last ask (other than it), last dismissal.

    The open request is the person's in-app one that is due now (pending, or scheduled for now or
    earlier) or was shown recently and is still unanswered.
    """
    params = {
        "project_id": project_id,
        "person_id": person_id,
        "now": now,
        "shown_since": now - SHOWN_OPEN_FOR,
    }
    return db.session.execute(_facts_statement(), params).one()


def decide(
    project: Project, person: Person, settings: WidgetSettings, now: datetime, force: bool = False
) -> Decision:
    """Decide whether the widget asks this person now (reads only).

    A forced show follows the timing rules' answer when that is a yes; otherwise it shows the person's
    latest ask within the fatigue window again (see forced_request), so it never opens a second
    countable answer.
    """
    seen = _facts(project.id, person.id, now)
    rules = WidgetRules.of(settings)
    reason = decision_reason(
        seen,
        project_id=project.id,
        quiet_period_days=project.quiet_period_days,
        person_id=person.id,
        person_created_at=person.created_at,
        rules=rules,
        now=now,
        force=False,
    )
    if reason in SHOW_REASONS:
        request = db.session.get(SurveyRequest, seen.open_id) if seen.open_id else None
        return Decision(True, "forced" if force else reason, request)
    if not force:
        return Decision(False, reason)
    allowed, request = forced_request(project, person.id, rules, now)
    if not allowed:
        return Decision(False, reason)
    return Decision(True, "forced", request, reused=request is not None)


def fatigue_window(quiet_period_days: int, rules: WidgetRules) -> timedelta:
    """How far back a forced show looks for an ask to reuse: the longer of the quiet period and the resurvey
    interval (at least a day, as resurvey_every_days >= 1), so a project without a quiet period is covered."""
    return timedelta(days=max(quiet_period_days, rules.resurvey_every_days))


def forced_request(
    project: Project, person_id: int, rules: WidgetRules, now: datetime
) -> tuple[bool, SurveyRequest | None]:
    """For a forced show the timing rules say no to: whether it may show, and the earlier ask it shows again.

    Within the fatigue window: after an answer, only that answer's in-app request (answering again updates
    it; an answer from another channel or the API means no); else the latest in-app ask, reopened; else
    (None) a new request. Looping identify(force) and answer therefore adds at most one response.
    """
    since = now - fatigue_window(project.quiet_period_days, rules)
    answered = db.session.execute(
        select(Response.request_id, SurveyRequest.channel)
        .outerjoin(SurveyRequest, SurveyRequest.id == Response.request_id)
        .where(
            Response.project_id == project.id,
            Response.person_id == person_id,
            Response.created_at >= since,
        )
        .order_by(Response.created_at.desc(), Response.id.desc())
        .limit(1)
    ).first()
    if answered is not None:
        if answered.request_id is None or answered.channel != CHANNEL:
            return False, None
        return True, db.session.get(SurveyRequest, answered.request_id)
    latest = db.session.scalar(
        select(SurveyRequest)
        .where(
            SurveyRequest.project_id == project.id,
            SurveyRequest.person_id == person_id,
            SurveyRequest.channel == CHANNEL,
            func.coalesce(SurveyRequest.sent_at, SurveyRequest.created_at) >= since,
            SurveyRequest.responded_at.is_(None),
        )
        .order_by(SurveyRequest.id.desc())
        .limit(1)
    )
    return True, latest


def decision_reason(
    seen: Any,
    *,
    project_id: int,
    quiet_period_days: int,
    person_id: int,
    person_created_at: datetime,
    rules: WidgetRules,
    now: datetime,
    force: bool,
) -> str:
    """Why the widget asks this person now or not, from facts_columns (seen); SHOW_REASONS show it."""
    if force:
        return "forced"
    if seen.dismissed and seen.dismissed > now - timedelta(days=rules.dismiss_cooldown_days):
        return "dismissed"
    quiet_since = now - timedelta(days=quiet_period_days)
    if quiet_period_days and any(t and t > quiet_since for t in (seen.response, seen.asked)):
        return "quiet_period"
    if not in_sample(project_id, person_id, rules.sample_percent):
        return "not_sampled"
    if seen.open_id is not None:
        return "requested"
    if not rules.recurring_enabled:
        return "no_request"
    if person_created_at > now - timedelta(days=rules.first_survey_after_days):
        return "too_new"
    last = max((t for t in (seen.response, seen.asked) if t), default=None)
    if last and last > now - timedelta(days=rules.resurvey_every_days):
        return "not_due"
    return "recurring"


def _serializer() -> URLSafeTimedSerializer:
    cfg = current_app.config
    # itsdangerous signs with the last key and accepts all of them: old keys verify after rotation.
    return _serializer_for((*reversed(cfg["SECRET_KEY_FALLBACKS"]), cfg["SECRET_KEY"]))


@lru_cache(maxsize=4)
def _serializer_for(ring: tuple[str, ...]) -> URLSafeTimedSerializer:
    # Keyed by the key ring itself, so a changed SECRET_KEY gets its own serializer.
    return URLSafeTimedSerializer(list(ring), salt=TOKEN_SALT)


def answer_token(project_id: int, person_id: int, request_id: int) -> str:
    """The signed token the widget sends back with the answer or dismissal of this request."""
    return str(_serializer().dumps([project_id, person_id, request_id]))


def answerable(request: SurveyRequest, now: datetime) -> bool:
    """Whether a widget token may still answer its request: shown or answered, and not expired."""
    return request.status in ANSWERABLE_STATUSES and (request.expires_at is None or request.expires_at > now)


def _request_for_token(project: Project, token: str) -> SurveyRequest:
    """The in-app request a widget token names, if it belongs to this project; else 404/401."""
    try:
        project_id, person_id, request_id = _serializer().loads(token, max_age=TOKEN_MAX_AGE)
    except (BadSignature, ValueError, TypeError):
        raise ApiError(401, "invalid_token", "The survey token is not valid or has expired.") from None
    request = db.session.get(SurveyRequest, request_id)
    if (
        project_id != project.id
        or request is None
        or request.project_id != project.id
        or request.person_id != person_id
        or request.channel != CHANNEL
    ):
        raise ApiError(404, "not_found", "No such survey.")
    return request


def _lock_person(person_id: int) -> None:
    """Hold the person's row until commit: a no-op UPDATE locks the row on PostgreSQL and takes the write
    lock on SQLite (SELECT … FOR UPDATE would do nothing there)."""
    db.session.execute(text("UPDATE people SET id = id WHERE id = :id"), {"id": person_id})


def _show(project: Project, person: Person, decision: Decision, now: datetime) -> SurveyRequest:
    """Mark the open request as shown (or an earlier one shown again), or open one for the recurring rule
    or a forced show."""
    request = decision.request
    reopen_until = now + SHOWN_OPEN_FOR
    if request is not None and decision.reused and (request.expires_at or reopen_until) < reopen_until:
        # Shown again by a forced show: answerable for a day more, its answer still the one response.
        request.expires_at = reopen_until
    if request is None:
        request = SurveyRequest(
            project_id=project.id,
            survey_id=projects.default_survey(project.id).id,
            person_id=person.id,
            channel=CHANNEL,
            status="sent",
            scheduled_at=now,
            # Open (offered again on later pages, and "one open survey" for the schedulers) for a day.
            expires_at=now + SHOWN_OPEN_FOR,
        )
        db.session.add(request)
    if request.responded_at is None:
        request.status = "sent"
    request.sent_at = request.sent_at or now
    db.session.flush()
    return request


def _payload(
    request: SurveyRequest, person: Person, settings: WidgetSettings, lang: str | None
) -> dict[str, Any]:
    survey = db.session.get(Survey, request.survey_id)
    assert survey is not None
    token = answer_token(request.project_id, request.person_id, request.id)
    return shown_payload(survey, token, settings.position, person.locale or lang)


def shown_payload(survey: Any, token: str, position: str, locale: str | None) -> dict[str, Any]:
    """What the widget needs to show a survey: its token, colour, position and words in the person's language.

    survey is a Survey or a row with its question, followups, product_name, locale and brand_color.
    """
    followups = survey.followups or {}
    text = widget_text(
        question=survey.question,
        followups=followups,
        product=survey.product_name,
        survey_locale=survey.locale,
        person_locale=locale,
        is_default_text=survey.question == projects.DEFAULT_QUESTION
        and followups == projects.DEFAULT_FOLLOWUPS,
    )
    return {"show": True, "token": token, "color": survey.brand_color, "position": position, "text": text}


def identify(
    project: Project,
    user: dict[str, Any],
    force: bool = False,
    lang: str | None = None,
    settings: WidgetSettings | None = None,
) -> dict[str, Any]:
    """Verify the user, upsert them as a person, and say whether (and what) the widget shows.

    lang is the browser's language: used for the words when the person has no locale, never stored.
    """
    verified = verify_identity(project, user["id"], user.get("user_hash"))
    settings = settings or settings_for(project.id)
    allowed = settings.browser_property_keys

    def work() -> dict[str, Any]:
        now = utcnow()
        # The browser's door: it proves who (user_hash) and writes only what identify_browser_person allows.
        person, _ = identify_browser_person(project.id, user, allowed)
        decision = decide(project, person, settings, now, force)
        if decision.show and decision.request is None:
            # About to open an ask: two identifies at once must not both open one (two countable answers).
            # The second waits here for the first's commit, then decides again and sees its request.
            _lock_person(person.id)
            decision = decide(project, person, settings, now, force)
        if not decision.show:
            # The reason tells whether someone answered lately: only for a verified identity.
            return {"show": False, "reason": decision.reason if verified else None}
        survey_id = decision.request.survey_id if decision.request else projects.default_survey(project.id).id
        survey = db.session.get(Survey, survey_id)
        if survey is None or not survey.is_open:
            return {"show": False, "reason": "survey_closed" if verified else None}
        request = _show(project, person, decision, now)
        return {**_payload(request, person, settings, lang), "reason": decision.reason}

    return commit_with_retry(work)


def answer(project: Project, token: str, score: int, comment: str | None) -> Response:
    """Record (or change) the in-app answer a widget token stands for, properties frozen.

    The request's state is checked now, not only the token's age: a dismissed, expired or otherwise
    closed request takes no answer (410).
    """
    request = _request_for_token(project, token)
    if not answerable(request, utcnow()):
        raise ApiError(410, "survey_closed", "This survey is closed: it was dismissed or has expired.")
    person = db.session.get(Person, request.person_id)
    assert person is not None
    person_ref = {"external_id": person.external_id} if person.external_id else {"email": person.email}
    comment = (comment or "").strip() or None
    response, _ = record_response(project.id, person_ref, score, comment, channel=CHANNEL, request=request)

    def mark() -> None:
        fresh = db.session.get(SurveyRequest, request.id)
        if fresh is not None and fresh.responded_at is None:
            fresh.status, fresh.responded_at = "responded", response.created_at

    commit_with_retry(mark)
    return response


def dismiss(project: Project, token: str) -> bool:
    """Record that the person closed the widget without answering; False when they had answered."""
    request = _request_for_token(project, token)

    def work() -> bool:
        fresh = db.session.get(SurveyRequest, request.id)
        if fresh is None or fresh.responded_at is not None:
            return False
        fresh.status = "dismissed"
        db.session.add(WidgetDismissal(project_id=project.id, person_id=fresh.person_id, request_id=fresh.id))
        return True

    return commit_with_retry(work)


def list_dismissals(
    project_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of the project's widget dismissals, newest first, with the total in the range."""
    where = [WidgetDismissal.project_id == project_id]
    if since:
        where.append(WidgetDismissal.dismissed_at >= since)
    if until:
        where.append(WidgetDismissal.dismissed_at < until)
    total = db.session.scalar(select(func.count()).select_from(WidgetDismissal).where(*where)) or 0
    rows, next_cursor = cursors.page(
        select(WidgetDismissal, Person.external_id, Person.email)
        .join(Person, Person.id == WidgetDismissal.person_id)
        .where(*where),
        [WidgetDismissal.dismissed_at, WidgetDismissal.id],
        scope=f"dismissals:{project_id}",
        limit=limit,
        cursor=cursor,
        scalars=False,
        key_of=lambda row: [row[0].dismissed_at, row[0].id],
    )
    data = [
        {
            "person_id": d.person_id,
            "external_id": external_id,
            "email": email,
            "request_id": d.request_id,
            "dismissed_at": d.dismissed_at,
        }
        for d, external_id, email in rows
    ]
    return {"total": total, "data": data, "next_cursor": next_cursor}
