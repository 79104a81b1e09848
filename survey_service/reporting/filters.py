"""Which responses a report, export or dashboard view covers: one set of SQL conditions for all."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, select

from survey_service.models import Event, Response, ResponseTheme, SurveyRequest

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
    trigger_id: int | None = None
    event_type: str | None = None
    where: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    search: str | None = None
    followup_status: str | None = None
    with_comment: bool = False
    theme_id: int | None = None
    # The campaign (services/campaigns.py) the answered survey requests belong to.
    campaign: str | None = None

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
        if self.trigger_id is not None or self.event_type is not None or self.campaign is not None:
            conds.append(Response.request_id.in_(self.request_ids()))
        for key, value in self.where:
            conds.append(property_text(key) == value)
        if self.with_comment:
            conds.append(Response.comment.is_not(None))
            conds.append(Response.comment != "")
        if self.followup_status:
            conds.append(Response.followup_status == self.followup_status)
        if self.theme_id is not None:
            conds.append(
                Response.id.in_(
                    select(ResponseTheme.response_id).where(ResponseTheme.theme_id == self.theme_id)
                )
            )
        if self.search:
            conds.append(Response.comment.ilike(f"%{escape_like(self.search[:MAX_SEARCH])}%", escape="\\"))
        return conds

    def request_conditions(self) -> list[Any]:
        """The trigger, event-type and campaign filters as conditions on the survey requests."""
        conds: list[Any] = [SurveyRequest.project_id == self.project_id]
        if self.trigger_id is not None:
            conds.append(SurveyRequest.trigger_id == self.trigger_id)
        if self.campaign is not None:
            conds.append(SurveyRequest.campaign == self.campaign)
        if self.event_type is not None:
            events = select(Event.id).where(
                Event.project_id == self.project_id, Event.type == self.event_type
            )
            conds.append(SurveyRequest.event_id.in_(events))
        return conds

    def request_ids(self) -> Any:
        """The ids of the project's survey requests sent for this trigger rule, event type and campaign."""
        return select(SurveyRequest.id).where(*self.request_conditions())


def property_text(key: str) -> Any:
    """A frozen property as text on both databases (SQLite's json_extract keeps numbers numeric)."""
    return cast(Response.properties[key].as_string(), String)


def escape_like(text: str) -> str:
    """Escape LIKE wildcards so a search for '50%' matches the text, not a pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
