"""The server API refuses what it would otherwise misread: unknown query parameters (422 naming them),
a body that is not JSON (415), a body over the limit (413 naming it); the Delighted API stays lenient."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from survey_service.core.request_limits import too_large_message


def error_of(res: Any, status: int) -> dict[str, Any]:
    """The body of an error answer in the one shape, after checking its status."""
    assert res.status_code == status, (res.status_code, res.get_data(as_text=True)[:300])
    body: dict[str, Any] = res.get_json()
    assert set(body) == {"status", "code", "message", "details"} and body["status"] == status
    return body


@pytest.mark.parametrize(
    ("path", "unknown"),
    [
        ("/api/v1/responses?catgory=detractor", "catgory"),  # a list with a query schema
        ("/api/v1/responses?category=detractor&catgory=detractor", "catgory"),
        ("/api/v1/people?emial=a@b.co", "emial"),
        ("/api/v1/reports/nps?group_by=plan&intervall=week", "intervall"),
        ("/api/v1/exports/responses.csv?catgory=promoter", "catgory"),
        ("/api/v1/project?verbose=1", "verbose"),  # no query schema at all
        ("/api/v1/widget/settings?catgory=x", "catgory"),
        ("/api/v1/people/1?expand=responses", "expand"),
        ("/api/v1/triggers?limt=5", "limt"),
    ],
)
def test_unknown_query_parameter_is_422_naming_it(
    client: FlaskClient, auth: dict[str, str], path: str, unknown: str
) -> None:
    body = error_of(client.get(path, headers=auth), 422)
    assert body["code"] == "validation_error"
    assert body["message"] == f"Unknown query parameter: {unknown}."
    assert body["details"] == {unknown: ["Unknown field."]}


def test_unknown_query_parameters_are_all_named_also_on_writes(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    res = client.post("/api/v1/people?b=1&a=2", json={"email": "x@example.com"}, headers=auth)
    body = error_of(res, 422)
    assert body["message"] == "Unknown query parameters: a, b."
    assert set(body["details"]) == {"a", "b"}
    assert client.get("/api/v1/people?email=x@example.com", headers=auth).get_json()["data"] == []


def test_unknown_query_parameter_after_authentication(client: FlaskClient) -> None:
    error_of(client.get("/api/v1/responses?catgory=detractor"), 401)


def test_known_query_parameters_still_filter(client: FlaskClient, auth: dict[str, str]) -> None:
    for score in (2, 10):
        body = {"person": {"external_id": f"u{score}"}, "score": score}
        assert client.post("/api/v1/responses", json=body, headers=auth).status_code == 201
    res = client.get("/api/v1/responses?category=detractor&limit=10", headers=auth)
    assert res.status_code == 200
    assert [r["score"] for r in res.get_json()["data"]] == [2]


def test_query_schemas_load_with_unknown_raise_even_without_the_hook() -> None:
    """Belt and braces: /api/v1's webargs parser loads query schemas with unknown=RAISE (webargs' own
    default drops unknown query parameters), so a blueprint without check_request_shape refuses too."""
    from flask_smorest import Api
    from marshmallow import Schema, fields

    from survey_service.api import ApiBlueprint
    from survey_service.errors import from_http_exception

    class Query(Schema):
        category = fields.String()

    app = Flask(__name__)
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = Api(app)
    bp = ApiBlueprint("bare", __name__, url_prefix="/bare")

    @bp.get("/")  # type: ignore[untyped-decorator]  # flask-smorest is untyped
    @bp.arguments(Query, location="query")  # type: ignore[untyped-decorator]
    def bare(query: dict[str, Any]) -> dict[str, Any]:
        return query

    api.register_blueprint(bp)
    app.register_error_handler(422, from_http_exception)
    client = app.test_client()
    assert client.get("/bare/?category=x").get_json() == {"category": "x"}
    res = client.get("/bare/?catgory=x")
    assert res.status_code == 422
    assert res.get_json()["details"] == {"catgory": ["Unknown field."]}


@pytest.mark.parametrize(
    ("method", "path", "data", "content_type"),
    [
        ("POST", "/api/v1/responses", {"person[email]": "a@b.co", "score": "5"}, None),
        ("POST", "/api/v1/people", "email=a@b.co", "application/x-www-form-urlencoded"),
        ("POST", "/api/v1/people", '{"email": "a@b.co"}', "text/plain"),
        ("POST", "/api/v1/people", '{"email": "a@b.co"}', None),
        ("PATCH", "/api/v1/project", "quiet_period_days=3", "application/x-www-form-urlencoded"),
    ],
)
def test_body_without_json_content_type_is_415(
    client: FlaskClient, auth: dict[str, str], method: str, path: str, data: Any, content_type: str | None
) -> None:
    kwargs: dict[str, Any] = {"data": data, "headers": auth}
    if content_type:
        kwargs["content_type"] = content_type
    body = error_of(client.open(path, method=method, **kwargs), 415)
    assert body["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in body["message"]


def test_json_content_types_are_accepted(client: FlaskClient, auth: dict[str, str]) -> None:
    for content_type in (
        "application/json",
        "application/json; charset=utf-8",
        "application/merge-patch+json",
    ):
        res = client.post(
            "/api/v1/people", data='{"email": "j@b.co"}', content_type=content_type, headers=auth
        )
        assert res.status_code in (200, 201), (content_type, res.get_data(as_text=True))


def test_empty_body_is_still_422_missing_fields(client: FlaskClient, auth: dict[str, str]) -> None:
    body = error_of(client.post("/api/v1/responses", headers=auth), 422)
    assert "score" in body["details"]


def test_body_over_limit_is_413_naming_the_limit(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    huge = '{"person": {"email": "a@b.co"}, "score": 5, "comment": "' + "x" * limit + '"}'
    res = client.post("/api/v1/responses", data=huge, headers={**auth, "Content-Type": "application/json"})
    body = error_of(res, 413)
    assert body["code"] == "payload_too_large"
    assert body["message"] == too_large_message(limit)
    assert "64 KiB" in body["message"] and str(limit) in body["message"]
    assert body["details"] == {"max_bytes": limit}


def test_widget_body_over_its_limit_names_its_limit(client: FlaskClient) -> None:
    res = client.post("/api/widget/identify", data="x" * 20_000, content_type="text/plain")
    body = error_of(res, 413)
    assert "16 KiB" in body["message"]


def test_delighted_api_keeps_ignoring_extra_parameters(client: FlaskClient, project: dict[str, Any]) -> None:
    basic = (project["secret_key"], "")
    res = client.get("/v1/people.json?per_page=5&some_client_param=1", auth=basic)
    assert res.status_code == 200, res.get_data(as_text=True)[:300]
    res = client.post("/v1/people.json?extra=1", data={"email": "d@example.com", "send": "false"}, auth=basic)
    assert res.status_code in (200, 201), res.get_data(as_text=True)[:300]


def test_openapi_documents_422_everywhere_and_415_for_json_bodies(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert "UNSUPPORTED_MEDIA_TYPE" in spec["components"]["responses"]
    operations = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        if path.startswith("/api/v1/")
        for method, op in ops.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 30
    for path, method, op in operations:
        assert "422" in op["responses"], (method, path)
        takes_json = "application/json" in op.get("requestBody", {}).get("content", {})
        assert ("415" in op["responses"]) == takes_json, (method, path)
    assert "415" in spec["paths"]["/api/v1/responses"]["post"]["responses"]
    # The lookups are documented too.
    people = spec["paths"]["/api/v1/people"]["get"]
    assert {p["name"] for p in people["parameters"]} >= {"email", "external_id", "limit", "cursor"}
    assert "200" in spec["paths"]["/api/v1/responses/{response_id}"]["get"]["responses"]
