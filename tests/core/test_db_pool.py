"""The PostgreSQL connection pool keeps a connection per thread in use: no connection opened per request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from survey_service import create_app
from survey_service.config import DEFAULT_POOL_SIZE, ConfigError, load_config
from survey_service.extensions import db
from tests.support.concurrency import at_once

THREADS = 8  # gunicorn.conf.py's threads per worker


@pytest.fixture
def pg_app(postgres_url: str, tmp_path: Any) -> Iterator[Flask]:
    config = {"SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": postgres_url}
    app = create_app(config)
    yield app
    with app.app_context():
        db.engine.dispose()


def _backends_of_concurrent_requests(app: Flask) -> set[int]:
    """THREADS threads each hold a session's connection at the same moment (as gunicorn's threads do);
    the PostgreSQL backend process ids they were served by."""
    holding = threading.Barrier(THREADS)

    def request(_: int) -> int:
        pid: int = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        holding.wait(timeout=30)  # every thread holds its connection now
        return pid

    return set(at_once(request, THREADS, app))


def test_a_worker_keeps_one_connection_per_thread_in_use(pg_app: Flask) -> None:
    first = _backends_of_concurrent_requests(pg_app)
    assert len(first) == THREADS
    with pg_app.app_context():
        assert db.engine.pool.checkedin() == THREADS  # type: ignore[attr-defined]
    # The next burst is served by the same server processes: none was closed and opened again.
    assert _backends_of_concurrent_requests(pg_app) == first


@pytest.mark.parametrize(
    ("size", "overflow", "expected"),
    [(None, None, (DEFAULT_POOL_SIZE, 4)), ("32", "0", (32, 0)), ("0", None, "DATABASE_POOL_SIZE"),
     ("many", None, "DATABASE_POOL_SIZE"), (None, "-1", "DATABASE_POOL_OVERFLOW")],
)  # fmt: skip
def test_pool_settings(
    size: str | None, overflow: str | None, expected: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name, value in (("DATABASE_POOL_SIZE", size), ("DATABASE_POOL_OVERFLOW", overflow)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    overrides = {
        "SECRET_KEY": "x",
        "INSTANCE_PATH": str(tmp_path),
        "SQLALCHEMY_DATABASE_URI": "postgresql://h/d",
    }
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=expected):
            load_config(overrides)
        return
    options = load_config(overrides)["SQLALCHEMY_ENGINE_OPTIONS"]
    assert (options["pool_size"], options["max_overflow"]) == expected
