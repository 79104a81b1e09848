"""Never twice, never lost: events with repeats while a worker is SIGKILLed and Redis restarts empty.

A reduced run (a few hundred events) is part of `make test`; CHAOS_EVENTS scales it up.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from survey_service import create_app
from survey_service.extensions import db, queues
from survey_service.models import SurveyRequest
from survey_service.services import outbox
from tests.conftest import _empty_tables, make_project
from tests.email_support import free_port, smtp_server

UNIQUE_EVENTS = int(os.environ.get("CHAOS_EVENTS", "200"))
REPEAT_SHARE = 0.2
EXE = Path(sys.executable).parent / "survey-service"


class RedisServer:
    """A redis-server of our own that keeps nothing on disk, so a restart loses every job."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    try:
        subprocess.run(["redis-server", "--version"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"redis-server binary not available: {exc}")
    server = RedisServer(free_port())
    server.start()
    yield server
    server.kill()


def start_worker(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    # A session of its own, so SIGKILL takes the worker and its work-horse together.
    return subprocess.Popen(
        [EXE, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def test_events_with_repeats_worker_killed_and_redis_restarted_send_each_once(
    postgres_url: str, own_redis: RedisServer, tmp_path: Path
) -> None:
    from flask_migrate import upgrade

    redis_url = f"redis://127.0.0.1:{own_redis.port}/0"
    config = {
        "TESTING": True,
        "SECRET_KEY": "chaos-secret",
        "SQLALCHEMY_DATABASE_URI": postgres_url,
        "INSTANCE_PATH": str(tmp_path),
        "REDIS_URL": redis_url,
        "BASE_URL": "http://survey.test",
    }
    app = create_app(config)
    with app.app_context():
        upgrade()
        _empty_tables()
    project = make_project(app, "Chaos")
    auth = {"Authorization": f"Bearer {project['secret_key']}"}
    client = app.test_client()
    rule = {"event_type": "ticket_closed", "channel": "email", "delay_seconds": 0}
    assert client.post("/api/v1/triggers", json=rule, headers=auth).status_code == 201

    rng = random.Random(20261122)
    unique = [f"evt-{i}" for i in range(UNIQUE_EVENTS)]
    stream = unique + rng.sample(unique, int(UNIQUE_EVENTS * REPEAT_SHARE))
    rng.shuffle(stream)

    with smtp_server() as (sink, smtp_url), open(tmp_path / "workers.log", "w") as log:
        env = {
            **os.environ,
            "DATABASE_URL": postgres_url,
            "REDIS_URL": redis_url,
            "SMTP_URL": smtp_url,
            "SECRET_KEY": "chaos-secret",
            "INSTANCE_PATH": str(tmp_path),
            "BASE_URL": "http://survey.test",
            "SEND_CLAIM_TIMEOUT": "3",
        }
        workers = [start_worker(env, log), start_worker(env, log)]
        kills = 0
        try:
            for n, event_id in enumerate(stream):
                if n == len(stream) // 3:
                    os.killpg(workers[0].pid, signal.SIGKILL)
                    workers[0].wait()
                    kills += 1
                    workers[0] = start_worker(env, log)
                if n == len(stream) // 2:
                    own_redis.kill()  # every queued and scheduled job is gone
                if n == 2 * len(stream) // 3:
                    own_redis.start()
                body = {
                    "id": event_id,
                    "type": "ticket_closed",
                    "person": {"email": f"{event_id}@example.com"},
                }
                res = client.post("/api/v1/events", json=body, headers=auth)
                assert res.status_code == 202, res.get_json()

            deadline = time.monotonic() + 120
            with app.app_context():
                while time.monotonic() < deadline:
                    counts = dict(
                        db.session.execute(
                            select(SurveyRequest.status, func.count()).group_by(SurveyRequest.status)
                        ).all()
                    )
                    db.session.rollback()
                    if counts.get("sent", 0) >= UNIQUE_EVENTS and len(sink.messages) >= UNIQUE_EVENTS:
                        break
                    time.sleep(0.5)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=30)

    assert counts == {"sent": UNIQUE_EVENTS}, (counts, (tmp_path / "workers.log").read_text()[-3000:])
    recipients = Counter(str(m["To"]).split("<")[-1].rstrip(">") for m in sink.messages)
    distinct = {m["Message-ID"] for m in sink.messages}
    # None missing: every unique event's person got its email.
    assert set(recipients) == {f"{e}@example.com" for e in unique}
    # Never twice: one Message-ID per event. A worker killed between the SMTP server's "250" and
    # recording it can make the relay resend the same Message-ID (dropped as a duplicate by mail
    # systems); at most one such resend per kill.
    assert len(distinct) == UNIQUE_EVENTS
    assert len(sink.messages) - UNIQUE_EVENTS <= kills
    with app.app_context():
        assert outbox.relay() == 0
        queues().close()
        db.session.remove()
        db.engine.dispose()
