"""Theme counts for reports: how many promoters, passives and detractors carry each theme.

The one narrow read of the theme tables the rest of reporting uses (the feature package
survey_service/themes writes them; reporting never imports it). Closed days come from the per-day
theme counts (rollups.read_themes) and the rest is scanned, exactly as the NPS report does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from survey_service.core import nps
from survey_service.extensions import db
from survey_service.models import Response, ResponseAnalysis, ResponseTheme, Theme
from survey_service.reporting import rollups
from survey_service.reporting.filters import ResponseFilter

# The NPS report's `group_by` value that groups by theme instead of a frozen property.
GROUP_BY_THEME = "theme"


def theme_keys() -> Any:
    """A correlated subquery: the keys of a response's enabled themes, sorted, joined by ';'."""
    keys = (
        select(Theme.key)
        .join(ResponseTheme, ResponseTheme.theme_id == Theme.id)
        .where(ResponseTheme.response_id == Response.id, Theme.enabled.is_(True))
        .order_by(Theme.key)
        .correlate(Response)
        .subquery()
    )
    if db.engine.dialect.name == "postgresql":
        return select(func.string_agg(keys.c.key, ";")).scalar_subquery()
    return select(func.group_concat(keys.c.key, ";")).scalar_subquery()


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


def counts(flt: ResponseFilter) -> dict[int | None, nps.NpsStats]:
    """Per theme id (None: commented, analysed, no theme) the NPS counts of the filtered responses."""
    conds = flt.conditions()
    found: dict[int | None, list[int]] = {}
    if rollups.can_answer(flt) and not flt.where and not flt.category:
        first, last = rollups.full_days(flt.since, flt.until)
        cells = rollups.read_themes(flt.project_id, first, last, survey_id=flt.survey_id, channel=flt.channel)
        rest = rollups.outside(cells.days, flt.since, flt.until) if cells.days else None
        if rest is not None:
            found = {key: list(value) for key, value in cells.counts.items()}
            conds = [*conds, rest]
    for key, value in _live(conds).items():
        current = found.setdefault(key, [0, 0, 0])
        for i, n in enumerate(value):
            current[i] += n
    return {key: nps.NpsStats(*value) for key, value in found.items()}


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
