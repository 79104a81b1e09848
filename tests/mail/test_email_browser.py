"""The landing page in a real headless Chromium (Playwright): one click counts, a burst counts nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from survey_service.extensions import db
from survey_service.models import Response, SurveyRequest
from survey_service.services import email_requests
from survey_service.services.people import upsert_person

pytestmark = pytest.mark.browser  # headless Chromium

TIMEOUT_MS = 30_000


def new_links(app: Flask, project_id: int) -> tuple[int, dict[str, str]]:
    with app.app_context():
        person, _ = upsert_person(project_id, {"email": "ann@example.com", "name": "Ann"})
        db.session.commit()
        request = email_requests.create_email_request(project_id, person.id)
        return request.id, email_requests.survey_links(request)["score_urls"]


def responses(app: Flask) -> list[tuple[int, int, str | None, int | None]]:
    with app.app_context():
        rows = db.session.scalars(select(Response).order_by(Response.id))
        return [(r.id, r.score, r.comment, r.request_id) for r in rows]


def test_browser_one_link_counts_that_score_then_change_and_comment_update_same_response(
    browser: Any, served: tuple[Flask, str], project: dict[str, Any]
) -> None:
    app, _ = served
    request_id, urls = new_links(app, project["id"])
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(urls["6"])
    assert page.get_attribute('button[data-score="6"]', "aria-pressed") == "true"
    page.wait_for_selector('body[data-auto-state="counted"]')
    counted = responses(app)
    assert [(score, req) for _, score, _, req in counted] == [(6, request_id)]

    page.click('button[data-score="9"]')
    assert page.get_attribute('button[data-score="9"]', "aria-pressed") == "true"
    assert page.get_attribute('button[data-score="6"]', "aria-pressed") == "false"
    assert page.text_content("#followup") == "What do you like most about us?"
    page.fill('textarea[name="comment"]', "Fast <b>support</b>")
    page.click("button.submit")
    page.wait_for_selector('body[data-submitted="true"]')
    assert page.is_visible("#thanks")
    assert responses(app) == [(counted[0][0], 9, "Fast <b>support</b>", request_id)]
    with app.app_context():
        request = db.session.get(SurveyRequest, request_id)
        assert request is not None and request.clicked_at and request.responded_at
        assert request.email_interacted_at is not None
    page.close()


def test_browser_opening_all_eleven_links_at_once_counts_nothing(
    browser: Any, served: tuple[Flask, str], project: dict[str, Any]
) -> None:
    app, _ = served
    _, urls = new_links(app, project["id"])
    context = browser.new_context()
    pages = [context.new_page() for _ in urls]
    for page, url in zip(pages, urls.values(), strict=True):
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url, wait_until="commit")
    for page in pages:
        # Every page's script runs its visible-for-a-moment post; each must be refused.
        page.wait_for_selector('body[data-auto-state^="ignored"], body[data-auto-state="counted"]')
    states = [page.get_attribute("body", "data-auto-state") for page in pages]
    assert responses(app) == []
    assert states.count("ignored-burst") >= 9, states
    context.close()


def test_browser_keyboard_only_person_can_answer(
    browser: Any, served: tuple[Flask, str], project: dict[str, Any]
) -> None:
    app, _ = served
    _, urls = new_links(app, project["id"])
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(urls["3"].split("?")[0])  # the plain landing URL: nothing chosen, nothing auto-counted
    assert page.get_attribute("body", "data-auto-state") == "off"
    page.focus('button[data-score="8"]')
    page.keyboard.press("Enter")
    page.wait_for_selector("#status:not(:empty)")  # a selector: the page's CSP forbids eval()
    assert [score for _, score, _, _ in responses(app)] == [8]
    page.close()


def test_browser_scale_keeps_one_row_of_eleven_at_every_width(
    browser: Any, served: tuple[Flask, str], project: dict[str, Any], tmp_path: Any
) -> None:
    app, _ = served
    _, urls = new_links(app, project["id"])
    for width, height in ((1280, 900), (390, 844)):
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(urls["3"].split("?")[0])
        page.screenshot(path=str(tmp_path / f"landing-{width}.png"), full_page=True)
        boxes = [b for b in (btn.bounding_box() for btn in page.locator("button[data-score]").all()) if b]
        assert len(boxes) == 11
        assert len({round(b["y"]) for b in boxes}) == 1, (width, boxes)  # one row, 0 to 10
        assert all(b["width"] >= 28 and b["height"] >= 28 for b in boxes), (width, boxes)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.close()


def test_browser_hint_after_a_burst_sits_above_the_scores_it_points_to(
    browser: Any, served: tuple[Flask, str], project: dict[str, Any], tmp_path: Any
) -> None:
    app, _ = served
    _, urls = new_links(app, project["id"])
    context = browser.new_context()
    pages = [context.new_page() for _ in urls]
    for page, url in zip(pages, urls.values(), strict=True):
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url, wait_until="commit")
    for page in pages:
        page.wait_for_selector('body[data-auto-state^="ignored"], body[data-auto-state="counted"]')
    page = next(p for p in pages if p.get_attribute("body", "data-auto-state") == "ignored-burst")
    page.wait_for_selector("#hint:not(:empty)")
    assert "press your score" in page.inner_text("#hint")
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(tmp_path / f"hint-{width}.png"), full_page=True)
        hint, scores, send = (page.locator(s).bounding_box() for s in ("#hint", "fieldset.scores", "#send"))
        assert hint and scores and send
        # It says "press your score or the button below": both must be below it.
        assert hint["y"] + hint["height"] <= scores["y"] <= send["y"], (width, hint, scores)
    context.close()
