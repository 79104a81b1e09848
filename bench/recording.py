"""Recording a response: POST /api/v1/responses under gunicorn on PostgreSQL vs two ceilings.

The ceilings run under the same gunicorn config: a bare Flask JSON endpoint (no database) and the
raw SQL ceiling (`bench/raw_insert_app.py`: one psycopg INSERT + COMMIT per request). The ratio of
the raw ceiling to the bare one bounds what any implementation with a durable write could reach.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import psycopg

from bench import loadgen
from bench.pg import libpq_url
from bench.raw_insert_app import CREATE_TABLE, TABLE
from bench.servers import DEFAULT_WORKERS, gunicorn, kill

PLANS = ("free", "starter", "pro", "enterprise")
REGIONS = ("eu", "us", "apac")


@dataclass(frozen=True)
class RecordingSizes:
    """How long each load phase runs and how hard it pushes."""

    warmup_seconds: float
    closed_seconds: float
    rate_seconds: float
    concurrency: int
    rate_fraction: float  # the constant rate, as a fraction of the service's closed-loop throughput
    rounds: int = 1  # each phase alternates between the servers this many times
    workers: int = DEFAULT_WORKERS


FULL = RecordingSizes(
    warmup_seconds=3, closed_seconds=20, rate_seconds=20, concurrency=8, rate_fraction=0.5, rounds=5
)
QUICK = RecordingSizes(
    warmup_seconds=0.2, closed_seconds=0.7, rate_seconds=0.7, concurrency=4, rate_fraction=0.5
)


def _factory(port: int, secret_key: str) -> loadgen.RequestFactory:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret_key}"}

    def make(i: int) -> bytes:
        body = {
            "person": {
                "external_id": f"bench-{i}",
                "email": f"bench-{i}@example.com",
                "properties": {"plan": PLANS[i % 4], "region": REGIONS[i % 3], "mrr": 10 * (i % 50)},
            },
            "score": i % 11,
            "comment": "Fast and simple." if i % 3 == 0 else None,
        }
        return loadgen.http_request(
            "127.0.0.1", port, "POST", "/api/v1/responses", json.dumps(body).encode(), headers
        )

    return make


def _latency(result: loadgen.LoadResult) -> dict[str, float]:
    return {"p50_ms": result.median * 1000, "p99_ms": result.percentile(99) * 1000}


def run(
    database_url: str,
    secret_key: str,
    project_id: int,
    app_secret: str,
    instance: str,
    sizes: RecordingSizes,
) -> dict[str, Any]:
    """Measure both servers in one run and check every 201 is a row in the database afterwards."""
    # The service's instance/ is the one the bench app uses: nothing is written there on PostgreSQL.
    service_env = {"DATABASE_URL": database_url, "SECRET_KEY": app_secret, "INSTANCE_PATH": instance}
    raw_env = {"RAW_DATABASE_URL": libpq_url(database_url)}
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(CREATE_TABLE)
    service_ids, ceiling_ids, raw_ids = itertools.count(), itertools.count(), itertools.count()
    created = raw_created = 0
    with (
        gunicorn("wsgi:app", service_env, sizes.workers) as (app_port, app_proc),
        gunicorn("bench.ceiling_app:app", {}, sizes.workers) as (ceiling_port, _),
        gunicorn("bench.raw_insert_app:app", raw_env, sizes.workers) as (raw_port, raw_proc),
    ):
        service, ceiling = _factory(app_port, secret_key), _factory(ceiling_port, secret_key)
        raw = _factory(raw_port, secret_key)
        c = sizes.concurrency
        warm = loadgen.closed_loop("127.0.0.1", app_port, service, service_ids, c, sizes.warmup_seconds)
        loadgen.closed_loop("127.0.0.1", ceiling_port, ceiling, ceiling_ids, c, sizes.warmup_seconds)
        raw_warm = loadgen.closed_loop("127.0.0.1", raw_port, raw, raw_ids, c, sizes.warmup_seconds)
        created += warm.statuses[201]
        raw_created += raw_warm.statuses[201]

        # Alternate between the servers in short slices, so a burst of load from elsewhere on the
        # machine lands on every side rather than on whichever ran at that moment.
        ceiling_closed, service_closed, raw_closed = (loadgen.LoadResult() for _ in range(3))
        slice_seconds = sizes.closed_seconds / sizes.rounds
        for _ in range(sizes.rounds):
            ceiling_closed.add(
                loadgen.closed_loop("127.0.0.1", ceiling_port, ceiling, ceiling_ids, c, slice_seconds)
            )
            raw_closed.add(loadgen.closed_loop("127.0.0.1", raw_port, raw, raw_ids, c, slice_seconds))
            service_closed.add(
                loadgen.closed_loop("127.0.0.1", app_port, service, service_ids, c, slice_seconds)
            )
        created += service_closed.statuses[201]
        raw_created += raw_closed.statuses[201]

        rate = max(1.0, round(service_closed.throughput * sizes.rate_fraction))
        ceiling_rate, service_rate, raw_rate = (loadgen.LoadResult() for _ in range(3))
        slice_seconds = sizes.rate_seconds / sizes.rounds
        for _ in range(sizes.rounds):
            service_rate.add(
                loadgen.constant_rate("127.0.0.1", app_port, service, service_ids, rate, slice_seconds)
            )
            ceiling_rate.add(
                loadgen.constant_rate("127.0.0.1", ceiling_port, ceiling, ceiling_ids, rate, slice_seconds)
            )
            raw_rate.add(loadgen.constant_rate("127.0.0.1", raw_port, raw, raw_ids, rate, slice_seconds))
        created += service_rate.statuses[201]
        raw_created += raw_rate.statuses[201]
        # Durability: SIGKILL the service first, so only what was committed can be counted.
        kill(app_proc)
        kill(raw_proc)

    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute("SELECT count(*) FROM responses WHERE project_id = %s", (project_id,)).fetchone()
        raw_row = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
    rows = int(row[0]) if row else 0
    raw_rows = int(raw_row[0]) if raw_row else 0
    failures = sum(
        n
        for result in (warm, service_closed, service_rate)
        for status, n in result.statuses.items()
        if status != 201
    )
    raw_failures = sum(
        n
        for result in (raw_warm, raw_closed, raw_rate)
        for status, n in result.statuses.items()
        if status != 201
    )
    return {
        "gunicorn": f"--workers {sizes.workers} --worker-class sync --backlog 2048",
        "concurrency": sizes.concurrency,
        "service_rps": service_closed.throughput,
        "ceiling_rps": ceiling_closed.throughput,
        "raw_insert_rps": raw_closed.throughput,
        "throughput_ratio": service_closed.throughput / ceiling_closed.throughput,
        "ratio_to_raw_insert": service_closed.throughput / raw_closed.throughput,
        "raw_insert_ratio": raw_closed.throughput / ceiling_closed.throughput,
        "rate_rps": rate,
        "service_latency": _latency(service_rate),
        "ceiling_latency": _latency(ceiling_rate),
        "raw_insert_latency": _latency(raw_rate),
        "p99_ratio": service_rate.percentile(99) / ceiling_rate.percentile(99),
        "responses_201": created,
        "non_201": failures,
        "rows_in_database": rows,
        "durable": rows == created and created > 0,
        "raw_insert_201": raw_created,
        "raw_insert_non_201": raw_failures,
        "raw_insert_rows": raw_rows,
        "raw_insert_durable": raw_rows == raw_created and raw_created > 0,
    }
