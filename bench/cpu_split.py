"""Where a recorded response's CPU goes, by process, beside the durable-write ceiling, per worker model.

`python -m bench.cpu_split [--workers 2] [--worker-class gthread] [--threads 8] [--rounds 2] [--seconds 5]`:
`POST /api/v1/responses` (`wsgi:app`) and the ceiling (`bench/raw_insert_app.py`) in turn under the same
gunicorn command, closed loops of 32 clients (a new person per request, the API limit counted in Redis
out of reach), on a throw-away PostgreSQL database and redis-server. Each slice prints req/s, the p99,
and the CPU milliseconds per request used by gunicorn's processes, the load generator (this process),
PostgreSQL's processes and Redis (from /proc), and how many cores were busy: on a machine where the
service's throughput is CPU-bound, this says whose CPU it is. PostgreSQL's share counts every backend
of the server, so other work on it lands there: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from flask_migrate import upgrade

from bench import loadgen
from bench.lifecycle import redis_server
from bench.pg import libpq_url, temporary_database
from bench.raw_insert_app import CREATE_TABLE
from bench.recording import _factory
from bench.servers import gunicorn
from survey_service import create_app
from survey_service.extensions import db
from survey_service.services.projects import create_project

CONCURRENCY = 32
Ticks = dict[tuple[str, int], int]  # CPU ticks by (kind of process, pid)


def cpu_ticks(gunicorn_group: int) -> Ticks:
    """CPU ticks (user + system) so far of each process of interest, by (kind, pid)."""
    ticks: Ticks = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        if int(pid) == os.getpid():
            kind = "loadgen"
        elif int(fields[2]) == gunicorn_group:
            kind = "gunicorn"
        elif name.startswith("postgres"):
            kind = "postgres"
        elif "redis" in name:
            kind = "redis"
        else:
            continue
        ticks[(kind, int(pid))] = int(fields[11]) + int(fields[12])
    return ticks


def cpu_seconds_by_kind(
    before: dict[tuple[str, int], int], after: dict[tuple[str, int], int]
) -> dict[str, float]:
    """CPU seconds each kind of process used between two cpu_ticks (a process born since counts whole)."""
    used: dict[str, float] = {}
    for (kind, pid), ticks in after.items():
        used[kind] = used.get(kind, 0.0) + (ticks - before.get((kind, pid), 0)) / os.sysconf("SC_CLK_TCK")
    return used


@contextmanager
def recording_servers_env(projects: int = 1) -> Iterator[tuple[dict[str, str], list[str]]]:
    """A throw-away PostgreSQL database (migrated, with the ceiling's table) and redis-server: the
    environment gunicorn runs the service and the ceiling with, and the secret keys of `projects` projects."""
    with tempfile.TemporaryDirectory() as instance, temporary_database() as url, redis_server() as redis_url:
        secret = secrets.token_urlsafe(32)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secret, "INSTANCE_PATH": instance})
        with app.app_context():
            upgrade()
            keys = [create_project(f"cpu {n}").secret_key for n in range(projects)]
            db.engine.dispose()
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(CREATE_TABLE)
        yield (
            {
                "DATABASE_URL": url,
                "SECRET_KEY": secret,
                "INSTANCE_PATH": instance,
                "REDIS_URL": redis_url,
                "API_RATE_LIMIT": str(10**9),  # counted in Redis as in production, never reached
                "RAW_DATABASE_URL": libpq_url(url),
            },
            keys,
        )


def measured(
    target: str,
    env: dict[str, str],
    key: str,
    ids: itertools.count[int],
    model: dict[str, Any],
    clients: int,
    seconds: float,
    warm_clients: int | None = None,
) -> tuple[loadgen.LoadResult, dict[str, float]]:
    """Serve `target` under gunicorn (`model`: its workers, worker_class, threads and root), warm it up 1 s,
    then record responses for `seconds` with `clients`; the load's result and the CPU seconds by kind."""
    with gunicorn(target, env, **model) as (port, proc):
        factory = _factory(port, key)
        loadgen.closed_loop("127.0.0.1", port, factory, ids, warm_clients or clients, 1.0)
        before = cpu_ticks(proc.pid)
        result = loadgen.closed_loop("127.0.0.1", port, factory, ids, clients, seconds)
        return result, cpu_seconds_by_kind(before, cpu_ticks(proc.pid))


def main(argv: list[str]) -> int:
    """Measure the ceiling and the service in alternating slices and print one line per slice."""
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_split", description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    model = {"workers": args.workers, "worker_class": args.worker_class, "threads": args.threads}
    with recording_servers_env() as (env, [key]):
        ids = itertools.count()
        print(f"gunicorn {model}, {CONCURRENCY} clients, {args.seconds:g} s slices", flush=True)
        for _ in range(args.rounds):
            for name, target in (("ceiling", "bench.raw_insert_app:app"), ("service", "wsgi:app")):
                result, used = measured(target, env, key, ids, model, CONCURRENCY, args.seconds)
                n = max(result.completed, 1)
                split = ", ".join(
                    f"{kind} {1000 * seconds / n:.2f}" for kind, seconds in sorted(used.items())
                )
                print(
                    f"{name:8} {result.throughput:5.0f} req/s, p99 {result.percentile(99) * 1000:4.0f} ms;"
                    f" CPU ms/request: {split}; total {1000 * sum(used.values()) / n:.2f};"
                    f" {sum(used.values()) / args.seconds:.2f} cores busy",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
