"""The in-app fallback of reminders in a real headless Chromium: a person the widget saw lately, whose email
ask went unanswered, is asked in the product once the reminder falls due (within the verdict's bound)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from survey_service.core import keys
from survey_service.extensions import db
from survey_service.models import Person, Response, Survey, SurveyRequest
from tests.support.servers import host_pages

pytestmark = pytest.mark.browser  # headless Chromium

T0 = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)


@dataclass
class Tab:
    """One tab of the signed-in user on the host app, with every identify request and its answer."""

    page: Any
    origin: str
    project: dict[str, Any]
    identifies: list[dict[str, Any]] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)
    views: int = 0
    host: str = ""

    def view(self, user_id: str) -> None:
        """Load another page of the host app as the user; the widget has run its queued commands after."""
        self.views += 1
        path = f"/app/page-{self.views}.html"
        user = {"id": user_id, "user_hash": keys.user_hash(self.project["identity_secret"], user_id)}
        self.pages[path] = (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Host app</title></head><body>"
            f"<h1>Page {self.views}</h1><script>window.npsWidget = window.npsWidget || function () {{"
            " (npsWidget.q = npsWidget.q || []).push(arguments) };"
            f"npsWidget('identify', {json.dumps(user)});</script>"
            f'<script async src="{self.origin}/widget.js" data-key="{self.project["public_key"]}"></script>'
            "</body></html>"
        )
        self.page.goto(self.host + path, wait_until="load")
        self.page.evaluate("() => new Promise(r => setTimeout(r, 0))")

    def wait_for_identifies(self, count: int) -> None:
        """Wait until the widget made `count` identify requests, all answered, and kept the last verdict."""
        deadline = time.monotonic() + 30
        while not (len(self.identifies) >= count and all("answer" in i for i in self.identifies)):
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.identifies)} identify requests, expected {count}")
            self.page.wait_for_timeout(25)  # lets Playwright run the route handler meanwhile
        verdict = self.identifies[-1]["answer"].get("verdict")
        if verdict:
            key = "npsWidget:" + self.project["public_key"]
            self.page.wait_for_function(
                "([k, v]) => (sessionStorage.getItem(k) || '').includes(v)", arg=[key, verdict]
            )


@contextmanager
def tab(app: Flask, origin: str, project: dict[str, Any], browser: Any) -> Iterator[Tab]:
    """A tab with the browser's clock under the test's control and the server's frozen at T0."""
    app.config["FROZEN_NOW"] = T0
    context = browser.new_context()
    session = Tab(context.new_page(), origin, project)

    def on_identify(route: Any) -> None:
        seen: dict[str, Any] = {"body": json.loads(route.request.post_data or "{}")}
        session.identifies.append(seen)
        response = route.fetch()
        seen["answer"] = response.json()
        route.fulfill(response=response)

    context.route(f"{origin}/api/widget/identify", on_identify)
    session.page.clock.install(time=T0)
    try:
        with host_pages(session.pages) as host:
            session.host = host
            yield session
    finally:
        context.close()


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
    with tab(app, live_server, project, browser) as session:
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
