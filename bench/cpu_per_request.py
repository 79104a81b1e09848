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

from bench.cpu_split import measured, recording_servers_env


def main(argv: list[str]) -> int:
    """Measure each checkout given (paths) and print one line per checkout and round."""
    trees = [Path(p).resolve() for p in argv] or [Path(__file__).resolve().parent.parent]
    with recording_servers_env(len(trees)) as (env, keys):
        ids = itertools.count()
        for _ in range(2):
            for tree, key in zip(trees, keys, strict=True):
                model = {"workers": 1, "worker_class": "sync", "threads": 1, "root": tree}
                result, by_kind = measured("wsgi:app", env, key, ids, model, 4, 8.0, warm_clients=2)
                used = by_kind.get("gunicorn", 0.0)
                print(
                    f"{tree}: {result.completed} requests, {result.throughput:.0f}/s,"
                    f" web CPU {1000 * used / max(result.completed, 1):.2f} ms/request,"
                    f" statuses {dict(result.statuses)}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
