"""Looking people and responses up: by email or external id, by id; another project's ids are 404."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.support.db import make_project


def ok(res: Any, status: int = 200) -> Any:
    assert res.status_code == status, (res.status_code, res.get_data(as_text=True)[:300])
    return res.get_json()


def person(client: FlaskClient, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    res = client.post("/api/v1/people", json=fields, headers=auth)
    assert res.status_code in (200, 201), res.get_data(as_text=True)[:300]
    body: dict[str, Any] = res.get_json()
    return body


def test_people_by_email_is_exact_and_case_insensitive(client: FlaskClient, auth: dict[str, str]) -> None:
    ann = person(client, auth, email="ann@example.com", external_id="u-ann", name="Ann")
    person(client, auth, email="ann@example.co")
    person(client, auth, email="joann@example.com")
    for email in ("ann@example.com", "Ann@Example.COM", "ann%40example.com"):
        page = ok(client.get(f"/api/v1/people?email={email}", headers=auth))
        assert [p["id"] for p in page["data"]] == [ann["id"]]
        assert page["data"][0]["name"] == "Ann" and page["next_cursor"] is None
    assert ok(client.get("/api/v1/people?email=nobody@example.com", headers=auth)) == {
        "data": [],
        "next_cursor": None,
    }


def test_people_by_external_id_is_exact(client: FlaskClient, auth: dict[str, str]) -> None:
    u1 = person(client, auth, external_id="u1")
    person(client, auth, external_id="u10")
    person(client, auth, external_id="U1")
    page = ok(client.get("/api/v1/people?external_id=u1", headers=auth))
    assert [p["id"] for p in page["data"]] == [u1["id"]]
    both = ok(client.get("/api/v1/people?external_id=u1&email=other@example.com", headers=auth))
    assert both["data"] == []


def test_people_list_pages_with_the_shared_cursor(client: FlaskClient, auth: dict[str, str]) -> None:
    ids = [person(client, auth, external_id=f"p{n}")["id"] for n in range(5)]
    seen: list[int] = []
    url = "/api/v1/people?limit=2"
    while True:
        page = ok(client.get(url, headers=auth))
        assert len(page["data"]) <= 2
        seen += [p["id"] for p in page["data"]]
        if page["next_cursor"] is None:
            break
        url = f"/api/v1/people?limit=2&cursor={page['next_cursor']}"
    assert seen == sorted(ids, reverse=True)
    bad = client.get("/api/v1/people?cursor=made.up", headers=auth)
    assert bad.status_code == 422 and "cursor" in bad.get_json()["details"]


def test_people_lookup_bad_values_are_422(client: FlaskClient, auth: dict[str, str]) -> None:
    for query in ("email=not-an-email", "external_id=", "limit=0", "limit=x"):
        res = client.get(f"/api/v1/people?{query}", headers=auth)
        assert res.status_code == 422, (query, res.get_data(as_text=True)[:300])
        assert res.get_json()["code"] == "validation_error"


def test_get_person_and_response_by_id(client: FlaskClient, auth: dict[str, str]) -> None:
    body = {"person": {"email": "r@example.com", "properties": {"plan": "pro"}}, "score": 4, "comment": "Meh"}
    created = ok(client.post("/api/v1/responses", json=body, headers=auth), 201)
    got = ok(client.get(f"/api/v1/responses/{created['id']}", headers=auth))
    assert got["id"] == created["id"] and got["score"] == 4 and got["category"] == "detractor"
    assert got["comment"] == "Meh" and got["properties"] == {"plan": "pro"}
    assert got["person"]["email"] == "r@example.com"
    who = ok(client.get(f"/api/v1/people/{got['person_id']}", headers=auth))
    assert who["email"] == "r@example.com" and who["properties"] == {"plan": "pro"}


def test_unknown_ids_are_404_in_the_error_shape(client: FlaskClient, auth: dict[str, str]) -> None:
    for path in ("/api/v1/responses/999999", "/api/v1/people/999999", f"/api/v1/responses/{2**40}"):
        res = client.get(path, headers=auth)
        assert res.status_code == 404, path
        assert res.get_json()["code"] == "not_found"


def test_another_projects_ids_and_people_are_not_found(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    other = make_project(app, "Other")
    other_auth = {"Authorization": f"Bearer {other['secret_key']}"}
    body = {"person": {"email": "b@other.example", "external_id": "b-1"}, "score": 9, "comment": "B's"}
    theirs = ok(client.post("/api/v1/responses", json=body, headers=other_auth), 201)
    for path in (f"/api/v1/responses/{theirs['id']}", f"/api/v1/people/{theirs['person_id']}"):
        res = client.get(path, headers=auth)
        assert res.status_code == 404, path
        error = res.get_json()
        assert error["code"] == "not_found" and "b@other.example" not in res.get_data(as_text=True)
        assert set(error) == {"status", "code", "message", "details"}
    for query in ("email=b@other.example", "external_id=b-1", ""):
        assert ok(client.get(f"/api/v1/people?{query}", headers=auth))["data"] == []
    # The owner sees them.
    assert ok(client.get(f"/api/v1/responses/{theirs['id']}", headers=other_auth))["comment"] == "B's"
    assert len(ok(client.get("/api/v1/people?external_id=b-1", headers=other_auth))["data"]) == 1
