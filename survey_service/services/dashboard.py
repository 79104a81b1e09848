"""What the dashboard shows besides the NPS report: the latest comments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..extensions import db
from ..models import Person, Response
from .filters import ResponseFilter

MAX_COMMENTS = 100


def latest_comments(flt: ResponseFilter, limit: int = 25) -> list[Any]:
    """The newest responses with a comment matching the filter, with who wrote them."""
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
            Person.email,
            Person.name,
        )
        .join(Person, Person.id == Response.person_id)
        .where(*flt.conditions())
        .order_by(Response.created_at.desc(), Response.id.desc())
        .limit(min(limit, MAX_COMMENTS))
    )
    return list(db.session.execute(stmt))
