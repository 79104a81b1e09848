"""Who the widget may ask now and why: the decision's facts, stable sampling, fatigue (reads only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, or_, select
from sqlalchemy.orm import aliased

from survey_service.core import sampling
from survey_service.extensions import db
from survey_service.models import (
    WAITING_STATUSES,
    Person,
    Project,
    RequestStatus,
    Response,
    SurveyRequest,
    UTCDateTime,
    WidgetDismissal,
    WidgetSettings,
)
from survey_service.widget.settings import WidgetRules

CHANNEL = "in_app"
# A shown but unanswered survey is offered again on later page loads for this long, then left alone.
SHOWN_OPEN_FOR = timedelta(hours=24)
# The decision reasons that show the widget.
SHOW_REASONS = frozenset({"forced", "requested", "recurring"})


@dataclass(frozen=True)
class Decision:
    """Whether to show the widget now, why, and the in-app request to answer when one is open."""

    show: bool
    reason: str
    request: SurveyRequest | None = None
    # The request is an earlier ask a forced show shows again (forced_request), not an open one.
    reused: bool = False
    # Not shown: the earliest known instant the answer may change (next_change), None when none is known.
    recheck_at: datetime | None = None


def in_sample(project_id: int, person_id: int, percent: int) -> bool:
    """Stable sampling: the same person is always in (or out of) the project's sample."""
    return sampling.in_sample(f"{project_id}:{person_id}", percent, digest_bytes=4)


def facts_columns(project_id: Any, person_id: Any) -> tuple[Any, Any, Any, Any, Any, Any]:
    """What a decision reads of one person, as six scalar subqueries on these project and person ids:
    the open in-app request's id and its reminder step (0: a first ask), the last answer, the last ask (other
    than the open request's own ask), the last dismissal, and when the next in-app request scheduled for
    later falls due (the verdict's next known instant).

    A reminder step is the same ask as its first ask: when the open request is one, neither its first ask
    (an email sent days ago) nor the ask's other steps count as the last ask, so the quiet period they
    start does not hide the reminder that follows them up. Any other ask still does.

    They take the bind parameters `now` and `shown_since` (now - SHOWN_OPEN_FOR).
    """
    now, shown_since = bindparam("now", type_=UTCDateTime()), bindparam("shown_since", type_=UTCDateTime())
    req = aliased(SurveyRequest, name="open_request")
    first = aliased(SurveyRequest, name="first_ask")
    due = and_(req.status.in_(WAITING_STATUSES), or_(req.scheduled_at.is_(None), req.scheduled_at <= now))
    shown = and_(req.status == RequestStatus.SENT, req.sent_at >= shown_since)
    # The in-app channel's check at send time: a reminder shows only while its first ask is out and
    # unanswered (an answer on any channel, a bounce or a cancellation closes the ask).
    ask_still_out = or_(
        req.reminder_of_id.is_(None),
        select(first.id)
        .where(
            first.id == req.reminder_of_id,
            first.status == RequestStatus.SENT,
            first.responded_at.is_(None),
        )
        .correlate_except(first)
        .exists(),
    )

    def open_request(column: Any) -> Any:
        """column of the open request: the person's first in-app request that is due or recently shown."""
        return (
            select(column)
            .where(
                req.project_id == project_id,
                req.person_id == person_id,
                req.channel == CHANNEL,
                req.responded_at.is_(None),
                or_(due, shown),
                or_(req.expires_at.is_(None), req.expires_at > now),
                ask_still_out,
            )
            .order_by(req.id)
            .limit(1)
            # Correlated to the enclosing statement's project and person even when nested in last_asked.
            .correlate_except(req)
            .scalar_subquery()
        )

    open_id = open_request(req.id)
    # The ask the open request belongs to: its first ask's id (a reminder step) or its own.
    open_ask = open_request(func.coalesce(req.reminder_of_id, req.id))
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
            func.coalesce(SurveyRequest.reminder_of_id, SurveyRequest.id) != func.coalesce(open_ask, -1),
        )
        .correlate_except(SurveyRequest)
    )
    last_dismissed = (
        select(func.max(WidgetDismissal.dismissed_at))
        .where(WidgetDismissal.project_id == project_id, WidgetDismissal.person_id == person_id)
        .correlate_except(WidgetDismissal)
    )
    later = aliased(SurveyRequest, name="later_request")
    next_due = (
        select(func.min(later.scheduled_at))
        .where(
            later.project_id == project_id,
            later.person_id == person_id,
            later.channel == CHANNEL,
            later.status.in_(WAITING_STATUSES),
            later.scheduled_at > now,
        )
        .correlate_except(later)
    )
    return (
        open_id,
        open_request(req.step),
        last_response.scalar_subquery(),
        last_asked.scalar_subquery(),
        last_dismissed.scalar_subquery(),
        next_due.scalar_subquery(),
    )


@lru_cache(maxsize=1)
def _facts_statement() -> Any:
    """The decision query, built once: constructing it (aliases, subqueries) costs more than running it."""
    project_id, person_id = bindparam("project_id", type_=Integer()), bindparam("person_id", type_=Integer())
    open_id, open_step, response, asked, dismissed, next_due = facts_columns(project_id, person_id)
    return select(
        open_id.label("open_id"),
        open_step.label("open_step"),
        response.label("response"),
        asked.label("asked"),
        dismissed.label("dismissed"),
        next_due.label("next_due"),
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
    recheck_at = next_change(
        seen,
        quiet_period_days=project.quiet_period_days,
        person_created_at=person.created_at,
        rules=rules,
        now=now,
    )
    if not force:
        return Decision(False, reason, recheck_at=recheck_at)
    allowed, request = forced_request(project, person.id, rules, now)
    if not allowed:
        return Decision(False, reason, recheck_at=recheck_at)
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
    # The sample picks whom the widget asks of its own accord; a reminder follows up an ask already made.
    reminder = seen.open_id is not None and bool(seen.open_step)
    if not reminder and not in_sample(project_id, person_id, rules.sample_percent):
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


def next_change(
    seen: Any,
    *,
    quiet_period_days: int,
    person_created_at: datetime,
    rules: WidgetRules,
    now: datetime,
) -> datetime | None:
    """The earliest future instant at which decision_reason may answer differently for the same facts.

    Every threshold of decision_reason that lies ahead (the dismissal cool-down's end, the quiet period's,
    the first survey's and the next recurring one's, a later in-app request falling due), whichever the
    current reason is: never later than the exact instant, so a verdict kept until then cannot hide a
    survey. Changes of the facts themselves (a new request, new settings) are the verdict TTL's bound.
    """
    quiet = timedelta(days=quiet_period_days)
    last = max((t for t in (seen.response, seen.asked) if t), default=None)
    candidates = (
        seen.dismissed and seen.dismissed + timedelta(days=rules.dismiss_cooldown_days),
        quiet_period_days and seen.response and seen.response + quiet,
        quiet_period_days and seen.asked and seen.asked + quiet,
        person_created_at + timedelta(days=rules.first_survey_after_days),
        last and last + timedelta(days=rules.resurvey_every_days),
        seen.next_due,
    )
    return min((t for t in candidates if isinstance(t, datetime) and t > now), default=None)
