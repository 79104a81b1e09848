"""The emailed password reset: only with SMTP, the same answer for any email, one use, expiring, limited."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient

from survey_service.core.log_redaction import redact_tokens
from tests.support.dashboard import PASSWORD, add_user, csrf_from, sign_in
from tests.support.db import make_project
from tests.support.mail import run_worker_burst, smtp_server

NEW = "a brand new password"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _ask(client: FlaskClient, email: str) -> Any:
    token = csrf_from(client, "/forgot-password")
    return client.post("/forgot-password", data={"email": email, "csrf_token": token})


def _links(sink: Any) -> list[str]:
    return [
        path for m in sink.messages for path in re.findall(r"https?://[^/\s]+(/r/[^\s]+)", m.get_content())
    ]


def test_without_smtp_the_page_points_to_an_admin_and_the_cli(app: Flask, client: FlaskClient) -> None:
    app.config["SMTP_URL"] = None
    html = client.get("/forgot-password").get_data(as_text=True)
    assert "set-password EMAIL --project ID" in html and 'name="email"' not in html
    assert "Forgot your password?" in client.get("/login").get_data(as_text=True)


def test_reset_link_sets_a_new_password_once_and_ends_sessions(
    app: Flask, project: dict[str, Any], redis_url: str
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    app.config["FROZEN_NOW"] = NOW
    other = make_project(app, "Other")
    add_user(app, project["id"], "ann@acme.test", "admin")
    add_user(app, other["id"], "ann@acme.test", "viewer")
    signed_in = app.test_client()  # two projects, same password: signed in to the one chosen
    form = {"email": "ann@acme.test", "password": PASSWORD, "project": str(project["id"])}
    assert signed_in.post("/login", data={**form, "csrf_token": csrf_from(signed_in)}).status_code == 302
    assert signed_in.get("/dashboard").status_code == 200
    with smtp_server() as (sink, url):
        app.config["SMTP_URL"] = url
        client = app.test_client()
        known, unknown = _ask(client, "Ann@acme.test"), _ask(client, "nobody@acme.test")
        # The same answer whether or not the email has an account.
        assert known.status_code == unknown.status_code == 200
        assert known.get_data(as_text=True) == unknown.get_data(as_text=True)
        run_worker_burst(app)
    assert len(sink.messages) == 1 and sink.messages[0]["To"] == "ann@acme.test"
    links = _links(sink)
    assert len(links) == 2  # one per project of the email
    assert all(redact_tokens(link) == "/r/[redacted]" for link in links)

    page = client.get(links[0])
    assert page.status_code == 200 and 'name="password"' in page.get_data(as_text=True)
    token = csrf_from(client, links[0])
    mismatch = client.post(links[0], data={"password": NEW, "confirm": NEW + "x", "csrf_token": token})
    assert mismatch.status_code == 422
    weak = client.post(links[0], data={"password": "short", "confirm": "short", "csrf_token": token})
    assert weak.status_code == 422
    done = client.post(links[0], data={"password": NEW, "confirm": NEW, "csrf_token": token})
    assert done.status_code == 302 and "/login" in done.headers["Location"]
    # Used: the link stops working. The old password no longer opens that account.
    assert client.get(links[0]).status_code == 404
    token = csrf_from(client, "/login")  # the session was cleared
    again = client.post(links[0], data={"password": NEW + "2", "confirm": NEW + "2", "csrf_token": token})
    assert again.status_code == 404
    assert sign_in(app.test_client(), "ann@acme.test", NEW).status_code == 302
    assert signed_in.get("/dashboard").status_code == 302  # links[0] is the first project's (by name)

    # The second link expires after an hour.
    app.config["FROZEN_NOW"] = NOW + timedelta(hours=1)
    assert client.get(links[1]).status_code == 404
    app.config["FROZEN_NOW"] = NOW + timedelta(minutes=59)
    assert client.get(links[1]).status_code == 200
    tampered = links[1][:-3] + ("AAA" if not links[1].endswith("AAA") else "BBB")
    assert client.get(tampered).status_code == 404
    assert client.get("/r/not-a-token").status_code == 404
    assert sign_in(app.test_client(), "ann@acme.test", PASSWORD).status_code == 302  # the other account


def test_reset_requests_are_rate_limited_per_email_for_known_and_unknown_alike(
    app: Flask, project: dict[str, Any], redis_url: str
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    add_user(app, project["id"], "ann@acme.test", "admin")
    with smtp_server() as (sink, url):
        app.config["SMTP_URL"] = url
        client = app.test_client()
        for email in ("ann@acme.test", "nobody@acme.test"):
            answers = [_ask(client, email).status_code for _ in range(4)]
            assert answers == [200, 200, 200, 429], email
        run_worker_burst(app)
    assert len(sink.messages) == 3 and {m["To"] for m in sink.messages} == {"ann@acme.test"}
