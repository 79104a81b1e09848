"""Which responses a report, export or dashboard view covers: one set of SQL conditions for all."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast

from ..models import Response

MAX_SEARCH = 200


@dataclass(frozen=True)
class ResponseFilter:
    """A project's responses narrowed by time, category, channel, frozen properties and text."""

    project_id: int
    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    channel: str | None = None
    survey_id: int | None = None
    where: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    search: str | None = None
    followup_status: str | None = None
    with_comment: bool = False

    def conditions(self) -> list[Any]:
        """The WHERE clauses, all on the responses table (no join needed)."""
        conds: list[Any] = [Response.project_id == self.project_id, Response.category.is_not(None)]
        if self.since:
            conds.append(Response.created_at >= self.since)
        if self.until:
            conds.append(Response.created_at < self.until)
        if self.category:
            conds.append(Response.category == self.category)
        if self.channel:
            conds.append(Response.channel == self.channel)
        if self.survey_id is not None:
            conds.append(Response.survey_id == self.survey_id)
        for key, value in self.where:
            conds.append(property_text(key) == value)
        if self.with_comment:
            conds.append(Response.comment.is_not(None))
            conds.append(Response.comment != "")
        if self.followup_status:
            conds.append(Response.followup_status == self.followup_status)
        if self.search:
            conds.append(Response.comment.ilike(f"%{escape_like(self.search[:MAX_SEARCH])}%", escape="\\"))
        return conds


def property_text(key: str) -> Any:
    """A frozen property as text on both databases (SQLite's json_extract keeps numbers numeric)."""
    return cast(Response.properties[key].as_string(), String)


def escape_like(text: str) -> str:
    """Escape LIKE wildcards so a search for '50%' matches the text, not a pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
