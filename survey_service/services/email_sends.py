"""The one send path of survey emails: claim due requests in batches, send them, record each outcome.

A send job wakes up for one request (`send_request`); it claims that request together with other
due email requests (up to SEND_BATCH_SIZE; `FOR UPDATE SKIP LOCKED` on PostgreSQL, SQLite's single
writer elsewhere), so two workers never hold the same request. Each claimed request is re-checked
(address, suppression, expiry, fatigue rules), its message is made from a template rendered once per
survey, project and language, and it goes over the worker process's pooled SMTP session, within the
operator's send rates. Each accepted message is recorded at once; whatever a batch could not try is
released for a later one. The job then keeps claiming batches for up to SEND_DRAIN_SECONDS, so the
other requests' own jobs find them sent and return at once.

Exactly once: only the claim's winner sends; the claim is recorded before the SMTP conversation and
the result right after the server's answer. A worker killed in between leaves the claim to expire
(outbox.release_stale_claims), and the resend carries the same Message-ID.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import Connection, CursorResult, or_, select, text, update
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from survey_service.core import clock
from survey_service.core.send_rate import SendRateLimiter
from survey_service.extensions import db, queues
from survey_service.mail.compose import OutgoingMessage, Templates, as_email
from survey_service.mail.log_only import log_unsent
from survey_service.mail.smtp import DeliveryError, SmtpSession, parse_smtp_url, pooled_session
from survey_service.models import WAITING_STATUSES, Person, Project, RequestStatus, Survey, SurveyRequest
from survey_service.services import outbox, reminder_plans, reminders
from survey_service.services.suppressions import add_suppression, suppressed_among
from survey_service.services.surveying import fatigued_among

log = logging.getLogger(__name__)

# After the SMTP server accepted a message, how long to keep trying to record it as sent while the
# database is away (a restart): giving up means a later retry sends the same message again.
RECORD_SENT_PATIENCE = 60.0
# RQ's scheduler keeps due times in whole seconds and moves jobs to the queue up to a second
# early; a send that arrives that early waits out the rest instead of going out before its time.
EARLY_WAIT_MAX = 1.5
# A batch stops trying new messages after this share of SEND_CLAIM_TIMEOUT, so the relay never
# takes a claim back from a worker that is still sending it.
BATCH_TIME_SHARE = 1 / 3


@dataclass
class BatchResult:
    """What one batch did: each claimed request's outcome, and whether the SMTP server is unusable now."""

    outcomes: dict[int, str] = field(default_factory=dict)
    server_trouble: bool = False
    error: DeliveryError | None = None


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


def _claim_timeout() -> timedelta:
    return timedelta(seconds=current_app.config.get("SEND_CLAIM_TIMEOUT", outbox.JOB_TIMEOUT + 30))


def claim_batch(now: datetime, size: int, own_id: int | None = None) -> list[int]:
    """Claim (status `sending`) `own_id` if still waiting, plus due waiting email requests up to `size`.

    Committed before returning. Concurrent claimers never get the same request: PostgreSQL skips
    rows another claim has locked, SQLite runs one writer at a time and re-checks the status. The
    other claimed requests' own jobs still waiting in the queue are dropped (no wake-up for nothing).
    """
    claimed: list[int] = []
    if own_id is not None:
        result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
            update(SurveyRequest)
            .where(SurveyRequest.id == own_id, SurveyRequest.status.in_(WAITING_STATUSES))
            .values(status=RequestStatus.SENDING, sent_at=now)
        )
        if result.rowcount != 1:
            db.session.commit()
            return []
        claimed.append(own_id)
    if size > len(claimed):
        due = (
            select(SurveyRequest.id)
            .where(
                SurveyRequest.status.in_(WAITING_STATUSES),
                SurveyRequest.channel == "email",
                or_(SurveyRequest.scheduled_at.is_(None), SurveyRequest.scheduled_at <= now),
            )
            .order_by(SurveyRequest.scheduled_at, SurveyRequest.id)
            .limit(size - len(claimed))
            .with_for_update(skip_locked=True)
        )
        rows = db.session.execute(
            update(SurveyRequest)
            .where(SurveyRequest.id.in_(due.scalar_subquery()), SurveyRequest.status.in_(WAITING_STATUSES))
            .values(status=RequestStatus.SENDING, sent_at=now)
            .returning(SurveyRequest.id)
            .execution_options(synchronize_session=False)
        )
        claimed += [row[0] for row in rows]
    db.session.commit()
    try:
        outbox.forget_queued_jobs(i for i in claimed if i != own_id)
    except RedisError as exc:  # their jobs run and find the requests claimed
        log.warning("send batch: could not drop the claimed requests' queued jobs (%s)", exc)
    return claimed


def release(request_ids: Sequence[int]) -> None:
    """Give claimed requests nobody tried back to waiting; the relay enqueues them again."""
    if not request_ids:
        return
    db.session.rollback()
    db.session.execute(
        update(SurveyRequest)
        .where(SurveyRequest.id.in_(list(request_ids)), SurveyRequest.status == RequestStatus.SENDING)
        .values(status=RequestStatus.PENDING, sent_at=None, enqueued_at=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _finish(request_id: int, **values: object) -> None:
    db.session.execute(update(SurveyRequest).where(SurveyRequest.id == request_id).values(**values))
    db.session.commit()


def _fail(request_id: int, why: str) -> None:
    """A claimed request whose email can never be built or handed over: `failed` (a retry fails the same)."""
    _finish(request_id, status=RequestStatus.FAILED, sent_at=None, email_error=why)


class Recorder:
    """Where a batch records accepted messages: one round trip each, right after the server's "250".

    On PostgreSQL, a connection of its own in autocommit with `synchronous_commit` off: each UPDATE
    is its own transaction and does not wait for the WAL flush (a PostgreSQL restart keeps it; only a
    crash of its host could lose the last few, and those resend with the same Message-ID). SQLite,
    one writer at a time, records through the session.
    """

    def __init__(self) -> None:
        self.connection: Connection | None = None

    def record(self, request_id: int, values: dict[str, object]) -> None:
        """Record one request's outcome now (committed when this returns)."""
        statement = update(SurveyRequest).where(SurveyRequest.id == request_id).values(**values)
        if db.engine.dialect.name != "postgresql":
            _finish(request_id, **values)
            return
        if self.connection is None:
            connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(text("SET synchronous_commit TO OFF"))
            self.connection = connection
        try:
            self.connection.execute(statement)
        except SQLAlchemyError:
            self.close()
            raise

    def close(self) -> None:
        """Give the connection back (its session setting reset by the pool)."""
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.execute(text("RESET synchronous_commit"))
                connection.close()
            except SQLAlchemyError:
                connection.invalidate()


def _record_sent(recorder: Recorder, request_id: int, **values: object) -> None:
    """Record a delivered send, retrying through a database outage of up to RECORD_SENT_PATIENCE."""
    deadline = time.monotonic() + RECORD_SENT_PATIENCE
    pause = 0.25
    while True:
        try:
            recorder.record(request_id, values)
            return
        except (OperationalError, InterfaceError) as exc:
            db.session.rollback()
            if time.monotonic() + pause > deadline:
                raise
            log.warning("request %s sent; database away (%s), retrying", request_id, type(exc).__name__)
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def _retry_intervals() -> list[int]:
    return list(current_app.config.get("EMAIL_RETRY_INTERVALS") or outbox.DEFAULT_RETRY_INTERVALS)


def send_limiter() -> SendRateLimiter:
    """The send-rate limiter of the configured rates, on the worker's Redis."""
    cfg = current_app.config
    return SendRateLimiter(
        queues().redis,
        cfg.get("SEND_RATE_LIMIT"),
        cfg.get("SEND_DOMAIN_RATE_LIMIT"),
        cfg.get("SEND_DOMAIN_RATE_LIMITS"),
    )


@dataclass
class _Item:
    request: SurveyRequest
    person: Person
    message: OutgoingMessage


class _Batch:
    """One batch's claimed requests, from the checks to the last recorded outcome."""

    def __init__(self, ids: list[int], own_id: int | None, last_attempt: bool | None) -> None:
        self.ids, self.own_id, self.last_attempt = ids, own_id, last_attempt
        self.result = BatchResult()
        self.started = time.monotonic()
        self.budget = _claim_timeout().total_seconds() * BATCH_TIME_SHARE
        self.throttled: set[str] = set()  # domains whose rate leaves no room in this batch
        self.recorder = Recorder()
        # Reminder steps of this batch: their first asks, and those first asks answered since sent.
        self.firsts: dict[int, SurveyRequest] = {}
        self.answered: set[int] = set()

    def outcome(self, request_id: int, outcome: str) -> None:
        self.result.outcomes[request_id] = outcome

    def untried(self) -> list[int]:
        return [i for i in self.ids if i not in self.result.outcomes]

    def checked(self, now: datetime, templates: Templates) -> list[_Item]:
        """The claimed requests still to send, each with its message; the others finished here.

        A constant number of queries per batch: the rows, the reminder steps' first asks and chains,
        then per project the suppressed addresses and the fatigue rules of the automated asks (the
        batch's own claims not counting, nor a reminder's own first ask and earlier steps).
        """
        rows = db.session.execute(
            select(SurveyRequest, Person)
            .join(Person, Person.id == SurveyRequest.person_id)
            .where(SurveyRequest.id.in_(self.ids))
            .order_by(SurveyRequest.scheduled_at, SurveyRequest.id)
            .execution_options(populate_existing=True)
        ).all()
        found = {request.id for request, _ in rows}
        for missing in set(self.ids) - found:  # erased while claimed
            self.outcome(missing, "missing")
        self.firsts, chains, self.answered = reminders.chains_of([r for r, _ in rows if r.step > 0])
        not_counting = [*self.ids, *chains]
        suppressed: dict[int, set[str]] = {}
        fatigued: dict[int, dict[int, str]] = {}
        for project_id in {request.project_id for request, _ in rows}:
            mine = [(r, p) for r, p in rows if r.project_id == project_id]
            suppressed[project_id] = suppressed_among(project_id, [p.email for _, p in mine if p.email])
            project = db.session.get(Project, project_id)
            assert project is not None
            automated = [p.id for r, p in mine if r.trigger_id or r.enrollment_id or r.campaign]
            fatigued[project_id] = fatigued_among(project, automated, now, not_counting)
        items: list[_Item] = []
        asked: set[int] = set()  # people this batch already sends to: one ask each
        for request, person in rows:
            outcome = self._skip_reason(request, person, now, suppressed, fatigued, asked)
            if outcome:
                self.outcome(request.id, outcome)
                continue
            survey = db.session.get(Survey, request.survey_id)
            project = db.session.get(Project, request.project_id)
            assert survey is not None and project is not None
            # A message that cannot be built (bad data) fails its request here instead of being
            # retried forever; the rest of the batch goes on.
            try:
                links = self.firsts.get(request.reminder_of_id) if request.reminder_of_id else None
                message = templates.message_for(request, person, survey, project, links_of=links)
            except SQLAlchemyError:
                raise
            except Exception:
                log.exception("request %s: the email could not be composed", request.id)
                _fail(request.id, "the email could not be composed")
                self.outcome(request.id, "failed")
                continue
            asked.add(person.id)
            items.append(_Item(request, person, message))
        # The job's own request first: its outcome is the job's result.
        return sorted(items, key=lambda item: item.request.id != self.own_id)

    def _skip_reason(
        self,
        request: SurveyRequest,
        person: Person,
        now: datetime,
        suppressed: dict[int, set[str]],
        fatigued: dict[int, dict[int, str]],
        asked: set[int],
    ) -> str | None:
        """Finish a claimed request that must not be sent (saying why), or None to send it."""
        if request.reminder_of_id is not None and (
            request.reminder_of_id in self.answered or request.reminder_of_id not in self.firsts
        ):
            # The person answered (any channel) since the first ask went out: no reminder.
            _finish(request.id, status=RequestStatus.CANCELLED, sent_at=None, status_reason="answered")
            return "cancelled_answered"
        if request.responded_at is not None:
            _finish(request.id, status=RequestStatus.RESPONDED, sent_at=None)
            return "skipped_answered"
        if not person.email:
            _fail(request.id, "the person has no email address")
            return "no_address"
        if person.email.strip().lower() in suppressed[request.project_id]:
            _finish(request.id, status=RequestStatus.SUPPRESSED, sent_at=None)
            return "suppressed"
        if request.expires_at is not None and request.expires_at <= now:
            _finish(request.id, status=RequestStatus.EXPIRED, sent_at=None)
            return "expired"
        if request.trigger_id is not None or request.enrollment_id is not None or request.campaign:
            # Automated asks re-check the fatigue rules at send time: the person may have answered
            # through another channel while this one waited for its turn.
            reason = fatigued[request.project_id].get(person.id)
            if reason is None and person.id in asked:
                reason = "quiet_period"  # a second ask of the same person in this batch
            if reason:
                _finish(request.id, status=RequestStatus.SKIPPED, sent_at=None, status_reason=reason)
                return f"skipped_{reason}"
        return None


def _deliver_one(batch: _Batch, item: _Item, session: SmtpSession | None, limiter: SendRateLimiter) -> bool:
    """Send one checked message and record the outcome; False when the batch must stop here."""
    request, message = item.request, item.message
    if session is None:
        log_unsent(log, as_email(message), f"request-{request.id}")
        _finish(
            request.id,
            status=RequestStatus.SENT,
            email_message_id=message.message_id,
            **reminder_plans.values_when_sent(request, clock.now()),
        )
        batch.outcome(request.id, "logged")
        return True
    if limiter.limited:
        domain = message.recipient.rpartition("@")[2].lower()
        if domain in batch.throttled:
            return True  # left untried: released for a later batch
        while (wait := limiter.reserve(domain, clock.real_now().timestamp())) > 0:
            if time.monotonic() + wait - batch.started > batch.budget:
                # Too long a wait for this batch: its other domains go on, this one waits for later.
                batch.throttled.add(domain)
                return True
            time.sleep(wait)
    try:
        session.send(message.sender, message.recipient, message.data)
        # Counted as tried from here: if recording fails below, the batch must not release it.
        batch.outcome(request.id, "sent")
    except (ValueError, TypeError, LookupError) as err:
        # The message cannot be carried (e.g. an address the server cannot take): permanent.
        log.warning("request %s: the email cannot be sent: %s", request.id, type(err).__name__)
        _finish(
            request.id,
            status=RequestStatus.FAILED,
            sent_at=None,
            email_error=f"the email cannot be sent ({type(err).__name__})",
        )
        batch.outcome(request.id, "failed")
        return True
    except DeliveryError as err:
        return _record_failure(batch, request, item.person, err)
    delivered = clock.now()
    # One UPDATE per message (the hot path of bulk sends): a first ask's next reminder is set in it too.
    _record_sent(
        batch.recorder,
        request.id,
        status=RequestStatus.SENT,
        delivered_at=delivered,
        email_message_id=message.message_id,
        email_error=None,
        **reminder_plans.values_when_sent(request, delivered),
    )
    return True


def _record_failure(batch: _Batch, request: SurveyRequest, person: Person, err: DeliveryError) -> bool:
    """Record a refused or failed message; False when the server is unusable (stop the batch)."""
    if err.maybe_accepted:
        # The server may hold it: never sent again from here (at most once for this one message).
        log.warning("request %s: %s; not sent again", request.id, err)
        _record_sent(
            batch.recorder,
            request.id,
            status=RequestStatus.SENT,
            email_message_id=None,
            email_error=str(err)[:500],
            **reminder_plans.values_when_sent(request, clock.now()),
        )
        batch.outcome(request.id, "sent_unconfirmed")
        batch.result.server_trouble = True
        return False
    if err.permanent:
        status = RequestStatus.BOUNCED if err.bounce else RequestStatus.FAILED
        _finish(request.id, status=status, email_error=str(err)[:500])
        if err.bounce and person.email:
            add_suppression(request.project_id, person.email, "bounced", str(err))
        log.warning("request %s: permanent delivery failure: %s", request.id, err)
        batch.outcome(request.id, str(status))
        return True
    intervals = _retry_intervals()
    attempts = request.send_attempts + 1
    log.warning("request %s: temporary delivery failure: %s", request.id, err)
    values: dict[str, object] = {"sent_at": None, "email_error": str(err)[:500], "send_attempts": attempts}
    if request.id == batch.own_id:
        # The job's own request: RQ retries the job (outside a worker, the caller sees the error).
        last = batch.last_attempt is True
        _finish(request.id, status=RequestStatus.FAILED if last else RequestStatus.PENDING, **values)
        batch.outcome(request.id, "failed" if last else "retry")
    elif attempts > len(intervals):
        _finish(request.id, status=RequestStatus.FAILED, **values)
        batch.outcome(request.id, "failed")
    else:
        # Another job's request: retried from the database; the relay enqueues it for its new due time.
        due = clock.now() + timedelta(seconds=intervals[attempts - 1])
        _finish(request.id, status=RequestStatus.PENDING, scheduled_at=due, enqueued_at=None, **values)
        batch.outcome(request.id, "retry_later")
    batch.result.error = err
    # A recipient's own refusal (a 4xx to RCPT) says nothing about the next one; a broken server does.
    batch.result.server_trouble = not err.recipient
    return err.recipient


def send_batch(
    ids: list[int],
    own_id: int | None = None,
    last_attempt: bool | None = None,
    templates: Templates | None = None,
) -> BatchResult:
    """Send the claimed requests `ids` and record each outcome; releases what it did not try."""
    batch = _Batch(ids, own_id, last_attempt)
    smtp_url = current_app.config.get("SMTP_URL")
    session = pooled_session(parse_smtp_url(smtp_url)) if smtp_url else None
    try:
        items = batch.checked(clock.now(), templates or Templates())
        limiter = send_limiter()
        for item in items:
            if time.monotonic() - batch.started > batch.budget:
                break
            if not _deliver_one(batch, item, session, limiter):
                break
    except RedisError as exc:
        log.warning("send batch: Redis unavailable for the send-rate limits (%s); released", exc)
        batch.result.server_trouble = True
    finally:
        batch.recorder.close()
        try:
            release(batch.untried())
        except SQLAlchemyError:
            db.session.rollback()
            log.warning("send batch: could not release %d claim(s); they expire", len(batch.untried()))
    return batch.result


def send_request(request_id: int, last_attempt: bool | None = None) -> str:
    """Send one request's email at most once, with other due requests in the same batches.

    Returns the request's outcome; raises its DeliveryError when its send failed for now and should
    be retried (RQ retries the job). `last_attempt`: None outside a worker.
    """
    request = db.session.get(SurveyRequest, request_id, populate_existing=True)
    if request is None:
        return "missing"
    not_to_send = _not_to_send(request)
    if not_to_send:
        return not_to_send
    now = _wait_until_due(request.scheduled_at)
    size = int(current_app.config.get("SEND_BATCH_SIZE", 100))
    ids = claim_batch(now, size, own_id=request_id)
    if not ids:
        return "already_claimed"
    templates = Templates()
    result = send_batch(ids, request_id, last_attempt, templates)
    own, own_error = result.outcomes.get(request_id, "released"), result.error
    drain_until = time.monotonic() + float(current_app.config.get("SEND_DRAIN_SECONDS", 20))
    while not result.server_trouble and time.monotonic() < drain_until:
        more = claim_batch(clock.now(), size)
        if not more:
            break
        result = send_batch(more, None, None, templates)
    if own == "retry" and own_error is not None:
        raise own_error  # RQ retries the job; outside a worker the caller sees why
    return own


def send_due() -> int:
    """A wake-up's send (outbox.wake_senders): claim due email requests in batches and send them.

    Returns how many it claimed. Takes the wake-up key first, so a request committed from here on wakes
    another job. A full batch wakes one more worker before it is sent (a backlog is shared out); a drain
    cut short by SEND_DRAIN_SECONDS hands what is left to a new wake-up. What a broken SMTP server left
    unsent is released, and the relay gives it a job of its own (with RQ's retries).
    """
    try:
        outbox.woken()
    except RedisError as exc:  # the key expires by itself; meanwhile the requests wait for this job
        log.warning("send wake-up: could not clear the wake-up key (%s)", exc)
    size = int(current_app.config.get("SEND_BATCH_SIZE", 100))
    drain_until = time.monotonic() + float(current_app.config.get("SEND_DRAIN_SECONDS", 20))
    templates = Templates()
    claimed = 0
    while True:
        ids = claim_batch(clock.now(), size)
        if not ids:
            return claimed
        claimed += len(ids)
        more_due = len(ids) == size or time.monotonic() >= drain_until
        if more_due:
            try:
                outbox.wake_senders()
            except RedisError as exc:  # the relay gives overdue requests their own jobs
                log.warning("send wake-up: could not wake another worker (%s)", exc)
        result = send_batch(ids, None, None, templates)
        if result.server_trouble or time.monotonic() >= drain_until:
            return claimed
