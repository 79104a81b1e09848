"""RQ job functions: primitive arguments, re-read state from the database, safe to run twice."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from rq import get_current_job
from sqlalchemy import CursorResult, update
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from survey_service.extensions import db
from survey_service.mail.compose import compose_survey_email
from survey_service.mail.log_only import log_unsent
from survey_service.mail.smtp import DeliveryError, deliver, parse_smtp_url
from survey_service.models import Person, Project, Survey, SurveyRequest, utcnow
from survey_service.services.suppressions import add_suppression, is_suppressed
from survey_service.services.surveying import fatigue_reason

log = logging.getLogger(__name__)

# A request in one of these states may be sent; anything else (sending, sent, cancelled, answered,
# bounced, suppressed, expired, failed) is final for the email job.
CLAIMABLE = ("pending", "scheduled", "queued")


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
        .where(SurveyRequest.id == request_id, SurveyRequest.status.in_((*CLAIMABLE, "sending")))
        .values(status="failed", sent_at=None, email_error=why)
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
    now = utcnow()
    if due is not None:
        early = (due.replace(tzinfo=due.tzinfo or UTC) - now).total_seconds()
        if 0 < early <= EARLY_WAIT_MAX:
            time.sleep(early)
            now = utcnow()
    return now


def send_survey_email(request_id: int) -> str:
    """Send the survey email of one request at most once; returns a short status."""
    request = db.session.get(SurveyRequest, request_id)
    if request is None:
        return "missing"
    if request.channel != "email":
        return "not_email"
    if request.responded_at is not None:
        return "skipped_answered"
    if request.status not in CLAIMABLE:
        return f"skipped_{request.status}"
    person = db.session.get(Person, request.person_id)
    if person is None or not person.email:
        _finish(request_id, status="failed", email_error="the person has no email address")
        return "no_address"
    if is_suppressed(request.project_id, person.email):
        _finish(request_id, status="suppressed")
        return "suppressed"
    now = _wait_until_due(request.scheduled_at)
    if request.expires_at is not None and request.expires_at <= now:
        _finish(request_id, status="expired")
        return "expired"
    if request.trigger_id is not None or request.enrollment_id is not None:
        # Automated asks re-check the fatigue rules at send time: the person may have answered
        # through another channel while this one waited for its delay.
        project = db.session.get(Project, request.project_id)
        assert project is not None
        reason = fatigue_reason(project, person.id, now, ignore_request_id=request_id)
        if reason:
            _finish(request_id, status="skipped", status_reason=reason)
            return f"skipped_{reason}"

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
    message_id = message["Message-ID"]

    # Claim the request before sending: only the job whose UPDATE matched sends, so two runs of
    # this job (a duplicate enqueue, a retry racing a slow worker) can never send two emails.
    result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        update(SurveyRequest)
        .where(SurveyRequest.id == request_id, SurveyRequest.status.in_(CLAIMABLE))
        .values(status="sending", sent_at=now)
    )
    claimed = result.rowcount
    db.session.commit()
    if claimed != 1:
        return "already_claimed"

    smtp_url = current_app.config.get("SMTP_URL")
    if not smtp_url:
        log_unsent(log, message)
        _finish(request_id, status="sent", email_message_id=message_id)
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
            status = "bounced" if err.bounce else "failed"
            _finish(request_id, status=status, email_error=str(err)[:500])
            if err.bounce:
                add_suppression(request.project_id, person.email, "bounced", str(err))
            log.warning("request %s: permanent delivery failure: %s", request_id, err)
            return status
        last = _is_last_attempt()
        # A temporary failure releases the claim so the retry can claim it again.
        _finish(
            request_id,
            status="failed" if last else "pending",
            sent_at=None,
            email_error=str(err)[:500],
        )
        log.warning("request %s: temporary delivery failure: %s", request_id, err)
        if last:
            return "failed"
        raise
    _record_sent(
        request_id, status="sent", delivered_at=utcnow(), email_message_id=message_id, email_error=None
    )
    return "sent"
