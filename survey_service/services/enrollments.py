"""Recurring relationship NPS: enrolled people are asked every interval_days, fatigue rules apply."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from survey_service.core import clock, cursors
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Enrollment, SurveyRequest
from survey_service.services import outbox, reminder_plans
from survey_service.services.people import upsert_person
from survey_service.services.surveying import project_survey, schedule_survey
from survey_service.services.tx import commit_with_retry

RETRY_BLOCKED_AFTER = timedelta(days=1)
BATCH = 200


def enroll(project_id: int, data: dict[str, Any], now: datetime | None = None) -> Enrollment:
    """Enrol (or re-enrol) a person in recurring surveys; the first ask is at first_at or now."""
    now = now or clock.now()

    def work() -> Enrollment:
        person, _ = upsert_person(project_id, data["person"])
        survey_id = project_survey(project_id, data.get("survey_id")).id
        enrollment = db.session.scalar(
            select(Enrollment).where(
                Enrollment.project_id == project_id,
                Enrollment.person_id == person.id,
                Enrollment.survey_id == survey_id,
            )
        )
        if enrollment is None:
            enrollment = Enrollment(project_id=project_id, person_id=person.id, survey_id=survey_id)
            db.session.add(enrollment)
        enrollment.channel = data.get("channel", "email")
        enrollment.interval_days = data["interval_days"]
        enrollment.next_run_at = data.get("first_at") or now
        enrollment.active = True
        if "reminders" in data:
            enrollment.reminders = reminder_plans.stored(data["reminders"])
            if data["reminders"] is not None and reminder_plans.normalized(data["reminders"]) is None:
                db.session.flush()
                reminder_plans.cancel_for_source(project_id, enrollment_id=enrollment.id)
        db.session.flush()
        return enrollment

    enrollment = commit_with_retry(work)
    reminder_plans.plans_changed()
    return enrollment


def active_enrollments(
    project_id: int, *, limit: int = 100, cursor: str | None = None
) -> tuple[list[Enrollment], str | None]:
    """One page of the project's active recurring enrolments, oldest first, and the next page's cursor."""
    stmt = select(Enrollment).where(Enrollment.project_id == project_id, Enrollment.active.is_(True))
    return cursors.page(
        stmt, [Enrollment.id], scope=f"recurring:{project_id}", descending=False, limit=limit, cursor=cursor
    )


def unenroll(project_id: int, enrollment_id: int) -> None:
    """Stop a recurring survey (404 for another project's id); its reminders not yet sent are cancelled."""
    enrollment = db.session.get(Enrollment, enrollment_id)
    if enrollment is None or enrollment.project_id != project_id:
        raise ApiError(404, "not_found", "No such enrollment.")
    enrollment.active = False
    reminder_plans.cancel_for_source(project_id, enrollment_id=enrollment.id)
    db.session.commit()


def run_due(now: datetime | None = None) -> int:
    """Schedule the asks of every due enrollment; returns how many requests were scheduled."""
    now = now or clock.now()
    due = db.session.scalars(
        select(Enrollment)
        .where(Enrollment.active.is_(True), Enrollment.next_run_at <= now)
        .order_by(Enrollment.next_run_at)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    scheduled: list[SurveyRequest] = []
    for enrollment in due:
        outcome = schedule_survey(
            enrollment.project_id,
            enrollment.person_id,
            channel=enrollment.channel,
            send_at=now,
            survey_id=enrollment.survey_id,
            enrollment_id=enrollment.id,
            now=now,
            reminders=enrollment.reminders,
        )
        if outcome.request is not None:
            scheduled.append(outcome.request)
            enrollment.next_run_at = now + timedelta(days=enrollment.interval_days)
        else:
            # Blocked by the quiet period or an open ask: look again tomorrow.
            enrollment.next_run_at = now + RETRY_BLOCKED_AFTER
    db.session.commit()
    outbox.enqueue_requests(scheduled)
    return len(scheduled)
