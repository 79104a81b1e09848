"""Web CPU per `POST /api/v1/responses` under gunicorn, for one or more checkouts side by side.

`python -m bench.cpu_per_request CHECKOUT [CHECKOUT ...]`: each checkout's `wsgi:app` in turn under one
sync gunicorn worker on a throw-away PostgreSQL database and redis-server, a closed loop of 4 clients for
8 s (new person per request, rate limit counted in Redis), twice in alternation; prints the CPU seconds
gunicorn's process group used per request (from /proc). CPU per request moves far less than throughput
when other jobs load the machine, so it is the figure to compare code by on a shared machine.
"""

from __future__ import annotations

import itertools
import os
import secrets
import sys
import tempfile
from pathlib import Path

from flask_migrate import upgrade

from bench import loadgen
from bench.lifecycle import redis_server
from bench.pg import temporary_database
from bench.recording import _factory
from bench.servers import gunicorn
from survey_service import create_app
from survey_service.extensions import db
from survey_service.services.projects import create_project


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (Linux /proc)."""
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> int:
    """Measure each checkout given (paths) and print one line per checkout and round."""
    trees = [Path(p).resolve() for p in argv] or [Path(__file__).resolve().parent.parent]
    with tempfile.TemporaryDirectory() as instance, temporary_database() as url, redis_server() as redis_url:
        secret = secrets.token_urlsafe(32)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secret, "INSTANCE_PATH": instance})
        with app.app_context():
            upgrade()
            keys = [create_project(f"cpu {i}").secret_key for i in range(len(trees))]
            db.engine.dispose()
        env = {
            "DATABASE_URL": url,
            "SECRET_KEY": secret,
            "INSTANCE_PATH": instance,
            "REDIS_URL": redis_url,
            "API_RATE_LIMIT": str(10**9),
        }
        ids = itertools.count()
        for _ in range(2):
            for tree, key in zip(trees, keys, strict=True):
                with gunicorn("wsgi:app", env, 1, "sync", 1, root=tree) as (port, proc):
                    factory = _factory(port, key)
                    loadgen.closed_loop("127.0.0.1", port, factory, ids, 2, 1.0)  # warm-up
                    before = group_cpu_seconds(proc.pid)
                    result = loadgen.closed_loop("127.0.0.1", port, factory, ids, 4, 8.0)
                    used = group_cpu_seconds(proc.pid) - before
                    print(
                        f"{tree}: {result.completed} requests, {result.throughput:.0f}/s,"
                        f" web CPU {1000 * used / max(result.completed, 1):.2f} ms/request,"
                        f" statuses {dict(result.statuses)}",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
