"""Asking people: schedule a survey request under the fatigue rules, cancel pending ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from survey_service.core import clock, cursors, hot_cache
from survey_service.core.inserts import insert_loaded
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import (
    CANCELLABLE_STATUSES,
    NEVER_REACHED_STATUSES,
    Person,
    Project,
    RequestStatus,
    Response,
    Survey,
    SurveyRequest,
)
from survey_service.services import projects
from survey_service.services.reminder_plans import (
    cancel_for_people,
    plan_for,
    plans_changed,
    stored,
)


def project_survey(project_id: int, survey_id: int | None) -> Survey:
    """The survey an ask uses: this project's survey `survey_id`, or its default NPS survey when None.

    The one lookup for every door that takes a survey id (survey requests and links, triggers,
    recurring enrolments, scheduling); another project's id and an unknown one are the same 404.
    """
    if survey_id is None:
        return projects.default_survey(project_id)
    survey = db.session.get(Survey, survey_id)
    if survey is None or survey.project_id != project_id:
        raise ApiError(404, "not_found", "No such survey in this project.", {"survey_id": survey_id})
    return survey


@dataclass(frozen=True)
class AskedSurvey:
    """What an ask takes of its survey: its id, how long its links last, its reminder plan."""

    id: int
    link_expiry_days: int
    reminders: dict[str, Any] | None


# core/hot_cache's cache of AskedSurvey by (project id, survey id or None for the default survey).
ASKED_SURVEYS = "asked_surveys"


def asked_survey(project_id: int, survey_id: int | None) -> AskedSurvey:
    """project_survey's terms for an ask (the same 404), read again at most every HOT_CACHE_SECONDS.

    Scheduling read the survey for every event. update_survey clears the cache in this process at once;
    a plan changed by another process applies to its asks within HOT_CACHE_SECONDS, as a rule's own does.
    """

    def load() -> AskedSurvey:
        survey = project_survey(project_id, survey_id)
        return AskedSurvey(survey.id, survey.link_expiry_days, survey.reminders)

    return hot_cache.cached(ASKED_SURVEYS, (project_id, survey_id), load)


def list_surveys(project_id: int) -> list[Survey]:
    """The project's surveys, oldest first (a project has a handful: no paging)."""
    return list(db.session.scalars(select(Survey).where(Survey.project_id == project_id).order_by(Survey.id)))


def update_survey(project_id: int, survey_id: int, data: dict[str, Any]) -> Survey:
    """Change a survey's settings (today its reminder plan) and commit (404 for another project's id).

    The plan applies to email asks made from now on: each ask keeps the plan it was made with.
    """
    survey = project_survey(project_id, survey_id)
    if "reminders" in data:
        survey.reminders = stored(data["reminders"])
    db.session.commit()
    plans_changed()
    hot_cache.invalidate(ASKED_SURVEYS)
    db.session.refresh(survey)
    return survey


@dataclass(frozen=True)
class ScheduleOutcome:
    """What scheduling decided: the new request, or why nobody is asked."""

    request: SurveyRequest | None
    skipped_reason: str | None = None


def fatigue_reason(
    project: Project, person_id: int, at: datetime, *, ignore_request_id: int | None = None
) -> str | None:
    """Why this person must not be asked at `at` (quiet period, open request), or None.

    The quiet period is shared by every channel: an answer or an ask within it blocks a new ask.
    """
    ignore = [ignore_request_id] if ignore_request_id is not None else []
    return fatigued_among(project, [person_id], at, ignore).get(person_id)


def fatigued_among(
    project: Project, person_ids: Sequence[int], at: datetime, ignore_request_ids: Sequence[int] = ()
) -> dict[int, str]:
    """fatigue_reason for many people at once (three queries): {person_id: reason} for those blocked.

    `ignore_request_ids`: asks that do not count (the ones being decided, e.g. a batch of sends).
    """
    if not person_ids:
        return {}
    people = list(set(person_ids))
    window_start = at - timedelta(days=project.quiet_period_days)
    answered = select(Response.person_id).where(
        Response.project_id == project.id,
        Response.person_id.in_(people),
        Response.created_at >= window_start,
    )
    asked = select(SurveyRequest.person_id).where(
        SurveyRequest.project_id == project.id,
        SurveyRequest.person_id.in_(people),
        SurveyRequest.sent_at >= window_start,
        SurveyRequest.status.not_in(NEVER_REACHED_STATUSES),
    )
    open_request = select(SurveyRequest.person_id).where(
        SurveyRequest.project_id == project.id,
        SurveyRequest.person_id.in_(people),
        SurveyRequest.status == RequestStatus.SENT,
        SurveyRequest.expires_at > at,
    )
    if ignore_request_ids:
        asked = asked.where(SurveyRequest.id.not_in(list(ignore_request_ids)))
        open_request = open_request.where(SurveyRequest.id.not_in(list(ignore_request_ids)))
    reasons = {person: "open_request" for person in db.session.scalars(open_request.distinct())}
    quiet = set(db.session.scalars(answered.distinct())) | set(db.session.scalars(asked.distinct()))
    reasons.update({person: "quiet_period" for person in quiet})
    return reasons


def schedule_survey(
    project_id: int,
    person_id: int,
    *,
    channel: str = "email",
    send_at: datetime | None = None,
    survey_id: int | None = None,
    trigger_id: int | None = None,
    event_id: int | None = None,
    enrollment_id: int | None = None,
    now: datetime | None = None,
    new_person: bool = False,
    enqueued_at: datetime | None = None,
    reminders: dict[str, Any] | None = None,
) -> ScheduleOutcome:
    """Add a scheduled request for a person unless fatigue rules forbid it; flushes, never commits.

    A queued (not yet sent) request of the same person is superseded by the new one. The caller
    commits and then hands the request to `outbox.enqueue_after_commit`. new_person says the person was
    created in this very transaction: nothing can reference it yet (no answer, no request; another
    transaction cannot see it), so the fatigue and supersede statements, which would find nothing, are
    skipped. `reminders`: the asking rule's or enrolment's own reminder plan (None: the survey's); an email
    ask keeps the resolved plan (services/reminders). `enqueued_at`: stamped in this transaction by a
    caller that enqueues right after its commit (outbox.enqueue_requests takes the stamp back if it cannot).
    """
    now = now or clock.now()
    send_at = max(send_at or now, now)
    person = db.session.get(Person, person_id)
    if person is None or person.project_id != project_id:
        raise LookupError("no such project or person")
    if channel == "email" and not person.email:
        return ScheduleOutcome(None, "no_email")
    if not new_person:
        project = db.session.get(Project, project_id)
        if project is None:
            raise LookupError("no such project or person")
        reason = fatigue_reason(project, person_id, send_at)
        if reason:
            return ScheduleOutcome(None, reason)
        db.session.execute(
            update(SurveyRequest)
            .where(
                SurveyRequest.project_id == project_id,
                SurveyRequest.person_id == person_id,
                SurveyRequest.status == RequestStatus.SCHEDULED,
            )
            .values(status=RequestStatus.SUPERSEDED, status_reason="newer_request")
            .execution_options(synchronize_session=False)
        )
    db.session.flush()  # what the caller left pending goes first, as it did in the ORM's flush of the request
    values = new_request_values(
        project_id,
        channel=channel,
        send_at=send_at,
        survey_id=survey_id,
        trigger_id=trigger_id,
        enrollment_id=enrollment_id,
        enqueued_at=enqueued_at,
        reminders=reminders,
    )
    request = insert_loaded(SurveyRequest, {**values, "person_id": person_id, "event_id": event_id})
    return ScheduleOutcome(request)


def new_request_values(
    project_id: int,
    *,
    channel: str,
    send_at: datetime,
    survey_id: int | None,
    trigger_id: int | None,
    enrollment_id: int | None,
    enqueued_at: datetime | None,
    reminders: dict[str, Any] | None,
) -> dict[str, Any]:
    """Every column of a new scheduled ask but `id`, `person_id` and `event_id` (schedule_survey's
    arguments; a caller inserting the person and event in the same statement links them there)."""
    survey = asked_survey(project_id, survey_id)
    return {
        **_NEW_REQUEST_DEFAULTS,
        "project_id": project_id,
        "survey_id": survey.id,
        # Links stay valid for the survey's expiry counted from when the ask goes out.
        "expires_at": send_at + timedelta(days=survey.link_expiry_days),
        "channel": channel,
        "status": RequestStatus.SCHEDULED,
        "scheduled_at": send_at,
        "trigger_id": trigger_id,
        "enrollment_id": enrollment_id,
        "enqueued_at": enqueued_at,
        "reminder_plan": plan_for(reminders, survey.reminders) if channel == "email" else None,
        "created_at": clock.now(),
    }


# Every column of a new scheduled ask that schedule_survey does not set, as the model's defaults would.
_NEW_REQUEST_DEFAULTS: dict[str, Any] = {
    "status_reason": None,
    "sent_at": None,
    "clicked_at": None,
    "responded_at": None,
    "delivered_at": None,
    "opened_at": None,
    "email_message_id": None,
    "email_error": None,
    "email_interacted_at": None,
    "campaign": None,
    "send_attempts": 0,
    "reminder_of_id": None,
    "step": 0,
    "next_reminder_at": None,
}


def cancel_pending(project_id: int, person_id: int, reason: str = "cancelled") -> int:
    """Cancel every queued request of a person, and their reminders not yet sent; flushes, never
    commits. Returns how many queued requests (reminders not counted)."""
    cancel_for_people(project_id, [person_id], reason)
    result = db.session.execute(
        update(SurveyRequest)
        .where(
            SurveyRequest.project_id == project_id,
            SurveyRequest.person_id == person_id,
            SurveyRequest.status.in_(CANCELLABLE_STATUSES),
        )
        .values(status=RequestStatus.CANCELLED, status_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def cancel_pending_of_person(project_id: int, person_id: int, reason: str = "api") -> int:
    """Cancel the queued requests of one of the project's people and commit (404 for another's)."""
    person = db.session.get(Person, person_id)
    if person is None or person.project_id != project_id:
        raise ApiError(404, "not_found", "No such person.")
    count = cancel_pending(project_id, person.id, reason=reason)
    db.session.commit()
    return count


def list_requests(
    project_id: int,
    *,
    person_id: int | None = None,
    status: str | None = None,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[SurveyRequest], str | None]:
    """One page of the project's survey requests, newest first, optionally of one person and in one
    status, and the cursor of the next page."""
    stmt = select(SurveyRequest).where(SurveyRequest.project_id == project_id)
    if person_id is not None:
        stmt = stmt.where(SurveyRequest.person_id == person_id)
    if status is not None:
        stmt = stmt.where(SurveyRequest.status == status)
    return cursors.page(
        stmt, [SurveyRequest.id], scope=f"survey_requests:{project_id}", limit=limit, cursor=cursor
    )
