"""The widget in headless Chromium for people who use a keyboard, a screen reader or a phone: axe-core on each
state and theme at 1280 and 390 px, focus in and back out on every way it closes, the score scale as a radio
group, a focus ring that shows in every theme, and a host control never left hidden under the card."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from survey_service.core import keys
from survey_service.core.contrast import contrast_ratio
from survey_service.extensions import db
from survey_service.models import Survey
from tests.support.axe import check_page, reporter
from tests.support.servers import host_pages, live_server

pytestmark = pytest.mark.browser  # headless Chromium

TIMEOUT_MS = 30_000

# The widget's shadow root, seen from the host page (open by contract).
ACTIVE = """() => {
  const host = document.activeElement, root = document.querySelector('nps-widget')?.shadowRoot;
  const inner = host && host.tagName === 'NPS-WIDGET' ? root.activeElement : null;
  return inner ? 'widget:' + (inner.dataset.score ?? inner.className ?? inner.tagName)
               : 'host:' + (host.id || host.tagName);
}"""
RING = """() => {
  const root = document.querySelector('nps-widget').shadowRoot, el = root.activeElement;
  const card = root.querySelector('[role=dialog]'), style = getComputedStyle(el);
  return [style.outlineStyle, style.outlineColor, getComputedStyle(card).backgroundColor];
}"""


def host_page(service: str, key: str, user: dict[str, Any], *, at_load: str = "", attrs: str = "") -> str:
    """A host app's page: a link, an "Ask me" button that opens the survey, a field at the bottom."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1"><title>Host app</title></head>'
        "<body><main><h1>Host app</h1><p><a id=first href=#top>Projects</a></p>"
        "<p><button id=ask type=button>Give feedback</button></p>"
        "<p><label>Search <input id=bottom type=search"
        ' style="position:fixed;bottom:60px;left:8px;margin:0"></label></p>'
        "</main><script>"
        "window.npsWidget = window.npsWidget ||"
        " function () { (npsWidget.q = npsWidget.q || []).push(arguments) };"
        f"npsWidget('identify', {json.dumps(user)});{at_load}"
        "document.getElementById('ask').onclick = () => npsWidget('show', {force: true});"
        f'</script><script async src="{service}/widget.js" data-key="{key}" {attrs}></script></body></html>'
    )


@contextmanager
def served_widget(app: Flask, project: dict[str, Any]) -> Iterator[Service]:
    """The service over HTTP and a host app's page server on another origin."""
    app.config["WIDGET_RATE_LIMIT"] = "10000 per minute"
    pages: dict[str, str] = {}
    with live_server(app) as base, host_pages(pages) as host:
        yield Service(base, host, project, pages)


@dataclass
class Service:
    base: str
    host: str
    project: dict[str, Any]
    pages: dict[str, str]


def open_host(browser: Any, service: Service, user_id: str, *, at_load: str = "", **options: Any) -> Any:
    """A new context on a host page of its own, the widget's script loaded."""
    project = service.project
    user = {"id": user_id, "user_hash": keys.user_hash(project["identity_secret"], user_id)}
    attrs = options.pop("attrs", "")
    service.pages[f"/{user_id}"] = host_page(
        service.base, project["public_key"], user, at_load=at_load, attrs=attrs
    )
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{service.host}/{user_id}")
    page.wait_for_function("() => typeof window.npsWidget === 'function' && !window.npsWidget.q")
    return page


def brand_colour(app: Flask, project_id: int, colour: str) -> None:
    with app.app_context():
        survey = db.session.scalar(select(Survey).where(Survey.project_id == project_id))
        assert survey is not None
        survey.brand_color = colour
        db.session.commit()


def opened(page: Any) -> Any:
    card = page.locator("nps-widget [role=dialog]")
    card.wait_for()
    return card


def test_axe_widget_light_and_dark_open_comment_and_thanks_no_serious_or_critical_violations(
    browser: Any, app: Flask, project: dict[str, Any], pytestconfig: pytest.Config
) -> None:
    with served_widget(app, project) as service:
        report = reporter(pytestconfig)
        found: list[str] = []
        # Dark with a mid-tone brand colour: white on it would be 3.3:1, so its pressed score must use black.
        for theme, brand in (("light", "#4f46e5"), ("dark", "#16a34a")):
            brand_colour(app, project["id"], brand)
            page = open_host(
                browser,
                service,
                f"axe-{theme}",
                at_load="npsWidget('show', {force: true});",
                attrs=f'data-theme="{theme}"',
                viewport={"width": 1280, "height": 900},
            )
            opened(page)
            found += check_page(page, f"widget {theme} {brand}, open", report)
            page.locator("nps-widget button[data-score='4']").click()
            page.locator("nps-widget textarea").wait_for()
            found += check_page(page, f"widget {theme} {brand}, comment", report)
            page.locator("nps-widget textarea").fill("Setup took too long.")
            page.locator("nps-widget button[type=submit]").click()
            page.locator("nps-widget .t").wait_for()
            found += check_page(page, f"widget {theme} {brand}, thank-you", report)
            page.context.close()
        assert found == [], "\n".join(found)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_widget_focus_ring_contrast_is_at_least_3_to_1_in_each_theme(
    browser: Any, app: Flask, project: dict[str, Any], theme: str
) -> None:
    with served_widget(app, project) as service:
        page = open_host(
            browser,
            service,
            f"ring-{theme}",
            at_load="npsWidget('show', {force: true});",
            attrs=f'data-theme="{theme}"',
        )
        opened(page)
        page.focus("#bottom")
        for stop in ("x", "score"):
            page.keyboard.press("Tab")  # keyboard focus: the ring shows
            style, ring, card = page.evaluate(RING)
            assert style == "solid", stop
            assert contrast_ratio(_hex(ring), _hex(card)) >= 3, (theme, stop, ring, card)
        page.context.close()


def _hex(css: str) -> str:
    """rgb(r, g, b) as #rrggbb."""
    r, g, b = (int(part) for part in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def test_widget_keyboard_opened_on_its_own_reach_choose_comment_submit_and_focus_returns(
    browser: Any, app: Flask, project: dict[str, Any]
) -> None:
    with served_widget(app, project) as service:
        page = open_host(browser, service, "kb-self", at_load="npsWidget('show', {force: true});")
        page.clock.install()
        opened(page)
        assert page.evaluate(ACTIVE) == "host:BODY"  # opened on its own: it does not take the focus
        page.keyboard.press("Tab")
        assert page.evaluate(ACTIVE) == "host:first"
        page.keyboard.press("Alt+Shift+N")  # the announced shortcut reaches it
        assert page.evaluate(ACTIVE) == "widget:0"
        for key, where in [
            ("End", "10"),
            ("Home", "0"),
            ("ArrowLeft", "10"),
            ("ArrowDown", "0"),
            ("ArrowUp", "10"),
        ]:
            page.keyboard.press(key)
            assert page.evaluate(ACTIVE) == f"widget:{where}", key
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Space")  # choose 9
        assert page.locator("nps-widget button[data-score='9']").get_attribute("aria-pressed") == "true"
        assert page.evaluate(ACTIVE) == "widget:"  # the comment's textarea (no class)
        page.keyboard.type("Quick answers")
        page.keyboard.press("Tab")
        assert page.evaluate(ACTIVE) == "widget:go"
        page.keyboard.press("Enter")
        page.locator("nps-widget .t").wait_for()
        assert page.evaluate(ACTIVE) == "widget:x"
        page.clock.fast_forward(60_000)  # long past the thank-you card's 8 s: focus is inside, it stays
        assert page.locator("nps-widget").count() == 1
        page.keyboard.press("Escape")
        assert page.locator("nps-widget").count() == 0
        assert page.evaluate(ACTIVE) == "host:first"  # back where it was before the shortcut
        page.context.close()


def test_widget_keyboard_opened_by_the_user_takes_focus_and_every_close_returns_it(
    browser: Any, app: Flask, project: dict[str, Any]
) -> None:
    with served_widget(app, project) as service:
        page = open_host(browser, service, "kb-asked")
        page.clock.install()
        page.focus("#ask")
        for close in ("Escape", "x", "hide", "thanks"):
            page.keyboard.press("Enter")  # the user's own action: focus moves in
            opened(page)
            assert page.evaluate(ACTIVE) == "widget:0", close
            if close == "Escape":
                page.keyboard.press("Escape")
            elif close == "x":
                page.keyboard.press("Shift+Tab")
                assert page.evaluate(ACTIVE) == "widget:x"
                page.keyboard.press("Enter")
            elif close == "hide":
                page.evaluate("() => npsWidget('hide')")
            else:  # answered, then focus leaves: the thank-you card closes itself, focus stays put
                page.keyboard.press("Enter")
                page.keyboard.press("Tab")
                page.keyboard.press("Enter")
                page.locator("nps-widget .t").wait_for()
                page.focus("#first")
                page.clock.fast_forward(9_000)
                page.locator("nps-widget").wait_for(state="detached")
                assert page.evaluate(ACTIVE) == "host:first"
                break
            page.locator("nps-widget").wait_for(state="detached")
            assert page.evaluate(ACTIVE) == "host:ask", close
        page.context.close()


def test_widget_small_screen_host_control_focused_under_the_sheet_stays_visible(
    browser: Any, app: Flask, project: dict[str, Any]
) -> None:
    with served_widget(app, project) as service:
        page = open_host(
            browser,
            service,
            "phone",
            at_load="npsWidget('show', {force: true});",
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
        )
        card = opened(page)
        field = page.locator("#bottom")
        under = (
            "e => { const r = e.getBoundingClientRect(); return document.elementFromPoint(r.x, r.y) === e; }"
        )
        assert not field.evaluate(under)  # the sheet covers it
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        assert page.evaluate(ACTIVE) == "host:bottom"
        page.wait_for_function("() => document.querySelector('nps-widget').shadowRoot.querySelector('.up')")
        assert field.evaluate(under)  # visible: the sheet moved to the top
        # Measured once the card's slide-in (0.25 s) has ended: mid-animation it sits a few px lower.
        card.evaluate("e => Promise.all(e.getAnimations({subtree: true}).map(a => a.finished))")
        box = card.bounding_box()
        assert box is not None and box["y"] == 0
        page.context.close()
