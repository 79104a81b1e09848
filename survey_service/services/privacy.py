"""Privacy operations on one person: export everything held about them, and erase it."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from redis import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select, update

from survey_service.core import clock
from survey_service.errors import ApiError
from survey_service.extensions import db, queues
from survey_service.models import AlertRule, Person, Response, SurveyRequest, WebhookDelivery
from survey_service.reporting import rollups
from survey_service.services import hooks, landing, outbox, suppressions

log = logging.getLogger(__name__)


def _iso(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else value


def _row(obj: Any) -> dict[str, Any]:
    """Every column of a row, timestamps as ISO 8601 text."""
    return {c.key: _iso(getattr(obj, c.key)) for c in obj.__table__.columns}


def project_person(project_id: int, person_id: int) -> Person:
    """One of the project's people, or 404."""
    person = db.session.scalar(select(Person).where(Person.id == person_id, Person.project_id == project_id))
    if person is None:
        raise ApiError(404, "not_found", "No such person.")
    return person


def export_person(project_id: int, person_id: int) -> dict[str, Any]:
    """Everything stored about a person: profile, survey requests, responses, webhook deliveries."""
    person = project_person(project_id, person_id)
    responses = db.session.scalars(
        select(Response).where(Response.person_id == person.id).order_by(Response.id)
    )
    requests = db.session.scalars(
        select(SurveyRequest).where(SurveyRequest.person_id == person.id).order_by(SurveyRequest.id)
    )
    deliveries = db.session.scalars(
        select(WebhookDelivery)
        .join(Response, Response.id == WebhookDelivery.response_id)
        .where(Response.person_id == person.id)
        .order_by(WebhookDelivery.id)
    )
    return {
        "person": _row(person),
        "survey_requests": [_row(r) for r in requests],
        "responses": [_row(r) for r in responses],
        "webhook_deliveries": [_row(d) for d in deliveries],
    }


def erase_person(project_id: int, person_id: int) -> dict[str, int]:
    """Delete a person with everything about them; their suppressions keep only a hash of the address.

    The one eraser: `DELETE /api/v1/people/<id>` and Delighted's `DELETE /v1/people/…` both call it
    (test_privacy pins that they leave the same rows and Redis entries).

    Requests, responses and webhook log go with the row; after the commit their queued jobs and link
    views leave Redis too.
    """
    person = project_person(project_id, person_id)
    request_ids = list(
        db.session.scalars(select(SurveyRequest.id).where(SurveyRequest.person_id == person.id))
    )
    delivery_ids = list(
        db.session.scalars(
            select(WebhookDelivery.id)
            .join(Response, Response.id == WebhookDelivery.response_id)
            .where(Response.person_id == person.id)
        )
    )
    counts = {
        "responses": len(
            list(db.session.scalars(select(Response.id).where(Response.person_id == person.id)))
        ),
        "survey_requests": len(request_ids),
        "webhook_deliveries": len(delivery_ids),
    }
    # Foreign keys cascade from the person to requests and responses, and from responses to deliveries.
    # The per-day counts of their days go too (their property values may name them); the trigger has
    # marked those days out of date, so reports scan them until the worker counts them again.
    rollups.forget_person(project_id, person.id)
    suppression_ids = suppressions.forget_address(project_id, person.email) if person.email else []
    rule_ids = list(db.session.scalars(select(AlertRule.id).where(AlertRule.project_id == project_id)))
    db.session.delete(person)
    db.session.commit()
    # Redis only delivers: each of these jobs re-reads rows that are gone now, so this is tidiness
    # (no id of theirs left queued), not what keeps them from being emailed.
    _cancel_jobs(
        [f"webhook-delivery-{i}" for i in delivery_ids]
        + [outbox.job_id(i) for i in request_ids]
        + [job for ids in hooks.suppression_job_ids.values() for job in ids(suppression_ids, rule_ids)]
    )
    landing.forget_views(request_ids)
    return counts


def _cancel_jobs(job_ids: list[str]) -> None:
    """Remove queued jobs; their rows are gone anyway, so a job that slips through finds nothing to do."""
    if not job_ids:
        return
    try:
        connection = queues().redis
        for job_id in job_ids:
            try:
                Job.fetch(job_id, connection=connection).delete()
            except NoSuchJobError:
                continue
    except RedisError:
        log.warning("Redis unavailable: %d queued jobs of an erased person left to expire", len(job_ids))


def anonymise_old_comments(older_than_days: int, project_id: int | None = None) -> int:
    """Blank comments and follow-up notes of responses older than the retention period; return the count."""
    cutoff = clock.now() - timedelta(days=older_than_days)
    conds: list[Any] = [
        Response.created_at < cutoff,
        (Response.comment.is_not(None)) | (Response.followup_notes.is_not(None)),
    ]
    if project_id is not None:
        conds.append(Response.project_id == project_id)
    result = db.session.execute(
        update(Response)
        .where(*conds)
        .values(comment=None, followup_notes=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
