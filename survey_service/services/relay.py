"""The background loop next to every worker: the outbox relay, due recurring surveys, lost webhooks.

One instance at a time across all workers holds a Redis lock; if Redis is down the loop keeps
trying, and the database still holds everything that must be sent.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time

from flask import Flask
from redis.exceptions import RedisError

from survey_service.extensions import db, queues
from survey_service.reporting import rollups
from survey_service.services import alerts, enrollments, hooks, outbox, reminders

log = logging.getLogger(__name__)

LOCK_KEY = "survey:relay-lock"
RELAY_EVERY = 2.0


def relay_once(app: Flask) -> int:
    """One pass: enqueue lost or never-enqueued sends, schedule due recurring surveys, count closed
    days, make the reminders that fell due (last: nothing before it waits on it)."""
    with app.app_context():
        try:
            return (
                outbox.relay()
                + enrollments.run_due()
                + alerts.relay_pending()
                + sum(task() for task in hooks.relay_tasks.values())  # Delighted's lost unsubscribes
                + rollups.refresh_when_due()
                + reminders.schedule_due()
            )
        finally:
            db.session.remove()


def relay_loop(app: Flask, stopping: _StopFlag, interval: float, parent: int) -> None:
    """Relay every `interval` under the cluster-wide lock until stopped or the worker `parent` is gone."""
    with app.app_context():
        # A separate connection: RQ's worker connection is busy blocking on the queue.
        redis = type(queues().redis)(connection_pool=queues().redis.connection_pool)
    while not stopping.wait(interval):
        if os.getppid() != parent:
            return
        try:
            if not redis.set(LOCK_KEY, "1", nx=True, px=int(interval * 5000)):
                continue
            try:
                relay_once(app)
            finally:
                redis.delete(LOCK_KEY)
        except RedisError as exc:
            log.warning("relay: Redis unavailable (%s); retrying", exc)
        except Exception:
            log.exception("relay pass failed")
            time.sleep(interval)


class _StopFlag:
    """Set from a signal handler; waited on in short sleeps (no lock a signal could interrupt)."""

    def __init__(self) -> None:
        self.stopped = False

    def set(self) -> None:
        self.stopped = True

    def wait(self, timeout: float | None = None) -> bool:
        deadline = time.monotonic() + (timeout or 0.0)
        while not self.stopped and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return self.stopped


def _relay_main(app: Flask, interval: float, parent: int) -> None:
    stop = _StopFlag()
    # SIGTERM (the worker's stop(), or a process-group TERM) ends the loop after the current pass;
    # Ctrl-C reaches the whole process group, and the worker stops this process itself.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with app.app_context():
        db.engine.dispose(close=False)  # the parent's pooled connections stay the parent's
    relay_loop(app, stop, interval, parent)


class RelayProcess:
    """The relay in a process of its own, next to an RQ worker.

    Not a thread: the worker forks a work-horse per job, and a fork taken while a relay thread held
    a lock (a module import, a connection pool) left the work-horse waiting on it forever. Forked
    before the worker starts any thread; ends with the worker (stop(), or the worker's death).
    """

    def __init__(self, app: Flask, interval: float = RELAY_EVERY) -> None:
        self.process = multiprocessing.get_context("fork").Process(
            target=_relay_main, args=(app, interval, os.getpid()), name="outbox-relay", daemon=True
        )

    def start(self) -> None:
        """Fork the relay process."""
        self.process.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Let the relay finish its pass and exit; kill it if it does not."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
