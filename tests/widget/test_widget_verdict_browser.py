"""The widget's kept verdict in a real headless Chromium: identify requests over page views, and how a change
made on the server reaches the person once the verdict expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from survey_service.extensions import db
from survey_service.models import Person, Survey, SurveyRequest
from tests.support.widget_tabs import tab

pytestmark = pytest.mark.browser  # headless Chromium

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def add_person(app: Flask, project: dict[str, Any], external_id: str) -> int:
    with app.app_context():
        person = Person(project_id=project["id"], external_id=external_id, properties={}, created_at=T0)
        db.session.add(person)
        db.session.commit()
        return person.id


def trigger_in_app_ask(app: Flask, project: dict[str, Any], person_id: int) -> None:
    """What a lifecycle trigger firing (or a manual in-app request) leaves for the widget: a pending ask."""
    with app.app_context():
        survey_id = db.session.scalar(select(Survey.id).where(Survey.project_id == project["id"]))
        db.session.add(
            SurveyRequest(
                project_id=project["id"],
                survey_id=survey_id,
                person_id=person_id,
                channel="in_app",
                status="pending",
            )
        )
        db.session.commit()


def test_widget_verdict_page_views_skip_identify_until_a_server_change_is_due(
    app: Flask, live_server: str, project: dict[str, Any], browser: Any
) -> None:
    with tab(app, live_server, project, browser, T0) as session:
        person_id = add_person(app, project, "u1")  # first seen now: too new for the recurring survey
        session.view("u1", properties={"plan": "pro"})
        session.wait_for_identifies(1)
        first = session.identifies[0]["answer"]
        assert first["show"] is False and first["verdict_ttl"] == 600
        for _ in range(9):
            session.view("u1", properties={"plan": "pro"})
        trigger_in_app_ask(app, project, person_id)  # the server's change
        for _ in range(5):  # within the verdict's 10 minutes the tab does not ask (the documented bound)
            session.view("u1", properties={"plan": "pro"})
        assert session.page.locator("nps-widget").count() == 0
        session.page.clock.fast_forward(600_000)
        app.config["FROZEN_NOW"] = T0 + timedelta(seconds=600)
        session.view("u1", properties={"plan": "pro"})
        session.page.locator("nps-widget [role=dialog]").wait_for()
        session.wait_for_identifies(2)
        # Sixteen page views, two identify requests: the first, and the first after the verdict expired.
        assert session.views == 16 and len(session.identifies) == 2
        assert session.identifies[1]["answer"]["show"] is True


def test_widget_verdict_user_trait_change_and_forced_show_ask_again(
    app: Flask, live_server: str, project: dict[str, Any], browser: Any
) -> None:
    with tab(app, live_server, project, browser, T0) as session:
        add_person(app, project, "u1")
        add_person(app, project, "u2")
        session.view("u1", properties={"plan": "pro"})
        session.wait_for_identifies(1)
        session.view("u1", properties={"plan": "pro"})
        session.view("u1", properties={"plan": "enterprise"})  # traits changed: asks
        session.wait_for_identifies(2)
        session.view("u1", properties={"plan": "enterprise"})
        session.view("u2", properties={"plan": "enterprise"})  # another user: asks
        session.wait_for_identifies(3)
        session.view("u2", properties={"plan": "enterprise"})
        session.view("u2", properties={"plan": "enterprise"}, commands="npsWidget('show', {force: true});")
        session.page.locator("nps-widget [role=dialog]").wait_for()  # forced: asks, and the server shows it
        session.wait_for_identifies(4)
        assert session.views == 7 and len(session.identifies) == 4
        sent = [i["body"] for i in session.identifies]
        assert [b["user"]["id"] for b in sent] == ["u1", "u1", "u2", "u2"]
        assert [b["force"] for b in sent] == [False, False, False, True]


def test_widget_verdict_storage_unavailable_never_throws_and_asks_each_time(
    app: Flask, live_server: str, project: dict[str, Any], browser: Any
) -> None:
    with tab(app, live_server, project, browser, T0) as session:
        add_person(app, project, "u1")
        errors: list[str] = []
        session.page.on("pageerror", lambda exc: errors.append(str(exc)))
        # As in a sandboxed frame or with site data blocked: touching sessionStorage throws.
        session.page.add_init_script(
            "Object.defineProperty(window, 'sessionStorage',"
            " {get() { throw new DOMException('denied', 'SecurityError') }})"
        )
        for n in range(1, 4):
            session.view("u1")
            session.wait_for_identifies(n, kept=False)
        assert len(session.identifies) == 3 and errors == []
