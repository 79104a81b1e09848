"""The widget in a real headless Chromium, embedded in a host page on another origin under a strict CSP."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from survey_service import create_app
from survey_service.core import clock, keys
from survey_service.extensions import db
from survey_service.models import Person, Survey, SurveyRequest, WidgetDismissal
from survey_service.services.projects import create_project
from survey_service.widget.settings import update_settings
from tests.support.env import REDIS_URL
from tests.support.servers import live_server

pytestmark = pytest.mark.browser  # headless Chromium

HOSTILE_CSS = "button { background: red !important; font-size: 40px !important; } * { color: lime; }"


@dataclass
class Live:
    """The service on a real server thread, with one project."""

    app: Flask
    origin: str
    project: dict[str, Any]

    def get(self, path: str) -> Any:
        req = urllib.request.Request(
            self.origin + path, headers={"Authorization": f"Bearer {self.project['secret_key']}"}
        )
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read())

    def person(self, external_id: str, days_ago: int = 0, *, in_app_request: bool = False) -> None:
        """A person first seen days_ago days ago, optionally with a pending in-app request."""
        with self.app.app_context():
            person = Person(project_id=self.project["id"], external_id=external_id, properties={})
            person.created_at = clock.now() - timedelta(days=days_ago)
            db.session.add(person)
            db.session.flush()
            if in_app_request:
                survey_id = db.session.scalar(
                    select(Survey.id).where(Survey.project_id == self.project["id"])
                )
                db.session.add(
                    SurveyRequest(
                        project_id=self.project["id"],
                        survey_id=survey_id,
                        person_id=person.id,
                        channel="in_app",
                        status="pending",
                    )
                )
            db.session.commit()


@dataclass
class Host:
    """A host web app on another origin that serves pages with a strict CSP."""

    server: ThreadingHTTPServer
    service_origin: str
    files: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def page(
        self, name: str, user: dict[str, Any] | None, key: str, *, commands: str = "", attrs: str = ""
    ) -> str:
        """Register a host page whose own script identifies user; return its URL."""
        identify = f'npsWidget("identify", {json.dumps(user)});' if user else ""
        self.files[f"/{name}.js"] = (
            "application/javascript",
            "window.npsWidget = window.npsWidget || function () {"
            " (npsWidget.q = npsWidget.q || []).push(arguments) };\n" + identify + commands,
        )
        self.files[f"/{name}.html"] = (
            "text/html",
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            '<title>Host app</title><link rel=stylesheet href="/host.css"></head>'
            "<body><h1>Host app</h1><p>Some page content the customer is working on.</p>"
            f'<script src="/{name}.js"></script>'
            f'<script async src="{self.service_origin}/widget.js" data-key="{key}" {attrs}></script>'
            "</body></html>",
        )
        return f"{self.origin}/{name}.html"


def _host_handler(host_ref: list[Host]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            host = host_ref[0]
            found = host.files.get(self.path.split("?")[0])
            if found is None:
                self.send_error(404)
                return
            ctype, body = found
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", f"{ctype}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header(
                "Content-Security-Policy",
                f"default-src 'self'; script-src 'self' {host.service_origin}; "
                f"connect-src {host.service_origin}; style-src 'self'",
            )
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The service on SQLite served by a real werkzeug server thread."""
    from flask_migrate import upgrade

    tmp = tmp_path_factory.mktemp("widget_live")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "browser-test-secret",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'live.db'}",
            "INSTANCE_PATH": str(tmp),
            "REDIS_URL": REDIS_URL,
        }
    )
    with app.app_context():
        upgrade()
        project = create_project("Acme", "Acme Cloud").as_dict()
    with live_server(app, set_base_url=False) as origin:
        yield Live(app, origin, project)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def host(live: Live) -> Iterator[Host]:
    ref: list[Host] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _host_handler(ref))
    files = {"/host.css": ("text/css", HOSTILE_CSS), "/favicon.ico": ("image/x-icon", "")}
    ref.append(Host(server, live.origin, files))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ref[0]
    server.shutdown()
    server.server_close()


@dataclass
class Watched:
    """A page with everything it reported: console messages, page errors, CSP violations."""

    page: Any
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__csp || []")
        return found

    def settle(self) -> None:
        """Let the widget's callbacks after the last response run (a render is synchronous)."""
        self.page.evaluate("() => new Promise(r => setTimeout(r, 150))")


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    context = browser.new_context()
    page = context.new_page()
    watch = Watched(page)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e =>"
        " (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.on("console", lambda msg: watch.console.append((msg.type, msg.text)))
    page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    yield watch
    context.close()


def signed(live: Live, user_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": user_id, "user_hash": keys.user_hash(live.project["identity_secret"], user_id), **extra}


def open_page(watch: Watched, url: str) -> Any:
    """Load a host page and wait for the widget's identify answer."""
    with watch.page.expect_response(lambda r: "/api/widget/identify" in r.url) as info:
        watch.page.goto(url)
    watch.settle()
    return info.value


def test_widget_eligible_user_answers_and_response_is_recorded(
    live: Live, host: Host, watched: Watched
) -> None:
    live.person("eligible-1", in_app_request=True)
    user = signed(live, "eligible-1", email="eve@example.com", properties={"plan": "pro", "seats": 12})
    url = host.page("eligible", user, live.project["public_key"])
    page = watched.page
    assert open_page(watched, url).status == 200

    dialog = page.locator("nps-widget [role=dialog]")
    dialog.wait_for()
    assert dialog.get_attribute("aria-label") == "Feedback survey"
    assert page.locator("nps-widget .q").inner_text().startswith("How likely are you to recommend Acme Cloud")
    assert page.locator("nps-widget button[data-score]").count() == 11
    assert page.locator("nps-widget").evaluate("e => e.shadowRoot.mode") == "open"
    # The host page's hostile CSS does not reach inside the shadow root.
    background = page.locator("nps-widget button[data-score='9']").evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert background != "rgb(255, 0, 0)"

    page.locator("nps-widget button[data-score='9']").click()
    assert page.locator("nps-widget button[data-score='9']").get_attribute("aria-pressed") == "true"
    textarea = page.locator("nps-widget textarea[name=comment]")
    textarea.wait_for()
    assert page.locator("nps-widget label").inner_text() == "What do you like most about us?"
    comment = "<img src=x onerror=alert(1)><b>bold</b> & more"
    textarea.fill(comment)
    page.locator("nps-widget button[type=submit]").click()
    thanks = page.locator("nps-widget .t")
    thanks.wait_for()
    assert thanks.inner_text() == "Thank you for your feedback!"
    # The comment is shown back as text, never parsed as HTML.
    assert comment in page.locator("nps-widget .y").inner_text()
    assert page.locator("nps-widget img, nps-widget b").count() == 0

    data = live.get("/api/v1/responses")["data"]
    mine = [r for r in data if r["person"]["external_id"] == "eligible-1"]
    assert len(mine) == 1
    assert mine[0]["score"] == 9 and mine[0]["category"] == "promoter"
    assert mine[0]["comment"] == comment and mine[0]["channel"] == "in_app"
    assert mine[0]["properties"] == {"plan": "pro", "seats": 12}

    assert watched.violations() == []
    assert [m for m in watched.console if m[0] in ("error", "warning")] == []
    assert watched.errors == []


def test_widget_score_survives_leaving_the_page_at_once(live: Live, host: Host, watched: Watched) -> None:
    live.person("leaver", in_app_request=True)
    page = watched.page
    open_page(watched, host.page("leaver", signed(live, "leaver"), live.project["public_key"]))
    page.locator("nps-widget button[data-score='3']").click()
    page.goto("about:blank")  # the person navigates away right after clicking

    def recorded() -> list[dict[str, Any]]:
        data = live.get("/api/v1/responses")["data"]
        return [r for r in data if r["person"]["external_id"] == "leaver"]

    for _ in range(100):  # wait for the keepalive request to land; no assertion on how long it took
        if recorded():
            break
        page.wait_for_timeout(50)
    assert [(r["score"], r["category"]) for r in recorded()] == [(3, "detractor")]


def test_widget_ineligible_user_sees_nothing(live: Live, host: Host, watched: Watched) -> None:
    live.person("new-user", days_ago=0)
    url = host.page("ineligible", signed(live, "new-user"), live.project["public_key"])
    response = open_page(watched, url)
    assert response.status == 200 and response.json()["show"] is False
    assert watched.page.locator("nps-widget").count() == 0
    assert watched.violations() == [] and watched.errors == []


def test_widget_wrong_user_hash_is_refused(live: Live, host: Host, watched: Watched) -> None:
    live.person("victim", in_app_request=True)
    user = {"id": "victim", "user_hash": "0" * 64}
    url = host.page("forged", user, live.project["public_key"], commands='npsWidget("show", {force: true});')
    response = open_page(watched, url)
    assert response.status == 403
    watched.page.wait_for_load_state("networkidle")
    watched.settle()
    assert watched.page.locator("nps-widget").count() == 0
    warnings = [text for kind, text in watched.console if kind == "warning"]
    assert any("[npsWidget]" in w and "user_hash" in w for w in warnings), watched.console
    assert watched.errors == [] and watched.violations() == []


def test_widget_unknown_key_warns_once_and_shows_nothing(live: Live, host: Host, watched: Watched) -> None:
    url = host.page("badkey", signed(live, "someone"), "pk_unknown")
    response = open_page(watched, url)
    assert response.status == 401
    watched.settle()
    assert watched.page.locator("nps-widget").count() == 0
    assert len([t for k, t in watched.console if k == "warning" and "[npsWidget]" in t]) == 1
    assert watched.errors == []


def test_widget_keyboard_answer_and_escape_dismisses(live: Live, host: Host, watched: Watched) -> None:
    live.person("keys-1", in_app_request=True)
    live.person("keys-2", in_app_request=True)
    page = watched.page
    open_page(watched, host.page("keyboard", signed(live, "keys-1"), live.project["public_key"]))
    page.locator("nps-widget button[data-score='0']").focus()
    for _ in range(7):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert page.locator("nps-widget button[data-score='7']").get_attribute("aria-pressed") == "true"
    assert page.locator("nps-widget textarea").evaluate("e => e === e.getRootNode().activeElement")
    page.keyboard.type("Faster exports, please")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.locator("nps-widget .t").wait_for()
    live_region = page.locator("nps-widget [aria-live]")
    page.wait_for_function(
        "() => document.querySelector('nps-widget').shadowRoot.querySelector('[aria-live]').textContent"
    )
    assert live_region.inner_text() == "Thank you for your feedback!"

    open_page(watched, host.page("escape", signed(live, "keys-2"), live.project["public_key"]))
    page.locator("nps-widget button[data-score='5']").focus()
    with page.expect_response(lambda r: "/api/widget/dismiss" in r.url):
        page.keyboard.press("Escape")
    assert page.locator("nps-widget").count() == 0
    with live.app.app_context():
        dismissed = db.session.scalars(select(WidgetDismissal.person_id)).all()
        person_id = db.session.scalar(select(Person.id).where(Person.external_id == "keys-2"))
        assert person_id in dismissed
    assert watched.violations() == [] and watched.errors == []


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("light", {"color_scheme": "light", "viewport": {"width": 1280, "height": 760}}),
        ("dark", {"color_scheme": "dark", "viewport": {"width": 1280, "height": 760}}),
        ("mobile", {"viewport": {"width": 390, "height": 760}, "is_mobile": True, "has_touch": True}),
        ("german", {"locale": "de-DE", "viewport": {"width": 1280, "height": 760}}),
    ],
)
def test_widget_looks_right_in_each_theme_and_size(
    live: Live, host: Host, browser: Any, name: str, options: dict[str, Any]
) -> None:
    """Light, dark, mobile and German: the card sits in the viewport; screenshots when asked for."""
    user_id = f"look-{name}"
    live.person(user_id, in_app_request=True)
    context = browser.new_context(**options)
    page = context.new_page()
    try:
        with page.expect_response(lambda r: "/api/widget/identify" in r.url):
            page.goto(host.page(f"look-{name}", signed(live, user_id), live.project["public_key"]))
        card = page.locator("nps-widget [role=dialog]")
        card.wait_for()
        page.evaluate("() => new Promise(r => setTimeout(r, 400))")  # let the entrance animation end
        box = card.bounding_box()
        width = options["viewport"]["width"]
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        assert box["y"] + box["height"] <= options["viewport"]["height"]
        background = card.evaluate("e => getComputedStyle(e).backgroundColor")
        if name == "mobile":
            assert box["width"] == width, "the card spans the phone's width"
        if name == "dark":
            assert background == "rgb(31, 41, 55)"
        if name == "light":
            assert background == "rgb(255, 255, 255)"
        if name == "german":
            assert page.locator("nps-widget .q").inner_text().startswith("Wie wahrscheinlich")
        shots = os.environ.get("WIDGET_SCREENSHOT_DIR")
        if shots:
            page.screenshot(path=str(Path(shots) / f"widget-{name}.png"))
            page.locator("nps-widget button[data-score='4']").click()
            page.locator("nps-widget textarea").fill("Setup took too long.")
            page.mouse.move(5, 5)
            page.evaluate("() => new Promise(r => setTimeout(r, 300))")
            page.screenshot(path=str(Path(shots) / f"widget-{name}-comment.png"))
    finally:
        context.close()


def test_widget_uses_brand_colour_and_position(live: Live, host: Host, watched: Watched) -> None:
    with live.app.app_context():
        other = create_project("Teal", "Teal CRM")
        other_id, other_public_key = other.project.id, other.project.public_key
        survey = db.session.scalar(select(Survey).where(Survey.project_id == other_id))
        assert survey is not None
        survey.brand_color = "#0f766e"
        db.session.commit()
        update_settings(other_id, {"position": "bottom-left"})
    user = {"id": "teal-1", "user_hash": keys.user_hash(other.identity_secret, "teal-1")}
    url = host.page("teal", user, other_public_key, commands='npsWidget("show", {force: true});')
    page = watched.page
    page.goto(url)
    card = page.locator("nps-widget [role=dialog]")
    card.wait_for()
    box = card.bounding_box()
    assert box is not None and box["x"] < 100, "bottom-left"
    page.locator("nps-widget button[data-score='10']").click()
    pressed = page.locator("nps-widget button[data-score='10']")
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('nps-widget').shadowRoot"
        ".querySelector('[data-score=\"10\"]')).backgroundColor === 'rgb(15, 118, 110)'"
    )
    assert pressed.evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
    assert watched.violations() == [] and watched.errors == []


def test_widget_theme_attribute_overrides_system_scheme(live: Live, host: Host, browser: Any) -> None:
    live.person("themed", in_app_request=True)
    context = browser.new_context(color_scheme="dark")
    page = context.new_page()
    try:
        url = host.page(
            "themed", signed(live, "themed"), live.project["public_key"], attrs='data-theme="light"'
        )
        page.goto(url)
        card = page.locator("nps-widget [role=dialog]")
        card.wait_for()
        assert card.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 255, 255)"
    finally:
        context.close()


def test_demo_page_snippet_box_shows_all_of_the_snippet(live: Live, browser: Any, tmp_path: Path) -> None:
    demo_file = Path(live.app.instance_path) / "demo_project.json"
    demo_file.write_text(json.dumps({k: live.project[k] for k in ("id", "public_key")}))
    try:
        for width, height in ((1280, 900), (390, 844)):
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{live.origin}/demo")
            pre = page.locator("main pre")
            page.screenshot(path=str(tmp_path / f"demo-{width}.png"), full_page=True)
            # Every line of the snippet is inside the box (wrapped), and the box inside the page.
            assert pre.evaluate("e => e.scrollWidth <= e.clientWidth"), width
            box = pre.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            assert live.project["public_key"] in pre.inner_text()
            page.close()
    finally:
        demo_file.unlink()
