"""Benchmark the promoter export (rows/s, peak memory) and the dashboard render on PostgreSQL.

Run: .venv/bin/python -m bench.reports_bench --rows 1000000
It creates a scratch database on TEST_DATABASE_URL's server, fills it with generate_series, and drops it.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
import tracemalloc
import uuid
from typing import Any

import psycopg
from sqlalchemy import text

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11")

FILL = """
INSERT INTO people (project_id, external_id, email, name, properties, created_at, updated_at)
SELECT :pid, 'u' || g, 'user' || g || '@example.com', 'User ' || g,
       jsonb_build_object('plan', (ARRAY['free','pro','enterprise'])[1 + g % 3],
                          'region', (ARRAY['eu','us','apac','latam'])[1 + g % 4]),
       now(), now()
FROM generate_series(1, :people) AS g;
INSERT INTO responses (project_id, survey_id, person_id, score, category, comment, channel, properties,
                       created_at, updated_at)
SELECT :pid, :sid, p.id, s.score,
       CASE WHEN s.score >= 9 THEN 'promoter' WHEN s.score >= 7 THEN 'passive' ELSE 'detractor' END,
       CASE WHEN g % 4 = 0 THEN 'Comment number ' || g END,
       'email', p.properties, now() - (g % 365) * interval '1 day' - (g % 86400) * interval '1 second', now()
FROM generate_series(1, :rows) AS g
JOIN people p ON p.project_id = :pid AND p.external_id = 'u' || (1 + g % :people)
CROSS JOIN LATERAL (SELECT (g::bigint * 7919) % 11 AS score) s
"""


def _timed(fn: Any, repeat: int = 5) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    """Fill a scratch database, then measure the export and the dashboard."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    name = f"survey_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(ADMIN_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = ADMIN_URL.rpartition("/")
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        run(url, args.rows)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def run(url: str, rows: int) -> None:
    """The measurements on a filled database."""
    import tempfile

    from flask_migrate import upgrade

    from survey_service import create_app
    from survey_service.extensions import db
    from survey_service.services.projects import create_project
    from survey_service.services.users import create_user

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "INSTANCE_PATH": tempfile.mkdtemp(),
            "REDIS_URL": REDIS_URL,
        }
    )
    with app.app_context():
        upgrade()
        new = create_project("Bench")
        pid, sid = new.project.id, db.session.execute(text("SELECT id FROM surveys")).scalar()
        create_user(pid, "bench@example.com", "bench-password-123", "admin")
        start = time.perf_counter()
        params = {"pid": pid, "sid": sid, "people": max(rows // 5, 1), "rows": rows}
        for statement in filter(str.strip, FILL.split(";")):
            db.session.execute(text(statement), params)
        db.session.commit()
        # What autovacuum would have done by now: statistics and the visibility map (index-only scans).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE people"))
            conn.execute(text("VACUUM ANALYZE responses"))
        print(f"filled {rows} responses in {time.perf_counter() - start:.1f}s")
    auth = {"Authorization": f"Bearer {new.secret_key}"}
    client = app.test_client()

    def export() -> tuple[int, int]:
        res = client.get("/api/v1/exports/promoters.csv", headers=auth, buffered=False)
        lines = size = 0
        for chunk in res.response:
            lines += chunk.count(b"\n") if isinstance(chunk, bytes) else chunk.count("\n")
            size += len(chunk)
        res.close()
        return lines - 1, size

    start = time.perf_counter()
    exported, size = export()
    elapsed = time.perf_counter() - start
    print(
        f"promoter export: {exported} rows, {size / 1e6:.1f} MB in {elapsed:.2f}s"
        f" = {exported / elapsed:,.0f} rows/s"
    )
    tracemalloc.start()
    export()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"promoter export: peak Python allocation {peak / 1e6:.1f} MB (tracemalloc), max RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )

    page = app.test_client()
    html = page.get("/login").get_data(as_text=True)
    token = html.split('name="csrf_token" value="')[1].split('"')[0]
    page.post(
        "/login", data={"email": "bench@example.com", "password": "bench-password-123", "csrf_token": token}
    )
    for query in ("", "?range=all&interval=quarter", "?segment=plan:pro&q=number"):
        times = _timed(lambda q=query: page.get(f"/dashboard{q}"), repeat=5)
        print(
            f"dashboard{query or ' (default)'}: median {statistics.median(times):.0f} ms,"
            f" min {min(times):.0f} ms"
        )
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    main()
