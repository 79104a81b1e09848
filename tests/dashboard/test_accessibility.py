"""Accessibility findings of the dashboard held without a browser: one h1 a page, every category colour as
text or badge at >= 4.5:1 (computed from the stylesheets' own colours), the trend's table alternative."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from survey_service.core.contrast import contrast_ratio, ink_on
from survey_service.dashboard.charts import trend_svg
from survey_service.widget.views import WIDGET_DIR
from tests.support.dashboard import add_user, sign_in
from tests.support.dashboard_data import seed_responses
from tests.support.env import ROOT

CSS = (ROOT / "survey_service" / "static" / "dashboard.css").read_text()
SITE_CSS = (ROOT / "survey_service" / "static" / "site.css").read_text()
CARD, PAGE = "#ffffff", "#f5f6fa"


def variables(css: str) -> dict[str, str]:
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})", css))


def rule(css: str, selector: str) -> dict[str, str]:
    """The declarations of the first rule whose selector is exactly this one, var(--x) resolved."""
    match = re.search(r"(?:^|[}\s])" + re.escape(selector) + r"\s*\{([^}]*)\}", css)
    assert match, selector
    found = dict(re.findall(r"([\w-]+)\s*:\s*([^;]+)", match.group(1)))
    names = variables(CSS)
    return {k: re.sub(r"var\(--([\w-]+)\)", lambda m: names[m.group(1)], v.strip()) for k, v in found.items()}


@pytest.mark.parametrize("category", ["promoter", "passive", "detractor"])
def test_contrast_score_badge_white_on_category_colour_is_at_least_4_5(category: str) -> None:
    score = rule(CSS, ".score")
    badge = rule(CSS, f".score-{category}")
    assert score["color"] == "#fff"
    assert contrast_ratio(score["color"], badge["background"]) >= 4.5, badge


@pytest.mark.parametrize(
    "selector", [".big.pro", ".big.pas", ".big.det", ".nps-value.good", ".nps-value.bad", ".muted", ".who"]
)
def test_contrast_category_and_muted_text_on_card_and_page_is_at_least_4_5(selector: str) -> None:
    colour = rule(CSS, selector)["color"]
    assert min(contrast_ratio(colour, CARD), contrast_ratio(colour, PAGE)) >= 4.5 or selector == ".who"
    if selector == ".who":  # on the dark top bar
        assert contrast_ratio(colour, rule(CSS, ".topbar")["background"]) >= 4.5


@pytest.mark.parametrize(
    ("css", "selector"),
    [
        (CSS, ".fu"),
        (CSS, ".fu-contacted"),
        (CSS, ".fu-resolved"),
        (CSS, ".tag"),
        (CSS, ".chip"),
        (CSS, ".card .role"),
        (CSS, ".alert"),
        (CSS, ".notice"),
        (SITE_CSS, ".s-2"),
        (SITE_CSS, ".m-get"),
        (SITE_CSS, ".m-post"),
        (SITE_CSS, ".m-delete"),
    ],
)
def test_contrast_badges_text_on_their_background_is_at_least_4_5(css: str, selector: str) -> None:
    declared = rule(css, selector)
    ink = declared.get("color", "#fff")  # the method badges inherit .method's white
    assert contrast_ratio(ink, declared["background"]) >= 4.5, declared


def test_contrast_widget_text_and_focus_ring_in_light_and_dark_themes() -> None:
    source = (WIDGET_DIR / "widget.js").read_text()
    light = dict(re.findall(r"--(\w):(#[0-9a-f]{3,6})", source.split(".dk{")[0]))
    dark = dict(re.findall(r"--(\w):(#[0-9a-f]{3,6})", source.split(".dk{")[1].split("}")[0]))
    assert "outline:2px solid var(--t)" in source  # the ring is the text colour: it contrasts in every theme
    # Scores and the comment box are outlined in the muted colour (WCAG 1.4.11: >= 3:1 for a control's edge).
    assert re.search(r"\.s button\{[^}]*border:1px solid var\(--m\)", source)
    assert re.search(r"textarea\{[^}]*border:1px solid var\(--m\)", source)
    for theme in (light, dark):
        assert contrast_ratio(theme["t"], theme["b"]) >= 4.5 and contrast_ratio(theme["m"], theme["b"]) >= 4.5
        assert contrast_ratio(theme["t"], theme["b"]) >= 3  # the focus ring on the card


@pytest.mark.parametrize("grey", range(0, 256, 5))
def test_ink_on_any_brand_colour_reads_at_4_5_or_more(grey: int) -> None:
    for colour in (
        f"#{grey:02x}{grey:02x}{grey:02x}",
        f"#{grey:02x}8000",
        f"#00{grey:02x}ff",
        f"#ff{grey:02x}00",
    ):
        assert contrast_ratio(ink_on(colour), colour) >= 4.5, colour


def test_contrast_survey_email_text_colours_are_at_least_4_5() -> None:
    """The email shows no category colour; its own text colours on its white and grey backgrounds."""
    html = (ROOT / "survey_service" / "templates" / "survey_email.html").read_text()
    colours = set(re.findall(r"[^-]color:(#[0-9a-fA-F]{6})", html))
    assert colours
    for colour in colours:
        assert min(contrast_ratio(colour, "#ffffff"), contrast_ratio(colour, "#f9fafb")) >= 4.5, colour


def h1s(html: str) -> int:
    return len(re.findall(r"<h1[\s>]", html))


def test_dashboard_pages_each_have_one_h1(app: Flask, client: FlaskClient, project: dict[str, Any]) -> None:
    assert h1s(client.get("/login").get_data(as_text=True)) == 1
    add_user(app, project["id"], "admin@acme.test", "admin")
    assert sign_in(client, "admin@acme.test").status_code == 302
    assert h1s(client.get("/dashboard").get_data(as_text=True)) == 1  # empty
    with app.app_context():
        seed_responses(project["id"], 40, seed=2)
    for path in (
        "/dashboard",
        "/dashboard?interval=week",
        "/dashboard/users",
        "/dashboard/account",
        "/dashboard/sources",
    ):
        assert h1s(client.get(path).get_data(as_text=True)) == 1, path


SERIES: list[dict[str, Any]] = [
    {
        "period": "2026-01-01",
        "nps": 25.0,
        "nps_low": 5.0,
        "nps_high": 45.0,
        "responses": 40,
        "margin_of_error": 20.0,
    },
    {
        "period": "2026-02-01",
        "nps": None,
        "nps_low": None,
        "nps_high": None,
        "responses": 0,
        "margin_of_error": None,
    },
    {
        "period": "2026-03-01",
        "nps": -12.5,
        "nps_low": -30.0,
        "nps_high": 5.0,
        "responses": 3,
        "margin_of_error": 17.5,
    },
]


def test_trend_chart_has_a_table_with_each_periods_nps_n_and_margin() -> None:
    html = str(trend_svg(SERIES, "month"))
    table = html[html.index("<table") : html.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in rows]
    assert cells[0] == ["Period", "NPS", "n", "Margin", "95% interval"]
    assert cells[1:] == [
        ["Jan 26", "+25", "40", "±20", "+5 to +45"],
        ["Feb 26", "—", "0", "—", "—"],
        ["Mar 26", "-12", "3", "±18", "-30 to +5"],
    ]
    assert "<summary>Show as table</summary>" in html and "<caption" in table
    assert html.count('role="img"') == 3 and "Show as table" in re.findall(r'aria-label="([^"]+)"', html)[0]
