"""Email and link survey requests: create them, hand out their signed links, enqueue the send."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from survey_service.core import clock
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.mail.links import landing_url, unsubscribe_url
from survey_service.models import Person, Project, RequestStatus, SurveyRequest
from survey_service.services import outbox
from survey_service.services.people import find_person, upsert_person
from survey_service.services.reminder_plans import plan_fields, plan_for
from survey_service.services.suppressions import is_suppressed
from survey_service.services.surveying import fatigue_reason, project_survey
from survey_service.services.tx import commit_with_retry

log = logging.getLogger(__name__)


def _new_request(project_id: int, person_id: int, survey_id: int | None, channel: str) -> SurveyRequest:
    person = db.session.get(Person, person_id)
    if person is None or person.project_id != project_id:
        raise ApiError(404, "not_found", "No such person.", {"person_id": person_id})
    survey = project_survey(project_id, survey_id)
    now = clock.now()
    request = SurveyRequest(
        project_id=project_id,
        survey_id=survey.id,
        person_id=person.id,
        channel=channel,
        status=RequestStatus.PENDING,
        created_at=now,
        scheduled_at=now,
        expires_at=now + timedelta(days=survey.link_expiry_days),
        # An email ask keeps its survey's reminder plan (services/reminders); a link's sender is the product.
        **plan_fields(plan_for(None, survey.reminders) if channel == "email" else None),
    )
    db.session.add(request)
    db.session.flush()
    return request


def create_email_request(project_id: int, person_id: int, survey_id: int | None = None) -> SurveyRequest:
    """Create (and commit) a pending email survey request for a person; does not enqueue."""
    return commit_with_retry(lambda: _new_request(project_id, person_id, survey_id, "email"))


def enqueue_survey_email(request_id: int, delay_seconds: int = 0) -> str:
    """Enqueue send_survey_email for a committed request now; raises if Redis is unavailable."""
    request = db.session.get(SurveyRequest, request_id)
    if request is None:
        raise LookupError(f"no survey request {request_id}")
    due = clock.now() + timedelta(seconds=delay_seconds) if delay_seconds > 0 else None
    job = outbox.enqueue_send(request.id, request.project_id, due)
    request.enqueued_at = clock.now()
    db.session.commit()
    return job


def send_email_survey(
    project_id: int, person_id: int, survey_id: int | None = None, delay_seconds: int = 0
) -> SurveyRequest:
    """Create and commit an email request for a known person, then enqueue its send (after commit)."""
    request = create_email_request(project_id, person_id, survey_id)
    enqueue_survey_email(request.id, delay_seconds)
    return request


# What a refused ask answers, per fatigue rule (surveying.fatigue_reason); `"force": true` overrides both.
FATIGUE_MESSAGES = {
    "quiet_period": "This person answered or was asked within the project's quiet period.",
    "open_request": "This person has an unanswered survey that is still open.",
}


def request_email_survey(
    project_id: int,
    person_data: dict[str, Any],
    survey_id: int | None = None,
    delay_seconds: int = 0,
    *,
    force: bool = False,
) -> SurveyRequest:
    """Upsert the person, create an email request, commit, then enqueue its send (now or later).

    The fatigue rules every channel shares (quiet period, open request) refuse the ask with a 409
    naming the rule, and nothing is written; `force=True` asks anyway.
    """
    email = person_data.get("email")
    if not email:
        existing = None
        if person_data.get("external_id"):
            existing = find_person(project_id, person_data["external_id"], None)
        email = existing.email if existing is not None else None
    if not email:
        raise ApiError(
            422,
            "validation_error",
            "An email survey needs the person's email.",
            {"person": {"email": ["Missing."]}},
        )
    if is_suppressed(project_id, email):
        raise ApiError(409, "email_suppressed", "This address unsubscribed or bounced.", {"email": email})

    def work() -> SurveyRequest:
        person, _ = upsert_person(project_id, person_data)
        if not force:
            _refuse_if_fatigued(project_id, person.id, clock.now() + timedelta(seconds=delay_seconds))
        request = _new_request(project_id, person.id, survey_id, "email")
        if delay_seconds:
            request.scheduled_at = clock.now() + timedelta(seconds=delay_seconds)
        return request

    request = commit_with_retry(work)
    # Saved first: if Redis is down now, the outbox relay enqueues it when Redis is back.
    outbox.enqueue_requests([request])
    return request


def _refuse_if_fatigued(project_id: int, person_id: int, send_at: datetime) -> None:
    project = db.session.get(Project, project_id)
    assert project is not None
    reason = fatigue_reason(project, person_id, send_at)
    if reason is not None:
        raise ApiError(
            409,
            reason,
            f'{FATIGUE_MESSAGES[reason]} Send "force": true to ask anyway.',
            {"reason": reason, "quiet_period_days": project.quiet_period_days, "person_id": person_id},
        )


def create_link_request(
    project_id: int, person_data: dict[str, Any], survey_id: int | None = None
) -> SurveyRequest:
    """Upsert the person and create a "link" request whose links a product sends itself."""

    def work() -> SurveyRequest:
        person, _ = upsert_person(project_id, person_data)
        request = _new_request(project_id, person.id, survey_id, "link")
        request.status, request.sent_at = RequestStatus.SENT, clock.now()
        return request

    return commit_with_retry(work)


def survey_links(request: SurveyRequest) -> dict[str, Any]:
    """The request's links as POST /api/v1/survey_links returns them."""
    expires: datetime | None = request.expires_at
    return {
        "id": request.id,
        "url": landing_url(request),
        "score_urls": {str(n): landing_url(request, n) for n in range(11)},
        "unsubscribe_url": unsubscribe_url(request),
        "expires_at": expires,
    }


def record_open(request_id: int) -> None:
    """Note the first open of a request's email (the optional open pixel); later opens change nothing."""
    db.session.execute(
        update(SurveyRequest)
        .where(SurveyRequest.id == request_id, SurveyRequest.opened_at.is_(None))
        .values(opened_at=clock.now())
    )
    db.session.commit()


def get_request(project_id: int, request_id: int) -> SurveyRequest:
    """One survey request of a project, or 404."""
    request = db.session.scalar(
        select(SurveyRequest).where(SurveyRequest.id == request_id, SurveyRequest.project_id == project_id)
    )
    if request is None:
        raise ApiError(404, "not_found", "No such survey request.")
    return request
