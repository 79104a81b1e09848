"""Email suppressions: addresses that unsubscribed or bounced are never emailed again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from ..extensions import db
from ..models import EmailSuppression, Person, SurveyRequest
from .tx import commit_with_retry
from .unsubscribe_webhooks import dispatch_unsubscribe_event


def _normal(email: str) -> str:
    return email.strip().lower()


def is_suppressed(project_id: int, email: str) -> bool:
    """True when the project's address unsubscribed or bounced."""
    found = db.session.scalar(
        select(EmailSuppression.id)
        .where(EmailSuppression.project_id == project_id, EmailSuppression.email == _normal(email))
        .limit(1)
    )
    return found is not None


def add_suppression(project_id: int, email: str, reason: str, detail: str | None = None) -> bool:
    """Suppress an address for a reason (unsubscribed | bounced); returns False when already so.

    A new unsubscribe is announced to the project's unsubscribe.created webhooks after the commit.
    """
    email = _normal(email)

    def work() -> int | None:
        exists = db.session.scalar(
            select(EmailSuppression.id).where(
                EmailSuppression.project_id == project_id,
                EmailSuppression.email == email,
                EmailSuppression.reason == reason,
            )
        )
        if exists is not None:
            return None
        row = EmailSuppression(project_id=project_id, email=email, reason=reason, detail=(detail or "")[:500])
        db.session.add(row)
        # Emails still waiting for this address are cancelled with it, in the same transaction.
        people = select(Person.id).where(Person.project_id == project_id, Person.email == email)
        db.session.execute(
            update(SurveyRequest)
            .where(
                SurveyRequest.project_id == project_id,
                SurveyRequest.person_id.in_(people),
                SurveyRequest.channel == "email",
                SurveyRequest.status.in_(("scheduled", "pending")),
            )
            .values(status="cancelled", status_reason=reason)
            .execution_options(synchronize_session=False)
        )
        db.session.flush()
        return row.id

    added_id = commit_with_retry(work)
    if added_id is None:
        return False
    if reason == "unsubscribed":
        dispatch_unsubscribe_event(project_id, added_id)
    return True


def list_suppressions(
    project_id: int,
    reason: str,
    *,
    since: datetime | None = None,
    limit: int = 100,
    after_id: int = 0,
    email: str | None = None,
) -> list[EmailSuppression]:
    """One page of a project's suppressions of a reason, oldest first, after an id."""
    query = select(EmailSuppression).where(
        EmailSuppression.project_id == project_id,
        EmailSuppression.reason == reason,
        EmailSuppression.id > after_id,
    )
    if email:
        query = query.where(EmailSuppression.email == _normal(email))
    if since:
        query = query.where(EmailSuppression.created_at >= since)
    return list(db.session.scalars(query.order_by(EmailSuppression.id).limit(limit)))
