"""Child process: stream one export through the test client, print rows, bytes, seconds and peak RSS."""

from __future__ import annotations

import json
import resource
import sys
import time

from sqlalchemy import text

from survey_service import create_app
from survey_service.extensions import db


def main(argv: list[str]) -> None:
    """Arguments: database URL, instance path, the project's secret key, the export's path and query."""
    database_url, instance, secret_key, path = argv
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench", "INSTANCE_PATH": instance}
    )
    with app.app_context():
        db.session.execute(text("SELECT 1"))  # connected, so "before" holds the app and the driver
        db.session.remove()
    client = app.test_client()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    res = client.get(path, headers={"Authorization": f"Bearer {secret_key}"}, buffered=False)
    if res.status_code != 200:
        raise SystemExit(f"{path}: {res.status_code} {res.get_data(as_text=True)[:500]}")
    lines = size = 0
    rss = current_rss_kb()
    for i, chunk in enumerate(res.response):
        data = chunk if isinstance(chunk, bytes) else str(chunk).encode()
        lines += data.count(b"\n")
        size += len(data)
        if i % 64 == 0:
            rss = max(rss, current_rss_kb())
    res.close()
    seconds = time.perf_counter() - started
    rows = lines - 1 if path.split("?")[0].endswith(".csv") else lines  # a CSV's header line
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss = max(rss, current_rss_kb())
    print(
        json.dumps(
            {
                "rows": rows,
                "bytes": size,
                "seconds": seconds,
                "before_kb": before,
                "peak_kb": peak,  # the process's peak, start-up included
                "rss_max_kb": rss,  # the most resident memory seen while streaming
            }
        )
    )


def current_rss_kb() -> int:
    """The resident set size now (Linux /proc), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main(sys.argv[1:])
