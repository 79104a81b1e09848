"""Theme counts for reports: how many promoters, passives and detractors carry each theme.

The one narrow read of the theme tables the rest of reporting uses (the feature package
survey_service/themes writes them; reporting never imports it). Closed days come from the per-day
theme counts (rollups.read_themes) and the rest is scanned, exactly as the NPS report does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal, null, select, true, union_all
from sqlalchemy.dialects.postgresql import aggregate_order_by

from survey_service.core import nps
from survey_service.extensions import db
from survey_service.models import Response, ResponseAnalysis, ResponseTheme, Theme
from survey_service.reporting import rollups
from survey_service.reporting.filters import ResponseFilter

# The NPS report's `group_by` value that groups by theme instead of a frozen property.
GROUP_BY_THEME = "theme"
# Per theme id (None: commented, analysed, no theme) its NPS counts.
ThemeCounts = dict[int | None, nps.NpsStats]


def theme_keys_by_response(project_id: int) -> Any:
    """A subquery of (response_id, theme_keys): the keys of each response's enabled themes, sorted, joined by
    ';', for the project's responses that have any; LEFT JOINed by an export.

    One aggregate over the project's theme rows, instead of a correlated subquery per exported response,
    which cost more than half of an all-time export (2M rows: 11.9 s, 7.2 s this way; the executor
    starts the subquery for every row, themes or not).
    """
    pairs = (
        select(ResponseTheme.response_id, Theme.key)
        .join(Theme, Theme.id == ResponseTheme.theme_id)
        .where(ResponseTheme.project_id == project_id, Theme.enabled.is_(True))
    )
    if db.engine.dialect.name == "postgresql":
        keys = func.string_agg(Theme.key, aggregate_order_by(literal(";"), Theme.key))
        return (
            pairs.with_only_columns(ResponseTheme.response_id, keys.label("theme_keys"))
            .group_by(ResponseTheme.response_id)
            .subquery("response_theme_keys")
        )
    ordered = pairs.order_by(ResponseTheme.response_id, Theme.key).subquery()  # group_concat keeps this order
    return (
        select(ordered.c.response_id, func.group_concat(ordered.c.key, ";").label("theme_keys"))
        .group_by(ordered.c.response_id)
        .subquery("response_theme_keys")
    )


def themes_of(project_id: int, *, enabled_only: bool = True) -> list[Theme]:
    """A project's themes (enabled ones by default), by label."""
    conds: list[Any] = [Theme.project_id == project_id]
    if enabled_only:
        conds.append(Theme.enabled.is_(True))
    return list(db.session.scalars(select(Theme).where(*conds).order_by(Theme.label)))


def _live(conds: list[Any]) -> dict[int | None, list[int]]:
    """Scan: per theme (None: analysed comments with no theme) the promoters, passives, detractors."""
    stmt = (
        select(
            ResponseTheme.theme_id,
            func.count().filter(Response.category == nps.PROMOTER).label("p"),
            func.count().filter(Response.category == nps.PASSIVE).label("pa"),
            func.count().filter(Response.category == nps.DETRACTOR).label("d"),
        )
        .select_from(Response)
        .join(ResponseAnalysis, ResponseAnalysis.response_id == Response.id)
        .outerjoin(ResponseTheme, ResponseTheme.response_id == Response.id)
        .where(*conds, Response.comment != "")
        .group_by(ResponseTheme.theme_id)
    )
    return {row.theme_id: [row.p, row.pa, row.d] for row in db.session.execute(stmt)}


def _live_with_totals(conds: list[Any]) -> tuple[list[int], dict[int | None, list[int]]]:
    """One scan for both: the responses' totals [p, pa, d, comments] and _live's per-theme counts.

    The scoped responses are a CTE read twice (PostgreSQL materialises it: the responses are
    scanned once); meant for the few days rollups do not cover.
    """
    # Whether there is a comment, not the comment: the CTE keeps a boolean per response, not its text.
    # NULL != '' is NULL, so a NULL comment counts as none.
    commented = (Response.comment != "").label("commented")
    scoped = select(Response.id, Response.category, commented).where(*conds).cte("scoped")

    def tally(*extra: Any) -> list[Any]:
        return [
            func.count().filter(scoped.c.category == nps.PROMOTER).label("p"),
            func.count().filter(scoped.c.category == nps.PASSIVE).label("pa"),
            func.count().filter(scoped.c.category == nps.DETRACTOR).label("d"),
            *extra,
        ]

    overall = select(
        literal(True).label("total"),
        null().label("theme_id"),
        *tally(func.count().filter(scoped.c.commented).label("c")),
    )
    # A theme row is only ever written with its comment's analysis, in one transaction (themes/service
    # _write; erasure and blanking delete both together), so a comment with a theme has an analysis:
    # only the comments without one are probed for it (the unthemed ones, theme_id NULL). A LATERAL
    # subquery whose condition on the theme PostgreSQL checks before the probe (a one-time filter);
    # an EXISTS here became a hashed subplan reading every analysis of the project.
    analysed = (
        select(literal(1).label("one"))
        .where(ResponseAnalysis.response_id == scoped.c.id, ResponseTheme.theme_id.is_(None))
        .limit(1)
        .lateral("analysed")
    )
    per_theme = (
        select(literal(False), ResponseTheme.theme_id, *tally(literal(0)))
        .select_from(scoped)
        .outerjoin(ResponseTheme, ResponseTheme.response_id == scoped.c.id)
        .outerjoin(analysed, true())
        .where(scoped.c.commented, ResponseTheme.theme_id.is_not(None) | analysed.c.one.is_not(None))
        .group_by(ResponseTheme.theme_id)
    )
    totals = [0, 0, 0, 0]
    found: dict[int | None, list[int]] = {}
    for row in db.session.execute(union_all(overall, per_theme)):
        if row.total:
            totals = [row.p, row.pa, row.d, row.c]
        else:
            found[row.theme_id] = [row.p, row.pa, row.d]
    return totals, found


def _add(target: dict[int | None, list[int]], more: dict[int | None, list[int]]) -> None:
    for key, value in more.items():
        current = target.setdefault(key, [0, 0, 0])
        for i, n in enumerate(value):
            current[i] += n


def _stats(found: dict[int | None, list[int]]) -> dict[int | None, nps.NpsStats]:
    return {key: nps.NpsStats(*value) for key, value in found.items()}


def _rolled(flt: ResponseFilter) -> tuple[rollups.ThemeCells, Any] | None:
    """The rollups' theme counts and totals for this filter, with the condition on the time they do
    not cover (None: rollups cannot answer, scan everything)."""
    if not rollups.can_answer(flt) or flt.where or flt.category:
        return None
    first, last = rollups.full_days(flt.since, flt.until)
    cells = rollups.read_themes(flt.project_id, first, last, survey_id=flt.survey_id, channel=flt.channel)
    rest = rollups.outside(cells.days, flt.since, flt.until) if cells.days else None
    return None if rest is None else (cells, rest)


def counts(flt: ResponseFilter) -> dict[int | None, nps.NpsStats]:
    """Per theme id (None: commented, analysed, no theme) the NPS counts of the filtered responses."""
    rolled = _rolled(flt)
    if rolled is None:
        return _stats(_live(flt.conditions()))
    cells, rest = rolled
    found = {key: list(value) for key, value in cells.counts.items()}
    _add(found, _live([*flt.conditions(), rest]))
    return _stats(found)


def counts_with_totals(flt: ResponseFilter) -> tuple[nps.NpsStats, int, ThemeCounts] | None:
    """The filtered responses' NPS counts and comment count with the per-theme counts, from one read
    of the rollups and one scan of the days they do not cover; None when rollups cannot answer (the
    caller reads the totals and counts() apart: two full scans cost no more than one scan twice)."""
    rolled = _rolled(flt)
    if rolled is None:
        return None
    cells, rest = rolled
    live_totals, live = _live_with_totals([*flt.conditions(), rest])
    totals = [a + b for a, b in zip(cells.totals, live_totals, strict=True)]
    found = {key: list(value) for key, value in cells.counts.items()}
    _add(found, live)
    return nps.NpsStats(*totals[:3]), totals[3], _stats(found)


def theme_groups(flt: ResponseFilter, min_responses: int) -> list[dict[str, Any]]:
    """The NPS report's groups for group_by=theme: one per enabled theme, most responses first."""
    found = counts(flt)
    groups = []
    for theme in themes_of(flt.project_id):
        stats = found.get(theme.id, nps.EMPTY)
        groups.append(
            {
                "key": theme.key,
                "label": theme.label,
                **stats.as_dict(),
                "comments": stats.responses,
                "too_few_responses": stats.responses < min_responses,
            }
        )
    return sorted(groups, key=lambda g: (-g["responses"], g["key"]))
