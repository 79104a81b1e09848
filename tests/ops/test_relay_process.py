"""The relay runs in a process of its own next to each worker: it relays, stops, and never outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue

from survey_service.extensions import queues
from survey_service.services import outbox
from survey_service.services.relay import RelayProcess
from tests.support.env import ROOT

pytestmark = pytest.mark.process  # the relay process next to a worker


def wait_for(done: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.05)
    return done()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its parent to read its status.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def test_relay_process_enqueues_unsent_requests_and_stops_on_request(
    app: Flask, client: FlaskClient, auth: dict[str, str], redis_url: str
) -> None:
    queue = Queue("default", connection=redis.Redis.from_url(redis_url))
    queue.connection.flushdb()
    rule = {"event_type": "ticket_closed", "channel": "email", "delay_seconds": 0}
    assert client.post("/api/v1/triggers", json=rule, headers=auth).status_code == 201
    with app.app_context():
        handle = queues()
        handle.app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # Redis "down" while events arrive
        handle._redis = None
    for i in range(3):
        body = {"id": f"e{i}", "type": "ticket_closed", "person": {"email": f"p{i}@example.com"}}
        assert client.post("/api/v1/events", json=body, headers=auth).status_code == 202
    assert outbox.settle_wakes()  # the wake-up thread met Redis down too
    assert queue.job_ids == []
    with app.app_context():
        handle.app.config["REDIS_URL"] = redis_url
        handle._redis = None
        outbox._breaker_open_until = 0.0

    relay = RelayProcess(app, interval=0.2)
    relay.start()
    try:
        assert wait_for(lambda: len(queue.job_ids) == 3), queue.job_ids
    finally:
        started = time.monotonic()
        relay.stop()
    assert not relay.process.is_alive() and relay.process.exitcode == 0
    assert time.monotonic() - started < 5  # it finished its pass and left; it was not killed


SCRIPT = """
import os, sys, time
from flask_migrate import upgrade
from survey_service import create_app
from survey_service.services.relay import RelayProcess

app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": sys.argv[1], "REDIS_URL": sys.argv[2],
                  "INSTANCE_PATH": sys.argv[3]})
with app.app_context():
    upgrade()
relay = RelayProcess(app, interval=0.2)
relay.start()
print(relay.process.pid, flush=True)
time.sleep(600)
"""


def test_relay_process_exits_when_its_worker_is_killed(tmp_path: Path, redis_url: str) -> None:
    db_url = f"sqlite:///{tmp_path / 'relay.db'}"
    parent = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, db_url, redis_url, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        os.kill(parent.pid, signal.SIGKILL)  # what the chaos tests do to workers
        parent.wait()
        assert wait_for(lambda: not alive(child), 15), "the relay outlived its worker"
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
