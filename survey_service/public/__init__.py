"""Unauthenticated endpoints: /healthz here; the pages a surveyed person sees are in survey_pages.py."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import text

from survey_service.errors import ApiError
from survey_service.extensions import db

bp = Blueprint("public", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    """Answer 200 when the database answers."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:
        db.session.rollback()
        raise ApiError(503, "unavailable", "The database does not answer.") from exc
    return {"status": "ok", "database": "ok"}
