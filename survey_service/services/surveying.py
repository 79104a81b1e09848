"""Scheduling survey requests for a person, and cancelling the ones not yet sent.

Minimal stand-in with the interface of the trigger machinery: it records the request only
(no send is enqueued, no fatigue rules); the full version replaces this module.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..extensions import db
from ..models import Person, SurveyRequest, utcnow
from . import projects

SCHEDULED = "scheduled"
CANCELLED = "cancelled"


def schedule_survey(
    project_id: int,
    person_id: int,
    *,
    channel: str = "email",
    delay_seconds: int = 0,
    survey_id: int | None = None,
    now: datetime | None = None,
) -> SurveyRequest | None:
    """Schedule a survey of the person after delay_seconds; None when they must not be surveyed. Commits."""
    person = db.session.scalar(select(Person).where(Person.id == person_id, Person.project_id == project_id))
    if person is None or (channel == "email" and not person.email):
        return None
    moment = now or utcnow()
    request = SurveyRequest(
        project_id=project_id,
        survey_id=survey_id or projects.default_survey(project_id).id,
        person_id=person_id,
        channel=channel,
        status=SCHEDULED,
        scheduled_at=moment + timedelta(seconds=max(delay_seconds, 0)),
    )
    db.session.add(request)
    db.session.commit()
    return request


def cancel_pending(project_id: int, person_id: int) -> int:
    """Cancel the person's scheduled, not yet sent requests; returns how many. Commits."""
    result = db.session.execute(
        update(SurveyRequest)
        .where(
            SurveyRequest.project_id == project_id,
            SurveyRequest.person_id == person_id,
            SurveyRequest.status == SCHEDULED,
        )
        .values(status=CANCELLED)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
