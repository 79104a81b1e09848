"""RQ job functions: primitive arguments, re-read state from the database, safe to run twice."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from flask import current_app
from rq import get_current_job
from sqlalchemy import CursorResult, update
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from survey_service.core import clock
from survey_service.extensions import db
from survey_service.mail.compose import compose_survey_email
from survey_service.mail.log_only import log_unsent
from survey_service.mail.smtp import DeliveryError, deliver, parse_smtp_url
from survey_service.models import (
    WAITING_STATUSES,
    Person,
    Project,
    RequestStatus,
    Survey,
    SurveyRequest,
)
from survey_service.services.suppressions import add_suppression, is_suppressed
from survey_service.services.surveying import fatigue_reason
from survey_service.themes import service as themes

log = logging.getLogger(__name__)


def _finish(request_id: int, **values: object) -> None:
    db.session.execute(update(SurveyRequest).where(SurveyRequest.id == request_id).values(**values))
    db.session.commit()


# After the SMTP server accepted a message, how long to keep trying to record it as sent while the
# database is away (a restart): giving up means a later retry sends the same message again.
RECORD_SENT_PATIENCE = 60.0


def _record_sent(request_id: int, **values: object) -> None:
    """Record a delivered send, retrying through a database outage of up to RECORD_SENT_PATIENCE."""
    deadline = time.monotonic() + RECORD_SENT_PATIENCE
    pause = 0.25
    while True:
        try:
            _finish(request_id, **values)
            return
        except (OperationalError, InterfaceError) as exc:
            db.session.rollback()
            if time.monotonic() + pause > deadline:
                raise
            log.warning("request %s sent; database away (%s), retrying", request_id, type(exc).__name__)
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def _fail_unsendable(request_id: int, why: str) -> None:
    """Mark a request whose email can never be built or handed over `failed` (a retry fails the same way)."""
    db.session.rollback()
    db.session.execute(
        update(SurveyRequest)
        .where(
            SurveyRequest.id == request_id,
            SurveyRequest.status.in_((*WAITING_STATUSES, RequestStatus.SENDING)),
        )
        .values(status=RequestStatus.FAILED, sent_at=None, email_error=why)
    )
    db.session.commit()


def _is_last_attempt() -> bool | None:
    """True on the job's last try, False when RQ will retry, None outside a worker."""
    job = get_current_job()
    if job is None:
        return None
    return not job.retries_left


# RQ's scheduler keeps due times in whole seconds and moves jobs to the queue up to a second
# early; a send that arrives that early waits out the rest instead of going out before its time.
EARLY_WAIT_MAX = 1.5


def _wait_until_due(due: datetime | None) -> datetime:
    """Sleep until `due` if it is less than EARLY_WAIT_MAX seconds away; return the time after."""
    now = clock.now()
    if due is not None:
        early = (due.replace(tzinfo=due.tzinfo or UTC) - now).total_seconds()
        if 0 < early <= EARLY_WAIT_MAX:
            time.sleep(early)
            now = clock.now()
    return now


def _not_to_send(request: SurveyRequest) -> str | None:
    """Why a request is not (or no longer) one to send by email, or None."""
    if request.channel != "email":
        return "not_email"
    if request.responded_at is not None:
        return "skipped_answered"
    # Only a waiting request may be sent; anything else (sending, sent, cancelled, answered, bounced,
    # suppressed, expired, failed) is final for the email job.
    if request.status not in WAITING_STATUSES:
        return f"skipped_{request.status}"
    return None


def _skipped_at_send_time(
    request_id: int, request: SurveyRequest, person_id: int, now: datetime
) -> str | None:
    """Finish a request that expired or that the fatigue rules now block; say why (None: send it)."""
    if request.expires_at is not None and request.expires_at <= now:
        _finish(request_id, status=RequestStatus.EXPIRED)
        return "expired"
    if request.trigger_id is not None or request.enrollment_id is not None:
        # Automated asks re-check the fatigue rules at send time: the person may have answered
        # through another channel while this one waited for its delay.
        project = db.session.get(Project, request.project_id)
        assert project is not None
        reason = fatigue_reason(project, person_id, now, ignore_request_id=request_id)
        if reason:
            _finish(request_id, status=RequestStatus.SKIPPED, status_reason=reason)
            return f"skipped_{reason}"
    return None


def send_survey_email(request_id: int) -> str:
    """Send the survey email of one request at most once; returns a short status."""

    request = db.session.get(SurveyRequest, request_id)
    if request is None:
        return "missing"
    not_to_send = _not_to_send(request)
    if not_to_send:
        return not_to_send
    person = db.session.get(Person, request.person_id)
    if person is None or not person.email:
        _finish(request_id, status=RequestStatus.FAILED, email_error="the person has no email address")
        return "no_address"
    if is_suppressed(request.project_id, person.email):
        _finish(request_id, status=RequestStatus.SUPPRESSED)
        return "suppressed"
    now = _wait_until_due(request.scheduled_at)
    skipped = _skipped_at_send_time(request_id, request, person.id, now)
    if skipped:
        return skipped

    survey = db.session.get(Survey, request.survey_id)
    project = db.session.get(Project, request.project_id)
    assert survey is not None and project is not None
    # Compose before claiming: a message that cannot be built (bad data) fails the request here,
    # instead of crashing after the claim and leaving it in `sending` for the relay to retry forever.
    try:
        message = compose_survey_email(request, person, survey, project)
    except SQLAlchemyError:
        raise
    except Exception:
        log.exception("request %s: the email could not be composed", request_id)
        _fail_unsendable(request_id, "the email could not be composed")
        return "failed"

    # Claim the request before sending: only the job whose UPDATE matched sends, so two runs of
    # this job (a duplicate enqueue, a retry racing a slow worker) can never send two emails.
    result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        update(SurveyRequest)
        .where(SurveyRequest.id == request_id, SurveyRequest.status.in_(WAITING_STATUSES))
        .values(status=RequestStatus.SENDING, sent_at=now)
    )
    claimed = result.rowcount
    db.session.commit()
    if claimed != 1:
        return "already_claimed"
    return _deliver_claimed(request_id, request.project_id, person.email, message)


def _deliver_claimed(request_id: int, project_id: int, address: str, message: EmailMessage) -> str:
    """Hand a claimed request's message to SMTP (or the log) and record the outcome; returns it."""

    message_id = message["Message-ID"]
    smtp_url = current_app.config.get("SMTP_URL")
    if not smtp_url:
        log_unsent(log, message, f"request-{request_id}")
        _finish(request_id, status=RequestStatus.SENT, email_message_id=message_id)
        return "logged"
    try:
        deliver(message, parse_smtp_url(smtp_url))
    except (ValueError, TypeError, LookupError) as err:
        # The message cannot be encoded for SMTP (e.g. an address the server cannot take): permanent.
        log.warning("request %s: the email cannot be sent: %s", request_id, type(err).__name__)
        _fail_unsendable(request_id, f"the email cannot be sent ({type(err).__name__})")
        return "failed"
    except DeliveryError as err:
        if err.permanent:
            status = RequestStatus.BOUNCED if err.bounce else RequestStatus.FAILED
            _finish(request_id, status=status, email_error=str(err)[:500])
            if err.bounce:
                add_suppression(project_id, address, "bounced", str(err))
            log.warning("request %s: permanent delivery failure: %s", request_id, err)
            return str(status)
        last = _is_last_attempt()
        # A temporary failure releases the claim so the retry can claim it again.
        _finish(
            request_id,
            status=RequestStatus.FAILED if last else "pending",
            sent_at=None,
            email_error=str(err)[:500],
        )
        log.warning("request %s: temporary delivery failure: %s", request_id, err)
        if last:
            return "failed"
        raise
    _record_sent(
        request_id,
        status=RequestStatus.SENT,
        delivered_at=clock.now(),
        email_message_id=message_id,
        email_error=None,
    )
    return "sent"


def reapply_themes(project_id: int) -> int:
    """Apply a project's current theme rules to all its comments (after a rule change); idempotent."""
    return themes.reapply(project_id)
