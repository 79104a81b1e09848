"""The promoter loop on the landing page in a real headless Chromium: the review step after a promoter's
answer, only with their consent, never for a detractor; one click recorded; a forged link refused."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.support.promoters import G2, TRUSTPILOT, enable_loop, review_stamps, score_urls

pytestmark = pytest.mark.browser  # headless Chromium

TIMEOUT_MS = 30_000


def answer(page: Any, url: str, score: int) -> None:
    """Open the plain landing page (nothing auto-counted), press a score, write a comment, send."""
    page.goto(url.split("?")[0])
    page.click(f'button[data-score="{score}"]')
    page.fill('textarea[name="comment"]', "Lovely product")
    page.click("button#send")
    page.wait_for_selector('body[data-submitted="true"]')


def test_browser_promoter_who_consents_sees_review_links_and_one_click_is_recorded(
    browser: Any, served: tuple[Flask, str], project: dict[str, Any]
) -> None:
    app, _ = served
    enable_loop(app, project["id"], G2, TRUSTPILOT)
    request_id, urls = score_urls(app, project["id"], "pat@example.com")
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    answer(page, urls["10"], 10)
    assert page.is_visible("#thanks")
    review = page.locator("#review")
    review.wait_for()
    assert page.text_content("#review-consent") == "Happy to leave a review"
    # No review link exists in the page before the person agrees.
    assert page.locator("#review-list a").count() == 0 and G2["url"] not in page.content()
    assert review_stamps(app, request_id)["consented"] is None

    page.click("#review-consent")
    page.locator("#review-list a").first.wait_for()
    assert page.locator("#review-list a").all_inner_texts() == ["G2", "Trustpilot"]
    assert page.is_hidden("#review-form")
    stamps = review_stamps(app, request_id)
    assert stamps["asked"] is not None and stamps["consented"] is not None and stamps["clicked"] is None

    clicks = []
    for _ in range(2):  # the second click is a replay: it leads on again, and is not counted again
        with (
            context.expect_event("response", lambda r: "/review/go/" in r.url) as redirect,
            context.expect_page() as popup,
        ):
            page.click("#review-list a >> text=G2")
        assert (redirect.value.status, redirect.value.headers.get("location")) == (303, G2["url"])
        popup.value.close()  # the review site itself is not reached from the test
        clicks.append(review_stamps(app, request_id)["clicked"])
    assert clicks[0] is not None and clicks[1] == clicks[0]
    context.close()


@pytest.mark.parametrize("score", [3, 8])
def test_browser_detractor_or_passive_never_sees_the_review_step(
    browser: Any, served: tuple[Flask, str], project: dict[str, Any], score: int
) -> None:
    app, _ = served
    enable_loop(app, project["id"])
    request_id, urls = score_urls(app, project["id"], "dee@example.com")
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    answer(page, urls[str(score)], score)
    assert page.is_visible("#thanks")
    assert page.is_hidden("#review") and page.text_content("#review-consent") == ""
    assert "/review/" not in page.content()
    assert review_stamps(app, request_id) == {"asked": None, "consented": None, "clicked": None}
    page.close()


def test_browser_forged_review_redirect_is_refused_with_a_friendly_page(
    browser: Any, served: tuple[Flask, str], project: dict[str, Any]
) -> None:
    app, base = served
    enable_loop(app, project["id"])
    request_id, urls = score_urls(app, project["id"], "pat@example.com")
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    answer(page, urls["9"], 9)
    page.click("#review-consent")
    link = page.locator("#review-list a").first
    link.wait_for()
    href = link.get_attribute("href")
    assert href is not None and href.startswith(f"{base}/review/go/")
    token = href.rsplit("/", 1)[1]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad in (forged, "eyJhbGciOiJub25lIn0", token + "x"):
        res = page.goto(f"{base}/review/go/{bad}")
        assert res is not None and res.status == 404 and res.url == f"{base}/review/go/{bad}"
        assert page.text_content("h1") == "This review link is no longer available"
    assert review_stamps(app, request_id)["clicked"] is None
    page.close()
