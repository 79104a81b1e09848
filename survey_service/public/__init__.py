"""Unauthenticated endpoints: /healthz here; the pages a surveyed person sees are in survey_pages.py."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from sqlalchemy import text

from survey_service.errors import database_unavailable
from survey_service.extensions import db

bp = Blueprint("public", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, Any] | Response:
    """Answer 200 when the database answers, else the one 503."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:
        return database_unavailable(exc)
    return {"status": "ok", "database": "ok"}
