"""Email suppressions: addresses that unsubscribed or bounced are never emailed again.

An erased person's suppressions keep only a keyed hash of the address (see `forget_address`): the
address stays suppressed when it comes back, but the row no longer says who it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flask import current_app
from sqlalchemy import ColumnElement, or_, select, update

from survey_service.core import cursors, keys
from survey_service.extensions import db
from survey_service.models import WAITING_STATUSES, EmailSuppression, Person, RequestStatus, SurveyRequest
from survey_service.services import hooks, reminder_plans
from survey_service.services.tx import commit_with_retry


def _normal(email: str) -> str:
    return email.strip().lower()


def email_hashes(email: str) -> list[str]:
    """The keyed hashes an erased address may be stored under: one per key of SECRET_KEY and its fallbacks."""
    cfg = current_app.config
    normal = _normal(email)
    return [
        keys.keyed_hash(normal, secret, keys.SUPPRESSED_EMAIL)
        for secret in [cfg["SECRET_KEY"], *(cfg.get("SECRET_KEY_FALLBACKS") or [])]
    ]


def _names(email: str) -> ColumnElement[bool]:
    """A suppression row of this address, whether it still holds it or only its hash."""
    return or_(EmailSuppression.email == _normal(email), EmailSuppression.email_hash.in_(email_hashes(email)))


def is_suppressed(project_id: int, email: str) -> bool:
    """True when the project's address unsubscribed or bounced (erased people's addresses included)."""
    found = db.session.scalar(
        select(EmailSuppression.id).where(EmailSuppression.project_id == project_id, _names(email)).limit(1)
    )
    return found is not None


def suppressed_among(project_id: int, emails: Iterable[str]) -> set[str]:
    """The addresses of a batch (normalised) that unsubscribed or bounced, erased people's included."""
    by_hash = {digest: _normal(e) for e in emails for digest in email_hashes(e)}
    normals = set(by_hash.values())
    if not normals:
        return set()
    rows = db.session.execute(
        select(EmailSuppression.email, EmailSuppression.email_hash).where(
            EmailSuppression.project_id == project_id,
            or_(EmailSuppression.email.in_(normals), EmailSuppression.email_hash.in_(list(by_hash))),
        )
    ).all()
    found: set[str] = set()
    for email, digest in rows:
        if email in normals:
            found.add(email)
        elif digest in by_hash:
            found.add(by_hash[digest])
    return found


def forget_address(project_id: int, email: str) -> list[int]:
    """Blank an erased person's address on their suppressions, keeping its keyed hash; returns the row ids.

    Runs in the caller's transaction. The detail goes too: a bounce's SMTP text often quotes the address.
    """
    normal = _normal(email)
    ids = list(
        db.session.scalars(
            select(EmailSuppression.id).where(
                EmailSuppression.project_id == project_id, EmailSuppression.email == normal
            )
        )
    )
    if ids:
        db.session.execute(
            update(EmailSuppression)
            .where(EmailSuppression.id.in_(ids))
            .values(email=None, email_hash=email_hashes(normal)[0], detail=None)
            .execution_options(synchronize_session=False)
        )
    return ids


def add_suppression(project_id: int, email: str, reason: str, detail: str | None = None) -> bool:
    """Suppress an address for a reason (unsubscribed | bounced); returns False when already so.

    A new unsubscribe is announced to the project's unsubscribe.created webhooks after the commit.
    """
    email = _normal(email)

    def work() -> int | None:
        found = list(
            db.session.scalars(
                select(EmailSuppression).where(
                    EmailSuppression.project_id == project_id,
                    _names(email),
                    EmailSuppression.reason == reason,
                )
            )
        )
        if found:
            if all(row.email is None for row in found):
                # An erased person's address given again: the caller holds it anyway, so the row may too.
                found[0].email = email
                db.session.flush()
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
                SurveyRequest.status.in_(WAITING_STATUSES),
            )
            .values(status=RequestStatus.CANCELLED, status_reason=reason)
            .execution_options(synchronize_session=False)
        )
        # Their reminders too, in-app ones included, and no further reminder is scheduled.
        reminder_plans.cancel_for_people(project_id, people, reason)
        db.session.flush()
        return row.id

    added_id = commit_with_retry(work)
    if added_id is None:
        return False
    if reason == "unsubscribed":
        for listener in hooks.unsubscribe_listeners.values():  # Delighted's unsubscribe.created webhook
            listener(project_id, added_id)
    return True


def list_suppressions(
    project_id: int,
    reason: str,
    *,
    since: datetime | None = None,
    limit: int = 100,
    email: str | None = None,
) -> list[EmailSuppression]:
    """The first `limit` suppressions of a project and reason holding an address, oldest first."""
    query = select(EmailSuppression).where(
        EmailSuppression.project_id == project_id,
        EmailSuppression.reason == reason,
        # Erased people's rows have no address to list; they still suppress (see is_suppressed).
        EmailSuppression.email.is_not(None),
    )
    if email:
        query = query.where(EmailSuppression.email == _normal(email))
    if since:
        query = query.where(EmailSuppression.created_at >= since)
    return list(db.session.scalars(query.order_by(EmailSuppression.id).limit(limit)))


def page_suppressions(
    project_id: int, reason: str, *, since: datetime | None = None, limit: int, cursor: str | None = None
) -> tuple[list[EmailSuppression], str | None]:
    """One page of a project's suppressions of a reason holding an address, oldest first (the API's list)."""
    query = select(EmailSuppression).where(
        EmailSuppression.project_id == project_id,
        EmailSuppression.reason == reason,
        EmailSuppression.email.is_not(None),  # erased people's rows: nothing to list (see list_suppressions)
    )
    if since:
        query = query.where(EmailSuppression.created_at >= since)
    scope = f"{reason}:{project_id}"
    order = [EmailSuppression.id]
    return cursors.page(query, order, scope=scope, limit=limit, cursor=cursor, descending=False)
