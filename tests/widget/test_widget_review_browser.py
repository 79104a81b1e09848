"""The promoter loop in the widget's thank-you card, in a real headless Chromium on a host page of another
origin: the review step only for a promoter, links only after they agree, one click recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from survey_service.core import keys
from survey_service.extensions import db
from survey_service.models import Person, Response
from tests.support.promoters import G2, TRUSTPILOT, enable_loop
from tests.support.servers import host_pages

pytestmark = pytest.mark.browser  # headless Chromium

TIMEOUT_MS = 30_000
PAGES: dict[str, str] = {}


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    """A host app on another origin (another port), as a customer's product would be; yields its origin."""
    with host_pages(PAGES) as origin:
        yield origin


def host_page(host: str, live_server: str, project: dict[str, Any], user_id: str) -> str:
    """A host app page that embeds the widget for a signed-in user and asks it to show now."""
    user = {"id": user_id, "user_hash": keys.user_hash(project["identity_secret"], user_id)}
    PAGES[f"/{user_id}.html"] = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Host</title></head><body>"
        "<h1>Host app</h1><script>"
        "window.npsWidget = window.npsWidget"
        " || function () { (npsWidget.q = npsWidget.q || []).push(arguments) };"
        f'npsWidget("identify", {json.dumps(user)}); npsWidget("show", {{force: true}});'
        f'</script><script async src="{live_server}/widget.js" data-key="{project["public_key"]}"></script>'
        "</body></html>"
    )
    return f"{host}/{user_id}.html"


def answer(page: Any, score: int) -> None:
    page.locator(f"nps-widget button[data-score='{score}']").click()
    page.locator("nps-widget textarea[name=comment]").fill("Thanks!")
    page.locator("nps-widget button[type=submit]").click()
    page.locator("nps-widget .t").wait_for()


def stamps(app: Flask, external_id: str) -> tuple[Any, Any, Any]:
    with app.app_context():
        response = (
            db.session.query(Response)
            .join(Person, Person.id == Response.person_id)
            .filter(Person.external_id == external_id)
            .one()
        )
        return response.review_asked_at, response.review_consented_at, response.review_link_clicked_at


def test_widget_promoter_consents_then_follows_a_review_link_recorded_once(
    browser: Any, app: Flask, live_server: str, project: dict[str, Any], host: str
) -> None:
    enable_loop(app, project["id"], G2, TRUSTPILOT)
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(host_page(host, live_server, project, "w-promoter"))
    answer(page, 10)
    consent = page.locator("nps-widget button.go", has_text="Happy to leave a review")
    consent.wait_for()
    assert page.locator("nps-widget a").count() == 0  # no link before the person agrees
    assert stamps(app, "w-promoter")[1] is None
    consent.click()
    page.locator("nps-widget a.go").first.wait_for()
    assert page.locator("nps-widget a.go").all_inner_texts() == ["G2", "Trustpilot"]
    link = page.locator("nps-widget a.go", has_text="G2")
    assert (link.get_attribute("href") or "").startswith(f"{live_server}/review/go/")
    assert link.evaluate("a => a.getRootNode().activeElement === a")  # focus moves to the first link
    asked, consented, clicked = stamps(app, "w-promoter")
    assert asked is not None and consented is not None and clicked is None

    clicks = []
    for _ in range(2):
        with (
            context.expect_event("response", lambda r: "/review/go/" in r.url) as redirect,
            context.expect_page() as popup,
        ):
            link.click()
        assert (redirect.value.status, redirect.value.headers.get("location")) == (303, G2["url"])
        popup.value.close()
        clicks.append(stamps(app, "w-promoter")[2])
    assert clicks[0] is not None and clicks[1] == clicks[0]
    assert errors == []
    context.close()


def test_widget_detractor_never_sees_the_review_step(
    browser: Any, app: Flask, live_server: str, project: dict[str, Any], host: str
) -> None:
    enable_loop(app, project["id"], G2)
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    with context.expect_event(
        "response", lambda r: "/api/widget/answer" in r.url and "comment" in (r.request.post_data or "")
    ) as answered:
        page.goto(host_page(host, live_server, project, "w-detractor"))
        answer(page, 4)
    assert "review" not in answered.value.json()
    assert page.locator("nps-widget button.go").count() == 0 and page.locator("nps-widget a").count() == 0
    assert stamps(app, "w-detractor") == (None, None, None)
    context.close()
