"""The dashboard's Follow-through section in headless Chromium: each step's figures as counted by hand,
the reminded-vs-first-ask sentence, and axe-core finding nothing serious at 1280 and 390 px."""

from __future__ import annotations

import math
from typing import Any

import pytest
from flask import Flask

from survey_service.services.users import create_user
from tests.support.axe import check_page, reporter
from tests.support.follow_through import CASE, seed_asks

pytestmark = pytest.mark.browser  # headless Chromium

PASSWORD = "correct horse battery"
Z = 1.96


def percent(value: float) -> str:
    """The page's rounding: whole percents from 10 up, one decimal below."""
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"


def wilson_text(x: int, n: int) -> str:
    p = x / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    low, high = round(max(centre - half, 0) * 100, 1), round(min(centre + half, 1) * 100, 1)
    return f"{percent(low)}–{percent(high)}"


def adjusted(promoters: int, passives: int, detractors: int) -> tuple[float, float]:
    """The adjusted-Wald NPS (3/4, 3/2, 3/4 pseudo-answers) and its variance, as fractions."""
    n = promoters + passives + detractors + 3
    p, d = (promoters + 0.75) / n, (detractors + 0.75) / n
    return p - d, (p + d - (p - d) ** 2) / n


def margin(counts: tuple[int, int, int]) -> str:
    return f"{round(Z * math.sqrt(adjusted(*counts)[1]) * 100, 1):.0f}"


def test_follow_through_section_figures_sentence_and_axe(
    app: Flask,
    project: dict[str, Any],
    live_server: str,
    browser: Any,
    tmp_path: Any,
    pytestconfig: pytest.Config,
) -> None:
    with app.app_context():
        seed_asks(project["id"], CASE)
        create_user(project["id"], "cs@acme.test", PASSWORD, "viewer")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", "cs@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    page.goto(f"{live_server}/dashboard?range=all")
    section = page.locator("[data-testid=follow-through]")
    section.wait_for()
    rows = section.locator("tbody tr")
    # CASE by hand: (label, reached, answered, answered so far after the step) — the empty rows left out.
    expected = [
        ("First ask", 11, 4, 4),
        ("Reminder 1 (email)", 6, 2, 6),
        ("Reminder 2 (email)", 2, 1, 8),
        ("Reminder 2 (in-app)", 2, 1, 8),
    ]
    assert rows.count() == len(expected)
    for i, (label, reached, answered, so_far) in enumerate(expected):
        row = rows.nth(i)
        assert row.locator("th").inner_text() == label
        assert int(row.locator("[data-testid=ft-reached]").inner_text()) == reached
        assert int(row.locator("[data-testid=ft-answered]").inner_text()) == answered
        assert row.locator("[data-testid=ft-rate]").inner_text() == percent(
            round(answered / reached * 100, 1)
        )
        assert row.locator("[data-testid=ft-interval]").inner_text() == wilson_text(answered, reached)
        assert row.locator("[data-testid=ft-cumulative]").inner_text() == percent(round(so_far / 11 * 100, 1))
    assert section.locator("[data-testid=ft-total]").inner_text() == percent(round(8 / 11 * 100, 1))
    # First ask 10, 9, 7, 3 (+25); reminded 6, 2, 9, 8 (-25); four a side: no meaningful difference.
    reminded, first = (1, 1, 2), (2, 1, 1)
    (a, va), (b, vb) = adjusted(*reminded), adjusted(*first)
    p_value = math.erfc(abs(a - b) / math.sqrt(va + vb) / math.sqrt(2))
    assert section.locator("[data-testid=reminded-comparison]").inner_text() == (
        f"Reminded answers: NPS -25 (n=4, ±{margin(reminded)}) vs first ask +25 (n=4, ±{margin(first)}):"
        f" not a meaningful difference (p = {p_value:.2f})."
    )

    found = check_page(page, "dashboard follow-through", reporter(pytestconfig))
    page.set_viewport_size({"width": 1280, "height": 900})
    section.screenshot(path=str(tmp_path / "follow-through-1280.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    section.screenshot(path=str(tmp_path / "follow-through-390.png"))
    # On a phone the table fits its card or scrolls inside it, never the page sideways.
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    page.close()
    assert found == [], "\n".join(found)


def test_follow_through_section_absent_without_email_asks(
    app: Flask, project: dict[str, Any], live_server: str, browser: Any
) -> None:
    with app.app_context():
        create_user(project["id"], "cs@acme.test", PASSWORD, "viewer")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", "cs@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    page.wait_for_selector("[data-testid=getting-started]")
    assert page.locator("[data-testid=follow-through]").count() == 0
    page.close()
