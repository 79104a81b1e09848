"""Input bounds: junk JSON bodies at every door, and the range of instants the service accepts.

Every junk body answers 400/422 (or the door's own 401/403/404) in the one error shape, never a
500: nesting that exhausts the parser's stack, a 5,000-digit integer, lone UTF-16 surrogates, NaN,
a non-ASCII user_hash. Instants: facts (responses, events, Delighted times) lie between 2000-01-01
and now + 1 day; renewal dates up to ten years ahead; report range bounds are clamped.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from survey_service.core import keys
from survey_service.extensions import db
from survey_service.models import Response, SurveyRequest
from tests.support.junk import ERROR_KEYS, JUNK, JUNK_BODIES, basic


def assert_error_shape(res: Any, *statuses: int) -> dict[str, Any]:
    """A client error in the one shape (and one of `statuses` when given), never a 500."""
    assert res.status_code < 500, res.get_data(as_text=True)[:300]
    if statuses:
        assert res.status_code in statuses, (res.status_code, res.get_data(as_text=True)[:300])
    body: dict[str, Any] = res.get_json()
    assert set(body) == ERROR_KEYS and body["status"] == res.status_code, body
    return body


@pytest.fixture
def limits_app(app: Flask) -> Flask:
    """The app with rate-limit keys of its own (the widget and public pages count per client)."""
    app.config["RATELIMIT_KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    return app


def doors(client: FlaskClient, project: dict[str, Any]) -> dict[str, tuple[dict[str, str], dict[str, Any]]]:
    """{path: (headers, a valid body with SURROGATE and HUGE markers)} for every JSON door."""
    bearer = {"Authorization": f"Bearer {project['secret_key']}"}
    person = client.post(
        "/v1/people.json", json={"email": "p@example.com", "send": False}, headers=basic(project)
    )
    assert person.status_code == 200, person.get_json()
    key = project["public_key"]
    someone = {"email": "a@b.co", "name": "SURROGATE", "properties": {"n": "HUGE"}}
    return {
        "/api/widget/identify": (
            {},
            {"key": key, "user": {"id": "SURROGATE", "user_hash": "0" * 64, "properties": {"n": "HUGE"}}},
        ),
        "/api/widget/answer": ({}, {"key": key, "token": "t", "score": "HUGE", "comment": "SURROGATE"}),
        "/api/v1/responses": (bearer, {"person": someone, "score": "HUGE", "comment": "SURROGATE"}),
        "/api/v1/events": (bearer, {"id": "SURROGATE", "type": "signup", "person": someone}),
        "/api/v1/people": (bearer, someone),
        "/v1/people.json": (basic(project), {**someone, "send": False, "delay": "HUGE"}),
        "/v1/survey_responses.json": (
            basic(project),
            {"person": person.get_json()["id"], "score": "HUGE", "comment": "SURROGATE"},
        ),
    }


@pytest.mark.parametrize("junk", list(JUNK))
def test_json_doors_junk_body_answers_client_error_in_the_one_shape(
    limits_app: Flask, client: FlaskClient, project: dict[str, Any], junk: str
) -> None:
    for path, (headers, body) in doors(client, project).items():
        for content_type in ("application/json", "text/plain"):
            if content_type == "text/plain" and not path.startswith("/api/widget/"):
                continue  # only the widget reads a text/plain body (no CORS preflight)
            res = client.post(path, data=JUNK[junk](body), headers={**headers, "Content-Type": content_type})
            found = assert_error_shape(res, 400, 403, 404, 422)
            assert res.status_code in (400, 422) or junk in ("long_integer", "nan"), (path, found)
    with limits_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Response)) == 0


def test_json_doors_junk_without_a_key_answers_400_before_authentication(
    limits_app: Flask, client: FlaskClient
) -> None:
    for path in ("/api/v1/responses", "/api/v1/events", "/api/v1/people", "/v1/people.json"):
        for name, raw in JUNK_BODIES.items():
            res = client.post(path, data=raw, headers={"Content-Type": "application/json"})
            assert_error_shape(res, 400, 401, 422)
            if name in ("deep_nesting", "huge_integer", "lone_surrogate"):
                assert res.status_code in (400, 422), (path, name)


def test_request_limits_nesting_at_the_limit_and_paired_surrogates_are_accepted(
    limits_app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    # 64 levels in all: the body, "properties", then 62 lists (refused by Properties, not by the limit).
    body = '{"email": "a@b.co", "name": "\\ud83d\\ude00", "properties": {"n": ' + "[" * 62 + "]" * 62 + "}}"
    res = client.post("/api/v1/people", data=body, headers={**auth, "Content-Type": "application/json"})
    assert res.status_code == 422 and "properties" in res.get_json()["details"], res.get_json()
    body = '{"email": "a@b.co", "name": "\\ud83d\\ude00", "properties": {"n": ' + str(2**63 - 1) + "}}"
    res = client.post("/api/v1/people", data=body, headers={**auth, "Content-Type": "application/json"})
    assert res.status_code == 201, res.get_json()
    assert res.get_json()["name"] == "\N{GRINNING FACE}"


def test_widget_identify_non_ascii_user_hash_is_refused_with_403(
    limits_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    user = {"id": "u1", "user_hash": "é" * 64}
    res = client.post("/api/widget/identify", json={"key": project["public_key"], "user": user})
    body = assert_error_shape(res, 403)
    assert body["code"] == "identity_refused"
    good = {"id": "u1", "user_hash": keys.user_hash(project["identity_secret"], "u1")}
    assert (
        client.post("/api/widget/identify", json={"key": project["public_key"], "user": good}).status_code
        == 200
    )


def test_landing_page_post_junk_bodies_answer_client_errors(
    limits_app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    links = client.post("/api/v1/survey_links", json={"person": {"email": "l@example.com"}}, headers=auth)
    assert links.status_code == 201, links.get_json()
    path = urlsplit(links.get_json()["url"]).path
    accept = {"Accept": "application/json"}
    for raw in JUNK_BODIES.values():
        res = client.post(path, data=raw, headers={**accept, "Content-Type": "application/json"})
        assert_error_shape(res, 400, 422)
    # A form cannot carry a lone surrogate: its UTF-8 bytes are decoded as U+FFFD, never stored raw.
    res = client.post(path, data="score=9&comment=%ED%A0%80&view=x", headers={**accept, **_form()})
    assert_error_shape(res, 400, 422)


def _form() -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded"}


# ---- instants -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "created_at",
    [
        "0001-01-01",
        "1999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-05:00",  # astimezone(UTC) overflows past year 9999
        "0001-01-01T00:00:00+05:00",
        "9999-12-31",
        "future",
    ],
)
def test_responses_api_created_at_outside_the_fact_range_is_422(
    client: FlaskClient, auth: dict[str, str], created_at: str
) -> None:
    if created_at == "future":
        created_at = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    body = {"person": {"email": "a@b.co"}, "score": 9, "created_at": created_at}
    res = client.post("/api/v1/responses", json=body, headers=auth)
    found = assert_error_shape(res, 422)
    assert "created_at" in found["details"], found


def test_responses_api_created_at_at_the_bounds_is_accepted(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    for created_at in ("2000-01-01T00:00:00Z", (datetime.now(UTC) + timedelta(hours=23)).isoformat()):
        body = {"person": {"email": "a@b.co"}, "score": 9, "created_at": created_at}
        res = client.post("/api/v1/responses", json=body, headers=auth)
        assert res.status_code == 201, res.get_json()


def test_events_api_occurred_at_outside_the_fact_range_is_422(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    for occurred_at in ("0001-01-01", "9999-12-31T00:00:00+14:00"):
        body = {
            "id": occurred_at,
            "type": "signup",
            "person": {"email": "a@b.co"},
            "occurred_at": occurred_at,
        }
        found = assert_error_shape(client.post("/api/v1/events", json=body, headers=auth), 422)
        assert "occurred_at" in found["details"], found


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/reports/nps?since=0001-01-01&until=9999-12-31&interval=week&compare=previous",
        "/api/v1/reports/nps?until=9999-12-31&interval=day&rolling_days=366",
        "/api/v1/reports/nps?since=0001-01-01T00:00:00%2B05:00",
        "/api/v1/responses?since=0001-01-01&until=9999-12-31",
        "/api/v1/exports/responses.csv?since=0001-01-01&until=9999-12-31",
        "/api/v1/reports/funnel?since=0001-01-01&until=9999-12-31",
    ],
)
def test_report_ranges_at_the_ends_of_the_calendar_answer_200(
    client: FlaskClient, auth: dict[str, str], path: str
) -> None:
    body = {"person": {"email": "a@b.co"}, "score": 9, "created_at": "2026-01-05T10:00:00Z"}
    assert client.post("/api/v1/responses", json=body, headers=auth).status_code == 201
    res = client.get(path, headers=auth)
    assert res.status_code == 200, res.get_data(as_text=True)[:300]


def test_delighted_created_at_outside_the_fact_range_is_422(
    limits_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person = client.post(
        "/v1/people.json", json={"email": "d@example.com", "send": False}, headers=basic(project)
    )
    for created_at in (0, 946684799, int((datetime.now(UTC) + timedelta(days=3)).timestamp())):
        body = {"person": person.get_json()["id"], "score": 9, "created_at": created_at}
        found = assert_error_shape(
            client.post("/v1/survey_responses.json", json=body, headers=basic(project)), 422
        )
        assert "created_at" in found["details"], found
    body = {"email": "d@example.com", "send": False, "last_sent_at": 1}
    assert_error_shape(client.post("/v1/people.json", json=body, headers=basic(project)), 422)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/survey_responses.json?until=253402300799",
        "/v1/survey_responses.json?updated_until=253402300799&since=0",
        "/v1/metrics.json?until=253402300799",
        "/v1/people.json?until=253402300799",
        "/v1/unsubscribes.json?until=253402300799",
    ],
)
def test_delighted_range_until_the_end_of_year_9999_answers_200(
    limits_app: Flask, client: FlaskClient, project: dict[str, Any], path: str
) -> None:
    res = client.get(path, headers=basic(project))
    assert res.status_code == 200, res.get_data(as_text=True)[:300]


def test_renewal_date_past_the_plan_horizon_schedules_nothing(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    rule = client.post(
        "/api/v1/triggers", json={"event_type": "renewal_upcoming", "channel": "email"}, headers=auth
    )
    assert rule.status_code == 201, rule.get_json()
    for n, renewal in enumerate(["9999-12-31", "9999-12-31T23:00:00-10:00", "0001-01-01"]):
        body = {
            "id": f"r{n}",
            "type": "renewal_upcoming",
            "person": {"email": f"r{n}@example.com"},
            "properties": {"renewal_date": renewal},
        }
        res = client.post("/api/v1/events", json=body, headers=auth)
        assert res.status_code == 202, res.get_data(as_text=True)[:300]
    with app.app_context():
        assert db.session.scalars(select(SurveyRequest)).all() == []


def test_api_body_is_parsed_once_by_the_limits_hook_and_junk_still_gets_webargs_answer(
    client: FlaskClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """webargs takes the body request_limits parsed and checked; it parses only what was not JSON."""
    import webargs.core

    real_parse = webargs.core.parse_json
    parsed: list[bytes] = []

    def counting_parse(data: bytes, **kwargs: object) -> object:
        parsed.append(data)
        return real_parse(data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(webargs.core, "parse_json", counting_parse)
    body = {"person": {"email": "once@example.com"}, "score": 9}
    res = client.post("/api/v1/responses", json=body, headers=auth)
    assert res.status_code == 201 and parsed == []
    junk = client.post("/api/v1/responses", data=b"{not json", headers=auth, content_type="application/json")
    assert junk.status_code == 400 and junk.get_json()["code"] == "bad_request" and parsed == [b"{not json"]
