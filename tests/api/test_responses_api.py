"""Recording and listing responses through the server API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from survey_service.extensions import db
from survey_service.models import Person, Response
from tests.support.db import make_project


def post_response(client: FlaskClient, auth: dict[str, str], body: dict[str, Any]) -> Any:
    return client.post("/api/v1/responses", json=body, headers=auth)


def test_record_response_valid_score_is_201_with_category(client: FlaskClient, auth: dict[str, str]) -> None:
    res = post_response(
        client, auth, {"person": {"email": "Ann@Example.com"}, "score": 9, "comment": "Great"}
    )
    assert res.status_code == 201
    body = res.get_json()
    assert body["score"] == 9 and body["category"] == "promoter" and body["comment"] == "Great"
    assert body["created_at"].endswith("Z")
    assert body["person"]["email"] == "ann@example.com"


@pytest.mark.parametrize(
    ("score", "category"),
    [(0, "detractor"), (6, "detractor"), (7, "passive"), (8, "passive"), (10, "promoter")],
)
def test_record_response_edges_are_categorised(
    client: FlaskClient, auth: dict[str, str], score: int, category: str
) -> None:
    res = post_response(client, auth, {"person": {"external_id": "u1"}, "score": score})
    assert res.status_code == 201
    assert res.get_json()["category"] == category


@pytest.mark.parametrize("score", ["9", 9.5, True, 11, -1, None, [9], 9.0])
def test_record_response_bad_score_is_422_in_error_shape(
    app: Flask, client: FlaskClient, auth: dict[str, str], score: Any
) -> None:
    res = post_response(client, auth, {"person": {"email": "a@b.co"}, "score": score})
    assert res.status_code == 422
    body = res.get_json()
    assert body["status"] == 422 and body["code"] == "validation_error"
    assert "score" in body["details"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Response)) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"person": {"email": "a@b.co"}, "score": 5, "comment": "x" * 5001}, "comment"),
        ({"person": {"email": "a@b.co"}, "score": 5, "surprise": 1}, "surprise"),
        ({"person": {}, "score": 5}, "person"),
        ({"score": 5}, "person"),
        ({"person": {"email": "not-an-email"}, "score": 5}, "person"),
        ({"person": {"email": "a@b.co", "properties": {"nested": {"a": 1}}}, "score": 5}, "person"),
        ({"person": {"email": "a@b.co", "properties": [1]}, "score": 5}, "person"),
        (
            {"person": {"email": "a@b.co", "properties": {f"k{i}": i for i in range(51)}}, "score": 5},
            "person",
        ),
        ({"person": {"email": "a@b.co", "properties": {"bad key!": 1}}, "score": 5}, "person"),
        ({"person": {"email": "a@b.co"}, "score": 5, "created_at": "yesterday"}, "created_at"),
    ],
)
def test_record_response_invalid_body_is_422_naming_the_field(
    client: FlaskClient, auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    res = post_response(client, auth, body)
    assert res.status_code == 422, res.get_json()
    assert field in res.get_json()["details"]


def test_record_response_exactly_5000_character_comment_is_kept(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    res = post_response(client, auth, {"person": {"email": "a@b.co"}, "score": 3, "comment": "é" * 5000})
    assert res.status_code == 201
    assert len(res.get_json()["comment"]) == 5000


def test_record_response_malformed_json_is_400_not_500(client: FlaskClient, auth: dict[str, str]) -> None:
    res = client.post(
        "/api/v1/responses", data='{"person":', headers={**auth, "Content-Type": "application/json"}
    )
    assert res.status_code == 400
    assert res.get_json()["code"] == "bad_request"


def test_record_response_body_over_limit_is_413(client: FlaskClient, auth: dict[str, str]) -> None:
    huge = '{"person": {"email": "a@b.co"}, "score": 5, "comment": "' + "x" * 70_000 + '"}'
    res = client.post("/api/v1/responses", data=huge, headers={**auth, "Content-Type": "application/json"})
    assert res.status_code == 413
    assert res.get_json()["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sk_wrong"}, {"Authorization": "Basic !!!"}, {"Authorization": "Token x"}],
)
def test_api_without_valid_key_is_401(client: FlaskClient, headers: dict[str, str]) -> None:
    res = client.get("/api/v1/responses", headers=headers)
    assert res.status_code == 401
    assert res.get_json()["code"] == "unauthorized"


def test_api_basic_auth_with_key_as_user_name_is_accepted(
    client: FlaskClient, project: dict[str, Any]
) -> None:
    import base64

    token = base64.b64encode(f"{project['secret_key']}:".encode()).decode()
    assert client.get("/api/v1/responses", headers={"Authorization": f"Basic {token}"}).status_code == 200


def test_record_response_freezes_properties_at_answer_time(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    post_response(
        client, auth, {"person": {"external_id": "u1", "properties": {"plan": "basic"}}, "score": 4}
    )
    client.post(
        "/api/v1/people", json={"external_id": "u1", "properties": {"plan": "enterprise"}}, headers=auth
    )
    post_response(client, auth, {"person": {"external_id": "u1"}, "score": 10})
    with app.app_context():
        plans = db.session.scalars(select(Response.properties).order_by(Response.id)).all()
        person = db.session.scalar(select(Person).where(Person.external_id == "u1"))
    assert [p["plan"] for p in plans] == ["basic", "enterprise"]
    assert person is not None and person.properties == {"plan": "enterprise"}


def test_upsert_person_by_external_id_then_email(client: FlaskClient, auth: dict[str, str]) -> None:
    first = client.post("/api/v1/people", json={"email": "x@y.co", "name": "X"}, headers=auth)
    assert first.status_code == 201
    # Adopting an external id for the person known by email updates, never duplicates.
    second = client.post("/api/v1/people", json={"email": "x@y.co", "external_id": "ext-1"}, headers=auth)
    assert second.status_code == 200 and second.get_json()["id"] == first.get_json()["id"]
    third = client.post("/api/v1/people", json={"external_id": "ext-1", "name": "Renamed"}, headers=auth)
    assert third.status_code == 200
    assert third.get_json() | {"updated_at": None} == second.get_json() | {
        "name": "Renamed",
        "updated_at": None,
    }


def test_upsert_person_null_property_removes_it(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post(
        "/api/v1/people", json={"external_id": "p", "properties": {"plan": "pro", "mrr": 99}}, headers=auth
    )
    res = client.post("/api/v1/people", json={"external_id": "p", "properties": {"plan": None}}, headers=auth)
    assert res.get_json()["properties"] == {"mrr": 99}


def test_property_names_are_normalised_at_every_api_door(client: FlaskClient, auth: dict[str, str]) -> None:
    body = {"external_id": "p", "properties": {" Plan ": "pro", "Account  Tier": "gold", "mrr": 9}}
    res = client.post("/api/v1/people", json=body, headers=auth)
    assert res.status_code in (200, 201) and res.get_json()["properties"] == {
        "plan": "pro",
        "account_tier": "gold",
        "mrr": 9,
    }
    # A later "PLAN" is the same property, and null removes it whatever its spelling.
    res = client.post("/api/v1/people", json={"external_id": "p", "properties": {"PLAN": None}}, headers=auth)
    assert res.get_json()["properties"] == {"account_tier": "gold", "mrr": 9}
    answered = post_response(
        client, auth, {"person": {"external_id": "p", "properties": {"Plan": "team"}}, "score": 9}
    )
    assert answered.get_json()["properties"]["plan"] == "team"
    report = client.get("/api/v1/reports/nps?group_by=PLAN", headers=auth).get_json()
    assert [(g["key"], g["responses"]) for g in report["groups"]] == [("team", 1)]
    # Two spellings of one name in one body are ambiguous; other characters stay refused.
    for bad in ({"Plan": "a", "plan": "b"}, {"a/b": 1}, {" ": 1}):
        res = client.post("/api/v1/people", json={"external_id": "q", "properties": bad}, headers=auth)
        assert res.status_code == 422, (bad, res.get_json())
        assert "properties" in res.get_json()["details"]


def test_upsert_person_email_of_another_external_id_is_409(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/api/v1/people", json={"email": "a@b.co", "external_id": "one"}, headers=auth)
    res = client.post("/api/v1/people", json={"email": "a@b.co", "external_id": "two"}, headers=auth)
    assert res.status_code == 409
    assert res.get_json()["code"] == "email_taken"


def test_list_responses_pages_with_cursor_and_filters(client: FlaskClient, auth: dict[str, str]) -> None:
    for score in [10, 3, 9, 8, 10]:
        post_response(client, auth, {"person": {"email": "a@b.co"}, "score": score})
    seen: list[int] = []
    cursor = None
    while True:
        url = "/api/v1/responses?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth).get_json()
        seen += [r["score"] for r in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [10, 8, 9, 3, 10]
    promoters = client.get("/api/v1/responses?category=promoter", headers=auth).get_json()["data"]
    assert [r["score"] for r in promoters] == [10, 9, 10]


@pytest.mark.parametrize(
    "query", ["category=fan", "limit=0", "limit=501", "since=notadate", "cursor=@@@", "cursor=cnh4"]
)
def test_list_responses_bad_query_is_422(client: FlaskClient, auth: dict[str, str], query: str) -> None:
    res = client.get(f"/api/v1/responses?{query}", headers=auth)
    assert res.status_code == 422, res.get_json()
    assert res.get_json()["code"] == "validation_error"


def test_tenants_never_see_each_other(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    other = make_project(app, "Other")
    other_auth = {"Authorization": f"Bearer {other['secret_key']}"}
    person = client.post("/api/v1/people", json={"email": "shared@x.co"}, headers=auth).get_json()
    post_response(client, auth, {"person": {"email": "shared@x.co", "properties": {"plan": "a"}}, "score": 0})
    assert client.get("/api/v1/responses", headers=other_auth).get_json()["data"] == []
    assert client.get(f"/api/v1/people/{person['id']}", headers=other_auth).status_code == 404
    assert client.get(f"/api/v1/people/{person['id']}", headers=auth).status_code == 200
    report = client.get("/api/v1/reports/nps", headers=other_auth).get_json()
    assert report["overall"]["responses"] == 0 and report["overall"]["nps"] is None
    # The same email in another project is another person.
    res = client.post("/api/v1/people", json={"email": "shared@x.co"}, headers=other_auth)
    assert res.status_code == 201 and res.get_json()["id"] != person["id"]


def test_healthz_and_openapi_document(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json()["status"] == "ok"
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3")
    assert {"/api/v1/responses", "/api/v1/people", "/api/v1/reports/nps"} <= set(spec["paths"])
    score = spec["components"]["schemas"]["ResponseIn"]["properties"]["score"]
    assert score["minimum"] == 0 and score["maximum"] == 10


def test_unknown_route_and_method_use_the_error_shape(client: FlaskClient, auth: dict[str, str]) -> None:
    assert client.get("/nope").get_json()["code"] == "not_found"
    res = client.delete("/api/v1/responses", headers=auth)
    assert res.status_code == 405 and res.get_json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("method", "url", "body", "expected"),
    [
        ("delete", "/api/v1/triggers/99999999999999999999", None, (404, 405)),
        ("get", "/api/v1/people/2147483648", None, (404,)),
        ("get", "/api/v1/survey_requests?person_id=251900549639", None, (422,)),
        ("post", "/api/v1/people", {"email": "a@b.co", "locale": "en-" + "x" * 40}, (422,)),
        ("post", "/api/v1/people", {"email": "a@b.co", "name": "nul\x00byte"}, (200, 201, 422)),
    ],
)
def test_api_values_beyond_the_database_are_4xx_never_500(
    client: FlaskClient, auth: dict[str, str], method: str, url: str, body: Any, expected: tuple[int, ...]
) -> None:
    res = getattr(client, method)(url, json=body, headers=auth)
    assert res.status_code in expected, res.get_json()
    assert res.get_json()["status"] == res.status_code if res.status_code >= 400 else True
