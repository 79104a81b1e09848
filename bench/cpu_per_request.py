"""Web CPU per `POST /api/v1/responses` under gunicorn, for one or more checkouts side by side.

`python -m bench.cpu_per_request CHECKOUT [CHECKOUT ...]`: each checkout's `wsgi:app` in turn under one
sync gunicorn worker on a throw-away PostgreSQL database and redis-server, a closed loop of 4 clients for
8 s (new person per request, rate limit counted in Redis), twice in alternation; prints the CPU seconds
gunicorn's process group used per request (from /proc). CPU per request moves far less than throughput
when other jobs load the machine, so it is the figure to compare code by on a shared machine.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from bench import loadgen
from bench.cpu_split import cpu_seconds_by_kind, cpu_ticks, recording_servers_env
from bench.recording import _factory
from bench.servers import gunicorn


def main(argv: list[str]) -> int:
    """Measure each checkout given (paths) and print one line per checkout and round."""
    trees = [Path(p).resolve() for p in argv] or [Path(__file__).resolve().parent.parent]
    with recording_servers_env(len(trees)) as (env, keys):
        ids = itertools.count()
        for _ in range(2):
            for tree, key in zip(trees, keys, strict=True):
                with gunicorn("wsgi:app", env, 1, "sync", 1, root=tree) as (port, proc):
                    factory = _factory(port, key)
                    loadgen.closed_loop("127.0.0.1", port, factory, ids, 2, 1.0)  # warm-up
                    before = cpu_ticks(proc.pid)
                    result = loadgen.closed_loop("127.0.0.1", port, factory, ids, 4, 8.0)
                    used = cpu_seconds_by_kind(before, cpu_ticks(proc.pid)).get("gunicorn", 0.0)
                    print(
                        f"{tree}: {result.completed} requests, {result.throughput:.0f}/s,"
                        f" web CPU {1000 * used / max(result.completed, 1):.2f} ms/request,"
                        f" statuses {dict(result.statuses)}",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
