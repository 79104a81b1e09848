"""Landing and unsubscribe pages in headless Chromium: axe finds nothing serious; the keyboard alone works."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from survey_service.extensions import db
from survey_service.models import Response
from survey_service.services import email_requests
from survey_service.services.people import upsert_person
from tests.support.axe import check_page, reporter

pytestmark = pytest.mark.browser  # headless Chromium

TIMEOUT_MS = 30_000


def links(app: Flask, project_id: int) -> dict[str, Any]:
    with app.app_context():
        person, _ = upsert_person(project_id, {"email": "ann@example.com", "name": "Ann"})
        db.session.commit()
        return email_requests.survey_links(email_requests.create_email_request(project_id, person.id))


def focused(page: Any) -> dict[str, Any]:
    """What has the keyboard focus: its tag, id, score, and how many scores are tab stops."""
    found: dict[str, Any] = page.evaluate(
        """() => ({tag: document.activeElement.tagName, id: document.activeElement.id,
                   score: document.activeElement.dataset.score,
                   stops: [...document.querySelectorAll('button[data-score]')]
                          .filter(b => b.tabIndex === 0).length})"""
    )
    return found


def test_axe_landing_and_unsubscribe_every_state_no_serious_or_critical_violations(
    browser: Any, served: tuple[Flask, str], project: dict[str, Any], pytestconfig: pytest.Config
) -> None:
    app, _ = served
    report = reporter(pytestconfig)
    found: list[str] = []
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()

    page.goto(links(app, project["id"])["score_urls"]["3"].split("?")[0])
    found += check_page(page, "landing, no score", report)

    sent = links(app, project["id"])
    page.goto(sent["score_urls"]["9"])
    page.wait_for_selector('body[data-auto-state="counted"]')
    found += check_page(page, "landing, with a score", report)
    page.fill('textarea[name="comment"]', "Fast support")
    page.click("button.submit")
    page.wait_for_selector('body[data-submitted="true"]')
    found += check_page(page, "landing, after a save", report)

    page.goto(sent["unsubscribe_url"])
    found += check_page(page, "unsubscribe, confirm", report)
    page.click("button.submit")
    page.wait_for_load_state()
    found += check_page(page, "unsubscribe, done", report)

    burst = [context.new_page() for _ in range(11)]
    for tab, url in zip(burst, links(app, project["id"])["score_urls"].values(), strict=True):
        tab.goto(url, wait_until="commit")
    for tab in burst:
        tab.wait_for_selector('body[data-auto-state^="ignored"], body[data-auto-state="counted"]')
    ignored = next(t for t in burst if t.get_attribute("body", "data-auto-state") == "ignored-burst")
    ignored.wait_for_selector("#hint:not(:empty)")
    found += check_page(ignored, "landing, after a scanner burst", report)
    context.close()
    assert found == [], "\n".join(found)


def test_landing_keyboard_only_reach_move_choose_comment_submit_and_focus_lands_on_thanks(
    browser: Any, served: tuple[Flask, str], project: dict[str, Any]
) -> None:
    app, _ = served
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(links(app, project["id"])["score_urls"]["3"].split("?")[0])
    page.keyboard.press("Tab")  # the first stop of the page: the scale, at its first score
    assert focused(page) == {"tag": "BUTTON", "id": "", "score": "0", "stops": 1}
    moves = [("End", "10"), ("Home", "0"), ("ArrowLeft", "10"), ("ArrowLeft", "9"), ("ArrowUp", "8")]
    moves += [("ArrowRight", "9"), ("ArrowDown", "10"), ("ArrowRight", "0"), ("End", "10")]
    moves += [("ArrowLeft", "9")]
    for key, score in moves:
        page.keyboard.press(key)
        assert focused(page)["score"] == score, key
        assert focused(page)["stops"] == 1  # the scale stays one tab stop, at the focused score
    assert page.get_attribute('button[data-score="9"]', "aria-pressed") == "false"  # moving never chooses
    page.keyboard.press("Space")
    assert page.get_attribute('button[data-score="9"]', "aria-pressed") == "true"
    page.wait_for_selector("#status:not(:empty)")
    page.keyboard.press("Tab")  # past the rest of the scale, straight to the comment
    assert focused(page)["id"] == "comment"
    page.keyboard.type("Quick answers")
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "send"
    page.keyboard.press("Enter")
    page.wait_for_selector('body[data-submitted="true"]')
    assert focused(page)["id"] == "thanks"  # focus lands on the thank-you heading's section
    with app.app_context():
        rows = [(r.score, r.comment) for r in db.session.scalars(select(Response))]
    assert rows == [(9, "Quick answers")]
    page.close()
