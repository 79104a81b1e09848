"""Campaigns: one survey email to every person of a project (a quarterly relationship NPS), by name.

A campaign is its requests: each is an ordinary email request carrying the campaign's name, created
in chunks (each committed, then enqueued), so the workers start sending while the rest is created.
Starting a campaign again with the same name asks only the people it has not asked yet (an
interrupted start resumes). The fatigue rules and suppressions are checked when each email is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import aliased

from survey_service.core import clock
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Person, RequestStatus, SurveyRequest
from survey_service.services import outbox
from survey_service.services.reminder_plans import plan_fields, plan_for
from survey_service.services.surveying import project_survey

CHUNK = 1000
MAX_NAME = 64


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ApiError(422, "validation_error", f"A campaign name has 1 to {MAX_NAME} characters.")
    return name


def _unasked(project_id: int, name: str) -> Select[int]:
    asked = aliased(SurveyRequest)
    return select(Person.id).where(
        Person.project_id == project_id,
        Person.email.is_not(None),
        ~exists().where(asked.person_id == Person.id, asked.project_id == project_id, asked.campaign == name),
    )


def campaign_size(project_id: int, name: str) -> int:
    """How many people a start of this campaign would ask now (those with an address, not yet asked)."""
    query = _unasked(project_id, _check_name(name))
    return int(db.session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def start_campaign(project_id: int, name: str, survey_id: int | None = None) -> Iterator[int]:
    """Create the campaign's requests chunk by chunk (commit, then enqueue); yields each chunk's size."""
    name = _check_name(name)
    survey = project_survey(project_id, survey_id)
    survey_id, expiry_days = survey.id, survey.link_expiry_days
    plan = plan_fields(plan_for(None, survey.reminders))  # resolved once for the whole campaign
    last_person = 0
    while True:
        people = db.session.scalars(
            _unasked(project_id, name).where(Person.id > last_person).order_by(Person.id).limit(CHUNK)
        ).all()
        if not people:
            return
        now = clock.now()
        requests = [
            SurveyRequest(
                project_id=project_id,
                survey_id=survey_id,
                person_id=person_id,
                channel="email",
                status=RequestStatus.PENDING,
                campaign=name,
                created_at=now,
                scheduled_at=now,
                expires_at=now + timedelta(days=expiry_days),
                **plan,
            )
            for person_id in people
        ]
        db.session.add_all(requests)
        db.session.flush()
        ids = [request.id for request in requests]
        db.session.commit()
        # After the commit (a Redis outage leaves them to the relay); one SELECT reloads the chunk.
        outbox.enqueue_requests(
            db.session.scalars(select(SurveyRequest).where(SurveyRequest.id.in_(ids))).all()
        )
        last_person = people[-1]
        yield len(requests)
