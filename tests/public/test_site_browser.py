"""`/` and /docs/api in real headless Chromium at desktop and phone widths: styled, in the page, CSP-clean."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser  # headless Chromium

WIDTHS = ((1280, 900), (390, 844))
REPORT_VIOLATIONS = (
    "document.addEventListener('securitypolicyviolation', e =>"
    " (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI));"
)


def load(browser: Any, url: str, width: int, height: int) -> tuple[Any, Any, list[str]]:
    """Open url at this viewport; returns the context, the page and the console's errors and warnings."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.add_init_script(REPORT_VIOLATIONS)
    console: list[str] = []

    def heard(msg: Any) -> None:
        if msg.type in ("error", "warning"):
            console.append(f"{msg.type}: {msg.text}")

    page.on("console", heard)
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    res = page.goto(url)
    assert res is not None and res.status == 200, url
    page.wait_for_load_state("load")
    return context, page, console


def assert_clean_and_in_view(page: Any, console: list[str], width: int) -> None:
    assert page.evaluate("window.__csp || []") == []
    assert console == []
    # The stylesheets applied (same origin, under the CSP): the top bar is the dashboard's dark one.
    assert page.eval_on_selector(".topbar", "e => getComputedStyle(e).backgroundColor") == "rgb(17, 24, 39)"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    wider = page.evaluate(
        f"""[...document.querySelectorAll('main *')]
            .filter(e => e.getBoundingClientRect().right > {width} + 0.5)
            .filter(e => !e.closest('details:not([open])'))
            .map(e => e.tagName + '.' + e.className).slice(0, 5)"""
    )
    assert wider == []


def test_index_page_at_desktop_and_phone_width(live_server: str, browser: Any) -> None:
    for width, height in WIDTHS:
        context, page, console = load(browser, f"{live_server}/", width, height)
        assert_clean_and_in_view(page, console, width)
        assert page.locator("h1").inner_text().startswith("Net Promoter Score")
        assert page.locator("a[href='/docs/api']").count() >= 2
        page.screenshot(path=f"/tmp/site-index-{width}.png", full_page=True)
        page.click(".hero a[href='/docs/api']")
        page.wait_for_url("**/docs/api")
        assert page.locator("article.op").count() > 20
        context.close()


def test_api_reference_at_desktop_and_phone_width(live_server: str, browser: Any) -> None:
    for width, height in WIDTHS:
        context, page, console = load(browser, f"{live_server}/docs/api", width, height)
        assert_clean_and_in_view(page, console, width)
        page.screenshot(path=f"/tmp/site-reference-{width}.png")
        # A schema link jumps to that schema's entry.
        record = page.locator("#op-post-api-v1-responses")
        record.scroll_into_view_if_needed()
        record.locator("a[href='#schema-responsein']").first.click()
        page.wait_for_url("**#schema-responsein")
        assert page.locator("#schema-responsein").is_visible()
        assert "score" in page.locator("#schema-responsein").inner_text()
        # A response's fields open without script (<details>), and stay inside the page.
        listing = page.locator("#op-get-api-v1-responses")
        listing.scroll_into_view_if_needed()
        listing.locator("details summary").first.click()
        assert listing.locator("details[open] code.name", has_text="next_cursor").is_visible()
        listing.screenshot(path=f"/tmp/site-reference-op-{width}.png")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert_clean_and_in_view(page, console, width)
        context.close()
