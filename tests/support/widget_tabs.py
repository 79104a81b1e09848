"""A signed-in user's browser tab on a host app that embeds the widget (real Chromium): page views, the
widget's identify requests with their answers, the browser's clock under the test's control."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask

from survey_service.core import keys
from tests.support.servers import host_pages


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
def tab(app: Flask, origin: str, project: dict[str, Any], browser: Any, at: datetime) -> Iterator[Session]:
    """A tab on the host app, the browser's clock under the test's control, the server's frozen `at`."""
    app.config["FROZEN_NOW"] = at
    context = browser.new_context()
    session = Session(context.new_page(), origin, project)

    def on_identify(route: Any) -> None:
        seen: dict[str, Any] = {"body": json.loads(route.request.post_data or "{}")}
        session.identifies.append(seen)
        response = route.fetch()
        seen["answer"] = response.json()
        route.fulfill(response=response)

    context.route(f"{origin}/api/widget/identify", on_identify)
    session.page.clock.install(time=at)
    try:
        with host_pages(session.pages) as host:
            session.host = host
            yield session
    finally:
        context.close()
