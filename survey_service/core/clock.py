"""The service's one clock: real UTC time, or a frozen instant set in config (tests, demos, replays).

Every date the service records, compares with stored dates or shows (created_at, expiries, report and
dashboard ranges, schedules) comes from now(), so app.config["FROZEN_NOW"] moves all of them at once.
real_now() is for the few instants another system compares with its own wall clock (RQ's job
timestamps, a webhook receiver's replay window). Durations (timeouts, back-off, rate windows) use
time.monotonic() or Redis TTLs, not a clock. This module imports no models: their column defaults call
now() (a callable, evaluated per row).
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, has_app_context


def real_now() -> datetime:
    """The wall clock, timezone-aware in UTC, whatever FROZEN_NOW says."""
    return datetime.now(UTC)


def now() -> datetime:
    """The current instant, timezone-aware in UTC, honouring app.config["FROZEN_NOW"] when set."""
    if has_app_context():
        frozen: datetime | None = current_app.config.get("FROZEN_NOW")
        if frozen is not None:
            return frozen
    return real_now()
