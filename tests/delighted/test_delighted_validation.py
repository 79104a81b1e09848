"""Edges of the /v1/ compat API through the test client: validation, suffixes, identifiers, auth."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from survey_service.extensions import db
from survey_service.models import Person, SurveyRequest


@pytest.fixture
def basic(project: dict[str, Any]) -> dict[str, str]:
    """HTTP Basic with the secret key as user name and no password, as Delighted's clients send it."""
    token = base64.b64encode(f"{project['secret_key']}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({}, "email"),
        ({"phone_number": "+15550003333"}, "email"),  # SMS-only people: no SMS channel here
        ({"email": "a@example.com", "channel": "sms"}, "channel"),
        ({"email": "a@example.com", "phone_number": "5550003333"}, "phone_number"),
        ({"email": "a@example.com", "delay": -1}, "delay"),
        ({"email": "a@example.com", "delay": "soon"}, "delay"),
        ({"email": "a@example.com", "send": "maybe"}, "send"),
        ({"email": "a@example.com", "last_sent_at": "2025-01-01"}, "last_sent_at"),
        ({"email": "a@example.com", "properties": ["x"]}, "properties"),
        ({"email": "a@example.com", "properties": {"tags": ["a", "b"]}}, "properties"),
        ({"email": "a@example.com", "properties": {"k\nx": "v"}}, "properties"),
        ({"email": "a@example.com", "name": 12}, "name"),
    ],
)
def test_people_create_invalid_is_422_naming_the_field(
    app: Flask, client: FlaskClient, basic: dict[str, str], body: dict[str, Any], field: str
) -> None:
    res = client.post("/v1/people.json", json=body, headers=basic)
    assert res.status_code == 422, res.get_json()
    payload = res.get_json()
    assert payload["code"] == "validation_error" and field in payload["details"]
    with app.app_context():
        assert db.session.scalars(select(Person)).all() == []


def test_people_create_email_update_moves_the_email(
    app: Flask, client: FlaskClient, basic: dict[str, str]
) -> None:
    first = client.post("/v1/people", json={"email": "old@example.com", "send": False}, headers=basic)
    moved = client.post(
        "/v1/people", json={"email": "old@example.com", "email_update": "new@example.com"}, headers=basic
    )
    assert moved.status_code == 200 and moved.get_json()["id"] == first.get_json()["id"]
    assert moved.get_json()["email"] == "new@example.com"
    client.post("/v1/people", json={"email": "other@example.com", "send": False}, headers=basic)
    taken = client.post(
        "/v1/people", json={"email": "new@example.com", "email_update": "other@example.com"}, headers=basic
    )
    assert taken.status_code == 422 and "email" in taken.get_json()["details"]


def test_suffixed_delete_paths_resolve_identifiers(
    app: Flask, client: FlaskClient, basic: dict[str, str]
) -> None:
    client.post("/v1/people", json={"email": "x@example.com", "delay": 60}, headers=basic)
    pending = client.delete("/v1/people/x%40example.com/survey_requests/pending.json", headers=basic)
    assert pending.status_code == 200 and pending.get_json() == {"ok": True, "cancelled": 1}
    with app.app_context():
        assert db.session.scalars(select(SurveyRequest.status)).all() == ["cancelled"]
    gone = client.delete("/v1/people/email%3Ax%40example.com.json", headers=basic)
    assert gone.status_code == 202 and gone.get_json() == {"ok": True}
    for identifier in ("email:x@example.com", "12abc", "phone_number:+1555", "99999"):
        assert client.delete(f"/v1/people/{identifier}", headers=basic).status_code == 404


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/people.json?page_info=garbage", "page_info"),
        ("/v1/people.json?per_page=0", "per_page"),
        ("/v1/people.json?since=yesterday", "since"),
        ("/v1/survey_responses.json?order=sideways", "order"),
        ("/v1/survey_responses.json?trend=12", "trend"),
        ("/v1/survey_responses.json?page=0", "page"),
        ("/v1/survey_responses.json?person_id=abc", "person_id"),
        ("/v1/metrics.json?groups[]=email", "groups"),
        ("/v1/metrics.json?since=200&until=100", "until"),
    ],
)
def test_list_parameters_invalid_are_422(
    client: FlaskClient, basic: dict[str, str], path: str, field: str
) -> None:
    res = client.get(path, headers=basic)
    assert res.status_code == 422 and field in res.get_json()["details"]


def test_survey_response_update_cannot_move_person(client: FlaskClient, basic: dict[str, str]) -> None:
    one = client.post(
        "/v1/people", json={"email": "one@example.com", "send": False}, headers=basic
    ).get_json()
    two = client.post(
        "/v1/people", json={"email": "two@example.com", "send": False}, headers=basic
    ).get_json()
    answer = client.post(
        "/v1/survey_responses", json={"person": one["id"], "score": 7}, headers=basic
    ).get_json()
    moved = client.put(f"/v1/survey_responses/{answer['id']}", json={"person": two["id"]}, headers=basic)
    assert moved.status_code == 422 and "person" in moved.get_json()["details"]
    bad = client.put(f"/v1/survey_responses/{answer['id']}.json", json={"score": 12}, headers=basic)
    assert bad.status_code == 422
    missing = client.put("/v1/survey_responses/999999", json={"score": 1}, headers=basic)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + base64.b64encode(b"sk_nope:").decode()},
    ],
)
def test_missing_or_wrong_key_is_401_with_basic_challenge(
    client: FlaskClient, project: dict[str, Any], headers: dict[str, str]
) -> None:
    res = client.get("/v1/people.json", headers=headers)
    assert res.status_code == 401 and res.get_json()["code"] == "unauthorized"
    assert res.headers["WWW-Authenticate"].startswith("Basic")
