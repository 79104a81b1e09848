"""A job used only by the worker test: it touches the database, so it proves the app context."""

from __future__ import annotations

from sqlalchemy import func, select

from survey_service.extensions import db
from survey_service.models import Response


def count_responses(project_id: int) -> int:
    """Count a project's responses (needs the app context and a working DB pool in the fork)."""
    return int(db.session.scalar(select(func.count()).where(Response.project_id == project_id)) or 0)


def always_fails(request_id: int) -> None:
    """A send that can never succeed, to fill the failed-job registry."""
    raise RuntimeError(f"SMTP said no to request {request_id}")
