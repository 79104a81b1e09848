"""Admins manage the team on the dashboard (role, removal, new password); anyone changes their own."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from survey_service.extensions import db
from survey_service.models import DashboardUser
from tests.support.dashboard import PASSWORD, add_user, csrf_from, sign_in

NEW = "a brand new password"


def _user(app: Flask, email: str) -> DashboardUser | None:
    with app.app_context():
        user = db.session.scalar(select(DashboardUser).where(DashboardUser.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


def _signed_in(app: Flask, email: str) -> tuple[FlaskClient, str]:
    client = app.test_client()
    assert sign_in(client, email).status_code == 302
    return client, csrf_from(client, "/dashboard/account")


def _id(app: Flask, email: str) -> int:
    user = _user(app, email)
    assert user is not None
    return user.id


def test_viewer_gets_403_on_every_team_action_and_nothing_changes(
    app: Flask, project: dict[str, Any]
) -> None:
    add_user(app, project["id"], "admin@acme.test", "admin")
    add_user(app, project["id"], "viewer@acme.test")
    viewer, token = _signed_in(app, "viewer@acme.test")
    admin_id = _id(app, "admin@acme.test")
    for action, data in (("role", {"role": "viewer"}), ("remove", {}), ("password", {"password": NEW})):
        res = viewer.post(f"/dashboard/users/{admin_id}/{action}", data={**data, "csrf_token": token})
        assert res.status_code == 403, action
    admin = _user(app, "admin@acme.test")
    assert admin is not None and admin.role == "admin"
    assert sign_in(app.test_client(), "admin@acme.test").status_code == 302


def test_admin_changes_role_sets_password_and_removes_a_member(app: Flask, project: dict[str, Any]) -> None:
    add_user(app, project["id"], "admin@acme.test", "admin")
    add_user(app, project["id"], "bob@acme.test")
    admin, token = _signed_in(app, "admin@acme.test")
    bob_client, _ = _signed_in(app, "bob@acme.test")
    bob = _id(app, "bob@acme.test")

    # No CSRF token: refused, nothing changes.
    assert admin.post(f"/dashboard/users/{bob}/role", data={"role": "admin"}).status_code == 400
    res = admin.post(f"/dashboard/users/{bob}/role", data={"role": "admin", "csrf_token": token})
    assert res.status_code == 200 and "bob@acme.test is now admin" in res.get_data(as_text=True)
    assert (_user(app, "bob@acme.test") or DashboardUser()).role == "admin"
    bad = admin.post(f"/dashboard/users/{bob}/role", data={"role": "owner", "csrf_token": token})
    assert bad.status_code == 422

    weak = admin.post(f"/dashboard/users/{bob}/password", data={"password": "short", "csrf_token": token})
    assert weak.status_code == 422 and "at least 10 characters" in weak.get_data(as_text=True)
    res = admin.post(f"/dashboard/users/{bob}/password", data={"password": NEW, "csrf_token": token})
    assert res.status_code == 200
    assert bob_client.get("/dashboard").status_code == 302  # bob's session ended
    assert sign_in(app.test_client(), "bob@acme.test", PASSWORD).status_code == 401
    assert sign_in(app.test_client(), "bob@acme.test", NEW).status_code == 302

    res = admin.post(f"/dashboard/users/{bob}/remove", data={"csrf_token": token})
    assert res.status_code == 200 and "Removed bob@acme.test" in res.get_data(as_text=True)
    assert _user(app, "bob@acme.test") is None
    assert admin.get("/dashboard/users").status_code == 200  # the admin is still signed in


def test_last_admin_cannot_be_demoted_or_removed_on_the_dashboard(
    app: Flask, project: dict[str, Any]
) -> None:
    add_user(app, project["id"], "admin@acme.test", "admin")
    admin, token = _signed_in(app, "admin@acme.test")
    me = _id(app, "admin@acme.test")
    res = admin.post(f"/dashboard/users/{me}/role", data={"role": "viewer", "csrf_token": token})
    assert res.status_code == 409 and "last admin" in res.get_data(as_text=True)
    res = admin.post(f"/dashboard/users/{me}/remove", data={"csrf_token": token})
    assert res.status_code == 409 and "last admin" in res.get_data(as_text=True)
    assert (_user(app, "admin@acme.test") or DashboardUser()).role == "admin"


def test_another_projects_member_is_404_and_untouched(app: Flask, project: dict[str, Any]) -> None:
    from tests.support.db import make_project

    other = make_project(app, "Other")
    add_user(app, project["id"], "admin@acme.test", "admin")
    add_user(app, other["id"], "them@other.test", "viewer")
    add_user(app, other["id"], "boss@other.test", "admin")
    admin, token = _signed_in(app, "admin@acme.test")
    them = _id(app, "them@other.test")
    for action, data in (("role", {"role": "admin"}), ("password", {"password": NEW}), ("remove", {})):
        res = admin.post(f"/dashboard/users/{them}/{action}", data={**data, "csrf_token": token})
        assert res.status_code == 404, action
        assert "them@other.test" not in res.get_data(as_text=True)
    kept = _user(app, "them@other.test")
    assert kept is not None and kept.role == "viewer"
    assert sign_in(app.test_client(), "them@other.test").status_code == 302


def test_any_user_changes_their_own_password_with_the_current_one(
    app: Flask, project: dict[str, Any]
) -> None:
    add_user(app, project["id"], "viewer@acme.test")
    me, token = _signed_in(app, "viewer@acme.test")
    elsewhere, _ = _signed_in(app, "viewer@acme.test")
    form = {"current_password": "not my password", "password": NEW, "confirm": NEW, "csrf_token": token}
    assert me.post("/dashboard/account", data=form).status_code == 403
    mismatch = {**form, "current_password": PASSWORD, "confirm": NEW + "x"}
    assert me.post("/dashboard/account", data=mismatch).status_code == 422
    assert me.post("/dashboard/account", data={**form, "current_password": PASSWORD}).status_code == 200
    assert me.get("/dashboard").status_code == 200  # this session goes on
    assert elsewhere.get("/dashboard").status_code == 302  # the other one ended
    assert sign_in(app.test_client(), "viewer@acme.test", PASSWORD).status_code == 401
    assert sign_in(app.test_client(), "viewer@acme.test", NEW).status_code == 302
    assert app.test_client().get("/dashboard/account").status_code == 302  # anonymous: to the sign-in


def test_login_page_says_how_to_get_a_new_password(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    assert "Forgot your password?" in html and "survey-service set-password EMAIL --project ID" in html
