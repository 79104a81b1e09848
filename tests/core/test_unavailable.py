"""The one 503 (errors.database_unavailable): whichever door a request came in by, a database that does not
answer gives the one error shape with Retry-After, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy.exc import TimeoutError as PoolTimeout

from survey_service import create_app
from survey_service.errors import DATABASE_DOWN, RETRY_AFTER_SECONDS, database_unavailable
from survey_service.extensions import db
from tests.support.env import free_port


@pytest.fixture
def dead_app(migrated: dict[str, Any]) -> Any:
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none?connect_timeout=2"
    app = create_app({**migrated, "SQLALCHEMY_DATABASE_URI": dead})
    yield app
    with app.app_context():
        db.engine.dispose()


def assert_the_one_503(res: Any, retry_after: int) -> None:
    assert res.status_code == 503, res.get_data(as_text=True)
    body = res.get_json()
    assert set(body) == {"status", "code", "message", "details"}
    assert (body["status"], body["code"]) == (503, "unavailable")
    assert res.headers["Retry-After"] == str(retry_after)


def test_every_door_answers_the_one_503_when_the_database_is_down(dead_app: Flask) -> None:
    client = dead_app.test_client()
    assert_the_one_503(client.get("/healthz"), RETRY_AFTER_SECONDS)
    assert_the_one_503(
        client.get("/api/v1/reports/nps", headers={"Authorization": "Bearer sk_" + "x" * 40}),
        RETRY_AFTER_SECONDS,
    )
    # The Delighted-compatible door keeps telling its clients to wait longer.
    assert_the_one_503(client.get("/v1/metrics.json", auth=("sk_" + "x" * 40, "")), 30)


def test_an_exhausted_pool_is_the_same_503(app: Flask) -> None:
    handlers = app.error_handler_spec[None][None]
    assert PoolTimeout in DATABASE_DOWN and all(
        handlers[down] is database_unavailable for down in DATABASE_DOWN
    )
    with app.test_request_context("/api/v1/reports/nps"):
        assert_the_one_503(database_unavailable(PoolTimeout("QueuePool limit reached")), RETRY_AFTER_SECONDS)
