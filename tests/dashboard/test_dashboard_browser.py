"""The dashboard in real headless Chromium: sign in, see the trend and comments, download an export."""

from __future__ import annotations

import csv
from typing import Any

import pytest
from flask import Flask

from survey_service.extensions import db
from survey_service.models import Response
from survey_service.services.people import upsert_person
from survey_service.services.projects import default_survey
from survey_service.services.users import create_user
from tests.support.dashboard_data import seed_origins, seed_responses

pytestmark = pytest.mark.browser  # headless Chromium


def test_dashboard_browser_sign_in_trend_comments_and_export(
    app: Flask, project: dict[str, Any], live_server: str, browser: Any, tmp_path: Any
) -> None:
    with app.app_context():
        seed_responses(project["id"], 120, seed=3)
        create_user(project["id"], "cs@acme.test", "correct horse battery", "viewer")
    page = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server}/dashboard")
    assert page.url.endswith("/login")
    page.fill("input[name=email]", "cs@acme.test")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    nps_text = page.inner_text("[data-testid=nps]")
    assert nps_text == "0" or nps_text[0] in "+-"
    assert page.locator("svg.trend polyline.line").count() >= 1
    assert page.locator("svg.trend circle.dot").count() >= 6
    assert page.locator("#comments li.comment").count() >= 5
    assert page.locator("#segments tbody tr").count() == 3
    page.select_option("select[name=category]", "detractor")
    page.click("#comments button[type=submit]")
    page.wait_for_load_state()
    scores = [int(s) for s in page.locator("#comments .score").all_inner_texts()]
    assert scores and all(s <= 6 for s in scores)
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    with page.expect_download() as info:
        page.click("a.button[href*='responses.csv']")
    path = info.value.path()
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert info.value.suggested_filename.startswith("responses-")
    assert len(rows) == 120 and {"email", "score", "plan", "region"} <= set(rows[0])
    page.close()


def test_dashboard_browser_origin_filters_update_the_page_and_export(
    app: Flask, project: dict[str, Any], live_server: str, browser: Any, tmp_path: Any
) -> None:
    with app.app_context():
        ids = seed_origins(project["id"])
        create_user(project["id"], "cs@acme.test", "correct horse battery", "viewer")
    for width, height in ((1280, 900), (390, 844)):
        page = browser.new_page(accept_downloads=True, viewport={"width": width, "height": height})
        page.goto(f"{live_server}/login")
        page.fill("input[name=email]", "cs@acme.test")
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard")
        assert page.inner_text("[data-testid=nps]") == "0"  # all 7 answers (tests/support/dashboard_data.py)
        assert page.locator("[data-testid=active-filters]").count() == 0
        page.select_option("select[name=survey_id]", label="Onboarding")
        page.click(".filters button[type=submit]")
        page.wait_for_url(f"**survey_id={ids['Onboarding']}**")
        assert page.inner_text("[data-testid=nps]") == "-33"
        assert "n = 3" in page.inner_text(".kpi.main")
        texts = set(page.locator("#comments .text").all_inner_texts())
        assert texts == {"onboarding-too-hard", "onboarding-loved-it"}
        assert page.locator("#segments tbody tr").count() == 2
        assert "Onboarding" in page.inner_text("[data-testid=active-filters]")
        # No control may stick out of the filter card, nor the page get a horizontal scrollbar.
        card = page.locator("form.filters").bounding_box()
        assert card is not None
        for box in (c.bounding_box() for c in page.locator("form.filters select, form.filters button").all()):
            assert box is not None and box["x"] + box["width"] <= card["x"] + card["width"] + 0.5
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(tmp_path / f"filtered-{width}.png"), full_page=True)
        # A second filter narrows further; the comment filter keeps both.
        page.select_option("select[name=channel]", "link")
        page.click(".filters button[type=submit]")
        page.wait_for_url("**channel=link**")
        assert page.inner_text("[data-testid=nps]") == "+100"
        assert "n = 1" in page.inner_text(".kpi.main")
        page.select_option("select[name=category]", "promoter")
        page.click("#comments button[type=submit]")
        page.wait_for_url("**category=promoter**")
        assert page.locator("#comments .text").all_inner_texts() == ["onboarding-loved-it"]
        with page.expect_download() as info:
            page.click("a.button[href*='responses.csv']")
        with open(info.value.path(), encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert [(r["email"], r["score"], r["channel"]) for r in rows] == [("p7@origins.test", "9", "link")]
        # Removing the survey chip keeps the channel: link answers of every survey.
        page.click("[data-testid=active-filters] a.chip:has-text('Onboarding')")
        page.wait_for_load_state()
        assert "survey_id" not in page.url and "channel=link" in page.url
        assert page.inner_text("[data-testid=nps]") == "+100"
        page.close()


WIDTHS = ((1280, 900), (390, 844))


def signed_in(browser: Any, base: str, width: int, height: int) -> Any:
    """A new page at this viewport, signed in as cs@acme.test, on the dashboard."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{base}/login")
    page.fill("input[name=email]", "cs@acme.test")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    return page


def test_dashboard_browser_trend_labels_are_readable_at_every_width(
    app: Flask, project: dict[str, Any], live_server: str, browser: Any, tmp_path: Any
) -> None:
    with app.app_context():
        seed_responses(project["id"], 120, seed=3)
        create_user(project["id"], "cs@acme.test", "correct horse battery", "viewer")
    for width, height in (*WIDTHS, (768, 1024)):  # and a tablet, between the two
        page = signed_in(browser, live_server, width, height)
        page.screenshot(path=str(tmp_path / f"trend-{width}.png"), full_page=True)
        chart = page.locator("#trend svg.trend:visible")
        assert chart.count() == 1
        texts = chart.locator("text")
        assert texts.count() >= 5
        # Rendered size: the box of each label (a scaled-down SVG shrinks its text with it).
        heights = [box["height"] for box in (t.bounding_box() for t in texts.all()) if box]
        assert heights and min(heights) >= 11, (width, heights)
        ticks = chart.locator("text.tick[text-anchor=middle]").all_inner_texts()
        assert len(ticks) >= 3
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.close()


def test_dashboard_browser_long_comment_is_truncated_with_show_more(
    app: Flask, project: dict[str, Any], live_server: str, browser: Any, tmp_path: Any
) -> None:
    long_comment = ("All good but " + "very " * 1000)[:4990] + " END."
    with app.app_context():
        seed_responses(project["id"], 20, seed=3)
        person = upsert_person(project["id"], {"email": "long@example.com"})[0]
        db.session.add(
            Response(
                project_id=project["id"],
                survey_id=default_survey(project["id"]).id,
                person_id=person.id,
                score=4,
                category="detractor",
                comment=long_comment,
                channel="api",
                properties={},
            )
        )
        db.session.commit()
        create_user(project["id"], "cs@acme.test", "correct horse battery", "viewer")
    for width, height in WIDTHS:
        page = signed_in(browser, live_server, width, height)
        page.screenshot(path=str(tmp_path / f"comment-{width}.png"), full_page=True)
        item = page.locator("#comments li.comment", has_text="All good but").first
        box = item.bounding_box()
        assert box is not None and box["height"] <= 260, (width, box)  # was ~1,900 px
        assert not page.get_by_text("END.").first.is_visible()
        item.locator("summary", has_text="Show more").click()
        page.get_by_text("END.").first.wait_for(state="visible")
        opened = item.bounding_box()
        assert opened is not None and opened["height"] > box["height"] * 2
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.close()


def test_dashboard_browser_empty_project_shows_how_to_get_started(
    app: Flask, project: dict[str, Any], live_server: str, browser: Any, tmp_path: Any
) -> None:
    with app.app_context():
        create_user(project["id"], "cs@acme.test", "correct horse battery", "viewer")
    for width, height in WIDTHS:
        page = signed_in(browser, live_server, width, height)
        page.screenshot(path=str(tmp_path / f"empty-{width}.png"), full_page=True)
        panel = page.locator("[data-testid=getting-started]")
        assert panel.is_visible()
        text = panel.inner_text()
        assert f'data-key="{project["public_key"]}"' in text
        assert f"{live_server}/widget.js" in text
        assert "curl" in text and f"{live_server}/api/v1/responses" in text
        assert f"rotate-key --project {project['id']}" in text
        assert project["secret_key"][:7] in text and project["secret_key"] not in text
        # The snippets stay inside their box: no clipping, no page-wide scroll.
        for pre in panel.locator("pre").all():
            assert pre.evaluate("e => e.scrollWidth <= e.clientWidth")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.close()


def test_dashboard_browser_has_a_favicon(
    app: Flask, project: dict[str, Any], live_server: str, browser: Any
) -> None:
    with app.app_context():
        create_user(project["id"], "cs@acme.test", "correct horse battery", "viewer")
    for width, height in WIDTHS:
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(f"{live_server}/login")
        assert page.locator("link[rel=icon]").count() == 1
        href = page.locator("link[rel=icon]").get_attribute("href")
        assert href and not href.startswith("data:")
        res = page.request.get(page.evaluate("h => new URL(h, location.href).href", href))
        assert res.status == 200
        assert res.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in res.body()
        page.close()
