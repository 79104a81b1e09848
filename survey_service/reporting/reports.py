"""NPS reports: the database counts (GROUP BY with filtered counts); nps.py does the arithmetic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Integer, func, literal, null, select, union_all

from survey_service.core import clock, nps
from survey_service.extensions import db
from survey_service.models import Response, SurveyRequest, TriggerRule
from survey_service.reporting import rollups, themes
from survey_service.reporting.filters import ResponseFilter

MAX_FILLED_PERIODS = 1000
ALL_RESPONSES = "all"
LAST_PER_PERSON = "last_per_person"


def _counts() -> list[Any]:
    return [
        func.count().filter(Response.category == nps.PROMOTER).label("promoters"),
        func.count().filter(Response.category == nps.PASSIVE).label("passives"),
        func.count().filter(Response.category == nps.DETRACTOR).label("detractors"),
        # NULL != '' is NULL, so this counts non-empty comments only.
        func.count().filter(Response.comment != "").label("comments"),
    ]


def _period(interval: str) -> ColumnElement[Any]:
    """Start of the day/ISO week/month/quarter of each response's created_at (UTC).

    PostgreSQL gives a timestamp (formatted only on the result rows: `to_char` on every row costs as
    much as the scan), SQLite YYYY-MM-DD text (it stores naive UTC text; its date functions agree).
    """
    col = Response.created_at
    if db.engine.dialect.name == "postgresql":
        return func.date_trunc(interval, func.timezone("UTC", col))
    if interval == "day":
        return func.date(col)
    if interval == "week":
        return func.date(col, "-6 days", "weekday 1")
    if interval == "quarter":
        quarter_month = (func.cast(func.strftime("%m", col), Integer) - 1) // 3 * 3 + 1
        return func.printf("%s-%02d-01", func.strftime("%Y", col), quarter_month)
    return func.strftime("%Y-%m-01", col)


def _period_key(value: Any) -> str:
    """A period start as YYYY-MM-DD, from PostgreSQL's timestamp or SQLite's text."""
    return value.date().isoformat() if isinstance(value, datetime) else str(value)


def _period_start(moment: date, interval: str) -> date:
    if interval == "week":
        return moment - timedelta(days=moment.weekday())
    if interval == "month":
        return moment.replace(day=1)
    if interval == "quarter":
        return moment.replace(month=(moment.month - 1) // 3 * 3 + 1, day=1)
    return moment


def _next_period(start: date, interval: str) -> date:
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(days=7)
    if interval == "quarter":
        months = start.month + 2  # zero-based month index three months on
        return start.replace(year=start.year + months // 12, month=months % 12 + 1, day=1)
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


def _stats(stats: nps.NpsStats, comments: int, min_responses: int) -> dict[str, Any]:
    """The contract's Stats plus the comment count and the small-sample flag."""
    return {**stats.as_dict(), "comments": comments, "too_few_responses": stats.responses < min_responses}


def _scope(flt: ResponseFilter, mode: str) -> list[Any]:
    """The WHERE clauses for all responses, or only each person's latest one within the filter."""
    conds = flt.conditions()
    if mode != LAST_PER_PERSON:
        return conds
    rank = (
        func.row_number()
        .over(partition_by=Response.person_id, order_by=(Response.created_at.desc(), Response.id.desc()))
        .label("rank")
    )
    ranked = select(Response.id, rank).where(*conds).subquery()
    return [Response.id.in_(select(ranked.c.id).where(ranked.c.rank == 1))]


def _rate(sent: int, responded: int) -> dict[str, Any]:
    return {
        "sent": sent,
        "responded": responded,
        "response_rate": round(responded / sent * 100, 1) if sent else None,
    }


def _request_scope(flt: ResponseFilter) -> list[Any]:
    """Survey requests sent in the filter's range, channel, trigger rule and event type."""
    conds: list[Any] = [*flt.request_conditions(), SurveyRequest.sent_at.is_not(None)]
    if flt.since:
        conds.append(SurveyRequest.sent_at >= flt.since)
    if flt.until:
        conds.append(SurveyRequest.sent_at < flt.until)
    if flt.channel:
        conds.append(SurveyRequest.channel == flt.channel)
    return conds


def response_rates(flt: ResponseFilter) -> list[dict[str, Any]]:
    """Survey requests sent in the range and how many were answered, per channel (one GROUP BY)."""
    stmt = (
        select(SurveyRequest.channel, func.count().label("sent"), func.count(Response.id).label("responded"))
        .select_from(SurveyRequest)
        .outerjoin(Response, Response.request_id == SurveyRequest.id)
        .where(*_request_scope(flt))
        .group_by(SurveyRequest.channel)
        .order_by(SurveyRequest.channel)
    )
    return [{"channel": row.channel, **_rate(row.sent, row.responded)} for row in db.session.execute(stmt)]


def response_rates_by_trigger(flt: ResponseFilter) -> list[dict[str, Any]]:
    """The same per trigger rule and channel; `trigger_id` null for requests no rule made."""
    stmt = (
        select(
            SurveyRequest.trigger_id,
            TriggerRule.event_type,
            SurveyRequest.channel,
            func.count().label("sent"),
            func.count(Response.id).label("responded"),
        )
        .select_from(SurveyRequest)
        .outerjoin(Response, Response.request_id == SurveyRequest.id)
        .outerjoin(TriggerRule, TriggerRule.id == SurveyRequest.trigger_id)
        .where(*_request_scope(flt))
        .group_by(SurveyRequest.trigger_id, TriggerRule.event_type, SurveyRequest.channel)
    )
    rows = sorted(
        db.session.execute(stmt), key=lambda r: (r.trigger_id is None, r.trigger_id or 0, r.channel)
    )
    return [
        {
            "trigger_id": row.trigger_id,
            "event_type": row.event_type,
            "channel": row.channel,
            **_rate(row.sent, row.responded),
        }
        for row in rows
    ]


def _add_rolling(
    series: list[dict[str, Any]], flt: ResponseFilter, mode: str, interval: str, days: int, min_n: int
) -> None:
    """Give each period a `rolling` Stats: the responses of the `days` days up to the period's end.

    The database counts per day (one GROUP BY); the windows are sums over those daily counts.
    """
    first = date.fromisoformat(series[0]["period"])
    window_start = datetime.combine(first - timedelta(days=days), datetime.min.time(), tzinfo=UTC)
    wide = replace(flt, since=window_start)
    daily = {
        date.fromisoformat(day): (nps.NpsStats(p, pa, d), c)
        for day, (p, pa, d, c) in _tally(wide, mode, "day", None).periods.items()
    }
    for point in series:
        end = _next_period(date.fromisoformat(point["period"]), interval)
        if flt.until is not None:
            end = min(end, (flt.until.astimezone(UTC) - timedelta(microseconds=1)).date() + timedelta(days=1))
        stats, comments = nps.EMPTY, 0
        for offset in range(1, days + 1):
            found = daily.get(end - timedelta(days=offset))
            if found:
                stats, comments = stats + found[0], comments + found[1]
        point["rolling"] = _stats(stats, comments, min_n)


Counts = list[int]  # promoters, passives, detractors, comments


@dataclass
class Tally:
    """Counts per period (YYYY-MM-DD start) and, with a group_by, per value of the property."""

    periods: dict[str, Counts] = field(default_factory=dict)
    groups: dict[str | None, Counts] = field(default_factory=dict)

    def add(self, period: str, key: str | None, counts: Counts, grouped: bool) -> None:
        _plus(self.periods, period, counts)
        if grouped:
            _plus(self.groups, key, counts)


def _plus(target: dict[Any, Counts], cell: Any, counts: Counts) -> None:
    current = target.setdefault(cell, [0, 0, 0, 0])
    for i, n in enumerate(counts):
        current[i] += n


def _live_tally(conds: list[Any], interval: str, group_by: str | None) -> Tally:
    """Scan the responses once: counts per period and (with `group_by`) per value of that property.

    With a group_by the scan counts each (period, value) cell and the database adds the cells up by
    period and by value in the same statement (a CTE and UNION ALL, which SQLite runs too).
    """
    tally = Tally()
    period = _period(interval).label("period")
    if not group_by:
        for row in db.session.execute(select(period, *_counts()).where(*conds).group_by(period)):
            tally.periods[_period_key(row.period)] = [
                row.promoters,
                row.passives,
                row.detractors,
                row.comments,
            ]
        return tally
    key = Response.properties[group_by].as_string().label("key")
    cells = select(period, key, *_counts()).where(*conds).group_by(period, key).cte("cells")
    sums = [
        func.sum(cells.c[name]).label(name) for name in ("promoters", "passives", "detractors", "comments")
    ]
    by_period = select(literal(True).label("is_period"), cells.c.period, null().label("key"), *sums).group_by(
        cells.c.period
    )
    by_key = select(literal(False), null(), cells.c.key, *sums).group_by(cells.c.key)
    for row in db.session.execute(union_all(by_period, by_key)):
        # PostgreSQL's sum() is numeric: back to int before the arithmetic.
        counts = [int(row.promoters), int(row.passives), int(row.detractors), int(row.comments)]
        if row.is_period:
            tally.periods[_period_key(row.period)] = counts
        else:
            # SQLite hands back JSON numbers as numbers, PostgreSQL as text: keys are text on both.
            label = None if row.key is None else str(row.key)
            _plus(tally.groups, label, counts)
    return tally


def _rollup_plan(
    flt: ResponseFilter, mode: str, group_by: str | None
) -> tuple[str | None, str | None] | None:
    """(property, value) to read from the per-day rollups, or None when they cannot answer."""
    if mode != ALL_RESPONSES or flt.category or len(flt.where) > 1 or not rollups.can_answer(flt):
        return None
    if not flt.where:
        return group_by, None
    key, value = flt.where[0]
    return (key, value) if group_by in (None, key) else None


def _tally(flt: ResponseFilter, mode: str, interval: str, group_by: str | None) -> Tally:
    """Counts per period and group value: closed days from the rollups, the rest scanned live.

    Exact either way: rollups hold only days whose counts are current (services/rollups.py), and
    the scan covers precisely the time they do not.
    """
    plan = _rollup_plan(flt, mode, group_by)
    conds = _scope(flt, mode)
    if plan is None:
        return _live_tally(conds, interval, group_by)
    key, value = plan
    first, last = rollups.full_days(flt.since, flt.until)
    rolled = (
        rollups.read(
            flt.project_id,
            first,
            last,
            interval=interval,
            key=key,
            value=value,
            survey_id=flt.survey_id,
            channel=flt.channel,
        )
        if first <= last
        else None
    )
    rest = rollups.outside(rolled.days, flt.since, flt.until) if rolled is not None and rolled.days else None
    if rolled is None or rest is None:
        return _live_tally(conds, interval, group_by)
    tally = _live_tally([*conds, rest], interval, group_by)
    for (period, found_key), counts in rolled.counts.items():
        tally.add(period.isoformat(), found_key, counts, grouped=bool(group_by))
    return tally


def totals(flt: ResponseFilter) -> tuple[nps.NpsStats, int]:
    """The filtered responses' counts and how many have a comment (rollups for closed days)."""
    return _totals(flt, ALL_RESPONSES)


def _totals(flt: ResponseFilter, mode: str) -> tuple[nps.NpsStats, int]:
    stats, comments = nps.EMPTY, 0
    for p, pa, d, c in _tally(flt, mode, "month", None).periods.values():
        stats, comments = stats + nps.NpsStats(p, pa, d), comments + c
    return stats, comments


def _cells(
    flt: ResponseFilter, mode: str, interval: str, group_by: str | None, min_n: int
) -> tuple[dict[str, nps.NpsStats], dict[str, int], list[dict[str, Any]]]:
    """Per-period counts, per-period comment counts and the groups."""
    tally = _tally(flt, mode, interval, group_by)
    found = {p: nps.NpsStats(*counts[:3]) for p, counts in tally.periods.items()}
    comments = {p: counts[3] for p, counts in tally.periods.items()}
    merged = {key: nps.NpsStats(*counts[:3]) for key, counts in tally.groups.items()}
    ordered = sorted(merged.items(), key=lambda item: (-item[1].responses, item[0] is None, item[0] or ""))
    groups = [{"key": label, **_stats(stats, tally.groups[label][3], min_n)} for label, stats in ordered]
    return found, comments, groups


def nps_report(
    project_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: str | None = None,
    interval: str = "month",
    channel: str | None = None,
    where: Sequence[tuple[str, str]] = (),
    survey_id: int | None = None,
    trigger_id: int | None = None,
    event_type: str | None = None,
    mode: str = ALL_RESPONSES,
    compare: str | None = None,
    min_responses: int | None = None,
    rolling_days: int | None = None,
) -> dict[str, Any]:
    """NPS overall, by a frozen person property and per period, each with n and margin of error.

    Optional: filters by channel, survey, trigger rule, event type and frozen properties; each
    person's latest answer only;
    and a comparison with the previous period of the same length (two-sample z-test on NPS).
    """
    min_n = min_responses if min_responses is not None else current_app.config.get("REPORT_MIN_RESPONSES", 30)
    flt = ResponseFilter(
        project_id,
        since=since,
        until=until,
        channel=channel,
        where=tuple(where),
        survey_id=survey_id,
        trigger_id=trigger_id,
        event_type=event_type,
    )
    by_theme = group_by == themes.GROUP_BY_THEME
    found, comments, groups = _cells(flt, mode, interval, None if by_theme else group_by, min_n)
    if by_theme:  # themes, not a frozen property named "theme" (documented in docs/themes.md)
        groups = themes.theme_groups(flt, min_n)
    overall = sum(found.values(), nps.EMPTY)

    series = [
        {"period": p, **_stats(stats, comments.get(p, 0), min_n)}
        for p, stats in _fill_periods(found, interval, since, until)
    ]
    if rolling_days and series:
        _add_rolling(series, flt, mode, interval, rolling_days, min_n)
    report: dict[str, Any] = {
        "overall": _stats(overall, sum(comments.values()), min_n),
        "groups": groups,
        "series": series,
        "mode": mode,
        "min_responses": min_n,
        "response_rates": response_rates(flt),
        "response_rates_by_trigger": response_rates_by_trigger(flt),
    }
    if compare == "previous" and since is not None:
        end = until or clock.now()
        previous_flt = replace(flt, since=since - (end - since), until=since)
        previous, previous_comments = _totals(previous_flt, mode)
        result = nps.compare(overall, previous)
        report["comparison"] = {
            "since": previous_flt.since,
            "until": previous_flt.until,
            "previous": _stats(previous, previous_comments, min_n),
            **result.as_dict(),
        }
    return report
