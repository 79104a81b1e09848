"""The themes report: each theme's NPS, share of comments and impact on the score, with margins."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import false, func, select

from survey_service.core import nps
from survey_service.extensions import db
from survey_service.models import Response, ResponseAnalysis, ResponseTheme, Theme
from survey_service.reporting import reports, themes
from survey_service.reporting.filters import ResponseFilter, property_text

EXAMPLES = 3
EXAMPLE_CHARS = 300
EXAMPLE_WINDOW = 200
CONTRADICTIONS_LIMIT = 100


def _example(r: Any) -> dict[str, Any]:
    return {
        "response_id": r.id,
        "score": r.score,
        "comment": (r.comment or "")[:EXAMPLE_CHARS],
        "created_at": r.created_at,
    }


def _themes_with_examples(
    flt: ResponseFilter, counted: set[int | None], limit: int
) -> list[tuple[int, str, str, list[dict[str, Any]]]]:
    """The project's enabled themes by label, each with the newest few comments (of the themes that
    have any in the filter, `counted`). PostgreSQL: one statement, the theme list left-joined to a
    LATERAL subquery per theme (each an index walk); SQLite: the list, then a query per theme."""
    if db.engine.dialect.name != "postgresql" or not limit:
        return [
            (t.id, t.key, t.label, _examples(flt, t.id, limit) if limit and t.id in counted else [])
            for t in themes.themes_of(flt.project_id)
        ]
    newest = (
        select(Response.id, Response.score, Response.comment, Response.created_at)
        .join(ResponseTheme, ResponseTheme.response_id == Response.id)
        .where(ResponseTheme.theme_id == Theme.id, *flt.conditions())
        .order_by(ResponseTheme.response_id.desc())
        .limit(limit)
        .lateral()
    )
    ids = [theme_id for theme_id in counted if theme_id is not None]
    stmt = (
        select(Theme.id.label("theme_id"), Theme.key, Theme.label, newest)
        .outerjoin(newest, Theme.id.in_(ids) if ids else false())
        .where(Theme.project_id == flt.project_id, Theme.enabled.is_(True))
        .order_by(Theme.label, Theme.id, newest.c.id.desc())
    )
    found: dict[int, tuple[int, str, str, list[dict[str, Any]]]] = {}
    for row in db.session.execute(stmt):
        examples = found.setdefault(row.theme_id, (row.theme_id, row.key, row.label, []))[3]
        if row.id is not None:
            examples.append(_example(row))
    return list(found.values())


def _examples(flt: ResponseFilter, theme_id: int, limit: int) -> list[dict[str, Any]]:
    """The newest few comments of a theme within the filter: first among the theme's newest
    EXAMPLE_WINDOW rows (an index walk), and only if too few of those match, among all of them."""
    newest = (
        select(ResponseTheme.response_id)
        .where(ResponseTheme.theme_id == theme_id)
        .order_by(ResponseTheme.response_id.desc())
    )
    rows: Sequence[Any] = []
    for candidates in (newest.limit(EXAMPLE_WINDOW), newest):
        rows = db.session.execute(
            select(Response.id, Response.score, Response.comment, Response.created_at)
            .where(Response.id.in_(candidates.scalar_subquery()), *flt.conditions())
            .order_by(Response.id.desc())
            .limit(limit)
        ).all()
        if len(rows) == limit:
            break
    return [_example(r) for r in rows]


def _stats(stats: nps.NpsStats, min_n: int) -> dict[str, Any]:
    return {**stats.as_dict(), "too_few_responses": stats.responses < min_n}


def _trend(flt: ResponseFilter, interval: str, min_n: int) -> dict[int, list[dict[str, Any]]]:
    """Per theme, its Stats per period (live scan of the theme rows in the filter)."""
    period = reports._period(interval).label("period")
    stmt = (
        select(
            ResponseTheme.theme_id,
            period,
            func.count().filter(Response.category == nps.PROMOTER).label("p"),
            func.count().filter(Response.category == nps.PASSIVE).label("pa"),
            func.count().filter(Response.category == nps.DETRACTOR).label("d"),
        )
        .join(ResponseTheme, ResponseTheme.response_id == Response.id)
        .where(*flt.conditions())
        .group_by(ResponseTheme.theme_id, period)
    )
    found: dict[int, dict[str, nps.NpsStats]] = {}
    for row in db.session.execute(stmt):
        found.setdefault(row.theme_id, {})[reports._period_key(row.period)] = nps.NpsStats(
            row.p, row.pa, row.d
        )
    return {
        theme_id: [
            {"period": p, **_stats(stats, min_n)}
            for p, stats in reports._fill_periods(periods, interval, flt.since, flt.until)
        ]
        for theme_id, periods in found.items()
    }


def _groups(flt: ResponseFilter, group_by: str, min_n: int) -> dict[int, list[dict[str, Any]]]:
    """Per theme, its Stats per value of a frozen property (live scan)."""
    key = property_text(group_by).label("key")
    stmt = (
        select(
            ResponseTheme.theme_id,
            key,
            func.count().filter(Response.category == nps.PROMOTER).label("p"),
            func.count().filter(Response.category == nps.PASSIVE).label("pa"),
            func.count().filter(Response.category == nps.DETRACTOR).label("d"),
        )
        .join(ResponseTheme, ResponseTheme.response_id == Response.id)
        .where(*flt.conditions())
        .group_by(ResponseTheme.theme_id, key)
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for row in db.session.execute(stmt):
        stats = nps.NpsStats(row.p, row.pa, row.d)
        found.setdefault(row.theme_id, []).append({"key": row.key, **_stats(stats, min_n)})
    for groups in found.values():
        groups.sort(key=lambda g: (-g["responses"], g["key"] is None, g["key"] or ""))
    return found


def themes_report(
    project_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    channel: str | None = None,
    where: Sequence[tuple[str, str]] = (),
    survey_id: int | None = None,
    trigger_id: int | None = None,
    event_type: str | None = None,
    group_by: str | None = None,
    interval: str = "month",
    trend: bool = False,
    min_responses: int | None = None,
    examples: int = EXAMPLES,
    with_languages: bool = False,
) -> dict[str, Any]:
    """Every enabled theme with its counts, NPS and margin, share of comments and impact (with its
    margin) on the filtered responses' NPS; themes that pull the score down most come first."""
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
    both = themes.counts_with_totals(flt)
    if both is None:
        overall, comments = reports.totals(flt)
        found = themes.counts(flt)
    else:
        overall, comments, found = both
    series = _trend(flt, interval, min_n) if trend else {}
    groups = _groups(flt, group_by, min_n) if group_by else {}
    rows = []
    for theme_id, key, label, theme_examples in _themes_with_examples(flt, set(found), examples):
        stats = found.get(theme_id, nps.EMPTY)
        impact, impact_margin = nps.impact(overall, stats)
        row: dict[str, Any] = {
            "id": theme_id,
            "key": key,
            "label": label,
            **_stats(stats, min_n),
            "share_of_comments": round(stats.responses / comments * 100, 1) if comments else None,
            "impact": impact,
            "impact_margin": impact_margin,
            "examples": theme_examples,
        }
        if trend:
            row["series"] = series.get(theme_id, [])
        if group_by:
            row["groups"] = groups.get(theme_id, [])
        rows.append(row)
    rows.sort(key=lambda r: (r["responses"] == 0, r["impact"] if r["impact"] is not None else 0, r["key"]))
    unthemed = found.get(None, nps.EMPTY)
    return {
        "overall": _stats(overall, min_n) | {"comments": comments},
        "themes": rows,
        "unthemed": unthemed.responses,
        "unthemed_stats": _stats(unthemed, min_n),
        "min_responses": min_n,
        "languages": languages(flt) if with_languages else None,
    }


def languages(flt: ResponseFilter) -> list[dict[str, Any]]:
    """How many analysed comments were read in each language, and whether it is supported."""
    stmt = (
        select(
            ResponseAnalysis.language,
            ResponseAnalysis.supported,
            ResponseAnalysis.language_source,
            func.count().label("n"),
        )
        .join(Response, Response.id == ResponseAnalysis.response_id)
        .where(*flt.conditions())
        .group_by(ResponseAnalysis.language, ResponseAnalysis.supported, ResponseAnalysis.language_source)
    )
    merged: dict[str, dict[str, Any]] = {}
    for row in db.session.execute(stmt):
        entry = merged.setdefault(
            row.language, {"language": row.language, "supported": row.supported, "comments": 0}
        )
        entry["comments"] += row.n
        entry[row.language_source] = entry.get(row.language_source, 0) + row.n
    return sorted(merged.values(), key=lambda e: -e["comments"])


def contradictions(flt: ResponseFilter, limit: int = CONTRADICTIONS_LIMIT) -> dict[str, Any]:
    """Comments whose sentiment contradicts the score: promoters writing negatively, detractors
    writing positively (worth a look), newest first, with how many of each there are."""
    mismatch = ((Response.category == nps.PROMOTER) & (ResponseAnalysis.sentiment == "negative")) | (
        (Response.category == nps.DETRACTOR) & (ResponseAnalysis.sentiment == "positive")
    )
    base = (
        select(
            Response.id,
            Response.score,
            Response.category,
            Response.comment,
            Response.created_at,
            ResponseAnalysis.sentiment,
            ResponseAnalysis.sentiment_score,
            ResponseAnalysis.language,
        )
        .join(ResponseAnalysis, ResponseAnalysis.response_id == Response.id)
        .where(*flt.conditions(), mismatch)
    )
    rows = db.session.execute(
        base.order_by(Response.created_at.desc(), Response.id.desc()).limit(limit)
    ).all()
    totals = db.session.execute(
        select(ResponseAnalysis.sentiment, func.count())
        .join(Response, Response.id == ResponseAnalysis.response_id)
        .where(*flt.conditions())
        .group_by(ResponseAnalysis.sentiment)
    ).all()
    return {
        "sentiment": {label: 0 for label in ("positive", "neutral", "negative")} | {s: n for s, n in totals},
        "data": [
            {
                "response_id": r.id,
                "score": r.score,
                "category": r.category,
                "comment": r.comment,
                "created_at": r.created_at,
                "sentiment": r.sentiment,
                "sentiment_score": r.sentiment_score,
                "language": r.language,
            }
            for r in rows
        ],
    }


def theme_id_for(project_id: int, key: str) -> int | None:
    """The id of a project's theme by key (None when it has none of that key)."""
    return db.session.scalar(select(Theme.id).where(Theme.project_id == project_id, Theme.key == key))
