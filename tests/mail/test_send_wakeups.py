"""Wake-ups: lifecycle events due now get no send job each; one wake-up job claims whatever is due
(real database, Redis, aiosmtpd and RQ worker)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from survey_service.extensions import db, queues
from survey_service.jobs import send_due_emails
from survey_service.models import SurveyRequest
from survey_service.services import outbox
from tests.support.mail import flush_redis, run_worker_burst, smtp_server

SEND_DUE = "survey_service.jobs.send_due_emails"


@pytest.fixture
def wake_app(app: Flask, redis_url: str) -> Flask:
    """The app on an empty Redis database, with retries that do not wait and batches of 10."""
    app.config["EMAIL_RETRY_INTERVALS"] = [0, 0]
    app.config["SEND_BATCH_SIZE"] = 10
    flush_redis(app)
    return app


def post_events(client: FlaskClient, auth: dict[str, str], count: int, prefix: str = "w") -> None:
    rule = {"event_type": "ticket_closed", "channel": "email", "delay_seconds": 0}
    if not client.get("/api/v1/triggers", headers=auth).get_json()["data"]:
        assert client.post("/api/v1/triggers", json=rule, headers=auth).status_code == 201
    for i in range(count):
        person = {"email": f"{prefix}{i}@example.com"}
        body = {"id": f"{prefix}{i}", "type": "ticket_closed", "person": person}
        res = client.post("/api/v1/events", json=body, headers=auth)
        assert res.status_code == 202, res.get_json()
    assert outbox.settle_wakes()  # the process's wake-up thread gathered them


def queued_functions(app: Flask) -> list[str | None]:
    with app.app_context():
        return [job.func_name for job in queues().queue().jobs]


def statuses(app: Flask) -> Counter[str]:
    with app.app_context():
        return Counter(db.session.scalars(select(SurveyRequest.status)))


def test_wake_senders_enqueues_one_job_while_one_waits_and_another_once_it_began(wake_app: Flask) -> None:
    with wake_app.app_context():
        assert outbox.wake_senders() is True
        assert outbox.wake_senders() is False  # a wake-up is queued and has not begun: it will see this
        outbox.woken()  # what the job does before its first claim
        assert outbox.wake_senders() is True
        ttl = int(queues().redis.pttl(outbox.WAKE_KEY))  # type: ignore[arg-type]
    assert queued_functions(wake_app) == [SEND_DUE, SEND_DUE]
    assert 0 < ttl <= outbox.WAKE_TTL_MS  # a wake-up whose job vanished does not block the next forever


def test_events_due_now_share_one_wakeup_job_that_sends_each_once(
    wake_app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    post_events(client, auth, 25)
    # 25 committed requests, each stamped as handed over, one job between them.
    assert queued_functions(wake_app) == [SEND_DUE]
    with wake_app.app_context():
        stamped = db.session.scalars(select(SurveyRequest.enqueued_at)).all()
    assert len(stamped) == 25 and None not in stamped
    with smtp_server() as (sink, url):
        wake_app.config["SMTP_URL"] = url
        run_worker_burst(wake_app)
    sent = Counter(rcpt for _, rcpts in sink.envelopes for rcpt in rcpts)
    assert sent == Counter(f"w{i}@example.com" for i in range(25))
    assert statuses(wake_app) == Counter({"sent": 25})
    # After the job began, a new event wakes another one.
    post_events(client, auth, 1, prefix="after")
    assert queued_functions(wake_app) == [SEND_DUE]


def test_wakeup_with_a_full_batch_wakes_another_worker_and_the_rest_is_shared(
    wake_app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    post_events(client, auth, 25)
    flush_redis(wake_app)  # the events' own wake-up is dropped: this test runs the job by hand
    with smtp_server() as (sink, url):
        wake_app.config["SMTP_URL"] = url
        with wake_app.app_context():
            # Three batches (10, 10, 5) in one drain; the first full one woke a second worker.
            assert send_due_emails() == 25
        assert queued_functions(wake_app) == [SEND_DUE]
        with wake_app.app_context():
            assert send_due_emails() == 0  # that worker came late: nothing left, nothing sent twice
    assert len(sink.envelopes) == 25 and statuses(wake_app) == Counter({"sent": 25})


def test_wakeup_whose_drain_time_is_up_hands_the_rest_to_a_new_wakeup(
    wake_app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    post_events(client, auth, 15)
    flush_redis(wake_app)
    wake_app.config["SEND_DRAIN_SECONDS"] = 0  # the drain is over after the first batch
    with smtp_server() as (sink, url):
        wake_app.config["SMTP_URL"] = url
        with wake_app.app_context():
            assert send_due_emails() == 10
        assert statuses(wake_app) == Counter({"sent": 10, "scheduled": 5})
        assert queued_functions(wake_app) == [SEND_DUE]
        run_worker_burst(wake_app)
    assert len(sink.envelopes) == 15 and statuses(wake_app) == Counter({"sent": 15})


def test_wakeup_lost_with_redis_is_recovered_by_the_relay_with_own_jobs(
    wake_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any]
) -> None:
    from datetime import timedelta

    from survey_service.core import clock

    post_events(client, auth, 3)
    flush_redis(wake_app)  # Redis restarted empty: the wake-up and its key are gone
    with wake_app.app_context():
        assert outbox.relay() == 0  # not overdue yet: a wake-up may still be on its way
        assert outbox.relay(now=clock.now() + outbox.OVERDUE_GRACE + timedelta(seconds=1)) == 3
    assert queued_functions(wake_app) == ["survey_service.jobs.send_survey_email"] * 3
    with smtp_server() as (sink, url):
        wake_app.config["SMTP_URL"] = url
        run_worker_burst(wake_app)
    assert len(sink.envelopes) == 3 and statuses(wake_app) == Counter({"sent": 3})
