"""The dashboard's event sources page: each source, its URL, last received, recent failures; admins only."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.support.dashboard import add_user, sign_in
from tests.support.db import make_project
from tests.support.mail import flush_redis
from tests.support.sources import create_source, deliver, sample

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_sources_page_lists_url_last_received_and_recent_failures(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any]
) -> None:
    app.config["FROZEN_NOW"] = NOW
    flush_redis(app)
    stripe = create_source(client, auth, "stripe", name="Billing")
    quiet = create_source(client, auth, "zendesk")
    deliver(client, stripe, sample("stripe_invoice_upcoming.json"), NOW)
    deliver(client, stripe, sample("stripe_invoice_upcoming.json"), NOW, secret="whsec_wrong_one")
    other = make_project(app, "Other")
    create_source(client, {"Authorization": f"Bearer {other['secret_key']}"}, "segment", name="Not ours")

    add_user(app, project["id"], "admin@acme.example", "admin")
    browser = app.test_client()
    sign_in(browser, "admin@acme.example")
    res = browser.get("/dashboard/sources")
    html = res.get_data(as_text=True)
    assert res.status_code == 200
    rows = re.findall(r'<tr data-source-id="(\d+)">(.*?)</tr>', html, re.S)
    assert [int(source_id) for source_id, _ in rows] == [stripe["id"], quiet["id"]]
    stripe_row, quiet_row = rows[0][1], rows[1][1]
    assert stripe["url"] in stripe_row and "Billing" in stripe_row and "2026-03-02 15:00 UTC" in stripe_row
    assert "refused" in stripe_row and "no v1 signature matches" in stripe_row
    assert quiet["url"] in quiet_row and "never" in quiet_row and "none" in quiet_row
    assert "Not ours" not in html and stripe["signing_secret"] not in html


def test_sources_page_is_admins_only(app: Flask, project: dict[str, Any]) -> None:
    add_user(app, project["id"], "viewer@acme.example", "viewer")
    browser = app.test_client()
    sign_in(browser, "viewer@acme.example")
    assert browser.get("/dashboard/sources").status_code == 403
    assert app.test_client().get("/dashboard/sources").status_code in (302, 401)
