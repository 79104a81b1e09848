"""Database helpers: a project as `create-project` makes it, and emptying every table between tests."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import text

from survey_service.extensions import db


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
