"""The widget's kept verdict in a real headless Chromium: identify requests over page views, and how a change
made on the server reaches the person once the verdict expires."""

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
from survey_service.models import Person, Survey, SurveyRequest
from tests.support.servers import host_pages

pytestmark = pytest.mark.browser  # headless Chromium

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@dataclass
class Session:
    """One browser tab of a signed-in user on the host app, counting the widget's identify requests."""

    page: Any
    origin: str
    project: dict[str, Any]
    identifies: list[dict[str, Any]] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)
    views: int = 0
    host: str = ""

    def view(self, user_id: str, *, commands: str = "", **traits: Any) -> None:
        """Load another page of the host app, as the user; the widget has run its queued commands after."""
        self.views += 1
        path = f"/app/page-{self.views}.html"
        user = {
            "id": user_id,
            "user_hash": keys.user_hash(self.project["identity_secret"], user_id),
            **traits,
        }
        self.pages[path] = (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Host app</title></head><body>"
            f"<h1>Page {self.views}</h1><script>window.npsWidget = window.npsWidget || function () {{"
            " (npsWidget.q = npsWidget.q || []).push(arguments) };"
            f"npsWidget('identify', {json.dumps(user)});{commands}</script>"
            f'<script async src="{self.origin}/widget.js" data-key="{self.project["public_key"]}"></script>'
            "</body></html>"
        )
        # An async script delays the load event: once loaded, the widget has read its queue, and a pending
        # identify has been sent; the next macrotask runs after the queued commands' promise callbacks.
        self.page.goto(self.host + path, wait_until="load")
        self.page.evaluate("() => new Promise(r => setTimeout(r, 0))")

    def wait_for_identifies(self, count: int, *, kept: bool = True) -> None:
        """Wait until the widget made `count` identify requests, the last one was answered and (kept) the
        widget stored that answer's verdict, so the next page view can use it."""
        deadline = time.monotonic() + 30
        while not (len(self.identifies) >= count and all("answer" in i for i in self.identifies)):
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.identifies)} identify requests, expected {count}")
            self.page.wait_for_timeout(25)  # lets Playwright run the route handler meanwhile
        verdict = self.identifies[-1]["answer"].get("verdict")
        if kept and verdict:
            key = "npsWidget:" + self.project["public_key"]
            self.page.wait_for_function(
                "([k, v]) => (sessionStorage.getItem(k) || '').includes(v)", arg=[key, verdict]
            )


@contextmanager
def tab(app: Flask, origin: str, project: dict[str, Any], browser: Any) -> Iterator[Session]:
    """A tab on the host app with the browser's clock under the test's control and the server's frozen."""
    app.config["FROZEN_NOW"] = T0
    context = browser.new_context()
    session = Session(context.new_page(), origin, project)

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
    with tab(app, live_server, project, browser) as session:
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
    with tab(app, live_server, project, browser) as session:
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
    with tab(app, live_server, project, browser) as session:
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
