"""The dashboard's Follow-through section through the test client: when it shows, what it says about
reminded answers, and that another project's follow-through never appears."""

from __future__ import annotations

import html
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.support.dashboard import add_user, sign_in
from tests.support.db import make_project
from tests.support.follow_through import CASE, Ask, Step, seed_asks


def _page(client: FlaskClient, query: str = "range=all") -> str:
    res = client.get(f"/dashboard?{query}")
    assert res.status_code == 200
    return res.get_data(as_text=True)


def _section(html: str) -> str | None:
    found = re.search(r'<section[^>]*data-testid="follow-through".*?</section>', html, re.S)
    return found.group(0) if found else None


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))).strip()


def test_follow_through_shows_for_email_asks_not_for_another_channel(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    with app.app_context():
        seed_asks(project["id"], CASE)
    add_user(app, project["id"], "cs@acme.test")
    sign_in(client, "cs@acme.test")
    section = _section(_page(client))
    assert section is not None
    assert section.count('<tr data-step="') == 4  # first ask, reminder 1 email, reminder 2 both ways
    assert '<tr data-step="2" data-channel="in_app">' in section
    assert "12 email asks sent" in _text(section)
    assert _section(_page(client, "range=all&channel=email")) is not None
    assert _section(_page(client, "range=all&channel=in_app")) is None


def test_follow_through_significant_difference_said_in_words(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    # 30 promoters answer the first ask; 30 detractors answer only after reminder 1.
    asks = [Ask(f"f{i}", score=10, after_step=0) for i in range(30)]
    asks += [Ask(f"r{i}", steps=(Step(1),), score=0, after_step=1) for i in range(30)]
    with app.app_context():
        seed_asks(project["id"], asks)
    add_user(app, project["id"], "cs@acme.test")
    sign_in(client, "cs@acme.test")
    text = _text(_section(_page(client)) or "")
    assert "Reminded answers: NPS -100 (n=30, " in text and "vs first ask +100 (n=30, " in text
    assert "a meaningful difference (p < 0.01): people who answer only after a reminder score lower." in text


def test_follow_through_without_reminded_answers_says_nothing_to_compare_and_ignores_other_projects(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    other = make_project(app, "Other")
    with app.app_context():
        seed_asks(project["id"], [Ask("a", score=9, after_step=0), Ask("b", steps=(Step(1),))])
        seed_asks(other["id"], [Ask(f"o{i}", steps=(Step(1),), score=3, after_step=1) for i in range(5)])
    add_user(app, project["id"], "cs@acme.test")
    sign_in(client, "cs@acme.test")
    text = _text(_section(_page(client)) or "")
    assert "2 email asks sent" in text
    assert "No answers after a reminder yet: nothing to compare with the first ask." in text
