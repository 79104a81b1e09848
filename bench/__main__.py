"""`make bench`: run both benchmarks on a throw-away PostgreSQL database and print ratios to ceilings."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import runpy
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask_migrate import upgrade

from bench import hot_paths, lifecycle, recording, reporting
from bench.pg import temporary_database
from survey_service import create_app
from survey_service.extensions import db
from survey_service.services.projects import create_project, default_survey

README = Path(__file__).resolve().parent / "README.md"
THROUGHPUT_TARGET, P99_TARGET_MS, REPORT_TARGET = 0.5, 100.0, 1.3
LATENESS_TARGET_S = 2.0


def production_model() -> dict[str, Any]:
    """The worker model gunicorn.conf.py sets (read from the file, so the bench measures what ships)."""
    conf = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    return {"workers": conf["workers"], "worker_class": conf["worker_class"], "threads": conf["threads"]}


def run_hot_paths(
    quick: bool,
    log: Any = print,
    workers: int | None = None,
    worker_class: str | None = None,
    threads: int | None = None,
    baseline: Path | None = None,
) -> dict[str, Any]:
    """The hot paths against the durable-write ceiling (bench/hot_paths.py), on a database of their own."""
    model = production_model()
    model = {
        "workers": workers or model["workers"],
        "worker_class": worker_class or model["worker_class"],
        "threads": threads or model["threads"],
    }
    sizes = hot_paths.QUICK if quick else hot_paths.FULL
    with tempfile.TemporaryDirectory(prefix="bench-instance-") as instance, temporary_database() as url:
        secret = secrets.token_urlsafe(32)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secret, "INSTANCE_PATH": instance})
        with app.app_context():
            upgrade()
            db.engine.dispose()
        log(
            f"hot paths: responses, events, widget answers vs the raw INSERT ceiling, {sizes.concurrency}"
            f" connections, gunicorn {model}" + (f", baseline {baseline}" if baseline else "") + " ..."
        )
        return hot_paths.run(url, secret, instance, sizes, baseline=baseline, **model)


def run(
    quick: bool,
    workers: int | None = None,
    log: Any = print,
    sends: int | None = None,
    baseline: Path | None = None,
) -> dict[str, Any]:
    """Run every benchmark once and return every figure."""
    rec_sizes = recording.QUICK if quick else recording.FULL
    if workers:
        rec_sizes = dataclasses.replace(rec_sizes, workers=workers)
    rep_sizes = reporting.QUICK if quick else reporting.FULL
    hot = run_hot_paths(quick, log, workers=workers, baseline=baseline)
    app_secret = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="bench-instance-") as instance, temporary_database() as url:
        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": app_secret, "INSTANCE_PATH": instance}
        )
        with app.app_context():
            upgrade()
            recorder = create_project("Bench recording")
            recorder_key, recorder_id = recorder.secret_key, recorder.project.id
            reported = create_project("Bench report")
            report_project, survey_id = reported.project.id, default_survey(reported.project.id).id
            db.session.remove()
            db.engine.dispose()

        log(f"recording: gunicorn -w {rec_sizes.workers} sync, service vs bare Flask ...")
        rec = recording.run(url, recorder_key, recorder_id, app_secret, instance, rec_sizes)

        life_sizes = lifecycle.QUICK if quick else lifecycle.FULL
        if sends:
            life_sizes = dataclasses.replace(life_sizes, sends=sends)
        log(f"lifecycle: events vs responses, then {life_sizes.sends:,} sends through 2 workers ...")
        life = lifecycle.run(url, app_secret, instance, life_sizes, rec_sizes.workers)

        report: dict[str, Any] = {"memory": {}}
        for first, last in ((1, rep_sizes.small_rows), (rep_sizes.small_rows + 1, rep_sizes.large_rows)):
            log(f"report: loading responses up to {last:,} ...")
            started = time.perf_counter()
            reporting.load_rows(url, report_project, survey_id, first, last, rep_sizes.people)
            log(f"  loaded in {time.perf_counter() - started:.1f}s")
            report["memory"][last] = reporting.peak_rss(url, app_secret, instance, report_project)
            if last == rep_sizes.small_rows:
                report["small"] = reporting.time_report(app, report_project, rep_sizes.repetitions)
        report["large"] = reporting.time_report(app, report_project, rep_sizes.repetitions)
        with app.app_context():
            db.engine.dispose()
    return {
        "quick": quick,
        "hot_paths": hot,
        "recording": rec,
        "lifecycle": life,
        "report": report,
        "load_average": os.getloadavg(),
    }


def summary(results: dict[str, Any]) -> str:
    """The figures as the text block printed and put in bench/README.md."""
    rec, rep = results["recording"], results["report"]
    large, small = rep["large"], rep["small"]
    mem = rep["memory"]
    (small_n, small_mem), (large_n, large_mem) = sorted(mem.items())
    growth = large_mem["peak_kb"] / small_mem["peak_kb"]

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    lat, ceil_lat, raw_lat = rec["service_latency"], rec["ceiling_latency"], rec["raw_insert_latency"]
    lines = [
        "Load average of the machine at the end: " + ", ".join(f"{x:.2f}" for x in results["load_average"]),
        "",
        *hot_paths_summary(results["hot_paths"]),
        "",
        "Recording a response (POST /api/v1/responses, PostgreSQL) vs bare Flask JSON endpoint",
        "  and vs the raw SQL ceiling (one psycopg INSERT + COMMIT per request),",
        f"  all under gunicorn {rec['gunicorn']}; closed loop with {rec['concurrency']} clients:",
        f"  throughput ratio       {rec['throughput_ratio']:.2f}   (target >= {THROUGHPUT_TARGET})  "
        f"{mark(rec['throughput_ratio'] >= THROUGHPUT_TARGET)}"
        f"   [{rec['service_rps']:.0f} vs {rec['ceiling_rps']:.0f} req/s]",
        f"  service / raw insert   {rec['ratio_to_raw_insert']:.2f}"
        f"   [{rec['service_rps']:.0f} vs {rec['raw_insert_rps']:.0f} req/s]",
        f"  raw insert / bare      {rec['raw_insert_ratio']:.2f}   (the most any durable write could reach)",
        f"  latency at a constant {rec['rate_rps']:.0f} req/s (from scheduled start):",
        f"    p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms (target p99 <= {P99_TARGET_MS:.0f} ms)  "
        f"{mark(lat['p99_ms'] <= P99_TARGET_MS)}",
        f"    ceiling p50 {ceil_lat['p50_ms']:.1f} ms, p99 {ceil_lat['p99_ms']:.1f} ms;"
        f" p99 ratio {rec['p99_ratio']:.2f}",
        f"    raw insert p50 {raw_lat['p50_ms']:.1f} ms, p99 {raw_lat['p99_ms']:.1f} ms",
        f"  durability: {rec['responses_201']} responses answered 201, {rec['rows_in_database']} rows after"
        f" SIGKILL of gunicorn, {rec['non_201']} non-201  {mark(rec['durable'])}",
        f"    raw insert: {rec['raw_insert_201']} answered 201, {rec['raw_insert_rows']} rows,"
        f" {rec['raw_insert_non_201']} non-201  {mark(rec['raw_insert_durable'])}",
        "",
        *lifecycle_summary(results["lifecycle"], rec["gunicorn"]),
        "",
        f"NPS report group_by=plan interval=month over {large['responses']:,} responses"
        f" ({large['groups']} groups, {large['periods']} periods):",
        f"  ratio to hand-written SQL  {large['ratio']:.2f}   (target <= {REPORT_TARGET})  "
        f"{mark(large['ratio'] <= REPORT_TARGET)}"
        f"   [{large['report_ms']:.0f} vs {large['ceiling_ms']:.0f} ms, median]",
        "  hand-written candidates (fastest is the ceiling): "
        + ", ".join(f"{name} {ms:.0f} ms" for name, ms in large["ceilings_ms"].items()),
        f"  for scale: groups only, no series {large['groups_only_ms']:.0f} ms"
        f" (ratio {large['ratio_to_groups_only']:.2f});"
        f" at {small['responses']:,} rows the ratio is {small['ratio']:.2f}",
        "  peak RSS of the process computing the report:",
        f"    {small_mem['peak_kb'] / 1024:.1f} MiB at {int(small_n):,} rows,"
        f" {large_mem['peak_kb'] / 1024:.1f} MiB at {int(large_n):,} rows (x{growth:.2f})"
        f"  {mark(growth <= 1.1)}",
    ]
    return "\n".join(lines)


def hot_paths_summary(hot: dict[str, Any]) -> list[str]:
    """The hot-path (issue 15) lines: each endpoint / the durable-write ceiling, p99, durability."""

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    names = {"responses": "recording   ", "events": "events      ", "widget_answer": "widget answer"}
    lines = [
        "Hot paths / durable-write ceiling (bench/raw_insert_app.py: one psycopg INSERT + COMMIT),",
        f"  closed loop, {hot['concurrency']} connections, gunicorn {hot['gunicorn']}, alternating slices:",
        f"  ceiling {hot['ceiling_rps']:.0f} req/s, p99 {hot['ceiling_p99_ms']:.1f} ms;"
        f" after SIGKILL {hot['ceiling_rows']} rows for {hot['ceiling_acknowledged']} acknowledged"
        f"  {mark(hot['ceiling_durable'])}",
    ]
    for tree, figures in hot["trees"].items():
        lines.append(f"  {tree} ({figures['root']}):")
        for endpoint, label in names.items():
            f = figures[endpoint]
            ok = f["ratio"] >= THROUGHPUT_TARGET and f["p99_ms"] <= P99_TARGET_MS
            lines.append(
                f"    {label} / ceiling  {f['ratio']:.2f}  (target >= {THROUGHPUT_TARGET})"
                f"  p99 {f['p99_ms']:.0f} ms (<= {P99_TARGET_MS:.0f})  {mark(ok)}"
                f"   [{f['rps']:.0f} req/s, p50 {f['p50_ms']:.0f} ms; {f['failed']} failed;"
                f" SIGKILL: {f['rows']} rows for {f['acknowledged']} acknowledged {mark(f['durable'])}]"
            )
    return lines


def lifecycle_summary(life: dict[str, Any], gunicorn: str) -> list[str]:
    """The lifecycle (issues 4 and 15) lines of the summary."""
    return lifecycle.summary_lines(life, gunicorn)


def write_readme(text: str) -> None:
    """Replace the figures in bench/README.md with these."""
    machine = (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    template = README.read_text() if README.exists() else ""
    begin, end = "<!-- figures:begin -->", "<!-- figures:end -->"
    block = f"{begin}\nMeasured {stamp} on {machine}:\n\n```\n{text}\n```\n{end}"
    if begin in template and end in template:
        head, _, rest = template.partition(begin)
        _, _, tail = rest.partition(end)
        README.write_text(head + block + tail)
    else:
        README.write_text(template + "\n" + block + "\n")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the ratios; the full run also records them in bench/README.md."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds (used by the tests)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON to PATH")
    parser.add_argument(
        "--workers", type=int, help="gunicorn workers for both servers (default 2 x CPUs + 1)"
    )
    parser.add_argument("--sends", type=int, help="events in the end-to-end send run (default 10,000)")
    parser.add_argument("--no-readme", action="store_true", help="do not update bench/README.md")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="also run the hot paths of another checkout (before/after)",
    )
    parser.add_argument(
        "--hot-paths-only",
        action="store_true",
        help="only the hot paths vs the durable-write ceiling (--worker-class, --threads choose the model)",
    )
    parser.add_argument("--worker-class", help="with --hot-paths-only: gunicorn worker class")
    parser.add_argument("--threads", type=int, help="with --hot-paths-only: threads per gunicorn worker")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.hot_paths_only:
        hot = run_hot_paths(args.quick, log, args.workers, args.worker_class, args.threads, args.baseline)
        print("\n".join(hot_paths_summary(hot)))
        if args.json:
            Path(args.json).write_text(json.dumps({"hot_paths": hot}, indent=2, default=str))
        return 0
    results = run(args.quick, args.workers, log=log, sends=args.sends, baseline=args.baseline)
    text = summary(results)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    if not args.quick and not args.no_readme:
        write_readme(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
