"""Security checks: a two-tenant matrix over every route, rate limits, page headers, secrets in logs."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from survey_service.core import keys
from survey_service.extensions import Base, db, queues
from survey_service.models import SurveyRequest
from survey_service.services.projects import default_survey_id
from survey_service.services.users import create_user
from tests.support.db import empty_tables, make_project
from tests.support.env import ROOT, free_port
from tests.support.own_servers import running_redis

Expected = int | tuple[int, ...] | None
BODY_ID_REFUSED = 404  # another project's survey id in a body: the one survey lookup's 404
PASSWORD = "correct horse battery staple 42"
B_SECRETS = {  # what project B stores; none of it may ever reach project A
    "email": "bea@b-corp.example",
    "external_id": "b-user-7",
    "name": "Bea Secretname",
    "comment": "b-comment-only-b-may-read",
    "plan": "b-plan-value",
    "event": "b_private_event",
    "alert": "B alert rule",
    "unsubscribed": "b-unsub@b-corp.example",
    "bounced": "b-bounce@b-corp.example",
    "admin": "b-admin@b-corp.example",
    "source_secret": "whsec_b_source_secret_only_b_knows",
}


@dataclass
class Tenant:
    """A project's keys and the ids of what it owns."""

    keys: dict[str, Any]
    ids: dict[str, Any] = field(default_factory=dict)

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys['secret_key']}"}

    @property
    def basic(self) -> tuple[str, str]:
        return (self.keys["secret_key"], "")


def ok(res: Any, *statuses: int) -> Any:
    assert res.status_code in (statuses or (200, 201, 202)), (
        res.status_code,
        res.get_data(as_text=True)[:500],
    )
    return res.get_json()


def seed_tenant_b(app: Flask, client: FlaskClient) -> Tenant:
    """Project B with one of everything, made through its own API."""
    b = Tenant(make_project(app, "B Corp"))
    h, s = b.bearer, B_SECRETS
    person = {"external_id": s["external_id"], "email": s["email"], "name": s["name"]}
    b.ids["person"] = ok(
        client.post("/api/v1/people", json={**person, "properties": {"plan": s["plan"]}}, headers=h)
    )["id"]
    ref = {"external_id": s["external_id"]}
    body = {"person": ref, "score": 3, "comment": s["comment"]}
    b.ids["response"] = ok(client.post("/api/v1/responses", json=body, headers=h))["id"]
    rule = {"event_type": s["event"], "channel": "email", "delay_seconds": 86400}
    b.ids["trigger"] = ok(client.post("/api/v1/triggers", json=rule, headers=h))["id"]
    # A second person (the first just answered, so is in the quiet period) gets a scheduled ask.
    later = {"email": "bea-2@b-corp.example"}
    ok(client.post("/api/v1/events", json={"id": "b-evt-1", "type": s["event"], "person": later}, headers=h))
    alert = {"name": s["alert"], "target_url": "https://8.8.8.8/b-hook"}
    b.ids["alert_rule"] = ok(client.post("/api/v1/alert_rules", json=alert, headers=h))["id"]
    enrolment = {"person": ref, "interval_days": 90}
    b.ids["enrollment"] = ok(client.post("/api/v1/recurring", json=enrolment, headers=h))["id"]
    b.ids["request"] = ok(client.post("/api/v1/survey_links", json={"person": ref}, headers=h))["id"]
    theme = {"label": "B only", "keywords": ["b-corp widget"]}
    b.ids["theme"] = ok(client.post("/api/v1/themes", json=theme, headers=h))["id"]
    ok(client.post("/api/v1/unsubscribes", json={"email": s["unsubscribed"]}, headers=h))
    ok(client.post("/api/v1/bounces", json={"email": s["bounced"]}, headers=h))
    ok(client.patch("/api/v1/widget/settings", json={"sample_percent": 37}, headers=h))
    source = ok(
        client.post(
            "/api/v1/sources", json={"kind": "stripe", "signing_secret": s["source_secret"]}, headers=h
        )
    )
    b.ids["source"], b.ids["source_token"] = source["id"], source["url"].rsplit("/", 1)[1]
    review = {"label": "B reviews", "url": "https://reviews.b-corp.example/b"}
    ok(client.put("/api/v1/promoter_loop", json={"enabled": True, "targets": [review]}, headers=h))
    # A widget user of B who has not answered (a forced show opens no second answer in the quiet period).
    widget_user = s["external_id"] + "-widget"
    identify = {"key": b.keys["public_key"], "force": True, "user": {"id": widget_user}}
    identify["user"]["user_hash"] = keys.user_hash(b.keys["identity_secret"], widget_user)
    widget = ok(client.post("/api/widget/identify", data=json.dumps(identify), content_type="text/plain"))
    b.ids["widget_token"] = widget.get("token")
    with app.app_context():
        b.ids["admin_user"] = create_user(b.keys["id"], s["admin"], PASSWORD, "admin").id
        b.ids["survey"] = default_survey_id(b.keys["id"])
        b.ids["pending"] = db.session.scalar(
            select(SurveyRequest.id).where(
                SurveyRequest.project_id == b.keys["id"], SurveyRequest.status == "scheduled"
            )
        )
    assert b.ids["widget_token"] and b.ids["pending"]
    return b


def snapshot(app: Flask, project_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table that belongs to the project (and the project itself)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    with app.app_context():
        for table in Base.metadata.sorted_tables:
            column = table.c.get("project_id") if table.name != "projects" else table.c.id
            if column is None:
                continue
            result = db.session.execute(
                select(table).where(column == project_id).order_by(*table.primary_key)
            )
            rows[table.name] = [dict(r._mapping) for r in result]
        db.session.rollback()
    return rows


def signed_in(app: Flask, email: str) -> tuple[FlaskClient, str]:
    """A client signed in to the dashboard as email, and its CSRF token."""
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token
    res = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)})
    assert res.status_code == 302, res.get_data(as_text=True)[:300]
    html = client.get("/dashboard").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token
    return client, token.group(1)


# Routes with no tenant in them: nothing to cross (tokens name one request; checked in test_properties).
NO_TENANT = {
    "/",
    "/docs/api",
    "/favicon.ico",
    "/healthz",
    "/openapi.json",
    "/widget.js",
    "/widget.<version>.js",
    "/demo",
    "/demo/<any('demo.js', 'demo.css'):name>",
    "/static/<path:filename>",
    "/login",
    "/logout",
    "/s/<token>",
    "/u/<token>",
    "/o/<token>.gif",
    "/forgot-password",
    "/r/<token>",
}


def matrix_calls(b: Tenant, a: Tenant) -> list[tuple[str, str, str, dict[str, Any], Expected]]:
    """(method, rule, path, request kwargs, expected status or None) for project A against B's things.

    Expected 404: a path naming one of B's ids (in a body too: "no such survey in this project").
    None: any answer but 5xx, 401 and 403. Every call must also carry none of B's data back and
    change none of B's rows.
    """
    i, s = b.ids, B_SECRETS
    ref_b = {"person": {"external_id": s["external_id"]}}
    v1 = "/api/v1"
    a_public_key = a.keys["public_key"]
    a_user = {
        "id": s["external_id"],
        "user_hash": keys.user_hash(a.keys["identity_secret"], s["external_id"]),
    }
    widget_answer = {"key": a_public_key, "token": i["widget_token"], "score": 10, "comment": "x"}
    calls: list[tuple[str, str, str, dict[str, Any], Expected]] = [
        ("GET", f"{v1}/people/<int:person_id>", f"{v1}/people/{i['person']}", {}, 404),
        ("GET", f"{v1}/responses/<int:response_id>", f"{v1}/responses/{i['response']}", {}, 404),
        # Looking B's people up by their email or external id finds none of A's (and none of B's).
        ("GET", f"{v1}/people", f"{v1}/people?email={s['email']}", {}, None),
        ("GET", f"{v1}/people", f"{v1}/people?external_id={s['external_id']}", {}, None),
        ("DELETE", f"{v1}/people/<int:person_id>", f"{v1}/people/{i['person']}", {}, 404),
        ("GET", f"{v1}/people/<int:person_id>/export", f"{v1}/people/{i['person']}/export", {}, 404),
        (
            "DELETE",
            f"{v1}/people/<int:person_id>/survey_requests/pending",
            f"{v1}/people/{i['person']}/survey_requests/pending",
            {},
            404,
        ),
        (
            "PATCH",
            f"{v1}/responses/<int:response_id>",
            f"{v1}/responses/{i['response']}",
            {"json": {"followup_status": "resolved"}},
            404,
        ),
        ("GET", f"{v1}/triggers/<int:rule_id>", f"{v1}/triggers/{i['trigger']}", {}, 404),
        (
            "PATCH",
            f"{v1}/triggers/<int:rule_id>",
            f"{v1}/triggers/{i['trigger']}",
            {"json": {"enabled": False}},
            404,
        ),
        ("DELETE", f"{v1}/triggers/<int:rule_id>", f"{v1}/triggers/{i['trigger']}", {}, 404),
        ("GET", f"{v1}/alert_rules/<int:rule_id>", f"{v1}/alert_rules/{i['alert_rule']}", {}, 404),
        (
            "PATCH",
            f"{v1}/alert_rules/<int:rule_id>",
            f"{v1}/alert_rules/{i['alert_rule']}",
            {"json": {"enabled": False}},
            404,
        ),
        ("DELETE", f"{v1}/alert_rules/<int:rule_id>", f"{v1}/alert_rules/{i['alert_rule']}", {}, 404),
        (
            "GET",
            f"{v1}/alert_rules/<int:rule_id>/deliveries",
            f"{v1}/alert_rules/{i['alert_rule']}/deliveries",
            {},
            404,
        ),
        ("DELETE", f"{v1}/recurring/<int:enrollment_id>", f"{v1}/recurring/{i['enrollment']}", {}, 404),
        # Surveys and their reminder plans: B's survey is neither readable nor writable with A's key.
        ("GET", f"{v1}/surveys/<int:survey_id>", f"{v1}/surveys/{i['survey']}", {}, 404),
        (
            "PATCH",
            f"{v1}/surveys/<int:survey_id>",
            f"{v1}/surveys/{i['survey']}",
            {"json": {"reminders": {"count": 3, "delays_seconds": [3600]}}},
            404,
        ),
        ("GET", f"{v1}/survey_requests/<int:request_id>", f"{v1}/survey_requests/{i['request']}", {}, 404),
        ("GET", f"{v1}/themes/<int:theme_id>", f"{v1}/themes/{i['theme']}", {}, 404),
        ("PATCH", f"{v1}/themes/<int:theme_id>", f"{v1}/themes/{i['theme']}", {"json": {"label": "A"}}, 404),
        ("DELETE", f"{v1}/themes/<int:theme_id>", f"{v1}/themes/{i['theme']}", {}, 404),
        (
            "POST",
            f"{v1}/themes/<int:theme_id>/merge",
            f"{v1}/themes/{i['theme']}/merge",
            {"json": {"into": i["theme"]}},
            404,
        ),
        ("POST", f"{v1}/themes", f"{v1}/themes", {"json": {"label": "A's", "keywords": ["a"]}}, None),
        ("POST", f"{v1}/themes/suggestions", f"{v1}/themes/suggestions", {"json": {"phrase": "a b"}}, None),
        # Ids of B inside a body: B's survey is not A's to use.
        (
            "POST",
            f"{v1}/survey_links",
            f"{v1}/survey_links",
            {"json": {**ref_b, "survey_id": i["survey"]}},
            BODY_ID_REFUSED,
        ),
        (
            "POST",
            f"{v1}/survey_requests",
            f"{v1}/survey_requests",
            {"json": {"person": {"email": s["email"]}, "survey_id": i["survey"]}},
            BODY_ID_REFUSED,
        ),
        (
            "POST",
            f"{v1}/recurring",
            f"{v1}/recurring",
            {"json": {**ref_b, "interval_days": 30, "survey_id": i["survey"]}},
            BODY_ID_REFUSED,
        ),
        # Writes naming B's people by email or external id act on A's own people only.
        (
            "POST",
            f"{v1}/people",
            f"{v1}/people",
            {"json": {"external_id": s["external_id"], "name": "A's"}},
            None,
        ),
        ("POST", f"{v1}/responses", f"{v1}/responses", {"json": {**ref_b, "score": 10}}, None),
        (
            "POST",
            f"{v1}/events",
            f"{v1}/events",
            {"json": {"id": "b-evt-1", "type": s["event"], **ref_b}},
            None,
        ),
        (
            "POST",
            f"{v1}/triggers",
            f"{v1}/triggers",
            {"json": {"event_type": s["event"], "channel": "email", "delay_seconds": 0}},
            None,
        ),
        (
            "POST",
            f"{v1}/alert_rules",
            f"{v1}/alert_rules",
            {"json": {"name": "A", "target_url": "https://8.8.8.8/a"}},
            None,
        ),
        ("POST", f"{v1}/unsubscribes", f"{v1}/unsubscribes", {"json": {"email": s["email"]}}, None),
        ("POST", f"{v1}/bounces", f"{v1}/bounces", {"json": {"email": s["email"]}}, None),
        ("PATCH", f"{v1}/project", f"{v1}/project", {"json": {"quiet_period_days": 1}}, None),
        ("PATCH", f"{v1}/widget/settings", f"{v1}/widget/settings", {"json": {"sample_percent": 1}}, None),
        # Event sources: B's by id are not found; A's own are A's.
        ("POST", f"{v1}/sources", f"{v1}/sources", {"json": {"kind": "segment"}}, None),
        ("GET", f"{v1}/sources/<int:source_id>", f"{v1}/sources/{i['source']}", {}, 404),
        (
            "PATCH",
            f"{v1}/sources/<int:source_id>",
            f"{v1}/sources/{i['source']}",
            {"json": {"enabled": False}},
            404,
        ),
        ("DELETE", f"{v1}/sources/<int:source_id>", f"{v1}/sources/{i['source']}", {}, 404),
        (
            "POST",
            f"{v1}/sources/<int:source_id>/rotate_secret",
            f"{v1}/sources/{i['source']}/rotate_secret",
            {"json": {"signing_secret": "whsec_chosen_by_a"}},
            404,
        ),
        # B's source URL, as anyone may post to it: without B's secret nothing is recorded (401).
        (
            "POST",
            "/sources/<token>",
            f"/sources/{i['source_token']}",
            {
                "data": json.dumps({"id": "evt_forged", "object": "event"}),
                "headers": {"Stripe-Signature": "t=1,v1=00"},
            },
            401,
        ),
        # The promoter loop: B's survey is not A's to configure or read; A's own settings touch nothing of B.
        (
            "PUT",
            f"{v1}/promoter_loop",
            f"{v1}/promoter_loop",
            {"json": {"survey_id": i["survey"], "enabled": False, "targets": []}},
            BODY_ID_REFUSED,
        ),
        (
            "PUT",
            f"{v1}/promoter_loop",
            f"{v1}/promoter_loop",
            {"json": {"enabled": True, "targets": [{"label": "A", "url": "https://a.example/r"}]}},
            None,
        ),
        ("GET", f"{v1}/promoter_loop", f"{v1}/promoter_loop?survey_id={i['survey']}", {}, 404),
        ("GET", f"{v1}/promoter_loop", f"{v1}/promoter_loop", {}, None),
        ("DELETE", f"{v1}/promoter_loop", f"{v1}/promoter_loop?survey_id={i['survey']}", {}, 404),
        # Its pages take a signed token only (the response it names): a forged one is refused.
        ("POST", "/review/<token>", "/review/forged-consent-token", {}, 404),
        ("GET", "/review/go/<token>", "/review/go/forged-link-token", {}, 404),
        # Lists and reports: A's (empty) data only.
        *(
            ("GET", f"{v1}/{p.partition('?')[0]}", f"{v1}/{p}", {}, None)
            for p in (
                "alert_rules",
                "bounces",
                "unsubscribes",
                "exports/promoters.csv",
                "exports/responses.csv",
                "exports/responses.jsonl",
                "jobs/failed",
                "project",
                "recurring",
                "reports/funnel",
                "reports/nps?group_by=plan",
                "reports/nps?group_by=theme",
                "reports/response_rates/steps?campaign=q1",
                "reports/themes?trend=true&group_by=plan",
                "reports/sentiment",
                "responses",
                "themes",
                "themes/suggestions",
                "sources",
                "survey_requests",
                "surveys",
                "trigger_templates",
                "triggers",
                "widget/dismissals",
                "widget/settings",
            )
        ),
        # The widget: A's public key never reaches B's people or B's widget tokens.
        ("POST", "/api/widget/answer", "/api/widget/answer", {"data": json.dumps(widget_answer)}, 404),
        (
            "POST",
            "/api/widget/dismiss",
            "/api/widget/dismiss",
            {"data": json.dumps({"key": a_public_key, "token": i["widget_token"]})},
            404,
        ),
        (
            "POST",
            "/api/widget/identify",
            "/api/widget/identify",
            {"data": json.dumps({"key": a_public_key, "force": True, "user": a_user})},
            None,
        ),
    ]
    # The Delighted-compatible API (HTTP Basic), each route with and without ".json".
    for suffix in ("", ".json"):
        d = "/v1"
        calls += [
            (
                "GET",
                f"{d}/survey_responses/<int:response_id>{suffix}",
                f"{d}/survey_responses/{i['response']}{suffix}",
                {},
                404,
            ),
            (
                "PUT",
                f"{d}/survey_responses/<int:response_id>{suffix}",
                f"{d}/survey_responses/{i['response']}{suffix}",
                {"data": {"comment": "overwritten by A"}},
                404,
            ),
            (
                "POST",
                f"{d}/people{suffix}",
                f"{d}/people{suffix}",
                {"data": {"email": s["email"], "send": "false"}},
                None,
            ),
            (
                "POST",
                f"{d}/survey_responses{suffix}",
                f"{d}/survey_responses{suffix}",
                {"data": {"person": str(i["person"]), "score": "10"}},
                404,
            ),
            (
                "POST",
                f"{d}/unsubscribes{suffix}",
                f"{d}/unsubscribes{suffix}",
                {"data": {"person_email": s["email"]}},
                None,
            ),
            (
                "POST",
                f"{d}/autopilot/email/memberships{suffix}",
                f"{d}/autopilot/email/memberships{suffix}",
                {"data": {"person_email": s["email"]}},
                None,
            ),
            (
                "DELETE",
                f"{d}/autopilot/email/memberships{suffix}",
                f"{d}/autopilot/email/memberships{suffix}",
                {"data": {"person_email": s["email"]}},
                None,
            ),
            *(
                ("GET", f"{d}/{p}{suffix}", f"{d}/{p}{suffix}", {}, None)
                for p in (
                    "people",
                    "survey_responses",
                    "unsubscribes",
                    "bounces",
                    "metrics",
                    "autopilot/email",
                    "autopilot/email/memberships",
                )
            ),
        ]
    calls += [
        ("DELETE", "/v1/people/<path:identifier>", f"/v1/people/{s['email']}", {}, 404),
        (
            "DELETE",
            "/v1/people/<path:email>/survey_requests/pending",
            f"/v1/people/{s['email']}/survey_requests/pending",
            {},
            None,
        ),
        (
            "DELETE",
            "/v1/people/<path:email>/survey_requests/pending.json",
            f"/v1/people/{s['email']}/survey_requests/pending.json",
            {},
            None,
        ),
    ]
    return calls


def dashboard_calls(b: Tenant) -> list[tuple[str, str, str, dict[str, Any], Expected]]:
    """The dashboard, signed in as A's admin."""
    rid, uid = b.ids["response"], b.ids["admin_user"]
    origin = f"survey_id={b.ids['survey']}&trigger_id={b.ids['trigger']}"
    return [
        ("GET", "/dashboard", "/dashboard?range=all", {}, None),
        ("GET", "/dashboard/users", "/dashboard/users", {}, None),
        (
            "POST",
            "/dashboard/users",
            "/dashboard/users",
            {"data": {"email": B_SECRETS["admin"], "role": "viewer"}},
            None,
        ),
        # B's team member as A's admin: never found, never changed.
        *(
            (
                "POST",
                f"/dashboard/users/<int:member_id>/{action}",
                f"/dashboard/users/{uid}/{action}",
                data,
                404,
            )
            for action, data in (
                ("role", {"data": {"role": "viewer"}}),
                ("password", {"data": {"password": "a new password of A"}}),
                ("remove", {"data": {}}),
            )
        ),
        # A's own keys (the rotations touch nothing of B's; the snapshot of B checks it).
        *(
            ("POST", path, path, {"data": {"overlap_hours": "1"}}, None)
            for path in ("/dashboard/keys/secret-key", "/dashboard/keys/identity-secret")
        ),
        ("GET", "/dashboard/account", "/dashboard/account", {}, None),
        ("GET", "/dashboard/sources", "/dashboard/sources", {}, None),
        # Themes: A's admin adds A's own; B's theme by id is never found, never changed.
        ("GET", "/dashboard/themes", "/dashboard/themes", {}, None),
        (
            "POST",
            "/dashboard/themes",
            "/dashboard/themes",
            {"data": {"label": "A dash", "keywords": "a"}},
            None,
        ),
        (
            "POST",
            "/dashboard/themes/suggestions",
            "/dashboard/themes/suggestions",
            {"data": {"phrase": "a phrase"}},
            None,
        ),
        *(
            (
                "POST",
                f"/dashboard/themes/<int:theme_id>/{action}",
                f"/dashboard/themes/{b.ids['theme']}/{action}",
                data,
                404,
            )
            for action, data in (
                ("edit", {"data": {"label": "A", "keywords": "a"}}),
                ("enabled", {"data": {"enabled": "false"}}),
                ("merge", {"data": {"into": str(b.ids["theme"])}}),
            )
        ),
        (
            "POST",
            "/dashboard/account",
            "/dashboard/account",
            {"data": {"current_password": "wrong", "password": "x" * 12, "confirm": "x" * 12}},
            403,
        ),
        *(
            ("GET", "/dashboard/exports/<name>", f"/dashboard/exports/{name}?range=all", {}, None)
            for name in ("responses.csv", "responses.jsonl", "promoters.csv")
        ),
        # B's survey and trigger rule as A's filters: dropped on the page, refused by the exports.
        ("GET", "/dashboard", f"/dashboard?range=all&{origin}", {}, None),
        *(
            ("GET", "/dashboard/exports/<name>", f"/dashboard/exports/{name}?range=all&{origin}", {}, 400)
            for name in ("responses.csv", "responses.jsonl", "promoters.csv")
        ),
        (
            "POST",
            "/dashboard/responses/<int:response_id>/followup",
            f"/dashboard/responses/{rid}/followup",
            {"data": {"followup_status": "resolved"}},
            404,
        ),
    ]


def test_two_tenants_every_route_never_crosses_from_a_to_b(app: Flask, client: FlaskClient) -> None:
    a = Tenant(make_project(app, "A Inc"))
    b = seed_tenant_b(app, client)
    with app.app_context():
        create_user(a.keys["id"], "a-admin@a.example", PASSWORD, "admin")
    before = snapshot(app, b.keys["id"])
    dashboard, csrf = signed_in(app, "a-admin@a.example")
    api = matrix_calls(b, a)
    pages = dashboard_calls(b)

    every = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        if rule.rule not in NO_TENANT
    }
    covered = {(method, rule) for method, rule, *_ in api + pages}
    assert covered == every, {"not in the matrix": every - covered, "not a route": covered - every}

    # B's values that A itself sends (to try to reach B's people) may come back as A's own data.
    sent = json.dumps([[path, kwargs] for _, _, path, kwargs, _ in api + pages])
    secrets_of_b = [
        *B_SECRETS.values(),
        b.keys["secret_key"],
        b.keys["public_key"],
        b.keys["identity_secret"],
    ]
    secrets_of_b = [secret for secret in secrets_of_b if secret not in sent]
    assert len(secrets_of_b) >= 8
    for calls, caller in ((api, client), (pages, dashboard)):
        for method, rule, path, kwargs, expected in calls:
            if caller is dashboard and method == "POST":
                kwargs = {"data": {**kwargs["data"], "csrf_token": csrf}}
            elif rule.startswith("/v1/"):
                kwargs = {**kwargs, "auth": a.basic}
            elif rule.startswith("/api/v1/"):
                kwargs = {**kwargs, "headers": a.bearer}
            else:
                kwargs = {**kwargs, "content_type": "text/plain"}
            res = caller.open(path, method=method, **kwargs)
            text = res.get_data(as_text=True)
            where = f"{method} {path} -> {res.status_code}: {text[:300]}"
            if expected is not None:
                assert res.status_code in (expected if isinstance(expected, tuple) else (expected,)), where
            else:
                assert res.status_code < 500 and res.status_code not in (401, 403), where
            leaked = [secret for secret in secrets_of_b if secret in text]
            assert not leaked, (where, leaked)
    assert snapshot(app, b.keys["id"]) == before  # no write crossed


@pytest.fixture
def limited_app(migrated: dict[str, Any]) -> Iterator[Flask]:
    """The app with limits of 2 requests per window, on counters no other test has touched."""
    from survey_service import create_app

    prefix = f"survey-limits-test-{free_port()}"
    app = create_app(
        {
            **migrated,
            "PUBLIC_RATE_LIMIT": "2 per minute",
            "WIDGET_RATE_LIMIT": "2 per minute",
            "DELIGHTED_RATE_LIMIT": 2,
            "RATELIMIT_KEY_PREFIX": prefix,
        }
    )
    with app.app_context():
        empty_tables()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_rate_limits_answer_429_with_retry_after(limited_app: Flask) -> None:
    app, prefix = limited_app, limited_app.config["RATELIMIT_KEY_PREFIX"]
    project = make_project(app, "Limits")
    client = app.test_client()
    widget = json.dumps({"key": project["public_key"], "user": {"id": "u"}})
    limited: dict[str, Callable[[], TestResponse]] = {
        "public survey page": lambda: client.get("/s/not-a-token"),
        "review link": lambda: client.get("/review/go/not-a-token"),
        "widget API": lambda: client.post("/api/widget/identify", data=widget, content_type="text/plain"),
        "Delighted API": lambda: client.get("/v1/metrics.json", auth=(project["secret_key"], "")),
    }
    for name, call in limited.items():
        statuses = [call().status_code for _ in range(2)]
        assert 429 not in statuses, (name, statuses)
        res = call()
        assert res.status_code == 429, (name, res.status_code)
        assert int(res.headers["Retry-After"]) > 0, name
        if res.mimetype == "application/json":
            assert res.get_json()["code"] == "rate_limited", name

    # Sign-in: repeated wrong passwords for one email are locked out for a while.
    email = f"{prefix}@a.example"
    try:
        for _ in range(30):
            html = client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf_token" value="([^"]+)"', html)
            assert token
            res = client.post(
                "/login", data={"email": email, "password": "nope", "csrf_token": token.group(1)}
            )
            if res.status_code == 429:
                break
    finally:
        with app.app_context():  # the counters outlive the test: leave other sign-ins unaffected
            for key in queues().redis.scan_iter("login-fail:*"):
                queues().redis.delete(key)
    assert res.status_code == 429
    assert int(res.headers["Retry-After"]) > 0


@pytest.mark.process
def test_secrets_never_reach_the_logs(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with running_redis(password="redis-pass-Rv19") as own_redis:
        app = check_logs_free_of_secrets(postgres_url, own_redis.url, tmp_path, caplog)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def check_logs_free_of_secrets(
    postgres_url: str, redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> Flask:
    """Run API calls, CLI commands and worker jobs with secrets everywhere; grep what was logged."""
    from flask_migrate import upgrade

    from survey_service import create_app, jobs

    db_password, smtp_password, secret_key = "db-pass-Zq81", "smtp-pass-Wx42", "secret-key-Kp73"
    database_url = postgres_url.replace("postgres@", f"postgres:{db_password}@", 1)  # trust: ignored
    smtp_url = f"smtp://mailer:{smtp_password}@127.0.0.1:{free_port()}"  # nobody listens: delivery fails
    config = {
        "TESTING": True,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": str(tmp_path),
        "REDIS_URL": redis_url,
        "SMTP_URL": smtp_url,
        "BASE_URL": "http://survey.test",
    }
    caplog.set_level(logging.INFO)  # the production level (create_app's basicConfig)
    app = create_app(config)
    with app.app_context():
        upgrade()
        empty_tables()
    runner, client = app.test_cli_runner(), app.test_client()

    # CLI: create-project prints its keys once, on purpose; nothing else may carry them.
    created = runner.invoke(args=["create-project", "Logs"])
    assert created.exit_code == 0, created.output
    project = json.loads(created.output)
    user = runner.invoke(
        args=["create-user", "ops@logs.example", "--project", str(project["id"]), "--role", "admin"],
        input=PASSWORD + "\n",
    )
    other_output = [user.output]
    for args in (["relay"], ["failed-jobs"], ["anonymise-comments", "--older-than-days", "1"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
        other_output.append(result.output)

    # API calls, right and wrong keys, sign-in, the widget with a wrong hash.
    auth = {"Authorization": f"Bearer {project['secret_key']}"}
    person = {"email": "ann@logs.example", "external_id": "ann"}
    ok(client.post("/api/v1/responses", json={"person": person, "score": 2, "comment": "hm"}, headers=auth))
    asked = {"person": person, "force": True}  # Ann just answered: past the quiet period on purpose
    request_id = ok(client.post("/api/v1/survey_requests", json=asked, headers=auth))["id"]
    ok(client.get("/api/v1/responses", headers={"Authorization": "Bearer sk_wrong"}), 401)
    ok(client.get("/v1/metrics.json", auth=(project["secret_key"], "")))
    signed_in(app, "ops@logs.example")
    widget = {"key": project["public_key"], "user": {"id": "ann", "user_hash": "0" * 64}}
    ok(client.post("/api/widget/identify", data=json.dumps(widget), content_type="text/plain"), 403)

    # Worker jobs: in-process (delivery fails, the failure is logged) and a real worker process.
    with app.app_context(), pytest.raises(Exception):  # noqa: B017 (a temporary failure re-raises)
        jobs.send_survey_email(request_id)
    with app.app_context():
        db.session.remove()
    with app.app_context():
        db.engine.dispose()
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SMTP_URL": smtp_url,
        "SECRET_KEY": secret_key,
        "INSTANCE_PATH": str(tmp_path),
    }
    ok(client.post("/api/v1/survey_requests", json={"person": {"email": "bo@logs.example"}}, headers=auth))
    worker = subprocess.run(
        [Path(sys.executable).parent / "survey-service", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "send_survey_email" in worker.stdout + worker.stderr  # the job really ran there

    logs = "\n".join([caplog.text, *other_output, worker.stdout, worker.stderr])
    secrets = {
        "secret key": project["secret_key"],
        "identity secret": project["identity_secret"],
        "SECRET_KEY": secret_key,
        "dashboard password": PASSWORD,
        "SMTP password": smtp_password,
        "database password": db_password,
        "Redis password": "redis-pass-Rv19",
    }
    leaked = {name: value for name, value in secrets.items() if value in logs}
    assert not leaked, leaked
    assert "delivery failure" in logs  # the failures were logged, without their secrets
    return app


def test_pages_carry_csp_frame_ancestors_referrer_policy_and_nosniff(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    with app.app_context():
        create_user(project["id"], "pages@a.example", PASSWORD, "admin")
    links = ok(client.post("/api/v1/survey_links", json={"person": {"email": "p@a.example"}}, headers=auth))
    landing = links["score_urls"]["9"].removeprefix(app.config["BASE_URL"])
    dashboard, _ = signed_in(app, "pages@a.example")
    pages = {
        "/": client,
        "/docs/api": client,
        "/login": client,
        "/forgot-password": client,
        "/demo": client,
        landing: client,
        links["url"].removeprefix(app.config["BASE_URL"]): client,
        "/s/not-a-valid-token": client,
        "/dashboard": dashboard,
        "/dashboard/users": dashboard,
        "/dashboard/themes": dashboard,
    }
    demo = Path(app.instance_path) / "demo_project.json"  # as `make run` writes it; shared: removed after
    demo.write_text(json.dumps(project))
    try:
        answers = {path: caller.get(path) for path, caller in pages.items()}
    finally:
        demo.unlink()
    for path, res in answers.items():
        assert res.mimetype == "text/html", (path, res.status_code)
        csp = res.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp, (path, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, (path, csp)
        assert res.headers.get("X-Content-Type-Options") == "nosniff", path
        assert res.headers.get("Referrer-Policy") in ("no-referrer", "same-origin", "strict-origin"), path
        # Inline script and style run only with this response's nonce.
        html = res.get_data(as_text=True)
        nonce = re.search(r"'nonce-([^']+)'", csp)
        for tag in re.findall(r"<(?:script|style)\b[^>]*>", html):
            if "src=" in tag:
                continue
            assert nonce and f'nonce="{nonce.group(1)}"' in tag, (path, tag, csp)


# --- sec-low: /api/v1 rate limits per project, production configuration (secret key, Secure cookie, HSTS) ---


# A window this long never ends between a test's requests (a window starts at its first request).
ONE_WINDOW = {"API_RATE_WINDOW": 10**9}


@pytest.fixture
def api_limited_app(migrated: dict[str, Any]) -> Iterator[Flask]:
    """The app with /api/v1 limits of 3 requests (2 for exports and reports) per window."""
    from survey_service import create_app

    app = create_app({**migrated, **ONE_WINDOW, "API_RATE_LIMIT": 3, "API_EXPORT_RATE_LIMIT": 2})
    with app.app_context():
        empty_tables()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def response_count(app: Flask, project_id: int) -> int:
    from sqlalchemy import func

    from survey_service.models import Response

    with app.app_context():
        return int(db.session.scalar(select(func.count()).where(Response.project_id == project_id)) or 0)


def test_api_rate_limit_over_limit_is_429_in_error_shape_per_project(api_limited_app: Flask) -> None:
    app = api_limited_app
    a, b = Tenant(make_project(app, "A Inc")), Tenant(make_project(app, "B Corp"))
    client = app.test_client()
    body = {"person": {"email": "p@a.example"}, "score": 9}
    for _ in range(3):
        ok(client.post("/api/v1/responses", json=body, headers=a.bearer))
    res = client.post("/api/v1/responses", json=body, headers=a.bearer)
    assert res.status_code == 429
    error = res.get_json()
    assert set(error) == {"status", "code", "message", "details"}
    assert error["status"] == 429 and error["code"] == "rate_limited"
    assert 1 <= int(res.headers["Retry-After"]) <= 10**9 + 1
    assert response_count(app, a.keys["id"]) == 3  # the refused request recorded nothing
    # HTTP Basic with the same key counts against the same project; another project has its own count.
    assert client.get("/api/v1/responses", auth=a.basic).status_code == 429
    ok(client.post("/api/v1/responses", json=body, headers=b.bearer))


def test_api_rate_limit_exports_and_reports_have_their_own_tighter_limit(api_limited_app: Flask) -> None:
    app = api_limited_app
    a = Tenant(make_project(app, "A Inc"))
    client = app.test_client()
    for path in ("/api/v1/reports/nps", "/api/v1/exports/responses.csv"):
        assert client.get(path, headers=a.bearer).status_code == 200
    res = client.get("/api/v1/reports/nps", headers=a.bearer)
    assert res.status_code == 429 and res.get_json()["code"] == "rate_limited"
    assert int(res.headers["Retry-After"]) > 0
    ok(client.post("/api/v1/people", json={"email": "p@a.example"}, headers=a.bearer))  # other budget


@pytest.mark.process
def test_api_rate_limit_redis_down_counts_in_memory_and_logs(
    migrated: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Redis killed mid-run: answers keep being recorded, and the limit still holds, counted in memory."""
    from survey_service import create_app

    body = {"person": {"email": "p@a.example"}, "score": 9}
    with running_redis() as own:
        app = create_app({**migrated, **ONE_WINDOW, "REDIS_URL": own.url, "API_RATE_LIMIT": 2})
        with app.app_context():
            empty_tables()
        a = Tenant(make_project(app, "A Inc"))
        client = app.test_client()
        for _ in range(2):
            ok(client.post("/api/v1/responses", json=body, headers=a.bearer))
        assert client.post("/api/v1/responses", json=body, headers=a.bearer).status_code == 429
        own.kill()
        with caplog.at_level(logging.WARNING, logger="survey_service.core.ratelimit"):
            for _ in range(2):  # answers keep being recorded while Redis is down, up to the limit
                ok(client.post("/api/v1/responses", json=body, headers=a.bearer), 201)
            res = client.post("/api/v1/responses", json=body, headers=a.bearer)
    assert res.status_code == 429 and res.get_json()["code"] == "rate_limited"
    assert "rate limits: Redis is unavailable; counting in this process's memory" in caplog.text
    assert response_count(app, a.keys["id"]) == 4
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


STRONG_KEY = "k7Vq2pXn9LmR4tYw8ZcB1dF6gH3jK5sA0eU"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SECRET_KEY": "x"}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": "ab" * 20}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": "change-me-to-a-long-random-string"}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": STRONG_KEY, "SECRET_KEY_FALLBACKS": f"{STRONG_KEY}x,short"}, "FALLBACKS is too weak"),
    ],
)
def test_production_config_weak_secret_key_fails_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    from survey_service.config import ConfigError, load_config

    monkeypatch.setenv("SURVEY_ENV", "production")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_config({"INSTANCE_PATH": str(tmp_path)})


def test_production_config_strong_secret_key_is_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from survey_service.config import load_config

    monkeypatch.setenv("SURVEY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    assert load_config({"INSTANCE_PATH": str(tmp_path)})["SECRET_KEY"] == STRONG_KEY


def test_production_http_base_url_still_secure_cookie_and_hsts(
    migrated: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from survey_service import create_app

    monkeypatch.setenv("SURVEY_ENV", "production")
    monkeypatch.setenv("BASE_URL", "http://survey.test")
    app = create_app(dict(migrated))
    try:
        assert app.config["SESSION_COOKIE_SECURE"] is True
        client = app.test_client()
        health, login = client.get("/healthz"), client.get("/login")
        for res in (health, login):
            assert res.headers.get("Strict-Transport-Security", "").startswith("max-age="), res.request.path
        set_cookie = login.headers.get("Set-Cookie", "")
        assert "session=" in set_cookie and "Secure" in set_cookie, set_cookie
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize(("base_url", "hsts"), [("http://survey.test", False), ("https://nps.example", True)])
def test_development_hsts_only_for_an_https_base_url(
    migrated: dict[str, Any], base_url: str, hsts: bool
) -> None:
    from survey_service import create_app

    app = create_app({**migrated, "BASE_URL": base_url})
    try:
        res = app.test_client().get("/healthz")
        assert ("Strict-Transport-Security" in res.headers) is hsts
        assert app.config["SESSION_COOKIE_SECURE"] is hsts
    finally:
        with app.app_context():
            db.engine.dispose()


# --- sec-auth: link tokens kept out of logs; survey-page limits keyed per link ---


def token_links(app: Flask, project_id: int, email: str = "ann@links.example") -> dict[str, str]:
    """The paths of a fresh survey request's landing, unsubscribe and open-pixel links, and its token(s)."""
    from survey_service.core import tokens
    from survey_service.services import email_requests
    from survey_service.services.people import upsert_person

    with app.app_context():
        person, _ = upsert_person(project_id, {"email": email})
        db.session.commit()
        request = email_requests.create_email_request(project_id, person.id)
        links = email_requests.survey_links(request)
        pixel = tokens.open_pixel_token(request.id)
    base = app.config["BASE_URL"]
    return {
        "landing": links["score_urls"]["9"].removeprefix(base),
        "unsubscribe": links["unsubscribe_url"].removeprefix(base),
        "pixel": f"/o/{pixel}.gif",
    }


def token_of(path: str) -> str:
    return path.split("?")[0].rsplit("/", 1)[1].removesuffix(".gif")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('127.0.0.1 "GET /s/eyJh.b-c_d HTTP/1.1" 200', '127.0.0.1 "GET /s/[redacted] HTTP/1.1" 200'),
        ("GET /s/abc.def?score=9", "GET /s/[redacted]?score=9"),
        ("POST /u/WzEyXQ.sig-nature", "POST /u/[redacted]"),
        ("/o/WzEyXQ.sig.gif", "/o/[redacted]"),
        ("see https://nps.example/s/tok.en?score=3 and <https://nps.example/u/tok2>", None),
        ("GET /api/v1/responses?cursor=abc 200", "GET /api/v1/responses?cursor=abc 200"),
        ("GET /static/app.css", "GET /static/app.css"),
    ],
)
def test_redact_tokens_link_paths_become_redacted(line: str, expected: str | None) -> None:
    from survey_service.core.log_redaction import redact_tokens

    redacted = redact_tokens(line)
    if expected is None:
        assert (
            redacted == "see https://nps.example/s/[redacted]?score=3 and <https://nps.example/u/[redacted]>"
        )
    else:
        assert redacted == expected


def test_log_records_token_in_message_or_traceback_are_redacted(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """Any logger, once the app exists: e.g. Flask's "Exception on /s/<token> [POST]" and its traceback."""
    token = "WzEsMl0.secret-signature_xyz"
    with caplog.at_level(logging.INFO):
        logging.getLogger("survey_service.anything").info(
            "opened %s", f"https://nps.example/s/{token}?score=1"
        )
        try:
            raise ValueError(f"bad link /u/{token}")
        except ValueError:
            logging.getLogger("flask.app").exception("Exception on /s/%s [POST]", token)
    assert token not in caplog.text
    assert "Exception on /s/[redacted] [POST]" in caplog.text and "bad link /u/[redacted]" in caplog.text


def test_werkzeug_request_log_of_token_paths_redacts_the_tokens(
    app: Flask, project: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """`flask run` / werkzeug's server logs each request line; a real request over HTTP, its log captured."""
    import urllib.error
    import urllib.request

    from tests.support.servers import live_server

    links = token_links(app, project["id"])
    with caplog.at_level(logging.INFO), live_server(app) as base:
        for path in links.values():
            try:
                urllib.request.urlopen(base + path, timeout=30).close()
            except urllib.error.HTTPError as exc:  # a status is still a logged request
                exc.close()
    request_lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert len(request_lines) == 3, request_lines
    for page in ("/s/[redacted]?score=9", "/u/[redacted]", "/o/[redacted]"):
        assert any(page in line for line in request_lines), (page, request_lines)
    for path in links.values():
        assert token_of(path) not in caplog.text


@pytest.mark.process
def test_gunicorn_access_log_of_token_paths_redacts_the_tokens(
    app: Flask, project: dict[str, Any], tmp_path: Path, redis_url: str
) -> None:
    """`gunicorn wsgi:app` with the project's gunicorn.conf.py, its access log read from its output."""
    import urllib.error
    import urllib.request

    from tests.support.env import wait_for

    links = token_links(app, project["id"])
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),  # gunicorn's control socket goes under $HOME: not shared with other runs
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url,
        "SECRET_KEY": app.config["SECRET_KEY"],
        "BASE_URL": app.config["BASE_URL"],
        "INSTANCE_PATH": str(tmp_path),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
    }
    base = f"http://127.0.0.1:{port}"
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def healthy() -> bool:
            assert web.poll() is None, "gunicorn exited"
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as res:
                    return bool(res.status == 200)
            except OSError:
                return False

        wait_for(healthy, "GET /healthz answering 200")
        statuses = []
        for path in links.values():
            try:
                with urllib.request.urlopen(base + path, timeout=30) as res:
                    statuses.append(res.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
                exc.close()
        assert statuses == [200, 200, 200]
    finally:
        web.terminate()
        output, _ = web.communicate(timeout=60)
    for page in ('"GET /s/[redacted]" 200', '"GET /u/[redacted]" 200', '"GET /o/[redacted]" 200'):
        assert page in output, output[-3000:]
    for path in links.values():
        assert token_of(path) not in output


@pytest.fixture
def link_limited_app(migrated: dict[str, Any]) -> Iterator[Flask]:
    """The app with 3 requests per link and 2 per address for bad tokens, on counters of its own."""
    from survey_service import create_app

    app = create_app(
        {
            **migrated,
            "PUBLIC_LINK_RATE_LIMIT": "3 per minute",
            "PUBLIC_RATE_LIMIT": "2 per minute",
            "RATELIMIT_KEY_PREFIX": f"survey-link-limits-test-{free_port()}",
        }
    )
    with app.app_context():
        empty_tables()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def client_at(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_survey_page_limits_one_address_many_links_each_link_counts_apart(link_limited_app: Flask) -> None:
    """One office behind NAT (or a mail scanner) opening everyone's links does not exhaust a shared limit."""
    app = link_limited_app
    project = make_project(app, "Links")
    office = client_at(app, "203.0.113.7")
    for n in range(4):
        links = token_links(app, project["id"], f"person{n}@office.example")
        statuses = [office.get(path).status_code for path in links.values()]
        assert statuses == [200, 200, 200], (n, statuses)


def test_survey_page_limits_one_link_from_many_addresses_is_refused(link_limited_app: Flask) -> None:
    app = link_limited_app
    project = make_project(app, "Links")
    landing = token_links(app, project["id"])["landing"]
    statuses = [client_at(app, f"198.51.100.{n + 1}").get(landing).status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]
    res = client_at(app, "198.51.100.99").get(landing)
    assert res.status_code == 429 and int(res.headers["Retry-After"]) > 0


def test_survey_page_limits_bad_tokens_count_per_address(link_limited_app: Flask) -> None:
    app = link_limited_app
    sprayer = client_at(app, "203.0.113.9")
    statuses = [sprayer.get(f"/s/guess-{n}").status_code for n in range(3)]
    assert statuses == [404, 404, 429]
    assert client_at(app, "203.0.113.10").get("/u/guess-0").status_code == 404


# --- The browser's door: a tenant's own end user with a valid user_hash and a browser console ---


def test_browser_with_valid_user_hash_writes_only_what_a_browser_may(app: Flask, client: FlaskClient) -> None:
    """Every browser-door finding of the outside attack, replayed against one tenant's own project.

    The attacker holds the public key and a valid user_hash for their own user id. Whatever they send,
    the server-owned data of their person (email, name, properties, owner) stays as the server set it,
    the NPS moves by at most one answer, no email address is confirmed or refused, and nothing is a 5xx.
    """
    from survey_service.models import Person, Response
    from survey_service.services import alerts

    t = Tenant(make_project(app, "Tenant"))
    server_person = {
        "external_id": "u1",
        "email": "ann@customer.example",
        "name": "Ann Server",
        "properties": {"plan": "basic", "owner": "csm@tenant.example"},
    }
    ok(client.post("/api/v1/people", json=server_person, headers=t.bearer))
    other = {"external_id": "u2", "email": "bob@customer.example"}
    ok(client.post("/api/v1/people", json=other, headers=t.bearer))
    user_hash = keys.user_hash(t.keys["identity_secret"], "u1")

    def widget(path: str, body: dict[str, Any] | str) -> Any:
        raw = body if isinstance(body, str) else json.dumps(body)
        res = client.post(f"/api/widget/{path}", data=raw, content_type="text/plain")
        assert res.status_code < 500, (path, res.status_code, res.get_data(as_text=True)[:300])
        return res

    def identify(**user: Any) -> Any:
        body = {
            "key": t.keys["public_key"],
            "force": True,
            "user": {"id": "u1", "user_hash": user_hash, **user},
        }
        return widget("identify", body)

    tampered = {
        "email": "attacker@evil.example",
        "name": "Mallory",
        "properties": {"plan": "enterprise", "owner": "victim@evil.example", "csm": "victim@evil.example"},
    }
    # Ballot stuffing: identify(force) then answer, again and again, with tampered traits each time.
    for score in (0, 10, 10, 10, 10, 10):
        shown = identify(**tampered).get_json()
        if shown.get("token"):
            answered = widget(
                "answer", {"key": t.keys["public_key"], "token": shown["token"], "score": score}
            )
            assert answered.status_code == 200
    # Email oracle: claiming another customer's address answers like any other identify (no 409).
    assert identify(email="bob@customer.example").status_code == 200
    # Junk that used to be a 500 without a key.
    assert identify().status_code == 200
    refused = widget("identify", {"key": t.keys["public_key"], "user": {"id": "u1", "user_hash": "é" * 64}})
    assert refused.status_code == 403 and refused.get_json()["code"] == "identity_refused"
    key = json.dumps(t.keys["public_key"])
    deep = '{"key": ' + key + ', "user": ' + '{"x":' * 200 + '{"id": "u1"}' + "}" * 200 + "}"
    assert widget("identify", deep).status_code == 400
    surrogate = '{"key": ' + key + ', "user": {"id": "u\\ud800", "name": "\\udfff"}}'
    assert widget("identify", surrogate).status_code == 422

    with app.app_context():
        person = db.session.scalar(select(Person).where(Person.external_id == "u1"))
        assert person is not None
        assert (person.email, person.name, person.properties) == (
            "ann@customer.example",
            "Ann Server",
            {"plan": "basic", "owner": "csm@tenant.example"},
        )
        responses = db.session.scalars(select(Response).where(Response.person_id == person.id)).all()
        assert len(responses) == 1  # six forced answers: one countable response, updated in place
        [response] = responses
        assert response.properties["plan"] == "basic"  # counted in the segment the server set
        assert alerts.owner_email(response, person) == "csm@tenant.example"  # routing ignores the browser
    report = client.get("/api/v1/reports/nps?group_by=plan", headers=t.bearer).get_json()
    assert [(g["key"], g["responses"]) for g in report["groups"]] == [("basic", 1)]


def test_session_cookie_follows_the_keys_of_the_moment(app: Flask) -> None:
    """The session serializer is kept per set of keys: a rotation (new key, old one a fallback) still
    reads a session signed before it, and dropping the fallback ends that session at once."""
    old, new = "o" * 40, "n" * 40
    app.config.update(SECRET_KEY=old, SECRET_KEY_FALLBACKS=[])
    interface = app.session_interface
    serializer = interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={serializer.dumps({'user_id': 7})}"

    def session_read() -> dict[str, Any]:
        with app.test_request_context(headers={"Cookie": cookie}) as ctx:
            return dict(interface.open_session(app, ctx.request) or {})

    assert session_read() == {"user_id": 7}
    app.config.update(SECRET_KEY=new, SECRET_KEY_FALLBACKS=[old])
    assert session_read() == {"user_id": 7}
    app.config.update(SECRET_KEY_FALLBACKS=[])
    assert session_read() == {}
    app.config.update(SECRET_KEY=old)
    assert session_read() == {"user_id": 7}
