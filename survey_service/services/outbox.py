"""The outbox: scheduled requests live in the database first; Redis only delivers them.

Requests are enqueued after their transaction commits. If Redis is down at that moment, or a
job vanishes (Redis restarted empty, worker killed), the relay finds the request still
`scheduled` in the database and enqueues it again. The send job itself is idempotent.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Retry
from rq.job import Job, JobStatus
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from survey_service.core import clock
from survey_service.extensions import db, queues, scheduled_jobs
from survey_service.models import WAITING_STATUSES, RequestStatus, SurveyRequest

log = logging.getLogger(__name__)

SEND_EMAIL_JOB = "survey_service.jobs.send_survey_email"
SEND_DUE_JOB = "survey_service.jobs.send_due_emails"
# Set while a wake-up job (SEND_DUE_JOB) is queued and has not begun to claim; the job deletes it first.
WAKE_KEY = "survey:send:wake"
# A wake-up whose job vanished (worker killed before it began) lets the next one through after this long.
WAKE_TTL_MS = 30_000
# A web process gathers the wake-ups of this long into one (_Waker): a due email goes out that much later.
WAKE_GATHER_SECONDS = 0.05
DEFAULT_RETRY_INTERVALS = [60, 300, 1800, 7200]
JOB_TIMEOUT = 120
# After a Redis failure, web requests stop trying for a moment instead of each waiting on it.
BREAKER_SECONDS = 5.0
_breaker_open_until = 0.0
# A due request whose job is not seen this long after its due time is enqueued again.
OVERDUE_GRACE = timedelta(seconds=30)
RELAY_BATCH = 500


def job_id(request_id: int) -> str:
    """The deterministic RQ job id of a request's send."""
    return f"send-email-{request_id}"


def retry_policy() -> Retry:
    """RQ retries with backoff for a send (EMAIL_RETRY_INTERVALS in config, in seconds)."""
    intervals = current_app.config.get("EMAIL_RETRY_INTERVALS") or DEFAULT_RETRY_INTERVALS
    return Retry(max=len(intervals), interval=list(intervals))


def enqueue_send(
    request_id: int,
    project_id: int,
    due: datetime | None,
    now: datetime | None = None,
    pipeline: Pipeline | None = None,
) -> str:
    """Enqueue (or schedule for `due`) the send job of one committed request; RedisError propagates.

    With `pipeline`, the job is written when the caller executes it (RQ's own would take two round trips).
    """
    queue = queues().queue()
    kwargs = {
        "pipeline": pipeline,
        "job_id": job_id(request_id),
        "retry": retry_policy(),
        "job_timeout": JOB_TIMEOUT,
        "meta": {"project_id": project_id, "request_id": request_id},
        "failure_ttl": 30 * 24 * 3600,
    }
    if due is not None and due > (now or clock.now()):
        queue.enqueue_at(due, SEND_EMAIL_JOB, request_id, **kwargs)
    else:
        queue.enqueue(SEND_EMAIL_JOB, request_id, **kwargs)
    return job_id(request_id)


def wake_senders() -> bool:
    """Make sure a send job will claim due email requests after this moment; True when it enqueued one.

    One `SET NX` per call: while a wake-up job is queued and has not begun to claim, WAKE_KEY is set and
    nothing more is needed (that job's claim starts after this call, so it sees what the caller
    committed before it). Only when the key is free is a job enqueued. RedisError propagates.
    """
    redis = queues().redis
    token = uuid.uuid4().hex
    if not redis.set(WAKE_KEY, token, nx=True, px=WAKE_TTL_MS):
        return False
    queues().queue().enqueue(
        SEND_DUE_JOB,
        job_id=f"send-due-{token}",
        retry=retry_policy(),
        job_timeout=JOB_TIMEOUT,
        failure_ttl=30 * 24 * 3600,
    )
    return True


class _Waker:
    """Per web process: the wake-ups of concurrent requests gathered for WAKE_GATHER_SECONDS into one
    wake_senders call, in a thread of its own; the request that asked does not wait for it.

    A SET NX per request was a fifteenth of a lifecycle event's CPU. The requests handed here are
    committed and stamped `enqueued_at` already; if Redis refuses, their stamps are taken back and the
    relay enqueues them (within RELAY_EVERY), as enqueue_requests does. A process killed before its thread
    ran leaves them stamped: the relay finds them overdue after OVERDUE_GRACE.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._pending: list[tuple[Flask, list[int]]] = []
        self._running = False
        self._pid = 0

    def wake(self, app: Flask, request_ids: list[int]) -> None:
        with self._changed:
            if self._pid != os.getpid():  # first use in this process (a forked worker inherits no thread)
                self._pid, self._pending, self._running = os.getpid(), [], False
                threading.Thread(target=self._run, name="send-waker", daemon=True).start()
            self._pending.append((app, request_ids))
            self._changed.notify_all()

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until every wake-up handed to this process so far was made; False on timeout."""
        with self._changed:
            if self._pid != os.getpid():  # none handed here (a forked child inherits its parent's list)
                return True
            return self._changed.wait_for(lambda: not self._pending and not self._running, timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._pending))
                self._running = True
            time.sleep(WAKE_GATHER_SECONDS)  # the requests of the next moments share this wake-up
            with self._changed:
                batch, self._pending = self._pending, []
            try:
                for app in {id(app): app for app, _ in batch}.values():
                    _wake_for(app, [i for a, ids in batch if a is app for i in ids])
            finally:
                with self._changed:
                    self._running = False
                    self._changed.notify_all()


def _wake_for(app: Flask, request_ids: list[int]) -> None:
    """wake_senders for requests already stamped; on a Redis error, take their stamps back."""
    global _breaker_open_until
    with app.app_context():
        try:
            wake_senders()
        except RedisError as exc:
            _breaker_open_until = time.monotonic() + BREAKER_SECONDS
            log.warning("Redis unavailable, %d request(s) left to the relay: %s", len(request_ids), exc)
            try:
                db.session.execute(
                    update(SurveyRequest)
                    .where(SurveyRequest.id.in_(request_ids), SurveyRequest.status.in_(WAITING_STATUSES))
                    .values(enqueued_at=None)
                    .execution_options(synchronize_session=False)
                )
                db.session.commit()
            except SQLAlchemyError as db_exc:
                log.warning(
                    "could not take back %d stamp(s) (%s): the relay checks", len(request_ids), db_exc
                )
        except Exception:  # never let the thread die: the relay recovers what this missed
            log.exception("send wake-up failed; the relay recovers the requests")
        finally:
            db.session.remove()


_waker = _Waker()


def settle_wakes(timeout: float = 10.0) -> bool:
    """Wait until the wake-ups this process was handed were made (tests, and a worker about to exit)."""
    return _waker.settle(timeout)


def woken() -> None:
    """Called by a wake-up job before its first claim: the next committed request wakes another job."""
    queues().redis.delete(WAKE_KEY)


def enqueue_requests(
    requests: Iterable[SurveyRequest], now: datetime | None = None, *, wake: bool = False
) -> int:
    """Hand committed email requests to RQ; mark them enqueued. Never raises on Redis trouble.

    A request may come already stamped `enqueued_at` in its own transaction (the lifecycle event's hot
    path: no second commit); if its job cannot be enqueued the stamp is taken back, and if even that
    fails the relay finds the request overdue with no live job (OVERDUE_GRACE after its due time).

    `wake`: requests due now get no job of their own; a wake-up job (`wake_senders`) claims them with
    whatever else is due. The hot path of lifecycle events, where a job per request was a quarter of the
    CPU; the relay still gives one of them its own job if it is overdue (a lost wake-up).
    """
    global _breaker_open_until
    emails = [r for r in requests if r.channel == "email" and r.status in WAITING_STATUSES]
    if not emails:
        return 0
    done: list[SurveyRequest] = []
    if time.monotonic() >= _breaker_open_until:
        now = now or clock.now()
        due_now: list[SurveyRequest] = []
        own_jobs: list[SurveyRequest] = []
        for request in emails:
            at_once = wake and (request.scheduled_at is None or request.scheduled_at <= now)
            (due_now if at_once else own_jobs).append(request)
        try:
            # One round trip (a MULTI/EXEC) for them all. On a Redis error none counts as enqueued: the relay
            # enqueues them again, and a send job that runs twice sends once (it claims its request).
            if own_jobs:
                with queues().redis.pipeline() as pipeline:
                    for request in own_jobs:
                        enqueue_send(request.id, request.project_id, request.scheduled_at, now, pipeline)
                    pipeline.execute()
            if due_now:
                _waker.wake(current_app._get_current_object(), [r.id for r in due_now])  # type: ignore[attr-defined]
            done = own_jobs + due_now
        except RedisError as exc:
            _breaker_open_until = time.monotonic() + BREAKER_SECONDS
            log.warning("Redis unavailable, %d request(s) left to the relay: %s", len(emails), exc)
    stamp = [r.id for r in done if r.enqueued_at is None]
    handed = {id(r) for r in done}
    unstamp = [r.id for r in emails if id(r) not in handed and r.enqueued_at is not None]
    try:
        for ids, value in ((stamp, clock.now()), (unstamp, None)):
            if ids:
                db.session.execute(
                    update(SurveyRequest)
                    .where(SurveyRequest.id.in_(ids))
                    .values(enqueued_at=value)
                    .execution_options(synchronize_session=False)
                )
        if stamp or unstamp:
            db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("could not record %d request(s) as enqueued (%s): the relay checks", len(emails), exc)
    return len(done)


# Removes queued (or scheduled) send jobs nobody has taken yet, and their job hashes; a job a worker
# already took is left alone (it finds its request claimed and returns). Atomic per call.
_FORGET_QUEUED = """
local removed = 0
for i, job_id in ipairs(ARGV) do
  local gone = redis.call('LREM', KEYS[1], 0, job_id) + redis.call('ZREM', KEYS[2], job_id)
  if gone > 0 then
    redis.call('DEL', KEYS[3] .. job_id)
    removed = removed + 1
  end
end
return removed
"""


def forget_queued_jobs(request_ids: Iterable[int]) -> int:
    """Drop the still-queued send jobs of requests a batch has just claimed; returns how many.

    A batch sends many due requests at once, and each of them also has its own job waiting in the
    queue: without this, the workers would dequeue every one of those only to find its request
    claimed. Safe to skip (Redis trouble: the jobs run and return at once); a claimed request that
    is released later gets a new job from the relay (release clears `enqueued_at`).
    """
    ids = [job_id(request_id) for request_id in request_ids]
    if not ids:
        return 0
    queue = queues().queue()
    keys = [queue.key, scheduled_jobs(queue).key, Job.redis_job_namespace_prefix]
    removed: Any = queues().redis.eval(_FORGET_QUEUED, len(keys), *keys, *ids)
    return int(removed)


def _claim_timeout() -> timedelta:
    return timedelta(seconds=current_app.config.get("SEND_CLAIM_TIMEOUT", JOB_TIMEOUT + 30))


def job_alive(rq_job_id: str, now: datetime | None = None) -> bool:
    """Whether RQ still holds this job in its queue, running, deferred, or scheduled and not overdue.

    A job still scheduled well past its time is stuck (a SIGKILLed worker can leave RQ's scheduler
    lock behind until it expires), so it does not count as alive. RedisError propagates.
    """
    try:
        job = Job.fetch(rq_job_id, connection=queues().redis)
    except RedisError:
        raise
    except Exception:  # rq raises NoSuchJobError, or a deserialisation error for a damaged hash
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.SCHEDULED:
        registry = scheduled_jobs(queues().queue(job.origin))
        try:
            due = registry.get_scheduled_time(job)
        except Exception:  # not in the registry any more: nobody will run it
            return False
        due = due if due.tzinfo else due.replace(tzinfo=UTC)
        return due > (now or clock.now()) - OVERDUE_GRACE
    if status == JobStatus.STARTED and job.started_at is not None:
        # A job "started" longer ago than a send may take belongs to a worker that died (SIGKILL);
        # RQ would only notice after its own timeouts. RQ's clock is real time, not the app clock.
        started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=UTC)
        return started > clock.real_now() - _claim_timeout()
    if status == JobStatus.QUEUED:
        # A worker SIGKILLed between taking the job off the queue and starting it leaves it "queued"
        # in no queue (RQ's intermediate list, which only its 10-minute maintenance cleans up).
        return queues().redis.lpos(queues().queue(job.origin).key, rq_job_id) is not None
    return status in (JobStatus.STARTED, JobStatus.DEFERRED)


def release_stale_claims(now: datetime) -> int:
    """Put sends claimed by a worker that died mid-job back to waiting, so they are not lost.

    A claim older than the job timeout cannot belong to a running job (RQ kills it by then). If the
    worker died after the SMTP server accepted the message but before recording it, the retry sends
    it again with the same Message-ID, which mail systems use to drop the duplicate: at-least-once.
    Released as `pending` (handed to its job, like an API send), not `scheduled`: the person may hold a
    newer scheduled ask by now, and at most one scheduled ask per person is a unique index.
    """
    timeout = _claim_timeout()
    result = db.session.execute(
        update(SurveyRequest)
        .where(SurveyRequest.status == RequestStatus.SENDING, SurveyRequest.sent_at < now - timeout)
        .values(status=RequestStatus.PENDING, sent_at=None, enqueued_at=None, status_reason="claim_expired")
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def relay(now: datetime | None = None) -> int:
    """Enqueue email requests never enqueued, or overdue with no live job. Returns how many."""
    now = now or clock.now()
    release_stale_claims(now)
    never = db.session.scalars(
        select(SurveyRequest)
        .where(
            SurveyRequest.status.in_(WAITING_STATUSES),
            SurveyRequest.channel == "email",
            SurveyRequest.enqueued_at.is_(None),
        )
        .order_by(SurveyRequest.scheduled_at)
        .limit(RELAY_BATCH)
        .execution_options(populate_existing=True)  # the relay's own bulk UPDATE just changed rows
    ).all()
    overdue = db.session.scalars(
        select(SurveyRequest)
        .where(
            SurveyRequest.status.in_(WAITING_STATUSES),
            SurveyRequest.channel == "email",
            SurveyRequest.enqueued_at.is_not(None),
            SurveyRequest.scheduled_at < now - OVERDUE_GRACE,
        )
        .order_by(SurveyRequest.scheduled_at)
        .limit(RELAY_BATCH)
        .execution_options(populate_existing=True)  # the relay's own bulk UPDATE just changed rows
    ).all()
    try:
        lost = [r for r in overdue if not job_alive(job_id(r.id), now)]
    except RedisError:
        return 0
    global _breaker_open_until
    _breaker_open_until = 0.0  # the relay always tries: it is how we recover
    count = enqueue_requests([*never, *lost], now)
    db.session.commit()
    return count


@atexit.register
def _settle_at_exit() -> None:
    """A worker stopping gracefully makes the wake-ups it was handed (briefly: the relay covers the rest)."""
    if _waker._pid == os.getpid():
        _waker.settle(timeout=2.0)
