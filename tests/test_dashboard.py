"""Dashboard: create-user, sign-in with CSRF and rate limits, roles, tenant isolation, escaping, exports."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from survey_service import create_app
from survey_service.extensions import db
from survey_service.models import DashboardUser
from survey_service.services import login_limits
from survey_service.services.users import create_user
from tests.conftest import make_project
from tests.dashboard_data import seed_responses

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fresh_login_counters(redis_url: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    for key in conn.scan_iter("login-fail:*"):
        conn.delete(key)
    login_limits._memory.clear()


def add_user(app: Flask, project_id: int, email: str, role: str = "viewer") -> None:
    with app.app_context():
        create_user(project_id, email, PASSWORD, role)


def csrf_from(client: FlaskClient, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    token = csrf_from(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_create_user_command_reads_password_from_stdin(
    app: Flask, runner: Any, project: dict[str, Any]
) -> None:
    result = runner.invoke(
        args=["create-user", "Admin@Acme.test", "--project", str(project["id"]), "--role", "admin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(DashboardUser))
        assert user is not None and user.email == "admin@acme.test" and user.role == "admin"
        assert user.password_hash.startswith("scrypt:") and PASSWORD not in user.password_hash


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["a@acme.test", "--project", "999"], PASSWORD, "No project 999"),
        (["a@acme.test", "--project", "{pid}"], "short", "at least 10"),
        (["a@acme.test", "--project", "{pid}", "--role", "owner"], PASSWORD, "owner"),
    ],
)
def test_create_user_command_bad_input_fails_clearly(
    runner: Any, project: dict[str, Any], args: list[str], password: str, message: str
) -> None:
    args = [a.replace("{pid}", str(project["id"])) for a in args]
    result = runner.invoke(args=["create-user", *args], input=password + "\n")
    assert result.exit_code != 0
    assert message in result.output


def test_create_user_duplicate_email_is_refused(app: Flask, runner: Any, project: dict[str, Any]) -> None:
    add_user(app, project["id"], "a@acme.test")
    result = runner.invoke(
        args=["create-user", "a@acme.test", "--project", str(project["id"])], input=PASSWORD
    )
    assert result.exit_code != 0 and "already exists" in result.output


def test_dashboard_anonymous_redirects_to_login(client: FlaskClient) -> None:
    res = client.get("/dashboard")
    assert res.status_code == 302 and res.headers["Location"].endswith("/login")
    html = client.get("/login").get_data(as_text=True)
    assert 'name="email"' in html and 'name="password"' in html


def test_login_without_csrf_token_is_400(app: Flask, client: FlaskClient, project: dict[str, Any]) -> None:
    add_user(app, project["id"], "a@acme.test")
    client.get("/login")
    res = client.post("/login", data={"email": "a@acme.test", "password": PASSWORD})
    assert res.status_code == 400
    assert client.get("/dashboard").status_code == 302


def test_login_wrong_password_is_401_right_one_opens_dashboard(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    add_user(app, project["id"], "a@acme.test")
    assert sign_in(client, "a@acme.test", "wrong password!").status_code == 401
    assert sign_in(client, "nobody@acme.test").status_code == 401
    res = sign_in(client, "A@acme.test")
    assert res.status_code == 302 and res.headers["Location"].endswith("/dashboard")
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "Net Promoter Score" in page.get_data(as_text=True)
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_login_rate_limit_locks_after_repeated_failures(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    add_user(app, project["id"], "a@acme.test")
    for _ in range(login_limits.MAX_FAILURES_PER_EMAIL):
        assert sign_in(client, "a@acme.test", "wrong password!").status_code == 401
    res = sign_in(client, "a@acme.test")
    assert res.status_code == 429
    assert "Too many failed attempts" in res.get_data(as_text=True)


def test_login_rate_limit_without_redis_counts_in_memory(migrated: dict[str, Any]) -> None:
    app = create_app({**migrated, "REDIS_URL": "redis://127.0.0.1:1/0"})
    with app.app_context():
        project = make_project(app)
        create_user(project["id"], "m@acme.test", PASSWORD)
    client = app.test_client()
    for _ in range(login_limits.MAX_FAILURES_PER_EMAIL):
        assert sign_in(client, "m@acme.test", "wrong password!").status_code == 401
    assert sign_in(client, "m@acme.test").status_code == 429
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_logout_needs_csrf_and_ends_session(app: Flask, client: FlaskClient, project: dict[str, Any]) -> None:
    add_user(app, project["id"], "a@acme.test")
    sign_in(client, "a@acme.test")
    assert client.post("/logout").status_code == 400
    assert client.get("/dashboard").status_code == 200
    token = csrf_from(client, "/dashboard")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/dashboard").status_code == 302


def test_users_page_viewer_is_403_admin_adds_member(app: Flask, project: dict[str, Any]) -> None:
    add_user(app, project["id"], "viewer@acme.test")
    add_user(app, project["id"], "admin@acme.test", "admin")
    viewer = app.test_client()
    sign_in(viewer, "viewer@acme.test")
    assert viewer.get("/dashboard/users").status_code == 403
    admin = app.test_client()
    sign_in(admin, "admin@acme.test")
    token = csrf_from(admin, "/dashboard/users")
    form = {"email": "new@acme.test", "password": PASSWORD, "role": "viewer"}
    assert admin.post("/dashboard/users", data=form).status_code == 400
    res = admin.post("/dashboard/users", data={**form, "csrf_token": token})
    assert res.status_code == 200 and "Added new@acme.test" in res.get_data(as_text=True)
    with app.app_context():
        added = db.session.scalar(select(DashboardUser).where(DashboardUser.email == "new@acme.test"))
        assert added is not None and added.project_id == project["id"] and added.role == "viewer"


def test_dashboard_shows_own_project_only_and_escapes_comments(app: Flask, client: FlaskClient) -> None:
    mine, theirs = make_project(app, "Mine"), make_project(app, "Theirs")
    with app.app_context():
        seed_responses(mine["id"], 60, seed=1)
        seed_responses(theirs["id"], 60, seed=2)
        from survey_service.services.responses import record_response

        record_response(theirs["id"], {"email": "x@theirs.test"}, 2, "THEIR SECRET COMPLAINT")
        record_response(mine["id"], {"email": "x@mine.test"}, 1, "<script>alert(1)</script> mine")
        expected = __import__("survey_service.services.reports", fromlist=["nps_report"]).nps_report(
            mine["id"], since=None
        )["overall"]
    add_user(app, mine["id"], "a@mine.test")
    sign_in(client, "a@mine.test")
    html = client.get("/dashboard?range=all").get_data(as_text=True)
    assert "THEIR SECRET COMPLAINT" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; mine" in html and "<script>alert" not in html
    from survey_service.nps import format_nps

    assert f'data-testid="nps">{format_nps(expected["nps"])}<' in html
    assert f"n = {expected['responses']}" in html
    assert '<svg class="trend"' in html


def test_dashboard_invalid_filters_are_ignored_not_500(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    add_user(app, project["id"], "a@acme.test")
    sign_in(client, "a@acme.test")
    res = client.get("/dashboard?range=forever&interval=decade&segment=nope&q=" + "x" * 500)
    assert res.status_code == 200
    assert "Ignored invalid filters: interval, q, range, segment" in res.get_data(as_text=True)


def test_dashboard_export_is_the_signed_in_project_only(app: Flask, client: FlaskClient) -> None:
    mine, theirs = make_project(app, "Mine"), make_project(app, "Theirs")
    with app.app_context():
        from survey_service.services.responses import record_response

        record_response(mine["id"], {"email": "p@mine.test", "properties": {"plan": "pro"}}, 10, "=1+1")
        record_response(mine["id"], {"email": "d@mine.test", "properties": {"plan": "free"}}, 3)
        record_response(theirs["id"], {"email": "p@theirs.test"}, 10)
    add_user(app, mine["id"], "a@mine.test")
    sign_in(client, "a@mine.test")
    res = client.get("/dashboard/exports/promoters.csv?range=all")
    assert res.status_code == 200 and res.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))
    assert [(r["email"], r["comment"], r["plan"]) for r in rows] == [("p@mine.test", "'=1+1", "pro")]
    assert client.get("/dashboard/exports/secrets.csv").status_code == 404
    anonymous = app.test_client()
    assert anonymous.get("/dashboard/exports/responses.csv").status_code == 302


def test_dashboard_followup_admin_saves_viewer_is_403(app: Flask, project: dict[str, Any]) -> None:
    from survey_service.models import Response
    from survey_service.services.responses import record_response

    with app.app_context():
        response, _ = record_response(project["id"], {"email": "d@acme.test"}, 2, "Call me")
        rid = response.id
    add_user(app, project["id"], "viewer@acme.test")
    add_user(app, project["id"], "admin@acme.test", "admin")
    viewer = app.test_client()
    sign_in(viewer, "viewer@acme.test")
    token = csrf_from(viewer, "/dashboard")
    form = {"followup_status": "contacted", "followup_owner": "me", "csrf_token": token}
    assert viewer.post(f"/dashboard/responses/{rid}/followup", data=form).status_code == 403
    admin = app.test_client()
    sign_in(admin, "admin@acme.test")
    html = admin.get("/dashboard?range=all&category=detractor").get_data(as_text=True)
    assert f"/dashboard/responses/{rid}/followup" in html
    form = {"followup_status": "contacted", "followup_owner": "Ann", "back": "range=all&category=detractor"}
    res = admin.post(
        f"/dashboard/responses/{rid}/followup", data={**form, "csrf_token": csrf_from(admin, "/dashboard")}
    )
    assert res.status_code == 302
    assert (
        res.headers["Location"].startswith("/dashboard?") and "category=detractor" in res.headers["Location"]
    )
    with app.app_context():
        row = db.session.get(Response, rid)
        assert row is not None and (row.followup_status, row.followup_owner) == ("contacted", "Ann")
    assert "Call me" in admin.get("/dashboard?range=all&followup=contacted").get_data(as_text=True)
    assert "Call me" not in admin.get("/dashboard?range=all&followup=resolved").get_data(as_text=True)
    bad = {**form, "followup_status": "done", "csrf_token": csrf_from(admin, "/dashboard")}
    assert admin.post(f"/dashboard/responses/{rid}/followup", data=bad).status_code == 422
    missing = {**form, "csrf_token": csrf_from(admin, "/dashboard")}
    assert admin.post("/dashboard/responses/999999/followup", data=missing).status_code == 404


def test_dashboard_followup_notes_and_tags_saved_shown_escaped_and_validated(
    app: Flask, project: dict[str, Any]
) -> None:
    from survey_service.models import Response
    from survey_service.services.responses import record_response

    with app.app_context():
        response, _ = record_response(project["id"], {"email": "d@acme.test"}, 4, "Too slow")
        rid = response.id
    add_user(app, project["id"], "admin@acme.test", "admin")
    add_user(app, project["id"], "viewer@acme.test")
    admin = app.test_client()
    sign_in(admin, "admin@acme.test")
    html = admin.get("/dashboard?range=all").get_data(as_text=True)
    assert 'name="followup_notes"' in html and 'name="followup_tags"' in html
    form = {
        "followup_status": "contacted",
        "followup_owner": "Ann",
        "followup_notes": "Called <b>Tue</b>\r\nwill retry",
        "followup_tags": " pricing, churn-risk ,pricing,, ",
        "csrf_token": csrf_from(admin, "/dashboard"),
    }
    assert admin.post(f"/dashboard/responses/{rid}/followup", data=form).status_code == 302
    with app.app_context():
        row = db.session.get(Response, rid)
        assert row is not None
        assert (row.followup_notes, row.followup_tags) == (
            "Called <b>Tue</b>\nwill retry",
            ["pricing", "churn-risk"],
        )
    html = admin.get("/dashboard?range=all").get_data(as_text=True)
    assert "Called &lt;b&gt;Tue&lt;/b&gt;" in html and "<b>Tue</b>" not in html
    assert 'value="pricing, churn-risk"' in html
    viewer = app.test_client()
    sign_in(viewer, "viewer@acme.test")
    seen = viewer.get("/dashboard?range=all").get_data(as_text=True)
    assert '<span class="tag">churn-risk</span>' in seen and "Called &lt;b&gt;Tue&lt;/b&gt;" in seen
    bad = {**form, "followup_tags": "ok, <script>", "csrf_token": csrf_from(admin, "/dashboard")}
    res = admin.post(f"/dashboard/responses/{rid}/followup", data=bad)
    assert res.status_code == 422 and "Tags are 1-50 plain characters." in res.get_data(as_text=True)
    cleared = {
        **form,
        "followup_notes": "  ",
        "followup_tags": "",
        "csrf_token": csrf_from(admin, "/dashboard"),
    }
    assert admin.post(f"/dashboard/responses/{rid}/followup", data=cleared).status_code == 302
    with app.app_context():
        row = db.session.get(Response, rid)
        assert row is not None and (row.followup_notes, row.followup_tags) == (None, [])
