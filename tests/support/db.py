"""Database helpers: a project as `create-project` makes it, and emptying every table between tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select, text

from survey_service.core import clock
from survey_service.extensions import db
from survey_service.models import Response, Survey


def make_project(app: Flask, name: str = "Acme") -> dict[str, Any]:
    """Create a project and return its keys, as `create-project` prints them."""
    from survey_service.services.projects import create_project

    with app.app_context():
        return create_project(name).as_dict()


def empty_tables() -> None:
    """Delete every row of every table (inside an app context), children first; ids restart on PostgreSQL."""
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


def add_response(
    app: Flask,
    project: dict[str, Any],
    person_id: int,
    days_ago: float,
    *,
    score: int = 8,
    category: str = "passive",
    channel: str = "email",
) -> None:
    """A response of the person to the project's survey, dated days_ago on the app's clock."""
    with app.app_context():
        survey_id = db.session.scalar(select(Survey.id).where(Survey.project_id == project["id"]))
        when = clock.now() - timedelta(days=days_ago)
        db.session.add(
            Response(
                project_id=project["id"],
                survey_id=survey_id,
                person_id=person_id,
                score=score,
                category=category,
                channel=channel,
                properties={},
                created_at=when,
                updated_at=when,
            )
        )
        db.session.commit()
