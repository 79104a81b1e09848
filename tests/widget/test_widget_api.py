"""The in-app widget API on SQLite and PostgreSQL: identity, eligibility rules, answers, dismissals."""

from __future__ import annotations

import gzip
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from survey_service import create_app
from survey_service.config import load_config
from survey_service.core import clock, keys
from survey_service.extensions import db
from survey_service.models import (
    Person,
    Project,
    Response,
    Survey,
    SurveyRequest,
    WidgetDismissal,
)
from survey_service.widget.answers import _serializer
from survey_service.widget.eligibility import in_sample
from tests.support.concurrency import at_once
from tests.support.db import add_response, make_project
from tests.support.sql import sql_log

WIDGET_BUDGET = 5 * 1024


def identify(
    client: FlaskClient,
    project: dict[str, Any],
    user_id: str = "u1",
    *,
    user_hash: str | None | bool = True,
    force: bool = False,
    **user: Any,
) -> Any:
    body: dict[str, Any] = {"key": project["public_key"], "user": {"id": user_id, **user}, "force": force}
    if user_hash is True:
        body["user"]["user_hash"] = keys.user_hash(project["identity_secret"], user_id)
    elif user_hash:
        body["user"]["user_hash"] = user_hash
    return client.post("/api/widget/identify", data=json.dumps(body), content_type="text/plain")


def without_verdict(body: dict[str, Any]) -> dict[str, Any]:
    """An identify answer without its verdict fields (tests/widget/test_widget_verdicts.py checks those)."""
    return {k: v for k, v in body.items() if k not in ("verdict", "verdict_ttl")}


def decided(res: Any) -> dict[str, Any]:
    """The decision of an identify response (show, reason, ...) without its verdict fields."""
    return without_verdict(res.get_json())


def post(client: FlaskClient, path: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/widget/{path}", data=json.dumps(body), content_type="text/plain")


def person_seen(app: Flask, project: dict[str, Any], external_id: str, days_ago: int) -> int:
    """Create a person first seen days_ago days ago; return their id."""
    with app.app_context():
        person = Person(project_id=project["id"], external_id=external_id, properties={})
        person.created_at = clock.now() - timedelta(days=days_ago)
        db.session.add(person)
        db.session.commit()
        return person.id


def add_request(app: Flask, project: dict[str, Any], person_id: int, **fields: Any) -> int:
    """A survey request as the lifecycle triggers would create it (in-app, pending, by default)."""
    with app.app_context():
        survey_id = db.session.scalar(select(Survey.id).where(Survey.project_id == project["id"]))
        values = {"channel": "in_app", "status": "pending", **fields}
        req = SurveyRequest(project_id=project["id"], survey_id=survey_id, person_id=person_id, **values)
        db.session.add(req)
        db.session.commit()
        return req.id


def set_project(app: Flask, project: dict[str, Any], **values: Any) -> None:
    with app.app_context():
        db.session.execute(update(Project).where(Project.id == project["id"]).values(**values))
        db.session.commit()


def set_widget(client: FlaskClient, auth: dict[str, str], **values: Any) -> None:
    res = client.patch("/api/v1/widget/settings", json=values, headers=auth)
    assert res.status_code == 200, res.get_json()


def count(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


# --- identity -------------------------------------------------------------------------------------


def test_identify_wrong_user_hash_is_refused_and_creates_nobody(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    res = identify(client, project, "u1", user_hash="0" * 64, force=True)
    assert res.status_code == 403
    assert res.get_json()["code"] == "identity_refused"
    assert res.headers["Access-Control-Allow-Origin"] == "*"
    assert count(app, Person) == 0


def test_identify_hash_of_another_user_is_refused(client: FlaskClient, project: dict[str, Any]) -> None:
    other = keys.user_hash(project["identity_secret"], "u2")
    res = identify(client, project, "u1", user_hash=other, force=True)
    assert res.status_code == 403 and res.get_json()["code"] == "identity_refused"


def test_identify_missing_hash_when_required_is_refused(client: FlaskClient, project: dict[str, Any]) -> None:
    res = identify(client, project, "u1", user_hash=None, force=True)
    assert res.status_code == 403 and res.get_json()["code"] == "identity_required"


def test_identify_missing_hash_when_not_required_is_accepted(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    set_project(app, project, require_identity_verification=False)
    res = identify(client, project, "u1", user_hash=None, force=True)
    assert res.status_code == 200 and res.get_json()["show"] is True
    wrong = identify(client, project, "u1", user_hash="ab" * 32, force=True)
    assert wrong.status_code == 403


@pytest.mark.parametrize("key", ["pk_unknown", "", "sk_x", "x" * 100])
def test_identify_unknown_key_is_401(client: FlaskClient, project: dict[str, Any], key: str) -> None:
    res = identify(client, {**project, "public_key": key}, force=True)
    assert res.status_code in (401, 422)
    assert res.get_json()["code"] in ("unauthorized", "validation_error")


def test_identify_secret_key_as_widget_key_is_401(client: FlaskClient, project: dict[str, Any]) -> None:
    res = identify(client, {**project, "public_key": project["secret_key"][:64]}, force=True)
    assert res.status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/responses", "/api/v1/reports/nps", "/api/v1/widget/dismissals"])
def test_public_key_cannot_read_server_api(client: FlaskClient, project: dict[str, Any], path: str) -> None:
    res = client.get(path, headers={"Authorization": f"Bearer {project['public_key']}"})
    assert res.status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [("not json", 400), ("[1, 2]", 400), ('{"key": "pk_x"}', 422), ('{"key": "pk_x", "user": {}}', 422)],
)
def test_identify_bad_body_is_4xx_in_error_shape(client: FlaskClient, body: str, status: int) -> None:
    res = client.post("/api/widget/identify", data=body, content_type="text/plain")
    assert res.status_code == status
    assert set(res.get_json()) == {"status", "code", "message", "details"}


def test_identify_unknown_user_fields_are_ignored(client: FlaskClient, project: dict[str, Any]) -> None:
    res = identify(client, project, "u1", force=True, plan_cost=12, company={"id": 1})
    assert res.status_code == 200 and res.get_json()["show"] is True


# --- eligibility ----------------------------------------------------------------------------------


def test_identify_new_person_is_not_shown(app: Flask, client: FlaskClient, project: dict[str, Any]) -> None:
    body = identify(client, project, "u1", email="Ann@Example.com", properties={"plan": "pro"}).get_json()
    assert without_verdict(body) == {"show": False, "reason": "too_new"}
    with app.app_context():
        person = db.session.scalar(select(Person).where(Person.external_id == "u1"))
        assert person is not None
        assert person.email == "ann@example.com" and person.browser_properties == {"plan": "pro"}


def test_identify_pending_in_app_request_is_shown_and_marked_sent(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person_id = person_seen(app, project, "u1", 0)
    req_id = add_request(app, project, person_id)
    body = identify(client, project, "u1").get_json()
    assert body["show"] is True and body["reason"] == "requested" and body["token"]
    assert body["text"]["question"].startswith("How likely are you to recommend Acme")
    with app.app_context():
        req = db.session.get(SurveyRequest, req_id)
        assert req is not None and req.status == "sent" and req.sent_at is not None
    again = identify(client, project, "u1").get_json()
    assert again["show"] is True, "a shown, unanswered survey is offered again on the next page"
    assert count(app, SurveyRequest) == 1


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"status": "scheduled", "scheduled_at_days": 1}, False),
        ({"status": "scheduled", "scheduled_at_days": -1}, True),
        ({"status": "pending", "expires_at_days": -1}, False),
        ({"status": "cancelled"}, False),
        ({"status": "pending", "channel": "email"}, False),
    ],
)
def test_identify_request_timing_and_channel_decide(
    app: Flask, client: FlaskClient, project: dict[str, Any], fields: dict[str, Any], shown: bool
) -> None:
    person_id = person_seen(app, project, "u1", 0)
    values = dict(fields)
    now = clock.now()
    if "scheduled_at_days" in values:
        values["scheduled_at"] = now + timedelta(days=values.pop("scheduled_at_days"))
    if "expires_at_days" in values:
        values["expires_at"] = now + timedelta(days=values.pop("expires_at_days"))
    add_request(app, project, person_id, **values)
    assert identify(client, project, "u1").get_json()["show"] is shown


def test_identify_recurring_rule_first_survey_after_n_days(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    set_widget(client, auth, first_survey_after_days=10)
    person_seen(app, project, "young", 9)
    person_seen(app, project, "old", 11)
    assert identify(client, project, "young").get_json()["reason"] == "too_new"
    body = identify(client, project, "old").get_json()
    assert body["show"] is True and body["reason"] == "recurring"
    with app.app_context():
        req = db.session.scalar(select(SurveyRequest))
        assert req is not None and req.channel == "in_app" and req.status == "sent"
        assert req.expires_at is not None and req.sent_at is not None
        assert req.expires_at - req.sent_at == timedelta(hours=24)
    identify(client, project, "old")
    assert count(app, SurveyRequest) == 1, "the open survey is reused, not asked twice"


def test_identify_recurring_rule_disabled_shows_nothing(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    set_widget(client, auth, recurring_enabled=False)
    person_seen(app, project, "u1", 400)
    assert decided(identify(client, project, "u1")) == {"show": False, "reason": "no_request"}


@pytest.mark.parametrize(("answered_days_ago", "shown"), [(20, False), (40, True)])
def test_identify_recurring_rule_every_m_days(
    app: Flask,
    client: FlaskClient,
    project: dict[str, Any],
    auth: dict[str, str],
    answered_days_ago: int,
    shown: bool,
) -> None:
    set_project(app, project, quiet_period_days=0)
    set_widget(client, auth, resurvey_every_days=30)
    person_id = person_seen(app, project, "u1", 400)
    add_response(app, project, person_id, answered_days_ago)
    body = identify(client, project, "u1").get_json()
    assert body["show"] is shown
    if not shown:
        assert body["reason"] == "not_due"


def test_identify_quiet_period_after_any_channel_answer_blocks_request(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person_id = person_seen(app, project, "u1", 400)
    add_request(app, project, person_id)
    add_response(app, project, person_id, 10)
    assert decided(identify(client, project, "u1")) == {"show": False, "reason": "quiet_period"}


def test_identify_quiet_period_after_email_sent_blocks(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person_id = person_seen(app, project, "u1", 400)
    add_request(
        app, project, person_id, channel="email", status="sent", sent_at=clock.now() - timedelta(days=5)
    )
    assert identify(client, project, "u1").get_json()["reason"] == "quiet_period"


def test_identify_after_quiet_period_is_shown(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person_id = person_seen(app, project, "u1", 400)
    add_response(app, project, person_id, 100)
    assert identify(client, project, "u1").get_json()["show"] is True


def test_identify_sample_zero_shows_nothing_even_with_request(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    set_widget(client, auth, sample_percent=0)
    person_id = person_seen(app, project, "u1", 400)
    add_request(app, project, person_id)
    assert identify(client, project, "u1").get_json()["reason"] == "not_sampled"
    assert identify(client, project, "u1", force=True).get_json()["show"] is True


def test_identify_sampling_is_stable_per_person(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    set_widget(client, auth, sample_percent=50)
    results = {}
    for i in range(12):
        person_id = person_seen(app, project, f"p{i}", 400)
        expected = in_sample(project["id"], person_id, 50)
        body = identify(client, project, f"p{i}").get_json()
        assert body["show"] is expected
        results[i] = body["show"]
    assert set(results.values()) == {True, False}


def test_in_sample_percentages_are_roughly_kept() -> None:
    assert all(in_sample(1, pid, 100) for pid in range(50))
    assert not any(in_sample(1, pid, 0) for pid in range(50))
    share = sum(in_sample(7, pid, 30) for pid in range(2000)) / 2000
    assert 0.25 < share < 0.35
    assert [in_sample(3, p, 50) for p in range(20)] == [in_sample(3, p, 50) for p in range(20)]


def test_identify_force_shows_to_new_person(client: FlaskClient, project: dict[str, Any]) -> None:
    body = identify(client, project, "u1", force=True).get_json()
    assert body["show"] is True and body["reason"] == "forced"
    assert body["position"] == "bottom-right" and body["color"] == "#4f46e5"


# --- answers --------------------------------------------------------------------------------------


def test_answer_records_in_app_response_with_frozen_properties(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    person_id = person_seen(app, project, "u1", 0)
    req_id = add_request(app, project, person_id)
    body = identify(client, project, "u1", properties={"plan": "pro"}).get_json()
    first = post(client, "answer", {"key": project["public_key"], "token": body["token"], "score": 6})
    assert first.status_code == 200 and first.get_json()["category"] == "detractor"
    second = post(
        client,
        "answer",
        {"key": project["public_key"], "token": body["token"], "score": 9, "comment": "<b>Great</b>"},
    )
    assert second.get_json()["category"] == "promoter"
    identify(client, project, "u1", properties={"plan": "enterprise"})
    listed = client.get("/api/v1/responses", headers=auth).get_json()["data"]
    assert len(listed) == 1
    assert listed[0]["score"] == 9 and listed[0]["comment"] == "<b>Great</b>"
    assert listed[0]["channel"] == "in_app" and listed[0]["properties"] == {"plan": "pro"}
    with app.app_context():
        req = db.session.get(SurveyRequest, req_id)
        assert req is not None and req.status == "responded" and req.responded_at is not None
        response = db.session.scalar(select(Response))
        assert response is not None and response.request_id == req_id
    assert decided(identify(client, project, "u1")) == {"show": False, "reason": "quiet_period"}


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"score": 11}, 422),
        ({"score": "9"}, 422),
        ({"comment": "x" * 5001}, 422),
        ({"token": "garbage"}, 401),
        ({"key": "pk_nope"}, 401),
    ],
)
def test_answer_bad_input_is_4xx(
    client: FlaskClient, project: dict[str, Any], change: dict[str, Any], status: int
) -> None:
    token = identify(client, project, "u1", force=True).get_json()["token"]
    body = {"key": project["public_key"], "token": token, "score": 9, **change}
    res = post(client, "answer", body)
    assert res.status_code == status
    assert res.get_json()["status"] == status


def test_answer_token_of_other_project_is_404(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    other = make_project(app, "Other")
    token = identify(client, other, "u1", force=True).get_json()["token"]
    res = post(client, "answer", {"key": project["public_key"], "token": token, "score": 9})
    assert res.status_code == 404
    assert count(app, Response) == 0


def test_first_answer_is_one_statement_and_one_commit_on_postgresql(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    """The first answer marks the request answered and writes the response from it and its person in one
    statement on PostgreSQL (responses.record_first_answer); a read and two statements on SQLite. A second
    answer takes the long way: it changes the first."""
    app.config["HOT_CACHE_SECONDS"] = 3600
    warm, token = (identify(client, project, user, force=True).get_json()["token"] for user in ("u0", "u1"))
    assert answer_as(client, project, warm, 6).status_code == 200  # the project's settings cached
    with sql_log(app) as statements:
        res = post(
            client, "answer", {"key": project["public_key"], "token": token, "score": 6, "comment": "ok"}
        )
    assert res.status_code == 200 and res.get_json()["category"] == "detractor"
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    on_postgresql = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    assert len(reads) == (0 if on_postgresql else 1), reads
    together = ["WITH marked AS", "COMMIT"]
    apart = ["INSERT INTO responses", "UPDATE survey_requests SET", "COMMIT"]
    assert [" ".join(s.split()[:3]) for s in writes(statements)] == (together if on_postgresql else apart)
    with app.app_context():
        answered = select(SurveyRequest).join(Response, Response.request_id == SurveyRequest.id)
        request = db.session.scalar(answered.where(Response.comment == "ok"))
        assert request is not None and request.status == "responded" and request.responded_at is not None
        first_at = request.responded_at
    # The same token again: the long way changes the answer; the request keeps its first answer's instant.
    with sql_log(app) as statements:
        again = post(client, "answer", {"key": project["public_key"], "token": token, "score": 10})
    assert again.status_code == 200 and again.get_json()["category"] == "promoter"
    assert any("FROM survey_requests JOIN people" in s for s in statements)
    with app.app_context():
        [response] = db.session.scalars(select(Response).where(Response.comment == "ok")).all()
        request = db.session.get(SurveyRequest, response.request_id)
        assert response.score == 10 and request is not None and request.responded_at == first_at


def test_answer_same_token_at_once_records_one_response_and_marks_the_request_with_it(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    token = identify(client, project, "u1", force=True).get_json()["token"]
    threads = 6
    clients = [app.test_client() for _ in range(threads)]
    statuses = at_once(lambda score: answer_as(clients[score], project, token, score).status_code, threads)
    assert statuses == [200] * threads
    with app.app_context():
        responses = db.session.scalars(select(Response)).all()
        assert len(responses) == 1
        request = db.session.get(SurveyRequest, responses[0].request_id)
        assert request is not None and request.status == "responded"
        assert request.responded_at == responses[0].created_at  # the first answer's instant, kept


def test_identify_same_user_id_in_two_projects_is_two_people(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    other = make_project(app, "Other")
    person_id = person_seen(app, other, "u1", 0)
    add_request(app, other, person_id)
    assert identify(client, project, "u1").get_json()["show"] is False
    assert identify(client, other, "u1").get_json()["show"] is True
    assert count(app, Person, Person.external_id == "u1") == 2
    foreign_hash = keys.user_hash(other["identity_secret"], "u1")
    assert identify(client, project, "u1", user_hash=foreign_hash).status_code == 403


# --- the everyday identify: one read, no write ---------------------------------------------------


def writes(statements: list[str]) -> list[str]:
    return [s for s in statements if not s.lstrip().upper().startswith("SELECT")]


def test_identify_unchanged_known_person_is_one_select_and_no_write(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    user: dict[str, Any] = {
        "email": "ann@example.com",
        "name": "Ann",
        "locale": "de",
        "properties": {"plan": "pro", "seats": 3},
    }
    assert decided(identify(client, project, "u1", **user)) == {"show": False, "reason": "too_new"}
    with app.app_context():
        updated_at = db.session.scalar(select(Person.updated_at).where(Person.external_id == "u1"))
    with sql_log(app) as statements:
        body = identify(client, project, "u1", **{**user, "email": "Ann@Example.com"}).get_json()
    assert without_verdict(body) == {"show": False, "reason": "too_new"}
    assert len(statements) == 1 and writes(statements) == []
    with app.app_context():
        assert db.session.scalar(select(Person.updated_at).where(Person.external_id == "u1")) == updated_at


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ({"properties": {"plan": "team"}}, {"plan": "team", "seats": 3, "beta": True}),
        ({"properties": {"seats": None}}, {"plan": "pro", "beta": True}),
        ({"properties": {"region": "eu"}}, {"plan": "pro", "seats": 3, "beta": True, "region": "eu"}),
        # Equal in Python, not in JSON: still a change.
        ({"properties": {"beta": 1}}, {"plan": "pro", "seats": 3, "beta": 1}),
        ({"properties": {"seats": 3.5}}, {"plan": "pro", "seats": 3.5, "beta": True}),
        ({"locale": "fr"}, {"plan": "pro", "seats": 3, "beta": True}),
    ],
)
def test_identify_changed_person_is_updated(
    app: Flask, client: FlaskClient, project: dict[str, Any], sent: dict[str, Any], expected: dict[str, Any]
) -> None:
    first: dict[str, Any] = {
        "email": "ann@example.com",
        "name": "Ann",
        "locale": "de",
        "properties": {"plan": "pro", "seats": 3, "beta": True},
    }
    assert identify(client, project, "u1", **first).status_code == 200
    with sql_log(app) as statements:
        assert identify(client, project, "u1", **sent).status_code == 200
    assert any(s.lstrip().upper().startswith("UPDATE") for s in statements)
    with app.app_context():
        person = db.session.scalar(select(Person).where(Person.external_id == "u1"))
        assert person is not None and person.browser_properties == expected and person.properties == {}
        for field in ("email", "name", "locale"):
            assert getattr(person, field) == sent.get(field, first[field])
        assert type(person.browser_properties.get("beta")) is type(expected.get("beta"))


@pytest.mark.parametrize(
    "sent", [{"name": "Ann B."}, {"name": None}, {"email": "ann.b@example.com"}, {"email": None}]
)
def test_identify_browser_name_or_email_change_is_ignored_without_a_write(
    app: Flask, client: FlaskClient, project: dict[str, Any], sent: dict[str, Any]
) -> None:
    assert identify(client, project, "u1", email="ann@example.com", name="Ann").status_code == 200
    with sql_log(app) as statements:
        assert identify(client, project, "u1", **sent).status_code == 200
    assert writes(statements) == []
    with app.app_context():
        person = db.session.scalar(select(Person).where(Person.external_id == "u1"))
        assert person is not None and (person.email, person.name) == ("ann@example.com", "Ann")


def test_identify_shown_survey_again_is_read_only_and_same_request(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person_id = person_seen(app, project, "u1", 0)
    req_id = add_request(app, project, person_id)
    shown = identify(client, project, "u1").get_json()
    with sql_log(app) as statements:
        again = identify(client, project, "u1").get_json()
    assert writes(statements) == [] and len(statements) == 1
    assert again["show"] is True and again["reason"] == "requested"
    assert {k: v for k, v in again.items() if k != "token"} == {
        k: v for k, v in shown.items() if k != "token"
    }
    with app.app_context():
        assert _serializer().loads(again["token"]) == [project["id"], person_id, req_id]


def test_identify_settings_changes_take_effect_on_the_next_identify(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    """Nothing about the project is kept between requests: no change waits for a cache to expire."""
    person_id = person_seen(app, project, "u1", 0)
    add_request(app, project, person_id)
    assert identify(client, project, "u1").get_json()["show"] is True
    set_widget(client, auth, sample_percent=0)
    assert decided(identify(client, project, "u1")) == {"show": False, "reason": "not_sampled"}
    set_widget(client, auth, sample_percent=100, position="bottom-left")
    assert identify(client, project, "u1").get_json()["position"] == "bottom-left"
    # Changed straight in the database, as another web worker's change would be.
    set_project(app, project, require_identity_verification=False)
    assert identify(client, project, "u1", user_hash=None).get_json()["show"] is True
    set_project(app, project, require_identity_verification=True)
    assert identify(client, project, "u1", user_hash=None).status_code == 403


def test_identify_rotated_identity_secret_refuses_old_hash_at_once(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    assert identify(client, project, "u1").status_code == 200
    new_secret = keys.new_identity_secret()
    with app.app_context():
        encrypted = keys.encrypt_secret(new_secret, app.config["SECRET_KEY"], purpose=keys.IDENTITY_SECRET)
    set_project(app, project, identity_secret_encrypted=encrypted)
    assert identify(client, project, "u1").status_code == 403
    assert identify(client, {**project, "identity_secret": new_secret}, "u1").status_code == 200


def test_identify_removed_or_changed_public_key_is_401_at_once(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    assert identify(client, project, "u1").status_code == 200
    set_project(app, project, public_key=keys.new_public_key())
    assert identify(client, project, "u1").status_code == 401


def test_identify_known_person_sees_only_their_projects_survey(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    other = make_project(app, "Other")
    for proj in (project, other):
        person_seen(app, proj, "u1", 0)
    add_request(app, other, db_person_id(app, other, "u1"))
    assert identify(client, other, "u1").get_json()["show"] is True
    for _ in range(2):  # the second time of each by the read-only path
        assert decided(identify(client, project, "u1")) == {"show": False, "reason": "too_new"}
        again = identify(client, other, "u1").get_json()
        assert again["show"] is True and "Other" in again["text"]["question"]


def db_person_id(app: Flask, project: dict[str, Any], external_id: str) -> int:
    with app.app_context():
        person_id = db.session.scalar(
            select(Person.id).where(Person.project_id == project["id"], Person.external_id == external_id)
        )
        assert person_id is not None
        return person_id


# --- dismissals -----------------------------------------------------------------------------------


def test_dismiss_records_and_blocks_for_cooldown(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    set_project(app, project, quiet_period_days=0)
    person_id = person_seen(app, project, "u1", 0)
    add_request(app, project, person_id)
    token = identify(client, project, "u1").get_json()["token"]
    res = post(client, "dismiss", {"key": project["public_key"], "token": token})
    assert res.status_code == 200 and res.get_json()["dismissed"] is True
    add_request(app, project, person_id)  # a newer trigger fires
    assert decided(identify(client, project, "u1")) == {"show": False, "reason": "dismissed"}
    page = client.get("/api/v1/widget/dismissals", headers=auth).get_json()
    assert page["total"] == 1 and page["data"][0]["external_id"] == "u1"
    with app.app_context():
        db.session.execute(update(WidgetDismissal).values(dismissed_at=clock.now() - timedelta(days=31)))
        db.session.commit()
    assert identify(client, project, "u1").get_json()["show"] is True


def test_dismiss_cooldown_is_configurable(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    set_project(app, project, quiet_period_days=0)
    set_widget(client, auth, dismiss_cooldown_days=0)
    person_id = person_seen(app, project, "u1", 0)
    add_request(app, project, person_id)
    token = identify(client, project, "u1").get_json()["token"]
    post(client, "dismiss", {"key": project["public_key"], "token": token})
    add_request(app, project, person_id)
    assert identify(client, project, "u1").get_json()["show"] is True


def test_dismiss_after_answer_is_not_a_dismissal(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    token = identify(client, project, "u1", force=True).get_json()["token"]
    post(client, "answer", {"key": project["public_key"], "token": token, "score": 10})
    res = post(client, "dismiss", {"key": project["public_key"], "token": token})
    assert res.get_json()["dismissed"] is False
    assert count(app, WidgetDismissal) == 0


def test_dismissals_are_isolated_per_project(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    other = make_project(app, "Other")
    token = identify(client, other, "u1", force=True).get_json()["token"]
    assert post(client, "dismiss", {"key": project["public_key"], "token": token}).status_code == 404
    post(client, "dismiss", {"key": other["public_key"], "token": token})
    assert client.get("/api/v1/widget/dismissals", headers=auth).get_json()["total"] == 0


# --- settings, words ------------------------------------------------------------------------------


def test_widget_settings_patch_validates_and_is_per_project(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    other = make_project(app, "Other")
    res = client.patch(
        "/api/v1/widget/settings", json={"sample_percent": 101, "position": "top"}, headers=auth
    )
    assert res.status_code == 422 and set(res.get_json()["details"]) == {"sample_percent", "position"}
    set_widget(client, auth, sample_percent=25, position="bottom-left")
    assert client.get("/api/v1/widget/settings", headers=auth).get_json()["sample_percent"] == 25
    other_auth = {"Authorization": f"Bearer {other['secret_key']}"}
    assert client.get("/api/v1/widget/settings", headers=other_auth).get_json()["sample_percent"] == 100
    assert identify(client, project, "u1", force=True).get_json()["position"] == "bottom-left"


@pytest.mark.parametrize(
    ("locale", "lang", "expected"),
    [("fr", None, "Quelle est la probabilité"), (None, "de-AT", "Wie wahrscheinlich"), ("xx", None, "How")],
)
def test_identify_words_follow_person_language(
    client: FlaskClient, project: dict[str, Any], locale: str | None, lang: str | None, expected: str
) -> None:
    body: dict[str, Any] = {
        "key": project["public_key"],
        "force": True,
        "lang": lang,
        "user": {"id": "u1", "user_hash": keys.user_hash(project["identity_secret"], "u1")},
    }
    if locale:
        body["user"]["locale"] = locale
    text = post(client, "identify", body).get_json()["text"]
    assert text["question"].startswith(expected)
    assert "Acme" in text["question"]


def test_identify_custom_question_is_kept(app: Flask, client: FlaskClient, project: dict[str, Any]) -> None:
    with app.app_context():
        db.session.execute(update(Survey).values(question="Would you tell a friend about {product}?"))
        db.session.commit()
    text = identify(client, project, "u1", force=True, locale="de").get_json()["text"]
    assert text["question"] == "Would you tell a friend about Acme?" and text["send"] == "Send"


# --- script and CORS ------------------------------------------------------------------------------


def test_widget_js_is_javascript_short_cached_and_within_budget(client: FlaskClient) -> None:
    res = client.get("/widget.js", headers={"Accept-Encoding": "gzip, br"})
    assert res.status_code == 200
    assert res.headers["Content-Type"].startswith("application/javascript")
    assert res.headers["Cache-Control"] == "public, max-age=300"
    assert res.headers["Content-Encoding"] == "gzip"
    assert len(res.data) <= WIDGET_BUDGET, f"widget is {len(res.data)} bytes gzipped"
    source = gzip.decompress(res.data).decode()
    assert "npsWidget" in source and "eval(" not in source and "innerHTML" not in source
    again = client.get(
        "/widget.js", headers={"Accept-Encoding": "gzip", "If-None-Match": res.headers["ETag"]}
    )
    assert again.status_code == 304


def test_widget_versioned_url_is_long_cached(client: FlaskClient) -> None:
    from survey_service.widget.views import widget_script

    version = widget_script().version
    res = client.get(f"/widget.{version}.js")
    assert res.status_code == 200 and "immutable" in res.headers["Cache-Control"]
    assert b"npsWidget" in res.data
    assert client.get("/widget.000000000000.js").status_code == 404


def test_widget_api_preflight_allows_any_origin(client: FlaskClient) -> None:
    res = client.options(
        "/api/widget/identify",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert res.status_code == 200
    assert res.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in res.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in res.headers


def test_demo_page_without_demo_project_is_404(client: FlaskClient) -> None:
    assert client.get("/demo").status_code == 404


def test_demo_page_serves_widget_for_demo_project(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    demo_file = Path(app.instance_path) / "demo_project.json"
    demo_file.write_text(json.dumps(project))
    try:
        res = client.get("/demo")
    finally:
        demo_file.unlink()
    assert res.status_code == 200
    assert "unsafe-inline" not in res.headers["Content-Security-Policy"]
    html = res.get_data(as_text=True)
    assert project["public_key"] in html
    user_id = re.search(r'data-user="(demo-[0-9a-f]{16})"', html)
    assert user_id is not None
    assert keys.user_hash(project["identity_secret"], user_id.group(1)) in html
    assert "<script>" not in html, "no inline script on the demo page"
    assert client.get("/demo/demo.js").status_code == 200
    assert client.get("/demo/demo.css").status_code == 200


def test_demo_page_user_parameter_is_ignored_and_only_fresh_ids_are_signed(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    demo_file = Path(app.instance_path) / "demo_project.json"
    demo_file.write_text(json.dumps(project))
    try:
        pages = [client.get("/demo?user=alice").get_data(as_text=True) for _ in range(2)]
    finally:
        demo_file.unlink()
    assert all(keys.user_hash(project["identity_secret"], "alice") not in html for html in pages)
    ids = [re.findall(r'data-user="([^"]*)"', html) for html in pages]
    assert ids[0] != ids[1] and all(len(found) == 1 and found[0].startswith("demo-") for found in ids)


def test_demo_page_when_disabled_is_404_even_with_demo_project(
    migrated: dict[str, Any], project: dict[str, Any]
) -> None:
    app = create_app({**migrated, "DEMO_PAGE": False})
    demo_file = Path(app.instance_path) / "demo_project.json"
    demo_file.write_text(json.dumps(project))
    try:
        res = app.test_client().get("/demo")
    finally:
        demo_file.unlink()
        with app.app_context():
            db.engine.dispose()
    assert res.status_code == 404
    assert set(res.get_json()) == {"status", "code", "message", "details"}


@pytest.mark.parametrize(
    ("env", "flag", "expected"),
    [
        ("production", None, False),
        ("production", "1", True),
        ("development", None, True),
        ("development", "0", False),
    ],
)
def test_demo_page_config_is_off_in_production_unless_asked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: str, flag: str | None, expected: bool
) -> None:
    monkeypatch.setenv("SURVEY_ENV", env)
    if flag is None:
        monkeypatch.delenv("DEMO_PAGE", raising=False)
    else:
        monkeypatch.setenv("DEMO_PAGE", flag)
    config = load_config({"SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path)})
    assert config["DEMO_PAGE"] is expected


def test_widget_api_is_rate_limited_per_address_but_the_script_is_not(
    app: Flask, project: dict[str, Any], redis_url: str
) -> None:
    import redis as redis_client

    from survey_service import create_app

    redis_client.Redis.from_url(redis_url).flushdb()
    limited = create_app({**app.config, "WIDGET_RATE_LIMIT": "3 per minute"})
    client = limited.test_client()
    statuses = [identify(client, project, f"r{i}").status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    blocked = identify(client, project, "r9")
    assert blocked.get_json()["code"] == "rate_limited"
    assert blocked.headers["Access-Control-Allow-Origin"] == "*"  # the widget can read the refusal
    assert all(client.get("/widget.js").status_code == 200 for _ in range(5))
    with limited.app_context():
        db.session.remove()
        db.engine.dispose()


def test_widget_api_counts_the_limit_without_reading_its_window_back(
    app: Flask, project: dict[str, Any], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One Redis round trip per identify: no X-RateLimit-* headers (two more reads of the window), which no
    widget could read (CORS exposes none of them); a 429's wait comes back with the count, not read after."""
    import redis as redis_client
    from limits.strategies import FixedWindowRateLimiter

    from survey_service import create_app

    redis_client.Redis.from_url(redis_url).flushdb()
    limits = {"WIDGET_RATE_LIMIT": "2 per minute", "PUBLIC_RATE_LIMIT": "5 per minute"}
    limited = create_app({**app.config, **limits})
    leases = limited.extensions["survey_counters"].leases
    trips: list[int] = []
    take = leases.take

    def round_trip(key: str, units: int, window_ms: int) -> tuple[int, int]:
        trips.append(units)
        result: tuple[int, int] = take(key, units, window_ms)
        return result

    leases.take = round_trip
    reads: list[Any] = []
    get_window_stats = FixedWindowRateLimiter.get_window_stats

    def counted(strategy: FixedWindowRateLimiter, *a: Any) -> Any:
        reads.append(a)
        return get_window_stats(strategy, *a)

    monkeypatch.setattr(FixedWindowRateLimiter, "get_window_stats", counted)
    client = limited.test_client()
    answers = [identify(client, project, f"w{i}") for i in range(2)]
    assert [r.status_code for r in answers] == [200, 200]
    assert not [name for r in answers for name, _ in r.headers.items() if name.startswith("X-RateLimit")]
    assert reads == [], "the window is not read back for an answer under the limit"
    assert trips == [1, 1]  # a limit under 400: one unit, one round trip, per identify

    refused = identify(client, project, "w3")  # the two identifies above were counted
    assert refused.status_code == 429 and refused.get_json()["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) == refused.get_json()["details"]["retry_after"] > 0
    assert reads == [] and trips == [1, 1, 1]
    # The survey pages keep Flask-Limiter's headers.
    assert client.get("/s/not-a-token").headers["X-RateLimit-Limit"] == "5"
    with limited.app_context():
        db.session.remove()
        db.engine.dispose()


# --- sec-widget: no ballot stuffing through identify(force) ----------------------------------------


def answer_as(client: FlaskClient, project: dict[str, Any], token: str, score: int) -> Any:
    return post(client, "answer", {"key": project["public_key"], "token": token, "score": score})


def test_identify_force_answer_loop_records_at_most_one_response(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    for i in range(6):
        body = identify(client, project, "u1", force=True).get_json()
        assert body["show"] is True and body["reason"] == "forced"
        if i == 2:
            # A dismissal in between must not open a fresh ask either.
            post(client, "dismiss", {"key": project["public_key"], "token": body["token"]})
            continue
        assert answer_as(client, project, body["token"], i).status_code == 200
    listed = client.get("/api/v1/responses", headers=auth).get_json()["data"]
    assert [r["score"] for r in listed] == [5]
    assert count(app, SurveyRequest) == 1
    report = client.get("/api/v1/reports/nps", headers=auth).get_json()
    assert report["overall"]["responses"] == 1


def test_identify_force_loop_on_project_without_quiet_period_records_one_response(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    set_project(app, project, quiet_period_days=0)
    for score in (0, 10, 0):
        token = identify(client, project, "u1", force=True).get_json()["token"]
        assert answer_as(client, project, token, score).status_code == 200
    assert count(app, Response) == 1 and count(app, SurveyRequest) == 1


def test_identify_force_after_answer_on_another_channel_in_quiet_period_shows_nothing(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person_id = person_seen(app, project, "u1", 400)
    add_response(app, project, person_id, days_ago=3)
    assert decided(identify(client, project, "u1", force=True)) == {"show": False, "reason": "quiet_period"}
    assert count(app, SurveyRequest) == 0


def test_identify_force_after_fatigue_window_opens_a_new_ask(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person_id = person_seen(app, project, "u1", 400)
    add_response(app, project, person_id, days_ago=200)
    token = identify(client, project, "u1", force=True).get_json()["token"]
    assert answer_as(client, project, token, 9).status_code == 200
    assert count(app, Response) == 2


def test_answer_with_token_of_dismissed_request_is_refused(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    token = identify(client, project, "u1", force=True).get_json()["token"]
    assert post(client, "dismiss", {"key": project["public_key"], "token": token}).status_code == 200
    res = answer_as(client, project, token, 0)
    assert res.status_code == 410 and res.get_json()["code"] == "survey_closed"
    assert set(res.get_json()) == {"status", "code", "message", "details"}
    assert count(app, Response) == 0


@pytest.mark.parametrize("status", ["expired", "cancelled", "superseded"])
def test_answer_with_token_of_closed_request_is_refused(
    app: Flask, client: FlaskClient, project: dict[str, Any], status: str
) -> None:
    token = identify(client, project, "u1", force=True).get_json()["token"]
    with app.app_context():
        db.session.execute(update(SurveyRequest).values(status=status))
        db.session.commit()
    assert answer_as(client, project, token, 0).status_code == 410
    assert count(app, Response) == 0


def test_answer_after_request_expires_at_is_refused_even_when_answered_before(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    token = identify(client, project, "u1", force=True).get_json()["token"]
    assert answer_as(client, project, token, 3).status_code == 200
    with app.app_context():
        db.session.execute(update(SurveyRequest).values(expires_at=clock.now() - timedelta(minutes=1)))
        db.session.commit()
    assert answer_as(client, project, token, 10).status_code == 410
    with app.app_context():
        assert db.session.scalar(select(Response.score)) == 3


# --- sec-widget: what a browser may write ----------------------------------------------------------


def server_person(client: FlaskClient, auth: dict[str, str], **person: Any) -> None:
    res = client.post("/api/v1/people", json=person, headers=auth)
    assert res.status_code in (200, 201), res.get_json()


def stored_person(app: Flask, external_id: str) -> Person:
    with app.app_context():
        person = db.session.scalar(select(Person).where(Person.external_id == external_id))
        assert person is not None
        db.session.expunge(person)
        return person


def test_identify_browser_property_never_overrides_server_set_property(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    server_person(client, auth, external_id="u1", properties={"plan": "basic"})
    token = identify(client, project, "u1", force=True, properties={"plan": "enterprise", "role": "admin"})
    assert answer_as(client, project, token.get_json()["token"], 10).status_code == 200
    person = stored_person(app, "u1")
    assert person.properties == {"plan": "basic"} and person.browser_properties == {"role": "admin"}
    [listed] = client.get("/api/v1/responses", headers=auth).get_json()["data"]
    assert listed["properties"] == {"plan": "basic", "role": "admin"}
    report = client.get("/api/v1/reports/nps?group_by=plan", headers=auth).get_json()
    assert [g["key"] for g in report["groups"]] == ["basic"]


def test_identify_server_set_key_sent_again_by_browser_is_read_only(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    server_person(client, auth, external_id="u1", properties={"plan": "basic"})
    identify(client, project, "u1", properties={"plan": "enterprise"})
    with sql_log(app) as statements:
        assert identify(client, project, "u1", properties={"plan": "enterprise"}).status_code == 200
    assert len(statements) == 1 and writes(statements) == []
    assert stored_person(app, "u1").browser_properties == {}


def test_identify_browser_properties_segment_when_server_never_set_them(
    client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    token = identify(client, project, "u1", force=True, properties={"plan": "pro"}).get_json()["token"]
    assert answer_as(client, project, token, 9).status_code == 200
    report = client.get("/api/v1/reports/nps?group_by=plan", headers=auth).get_json()
    assert [(g["key"], g["responses"]) for g in report["groups"]] == [("pro", 1)]


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [(["plan"], {"plan": "pro"}), ([], {}), (None, {"plan": "pro", "owner": "x@y.z"})],
)
def test_identify_browser_property_keys_setting_limits_browser_keys(
    app: Flask,
    client: FlaskClient,
    project: dict[str, Any],
    auth: dict[str, str],
    allowed: list[str] | None,
    expected: dict[str, Any],
) -> None:
    set_widget(client, auth, browser_property_keys=allowed)
    assert client.get("/api/v1/widget/settings", headers=auth).get_json()["browser_property_keys"] == allowed
    identify(client, project, "u1", properties={"plan": "pro", "owner": "x@y.z"})
    assert stored_person(app, "u1").browser_properties == expected
    # The read-only path applies the same rule: sending the same again writes nothing.
    with sql_log(app) as statements:
        identify(client, project, "u1", properties={"plan": "pro", "owner": "x@y.z"})
    assert writes(statements) == []


@pytest.mark.parametrize("bad", [["bad/key"], [" "], "plan", [1], ["k"] * 51])
def test_widget_settings_browser_property_keys_invalid_is_422(
    client: FlaskClient, auth: dict[str, str], bad: Any
) -> None:
    res = client.patch("/api/v1/widget/settings", json={"browser_property_keys": bad}, headers=auth)
    assert res.status_code == 422
    assert set(res.get_json()) == {"status", "code", "message", "details"}


def test_widget_property_names_are_normalised_like_the_servers(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    set_widget(client, auth, browser_property_keys=[" Plan", "Account Tier"])
    keys = client.get("/api/v1/widget/settings", headers=auth).get_json()["browser_property_keys"]
    assert keys == ["plan", "account_tier"]
    identify(client, project, "u1", properties={"PLAN": "pro", "account  tier": "gold", "Other": "x"})
    assert stored_person(app, "u1").browser_properties == {"plan": "pro", "account_tier": "gold"}


def test_identify_browser_properties_are_capped(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    identify(client, project, "u1", properties={f"k{i}": i for i in range(50)})
    identify(client, project, "u1", properties={"k0": "changed", "extra": 1})
    stored = stored_person(app, "u1").browser_properties
    assert len(stored) == 50 and stored["k0"] == "changed" and "extra" not in stored


def test_identify_browser_never_changes_a_server_set_email_or_name(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    server_person(client, auth, external_id="u1", email="ann@customer.co", name="Ann")
    res = identify(client, project, "u1", email="mallory@evil.test", name="Mallory")
    assert res.status_code == 200
    person = stored_person(app, "u1")
    assert (person.email, person.name) == ("ann@customer.co", "Ann")


def test_identify_browser_sets_email_and_name_only_when_the_person_has_none(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    identify(client, project, "u1")
    identify(client, project, "u1", email="ann@example.com", name="Ann")
    person = stored_person(app, "u1")
    assert (person.email, person.name) == ("ann@example.com", "Ann")


@pytest.mark.parametrize("holder", [{"external_id": "u2"}, {}])
def test_identify_email_of_another_person_is_ignored_without_an_oracle(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str], holder: dict[str, Any]
) -> None:
    server_person(client, auth, email="bob@customer.co", name="Bob", **holder)
    taken = identify(client, project, "u1", email="bob@customer.co", force=True)
    free = identify(client, project, "u3", email="nobody@customer.co", force=True)
    assert taken.status_code == free.status_code == 200
    assert set(taken.get_json()) == set(free.get_json())
    assert stored_person(app, "u1").email is None
    with app.app_context():
        bob = db.session.scalar(select(Person).where(Person.email == "bob@customer.co"))
        assert bob is not None and bob.external_id == holder.get("external_id") and bob.name == "Bob"


def test_identify_force_concurrent_identifies_open_one_ask(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    identify(client, project, "u1")  # the person exists, so every thread goes straight to the decision
    threads = 6
    clients = [app.test_client() for _ in range(threads)]
    tokens = at_once(lambda n: identify(clients[n], project, "u1", force=True).get_json()["token"], threads)
    assert len(tokens) == threads
    for score, token in enumerate(tokens):
        assert answer_as(client, project, token, score).status_code == 200
    assert count(app, SurveyRequest) == 1 and count(app, Response) == 1


def test_identify_browser_email_never_blocks_the_server_from_using_the_address(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    identify(client, project, "mallory", email="bob@customer.co")
    assert stored_person(app, "mallory").email == "bob@customer.co"
    server_person(client, auth, external_id="bob", email="bob@customer.co", name="Bob")
    assert stored_person(app, "bob").email == "bob@customer.co"
    assert stored_person(app, "mallory").email is None
    # Once the server set an address, a browser cannot claim it back.
    identify(client, project, "mallory", email="bob@customer.co")
    assert stored_person(app, "mallory").email is None
    assert stored_person(app, "bob").email_from_browser is False


@pytest.mark.parametrize("first_way", [True, False], ids=["one statement", "the long way"])
def test_first_answer_freezes_the_persons_merged_properties_and_is_held_as_stored(
    app: Flask, client: FlaskClient, project: dict[str, Any], first_way: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways write the same response: server-set properties over browser-set ones (merged_properties),
    the request's survey and person; the object answered with holds what was stored."""
    from survey_service.widget import answers

    if not first_way:
        monkeypatch.setattr(answers, "record_first_answer", lambda *args: None)
    token = identify(client, project, "u1", force=True).get_json()["token"]
    with app.app_context():
        db.session.execute(
            update(Person)
            .where(Person.external_id == "u1")
            .values(properties={"plan": "pro", "seats": 5}, browser_properties={"plan": "free", "page": "/x"})
        )
        db.session.commit()
        request = db.session.scalar(select(SurveyRequest).where(SurveyRequest.channel == "in_app"))
        assert request is not None
        request_id, survey_id, person_id = request.id, request.survey_id, request.person_id
    held: dict[str, Any] = {}

    def answer(*args: Any) -> Response:
        response = real_answer(*args)
        held.update({c.key: getattr(response, c.key) for c in Response.__table__.columns})
        return response

    real_answer = answers.answer
    monkeypatch.setattr(answers, "answer", answer)
    assert answer_as(client, project, token, 9).status_code == 200
    with app.app_context():
        [stored] = db.session.scalars(select(Response)).all()
        assert {c.key: getattr(stored, c.key) for c in Response.__table__.columns} == held
    assert held["properties"] == {"plan": "pro", "seats": 5, "page": "/x"}
    assert (held["request_id"], held["survey_id"], held["person_id"]) == (request_id, survey_id, person_id)
    assert (held["channel"], held["category"], held["answered_after_step"]) == ("in_app", "promoter", 0)


@pytest.mark.parametrize("closed", ["expired", "dismissed", "not yet shown"])
def test_first_answer_to_a_closed_request_writes_nothing_and_is_410(
    app: Flask, client: FlaskClient, project: dict[str, Any], closed: str
) -> None:
    token = identify(client, project, "u1", force=True).get_json()["token"]
    changes: dict[str, dict[str, Any]] = {
        "expired": {"expires_at": clock.now() - timedelta(minutes=1)},
        "dismissed": {"status": "dismissed"},
        "not yet shown": {"status": "scheduled"},
    }
    change = changes[closed]
    with app.app_context():
        db.session.execute(update(SurveyRequest).values(**change))
        db.session.commit()
    res = answer_as(client, project, token, 9)
    assert res.status_code == 410 and res.get_json()["code"] == "survey_closed"
    assert count(app, Response) == 0
    assert count(app, SurveyRequest, SurveyRequest.responded_at.is_not(None)) == 0
