"""NPS reports: the database counts (GROUP BY with filtered counts); nps.py does the arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Executable, func, literal, null, select, union_all

from .. import nps
from ..extensions import db
from ..models import Response

MAX_FILLED_PERIODS = 1000


def _counts() -> list[Any]:
    return [
        func.count().filter(Response.category == nps.PROMOTER).label("promoters"),
        func.count().filter(Response.category == nps.PASSIVE).label("passives"),
        func.count().filter(Response.category == nps.DETRACTOR).label("detractors"),
    ]


def _bucket(interval: str) -> ColumnElement[Any]:
    """The day/ISO week/month of each response's created_at in UTC: the key the database groups by."""
    col = Response.created_at
    if db.engine.dialect.name == "postgresql":
        # Group by the truncated timestamp and format only the few resulting rows: to_char on every
        # row costs more than the counting itself.
        return func.date_trunc(interval, func.timezone("UTC", col))
    # SQLite stores naive UTC text; its date functions give the same calendar.
    if interval == "day":
        return func.date(col)
    if interval == "week":
        return func.date(col, "-6 days", "weekday 1")
    return func.strftime("%Y-%m-01", col)


def _period_text(bucket: ColumnElement[Any]) -> ColumnElement[Any]:
    """A grouped bucket as YYYY-MM-DD text."""
    if db.engine.dialect.name == "postgresql":
        return func.to_char(bucket, "YYYY-MM-DD")
    return bucket


def _stats(row: Any) -> nps.NpsStats:
    # PostgreSQL's sum() of counts is numeric (Decimal): counts are ints again here.
    return nps.NpsStats(int(row.promoters), int(row.passives), int(row.detractors))


def _filters(project_id: int, since: datetime | None, until: datetime | None) -> list[Any]:
    conditions: list[Any] = [Response.project_id == project_id, Response.category.is_not(None)]
    if since:
        conditions.append(Response.created_at >= since)
    if until:
        conditions.append(Response.created_at < until)
    return conditions


def _period_start(moment: date, interval: str) -> date:
    if interval == "week":
        return moment - timedelta(days=moment.weekday())
    if interval == "month":
        return moment.replace(day=1)
    return moment


def _next_period(start: date, interval: str) -> date:
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def _fill_periods(
    found: dict[str, nps.NpsStats], interval: str, since: datetime | None, until: datetime | None
) -> list[tuple[str, nps.NpsStats]]:
    """Every period from the first to the last (or the asked range), empty ones with null NPS."""
    if not found and not (since and until):
        return []
    starts = sorted(date.fromisoformat(p) for p in found)
    first = _period_start(since.astimezone(UTC).date(), interval) if since else starts[0]
    if until:
        last = _period_start((until.astimezone(UTC) - timedelta(microseconds=1)).date(), interval)
    else:
        last = starts[-1]
    periods: list[tuple[str, nps.NpsStats]] = []
    current = first
    while current <= last and len(periods) < MAX_FILLED_PERIODS:
        key = current.isoformat()
        periods.append((key, found.get(key, nps.EMPTY)))
        current = _next_period(current, interval)
    return periods


def _series(bucket: ColumnElement[Any], where: list[Any]) -> Executable:
    """Counts per period."""
    cells = select(bucket, *_counts()).where(*where).group_by(bucket).subquery("cells")
    return select(
        literal("period").label("kind"),
        _period_text(cells.c.bucket).label("period"),
        null().label("key"),
        cells.c.promoters,
        cells.c.passives,
        cells.c.detractors,
    )


def _rollup(bucket: ColumnElement[Any], group_by: str, where: list[Any]) -> Executable:
    """Counts per period and per property value from one scan of the responses.

    The database counts each (period, value) cell, then adds the few cells up both ways: two
    GROUP BYs over the responses would read every row twice.
    """
    key = Response.properties[group_by].as_string().label("key")
    cells = select(bucket, key, *_counts()).where(*where).group_by(bucket, key).cte("cells")
    sums = [func.sum(cells.c[name]).label(name) for name in ("promoters", "passives", "detractors")]
    return union_all(
        select(
            literal("period").label("kind"),
            _period_text(cells.c.bucket).label("period"),
            null().label("key"),
            *sums,
        ).group_by(cells.c.bucket),
        select(literal("group"), null(), cells.c.key, *sums).group_by(cells.c.key),
    )


def nps_report(
    project_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: str | None = None,
    interval: str = "month",
) -> dict[str, Any]:
    """NPS overall, by a frozen person property and per period, each with n and margin of error."""
    where = _filters(project_id, since, until)
    bucket = _bucket(interval).label("bucket")
    statement = _rollup(bucket, group_by, where) if group_by else _series(bucket, where)
    rows = db.session.execute(statement).all()

    found = {row.period: _stats(row) for row in rows if row.kind == "period"}
    overall = sum(found.values(), nps.EMPTY)

    groups: list[dict[str, Any]] = []
    if group_by:
        merged: dict[str | None, nps.NpsStats] = {}
        for row in rows:
            if row.kind != "group":
                continue
            # SQLite hands back JSON numbers as numbers, PostgreSQL as text: keys are text on both.
            label = None if row.key is None else str(row.key)
            merged[label] = merged.get(label, nps.EMPTY) + _stats(row)
        ordered = sorted(
            merged.items(), key=lambda item: (-item[1].responses, item[0] is None, item[0] or "")
        )
        groups = [{"key": label, **stats.as_dict()} for label, stats in ordered]

    series = [{"period": p, **stats.as_dict()} for p, stats in _fill_periods(found, interval, since, until)]
    return {"overall": overall.as_dict(), "groups": groups, "series": series}
