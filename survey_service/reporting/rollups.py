"""Per-day counts of closed days, so a report over a year reads thousands of rows, not millions.

PostgreSQL only (the embedded SQLite default scans, as before). For every closed UTC day of a
project the worker's background loop stores the day's promoter/passive/detractor/comment counts per
survey and channel: once as totals (`prop_key` "") and once per value of every frozen property
(`prop_key` the property's name). A report then reads the counts of the days it covers and scans
only the rest: today, yesterday, and any day whose counts are out of date.

Why the figures stay exact:
- A trigger on `responses` bumps `response_rollup_days.version` in the writer's own transaction for
  every statement that inserts, changes or deletes a response of a day before the writer's today
  (imports, late comments, erasure, retention, follow-up edits, a person or survey deleted...).
  Counts are read only for days where `built_version = version`.
- Building a day reads its version, counts the day in a later statement, and stores the counts only
  `WHERE version = <the version read>` in the transaction that replaces them. A write committed
  before the count is either in the version read or makes the store a no-op; a write still open
  holds the day's row lock, so the store waits for it and then finds a new version; a write after
  the store bumps the version past `built_version`.
- Writes of the writer's current day bump nothing (the busy recording path takes no shared lock),
  so a day is built only once it ended a full day ago: a write that began on that day would
  have to stay open for a day to be missed.
"""

from __future__ import annotations

import json
import logging
import time as _time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import and_, or_, text
from sqlalchemy.exc import DataError

from survey_service.core import instants
from survey_service.core.clock import now
from survey_service.extensions import db
from survey_service.models import Response
from survey_service.reporting.filters import ResponseFilter

log = logging.getLogger(__name__)

TOTAL_KEY = ""
# A property with more values than this on a day is not counted for that day (an id or an email
# would make the counts as big as the responses); reports grouped by it scan such days.
MAX_VALUES_PER_DAY = 1000
# Days built per pass of the background loop: a year's backfill takes a few minutes of passes.
DAYS_PER_PASS = 14
# With nothing left to build, the background loop looks again after this many seconds.
IDLE_RECHECK_SECONDS = 60.0
# More separate stretches of unbuilt days than this and the report simply scans everything.
MAX_GAPS = 40

_COUNTS = """
  count(*) FILTER (WHERE category = 'promoter') AS promoters,
  count(*) FILTER (WHERE category = 'passive') AS passives,
  count(*) FILTER (WHERE category = 'detractor') AS detractors,
  count(*) FILTER (WHERE comment <> '') AS comments
"""
_DAY_RANGE = "project_id = :pid AND created_at >= :start AND created_at < :end AND category IS NOT NULL"
TOTALS_SQL = f"SELECT survey_id, channel, {_COUNTS} FROM responses WHERE {_DAY_RANGE} GROUP BY 1, 2"
VALUES_SQL = f"""
SELECT survey_id, channel, kv.key, kv.value, {_COUNTS}
FROM responses CROSS JOIN LATERAL jsonb_each_text(properties) AS kv
WHERE {_DAY_RANGE} AND jsonb_typeof(properties) = 'object' AND kv.key <> ''
GROUP BY 1, 2, 3, 4
"""
# Per theme (theme_id NULL: analysed comments with no theme), counted in the transaction that stores
# the day's counts, after its version check (see build_day): theme writes bump the day's version too
# (mark_days_changed), so these counts are current exactly when the day's other counts are.
THEMES_SQL = """
INSERT INTO theme_rollups (project_id, day, survey_id, channel, theme_id, promoters, passives, detractors)
SELECT :pid, :day, r.survey_id, r.channel, rt.theme_id,
  count(*) FILTER (WHERE r.category = 'promoter'), count(*) FILTER (WHERE r.category = 'passive'),
  count(*) FILTER (WHERE r.category = 'detractor')
FROM responses r JOIN response_analyses a ON a.response_id = r.id
LEFT JOIN response_themes rt ON rt.response_id = r.id
WHERE r.project_id = :pid AND r.created_at >= :start AND r.created_at < :end AND r.category IS NOT NULL
  AND r.comment <> ''
GROUP BY 3, 4, 5
"""


def enabled() -> bool:
    """Rollups exist on PostgreSQL only."""
    return bool(db.engine.dialect.name == "postgresql")


def can_answer(flt: ResponseFilter) -> bool:
    """Whether rollups hold what this filter asks, apart from its category and property conditions
    (counted per day, survey and channel: no request origin, comment text or follow-up state)."""
    if not enabled() or flt.search or flt.with_comment or flt.followup_status or flt.theme_id is not None:
        return False
    return flt.trigger_id is None and flt.event_type is None


def last_sealed_day(moment: datetime | None = None) -> date:
    """The newest day that may be built: it ended a full day ago (UTC)."""
    return (moment or now()).astimezone(UTC).date() - timedelta(days=2)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def build_day(project_id: int, day: date) -> bool:
    """Count one closed day of a project; False when a write changed it meanwhile (build it later)."""
    params = {"pid": project_id, "day": day}
    db.session.execute(
        text(
            "INSERT INTO response_rollup_days (project_id, day, version) VALUES (:pid, :day, 0)"
            " ON CONFLICT (project_id, day) DO NOTHING"
        ),
        params,
    )
    db.session.commit()
    version = db.session.execute(
        text("SELECT version FROM response_rollup_days WHERE project_id = :pid AND day = :day"), params
    ).scalar_one()
    db.session.commit()  # the count below must see everything committed after the version was read
    span = {"pid": project_id, "start": day_start(day), "end": day_start(day + timedelta(days=1))}
    totals = db.session.execute(text(TOTALS_SQL), span).all()
    values = db.session.execute(text(VALUES_SQL), span).all()
    per_key: dict[str, set[str | None]] = {}
    for row in values:
        per_key.setdefault(row.key, set()).add(row.value)
    wide = sorted(key for key, seen in per_key.items() if len(seen) > MAX_VALUES_PER_DAY)
    stored = db.session.execute(
        text(
            "UPDATE response_rollup_days SET built_version = version, built_at = now(),"
            " wide_keys = CAST(:wide AS jsonb)"
            " WHERE project_id = :pid AND day = :day AND version = :version RETURNING day"
        ),
        {**params, "version": version, "wide": json.dumps(wide)},
    ).first()
    if stored is None:
        db.session.rollback()
        return False
    db.session.execute(text("DELETE FROM response_rollups WHERE project_id = :pid AND day = :day"), params)
    rows = [_row(project_id, day, r, TOTAL_KEY, None) for r in totals] + [
        _row(project_id, day, r, r.key, r.value) for r in values if r.key not in wide
    ]
    if rows:
        db.session.execute(
            text(
                "INSERT INTO response_rollups (project_id, day, survey_id, channel, prop_key, prop_value,"
                " promoters, passives, detractors, comments) VALUES (:project_id, :day, :survey_id,"
                " :channel, :prop_key, :prop_value, :promoters, :passives, :detractors, :comments)"
            ),
            rows,
        )
    db.session.execute(text("DELETE FROM theme_rollups WHERE project_id = :pid AND day = :day"), params)
    db.session.execute(text(THEMES_SQL), {**span, "day": day})
    db.session.commit()
    return True


def mark_days_changed(project_id: int, days: Iterable[date]) -> None:
    """In the caller's transaction: the counts of these days are out of date (a write the responses'
    trigger cannot see, e.g. theme assignments). Like the trigger, the writer's today is left alone."""
    if not enabled():
        return
    today = now().astimezone(UTC).date()
    closed = sorted({d for d in days if d < today})
    if closed:
        db.session.execute(
            text(
                "UPDATE response_rollup_days SET version = version + 1"
                " WHERE project_id = :pid AND day = ANY(:days)"
            ),
            {"pid": project_id, "days": closed},
        )


@dataclass(frozen=True)
class ThemeCells:
    """Theme counts read from rollups: the days they cover, {theme id (None: unthemed): [p, pa, d]},
    and those days' totals [p, pa, d, comments] (what the themes report weighs each theme against)."""

    days: frozenset[date]
    counts: dict[int | None, list[int]]
    totals: list[int]


def read_themes(
    project_id: int, first: date, last: date, *, survey_id: int | None = None, channel: str | None = None
) -> ThemeCells:
    """Per-theme counts and the totals of the current days between first and last, in one statement
    (the caller scans the other days)."""
    days = _current_days(project_id, first, last, lambda wide: True)
    counts: dict[int | None, list[int]] = {}
    totals = [0, 0, 0, 0]
    if not days:
        return ThemeCells(days, counts, totals)
    conds, params = _where(project_id, days, survey_id, channel)
    where = " AND ".join(conds)
    rows = db.session.execute(
        text(
            "SELECT true AS total, NULL AS theme_id, sum(promoters) AS p, sum(passives) AS pa,"
            " sum(detractors) AS d, sum(comments) AS c"
            f" FROM response_rollups WHERE {where} AND prop_key = :total_key"
            " UNION ALL SELECT false, theme_id, sum(promoters), sum(passives), sum(detractors), 0"
            f" FROM theme_rollups WHERE {where} GROUP BY theme_id"
        ),
        params | {"total_key": TOTAL_KEY},
    ).all()
    for r in rows:
        # sum() over no rows is NULL; PostgreSQL's sum() is numeric: back to int.
        found = [int(r.p or 0), int(r.pa or 0), int(r.d or 0), int(r.c or 0)]
        if r.total:
            totals = found
        else:
            counts[r.theme_id] = found[:3]
    return ThemeCells(days, counts, totals)


def _row(project_id: int, day: date, r: Any, key: str, value: str | None) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "day": day,
        "survey_id": r.survey_id,
        "channel": r.channel,
        "prop_key": key,
        "prop_value": value,
        "promoters": r.promoters,
        "passives": r.passives,
        "detractors": r.detractors,
        "comments": r.comments,
    }


def pending(project_id: int | None = None, moment: datetime | None = None) -> list[tuple[int, date]]:
    """(project, day) pairs to build, oldest first: days out of date, then closed days never built.

    A project's days run from its first response to the last sealed day; days without responses
    are built too (as empty), so a report knows they hold nothing. Days before instants.EARLIEST are
    never built (a response stored before the bounds existed, or the day row its erasure left behind,
    would otherwise make every pass count millennia of empty days); reports scan them.
    """
    last = last_sealed_day(moment)
    floor = instants.earliest_day()
    params = {"last": last, "pid": project_id, "floor": floor, "since": day_start(floor)}
    one = project_id is not None
    stale = db.session.execute(
        text(
            "SELECT project_id, day FROM response_rollup_days WHERE built_version IS DISTINCT FROM version"
            " AND day <= :last AND day >= :floor"
            + (" AND project_id = :pid" if one else "")
            + " ORDER BY day"
        ),
        params,
    ).all()
    found = [(r.project_id, r.day) for r in stale]
    spans = db.session.execute(
        text(
            "SELECT p.id, min(d.day) AS low, max(d.day) AS high, count(d.day) AS n,"
            " (SELECT min(created_at) FROM responses r WHERE r.project_id = p.id AND r.created_at >= :since)"
            " AS first"
            " FROM projects p LEFT JOIN response_rollup_days d ON d.project_id = p.id AND d.day >= :floor"
            + (" WHERE p.id = :pid" if one else "")
            + " GROUP BY p.id ORDER BY p.id"
        ),
        params,
    ).all()
    for span in spans:
        if span.first is None:
            continue
        try:
            found += [(span.id, day) for day in _missing_days(span, floor, last)]
        except (ArithmeticError, ValueError) as exc:
            # One project's odd data must not stop the others' rollups: its reports scan instead.
            log.warning("rollups: project %s skipped: %s", span.id, exc.__class__.__name__)
    return found


def _missing_days(span: Any, floor: date, last: date) -> list[date]:
    """The never-built days of one project (a row of pending's span query), from its first response on."""
    first = max(span.first.astimezone(UTC).date(), floor)
    if span.low is None:
        return _days(first, last)
    missing = _days(first, min(span.low - timedelta(days=1), last))
    missing += _days(span.high + timedelta(days=1), last)
    if span.n < (span.high - span.low).days + 1:
        have = set(
            db.session.execute(
                text("SELECT day FROM response_rollup_days WHERE project_id = :pid"), {"pid": span.id}
            ).scalars()
        )
        missing += [d for d in _days(span.low, min(span.high, last)) if d not in have]
    return sorted(missing)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def forget_person(project_id: int, person_id: int) -> None:
    """Delete the counts of the days a person answered on (in the caller's transaction, before erasing)."""
    if not enabled():
        return
    db.session.execute(
        text(
            "DELETE FROM response_rollups WHERE project_id = :pid AND day IN (SELECT DISTINCT"
            " CAST(created_at AT TIME ZONE 'UTC' AS date) FROM responses WHERE person_id = :person)"
        ),
        {"pid": project_id, "person": person_id},
    )


def refresh(limit: int | None = DAYS_PER_PASS, project_id: int | None = None) -> int:
    """Build up to `limit` pending days (all with None); the number built."""
    _, steps = build_all(project_id)
    return sum(islice(steps, limit))


_idle_until = 0.0


def refresh_when_due() -> int:
    """The background loop's step: build a batch while there is a backlog, else look once a minute."""
    global _idle_until
    if _time.monotonic() < _idle_until:
        return 0
    built = refresh()
    if not built:
        _idle_until = _time.monotonic() + IDLE_RECHECK_SECONDS
    return built


def build_all(project_id: int | None = None) -> tuple[int, Iterator[bool]]:
    """Every pending day: how many, and a generator building them one by one (for a progress bar).

    Projects take turns day by day, so one project's long backfill does not hold the others back.
    """
    todo = _taking_turns(pending(project_id)) if enabled() else []
    db.session.commit()
    return len(todo), (_build_isolated(pid, day) for pid, day in todo)


def _taking_turns(todo: list[tuple[int, date]]) -> list[tuple[int, date]]:
    """The pending days reordered: each project's first day, then each one's second, and so on."""
    per_project: dict[int, list[date]] = {}
    for pid, day in todo:
        per_project.setdefault(pid, []).append(day)
    rounds = max((len(days) for days in per_project.values()), default=0)
    return [(pid, days[i]) for i in range(rounds) for pid, days in per_project.items() if i < len(days)]


def _build_isolated(project_id: int, day: date) -> bool:
    """build_day, but a day that fails is logged (its class only: no data) and left for a later pass."""
    try:
        return build_day(project_id, day)
    except (ArithmeticError, ValueError, DataError) as exc:
        db.session.rollback()
        log.warning("rollups: project %s day %s not built: %s", project_id, day, exc.__class__.__name__)
        return False


@dataclass(frozen=True)
class Cells:
    """Counts read from rollups: the days they cover, {(period start, value): [p, pa, d, comments]}."""

    days: frozenset[date]
    counts: dict[tuple[date, str | None], list[int]]


def read(
    project_id: int,
    first: date,
    last: date,
    *,
    interval: str,
    key: str | None,
    value: str | None = None,
    survey_id: int | None = None,
    channel: str | None = None,
) -> Cells:
    """Counts of the current days between first and last per `interval`, per value of property `key`.

    Without `key`, totals (value None). With `value`, only that value of `key` (a segment). Days the
    property was too wide to count are left out of `days`, like days out of date: the caller scans
    them.
    """
    days = _current_days(project_id, first, last, lambda wide: key is None or key not in wide)
    counts: dict[tuple[date, str | None], list[int]] = {}
    if not days:
        return Cells(days, counts)
    keys = [TOTAL_KEY] if key is None else ([key] if value is not None else [TOTAL_KEY, key])
    conds, params = _where(project_id, days, survey_id, channel)
    conds.append("prop_key = ANY(:keys)")
    params |= {"keys": keys, "interval": interval}
    if value is not None:
        conds.append("prop_value = :value")
        params["value"] = value
    rows = db.session.execute(
        text(
            "SELECT CAST(date_trunc(:interval, CAST(day AS timestamp)) AS date) AS period,"
            " prop_key, prop_value, sum(promoters) AS p, sum(passives) AS pa,"
            " sum(detractors) AS d, sum(comments) AS c"
            " FROM response_rollups WHERE " + " AND ".join(conds) + " GROUP BY 1, 2, 3"
        ),
        params,
    ).all()
    # Totals minus the counted values leaves the responses without the property (its null group).
    for r in rows:
        found = [int(r.p), int(r.pa), int(r.d), int(r.c)]
        if key is None or value is not None:
            _add(counts, (r.period, value), found)
        elif r.prop_key == TOTAL_KEY:
            _add(counts, (r.period, None), found)
        elif r.prop_value is not None:  # JSON null values stay in the null group with the missing
            _add(counts, (r.period, r.prop_value), found)
            _add(counts, (r.period, None), [-n for n in found])
    return Cells(days, {cell: n for cell, n in counts.items() if any(n)})


def _add(
    counts: dict[tuple[date, str | None], list[int]], cell: tuple[date, str | None], n: list[int]
) -> None:
    current = counts.setdefault(cell, [0, 0, 0, 0])
    for i, value in enumerate(n):
        current[i] += value


def full_days(since: datetime | None, until: datetime | None) -> tuple[date, date]:
    """The first and last day that could come from rollups for [since, until): whole days, sealed."""
    first = date(1970, 1, 1)
    if since is not None:
        since = since.astimezone(UTC)
        first = since.date() if since == day_start(since.date()) else since.date() + timedelta(days=1)
    last = last_sealed_day()
    if until is not None:
        last = min(last, until.astimezone(UTC).date() - timedelta(days=1))
    return first, last


def outside(days: Iterable[date], since: datetime | None, until: datetime | None) -> Any | None:
    """A condition on Response.created_at for the time in [since, until) not in `days` (None: too
    fragmented to be worth it, scan everything)."""
    stretches = gaps(days, since, until)
    if len(stretches) > MAX_GAPS:
        return None
    return or_(
        *(
            and_(
                *([Response.created_at >= start] if start else []),
                *([Response.created_at < end] if end else []),
            )
            for start, end in stretches
        )
    )


def _current_days(
    project_id: int, first: date, last: date, usable: Callable[[list[str]], bool]
) -> frozenset[date]:
    """The days between first and last whose counts are current and `usable` given their wide keys."""
    valid = db.session.execute(
        text(
            "SELECT day, wide_keys FROM response_rollup_days WHERE project_id = :pid"
            " AND day BETWEEN :first AND :last AND built_version = version"
        ),
        {"pid": project_id, "first": first, "last": last},
    ).all()
    return frozenset(r.day for r in valid if usable(r.wide_keys or []))


def _where(
    project_id: int, days: frozenset[date], survey_id: int | None, channel: str | None
) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions and parameters on response_rollups for these days, survey and channel."""
    low, high = min(days), max(days)
    conds = ["project_id = :pid", "day BETWEEN :low AND :high"]
    params: dict[str, Any] = {"pid": project_id, "low": low, "high": high}
    skipped = [day for day in _days(low, high) if day not in days]
    if skipped:
        conds.append("day <> ALL(:skipped)")
        params["skipped"] = skipped
    if survey_id is not None:
        conds.append("survey_id = :sid")
        params["sid"] = survey_id
    if channel is not None:
        conds.append("channel = :channel")
        params["channel"] = channel
    return conds, params


def keys(
    project_id: int,
    first: date,
    last: date,
    *,
    survey_id: int | None = None,
    channel: str | None = None,
    category: str | None = None,
) -> tuple[frozenset[date], set[str], set[str]]:
    """The current days between first and last, the property names of their (category's) responses,
    and the names of properties too wide to count on some of those days.

    A wide property's name is known for its day, not which survey, channel or category carried it:
    the caller checks those names against the responses themselves (one look-up each).
    """
    rows = db.session.execute(
        text(
            "SELECT day, wide_keys FROM response_rollup_days WHERE project_id = :pid"
            " AND day BETWEEN :first AND :last AND built_version = version"
        ),
        {"pid": project_id, "first": first, "last": last},
    ).all()
    days = frozenset(r.day for r in rows)
    wide = {str(k) for r in rows for k in (r.wide_keys or [])}
    if not days:
        return days, set(), wide
    conds, params = _where(project_id, days, survey_id, channel)
    conds.append("prop_key <> ''")
    if category is not None:
        conds.append(
            {"promoter": "promoters", "passive": "passives", "detractor": "detractors"}[category] + " > 0"
        )
    found = db.session.execute(
        text("SELECT DISTINCT prop_key FROM response_rollups WHERE " + " AND ".join(conds)), params
    ).scalars()
    return days, set(found), wide


def gaps(
    days: Iterable[date], since: datetime | None, until: datetime | None
) -> list[tuple[datetime | None, datetime | None]]:
    """The stretches of time in [since, until) not covered by `days`, as [start, end) (None: open)."""
    runs: list[list[date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] == day:
            runs[-1][1] = day + timedelta(days=1)
        else:
            runs.append([day, day + timedelta(days=1)])
    found: list[tuple[datetime | None, datetime | None]] = []
    start: datetime | None = since
    for first, end in runs:
        if start is None or start < day_start(first):
            found.append((start, day_start(first)))
        start = day_start(end)
    if until is None or start is None or start < until:
        found.append((start, until))
    return found
