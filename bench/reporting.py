"""The NPS report grouped by a property over many responses vs the best hand-written SQL aggregate."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
from flask import Flask
from sqlalchemy import text

from bench.pg import libpq_url
from survey_service.extensions import db
from survey_service.reporting.reports import nps_report


@dataclass(frozen=True)
class ReportSizes:
    """Row counts at which memory is measured (the time ratio is taken at the larger) and repetitions."""

    small_rows: int
    large_rows: int
    repetitions: int
    people: int


FULL = ReportSizes(small_rows=100_000, large_rows=1_000_000, repetitions=9, people=20_000)
QUICK = ReportSizes(small_rows=5_000, large_rows=30_000, repetitions=3, people=1_000)

PEOPLE_SQL = """
INSERT INTO people (project_id, external_id, properties, created_at, updated_at)
SELECT %(project)s, 'person-' || g, '{}'::jsonb, now(), now() FROM generate_series(1, %(people)s::int) g
"""

# Scores and properties from a hash of the row number: deterministic, evenly spread, no Python loop.
# About 1 in 25 responses has no plan (the report's `null` group); created_at spans 24 months.
RESPONSES_SQL = """
INSERT INTO responses (project_id, survey_id, person_id, score, category, comment, channel,
                       properties, created_at, updated_at)
SELECT %(project)s, %(survey)s, (SELECT min(id) FROM people WHERE project_id = %(project)s)
         + (g %% %(people)s),
       s.score,
       CASE WHEN s.score >= 9 THEN 'promoter' WHEN s.score >= 7 THEN 'passive' ELSE 'detractor' END,
       CASE WHEN g %% 4 = 0 THEN 'Comment number ' || g END,
       'api',
       jsonb_strip_nulls(jsonb_build_object(
         'plan', CASE WHEN h %% 25 = 0 THEN NULL
                      ELSE (ARRAY['free', 'starter', 'pro', 'enterprise'])[1 + h %% 4] END,
         'region', (ARRAY['eu', 'us', 'apac'])[1 + (h / 7) %% 3],
         'mrr', (h / 11) %% 500)),
       t.at, t.at
FROM generate_series(%(first)s::int, %(last)s::int) g,
     LATERAL (SELECT abs(hashint4(g)) AS h) hh,
     LATERAL (SELECT (abs(hashint4(g + 1)) %% 11)::smallint AS score) s,
     LATERAL (SELECT timestamptz '2024-01-01 00:00+00'
                     + (abs(hashint4(g + 2)) %% (730 * 24 * 60)) * interval '1 minute' AS at) t
"""

# The ceiling: the fastest of these hand-written statements, each giving the same information as the
# report (per-period and per-plan filtered counts) from one scan of the rows.
MONTH = "date_trunc('month', timezone('UTC', created_at))"
COUNTS = """count(*) FILTER (WHERE category = 'promoter') AS promoters,
       count(*) FILTER (WHERE category = 'passive') AS passives,
       count(*) FILTER (WHERE category = 'detractor') AS detractors"""
WHERE = "WHERE project_id = :project AND category IS NOT NULL"
CEILINGS = {
    # Every (month, plan) cell; the client adds up ~120 rows both ways.
    "cells": f"""
SELECT {MONTH} AS period, properties ->> 'plan' AS key, {COUNTS}
FROM responses {WHERE} GROUP BY 1, 2""",
    # Both groupings in one statement.
    "grouping_sets": f"""
SELECT to_char({MONTH}, 'YYYY-MM-DD') AS period, properties ->> 'plan' AS key,
       GROUPING(properties ->> 'plan') AS is_period_row, {COUNTS}
FROM responses {WHERE} GROUP BY GROUPING SETS (({MONTH}), (properties ->> 'plan'))""",
    # The cells rolled up by the database.
    "cells_rollup": f"""
WITH cells AS (SELECT {MONTH} AS bucket, properties ->> 'plan' AS key, {COUNTS}
               FROM responses {WHERE} GROUP BY 1, 2)
SELECT to_char(bucket, 'YYYY-MM-DD') AS period, NULL AS key,
       sum(promoters) AS promoters, sum(passives) AS passives, sum(detractors) AS detractors
FROM cells GROUP BY bucket
UNION ALL
SELECT NULL, key, sum(promoters), sum(passives), sum(detractors) FROM cells GROUP BY key""",
}

# For reference only: groups without the series, less information than the report gives.
GROUPS_ONLY_SQL = f"SELECT properties ->> 'plan' AS key, {COUNTS} FROM responses {WHERE} GROUP BY 1"


def load_rows(database_url: str, project_id: int, survey_id: int, first: int, last: int, people: int) -> None:
    """Insert responses numbered first..last in one INSERT … SELECT, then VACUUM ANALYZE."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        if first == 1:
            conn.execute(PEOPLE_SQL, {"project": project_id, "people": people})
        params = {"project": project_id, "survey": survey_id, "people": people, "first": first, "last": last}
        conn.execute(RESPONSES_SQL, params)
        conn.execute("VACUUM ANALYZE responses")


def _interleaved_medians(candidates: dict[str, Callable[[], Any]], repetitions: int) -> dict[str, float]:
    """Median seconds of each candidate, run in turn each round so load from elsewhere hits all alike."""
    for work in candidates.values():
        work()  # warm-up: plans cached, pages in shared buffers
    timings: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repetitions):
        for name, work in candidates.items():
            started = time.perf_counter()
            work()
            timings[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in timings.items()}


def _run_sql(sql: str, project_id: int) -> list[Any]:
    rows = list(db.session.execute(text(sql), {"project": project_id}).all())
    db.session.rollback()
    return rows


def _check_same_groups(report: dict[str, Any], cells: list[Any]) -> None:
    """The report's groups must count what the hand-written SQL counts, or the timing is moot."""
    by_plan: dict[str | None, int] = {}
    for row in cells:
        by_plan[row.key] = by_plan.get(row.key, 0) + row.promoters + row.passives + row.detractors
    reported = {g["key"]: g["responses"] for g in report["groups"]}
    if by_plan != reported:
        raise AssertionError(f"report groups {reported} differ from the hand-written SQL's {by_plan}")


def time_report(app: Flask, project_id: int, repetitions: int, use_rollups: bool = False) -> dict[str, Any]:
    """Median seconds of nps_report(group_by="plan", interval="month") and of each SQL ceiling.

    The report scans like the ceilings do, unless `use_rollups` lets it read per-day rollups.
    """
    from survey_service.reporting import rollups

    with app.app_context():

        def report() -> dict[str, Any]:
            original = rollups.enabled
            if not use_rollups:
                rollups.enabled = lambda: False
            try:
                result = nps_report(project_id, group_by="plan", interval="month")
            finally:
                rollups.enabled = original
            db.session.rollback()
            return result

        sample = report()
        _check_same_groups(sample, _run_sql(CEILINGS["cells"], project_id))
        candidates: dict[str, Callable[[], Any]] = {"report": report}
        candidates |= {name: partial(_run_sql, sql, project_id) for name, sql in CEILINGS.items()}
        candidates["groups_only"] = partial(_run_sql, GROUPS_ONLY_SQL, project_id)
        medians = _interleaved_medians(candidates, repetitions)
    report_s, groups_s = medians.pop("report"), medians.pop("groups_only")
    ceilings = medians
    best = min(ceilings, key=lambda name: ceilings[name])
    return {
        "responses": sample["overall"]["responses"],
        "groups": len(sample["groups"]),
        "periods": len(sample["series"]),
        "report_ms": report_s * 1000,
        "ceilings_ms": {name: seconds * 1000 for name, seconds in ceilings.items()},
        "ceiling": best,
        "ceiling_ms": ceilings[best] * 1000,
        "groups_only_ms": groups_s * 1000,
        "ratio": report_s / ceilings[best],
        "ratio_to_groups_only": report_s / groups_s,
    }


def peak_rss(database_url: str, app_secret: str, instance: str, project_id: int) -> dict[str, int]:
    """Peak RSS (KiB) of a fresh process before and after computing the report once."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.rss_probe", database_url, app_secret, instance, str(project_id)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"rss_probe failed:\n{out.stderr}")
    data: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return data
