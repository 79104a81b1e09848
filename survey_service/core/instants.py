"""The range of instants the service accepts: facts, planned dates and the bounds of report ranges.

Every instant a client gives falls in one of three kinds:
- a fact (a response's or an event's time, when a survey was last sent): it happened, so it lies in
  [EARLIEST, now + FACT_SKEW]; the skew allows a client clock a little ahead of ours;
- a planned date (a renewal date a trigger counts back from): [EARLIEST, now + PLAN_HORIZON];
- a range bound (since/until of a report, export or list): any readable value, clamped to
  [RANGE_FLOOR, RANGE_CEILING]. Those contain every fact and plan, so clamping changes no answer,
  and leave room for the arithmetic on them (a previous period, a day added) to stay in datetime's range.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from survey_service.core.clock import now

# No NPS fact predates the metric (2003); the rollups also ignore days before it.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FACT_SKEW = timedelta(days=1)
PLAN_HORIZON = timedelta(days=3653)  # ten years: the longest contract a renewal date counts toward
RANGE_FLOOR = datetime(1970, 1, 1, tzinfo=UTC)
RANGE_CEILING = datetime(3000, 1, 1, tzinfo=UTC)


class OutOfRange(ValueError):
    """An instant outside what its kind allows; the message says the allowed range."""


def earliest_day() -> date:
    """The first day a fact can fall on."""
    return EARLIEST.date()


def check_fact(moment: datetime) -> datetime:
    """A past fact as given, or OutOfRange when before EARLIEST or after now + FACT_SKEW."""
    latest = now() + FACT_SKEW
    if not EARLIEST <= moment <= latest:
        raise OutOfRange(f"Must be between {EARLIEST.date().isoformat()} and {latest.date().isoformat()}.")
    return moment


def check_plan(moment: datetime) -> datetime:
    """A planned date as given, or OutOfRange when before EARLIEST or after now + PLAN_HORIZON."""
    latest = now() + PLAN_HORIZON
    if not EARLIEST <= moment <= latest:
        raise OutOfRange(f"Must be between {EARLIEST.date().isoformat()} and {latest.date().isoformat()}.")
    return moment


def clamp_range(moment: datetime) -> datetime:
    """A report range bound moved into [RANGE_FLOOR, RANGE_CEILING]."""
    return min(max(moment, RANGE_FLOOR), RANGE_CEILING)
