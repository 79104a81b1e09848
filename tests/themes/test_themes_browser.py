"""The dashboard's themes panel in real headless Chromium, at desktop and phone widths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from survey_service.services.users import create_user
from survey_service.themes import quality
from tests.support.themes import analyse, post_comments

pytestmark = pytest.mark.browser  # headless Chromium

LABELLED = Path(__file__).resolve().parents[1] / "data" / "themes" / "labelled.tsv"
# Set to a folder to keep the screenshots (docs/screenshots was made this way).
SHOTS = os.environ.get("THEMES_SCREENSHOTS")


def _sign_in(page: Any, live_server: str) -> None:
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", "admin@acme.test")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")


def test_themes_panel_ranks_filters_and_fits_a_phone(
    app: Flask, project: dict[str, Any], live_server: str, browser: Any, tmp_path: Path
) -> None:
    auth = {"Authorization": f"Bearer {project['secret_key']}"}
    rows = [(r.score, r.comment) for r in quality.load(LABELLED)]
    post_comments(app.test_client(), auth, rows)
    analyse(app)
    with app.app_context():
        create_user(project["id"], "admin@acme.test", "correct horse battery", "admin")
    shots = Path(SHOTS) if SHOTS else tmp_path
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _sign_in(page, live_server)
    panel = page.locator("[data-testid=themes]")
    assert panel.locator("tbody tr").count() == 8
    impacts = [
        float(t.replace("+", "").replace("−", "-"))
        for t in panel.locator("tbody td:nth-child(5)").all_inner_texts()
    ]
    assert impacts == sorted(impacts)
    panel.screenshot(path=str(shots / "themes-1280.png"))
    n = int(panel.locator("tr[data-theme=price] td:nth-child(2)").inner_text())
    panel.locator("tr[data-theme=price] a").click()
    page.wait_for_url("**theme=price**")
    assert page.locator("#comments li.comment").count() == min(n, 25)
    page.click("text=Suggest new themes")
    page.wait_for_url("**suggest=1**")
    assert page.locator("[data-testid=themes] h3").inner_text() == "Suggested themes"
    page.close()

    phone = browser.new_page(viewport={"width": 390, "height": 844})
    _sign_in(phone, live_server)
    phone.locator("[data-testid=themes]").screenshot(path=str(shots / "themes-390.png"))
    # The page does not scroll sideways at phone width (the table scrolls inside its card if it must).
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.close()
