"""The sign-in page and the dashboard in headless Chromium: axe-core finds nothing serious at 1280 and 390 px,
one h1 a page, and the trend's text stays legible (>= 11 px) on a phone."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from survey_service.extensions import db
from survey_service.models import Project
from survey_service.services.users import create_user
from survey_service.sources.service import create_source
from tests.support.axe import check_page, reporter
from tests.support.dashboard_data import seed_responses

pytestmark = pytest.mark.browser  # headless Chromium

PASSWORD = "correct horse battery"

# Each visible text of the shown trend chart: its font size in CSS pixels as drawn (SVG units x the scale).
CHART_TEXT_PX = """() => [...document.querySelectorAll('svg.trend')]
  .filter(svg => svg.getBoundingClientRect().width > 0)
  .flatMap(svg => {
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    return [...svg.querySelectorAll('text')].map(t => parseFloat(getComputedStyle(t).fontSize) * scale);
  })"""


def h1_count(page: Any) -> int:
    count: int = page.evaluate(
        "() => [...document.querySelectorAll('h1')].filter(h => !h.closest('[hidden]')).length"
    )
    return count


def test_axe_index_login_and_dashboard_empty_with_data_and_users_no_serious_or_critical_violations(
    app: Flask, project: dict[str, Any], live_server: str, browser: Any, pytestconfig: pytest.Config
) -> None:
    report = reporter(pytestconfig)
    with app.app_context():
        create_user(project["id"], "admin@acme.test", PASSWORD, "admin")
    found: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server}/")  # the front door too (/docs/api: a minute of axe for a long page, left out)
    found += check_page(page, "index", report)
    assert h1_count(page) == 1
    page.goto(f"{live_server}/login")
    found += check_page(page, "login", report)
    assert h1_count(page) == 1
    page.fill("input[name=email]", "admin@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    page.wait_for_selector("[data-testid=getting-started]")
    found += check_page(page, "dashboard, empty", report)
    assert h1_count(page) == 1

    with app.app_context():
        seed_responses(project["id"], 120, seed=3)
    page.reload()
    page.click(".trend-table summary")  # the chart's table, open
    found += check_page(page, "dashboard, with data and its table", report)
    assert h1_count(page) == 1
    assert page.locator(".trend-table tbody tr").count() >= 6
    sizes = page.evaluate(CHART_TEXT_PX)  # check_page leaves the page at 390 px
    assert page.viewport_size["width"] == 390 and sizes and min(sizes) >= 11, sizes

    page.goto(f"{live_server}/dashboard/users")
    found += check_page(page, "dashboard users", report)
    assert h1_count(page) == 1

    with app.app_context():  # one source with a refused delivery in its log
        project_row = db.session.get(Project, project["id"])
        assert project_row is not None
        token = create_source(project_row, {"kind": "segment", "name": "web"}).source.token
    page.request.post(f"{live_server}/sources/{token}", data="{}")
    page.goto(f"{live_server}/dashboard/sources")
    assert page.locator("ul.failures li").count() == 1
    found += check_page(page, "dashboard sources", report)
    assert h1_count(page) == 1
    page.goto(f"{live_server}/dashboard/themes")  # the built-in themes, each row with its forms
    assert page.locator("tr[data-theme-id]").count() >= 2
    found += check_page(page, "dashboard themes", report)
    assert h1_count(page) == 1
    page.close()
    assert found == [], "\n".join(found)
