"""What the dashboard shows besides the NPS report: the latest comments."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from survey_service.core.clock import now
from survey_service.extensions import db
from survey_service.models import Person, Response
from survey_service.reporting.filters import ResponseFilter

MAX_COMMENTS = 100
# Newest first, the search widens through these windows until it has enough comments.
SEARCH_WINDOWS = (timedelta(days=7), timedelta(days=30), timedelta(days=90), timedelta(days=365))


def latest_comments(flt: ResponseFilter, limit: int = 25) -> list[Any]:
    """The newest responses with a comment matching the filter, with who wrote them.

    PostgreSQL cannot estimate how many rows a text search or a property filter keeps, so for
    `ORDER BY created_at DESC LIMIT 25` it often sorts every matching row of the range. Asking the
    last 7, 30, 90, 365 days first (an index range) and widening only when fewer than `limit` came
    back gives the same rows: a wider window can only add older ones.
    """
    limit = min(limit, MAX_COMMENTS)
    current = now()
    for window in SEARCH_WINDOWS:
        start = current - window
        if flt.since is not None and start <= flt.since:
            break
        rows = _comments(replace(flt, since=start), limit)
        if len(rows) >= limit:
            return rows
    return _comments(flt, limit)


def _comments(flt: ResponseFilter, limit: int) -> list[Any]:
    stmt = (
        select(
            Response.id,
            Response.score,
            Response.category,
            Response.comment,
            Response.channel,
            Response.properties,
            Response.created_at,
            Response.followup_status,
            Response.followup_owner,
            Response.followup_notes,
            Response.followup_tags,
            Person.email,
            Person.name,
        )
        .join(Person, Person.id == Response.person_id)
        .where(*flt.conditions())
        .order_by(Response.created_at.desc(), Response.id.desc())
        .limit(limit)
    )
    return list(db.session.execute(stmt))
