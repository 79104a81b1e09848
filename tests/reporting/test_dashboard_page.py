"""The dashboard's page model: how it talks to the database (the page itself: tests/dashboard)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import text

from survey_service.extensions import db
from survey_service.reporting.dashboard import dashboard_page
from tests.support.db import make_project


def test_dashboard_page_switches_jit_off_for_its_own_transaction_only(app: Flask) -> None:
    project = make_project(app, "Jit")
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
        before = db.session.scalar(text("SHOW jit")) if postgres else None
        db.session.commit()
        page = dashboard_page(project["id"], {"range": "12m"}, [])
        assert page.report["overall"]["responses"] == 0 and page.first_run
        if postgres:
            # JIT compiling cost more than the page's short statements take (docs in no_jit).
            assert db.session.scalar(text("SHOW jit")) == "off"
            db.session.commit()
            assert db.session.scalar(text("SHOW jit")) == before
        db.session.remove()
