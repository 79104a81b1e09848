"""Never twice, never lost: events (with repeats) and responses arrive while workers are SIGKILLed,
Redis restarts empty and PostgreSQL restarts; then the database and the SMTP sink are counted. Some
events ask with a one-reminder plan, and their reminders fall due while the chaos goes on (the test
moves their due times to now, as the passing of an hour would): each reminder is sent once, none lost.

A reduced run is part of `make test`; `make chaos` scales it with CHAOS_EVENTS, CHAOS_RESPONSES and
CHAOS_KILLS. The stores are servers of the test's own (tests/support/own_servers.py), never the shared ones.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from survey_service import create_app
from survey_service.core import clock
from survey_service.extensions import db, queues
from survey_service.models import Response, SurveyRequest
from survey_service.services import outbox, reminders
from tests.support.db import empty_tables, make_project
from tests.support.mail import SmtpSink, smtp_server
from tests.support.own_servers import PostgresCluster, RedisServer

pytestmark = [pytest.mark.process, pytest.mark.slow]  # kills workers, restarts Redis and a PostgreSQL cluster

UNIQUE_EVENTS = int(os.environ.get("CHAOS_EVENTS", "2000"))
RESPONSES = int(os.environ.get("CHAOS_RESPONSES", str(UNIQUE_EVENTS // 2)))
KILLS = int(os.environ.get("CHAOS_KILLS", "1"))
REPEAT_SHARE = 0.2
# Every REMINDED_EVERY-th unique event is of the type whose rule asks with a one-reminder plan.
REMINDED_EVERY = 5
REMINDED_TYPE = "upgraded"
WORKERS = 2
EXE = Path(sys.executable).parent / "survey-service"


def start_worker(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    # A session of its own, so SIGKILL takes the worker and its work-horse together.
    return subprocess.Popen(
        [EXE, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def chaos_plan(steps: int) -> dict[int, str]:
    """At which step of the stream each disruption happens: kills spread out, then the restarts."""
    # Redis restarts early: the jobs it loses wait out the relay's grace while requests still arrive.
    plan = {int(steps * (k + 1) / (KILLS + 2)): f"kill:{k % WORKERS}" for k in range(KILLS)}
    for share, action in ((0.2, "redis_down"), (0.35, "redis_up"), (0.55, "pg_down"), (0.7, "pg_up")):
        step = int(steps * share)
        while step in plan:  # a kill never shares a step with a restart
            step += 1
        plan[step] = action
    return plan


def disrupt(
    action: str,
    workers: list[subprocess.Popen[bytes]],
    new_worker: Callable[[], subprocess.Popen[bytes]],
    own_redis: RedisServer,
    own_postgres: PostgresCluster,
) -> int:
    """Carry out one step of the chaos plan; returns how many workers it SIGKILLed (0 or 1)."""
    if action.startswith("kill:"):
        victim = int(action.split(":")[1])
        os.killpg(workers[victim].pid, signal.SIGKILL)
        workers[victim].wait()
        workers[victim] = new_worker()
        return 1
    if action == "redis_down":
        own_redis.kill()  # every queued and scheduled job is gone
    elif action == "redis_up":
        own_redis.start()
    elif action == "pg_down":
        own_postgres.stop()
    elif action == "pg_up":
        own_postgres.start()
    return 0


def reminded(event_id: str) -> bool:
    return int(event_id.rsplit("-", 1)[1]) % REMINDED_EVERY == 0


def reminders_fall_due(app: Flask) -> None:
    """Move every first ask's next reminder to now, as if its hour had passed (the workers' relays, on
    the real clock, then make the steps); a database away now is left for the next call."""
    with app.app_context():
        try:
            now = clock.real_now()
            db.session.execute(
                update(SurveyRequest)
                .where(SurveyRequest.next_reminder_at > now)
                .values(next_reminder_at=now - timedelta(seconds=1))
            )
            db.session.commit()
        except SQLAlchemyError:
            db.session.rollback()


def wait_for_sends(app: Flask, sink: SmtpSink, expected: int, deadline: float) -> dict[str, int]:
    """Poll (until deadline) for `expected` requests sent (first asks, reminders) and their emails.

    Returns the requests counted by status at the end, whether or not they all got there.
    """
    counts: dict[str, int] = {}
    with app.app_context():
        while time.monotonic() < deadline:
            reminders_fall_due(app)
            rows = db.session.execute(
                select(SurveyRequest.status, func.count()).group_by(SurveyRequest.status)
            ).all()
            counts = {status: count for status, count in rows}
            db.session.rollback()
            if counts.get("sent", 0) >= expected and len(sink.messages) >= expected:
                break
            time.sleep(0.5)
    return counts


def assert_unavailable(res: Any) -> None:
    """A request while PostgreSQL is down: a clear 503 in the one error shape, with Retry-After."""
    body = res.get_json()
    assert res.status_code == 503, (res.status_code, body)
    assert body["code"] == "unavailable" and body["status"] == 503, body
    assert int(res.headers["Retry-After"]) > 0


def request_for(kind: str, item: Any) -> tuple[str, dict[str, Any]]:
    """The API call of one stream item: an event (id repeated for repeats) or a new response."""
    if kind == "event":
        person = {"email": f"{item}@example.com"}
        event_type = REMINDED_TYPE if reminded(item) else "ticket_closed"
        return "/api/v1/events", {"id": item, "type": event_type, "person": person}
    person = {"email": f"resp-{item}@example.com"}
    return "/api/v1/responses", {"person": person, "score": item % 11, "comment": f"chaos {item}"}


def post_until_acked(client: FlaskClient, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    """POST until acknowledged; only a 503 (the database coming back) may be retried."""
    for _ in range(100):
        res = client.post(path, json=body, headers=headers)
        if res.status_code != 503:
            assert res.status_code in (201, 202), (path, res.status_code, res.get_json())
            return res.get_json()
        assert_unavailable(res)
        time.sleep(0.1)
    raise AssertionError(f"{path} still 503 after PostgreSQL came back")


def test_events_and_responses_through_kills_and_restarts_are_kept_and_sent_once(
    own_postgres: PostgresCluster, own_redis: RedisServer, tmp_path: Path
) -> None:
    from flask_migrate import upgrade

    database_url = own_postgres.create_database("chaos")
    config = {
        "TESTING": True,
        "SECRET_KEY": "chaos-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": str(tmp_path),
        "REDIS_URL": own_redis.url,
        "BASE_URL": "http://survey.test",
        "API_RATE_LIMIT": 0,  # the stream posts far faster than an integration may
    }
    app = create_app(config)
    with app.app_context():
        upgrade()
        empty_tables()
    project = make_project(app, "Chaos")
    auth = {"Authorization": f"Bearer {project['secret_key']}"}
    client = app.test_client()
    rule = {"event_type": "ticket_closed", "channel": "email", "delay_seconds": 0}
    assert client.post("/api/v1/triggers", json=rule, headers=auth).status_code == 201
    one_reminder = {"count": 1, "delays_seconds": [3600]}
    rule = {"event_type": REMINDED_TYPE, "channel": "email", "delay_seconds": 0, "reminders": one_reminder}
    assert client.post("/api/v1/triggers", json=rule, headers=auth).status_code == 201

    rng = random.Random(20261122)
    unique = [f"evt-{i}" for i in range(UNIQUE_EVENTS)]
    with_reminder = {e for e in unique if reminded(e)}
    expected_sends = UNIQUE_EVENTS + len(with_reminder)
    stream: list[tuple[str, Any]] = [("event", e) for e in unique]
    stream += [("event", e) for e in rng.sample(unique, int(UNIQUE_EVENTS * REPEAT_SHARE))]
    stream += [("response", n) for n in range(RESPONSES)]
    rng.shuffle(stream)
    plan = chaos_plan(len(stream))

    acked_events: set[str] = set()
    acked_responses: set[int] = set()
    refused_while_down = 0

    def deliver(kind: str, item: Any) -> None:
        answer = post_until_acked(client, *request_for(kind, item), auth)
        if kind == "event":
            assert answer["id"] == item
            acked_events.add(item)
        else:
            acked_responses.add(answer["id"])

    with smtp_server() as (sink, smtp_url), open(tmp_path / "workers.log", "w") as log:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": own_redis.url,
            "SMTP_URL": smtp_url,
            "SECRET_KEY": "chaos-secret",
            "INSTANCE_PATH": str(tmp_path),
            "BASE_URL": "http://survey.test",
            "SEND_CLAIM_TIMEOUT": "3",
            "EMAIL_RETRY_INTERVALS": "1,2,4,8,15",
        }
        workers = [start_worker(env, log) for _ in range(WORKERS)]
        kills = 0
        held_back: list[tuple[str, Any]] = []
        started = time.monotonic()
        try:
            for n, (kind, item) in enumerate(stream):
                action = plan.get(n, "")
                kills += disrupt(action, workers, lambda: start_worker(env, log), own_redis, own_postgres)
                if action == "pg_up":
                    for held in held_back:
                        deliver(*held)
                    held_back.clear()
                if own_postgres.running():
                    deliver(kind, item)
                    if n % 50 == 0:
                        reminders_fall_due(app)
                else:
                    path, body = request_for(kind, item)
                    assert_unavailable(client.post(path, json=body, headers=auth))
                    refused_while_down += 1
                    held_back.append((kind, item))

            streamed = time.monotonic()
            deadline = streamed + max(120, expected_sends * 0.3)
            counts = wait_for_sends(app, sink, expected_sends, deadline)
            drained = time.monotonic()
        finally:
            for worker in workers:
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=30)

    log_tail = (tmp_path / "workers.log").read_text()[-3000:]
    assert refused_while_down > 0  # the outage really happened while requests arrived
    assert acked_events == set(unique)
    assert counts == {"sent": expected_sends}, (counts, log_tail)
    with app.app_context():
        stored = set(db.session.scalars(select(Response.id).where(Response.project_id == project["id"])))
    # Every acknowledged response is stored, and a 503 never left one behind.
    assert stored == acked_responses and len(stored) == RESPONSES

    recipients = Counter(str(m["To"]).split("<")[-1].rstrip(">") for m in sink.messages)
    distinct = {m["Message-ID"] for m in sink.messages}
    resent = len(sink.messages) - expected_sends
    print(
        f"\nchaos: {len(stream)} requests ({UNIQUE_EVENTS} unique events, {RESPONSES} responses), "
        f"{len(with_reminder)} with a reminder, "
        f"{kills} worker SIGKILLs, Redis restarted empty, PostgreSQL restarted "
        f"({refused_while_down} requests answered 503 while it was down); "
        f"{len(sink.messages)} SMTP deliveries, {len(distinct)} distinct, {resent} same-Message-ID resends; "
        f"requests took {streamed - started:.0f} s, the last send {drained - streamed:.0f} s more"
    )
    # None missing: every unique event's person got its email.
    assert set(recipients) == {f"{e}@example.com" for e in unique}
    # Never twice: one Message-ID per event. A worker killed (or the database gone) between the SMTP
    # server's "250" and recording it can make the relay resend the same Message-ID, which mail
    # systems drop as a duplicate: at most one per kill and one per worker at the database restart.
    assert len(distinct) == expected_sends
    assert resent <= kills + WORKERS
    # Each reminded person got their first ask and exactly one reminder, with the same links; the others
    # one email.
    ids_by_person: dict[str, set[str]] = {}
    links_by_person: dict[str, set[str]] = {}
    for message in sink.messages:
        address = str(message["To"]).split("<")[-1].rstrip(">")
        ids_by_person.setdefault(address, set()).add(str(message["Message-ID"]))
        links_by_person.setdefault(address, set()).add(str(message["List-Unsubscribe"]))
    assert {a: len(i) for a, i in ids_by_person.items()} == {
        f"{e}@example.com": 2 if e in with_reminder else 1 for e in unique
    }
    assert all(len(links) == 1 for links in links_by_person.values())
    with app.app_context():
        steps = Counter(
            db.session.scalars(
                select(SurveyRequest.reminder_of_id).where(SurveyRequest.reminder_of_id.is_not(None))
            )
        )
        assert len(steps) == len(with_reminder) and set(steps.values()) == {1}
        assert reminders.schedule_due() == 0
        assert outbox.relay() == 0
        queues().close()
        db.session.remove()
        db.engine.dispose()
