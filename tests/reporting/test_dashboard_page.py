"""The dashboard's page model: how it talks to the database (the page itself: tests/dashboard)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import text

from survey_service.extensions import db
from survey_service.reporting.dashboard import dashboard_page, latest_comments
from survey_service.reporting.filters import ResponseFilter
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


def test_latest_comments_runs_serially_and_restores_the_parallel_setting(app: Flask) -> None:
    project = make_project(app, "Serial")
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
        if postgres:
            db.session.execute(text("SET LOCAL max_parallel_workers_per_gather = 3"))
        assert latest_comments(ResponseFilter(project["id"], search="slow", with_comment=True)) == []
        if postgres:
            # The search itself ran with none (docs in _serial); what came after sees the setting again.
            assert db.session.scalar(text("SHOW max_parallel_workers_per_gather")) == "3"
        db.session.remove()
