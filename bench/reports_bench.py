"""Benchmark the NPS report, the dashboard and the promoter export on PostgreSQL with many responses.

Run: .venv/bin/python -m bench.reports_bench --rows 1000000
It creates a scratch database on BENCH_DATABASE_URL's (else TEST_DATABASE_URL's) server, fills it with
generate_series, measures, and drops it. `--database NAME` keeps a named database between runs (filled
once), `--parts report,dashboard` picks the measurements.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from flask import Flask
from sqlalchemy import event, text

from bench.pg import ADMIN_URL

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
REPORT_TARGET, DASHBOARD_TARGET_MS = 1.3, 300.0
PARTS = ("report", "dashboard", "export")
BENCH_EMAIL, BENCH_PASSWORD = "bench@example.com", "bench-password-123"

# People carry plan, region and company; each response freezes its person's properties. Dates spread over
# the last 365 days (so the dashboard's default 12-month range covers every row); a quarter has comments.
FILL = """
INSERT INTO people (project_id, external_id, email, name, properties, created_at, updated_at)
SELECT :pid, 'u' || g, 'user' || g || '@example.com', 'User ' || g,
       jsonb_build_object('plan', (ARRAY['free','pro','enterprise'])[1 + g % 3],
                          'region', (ARRAY['eu','us','apac','latam'])[1 + g % 4],
                          'company', 'company-' || (g % 500)),
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


def _timed(fn: Callable[[], Any], repeat: int = 5) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    """Fill a scratch database (or reuse a named one), then measure the chosen parts."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="responses to load (default 1,000,000)")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)} (default: all)"
    )
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per figure (median; default 7)")
    parser.add_argument(
        "--database", help="use (and keep) this database on the server; created and filled when missing"
    )
    parser.add_argument("--queries", action="store_true", help="print each dashboard SQL statement's time")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    with _database(args.database) as url:
        run(url, args.rows, parts, args.repeat, args.queries)


@contextmanager
def _database(keep: str | None) -> Iterator[str]:
    """The SQLAlchemy URL of a scratch database (dropped afterwards) or of the named kept one."""
    name = keep or f"survey_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = ADMIN_URL.rpartition("/")
        try:
            yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
        finally:
            if not keep:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fill(app: Flask, rows: int) -> tuple[int, str]:
    """The bench project's id and secret key; loads `rows` responses unless a previous run did."""
    from flask_migrate import upgrade

    from survey_service.core import keys
    from survey_service.extensions import db
    from survey_service.models import Project
    from survey_service.services.projects import create_project
    from survey_service.services.users import create_user

    with app.app_context():
        upgrade()
        existing = db.session.execute(text("SELECT id FROM projects WHERE name = 'Bench'")).scalar()
        if existing is not None:
            count = db.session.execute(
                text("SELECT count(*) FROM responses WHERE project_id = :p"), {"p": existing}
            ).scalar()
            if count == rows:
                # Only the key's hash is stored: give the kept project a new key for this run.
                project = db.session.get(Project, existing)
                assert project is not None
                secret_key = keys.new_secret_key()
                project.secret_key_hash = keys.hash_key(secret_key)
                db.session.commit()
                print(f"reusing {count:,} responses")
                return existing, secret_key
            raise SystemExit(f"the kept database holds {count:,} responses, not {rows:,}: use another name")
        new = create_project("Bench")
        pid, sid = new.project.id, db.session.execute(text("SELECT id FROM surveys")).scalar()
        create_user(pid, BENCH_EMAIL, BENCH_PASSWORD, "admin")
        start = time.perf_counter()
        params = {"pid": pid, "sid": sid, "people": max(rows // 5, 1), "rows": rows}
        for statement in filter(str.strip, FILL.split(";")):
            db.session.execute(text(statement), params)
        db.session.commit()
        # What autovacuum would have done by now: statistics and the visibility map (index-only scans).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE people"))
            conn.execute(text("VACUUM ANALYZE responses"))
        print(f"filled {rows:,} responses in {time.perf_counter() - start:.1f}s")
        return pid, new.secret_key


def run(url: str, rows: int, parts: list[str], repeat: int = 7, queries: bool = False) -> None:
    """The measurements on a filled database."""
    from survey_service import create_app
    from survey_service.extensions import db

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "INSTANCE_PATH": tempfile.mkdtemp(),
            "REDIS_URL": REDIS_URL,
        }
    )
    pid, secret_key = _fill(app, rows)
    if "report" in parts:
        report_vs_sql(app, pid, repeat)
    if "dashboard" in parts:
        dashboard(app, repeat, queries)
    if "export" in parts:
        export(app, secret_key)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def report_vs_sql(app: Flask, pid: int, repeat: int) -> None:
    """nps_report(group_by=plan, interval=month) scanning, against the hand-written single-scan statements.

    Then, when per-day rollups are built, the same report reading them.
    """
    from bench.reporting import time_report
    from survey_service.extensions import db

    figures = time_report(app, pid, repeat)
    verdict = "ok" if figures["ratio"] <= REPORT_TARGET else "MISSED"
    print(
        f"report group_by=plan interval=month, {figures['responses']:,} responses"
        f" ({figures['groups']} groups, {figures['periods']} periods), scanning:\n"
        f"  ratio to hand-written SQL {figures['ratio']:.2f} (target <= {REPORT_TARGET}) {verdict}"
        f"  [{figures['report_ms']:.0f} vs {figures['ceiling_ms']:.0f} ms, median of {repeat}]\n"
        "  hand-written candidates: "
        + ", ".join(f"{name} {ms:.0f} ms" for name, ms in figures["ceilings_ms"].items())
        + f"; groups only {figures['groups_only_ms']:.0f} ms"
    )
    with app.app_context():
        built = db.session.scalar(
            text("SELECT count(*) FROM response_rollup_days WHERE built_version = version")
        )
        db.session.commit()
    if built:
        with_rollups = time_report(app, pid, repeat, use_rollups=True)
        print(
            f"  the same report reading the rollups of {built} days: {with_rollups['report_ms']:.0f} ms"
            f" ({with_rollups['report_ms'] / with_rollups['ceiling_ms']:.2f} of the hand-written scan)"
        )


@contextmanager
def _statement_times(app: Flask) -> Iterator[list[tuple[float, str]]]:
    """Collect (ms, first line of SQL) for every statement run while inside."""
    from survey_service.extensions import db

    found: list[tuple[float, str]] = []
    with app.app_context():
        engine = db.engine

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        started = conn.info["bench_started"].pop()
        found.append(((time.perf_counter() - started) * 1000, " ".join(statement.split())[:150]))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def dashboard(app: Flask, repeat: int, queries: bool) -> None:
    """Server time of the dashboard page (in-process: no HTTP, no browser), median of `repeat` runs."""
    page = app.test_client()
    html = page.get("/login").get_data(as_text=True)
    token = html.split('name="csrf_token" value="')[1].split('"')[0]
    page.post("/login", data={"email": BENCH_EMAIL, "password": BENCH_PASSWORD, "csrf_token": token})
    from survey_service.extensions import db
    from survey_service.reporting import rollups

    with app.app_context():
        pending = len(rollups.pending())
        db.session.commit()
    if pending:
        # What a deployment's worker does in the background: first the page without, then with.
        original = rollups.enabled
        rollups.enabled = lambda: False
        try:
            page.get("/dashboard")
            times = _timed(lambda: page.get("/dashboard"), repeat=repeat)
        finally:
            rollups.enabled = original
        print(
            f"dashboard without rollups (a full scan): median {statistics.median(times):.0f} ms,"
            f" min {min(times):.0f} ms"
        )
        start = time.perf_counter()
        with app.app_context():
            total, steps = rollups.build_all()
            built = sum(steps)
            db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE response_rollups"))  # autovacuum's job, done now
        print(f"rollups: built {built} of {total} days in {time.perf_counter() - start:.1f}s")
    for query in ("", "?range=all&interval=quarter", "?by=company", "?segment=plan:pro&q=number"):
        assert page.get(f"/dashboard{query}").status_code == 200  # warm-up
        times = _timed(functools.partial(page.get, f"/dashboard{query}"), repeat=repeat)
        median = statistics.median(times)
        verdict = "ok" if median <= DASHBOARD_TARGET_MS else "MISSED"
        print(
            f"dashboard{query or ' (default: 12 months by month, by plan)'}: median {median:.0f} ms,"
            f" min {min(times):.0f} ms (target <= {DASHBOARD_TARGET_MS:.0f} ms) {verdict}"
        )
        if queries:
            with _statement_times(app) as found:
                page.get(f"/dashboard{query}")
            for ms, sql in found:
                print(f"    {ms:7.1f} ms  {sql}")


def export(app: Flask, secret_key: str) -> None:
    """The promoter export's rows/s and peak Python allocation."""
    auth = {"Authorization": f"Bearer {secret_key}"}
    client = app.test_client()

    def fetch() -> tuple[int, int]:
        res = client.get("/api/v1/exports/promoters.csv", headers=auth, buffered=False)
        lines = size = 0
        for chunk in res.response:
            lines += chunk.count(b"\n") if isinstance(chunk, bytes) else chunk.count("\n")
            size += len(chunk)
        res.close()
        return lines - 1, size

    start = time.perf_counter()
    exported, size = fetch()
    elapsed = time.perf_counter() - start
    print(
        f"promoter export: {exported} rows, {size / 1e6:.1f} MB in {elapsed:.2f}s"
        f" = {exported / elapsed:,.0f} rows/s"
    )
    tracemalloc.start()
    fetch()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"promoter export: peak Python allocation {peak / 1e6:.1f} MB (tracemalloc), max RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
