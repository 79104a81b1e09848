"""The widget's cost per page view in a real browser: identify requests over a session, and how long a change
made on the server takes to show the survey.

    .venv/bin/python -m bench.widget_session [--views 20] [--think 0.2] [--ttl 5] [--json PATH]

A headless Chromium (CHROMIUM_PATH, default /usr/bin/chromium, driven by Playwright) browses a host app on
its own origin that embeds the widget, as one signed-in user, page after page, `--think` seconds apart.
The service runs in this process (werkzeug, threaded) on a throw-away PostgreSQL database, so the bench
can change its settings and rows between phases:

1. *Requests per page view*: a `--views`-page session of a user the widget does not ask now (new, so too
   new for the recurring survey), with the default WIDGET_VERDICT_TTL (600 s), then the same session with
   verdicts off (WIDGET_VERDICT_TTL=0: the widget asks on every page view, as it did before verdicts).
2. *Time for a server-side change to show*: WIDGET_VERDICT_TTL=`--ttl` (short, so the run is fast); the user
   views a page (and gets a verdict), then the server gets a pending in-app request for them (what a
   lifecycle trigger firing or a manual request leaves), and the user keeps browsing until the survey
   shows. The figure is the time from that commit to the survey on screen; its bound is the verdict's TTL
   plus the time to the next page view, so with the default it is at most 600 s plus one page view.

Prints a summary and (with --json) every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import upgrade
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import select
from werkzeug.serving import make_server

from bench.pg import temporary_database
from survey_service import create_app
from survey_service.core import clock, keys
from survey_service.extensions import db
from survey_service.models import Person, Survey, SurveyRequest
from survey_service.services.projects import create_project

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REQUESTS_PER_VIEW_TARGET = 0.1


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """The app on a free local port (werkzeug, threaded); yields its origin."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@contextmanager
def host_app(pages: dict[str, str]) -> Iterator[str]:
    """The customer's web app: serves pages[path] as HTML on an origin of its own; yields the origin."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = pages.get(self.path.split("?")[0], "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


class Tab:
    """One browser tab of a signed-in user browsing the host app; counts the widget's identify requests."""

    def __init__(self, browser: Any, service: str, host: str, pages: dict[str, str], project: dict[str, Any]):
        self.context = browser.new_context()
        self.page: Page = self.context.new_page()
        self.service, self.host, self.pages, self.project = service, host, pages, project
        self.identifies = 0
        self.answered = 0
        self.views = 0
        self.page.on("request", self._on_request)
        self.page.on("requestfinished", self._on_finished)

    def _on_request(self, request: Any) -> None:
        if request.url.endswith("/api/widget/identify"):
            self.identifies += 1

    def _on_finished(self, request: Any) -> None:
        if request.url.endswith("/api/widget/identify"):
            self.answered += 1

    def view(self, user_id: str) -> None:
        """Load the next page as the user and wait until the widget is done with it."""
        self.views += 1
        path = f"/{secrets.token_hex(4)}/page-{self.views}.html"
        user = {"id": user_id, "user_hash": keys.user_hash(self.project["identity_secret"], user_id),
                "properties": {"plan": "pro"}}  # fmt: skip
        self.pages[path] = (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Host app</title></head><body>"
            f"<h1>Page {self.views}</h1><script>window.npsWidget = window.npsWidget || function () {{"
            " (npsWidget.q = npsWidget.q || []).push(arguments) };"
            f" npsWidget('identify', {json.dumps(user)});"
            f'</script><script async src="{self.service}/widget.js" data-key="{self.project["public_key"]}">'
            "</script></body></html>"
        )
        self.page.goto(self.host + path, wait_until="load")
        # The widget has read its queue (an async script delays the load event); let an identify it sent
        # come back and be handled before the person moves on.
        deadline = time.monotonic() + 30
        while self.answered < self.identifies and time.monotonic() < deadline:
            self.page.wait_for_timeout(5)
        self.page.evaluate("() => new Promise(r => setTimeout(r, 0))")

    def showing(self) -> bool:
        """Whether the survey is on screen."""
        return bool(self.page.locator("nps-widget [role=dialog]").count())

    def close(self) -> None:
        self.context.close()


def add_person(app: Flask, project_id: int, external_id: str) -> int:
    """A person first seen now: the recurring survey does not ask them for two weeks."""
    with app.app_context():
        person = Person(project_id=project_id, external_id=external_id, properties={}, created_at=clock.now())
        db.session.add(person)
        db.session.commit()
        return person.id


def ask_in_app(app: Flask, project_id: int, person_id: int) -> None:
    """What a lifecycle trigger firing (or a manual in-app request) leaves for the widget: a pending ask."""
    with app.app_context():
        survey_id = db.session.scalar(select(Survey.id).where(Survey.project_id == project_id))
        db.session.add(SurveyRequest(project_id=project_id, survey_id=survey_id, person_id=person_id,
                                     channel="in_app", status="pending"))  # fmt: skip
        db.session.commit()


def session(tab: Tab, user_id: str, views: int, think: float) -> dict[str, Any]:
    """Browse `views` pages `think` seconds apart; the identify requests the widget made."""
    started = time.perf_counter()
    for n in range(views):
        if n:
            tab.page.wait_for_timeout(think * 1000)  # the person reads the page
        tab.view(user_id)
    return {
        "page_views": views,
        "identify_requests": tab.identifies,
        "requests_per_view": round(tab.identifies / views, 3),
        "seconds": round(time.perf_counter() - started, 2),
    }


def run(views: int, think: float, ttl: int) -> dict[str, Any]:
    """Every phase once, on a throw-away database; returns the figures."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
    with tempfile.TemporaryDirectory(prefix="widget-session-") as instance, temporary_database() as url:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secrets.token_urlsafe(32),
                          "INSTANCE_PATH": instance, "REDIS_URL": None,
                          "WIDGET_RATE_LIMIT": "100000 per minute"})  # fmt: skip
        with app.app_context():
            upgrade()
            created = create_project("Bench widget", "Bench App")
            project, project_id = created.as_dict(), created.project.id
        pages: dict[str, str] = {}
        default_ttl = app.config["WIDGET_VERDICT_TTL"]
        results: dict[str, Any] = {"views": views, "think_s": think, "default_ttl_s": default_ttl}
        with serving(app) as service, host_app(pages) as host, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for name, setting in (("with_verdicts", default_ttl), ("without_verdicts", 0)):
                    app.config["WIDGET_VERDICT_TTL"] = setting
                    user_id = f"{name}-{secrets.token_hex(3)}"
                    add_person(app, project_id, user_id)
                    tab = Tab(browser, service, host, pages, project)
                    results[name] = session(tab, user_id, views, think)
                    tab.close()

                app.config["WIDGET_VERDICT_TTL"] = ttl
                user_id = f"change-{secrets.token_hex(3)}"
                person_id = add_person(app, project_id, user_id)
                tab = Tab(browser, service, host, pages, project)
                tab.view(user_id)  # gets a verdict: not now, for ttl seconds
                changed = time.perf_counter()
                ask_in_app(app, project_id, person_id)
                views_until_shown = 0
                while not tab.showing() and time.perf_counter() - changed < ttl + 60:
                    tab.page.wait_for_timeout(think * 1000)
                    tab.view(user_id)
                    views_until_shown += 1
                tab.page.locator("nps-widget [role=dialog]").wait_for(timeout=30_000)
                shown_after = time.perf_counter() - changed
                results["change"] = {
                    "ttl_s": ttl,
                    "shown_after_s": round(shown_after, 2),
                    "page_views_until_shown": views_until_shown,
                    "identify_requests": tab.identifies,
                    "bound_s": ttl + think,
                }
                tab.close()
            finally:
                browser.close()
        with app.app_context():
            db.engine.dispose()
    return results


def summary(results: dict[str, Any]) -> str:
    """The figures as printed and recorded in bench/README.md."""
    on, off, change = results["with_verdicts"], results["without_verdicts"], results["change"]
    ok = "ok" if on["requests_per_view"] <= REQUESTS_PER_VIEW_TARGET else "MISSED"
    return "\n".join(
        [
            f"Widget session in headless Chromium: {results['views']} page views,"
            f" {results['think_s']} s apart, one signed-in user the widget does not ask now:",
            f"  identify requests per page view   {on['requests_per_view']:.3f}"
            f"   (target <= {REQUESTS_PER_VIEW_TARGET})  {ok}"
            f"   [{on['identify_requests']} requests; WIDGET_VERDICT_TTL={results['default_ttl_s']} s]",
            f"  without verdicts (TTL=0)          {off['requests_per_view']:.3f}"
            f"   [{off['identify_requests']} requests]",
            "Server-side change (a pending in-app request) to survey on screen,"
            f" WIDGET_VERDICT_TTL={change['ttl_s']} s:",
            f"  {change['shown_after_s']:.2f} s, {change['page_views_until_shown']} page views later"
            f" (bound: TTL + one page view = {change['bound_s']:.1f} s here;"
            f" with the default {results['default_ttl_s']} s + the time to the next page view)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the summary."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.widget_session", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--views", type=int, default=20, help="page views per session (default 20)")
    parser.add_argument("--think", type=float, default=0.2, help="seconds between page views (default 0.2)")
    parser.add_argument(
        "--ttl", type=int, default=5, help="WIDGET_VERDICT_TTL of the change phase (default 5)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON to PATH")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH", file=sys.stderr)
        return 2
    results = run(args.views, args.think, args.ttl)
    print(summary(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
