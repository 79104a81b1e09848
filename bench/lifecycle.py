"""Lifecycle benchmarks (issue 4): events accepted per second, end-to-end sends, scheduled lateness.

(a) `POST /api/v1/events` (one email trigger rule, delay 0) vs `POST /api/v1/responses`, alternating
    on one gunicorn (same config as the recording bench) on PostgreSQL, with a throw-away Redis.
(b) N events with delay 0 are accepted while no worker runs; then 2 `survey-service worker`
    processes send them through an in-process aiosmtpd sink. Their sends per second are compared
    with a bare `smtplib` loop (a process of its own) sending the same messages, byte for byte, over
    one connection to a fresh sink of the same kind (issue 15's ceiling), and with N no-op RQ jobs
    (`noop`, enqueued on the same queue) drained by 2 fresh workers. Then a campaign to N new people
    (`services.campaigns.start_campaign`, the `send-campaign` command's code) while 2 workers run:
    its wall time from the start to the last SMTP arrival, extrapolated linearly to 100,000; and N/5
    events sent by 2 forking workers (`worker --fork`) for the worker-model comparison.
(c) A few dozen events with delays of 2-5 s while the workers run: lateness is SMTP arrival minus
    the request's due time (`scheduled_at`).
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import smtplib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from aiosmtpd.controller import Controller
from flask import Flask
from rq import Queue

from bench import loadgen
from bench.recording import _factory as response_factory
from bench.servers import ROOT, free_port, gunicorn, kill

EXE = Path(sys.executable).parent / "survey-service"
EVENT_TYPE, DELAY_TYPES = "bench_event", {f"bench_delay_{d}": d for d in (2, 3, 4, 5)}


@dataclass(frozen=True)
class LifecycleSizes:
    """How long and how big each lifecycle phase is."""

    closed_seconds: float  # (a), per side, split in `rounds` slices
    rounds: int
    concurrency: int
    sends: int  # (b)
    scheduled: int  # (c)
    campaign: int | None = None  # recipients of the campaign phase (None: as many as `sends`)


FULL = LifecycleSizes(closed_seconds=20, rounds=5, concurrency=8, sends=10_000, scheduled=40)
QUICK = LifecycleSizes(closed_seconds=1.0, rounds=1, concurrency=4, sends=200, scheduled=12)


def noop() -> None:
    """The no-op RQ job: the queue's own ceiling."""


@contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away redis-server on a free port that keeps nothing on disk; yields its URL."""
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


class Sink:
    """aiosmtpd handler keeping (arrival time, recipient) of every message, and its envelope and bytes."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        self.raw: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        for rcpt in envelope.rcpt_tos:
            self.arrivals.append((now, rcpt.lower()))
        self.raw.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


@contextmanager
def smtp_sink() -> Iterator[tuple[Sink, str]]:
    """An aiosmtpd server in this process; yields the sink and its SMTP_URL."""
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


_worker_numbers = itertools.count(1)


@contextmanager
def workers(
    env: dict[str, str], count: int = 2, fork: bool = False
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` survey-service worker processes; SIGKILLed (with their work-horses) at the end.

    Their logs go to BENCH_WORKER_LOGS (a directory) when it is set, else nowhere.
    """
    log_dir = os.environ.get("BENCH_WORKER_LOGS")
    procs = []
    for _ in range(count):
        log: Any = subprocess.DEVNULL
        if log_dir:
            log = open(Path(log_dir) / f"worker-{next(_worker_numbers)}.log", "ab")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [str(EXE), "worker", *(["--fork"] if fork else [])],
                env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                cwd=ROOT,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
        if log is not subprocess.DEVNULL:
            log.close()
    try:
        yield procs
    finally:
        # A warm shutdown, so the worker holding RQ's scheduler lock releases it for the next ones.
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                kill(proc)


def _event_factory(port: int, secret_key: str, prefix: str) -> loadgen.RequestFactory:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret_key}"}

    def make(i: int) -> bytes:
        body = {"id": f"{prefix}-{i}", "type": EVENT_TYPE, "person": {"email": f"{prefix}-{i}@example.com"}}
        return loadgen.http_request(
            "127.0.0.1", port, "POST", "/api/v1/events", json.dumps(body).encode(), headers
        )

    return make


def setup_project(app: Flask, name: str) -> str:
    """A project with one email rule (delay 0) for EVENT_TYPE and one per delay; returns its secret key."""
    from survey_service.services.projects import create_project

    with app.app_context():
        key = create_project(name).secret_key
    client, auth = app.test_client(), {"Authorization": f"Bearer {key}"}
    rules = [(EVENT_TYPE, 0), *DELAY_TYPES.items()]
    for event_type, delay in rules:
        rule = {"event_type": event_type, "channel": "email", "delay_seconds": delay}
        res = client.post("/api/v1/triggers", json=rule, headers=auth)
        assert res.status_code == 201, res.get_json()
    return key


def events_vs_responses(
    env: dict[str, str], secret_key: str, sizes: LifecycleSizes, workers_n: int
) -> dict[str, Any]:
    """(a): closed loops alternating between the two endpoints on one gunicorn."""
    events_ids, response_ids = itertools.count(), itertools.count()
    with gunicorn("wsgi:app", env, workers_n) as (port, proc):
        events = _event_factory(port, secret_key, "rate")
        responses = response_factory(port, secret_key)
        c = sizes.concurrency
        loadgen.closed_loop("127.0.0.1", port, events, events_ids, c, 0.3)
        loadgen.closed_loop("127.0.0.1", port, responses, response_ids, c, 0.3)
        ev, rs = loadgen.LoadResult(), loadgen.LoadResult()
        slice_seconds = sizes.closed_seconds / sizes.rounds
        for _ in range(sizes.rounds):
            rs.add(loadgen.closed_loop("127.0.0.1", port, responses, response_ids, c, slice_seconds))
            ev.add(loadgen.closed_loop("127.0.0.1", port, events, events_ids, c, slice_seconds))
        kill(proc)
    return {
        "events_rps": ev.throughput,
        "responses_rps": rs.throughput,
        "events_ratio": ev.throughput / rs.throughput,
        "events_202": ev.statuses[202],
        "events_non_202": sum(n for s, n in ev.statuses.items() if s != 202),
        "responses_non_201": sum(n for s, n in rs.statuses.items() if s != 201),
    }


def _wait(done: Any, timeout: float, explain: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            detail = f": {explain()}" if explain else ""
            raise RuntimeError(f"lifecycle bench: timed out waiting for the workers{detail}")
        time.sleep(0.02)


def _state(app: Flask, queue: Queue, sink: Sink) -> str:
    """What the sends look like when a wait times out: SMTP arrivals, request statuses, RQ registries."""
    from sqlalchemy import func, select

    from survey_service.extensions import db
    from survey_service.models import SurveyRequest

    with app.app_context():
        by_status = select(SurveyRequest.status, func.count()).group_by(SurveyRequest.status)
        statuses = dict(db.session.execute(by_status).all())
        db.session.remove()
    registries = {
        "queued": queue.count,
        "started": queue.started_job_registry.count,
        "scheduled": queue.scheduled_job_registry.count,
        "failed": queue.failed_job_registry.count,
        "finished": queue.finished_job_registry.count,
    }
    return f"{len(sink.arrivals)} messages at the SMTP sink; requests {statuses}; RQ {registries}"


def _post_events(app: Flask, secret_key: str, prefix: str, count: int, event_type: str = EVENT_TYPE) -> None:
    client, auth = app.test_client(), {"Authorization": f"Bearer {secret_key}"}
    for i in range(count):
        body = {"id": f"{prefix}-{i}", "type": event_type, "person": {"email": f"{prefix}-{i}@example.com"}}
        res = client.post("/api/v1/events", json=body, headers=auth)
        assert res.status_code == 202, res.get_json()


def _rate(arrivals: list[tuple[float, str]]) -> float:
    """(N - 1) / (last arrival - first): messages per second at the sink."""
    times = sorted(t for t, _ in arrivals)
    return (len(times) - 1) / (times[-1] - times[0])


def bare_smtp_loop(messages_path: str, smtp_url: str) -> None:
    """The ceiling: one smtplib connection sending the pickled (sender, recipients, bytes) in a loop."""
    with open(messages_path, "rb") as fh:
        messages = pickle.load(fh)
    parts = urlsplit(smtp_url)
    with smtplib.SMTP(parts.hostname or "127.0.0.1", parts.port or 25) as client:
        for sender, recipients, data in messages:
            client.sendmail(sender, recipients, data)


def bare_smtp_rate(raw: list[tuple[str, list[str], bytes]], directory: str) -> float:
    """Messages per second of bare_smtp_loop (in a process of its own, like a worker) into a fresh sink."""
    path = Path(directory) / "bare-smtp-messages.pickle"
    path.write_bytes(pickle.dumps(raw))
    with smtp_sink() as (sink, url):
        code = f"from bench.lifecycle import bare_smtp_loop; bare_smtp_loop({str(path)!r}, {url!r})"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
        _wait(lambda: len(sink.arrivals) >= len(raw), 60)
        return _rate(sink.arrivals)


def _add_people(app: Flask, project_id: int, count: int, prefix: str) -> None:
    from sqlalchemy import insert

    from survey_service.extensions import db
    from survey_service.models import Person

    with app.app_context():
        rows = [
            {"project_id": project_id, "email": f"{prefix}-{i}@example.com", "properties": {}}
            for i in range(count)
        ]
        for start in range(0, count, 5000):
            db.session.execute(insert(Person), rows[start : start + 5000])
        db.session.commit()
        db.session.remove()


def campaign_run(app: Flask, env: dict[str, str], project_id: int, n: int, sink: Sink) -> dict[str, Any]:
    """A campaign to n new people while 2 workers run: start to last SMTP arrival."""
    from survey_service.extensions import db
    from survey_service.services.campaigns import start_campaign

    _add_people(app, project_id, n, "campaign")
    before = len(sink.arrivals)
    with workers(env):
        time.sleep(2)  # the workers are up (they import the app) before the clock starts
        started = time.time()
        with app.app_context():
            created = sum(start_campaign(project_id, "bench"))
            queued = time.time() - started
            db.session.remove()
        _wait(
            lambda: len(sink.arrivals) >= before + n, 60 + n * 0.2, lambda: f"{len(sink.arrivals) - before}"
        )
        last = max(t for t, _ in sink.arrivals[before:])
    wall = last - started
    return {
        "campaign_recipients": created,
        "campaign_queue_seconds": queued,
        "campaign_seconds": wall,
        "campaign_100k_seconds_extrapolated": wall * 100_000 / n,
    }


def end_to_end(
    app: Flask, env: dict[str, str], secret_key: str, sizes: LifecycleSizes, sink: Sink, directory: str
) -> dict[str, Any]:
    """(b) and (c) on a database of their own (env), with Redis and the SMTP sink of env."""
    from survey_service.extensions import db
    from survey_service.services.projects import create_project

    conn = redis.Redis.from_url(env["REDIS_URL"])
    queue = Queue("default", connection=conn)
    n = sizes.sends
    timeout = 60 + n * 0.2

    # The queue's ceiling: N no-op jobs, then 2 fresh workers drain them.
    for i in range(n):
        queue.enqueue("bench.lifecycle.noop", job_id=f"noop-{i}")
    with workers(env):
        first: list[float] = []

        def noop_done() -> bool:
            count: int = queue.finished_job_registry.count
            if count and not first:
                first.append(time.monotonic())
            return count >= n

        _wait(noop_done, timeout, lambda: f"{queue.finished_job_registry.count} of {n} no-op jobs done")
        noop_seconds = time.monotonic() - first[0]

    # N events with delay 0 accepted while no worker runs; then 2 fresh workers send them.
    _post_events(app, secret_key, "send", n)
    with workers(env):
        _wait(lambda: len(sink.arrivals) >= n, timeout, lambda: _state(app, queue, sink))
        send_rate = _rate(sink.arrivals[:n])

        # (c) scheduled sends, with the workers running.
        delays = list(DELAY_TYPES)
        for i in range(sizes.scheduled):
            _post_events(app, secret_key, f"late-{i}", 1, delays[i % len(delays)])
        _wait(lambda: len(sink.arrivals) >= n + sizes.scheduled, 60, lambda: _state(app, queue, sink))
    lateness = _lateness(app, sink.arrivals[n : n + sizes.scheduled])
    sent = len({r for _, r in sink.arrivals[:n]})
    bare = bare_smtp_rate(sink.raw[:n], directory)

    with app.app_context():
        project_id = create_project("Bench campaign").project.id  # its people: the campaign's only
        db.session.remove()
    campaign = campaign_run(app, env, project_id, sizes.campaign or n, sink)

    # The same sends through RQ's forking worker (a work-horse per job), on a fifth of N, from an
    # empty queue: the campaign's own jobs (their requests sent by batches) would each cost a fork.
    queue.empty()  # type: ignore[no-untyped-call]
    forked = max(50, n // 5)
    _post_events(app, secret_key, "fork", forked)
    before = len(sink.arrivals)
    with workers(env, fork=True):
        _wait(lambda: len(sink.arrivals) >= before + forked, 60 + forked, lambda: _state(app, queue, sink))
    fork_rate = _rate(sink.arrivals[before:])
    return {
        "sends": n,
        "distinct_recipients": sent,
        "sends_per_second": send_rate,
        "bare_smtp_per_second": bare,
        "sends_ratio": send_rate / bare,
        "noop_per_second": (n - 1) / noop_seconds,
        "sends_noop_ratio": send_rate / ((n - 1) / noop_seconds),
        "fork_sends": forked,
        "fork_sends_per_second": fork_rate,
        **campaign,
        "scheduled": sizes.scheduled,
        "lateness_p50_s": statistics.median(lateness),
        "lateness_p99_s": _percentile(lateness, 99),
        "lateness_max_s": max(lateness),
    }


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def _lateness(app: Flask, arrivals: list[tuple[float, str]]) -> list[float]:
    """SMTP arrival minus the due time of each request, matched by recipient."""
    from sqlalchemy import select

    from survey_service.extensions import db
    from survey_service.models import Person, SurveyRequest

    with app.app_context():
        rows = db.session.execute(
            select(Person.email, SurveyRequest.scheduled_at)
            .join(Person, Person.id == SurveyRequest.person_id)
            .where(Person.email.like("late-%"))
        ).all()
        db.session.remove()
    due = {
        email.lower(): at.replace(tzinfo=at.tzinfo or UTC).timestamp() for email, at in rows if email and at
    }
    return [t - due[r] for t, r in arrivals if r in due]


def run(url: str, app_secret: str, instance: str, sizes: LifecycleSizes, workers_n: int) -> dict[str, Any]:
    """All three lifecycle phases with a throw-away Redis; (b) and (c) on a database of their own."""
    from flask_migrate import upgrade

    from bench.pg import temporary_database
    from survey_service import create_app
    from survey_service.extensions import db

    base = {"SECRET_KEY": app_secret, "INSTANCE_PATH": instance}
    with redis_server() as redis_url:
        app = create_app({**base, "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url})
        key = setup_project(app, "Bench events")
        with app.app_context():
            db.engine.dispose()
        env = {**base, "DATABASE_URL": url, "REDIS_URL": redis_url}
        results = events_vs_responses(env, key, sizes, workers_n)
        redis.Redis.from_url(redis_url).flushall()

        with temporary_database() as sends_url, smtp_sink() as (sink, smtp_url):
            config = {
                **base,
                "SQLALCHEMY_DATABASE_URI": sends_url,
                "REDIS_URL": redis_url,
                "SMTP_URL": smtp_url,
                # A send refused once (a busy sink) is retried within seconds, not minutes.
                "EMAIL_RETRY_INTERVALS": [1, 2, 4],
                "API_RATE_LIMIT": 0,  # the bench posts its events faster than a real integration may
            }
            app = create_app(config)
            with app.app_context():
                upgrade()
            key = setup_project(app, "Bench sends")
            env = {**base, "DATABASE_URL": sends_url, "REDIS_URL": redis_url, "SMTP_URL": smtp_url}
            try:
                results.update(end_to_end(app, env, key, sizes, sink, instance))
            finally:
                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()
    return results


SENDS_TARGET = 0.3
LATENESS_TARGET_S = 2.0


def summary_lines(life: dict[str, Any], gunicorn: str) -> list[str]:
    """The lifecycle lines of `python -m bench`'s summary (issues 4 and 15)."""

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    late_ok = life["lateness_max_s"] <= LATENESS_TARGET_S
    hours = life["campaign_100k_seconds_extrapolated"] / 3600
    return [
        "Lifecycle events (POST /api/v1/events, one email rule, delay 0) vs POST /api/v1/responses,",
        f"  same gunicorn {gunicorn}, PostgreSQL, throw-away redis-server:",
        f"  events / responses     {life['events_ratio']:.2f}"
        f"   [{life['events_rps']:.0f} vs {life['responses_rps']:.0f} req/s,"
        f" {life['events_non_202']} non-202]",
        f"End-to-end sends: {life['sends']:,} events (delay 0), 2 survey-service workers, aiosmtpd sink:",
        f"  sends / bare smtplib   {life['sends_ratio']:.2f}"
        f"   [{life['sends_per_second']:.1f} vs {life['bare_smtp_per_second']:.1f} per s, the same messages"
        f" over one connection; goal >= {SENDS_TARGET}]  {mark(life['sends_ratio'] >= SENDS_TARGET)}",
        f"  sends / no-op RQ job   {life['sends_noop_ratio']:.2f}"
        f"   [no-op jobs {life['noop_per_second']:.1f} per s;"
        f" {life['distinct_recipients']:,} distinct recipients]",
        f"  forking worker (--fork) {life['fork_sends_per_second']:.1f} sends per s"
        f" ({life['fork_sends']:,} events)",
        f"Campaign to {life['campaign_recipients']:,} people (send-campaign's code, 2 workers running):"
        f" {life['campaign_seconds']:.1f} s to the last email"
        f" ({life['campaign_queue_seconds']:.1f} s queueing);",
        (
            f"  100,000 people: measured, {life['campaign_seconds'] / 60:.1f} min"
            f" ({life['campaign_recipients'] / life['campaign_seconds']:.0f} emails per s)"
            if life["campaign_recipients"] >= 100_000
            else f"  100,000 people: {life['campaign_100k_seconds_extrapolated'] / 60:.1f} min"
            f" ({hours:.2f} h),"
            " extrapolated linearly from that run (measure it: --campaign 100000)"
        ),
        f"Scheduled sends ({life['scheduled']} events, delays 2-5 s), SMTP arrival - due time:",
        f"  p50 {life['lateness_p50_s']:.2f} s, p99 {life['lateness_p99_s']:.2f} s,"
        f" max {life['lateness_max_s']:.2f} s (target <= {LATENESS_TARGET_S:.0f} s)  {mark(late_ok)}",
    ]


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.lifecycle [--sends N] [--quick]`: only the lifecycle benchmarks, printed."""
    import argparse
    import secrets
    import tempfile

    from bench.pg import temporary_database

    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=main.__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sends", type=int)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers for the events phase")
    parser.add_argument("--campaign", type=int, help="recipients of the campaign phase (default: --sends)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.sends:
        sizes = LifecycleSizes(**{**sizes.__dict__, "sends": args.sends})
    if args.campaign:
        sizes = LifecycleSizes(**{**sizes.__dict__, "campaign": args.campaign})
    with tempfile.TemporaryDirectory(prefix="bench-instance-") as instance, temporary_database() as url:
        from flask_migrate import upgrade

        from survey_service import create_app
        from survey_service.extensions import db

        secret = secrets.token_urlsafe(32)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secret, "INSTANCE_PATH": instance})
        with app.app_context():
            upgrade()
            db.engine.dispose()
        life = run(url, secret, instance, sizes, args.workers)
    print("\n".join(summary_lines(life, f"-w {args.workers}")))
    if args.json:
        Path(args.json).write_text(json.dumps(life, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
