"""Privacy operations on one person: export everything held about them, and erase it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from redis import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import ColumnElement, delete, func, select, update

from survey_service.core import clock
from survey_service.errors import ApiError
from survey_service.extensions import Base, db, queues
from survey_service.models import (
    AlertRule,
    Enrollment,
    Event,
    Person,
    Response,
    ResponseAnalysis,
    ResponseTheme,
    SurveyRequest,
    WebhookDelivery,
    WidgetDismissal,
)
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


@dataclass(frozen=True)
class Owned:
    """One table holding rows about a person: `rows(person_id)` is the WHERE clause picking theirs."""

    name: str  # the key of its rows in the export, and of its count in the erase summary
    model: type[Base]
    rows: Callable[[int], ColumnElement[bool]]


def _of_responses(person_id: int) -> ColumnElement[bool]:
    return WebhookDelivery.response_id.in_(select(Response.id).where(Response.person_id == person_id))


def _analyses(person_id: int) -> ColumnElement[bool]:
    return ResponseAnalysis.response_id.in_(select(Response.id).where(Response.person_id == person_id))


def _themes(person_id: int) -> ColumnElement[bool]:
    return ResponseTheme.response_id.in_(select(Response.id).where(Response.person_id == person_id))


# THE registry of person-owned tables: export shows every one and erase deletes every one, in this
# order (rows pointing at others first). tests/services/test_privacy.py fails when a model with a
# foreign key to people (or to a table listed here) is neither here nor in NOT_PERSON_ROWS.
PERSON_OWNED: tuple[Owned, ...] = (
    Owned("webhook_deliveries", WebhookDelivery, _of_responses),
    # What the theme analysis read in their comments (language, sentiment, themes).
    Owned("response_analyses", ResponseAnalysis, _analyses),
    Owned("response_themes", ResponseTheme, _themes),
    Owned("responses", Response, lambda person_id: Response.person_id == person_id),
    Owned("widget_dismissals", WidgetDismissal, lambda person_id: WidgetDismissal.person_id == person_id),
    Owned("survey_requests", SurveyRequest, lambda person_id: SurveyRequest.person_id == person_id),
    Owned("enrollments", Enrollment, lambda person_id: Enrollment.person_id == person_id),
    Owned("events", Event, lambda person_id: Event.person_id == person_id),
)

# Tables that point at person-owned rows without holding anything about the person (table: why).
NOT_PERSON_ROWS: dict[str, str] = {}


def export_person(project_id: int, person_id: int) -> dict[str, Any]:
    """Everything stored about a person: their profile and their rows of every PERSON_OWNED table."""
    person = project_person(project_id, person_id)
    data: dict[str, Any] = {"person": _row(person)}
    for owned in PERSON_OWNED:
        rows = db.session.scalars(select(owned.model).where(owned.rows(person.id)).order_by(*_key(owned)))
        data[owned.name] = [_row(r) for r in rows]
    return data


def _ids(owned: Owned, person_id: int) -> list[int]:
    return list(db.session.scalars(select(_key(owned)[0]).where(owned.rows(person_id))))


def _key(owned: Owned) -> list[Any]:
    """The table's primary key columns (`id`, or e.g. response_id + theme_id for a theme assignment)."""
    table: Any = owned.model.__table__
    return list(table.primary_key.columns)


def erase_person(project_id: int, person_id: int) -> dict[str, int]:
    """Delete a person with everything about them; their suppressions keep only a hash of the address.

    The one eraser: `DELETE /api/v1/people/<id>` and Delighted's `DELETE /v1/people/…` both call it
    (test_privacy pins that they leave the same rows and Redis entries). Every PERSON_OWNED table is
    emptied of the person's rows, then the person; after the commit their queued jobs and link views
    leave Redis too. Returns how many rows of each table went.
    """
    person = project_person(project_id, person_id)
    ids = {owned.name: _ids(owned, person.id) for owned in PERSON_OWNED}
    # The per-day counts of their days go too (their property values may name them); the trigger has
    # marked those days out of date, so reports scan them until the worker counts them again.
    rollups.forget_person(project_id, person.id)
    suppression_ids = suppressions.forget_address(project_id, person.email) if person.email else []
    rule_ids = list(db.session.scalars(select(AlertRule.id).where(AlertRule.project_id == project_id)))
    for owned in PERSON_OWNED:
        db.session.execute(
            delete(owned.model).where(owned.rows(person.id)).execution_options(synchronize_session=False)
        )
    db.session.delete(person)
    db.session.commit()
    # Redis only delivers: each of these jobs re-reads rows that are gone now, so this is tidiness
    # (no id of theirs left queued), not what keeps them from being emailed.
    _cancel_jobs(
        [f"webhook-delivery-{i}" for i in ids["webhook_deliveries"]]
        + [outbox.job_id(i) for i in ids["survey_requests"]]
        + [
            job
            for job_ids_of in hooks.suppression_job_ids.values()
            for job in job_ids_of(suppression_ids, rule_ids)
        ]
    )
    landing.forget_views(ids["survey_requests"])
    return {name: len(found) for name, found in ids.items()}


def person_row_counts(person_id: int) -> dict[str, int]:
    """How many rows of each PERSON_OWNED table belong to a person (tests and checks)."""
    return {
        owned.name: int(
            db.session.scalar(select(func.count()).select_from(owned.model).where(owned.rows(person_id))) or 0
        )
        for owned in PERSON_OWNED
    }


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
