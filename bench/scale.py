"""The reporting figures at scale (issue 15): 10M responses, each figure against a ceiling in the same run.

Run: .venv/bin/python -m bench.scale --rows 10000000 --database bench_scale_10m
     .venv/bin/python -m bench.scale --rows 200000                  (smoke test, about a minute)

Loads N responses with INSERT … SELECT generate_series (chunks of a million, oldest first, as they would
have arrived): several surveys, channels, people with frozen properties, comments on ~30%, two years of
dates with growth; then builds the per-day rollups as the worker would and measures:
- the dashboard page model (`dashboard_page`) and the page (`GET /dashboard`, in-process) with the rollups
  built, for four views (goal <= 300 ms);
- the NPS report when it must scan (a `where` on one property, grouped by another: no rollup answers it)
  against the fastest hand-written SQL giving the same counts (goal <= 1.3x);
- the report by group_by and interval reading the rollups, against the same hand-written scan;
- the exports (responses CSV, responses JSON lines, promoters CSV) in a fresh process each: rows/s
  (goal >= 100,000) and peak RSS over about a million rows and over all of them (flat: within 10%).
Without `--database` the database is created and dropped; with it, it is filled once and kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg
from flask import Flask
from sqlalchemy import text

from bench.pg import libpq_url
from bench.reporting import _interleaved_medians
from bench.reports_bench import BENCH_EMAIL, BENCH_PASSWORD, _database, _timed

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
DASHBOARD_TARGET_MS, REPORT_TARGET, EXPORT_TARGET_ROWS_S, RSS_FLAT = 300.0, 1.3, 100_000, 1.10
CHUNK = 1_000_000
PARTS = ("dashboard", "report", "export")
# The neighbour project holds this share of the bench project's rows: reports must skip them by index.
NEIGHBOUR_SHARE = 20
SURVEYS = ("Onboarding NPS", "Relationship NPS", "Support NPS")  # besides each project's default "NPS"
DASHBOARD_VIEWS = ("", "?range=all&interval=quarter", "?by=region&range=90d", "?segment=plan:pro&q=slow")

# People: properties from a hash of their number (plan missing for 1 in 25; `seats` has thousands of
# values, so it is too wide for the rollups, as an id-like or numeric property is in real data).
PEOPLE_SQL = """
INSERT INTO people (project_id, external_id, email, name, properties, created_at, updated_at)
SELECT %(project)s, 'u' || n, 'user' || n || '@example.com', 'User ' || n,
       jsonb_strip_nulls(jsonb_build_object(
         'plan', CASE WHEN h %% 25 = 0 THEN NULL
                      ELSE (ARRAY['free', 'starter', 'pro', 'enterprise'])[1 + h %% 4] END,
         'region', (ARRAY['eu', 'us', 'apac', 'latam', 'mea'])[1 + (h / 7) %% 5],
         'company', 'company-' || (h / 35) %% 300,
         'locale', (ARRAY['en', 'de', 'fr', 'es', 'pt', 'ja'])[1 + (h / 11) %% 6],
         'seats', 1 + (h / 13) %% 5000)),
       %(start)s, %(start)s
FROM generate_series(1, %(people)s::int) n, LATERAL (SELECT abs(hashint4(n)) AS h) hh
"""

# Responses g = first..last, oldest first: created_at over 730 days with growth (density rising with
# time: 60% in the last year); each from a person (their properties frozen), a survey (55% the default),
# a channel (email 40%, in-app 30%, api 20%, link 8%, import 2%); scores skewed like real NPS (about
# 41% promoters, 28% passives, 31% detractors); a comment on 30%; consent on 30% of promoters;
# some detractors followed up.
RESPONSES_SQL = """
INSERT INTO responses (project_id, survey_id, person_id, score, category, comment, channel, properties,
                       reference_consent, followup_status, followup_tags, created_at, updated_at)
SELECT %(project)s, (%(surveys)s::int[])[1 + CASE WHEN h2 %% 20 < 11 THEN 0 ELSE 1 + h2 %% 3 END],
       p.id, s.score,
       CASE WHEN s.score >= 9 THEN 'promoter' WHEN s.score >= 7 THEN 'passive' ELSE 'detractor' END,
       CASE WHEN h3 %% 10 < 3 THEN
         (ARRAY['Love the new dashboard', 'Too slow on mobile', 'Pricing is confusing', 'Support was great',
                'Missing an export to Excel', 'Onboarding took too long', 'Great product, fast',
                'Billing issue last month', 'Search is slow', 'Would recommend to a friend'])[1 + h3 %% 10]
         || ' (' || g || ')' END,
       (ARRAY['email', 'email', 'email', 'email', 'in_app', 'in_app', 'in_app', 'api', 'api', 'link'])
         [1 + (h2 / 20) %% 10],
       p.properties,
       CASE WHEN s.score >= 9 AND h3 %% 10 >= 7 THEN true END,
       CASE WHEN s.score <= 6 AND (h2 / 200) %% 10 = 0 THEN 'contacted'
            WHEN s.score <= 6 AND (h2 / 200) %% 10 = 1 THEN 'resolved' ELSE 'new' END,
       '[]'::jsonb,
       t.at, t.at
FROM generate_series(%(first)s::int, %(last)s::int) g,
     LATERAL (SELECT abs(hashint4(g)) AS h1, abs(hashint4(g + 1)) AS h2, abs(hashint4(g + 2)) AS h3) hh,
     LATERAL (SELECT (ARRAY[0, 1, 2, 3, 4, 5, 5, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9,
                            10, 10, 10, 10, 10, 10, 10])[1 + h1 %% 32]::smallint AS score) s,
     LATERAL (SELECT %(end)s::timestamptz - interval '730 days'
                     * (1 - power((g - 0.5) / %(rows)s::float, 0.75)) AS at) t,
     LATERAL (SELECT id, properties FROM people
              WHERE id = %(first_person)s + (h1 / 32) %% %(people)s) p
"""


def _fill(app: Flask, url: str, rows: int, log: Callable[[str], None]) -> tuple[int, str]:
    """The bench project's id and a fresh secret key; loads `rows` responses unless a previous run did."""
    from flask_migrate import upgrade

    from survey_service.core import keys
    from survey_service.extensions import db
    from survey_service.models import Project, Survey
    from survey_service.services.projects import create_project
    from survey_service.services.users import create_user

    with app.app_context():
        upgrade()
        existing = db.session.execute(text("SELECT id FROM projects WHERE name = 'Bench'")).scalar()
        if existing is not None:
            count = db.session.scalar(
                text("SELECT count(*) FROM responses WHERE project_id = :p"), {"p": existing}
            )
            if count != rows:
                raise SystemExit(
                    f"the kept database holds {count:,} responses, not {rows:,}: use another name"
                )
            project = db.session.get(Project, existing)
            assert project is not None
            secret_key = keys.new_secret_key()  # only the key's hash is stored: a new key for this run
            project.secret_key_hash = keys.hash_key(secret_key)
            db.session.commit()
            log(f"reusing {count:,} responses")
            return existing, secret_key
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        made = {}
        for name, n in (("Bench", rows), ("Neighbour", max(rows // NEIGHBOUR_SHARE, 1))):
            new = create_project(name)
            pid = new.project.id
            default = db.session.scalar(text("SELECT id FROM surveys WHERE project_id = :p"), {"p": pid})
            extra = []
            for title in SURVEYS:
                survey = Survey(project_id=pid, kind="nps", name=title, product_name=name, question="?")
                db.session.add(survey)
                db.session.flush()
                extra.append(survey.id)
            db.session.commit()
            made[name] = (pid, [default, *extra], n, new.secret_key)
        bench_pid = made["Bench"][0]
        create_user(bench_pid, BENCH_EMAIL, BENCH_PASSWORD, "admin")
        db.session.commit()
    started = time.perf_counter()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for name, (pid, surveys, n, _) in made.items():
            people = max(n // 5, 1)
            conn.execute(PEOPLE_SQL, {"project": pid, "people": people, "start": end})
            first_person = conn.execute("SELECT min(id) FROM people WHERE project_id = %s", (pid,)).fetchone()
            assert first_person is not None
            for first in range(1, n + 1, CHUNK):
                last = min(first + CHUNK - 1, n)
                params = {
                    "project": pid,
                    "surveys": surveys,
                    "first": first,
                    "last": last,
                    "rows": n,
                    "end": end,
                    "people": people,
                    "first_person": first_person[0],
                }
                conn.execute(RESPONSES_SQL, params)
                log(f"  {name}: {last:,} of {n:,} responses ({time.perf_counter() - started:.0f}s)")
        # What autovacuum would have done by now: statistics and the visibility map (index-only scans).
        conn.execute("VACUUM ANALYZE people")
        conn.execute("VACUUM ANALYZE responses")
    neighbour, seconds = made["Neighbour"][2], time.perf_counter() - started
    log(f"filled {rows:,} responses (+{neighbour:,} of a neighbour) in {seconds:.0f}s")
    return bench_pid, made["Bench"][3]


def build_rollups(app: Flask, log: Callable[[str], None]) -> dict[str, Any]:
    """Build every pending day's rollups as the worker's background loop would; seconds and days."""
    from survey_service.extensions import db
    from survey_service.reporting import rollups

    started = time.perf_counter()
    with app.app_context():
        total, steps = rollups.build_all()
        built = 0
        for ok in steps:
            built += ok
            if built and built % 100 == 0:
                log(f"  rollups: {built} of {total} days ({time.perf_counter() - started:.0f}s)")
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE response_rollups"))
            conn.execute(text("VACUUM ANALYZE response_rollup_days"))
        rollup_rows = db.session.scalar(text("SELECT count(*) FROM response_rollups"))
        db.session.commit()
    seconds = time.perf_counter() - started
    if total:
        log(f"rollups: built {built} of {total} days in {seconds:.0f}s")
    return {"days_built": built, "days_pending": total, "seconds": seconds, "rollup_rows": rollup_rows}


def dashboard(app: Flask, pid: int, repeat: int) -> dict[str, Any]:
    """Median ms of the page model and of the whole page (in-process) per view, rollups built."""
    from urllib.parse import parse_qs

    from bench.reports_bench import _statement_times
    from survey_service.dashboard.forms import DashboardQuery
    from survey_service.extensions import db
    from survey_service.reporting.dashboard import dashboard_page

    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = html.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"email": BENCH_EMAIL, "password": BENCH_PASSWORD, "csrf_token": token})
    found: dict[str, Any] = {}
    for view in DASHBOARD_VIEWS:
        args = {k: v[0] for k, v in parse_qs(view.lstrip("?")).items()}

        def model(args: dict[str, str] = args) -> None:
            with app.app_context():
                dashboard_page(pid, DashboardQuery().load(args), [])
                db.session.remove()

        assert client.get(f"/dashboard{view}").status_code == 200  # warm-up (plans, caches)
        model()
        model_ms = _timed(model, repeat)
        page_ms = _timed(partial(client.get, f"/dashboard{view}"), repeat)
        with _statement_times(app) as statements:
            client.get(f"/dashboard{view}")
        found[view or "default"] = {
            "model_ms": statistics.median(model_ms),
            "page_ms": statistics.median(page_ms),
            "page_min_ms": min(page_ms),
            "sql_ms": sum(ms for ms, _ in statements),
            "statements": len(statements),
            "slowest": sorted(statements, reverse=True)[:4],
        }
    return found


# The hand-written SQL of the report that must scan: the same counts (per month, per plan, comments too)
# for the responses with region = 'eu', each from one scan; the fastest is the ceiling.
SCAN_WHERE = ("region", "eu")
_MONTH = "date_trunc('month', timezone('UTC', created_at))"
_COUNTS = """count(*) FILTER (WHERE category = 'promoter') AS promoters,
       count(*) FILTER (WHERE category = 'passive') AS passives,
       count(*) FILTER (WHERE category = 'detractor') AS detractors,
       count(*) FILTER (WHERE comment <> '') AS comments"""
_WHERE = "WHERE project_id = :project AND category IS NOT NULL AND properties ->> 'region' = 'eu'"
SCAN_CEILINGS = {
    "cells": f"SELECT {_MONTH} AS period, properties ->> 'plan' AS key, {_COUNTS} FROM responses {_WHERE}"
    " GROUP BY 1, 2",
    "grouping_sets": f"SELECT {_MONTH} AS period, properties ->> 'plan' AS key,"
    f" GROUPING(properties ->> 'plan') AS is_period, {_COUNTS} FROM responses {_WHERE}"
    f" GROUP BY GROUPING SETS (({_MONTH}), (properties ->> 'plan'))",
    "cells_rollup": f"""WITH cells AS (SELECT {_MONTH} AS bucket, properties ->> 'plan' AS key, {_COUNTS}
  FROM responses {_WHERE} GROUP BY 1, 2)
SELECT bucket, NULL AS key, sum(promoters), sum(passives), sum(detractors), sum(comments)
FROM cells GROUP BY 1
UNION ALL
SELECT NULL, key, sum(promoters), sum(passives), sum(detractors), sum(comments) FROM cells GROUP BY 2""",
}
# Reports the rollups answer (group_by, interval, range in days or None for all time), timed reading them
# and, once, scanning (the hand-written one-scan statement of the same cells) for scale.
ROLLUP_REPORTS = (
    ("plan", "month", None),
    ("region", "week", 365),
    ("company", "month", 365),
    (None, "day", 90),
)


def _sql_ms(app: Flask, sql: str, params: dict[str, Any]) -> tuple[float, list[Any]]:
    from survey_service.extensions import db

    with app.app_context():
        started = time.perf_counter()
        rows = list(db.session.execute(text(sql), params))
        elapsed = (time.perf_counter() - started) * 1000
        db.session.rollback()
    return elapsed, rows


def reports(app: Flask, pid: int, repeat: int) -> dict[str, Any]:
    """The report that must scan vs the hand-written SQL (interleaved medians), then rollup-backed reports."""
    from datetime import timedelta

    from survey_service.core.clock import now
    from survey_service.extensions import db
    from survey_service.reporting.reports import nps_report

    def report(**kwargs: Any) -> dict[str, Any]:
        with app.app_context():
            result = nps_report(pid, **kwargs)
            db.session.remove()
        return result

    scan = partial(report, group_by="plan", interval="month", where=[SCAN_WHERE])
    sample = scan()
    _, cells = _sql_ms(app, SCAN_CEILINGS["cells"], {"project": pid})
    by_plan: dict[str | None, int] = {}
    for row in cells:
        by_plan[row.key] = by_plan.get(row.key, 0) + row.promoters + row.passives + row.detractors
    if by_plan != {g["key"]: g["responses"] for g in sample["groups"]}:
        raise AssertionError("the report's groups differ from the hand-written SQL's")
    candidates: dict[str, Callable[[], Any]] = {"report": scan}
    candidates |= {name: partial(_sql_ms, app, sql, {"project": pid}) for name, sql in SCAN_CEILINGS.items()}
    medians = {name: s * 1000 for name, s in _interleaved_medians(candidates, repeat).items()}
    report_ms = medians.pop("report")
    best = min(medians, key=lambda name: medians[name])
    found: dict[str, Any] = {
        "must_scan": {
            "where": "=".join(SCAN_WHERE),
            "responses": sample["overall"]["responses"],
            "report_ms": report_ms,
            "ceilings_ms": medians,
            "ceiling": best,
            "ratio": report_ms / medians[best],
        },
        "with_rollups": [],
    }
    for group_by, interval, days in ROLLUP_REPORTS:
        since = None if days is None else now() - timedelta(days=days)
        work = partial(report, group_by=group_by, interval=interval, since=since)
        work()
        times = _timed(work, repeat)
        period = f"date_trunc('{interval}', timezone('UTC', created_at))"
        key = f"properties ->> '{group_by}'" if group_by else "NULL"
        range_sql = "" if since is None else " AND created_at >= :since"
        sql = (
            f"SELECT {period}, {key}, {_COUNTS} FROM responses"
            f" WHERE project_id = :project AND category IS NOT NULL{range_sql} GROUP BY 1, 2"
        )
        scan_ms, _ = _sql_ms(app, sql, {"project": pid, "since": since})
        found["with_rollups"].append(
            {
                "group_by": group_by,
                "interval": interval,
                "days": days,
                "report_ms": statistics.median(times),
                "scan_sql_ms": scan_ms,
            }
        )
    return found


def exports(url: str, instance: str, pid: int, secret_key: str, log: Callable[[str], None]) -> dict[str, Any]:
    """Each export over about a million rows and over all of them, each in a fresh process."""
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT created_at FROM responses WHERE project_id = %s"
            " ORDER BY created_at DESC OFFSET 999999 LIMIT 1",
            (pid,),
        ).fetchone()
    since = None if row is None else row[0].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    found: dict[str, Any] = {}
    for path in ("responses.csv", "responses.jsonl", "promoters.csv"):
        runs = {}
        for size, query in (("1M", f"?since={since}" if since else ""), ("all", "")):
            if size == "1M" and not since:
                continue
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.export_probe",
                    url,
                    instance,
                    secret_key,
                    f"/api/v1/exports/{path}{query}",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"export_probe failed:\n{out.stderr}")
            runs[size] = json.loads(out.stdout.strip().splitlines()[-1])
            log(f"  {path} {size}: {runs[size]}")
        found[path] = runs
    return found


def summary(figures: dict[str, Any]) -> str:
    """The figures as the text block printed (and pasted into bench/README.md)."""

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    rollup = figures["rollups"]
    lines = [
        f"{figures['rows']:,} responses; {os.cpu_count()} CPUs; load average at the end "
        + ", ".join(f"{x:.2f}" for x in figures["load_average"]),
        f"rollups: {rollup['rollup_rows']:,} rows"
        + (
            f", {rollup['days_built']} days built in {rollup['seconds']:.0f}s" if rollup["days_built"] else ""
        ),
    ]
    if "dashboard" in figures:
        lines.append(f"dashboard with rollups built (median; goal <= {DASHBOARD_TARGET_MS:.0f} ms):")
        for view, f in figures["dashboard"].items():
            lines.append(
                f"  {view:<28} page {f['page_ms']:6.0f} ms  model {f['model_ms']:6.0f} ms"
                f"  SQL {f['sql_ms']:5.0f} ms in {f['statements']} statements"
                f"  {mark(f['page_ms'] <= DASHBOARD_TARGET_MS)}"
            )
    if "report" in figures:
        scan = figures["report"]["must_scan"]
        lines += [
            f"report that must scan (where {scan['where']}, group_by=plan, interval=month, all time,"
            f" {scan['responses']:,} responses):",
            f"  ratio to the fastest hand-written SQL {scan['ratio']:.2f} (goal <= {REPORT_TARGET})"
            f"  {mark(scan['ratio'] <= REPORT_TARGET)}  [{scan['report_ms']:.0f} vs"
            f" {scan['ceilings_ms'][scan['ceiling']]:.0f} ms, median]",
            "  hand-written: " + ", ".join(f"{n} {ms:.0f} ms" for n, ms in scan["ceilings_ms"].items()),
            "report reading the rollups (median) vs one hand-written scan of the same cells:",
        ]
        for r in figures["report"]["with_rollups"]:
            span = "all time" if r["days"] is None else f"{r['days']} days"
            lines.append(
                f"  group_by={r['group_by']} interval={r['interval']} {span}: {r['report_ms']:.0f} ms"
                f" (scan {r['scan_sql_ms']:.0f} ms, x{r['report_ms'] / r['scan_sql_ms']:.2f})"
            )
    if "export" in figures:
        lines.append(f"exports (fresh process each; goal >= {EXPORT_TARGET_ROWS_S:,} rows/s, peak RSS flat):")
        for path, runs in figures["export"].items():
            for r in runs.values():
                rate = r["rows"] / r["seconds"]
                lines.append(
                    f"  {path:<16} {r['rows']:>10,} rows {r['seconds']:6.1f}s {rate:>9,.0f} rows/s"
                    f"  RSS max {r['rss_max_kb'] / 1024:6.1f} MiB  {mark(rate >= EXPORT_TARGET_ROWS_S)}"
                )
            if len(runs) == 2:
                growth = runs["all"]["rss_max_kb"] / runs["1M"]["rss_max_kb"]
                lines.append(f"  {'':<16} RSS all / 1M x{growth:.2f}  {mark(growth <= RSS_FLAT)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Fill (or reuse) the database, build the rollups, measure the chosen parts, print the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="responses to load (default 10,000,000)")
    parser.add_argument("--database", help="use (and keep) this database; created and filled when missing")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (median; default 5)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON to PATH")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if set(parts) - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(set(parts) - set(PARTS)))}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with _database(args.database) as url:
        figures = run(url, args.rows, parts, args.repeat, log)
    print(summary(figures))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2, default=str)
    return 0


def run(url: str, rows: int, parts: list[str], repeat: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Every figure of the chosen parts on a filled database (rollups built first)."""
    from survey_service import create_app
    from survey_service.extensions import db

    instance = tempfile.mkdtemp(prefix="bench-scale-")
    config = {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": instance}
    app = create_app({**config, "REDIS_URL": REDIS_URL})
    pid, secret_key = _fill(app, url, rows, log)
    figures: dict[str, Any] = {"rows": rows, "rollups": build_rollups(app, log)}
    if "dashboard" in parts:
        log("dashboard ...")
        figures["dashboard"] = dashboard(app, pid, repeat)
    if "report" in parts:
        log("report ...")
        figures["report"] = reports(app, pid, repeat)
    if "export" in parts:
        log("exports ...")
        figures["export"] = exports(url, instance, pid, secret_key, log)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    figures["load_average"] = os.getloadavg()
    figures["cpus"] = os.cpu_count()
    return figures


if __name__ == "__main__":
    sys.exit(main())
