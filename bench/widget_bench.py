"""Widget benchmark: the script's gzipped size, and identify (eligibility) latency at a constant rate.

    .venv/bin/python bench/widget_bench.py [--rate 200] [--seconds 20] [--db postgresql|sqlite] [--workers 4]
        [--worker-class sync] [--threads 1] [--floor] [--repeat-views] [--redis URL|memory]

Starts gunicorn (4 sync workers by default) on a throw-away database filled with people in every state
(new, due for the recurring survey, in the quiet period, with a pending in-app request, dismissed),
then sends `POST /api/widget/identify` for random people at a constant rate. Latency is measured
from each request's *scheduled* start, so a stalled server cannot hide its queueing (no coordinated
omission). The rate limiter counts in Redis as in production (a throw-away redis-server unless --redis
names one; `--redis memory` uses the limiter's per-process memory storage, which no deployment with
REDIS_URL uses). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from bench.lifecycle import redis_server  # noqa: E402
from survey_service import create_app  # noqa: E402
from survey_service.core import clock, keys  # noqa: E402
from survey_service.extensions import db  # noqa: E402
from survey_service.models import Person, Response, Survey, SurveyRequest, WidgetDismissal  # noqa: E402
from survey_service.services.projects import create_project  # noqa: E402
from survey_service.widget.views import widget_script  # noqa: E402

PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def seed(app: Any, people: int) -> tuple[dict[str, Any], list[str]]:
    """A project with people in every eligibility state; returns its keys and the user ids."""
    now = clock.now()
    with app.app_context():
        upgrade()
        project = create_project("Bench", "Bench App").as_dict()
        survey_id = db.session.scalar(select(Survey.id).where(Survey.project_id == project["id"]))
        ids = [f"user-{i}" for i in range(people)]
        rows = [
            {
                "project_id": project["id"],
                "external_id": uid,
                "properties": {"plan": random.choice(["free", "pro", "enterprise"])},
                "created_at": now - timedelta(days=random.choice([1, 30, 400])),
                "updated_at": now,
            }
            for uid in ids
        ]
        db.session.execute(insert(Person), rows)
        person_ids = list(db.session.scalars(select(Person.id).where(Person.project_id == project["id"])))
        for n, pid in enumerate(person_ids):
            state = n % 4
            if state == 1:  # answered lately: quiet period
                when = now - timedelta(days=10)
                db.session.add(
                    Response(
                        project_id=project["id"], survey_id=survey_id, person_id=pid, score=9,
                        category="promoter", channel="email", properties={}, created_at=when, updated_at=when,
                    )
                )  # fmt: skip
            elif state == 2:  # a lifecycle trigger asked for an in-app survey
                db.session.add(
                    SurveyRequest(
                        project_id=project["id"], survey_id=survey_id, person_id=pid, channel="in_app",
                        status="pending", scheduled_at=now - timedelta(hours=1),
                    )
                )  # fmt: skip
            elif state == 3 and n % 8 == 3:  # closed the widget last week
                week_ago = now - timedelta(days=7)
                dismissal = WidgetDismissal(project_id=project["id"], person_id=pid, dismissed_at=week_ago)
                db.session.add(dismissal)
        db.session.commit()
        db.engine.dispose()
    return project, ids


async def _one(port: int, payload: bytes) -> int:
    try:
        async with asyncio.timeout(30):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(payload)
                data = await reader.read()
            finally:
                writer.close()
        return int(data[9:12])
    except (OSError, TimeoutError, ValueError):
        return 0


async def constant_rate(port: int, payloads: list[bytes], rate: float, seconds: float) -> dict[str, Any]:
    """Send requests at a fixed rate; latency counts from each request's scheduled start."""
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    # The load generator's own garbage-collection pauses delay the requests scheduled meanwhile.
    pauses: list[float] = []
    began = [0.0]

    def on_gc(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - began[0])

    gc.callbacks.append(on_gc)
    cpu = time.process_time()
    start = time.perf_counter()
    total = int(rate * seconds)

    async def fire(i: int) -> None:
        scheduled = start + i / rate
        status = await _one(port, payloads[i % len(payloads)])
        statuses[status] += 1
        latencies.append(time.perf_counter() - scheduled)

    tasks = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(i)))
    await asyncio.gather(*tasks)
    gc.callbacks.remove(on_gc)
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] * 1000, 2)

    return {
        "requests": total,
        "rate_per_s": rate,
        "achieved_per_s": round(total / (time.perf_counter() - start), 1),
        "statuses": dict(statuses),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": round(ordered[-1] * 1000, 2),
        # The load generator shares the machine's CPUs with the service: its own cost per request.
        "loadgen_cpu_ms_per_request": round((time.process_time() - cpu) / total * 1000, 2),
        "loadgen_gc_pauses": len(pauses),
        "loadgen_gc_max_ms": round(max(pauses, default=0.0) * 1000, 2),
    }


def cpu_pressure() -> float | None:
    """The share of the last 60 s in which some runnable task waited for a CPU (Linux PSI), in %."""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(some.split("avg60=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        return None


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (Linux /proc), 0 where unreadable."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += tree_cpu_seconds(int(child))
    except (OSError, IndexError, ValueError):
        pass
    return total


def service_time(app: Any, bodies: list[bytes], count: int = 500) -> dict[str, float]:
    """identify's own time in-process, one at a time (no network, no queueing): p50/p99 in ms."""
    client = app.test_client()
    times = []
    for i in range(count):
        started = time.perf_counter()
        client.post("/api/widget/identify", data=bodies[i % len(bodies)], content_type="text/plain")
        times.append(time.perf_counter() - started)
    times.sort()
    return {
        "p50_ms": round(times[len(times) // 2] * 1000, 2),
        "p99_ms": round(times[int(len(times) * 0.99) - 1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--people", type=int, default=4000)
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--floor", action="store_true", help="also load GET /healthz the same way: the machine's floor"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (they wait on the DB)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (sync, gthread)")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread)")
    parser.add_argument(
        "--redis",
        default=None,
        help="REDIS_URL of the service (rate-limit counters); default a throw-away redis-server; "
        "'memory' leaves REDIS_URL unset (the limiter's in-memory storage)",
    )
    parser.add_argument(
        "--repeat-views",
        action="store_true",
        help="warm up with every user once, so the measured requests are later page views of known users",
    )
    args = parser.parse_args()

    script = widget_script()
    instance = tempfile.mkdtemp(prefix="widget-bench-")
    admin = None
    name = f"widget_bench_{uuid.uuid4().hex[:8]}"
    if args.db == "postgresql":
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True)
        admin.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN_URL.rpartition("/")[0] + f"/{name}"
    else:
        url = f"sqlite:///{instance}/bench.db"
    secret = uuid.uuid4().hex
    proc = None
    stack = contextlib.ExitStack()
    try:
        redis_url = None if args.redis == "memory" else args.redis or stack.enter_context(redis_server())
        app = create_app({"SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://", 1),
                          "SECRET_KEY": secret, "INSTANCE_PATH": instance, "REDIS_URL": redis_url,
                          "WIDGET_RATE_LIMIT": "1000000 per minute"})  # fmt: skip
        project, ids = seed(app, args.people)
        port = free_port()
        # One load generator stands for many users behind many addresses: lift the per-address limit (the
        # limiter still runs on every request, as in production).
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": secret, "INSTANCE_PATH": instance,
               "WIDGET_RATE_LIMIT": "1000000 per minute", "REDIS_URL": redis_url or ""}  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-k", args.worker_class,
             "--threads", str(args.threads),
             "-b", f"127.0.0.1:{port}",
             "--backlog", "2048", "--log-level", "warning",
             # The access log is written as in production, to a file rather than over this JSON.
             "--access-logfile", str(Path(instance) / "access.log"), "wsgi:app"],
            cwd=ROOT, env=env, start_new_session=True,
        )  # fmt: skip
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        payloads, bodies = [], []
        for uid in random.sample(ids, min(len(ids), 2000)):
            user = {"id": uid, "user_hash": keys.user_hash(project["identity_secret"], uid)}
            body = json.dumps({"key": project["public_key"], "user": user}).encode()
            head = (
                f"POST /api/widget/identify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            payloads.append(head.encode() + body)
            bodies.append(body)
        # This process also built the app and seeded the database: a full collection over those objects
        # stopped the load generator for 100-140 ms mid-run (a stall of the client, counted against the
        # server). Freezing them leaves the collector only what the runs themselves allocate.
        gc.collect()
        gc.freeze()
        load_before = os.getloadavg()[0]  # other work on the machine skews the figures: report it
        pressure_before = cpu_pressure()
        warm_up = len(payloads) / args.rate if args.repeat_views else 2
        asyncio.run(constant_rate(port, payloads, args.rate, warm_up))
        cpu_before = tree_cpu_seconds(proc.pid)
        result = asyncio.run(constant_rate(port, payloads, args.rate, args.seconds))
        result["web_cpu_ms_per_request"] = round(
            (tree_cpu_seconds(proc.pid) - cpu_before) / result["requests"] * 1000, 2
        )
        in_process = service_time(app, bodies)
        floor = None
        if args.floor:
            health = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
            cpu_before = tree_cpu_seconds(proc.pid)
            floor = asyncio.run(constant_rate(port, [health], args.rate, args.seconds))
            floor["web_cpu_ms_per_request"] = round(
                (tree_cpu_seconds(proc.pid) - cpu_before) / floor["requests"] * 1000, 2
            )
        print(
            json.dumps(
                {
                    "widget_bytes": len(script.body),
                    "widget_gzip_bytes": len(script.gzipped),
                    "widget_gzip_check": len(gzip.compress(script.body, 9)),
                    "database": args.db,
                    "workers": args.workers,
                    "worker_class": args.worker_class,
                    "threads": args.threads,
                    "rate_limit_storage": "redis" if redis_url else "memory",
                    "load_average_before": load_before,
                    "load_average_after": os.getloadavg()[0],
                    "cpu_pressure_avg60_before": pressure_before,
                    "cpu_pressure_avg60_after": cpu_pressure(),
                    "people": args.people,
                    "repeat_views": args.repeat_views,
                    "identify": result,
                    "identify_in_process_sequential": in_process,
                    "healthz_same_load": floor,
                },
                indent=2,
            )
        )
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
        stack.close()


if __name__ == "__main__":
    main()
