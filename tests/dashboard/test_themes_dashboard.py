"""Admins add, rename, switch off and merge themes on the dashboard; a suggestion becomes one in a click."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.support.dashboard import add_user, csrf_from, sign_in
from tests.support.db import make_project
from tests.support.themes import analyse, post_comments


def _signed_in(app: Flask, email: str) -> tuple[FlaskClient, str]:
    client = app.test_client()
    assert sign_in(client, email).status_code == 302
    return client, csrf_from(client, "/dashboard/account")


def _themes(client: FlaskClient, auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The project's themes by label, from a fresh API query."""
    res = client.get("/api/v1/themes", headers=auth)
    assert res.status_code == 200
    return {theme["label"]: theme for theme in res.get_json()["data"]}


def _admin(app: Flask, project: dict[str, Any]) -> tuple[FlaskClient, str]:
    add_user(app, project["id"], "admin@acme.test", "admin")
    return _signed_in(app, "admin@acme.test")


def test_themes_page_admin_adds_renames_switches_off_and_merges(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    admin, token = _admin(app, project)
    page = admin.get("/dashboard/themes")
    assert page.status_code == 200 and "<h1>Themes</h1>" in page.get_data(as_text=True)

    res = admin.post(
        "/dashboard/themes",
        data={"label": "Checkout", "keywords": "checkout, payment page ,cart", "csrf_token": token},
    )
    assert res.status_code == 302 and res.headers["Location"].endswith("/dashboard/themes")
    assert "Added the theme Checkout." in admin.get("/dashboard/themes").get_data(as_text=True)
    checkout = _themes(client, auth)["Checkout"]
    assert checkout["keywords"] == ["checkout", "payment page", "cart"] and checkout["enabled"] is True

    res = admin.post(
        f"/dashboard/themes/{checkout['id']}/edit",
        data={"label": "Buying", "keywords": "checkout, basket", "csrf_token": token},
    )
    assert res.status_code == 302
    found = _themes(client, auth)
    assert "Checkout" not in found and found["Buying"]["keywords"] == ["checkout", "basket"]

    res = admin.post(
        f"/dashboard/themes/{checkout['id']}/enabled", data={"enabled": "false", "csrf_token": token}
    )
    assert res.status_code == 302 and _themes(client, auth)["Buying"]["enabled"] is False
    assert "Buying is now off." in admin.get("/dashboard/themes").get_data(as_text=True)

    admin.post("/dashboard/themes", data={"label": "Cart", "keywords": "trolley", "csrf_token": token})
    cart = _themes(client, auth)["Cart"]
    res = admin.post(
        f"/dashboard/themes/{cart['id']}/merge", data={"into": str(checkout["id"]), "csrf_token": token}
    )
    assert res.status_code == 302
    found = _themes(client, auth)
    assert "Cart" not in found and found["Buying"]["keywords"] == ["checkout", "basket", "trolley"]


def test_themes_page_bad_input_shows_the_error_and_changes_nothing(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    admin, token = _admin(app, project)
    before = _themes(client, auth)
    some = next(iter(before.values()))
    cases = [
        ("/dashboard/themes", {"label": "", "keywords": "a"}, 422, "label: A label has 1 to 80"),
        ("/dashboard/themes", {"label": "Regex", "keywords": "a.*b("}, 422, "not patterns"),
        (
            "/dashboard/themes",
            {"label": some["label"], "keywords": "x"},
            409,
            "A theme with this key exists.",
        ),
        (
            f"/dashboard/themes/{some['id']}/edit",
            {"label": "Ok", "keywords": ""},
            422,
            "keywords: Length must be",
        ),
        (
            f"/dashboard/themes/{some['id']}/enabled",
            {"enabled": "maybe"},
            422,
            "enabled: Not a valid boolean",
        ),
        (f"/dashboard/themes/{some['id']}/merge", {"into": str(some["id"])}, 422, "into itself"),
        (f"/dashboard/themes/{some['id']}/merge", {"into": "nope"}, 422, "into: Not a valid integer"),
        ("/dashboard/themes/suggestions", {"phrase": "<script>"}, 422, "not patterns"),
    ]
    for path, data, status, text in cases:
        res = admin.post(path, data={**data, "csrf_token": token})
        assert res.status_code == status, (path, data, res.status_code)
        assert text in res.get_data(as_text=True), (path, data)
    assert _themes(client, auth) == before


def test_themes_page_suggestion_becomes_a_theme_and_returns_to_the_same_view(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    rows = [(2, f"The offline sync keeps failing, ticket {i}") for i in range(20)]
    rows += [(10, f"Lovely onboarding wizard, thanks {i}") for i in range(20)]
    post_comments(client, auth, rows)
    analyse(app)
    admin, token = _admin(app, project)
    html = admin.get("/dashboard?range=all&suggest=1").get_data(as_text=True)
    assert "Manage themes" in html
    buttons = re.findall(
        r'name="back" value="([^"]*)">\s*<input type="hidden" name="phrase" value="([^"]+)"', html
    )
    assert buttons and "Make it a theme" in html, html[html.find('id="themes"') :][:3000]
    back, phrase = buttons[0]
    assert back == "range=all&amp;suggest=1"
    res = admin.post(
        "/dashboard/themes/suggestions",
        data={"phrase": phrase, "back": "range=all&suggest=1", "csrf_token": token},
    )
    assert res.status_code == 302
    assert res.headers["Location"].endswith("/dashboard?range=all&suggest=1#themes")
    assert _themes(client, auth)[phrase]["keywords"] == [phrase]
    assert f"Added the theme {phrase}." in admin.get("/dashboard").get_data(as_text=True)


def test_themes_page_viewer_403_csrf_missing_refused_other_project_404(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    admin, token = _admin(app, project)
    add_user(app, project["id"], "viewer@acme.test")
    viewer, viewer_token = _signed_in(app, "viewer@acme.test")
    other = make_project(app, "Other")
    theirs = client.post(
        "/api/v1/themes",
        json={"label": "Theirs", "keywords": ["theirs"]},
        headers={"Authorization": f"Bearer {other['secret_key']}"},
    )
    assert theirs.status_code == 201, theirs.get_data(as_text=True)
    their_id = theirs.get_json()["id"]
    before = _themes(client, auth)
    mine = next(iter(before.values()))["id"]
    posts = [
        ("/dashboard/themes", {"label": "New", "keywords": "new"}),
        (f"/dashboard/themes/{mine}/edit", {"label": "New", "keywords": "new"}),
        (f"/dashboard/themes/{mine}/enabled", {"enabled": "false"}),
        (f"/dashboard/themes/{mine}/merge", {"into": str(mine)}),
        ("/dashboard/themes/suggestions", {"phrase": "new"}),
    ]
    assert viewer.get("/dashboard/themes").status_code == 403
    assert "Manage themes" not in viewer.get("/dashboard").get_data(as_text=True)
    for path, data in posts:
        assert viewer.post(path, data={**data, "csrf_token": viewer_token}).status_code == 403, path
        assert admin.post(path, data=data).status_code == 400, path  # no CSRF token
    for action, data in (
        ("edit", {"label": "Mine", "keywords": "mine"}),
        ("enabled", {"enabled": "false"}),
        ("merge", {"into": str(mine)}),
    ):
        res = admin.post(f"/dashboard/themes/{their_id}/{action}", data={**data, "csrf_token": token})
        assert res.status_code == 404, action
    res = admin.post(f"/dashboard/themes/{mine}/merge", data={"into": str(their_id), "csrf_token": token})
    assert res.status_code == 404
    assert _themes(client, auth) == before
    theirs_now = client.get(
        f"/api/v1/themes/{their_id}", headers={"Authorization": f"Bearer {other['secret_key']}"}
    )
    assert theirs_now.get_json()["label"] == "Theirs" and theirs_now.get_json()["enabled"] is True
