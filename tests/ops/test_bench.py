"""`python -m bench --quick` runs end to end and reports every ratio; no timing is asserted here."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.support.env import PG_ADMIN_URL, ROOT, unavailable

# `python -m bench --quick` in a subprocess: a benchmark under load, so not part of `make test` (a shared
# 2-core machine must not run benchmarks inside the suite); `make bench-smoke` runs it.
pytestmark = [pytest.mark.process, pytest.mark.slow, pytest.mark.bench]


def test_bench_quick_run_prints_ratios_and_every_201_is_in_the_database(tmp_path: Path) -> None:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {PG_ADMIN_URL}", exc)
    out = tmp_path / "bench.json"
    readme = ROOT / "bench" / "README.md"
    figures_before = readme.read_bytes() if readme.exists() else b""
    env = {**os.environ, "BENCH_DATABASE_URL": PG_ADMIN_URL}
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--workers", "2", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    rec, report, life = results["recording"], results["report"], results["lifecycle"]
    hot = results["hot_paths"]
    assert hot["ceiling_durable"] is True and hot["ceiling_non_201"] == 0
    for endpoint in ("responses", "events", "widget_answer"):
        figures = hot["trees"]["this"][endpoint]
        assert math.isfinite(figures["ratio"]) and figures["ratio"] > 0 and math.isfinite(figures["p99_ms"])
        assert figures["failed"] == 0 and figures["acknowledged"] > 0
        assert figures["rows"] == figures["acknowledged"] and figures["durable"] is True

    for ratio in (
        rec["throughput_ratio"],
        rec["p99_ratio"],
        rec["ratio_to_raw_insert"],
        rec["raw_insert_ratio"],
        report["large"]["ratio"],
        report["small"]["ratio"],
        life["events_ratio"],
        life["sends_ratio"],
    ):
        assert math.isfinite(ratio) and ratio > 0
    assert rec["responses_201"] > 0 and rec["non_201"] == 0
    assert rec["rows_in_database"] == rec["responses_201"] and rec["durable"] is True
    assert rec["raw_insert_201"] > 0 and rec["raw_insert_non_201"] == 0
    assert rec["raw_insert_rows"] == rec["raw_insert_201"] and rec["raw_insert_durable"] is True
    assert life["events_non_202"] == 0 and life["distinct_recipients"] == life["sends"] > 0
    assert math.isfinite(life["lateness_max_s"]) and life["lateness_p50_s"] <= life["lateness_max_s"]
    assert report["large"]["responses"] > report["small"]["responses"] > 0
    assert all(m["peak_kb"] > 0 for m in report["memory"].values())
    assert "widget answer / ceiling" in run.stdout and "events       / ceiling" in run.stdout
    assert (
        "throughput ratio" in run.stdout
        and "raw insert / bare" in run.stdout
        and "ratio to hand-written SQL" in run.stdout
    )
    # Only the full run records its figures: the quick one leaves bench/README.md alone.
    assert (readme.read_bytes() if readme.exists() else b"") == figures_before
