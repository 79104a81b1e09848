"""`python -m bench.widget_session` runs end to end in a real Chromium; counts are checked, no timing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.support.env import CHROMIUM, PG_ADMIN_URL, ROOT, unavailable

# A benchmark with a browser of its own: `make bench-smoke` runs it, `make test` leaves it out.
pytestmark = [pytest.mark.process, pytest.mark.slow, pytest.mark.bench, pytest.mark.browser]


def test_widget_session_bench_counts_identify_requests_and_shows_a_server_change(tmp_path: Path) -> None:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {PG_ADMIN_URL}", exc)
    if not Path(CHROMIUM).exists():
        unavailable(
            f"Chromium at {CHROMIUM}", FileNotFoundError(CHROMIUM), install="apt-get install chromium"
        )
    out = tmp_path / "widget_session.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.widget_session", "--views", "4", "--ttl", "2", "--json", str(out)],
        cwd=ROOT,
        env={**os.environ, "BENCH_DATABASE_URL": PG_ADMIN_URL},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(out.read_text())
    # Every page view waits for the widget's answer, so the counts are exact: one ask, then the verdict.
    assert figures["with_verdicts"]["identify_requests"] == 1
    assert figures["without_verdicts"]["identify_requests"] == 4
    change = figures["change"]
    assert change["page_views_until_shown"] >= 1 and change["identify_requests"] >= 2
    assert math.isfinite(change["shown_after_s"]) and change["shown_after_s"] > 0
    assert "identify requests per page view" in run.stdout
