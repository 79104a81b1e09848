"""The in-app fallback of reminders in a real headless Chromium: a person the widget saw lately, whose email
ask went unanswered, is asked in the product once the reminder falls due (within the verdict's bound)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from survey_service.extensions import db
from survey_service.models import Person, Response, Survey, SurveyRequest
from tests.support.widget_tabs import tab

pytestmark = pytest.mark.browser  # headless Chromium

T0 = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)


def emailed_customer(app: Flask, project: dict[str, Any]) -> int:
    """A customer the widget saw yesterday whose email ask of three days ago is unanswered; returns its id."""
    with app.app_context():
        person = Person(
            project_id=project["id"],
            external_id="cust-1",
            email="cust-1@example.com",
            properties={},
            created_at=T0 - timedelta(days=400),
            widget_seen_at=T0 - timedelta(days=1),
        )
        db.session.add(person)
        db.session.flush()
        survey_id = db.session.scalar(select(Survey.id).where(Survey.project_id == project["id"]))
        ask = SurveyRequest(
            project_id=project["id"],
            survey_id=survey_id,
            person_id=person.id,
            channel="email",
            status="sent",
            scheduled_at=T0 - timedelta(days=3),
            sent_at=T0 - timedelta(days=3),
            expires_at=T0 + timedelta(days=27),
            reminder_plan={"count": 1, "delays_hours": [72], "mode": "in_app_first", "in_app_window_days": 7},
            next_reminder_at=T0 + timedelta(minutes=2),
        )
        db.session.add(ask)
        db.session.commit()
        return ask.id


def reminder_falls_due(app: Flask, ask_id: int, at: datetime) -> int:
    """What the reminder scheduler leaves for a recently seen person under "in_app_first": an in-app step."""
    with app.app_context():
        ask = db.session.get(SurveyRequest, ask_id)
        assert ask is not None
        step = SurveyRequest(
            project_id=ask.project_id,
            survey_id=ask.survey_id,
            person_id=ask.person_id,
            channel="in_app",
            status="pending",
            reminder_of_id=ask.id,
            step=1,
            scheduled_at=at,
            expires_at=ask.expires_at,
        )
        ask.next_reminder_at = None
        db.session.add(step)
        db.session.commit()
        return step.id


def test_widget_recently_seen_person_is_asked_in_app_when_the_reminder_falls_due_and_answers(
    app: Flask, live_server: str, project: dict[str, Any], browser: Any
) -> None:
    ask_id = emailed_customer(app, project)
    with tab(app, live_server, project, browser, T0) as session:
        session.view("cust-1")
        session.wait_for_identifies(1)
        first = session.identifies[0]["answer"]
        # The email ask of three days ago is in the quiet period: nothing shows, kept for the verdict's TTL.
        assert first["show"] is False and first["reason"] == "quiet_period" and first["verdict_ttl"] == 600
        due = T0 + timedelta(minutes=2)
        session.page.clock.fast_forward(120_000)
        app.config["FROZEN_NOW"] = due
        step_id = reminder_falls_due(app, ask_id, due)
        session.view("cust-1")  # within the verdict: the tab does not ask yet (the documented bound)
        assert session.page.locator("nps-widget").count() == 0 and len(session.identifies) == 1
        session.page.clock.fast_forward(480_000)
        app.config["FROZEN_NOW"] = T0 + timedelta(seconds=600)
        session.view("cust-1")
        page = session.page
        page.locator("nps-widget [role=dialog]").wait_for()
        session.wait_for_identifies(2)
        assert session.identifies[1]["answer"]["show"] is True
        page.locator("nps-widget button[data-score='8']").click()
        page.locator("nps-widget textarea[name=comment]").fill("Reminded in the app")
        page.locator("nps-widget button[type=submit]").click()
        page.locator("nps-widget .t").wait_for()
    with app.app_context():
        responses = db.session.scalars(select(Response).where(Response.project_id == project["id"])).all()
        assert [(r.request_id, r.channel, r.score, r.comment) for r in responses] == [
            (step_id, "in_app", 8, "Reminded in the app")
        ]
        step = db.session.get(SurveyRequest, step_id)
        assert step is not None and step.status == "responded"
        assert step.sent_at == T0 + timedelta(seconds=600)
