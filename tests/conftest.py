"""Fixtures: every database test runs on SQLite and on a fresh PostgreSQL database; Redis is real.

One app per backend serves every test of the session (`app`), reset between tests; helpers shared by
test modules live in tests/support (see tests/README.md).
"""

from __future__ import annotations

import copy
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from survey_service import create_app
from survey_service.extensions import RedisQueues, db, init_queues
from tests.support.db import empty_tables, make_project
from tests.support.env import CHROMIUM, CHROMIUM_ARGS, PG_ADMIN_URL, REDIS_URL, unavailable
from tests.support.mail import flush_redis
from tests.support.servers import live_server as serve_live
from tests.support.webhooks import Receiver

BACKENDS = ["sqlite", "postgresql"]
# TEST_BACKENDS=sqlite (comma-separated) runs the database tests on those backends only (`make test-quick`).
SELECTED_BACKENDS = [
    b for b in os.environ.get("TEST_BACKENDS", ",".join(BACKENDS)).replace(" ", "").split(",") if b
]
if unknown := set(SELECTED_BACKENDS) - set(BACKENDS):
    raise pytest.UsageError(f"TEST_BACKENDS: unknown backend(s) {sorted(unknown)}; known: {BACKENDS}")

# Tests using these fixtures get the marker even without writing it (`-m "not browser"` stays honest).
MARKER_FIXTURES = {"browser": "browser", "own_redis": "process", "own_postgres": "process"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that use a browser or a store of their own, whether or not they say so."""
    for item in items:
        for fixture, marker in MARKER_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped afterwards."""
    name = f"survey_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {PG_ADMIN_URL}", exc)
    admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis the queue tests use (a dedicated database number, flushed per test)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL}", exc)
    return REDIS_URL


@pytest.fixture(scope="session", params=SELECTED_BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Each database test runs once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def migrated(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Apply the migrations once per backend; tests then start from empty tables."""
    from flask_migrate import upgrade

    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        "REDIS_URL": REDIS_URL,
        "BASE_URL": "http://survey.test",
    }
    app = create_app(config)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return config


@pytest.fixture(scope="session")
def shared_app(migrated: dict[str, Any]) -> Iterator[Flask]:
    """The one app of a backend (create_app costs ~50 ms; `app` hands it to each test, reset)."""
    app = create_app(dict(migrated))
    yield app
    settle_wakes()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    queues_of(app).close()


def queues_of(app: Flask) -> RedisQueues:
    handle: RedisQueues = app.extensions["rq"]
    return handle


@pytest.fixture
def app(shared_app: Flask) -> Iterator[Flask]:
    """The backend's app on a migrated, empty database, as fresh as a new one.

    What a test may change is put back afterwards: the config (tests set values on `app.config`),
    the Redis handle (it keeps the connection of the REDIS_URL it first saw) and anything added to
    `app.extensions` (per-app caches such as default survey ids, limiter "Redis down" state), and the
    process-wide throttles (reset_process_throttles). A test needing an app built with other settings
    calls create_app({**migrated, ...}), or uses `fresh_app`.
    """
    app = shared_app
    config = copy.deepcopy(dict(app.config))
    extensions = set(app.extensions)
    with app.app_context():
        empty_tables()
    try:
        yield app
    finally:
        settle_wakes()
        with app.app_context():
            db.session.remove()
        app.config.clear()
        app.config.update(copy.deepcopy(config))
        for added in set(app.extensions) - extensions:
            del app.extensions[added]
        queues_of(app).close()
        init_queues(app)
        reset_process_throttles()


def settle_wakes() -> None:
    """Wait for the send wake-ups a test's requests handed this process's thread (outbox._Waker): one made
    after the test ended would land in the next test's Redis."""
    from survey_service.services import outbox

    assert outbox.settle_wakes(), "a send wake-up did not finish within 10 s"


def reset_process_throttles() -> None:
    """Open the process-wide throttles a test may have closed: the outbox's Redis breaker and the pacing of
    the unsubscribe-webhook relay (a relay pass in one test would otherwise hold the next one's back)."""
    from survey_service.delighted import webhooks
    from survey_service.services import outbox

    outbox._breaker_open_until = 0.0
    webhooks._next_relay_at = 0.0


@pytest.fixture
def fresh_app(migrated: dict[str, Any]) -> Iterator[Flask]:
    """A new app of its own on the migrated, empty database (for a test that must not share one)."""
    app = create_app(dict(migrated))
    with app.app_context():
        empty_tables()
    yield app
    settle_wakes()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    queues_of(app).close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def project(app: Flask) -> dict[str, Any]:
    return make_project(app)


@pytest.fixture
def auth(project: dict[str, Any]) -> dict[str, str]:
    """Authorization headers for the project's secret key."""
    return {"Authorization": f"Bearer {project['secret_key']}"}


LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every connection but to this machine (the stores) and every name lookup but localhost:
    whatever tries to download something fails loudly instead."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOCAL_HOSTS:
            raise AssertionError(f"network access attempted: {address!r}")
        return real_connect(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (*LOCAL_HOSTS, None):
            raise AssertionError(f"name lookup attempted: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def own_redis() -> Iterator[Any]:
    """A redis-server of this test's own, which it may kill and restart (tests/support/own_servers.py)."""
    from tests.support.own_servers import running_redis

    with running_redis() as server:
        yield server


@pytest.fixture
def own_postgres() -> Iterator[Any]:
    """A PostgreSQL cluster of this test's own, which it may stop and start (tests/support/own_servers.py)."""
    from tests.support.own_servers import running_postgres

    with running_postgres() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per module: CHROMIUM_PATH or /usr/bin/chromium, driven by Playwright.

    Missing, it is a skip that says how to install it; under CI=true it is a failure.
    """
    install = "install Debian's browser (apt-get install chromium) or set CHROMIUM_PATH to a Chromium binary"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable("playwright", exc, install="pip install -e '.[dev]' (no browser download is needed)")
    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium at {CHROMIUM}", FileNotFoundError(CHROMIUM), install=install)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The test's app served over real HTTP from a thread, BASE_URL pointing at it; yields its base URL."""
    with serve_live(app) as base:
        yield base


@pytest.fixture
def served(app: Flask, redis_url: str) -> Iterator[tuple[Flask, str]]:
    """The app on an empty Redis (a rate-limit prefix of its own), over real HTTP; yields (app, base URL)."""
    app.config["RATELIMIT_KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    flush_redis(app)
    with serve_live(app) as base:
        yield app, base


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real local webhook receiver (tests/support/webhooks.py)."""
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def private_ok(app: Flask, redis_url: str) -> Flask:
    """The app allowing loopback targets on any port (the receiver is local), with an empty queue."""
    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = True
    app.config["WEBHOOK_ALLOWED_PORTS"] = None
    redis.Redis.from_url(redis_url).flushdb()
    return app
