"""The background loop every worker runs: the outbox relay, due recurring surveys, lost webhooks.

One instance at a time across all workers holds a Redis lock; if Redis is down the loop keeps
trying, and the database still holds everything that must be sent.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from redis.exceptions import RedisError

from .extensions import db, queues
from .services import alerts, enrollments, outbox, unsubscribe_webhooks

log = logging.getLogger(__name__)

LOCK_KEY = "survey:relay-lock"
RELAY_EVERY = 2.0
ENROLLMENTS_EVERY = 30.0


def relay_once(app: Flask) -> int:
    """One pass: enqueue lost or never-enqueued sends, schedule due recurring surveys."""
    with app.app_context():
        try:
            return (
                outbox.relay()
                + enrollments.run_due()
                + alerts.relay_pending()
                + unsubscribe_webhooks.relay_unsent()
            )
        finally:
            db.session.remove()


class RelayThread(threading.Thread):
    """A daemon thread running relay passes while it holds the cluster-wide lock."""

    def __init__(self, app: Flask, interval: float = RELAY_EVERY) -> None:
        super().__init__(name="outbox-relay", daemon=True)
        self.app, self.interval = app, interval
        self.stopping = threading.Event()

    def run(self) -> None:
        with self.app.app_context():
            # A separate connection: RQ's worker connection is busy blocking on the queue.
            redis = type(queues().redis)(connection_pool=queues().redis.connection_pool)
        while not self.stopping.wait(self.interval):
            try:
                if not redis.set(LOCK_KEY, "1", nx=True, px=int(self.interval * 5000)):
                    continue
                try:
                    relay_once(self.app)
                finally:
                    redis.delete(LOCK_KEY)
            except RedisError as exc:
                log.warning("relay: Redis unavailable (%s); retrying", exc)
            except Exception:
                log.exception("relay pass failed")
                time.sleep(self.interval)
