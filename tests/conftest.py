"""Fixtures: every database test runs on SQLite and on a fresh PostgreSQL database; Redis is real."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text

from survey_service import create_app
from survey_service.extensions import db

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers the tests start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable(what: str, why: Exception) -> None:
    """Skip a test whose service is missing; under CI that is a failure, never a silent skip."""
    message = f"{what} is not reachable ({why.__class__.__name__}: {why})"
    if IN_CI:
        pytest.fail(message + " and CI=true requires it")
    pytest.skip(message)


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


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
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


def _empty_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


@pytest.fixture
def app(migrated: dict[str, Any]) -> Iterator[Flask]:
    """The app on a migrated, empty database."""
    app = create_app(dict(migrated))
    with app.app_context():
        _empty_tables()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def make_project(app: Flask, name: str = "Acme") -> dict[str, Any]:
    """Create a project and return its keys, as `create-project` prints them."""
    from survey_service.services.projects import create_project

    with app.app_context():
        return create_project(name).as_dict()


@pytest.fixture
def project(app: Flask) -> dict[str, Any]:
    return make_project(app)


@pytest.fixture
def auth(project: dict[str, Any]) -> dict[str, str]:
    """Authorization headers for the project's secret key."""
    return {"Authorization": f"Bearer {project['secret_key']}"}


@pytest.fixture
def own_redis() -> Iterator[Any]:
    """A redis-server of this test's own, which it may kill and restart (tests/own_servers.py)."""
    from tests.own_servers import running_redis

    with running_redis() as server:
        yield server


@pytest.fixture
def own_postgres() -> Iterator[Any]:
    """A PostgreSQL cluster of this test's own, which it may stop and start (tests/own_servers.py)."""
    from tests.own_servers import running_postgres

    with running_postgres() as cluster:
        yield cluster
