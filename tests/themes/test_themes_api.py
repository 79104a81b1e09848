"""Themes through the server API: the rules, the report with impact, filters, exports, discovery."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from survey_service.core import clock, nps
from survey_service.extensions import db, queues
from survey_service.jobs import reapply_themes
from survey_service.models import Response, ResponseTheme, ThemeRollup, ThemeRules
from survey_service.reporting import rollups
from tests.support.db import make_project
from tests.support.sql import sql_log
from tests.support.themes import analyse, by_key, post_comments, themes_report

pytestmark = pytest.mark.usefixtures("no_network")

COMMENTS = [
    (2, "Way too expensive, the pricing makes no sense for us."),
    (3, "The app crashes all the time and the price keeps going up."),
    (1, "Terrible support, nobody answers our tickets."),
    (9, "Support is fantastic and very responsive."),
    (10, "So easy to use, the interface is intuitive."),
    (8, "Good value for money."),
    (6, "Slow dashboards, loading takes ages."),
    (9, "Great product."),
    (7, "Die Preise sind zu hoch."),
    (10, "Le support client est excellent."),
    (4, "Se cuelga constantemente, muchos errores."),
    (5, "Questo prodotto è molto lento e non funziona bene"),
]


def _theme_ids(client: FlaskClient, auth: dict[str, str]) -> dict[str, int]:
    res = client.get("/api/v1/themes", headers=auth)
    assert res.status_code == 200
    return {t["key"]: t["id"] for t in res.get_json()["data"]}


def test_themes_project_starts_with_the_builtin_set(client: FlaskClient, auth: dict[str, str]) -> None:
    themes = client.get("/api/v1/themes", headers=auth).get_json()["data"]
    assert {t["key"] for t in themes} == {
        "price",
        "performance",
        "reliability",
        "support",
        "ease_of_use",
        "features",
        "onboarding",
        "integrations",
    }
    assert all(t["builtin"] and t["enabled"] and t["keywords"] for t in themes)


def test_report_counts_impact_and_unthemed_match_hand_figures(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    post_comments(client, auth, COMMENTS)
    post_comments(client, auth, [(10, ""), (0, "")], prefix="nc")  # no comment: in the NPS, in no theme
    assert analyse(app) == 14
    body = themes_report(client, auth, "languages=true")
    themes = by_key(body)
    # price: scores 2, 3, 8, 7 -> 0 promoters, 2 passives, 2 detractors.
    price = themes["price"]
    assert (price["promoters"], price["passives"], price["detractors"]) == (0, 2, 2)
    assert price["nps"] == -50.0 and price["responses"] == 4
    # 14 responses: promoters 9, 10, 9, 10, 10 = 5; detractors 2, 3, 1, 6, 4, 5, 0 = 7 -> NPS -14.3.
    overall = nps.NpsStats(5, 2, 7)
    assert body["overall"]["nps"] == overall.nps == -14.3
    assert (price["impact"], price["impact_margin"]) == nps.impact(overall, nps.NpsStats(0, 2, 2))
    assert price["impact"] == -14.3
    # Without price's 4: 10 responses, 5 promoters and 5 detractors -> 0; impact = -14.3 - 0.
    assert price["share_of_comments"] == round(4 / 12 * 100, 1)
    assert themes["support"]["promoters"] == 2 and themes["support"]["detractors"] == 1
    assert themes["reliability"]["detractors"] == 2  # English and Spanish
    # "Great product." carries no theme (and the Italian comment only a plain-word match at most).
    assert body["unthemed"] >= 1
    assert {e["comment"] for e in price["examples"]} >= {"Die Preise sind zu hoch."}
    # Sorted: themes that pull the score down most first.
    impacts = [t["impact"] for t in body["themes"] if t["responses"]]
    assert impacts == sorted(impacts)
    languages = {entry["language"]: entry for entry in body["languages"]}
    assert languages["it"]["supported"] is False and languages["it"]["comments"] == 1
    assert languages["de"]["comments"] == 1 and languages["es"]["comments"] == 1


def test_report_filters_and_trend(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    post_comments(client, auth, COMMENTS[:3], created_at="2026-01-10T10:00:00Z")
    post_comments(client, auth, COMMENTS[3:6], prefix="q", created_at="2026-02-10T10:00:00Z")
    analyse(app)
    january = by_key(themes_report(client, auth, "since=2026-01-01&until=2026-01-31"))
    assert january["price"]["responses"] == 2 and january["support"]["responses"] == 1
    trend = by_key(themes_report(client, auth, "trend=true&interval=month&since=2026-01-01&until=2026-02-28"))
    assert [(p["period"], p["responses"]) for p in trend["price"]["series"]] == [
        ("2026-01-01", 2),
        ("2026-02-01", 1),
    ]


def test_nps_report_group_by_theme(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    post_comments(client, auth, COMMENTS)
    analyse(app)
    res = client.get("/api/v1/reports/nps?group_by=theme", headers=auth)
    assert res.status_code == 200
    groups = {g["key"]: g for g in res.get_json()["groups"]}
    assert groups["price"]["responses"] == 4 and groups["price"]["nps"] == -50.0


def test_responses_and_exports_filter_by_theme(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    ids = post_comments(client, auth, COMMENTS)
    analyse(app)
    listed = client.get("/api/v1/responses?theme=price", headers=auth).get_json()["data"]
    assert sorted(r["id"] for r in listed) == sorted([ids[0], ids[1], ids[5], ids[8]])
    res = client.get("/api/v1/responses?theme=nope", headers=auth)
    assert res.status_code == 404 and res.get_json()["code"] == "not_found"
    assert client.get("/api/v1/responses?theme=Bad%20Key", headers=auth).status_code == 422
    text = client.get("/api/v1/exports/responses.csv?theme=reliability", headers=auth).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["response_id"] for r in rows} == {str(ids[1]), str(ids[10])}
    assert rows[0]["themes"] == "price;reliability" or rows[1]["themes"] == "price;reliability"
    everything = client.get("/api/v1/exports/responses.jsonl", headers=auth).get_data(as_text=True)
    assert '"themes":"support"' in everything


def test_export_themes_column_names_each_response_s_enabled_themes_of_its_own_project(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    """The themes column (one aggregate joined to the rows): sorted keys per response, "" without any,
    a switched-off theme left out at once (before the worker re-applies the rules), and nothing of
    another project whose responses carry the same themes."""
    other = make_project(app, "Other")
    other_auth = {"Authorization": f"Bearer {other['secret_key']}"}
    post_comments(client, other_auth, COMMENTS)
    ids = post_comments(client, auth, [*COMMENTS, (9, "")])
    analyse(app)

    def themes_column(path: str) -> dict[int, str]:
        res = client.get(f"/api/v1/exports/{path}", headers=auth)
        assert res.status_code == 200
        if path.endswith(".csv"):
            return {
                int(r["response_id"]): r["themes"]
                for r in csv.DictReader(io.StringIO(res.get_data(as_text=True)))
            }
        lines = [json.loads(line) for line in res.get_data(as_text=True).splitlines()]
        return {line["response_id"]: line["themes"] for line in lines}

    for path in ("responses.csv", "responses.jsonl"):
        column = themes_column(path)
        assert set(column) == set(ids)  # the other project's answers are not here
        assert column[ids[1]] == "price;reliability"  # sorted, joined by ';'
        assert column[ids[-1]] == ""  # no comment, no theme
    price = _theme_ids(client, auth)["price"]
    assert client.patch(f"/api/v1/themes/{price}", json={"enabled": False}, headers=auth).status_code == 200
    for path in ("responses.csv", "responses.jsonl"):
        column = themes_column(path)
        assert column[ids[1]] == "reliability" and column[ids[0]] == ""


def test_rule_change_is_reapplied_by_the_job(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    post_comments(client, auth, COMMENTS)
    analyse(app)
    ids = _theme_ids(client, auth)
    res = client.patch(f"/api/v1/themes/{ids['price']}", json={"enabled": False}, headers=auth)
    assert res.status_code == 200 and res.get_json()["enabled"] is False
    with app.app_context():
        version = db.session.scalar(select(ThemeRules.version))
        project_id = db.session.scalar(select(ThemeRules.project_id)) or 0
        assert queues().queue().fetch_job(f"themes-reapply-{project_id}-{version}") is not None
        # The web request changed no assignment: the worker does.
        assert (
            db.session.scalar(select(ResponseTheme).where(ResponseTheme.theme_id == ids["price"])) is not None
        )
        assert reapply_themes(project_id) == 12
        assert reapply_themes(project_id) == 12  # twice: the same rows
        assert db.session.scalar(select(ResponseTheme).where(ResponseTheme.theme_id == ids["price"])) is None
        rules = db.session.get(ThemeRules, project_id)
        assert rules is not None and rules.applied_version == rules.version
    assert "price" not in by_key(themes_report(client, auth))
    # A new theme applies to old comments.
    res = client.post("/api/v1/themes", json={"label": "Tickets", "keywords": ["ticket"]}, headers=auth)
    assert res.status_code == 201 and res.get_json()["key"] == "tickets"
    with app.app_context():
        reapply_themes(project_id)
    assert by_key(themes_report(client, auth))["tickets"]["responses"] == 1


def test_edited_comment_is_analysed_again(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    (response_id,) = post_comments(client, auth, [(3, "Great product.")])
    analyse(app)
    assert by_key(themes_report(client, auth))["price"]["responses"] == 0
    with app.app_context():
        db.session.execute(
            update(Response)
            .where(Response.id == response_id)
            .values(comment="Far too expensive", updated_at=clock.now())
        )
        db.session.commit()
    analyse(app)
    assert by_key(themes_report(client, auth))["price"]["responses"] == 1


def test_rename_merge_delete(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    post_comments(client, auth, COMMENTS)
    analyse(app)
    ids = _theme_ids(client, auth)
    res = client.patch(f"/api/v1/themes/{ids['price']}", json={"label": "Pricing"}, headers=auth)
    assert res.get_json()["label"] == "Pricing" and res.get_json()["key"] == "price"
    res = client.post(
        f"/api/v1/themes/{ids['performance']}/merge", json={"into": ids["reliability"]}, headers=auth
    )
    assert res.status_code == 200 and "slow" in res.get_json()["keywords"]
    assert client.get(f"/api/v1/themes/{ids['performance']}", headers=auth).status_code == 404
    with app.app_context():
        project_id = db.session.scalar(select(ThemeRules.project_id)) or 0
        reapply_themes(project_id)
    assert (
        by_key(themes_report(client, auth))["reliability"]["responses"] == 4
    )  # crashes x2 + slow x1 + lento
    assert client.delete(f"/api/v1/themes/{ids['support']}", headers=auth).status_code == 204
    assert "support" not in by_key(themes_report(client, auth))
    assert client.delete(f"/api/v1/themes/{ids['support']}", headers=auth).status_code == 404
    res = client.post(f"/api/v1/themes/{ids['price']}/merge", json={"into": ids["price"]}, headers=auth)
    assert res.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"label": "x", "keywords": []},
        {"label": "", "keywords": ["a"]},
        {"label": "x" * 81, "keywords": ["a"]},
        {"label": "x", "keywords": ["(.*)+$"]},
        {"label": "x", "keywords": ["a|b"]},
        {"label": "x", "keywords": ["k" * 61]},
        {"label": "x", "keywords": ["one two three four five six"]},
        {"label": "x", "keywords": [f"w{i}" for i in range(201)]},
        {"label": "x", "keywords": ["a"], "key": "Not A Key"},
        {"label": "x\u0000", "keywords": ["a"]},
        {"label": "x", "keywords": "price"},
    ],
)
def test_create_theme_bad_input_is_422(
    client: FlaskClient, auth: dict[str, str], body: dict[str, Any]
) -> None:
    res = client.post("/api/v1/themes", json=body, headers=auth)
    assert res.status_code == 422, res.get_json()
    assert {"status", "code", "message"} <= set(res.get_json())


def test_theme_ids_unknown_are_404_and_keys_unique(client: FlaskClient, auth: dict[str, str]) -> None:
    for method in ("get", "patch", "delete"):
        res = getattr(client, method)("/api/v1/themes/999999", json={"label": "a"}, headers=auth)
        assert res.status_code == 404
    assert client.post("/api/v1/themes/999999/merge", json={"into": 1}, headers=auth).status_code == 404
    body = {"label": "Price", "keywords": ["cost"]}
    res = client.post("/api/v1/themes", json=body, headers=auth)
    assert res.status_code == 409 and res.get_json()["code"] == "conflict"
    assert client.patch("/api/v1/themes/1", json={}, headers=auth).status_code in (404, 422)


def test_suggestions_find_planted_phrases(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    filler = ["It is okay", "We use it daily", "Nothing special", "Does the job", "Used by our team", "Fine"]
    rows: list[tuple[int, str]] = []
    for i in range(60):
        detractor = filler[i % len(filler)] + (" but the calendar view is unusable" if i % 2 == 0 else "")
        promoter = filler[(i + 3) % len(filler)] + (" and the keyboard shortcuts rock" if i % 2 == 0 else "")
        rows += [(2, detractor), (10, promoter)]
    post_comments(client, auth, rows)
    analyse(app)
    res = client.get("/api/v1/themes/suggestions", headers=auth)
    assert res.status_code == 200
    body = res.get_json()
    assert body["comments"] == 120
    top_detractor = body["detractor_phrases"][0]
    assert "calendar" in top_detractor["phrase"] or "unusable" in top_detractor["phrase"]
    assert top_detractor["significant"] and top_detractor["z"] > 3
    assert top_detractor["detractors"] == 30 and top_detractor["promoters"] == 0
    assert len(top_detractor["examples"]) == 3
    detractor_phrases = {s["phrase"] for s in body["detractor_phrases"][:4]}
    assert {"calendar view", "calendar"} & detractor_phrases
    promoter_phrases = {s["phrase"] for s in body["promoter_phrases"][:4]}
    assert {"keyboard shortcuts", "keyboard"} & promoter_phrases
    # Filler, used by both sides alike, is not significant.
    assert all(not s["significant"] for s in body["detractor_phrases"] if s["phrase"] in ("daily", "special"))
    res = client.post("/api/v1/themes/suggestions", json={"phrase": "calendar view"}, headers=auth)
    assert res.status_code == 201 and res.get_json()["keywords"] == ["calendar view"]
    with app.app_context():
        reapply_themes(db.session.scalar(select(ThemeRules.project_id)) or 0)
    assert by_key(themes_report(client, auth))["calendar_view"]["detractors"] == 30
    # Covered now: no longer suggested.
    again = client.get("/api/v1/themes/suggestions", headers=auth).get_json()
    assert "calendar view" not in {s["phrase"] for s in again["detractor_phrases"]}


def test_sentiment_contradictions_found(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    ids = post_comments(
        client,
        auth,
        [
            (10, "Terrible, it crashes constantly and support is useless."),
            (1, "Excellent product, I love it, really great."),
            (9, "Love it, fantastic."),
            (2, "Awful and slow."),
            (9, "Absolument horrible, je déteste cette mise à jour."),
        ],
    )
    analyse(app)
    res = client.get("/api/v1/reports/sentiment", headers=auth)
    assert res.status_code == 200
    body = res.get_json()
    assert {r["response_id"] for r in body["data"]} == {ids[0], ids[1], ids[4]}
    assert body["sentiment"]["positive"] == 2 and body["sentiment"]["negative"] == 3


@pytest.mark.usefixtures("app")
def test_report_with_rollups_built_reads_totals_and_theme_counts_together(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    with app.app_context():
        if not rollups.enabled():
            pytest.skip("rollups exist on PostgreSQL only (SQLite scans, see the test above)")
    post_comments(client, auth, COMMENTS, created_at="2026-01-10T10:00:00Z")
    post_comments(client, auth, COMMENTS[:4], prefix="later")
    analyse(app)
    live = themes_report(client, auth)
    with app.app_context():
        rollups.refresh(None)
    with sql_log(app) as seen:
        report = themes_report(client, auth)
    assert report == live
    # One look at which days are built, one read of their counts (NPS totals and theme counts), one
    # scan of the responses of the other days (totals and themes together).
    assert sum("response_rollup_days" in s for s in seen) == 1
    assert sum("response_rollups" in s or "theme_rollups" in s for s in seen) == 1
    assert sum("WITH scoped" in s for s in seen) == 1
    # The theme list and the examples: one statement on PostgreSQL.
    assert sum("FROM themes" in s for s in seen) == 1


@pytest.mark.usefixtures("app")
def test_report_with_rollups_built_comment_not_analysed_yet_is_in_no_theme_count(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    post_comments(client, auth, COMMENTS, created_at="2026-01-10T10:00:00Z")
    post_comments(client, auth, COMMENTS[:4], prefix="later")
    analyse(app)
    with app.app_context():
        rollups.refresh(None)
    before = themes_report(client, auth)
    # Today's new comment, not analysed yet: in the totals, in no theme and not unthemed either.
    post_comments(client, auth, [(2, "Way too expensive.")], prefix="new")
    after = themes_report(client, auth)
    assert after["overall"]["comments"] == before["overall"]["comments"] + 1
    assert after["unthemed"] == before["unthemed"]
    assert [(t["key"], t["responses"]) for t in after["themes"]] == [
        (t["key"], t["responses"]) for t in before["themes"]
    ]
    analyse(app)
    price = by_key(before)["price"]["responses"]
    assert by_key(themes_report(client, auth))["price"]["responses"] == price + 1


@pytest.mark.usefixtures("app")
def test_report_with_rollups_built_equals_the_live_scan(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    post_comments(client, auth, COMMENTS, created_at="2026-01-10T10:00:00Z")
    post_comments(client, auth, COMMENTS[:4], prefix="later")
    analyse(app)
    live = themes_report(client, auth)
    with app.app_context():
        rollups.refresh(None)
    assert themes_report(client, auth) == live
    with app.app_context():
        # PostgreSQL: the closed day's theme counts now come from the rollups (SQLite always scans).
        stored = db.session.scalars(select(ThemeRollup.theme_id)).all()
        assert bool(stored) == rollups.enabled()
    # A rule change after the rollups were built: the day's counts are out of date, the report stays exact.
    ids = _theme_ids(client, auth)
    client.patch(f"/api/v1/themes/{ids['support']}", json={"enabled": False}, headers=auth)
    with app.app_context():
        reapply_themes(db.session.scalar(select(ThemeRules.project_id)) or 0)
    client.patch(f"/api/v1/themes/{ids['support']}", json={"enabled": True}, headers=auth)
    with app.app_context():
        reapply_themes(db.session.scalar(select(ThemeRules.project_id)) or 0)
        rollups.refresh(None)
    assert themes_report(client, auth) == live
