"""Themes at scale on PostgreSQL: applying them to 1M responses (comments on 30%), the themes report
against the NPS report in the same run, and the dashboard with its themes panel (rollups built).

Run: PYTHONPATH=. .venv/bin/python -m bench.themes_bench --rows 1000000
A scratch database on BENCH_DATABASE_URL's (else TEST_DATABASE_URL's) server, dropped at the end.
Comments are the labelled set's (tests/data/themes), one or two of them joined, in four languages.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text

from bench.pg import temporary_database
from bench.themes_quality import LABELLED
from survey_service import create_app
from survey_service.core import keys
from survey_service.extensions import db
from survey_service.models import Project
from survey_service.reporting import rollups, theme_report
from survey_service.services.projects import create_project
from survey_service.services.users import create_user
from survey_service.themes import quality, service

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
APPLY_TARGET, REPORT_RATIO_TARGET, PANEL_TARGET_MS = 2000.0, 1.5, 300.0
EMAIL, PASSWORD = "bench@example.com", "bench-password-123"

FILL = """
INSERT INTO people (project_id, external_id, email, properties, locale, created_at, updated_at)
SELECT :pid, 'u' || g, 'user' || g || '@example.com',
       jsonb_build_object('plan', (ARRAY['free','pro','enterprise'])[1 + g % 3]),
       (ARRAY['en','de','fr','es', NULL])[1 + g % 5], now(), now()
FROM generate_series(1, :people) AS g;
INSERT INTO responses (project_id, survey_id, person_id, score, category, comment, channel, properties,
                       created_at, updated_at)
SELECT :pid, :sid, p.id, s.score,
       CASE WHEN s.score >= 9 THEN 'promoter' WHEN s.score >= 7 THEN 'passive' ELSE 'detractor' END,
       CASE WHEN g % 10 < 3 THEN c1.comment || CASE WHEN g % 3 = 0 THEN ' ' || c2.comment ELSE '' END END,
       'email', p.properties, now() - (g % 365) * interval '1 day' - (g % 86400) * interval '1 second', now()
FROM generate_series(1, :rows) AS g
JOIN people p ON p.project_id = :pid AND p.external_id = 'u' || (1 + g % :people)
CROSS JOIN LATERAL (SELECT (g::bigint * 7919) % 11 AS score) s
JOIN bench_comments c1 ON c1.i = abs(hashint4(g)) % :n
JOIN bench_comments c2 ON c2.i = abs(hashint4(g + 1)) % :n
"""


def _fill(app: Flask, rows: int) -> int:
    with app.app_context():
        upgrade()
        new = create_project("Bench")
        pid = new.project.id
        sid = db.session.execute(text("SELECT id FROM surveys")).scalar()
        create_user(pid, EMAIL, PASSWORD, "admin")
        comments = [r.comment for r in quality.load(LABELLED)]
        db.session.execute(text("CREATE TABLE bench_comments (i int PRIMARY KEY, comment text)"))
        db.session.execute(
            text("INSERT INTO bench_comments VALUES (:i, :c)"),
            [{"i": i, "c": c} for i, c in enumerate(comments)],
        )
        params = {"pid": pid, "sid": sid, "people": max(rows // 5, 1), "rows": rows, "n": len(comments)}
        start = time.perf_counter()
        for statement in filter(str.strip, FILL.split(";")):
            db.session.execute(text(statement), params)
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE people"))
            conn.execute(text("VACUUM ANALYZE responses"))
        print(f"filled {rows:,} responses in {time.perf_counter() - start:.1f}s")
        return pid


def _interleaved(candidates: Mapping[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeat):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def _get(client: Any, path: str, headers: dict[str, str]) -> None:
    res = client.get(path, headers=headers)
    assert res.status_code == 200, res.get_data(as_text=True)[:300]


def run(url: str, rows: int, repeat: int) -> dict[str, float]:
    """Fill, apply, build rollups, measure; return the figures."""
    with tempfile.TemporaryDirectory(prefix="bench-themes-") as instance:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": url,
                "SECRET_KEY": "bench-themes",
                "REDIS_URL": REDIS_URL,
                "INSTANCE_PATH": instance,
                "API_RATE_LIMIT": 0,
            }
        )
        pid = _fill(app, rows)
        figures: dict[str, float] = {}
        with app.app_context():
            comments = db.session.execute(
                text("SELECT count(*) FROM responses WHERE project_id = :p AND comment <> ''"), {"p": pid}
            ).scalar_one()
            start = time.perf_counter()
            done = service.reapply(pid)
            seconds = time.perf_counter() - start
            assert done == comments
            figures["apply_per_s"] = done / seconds
            print(
                f"themes applied to {done:,} comments in {seconds:.1f}s: {done / seconds:,.0f} comments/s"
                f" (target >= {APPLY_TARGET:,.0f}) {'ok' if done / seconds >= APPLY_TARGET else 'MISSED'}"
            )
            start = time.perf_counter()
            total, steps = rollups.build_all()
            built = sum(steps)
            db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("response_analyses", "response_themes", "response_rollups", "theme_rollups"):
                    conn.execute(text(f"VACUUM ANALYZE {table}"))
            print(f"rollups: built {built} of {total} days in {time.perf_counter() - start:.1f}s")
        client = app.test_client()
        with app.app_context():
            project = db.session.get(Project, pid)
            assert project is not None
            secret = keys.new_secret_key()
            project.secret_key_hash = keys.hash_key(secret)
            db.session.commit()
        auth = {"Authorization": f"Bearer {secret}"}
        candidates = {
            "nps": functools.partial(_get, client, "/api/v1/reports/nps", auth),
            "themes": functools.partial(_get, client, "/api/v1/reports/themes", auth),
        }
        for fn in candidates.values():
            fn()  # warm-up
        times = _interleaved(candidates, repeat)
        nps_ms, themes_ms = statistics.median(times["nps"]), statistics.median(times["themes"])
        figures |= {"nps_ms": nps_ms, "themes_ms": themes_ms, "ratio": themes_ms / nps_ms}
        print(
            f"NPS report median {nps_ms:.0f} ms; themes report median {themes_ms:.0f} ms:"
            f" {themes_ms / nps_ms:.2f}x (target <= {REPORT_RATIO_TARGET}x)"
            f" {'ok' if themes_ms / nps_ms <= REPORT_RATIO_TARGET else 'MISSED'}"
        )
        with app.app_context():
            panel = _interleaved(
                {"panel": lambda: theme_report.themes_report(pid, since=None, examples=0)}, repeat
            )["panel"]
        figures["panel_ms"] = statistics.median(panel)
        print(
            f"themes panel (the dashboard's themes report) median {figures['panel_ms']:.0f} ms"
            f" (target <= {PANEL_TARGET_MS:.0f} ms)"
            f" {'ok' if figures['panel_ms'] <= PANEL_TARGET_MS else 'MISSED'}"
        )
        page = app.test_client()
        html = page.get("/login").get_data(as_text=True)
        token = html.split('name="csrf_token" value="')[1].split('"')[0]
        page.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token})
        assert page.get("/dashboard").status_code == 200
        dash = _interleaved({"dashboard": functools.partial(page.get, "/dashboard")}, repeat)["dashboard"]
        figures["dashboard_ms"] = statistics.median(dash)
        print(
            f"dashboard page with the themes panel median {figures['dashboard_ms']:.0f} ms"
            f" (target <= {PANEL_TARGET_MS:.0f} ms)"
            f" {'ok' if figures['dashboard_ms'] <= PANEL_TARGET_MS else 'MISSED'}"
        )
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        return figures


def main() -> None:
    """Parse arguments and run on a scratch database."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with temporary_database() as url:
        run(url, args.rows, args.repeat)


if __name__ == "__main__":
    main()
