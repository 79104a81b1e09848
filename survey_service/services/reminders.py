"""Reminders to non-responders: a first ask's reminder plan, its reminder steps, and closing them.

A reminder plan (`{"count", "delays_seconds", "mode", "in_app_window_days"}`) lives on a survey, a trigger
rule or an enrolment; the one that applies (the rule's or enrolment's, else the survey's) is resolved
and snapshotted on each email first ask when it is made (`plan_for`), so a later change of the rule
affects new asks only. When the first ask's email is recorded sent, the same UPDATE sets its
`next_reminder_at` (`values_when_sent`). The relay's tick (`schedule_due`) turns each due first ask that
is still unanswered into its next reminder step: a request of its own (`reminder_of_id`, `step`),
created in the transaction that moves the first ask's `next_reminder_at` on, by a conditional UPDATE,
so two relays never create a step twice. An email step goes out through the one send path with the
first ask's links (the send job re-checks that nobody answered); an in-app step waits for the widget.

An answer on any channel closes the person's chains for that survey (`close_on_answer`, inside the
answer's own transaction); an unsubscribe or bounce closes all of the person's (`cancel_for_people`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.sql.elements import ColumnElement

from survey_service.core import clock, hot_cache
from survey_service.extensions import db
from survey_service.models import (
    NEVER_REACHED_STATUSES,
    Enrollment,
    Person,
    RequestStatus,
    Response,
    Survey,
    SurveyRequest,
    TriggerRule,
)
from survey_service.services import outbox, widget_presence
from survey_service.services.reminder_plans import (
    MAX_COUNT,
    PLANS_IN_PROJECT,
    close_chains,
    delay_after,
    normalized,
)
from survey_service.services.triggers import within_send_window

log = logging.getLogger(__name__)

# First asks turned into steps per relay tick (the rest wait for the next tick).
BATCH = 200


def has_plans(project_id: int) -> bool:
    """Whether any survey, rule or enrolment of the project has a reminder plan (cached briefly)."""

    def load() -> bool:
        some = [
            exists().where(model.project_id == project_id, model.reminders.is_not(None))
            for model in (Survey, TriggerRule, Enrollment)
        ]
        return bool(db.session.scalar(select(or_(*some))))

    return hot_cache.cached(PLANS_IN_PROJECT, project_id, load)


# --- the scheduler -------------------------------------------------------------------------------


def _answered_since_sent() -> ColumnElement[bool]:
    """The person answered the first ask's survey (any channel) since it was sent."""
    return exists().where(
        Response.project_id == SurveyRequest.project_id,
        Response.person_id == SurveyRequest.person_id,
        Response.survey_id == SurveyRequest.survey_id,
        Response.created_at >= SurveyRequest.sent_at,
    )


def _why_stop(
    first: SurveyRequest, answered: bool, plan: dict[str, Any] | None, step: int, at: datetime
) -> str | None:
    if answered or first.responded_at is not None:
        return "answered"
    if plan is None or step > min(int(plan["count"]), MAX_COUNT):
        return "no_plan"
    if first.status != RequestStatus.SENT:
        return "not_reached"  # bounced, failed, suppressed, cancelled: nothing to remind of
    if first.expires_at is not None and at >= first.expires_at:
        return "expired"
    return None


def _move(first_id: int, seen: datetime, following: datetime | None) -> bool:
    """Move a first ask's next reminder from `seen` to `following`; False when another scheduler did."""
    result = db.session.execute(
        update(SurveyRequest)
        .where(SurveyRequest.id == first_id, SurveyRequest.next_reminder_at == seen)
        .values(next_reminder_at=following)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]


def _next_step(
    first: SurveyRequest,
    person: Person,
    answered: bool,
    step: int,
    rules: dict[int, TriggerRule],
    now: datetime,
) -> list[SurveyRequest]:
    """Create the first ask's reminder step `step` (one row per channel), or end its plan."""
    seen = first.next_reminder_at
    if seen is None:
        return []  # read again after a rollback: another relay ended it meanwhile
    plan = normalized(first.reminder_plan)
    rule = rules.get(first.trigger_id) if first.trigger_id is not None else None
    at = within_send_window(rule, person.time_zone, seen) if rule is not None else seen
    if _why_stop(first, answered, plan, step, at):
        _move(first.id, seen, None)
        return []
    assert plan is not None
    following = at + delay_after(plan, step) if step < min(int(plan["count"]), MAX_COUNT) else None
    if not _move(first.id, seen, following):
        return []  # another relay made this step
    steps = [
        SurveyRequest(
            project_id=first.project_id,
            survey_id=first.survey_id,
            person_id=first.person_id,
            channel=channel,
            status=RequestStatus.PENDING,
            # An email waits for the rule's send window; an in-app ask is there when the person is.
            scheduled_at=at if channel == "email" else seen,
            expires_at=first.expires_at,
            created_at=now,
            trigger_id=first.trigger_id,
            event_id=first.event_id,
            enrollment_id=first.enrollment_id,
            campaign=first.campaign,
            reminder_of_id=first.id,
            step=step,
        )
        for channel in widget_presence.channels_for(plan, person, now)
    ]
    db.session.add_all(steps)
    return steps


def schedule_due(now: datetime | None = None) -> int:
    """Create the reminder steps that fell due (up to BATCH first asks), commit, then enqueue the emails.

    Safe to run from several relays at once: each step is created in the transaction of a conditional
    UPDATE of its first ask (`next_reminder_at` still what was read), and (first ask, step, channel) is
    unique. Returns how many step rows were created.
    """
    now = now or clock.now()
    rows = db.session.execute(
        select(SurveyRequest, Person, _answered_since_sent().label("answered"))
        .join(Person, Person.id == SurveyRequest.person_id)
        .where(SurveyRequest.next_reminder_at.is_not(None), SurveyRequest.next_reminder_at <= now)
        .order_by(SurveyRequest.next_reminder_at, SurveyRequest.id)
        .limit(BATCH)
        .execution_options(populate_existing=True)
    ).all()
    if not rows:
        return 0
    firsts = [first.id for first, _, _ in rows]
    last_step: dict[int | None, int] = {
        first_id: int(step)
        for first_id, step in db.session.execute(
            select(SurveyRequest.reminder_of_id, func.max(SurveyRequest.step))
            .where(SurveyRequest.reminder_of_id.in_(firsts))
            .group_by(SurveyRequest.reminder_of_id)
        )
    }
    rule_ids = {first.trigger_id for first, _, _ in rows if first.trigger_id is not None}
    rules = {
        rule.id: rule for rule in db.session.scalars(select(TriggerRule).where(TriggerRule.id.in_(rule_ids)))
    }
    made: list[SurveyRequest] = []
    try:
        for first, person, answered in rows:
            made += _next_step(first, person, bool(answered), last_step.get(first.id, 0) + 1, rules, now)
        db.session.flush()
        db.session.commit()
    except OperationalError as exc:
        # A busy SQLite writer or a database going away: nothing of this pass is kept, the next one retries.
        db.session.rollback()
        log.warning("reminders: pass rolled back (%s); retried on the next tick", type(exc).__name__)
        return 0
    except IntegrityError:
        # A step that exists already: one first ask at a time, so one bad chain cannot hold up the rest.
        db.session.rollback()
        made = _one_by_one(rows, last_step, rules, now)
    outbox.enqueue_requests([step for step in made if step.channel == "email"], now)
    return len(made)


def _one_by_one(
    rows: Sequence[Any], last_step: dict[int | None, int], rules: dict[int, TriggerRule], now: datetime
) -> list[SurveyRequest]:
    """schedule_due's pass again, each first ask in a transaction of its own; a first ask whose step
    cannot be created ends its plan (logged) instead of failing every pass."""
    made: list[SurveyRequest] = []
    for first, person, answered in rows:
        try:
            steps = _next_step(first, person, bool(answered), last_step.get(first.id, 0) + 1, rules, now)
            db.session.commit()
            made += steps
        except IntegrityError:
            db.session.rollback()
            log.warning("reminders: request %s: its next step exists already; no further reminder", first.id)
            db.session.execute(
                update(SurveyRequest).where(SurveyRequest.id == first.id).values(next_reminder_at=None)
            )
            db.session.commit()
    return made


# --- closing ---------------------------------------------------------------------------------------


def answered_step(request: SurveyRequest | None) -> int | None:
    """answered_after_step of an answer to `request`: the last step of its chain that reached the person.

    None without a request; 0 without a chain (no query). A step reached the person when it was sent
    (or shown, in-app) and did not fail or bounce; a step being sent right now has not yet.
    """
    if request is None:
        return None
    if request.step == 0 and not request.reminder_plan:
        return 0
    first_id = request.reminder_of_id or request.id
    reached = db.session.scalar(
        select(func.max(SurveyRequest.step)).where(
            or_(SurveyRequest.id == first_id, SurveyRequest.reminder_of_id == first_id),
            SurveyRequest.sent_at.is_not(None),
            SurveyRequest.status.not_in([*NEVER_REACHED_STATUSES, RequestStatus.SENDING]),
        )
    )
    return int(reached or 0)


def close_on_answer(response: Response, request: SurveyRequest | None) -> None:
    """Close the person's reminder chains of the answered survey, in the answer's transaction.

    Waiting reminder steps are cancelled (`answered`) and first asks stop scheduling more; an answer
    through a reminder step marks its first ask answered too. One indexed UPDATE, none when the project
    has no reminder plan (cached for HOT_CACHE_SECONDS: the scheduler and the send job check again).
    """
    if request is not None and request.reminder_of_id is not None:
        db.session.execute(
            update(SurveyRequest)
            .where(SurveyRequest.id == request.reminder_of_id, SurveyRequest.responded_at.is_(None))
            .values(responded_at=response.created_at)
            .execution_options(synchronize_session=False)
        )
    elif not has_plans(response.project_id):
        return
    close_chains(
        and_(
            SurveyRequest.project_id == response.project_id,
            SurveyRequest.person_id == response.person_id,
            SurveyRequest.survey_id == response.survey_id,
        ),
        "answered",
    )


# --- the send job's check --------------------------------------------------------------------------


def chains_of(steps: Sequence[SurveyRequest]) -> tuple[dict[int, SurveyRequest], set[int], set[int]]:
    """For a batch's reminder steps: their first asks by id, the ids of every request of their chains
    (which do not count against their own reminders' quiet period), and the first asks answered since
    they were sent (by any channel). Two queries for the whole batch, none without reminder steps.
    """
    first_ids = {step.reminder_of_id for step in steps if step.reminder_of_id is not None}
    if not first_ids:
        return {}, set(), set()
    rows = db.session.execute(
        select(SurveyRequest, _answered_since_sent().label("answered"))
        .where(SurveyRequest.id.in_(first_ids))
        .execution_options(populate_existing=True)
    ).all()
    firsts = {first.id: first for first, _ in rows}
    answered = {first.id for first, was in rows if was or first.responded_at is not None}
    chain = set(firsts) | set(
        db.session.scalars(select(SurveyRequest.id).where(SurveyRequest.reminder_of_id.in_(first_ids)))
    )
    return firsts, chain, answered
