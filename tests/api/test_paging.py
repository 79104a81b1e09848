"""One paging shape on every /api/v1 list: `limit` + opaque `cursor` in, `{"data", "next_cursor"}` out.

Each list is walked with limit=2 over 5 rows of its project (and rows of another project beside them):
every row comes once, the last page says `next_cursor: null`, a row inserted mid-walk never repeats or
shifts one, a tampered, made-up, legacy or foreign cursor is a 422 in the one error shape, and a cursor
reused with other filters is honoured as "the rows matching these filters after that row".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from survey_service.extensions import db
from survey_service.models import (
    AlertRule,
    EmailSuppression,
    Enrollment,
    Person,
    Response,
    Survey,
    SurveyRequest,
    TriggerRule,
    WebhookDelivery,
    WidgetDismissal,
)
from tests.support.db import make_project

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Seeded:
    """What a list's seeding made: the list's URL (it may hold a parent id) and filters to try."""

    url: str
    filters: list[dict[str, str]] = field(default_factory=list)


def _survey(project_id: int) -> int:
    survey_id = db.session.scalar(select(Survey.id).where(Survey.project_id == project_id))
    assert survey_id is not None
    return survey_id


def _people(project_id: int, n: int, tag: str) -> list[Person]:
    people = [Person(project_id=project_id, email=f"{tag}{i}@example.com") for i in range(n)]
    db.session.add_all(people)
    db.session.flush()
    return people


def _responses(project_id: int, n: int, tag: str) -> list[Response]:
    survey_id = _survey(project_id)
    rows = []
    for i, person in enumerate(_people(project_id, n, tag)):
        score = (0, 9, 5, 10, 3, 8)[i % 6]
        category = "detractor" if score <= 6 else "passive" if score <= 8 else "promoter"
        # created_at out of id order: the list's order is the id's, whatever the stated time.
        created = T0 + timedelta(hours=(i * 7) % 5)
        rows.append(
            Response(
                project_id=project_id,
                survey_id=survey_id,
                person_id=person.id,
                score=score,
                category=category,
                created_at=created,
            )
        )
    db.session.add_all(rows)
    db.session.flush()
    return rows


def seed_responses(project_id: int, n: int, tag: str) -> Seeded:
    _responses(project_id, n, tag)
    return Seeded(
        "/api/v1/responses", [{"category": "detractor"}, {"since": (T0 + timedelta(hours=2)).isoformat()}]
    )


def _seed_suppressions(reason: str) -> Callable[[int, int, str], Seeded]:
    def seed(project_id: int, n: int, tag: str) -> Seeded:
        for i in range(n):
            created = T0 + timedelta(minutes=i)
            email = f"{tag}{i}@example.com"
            db.session.add(
                EmailSuppression(project_id=project_id, email=email, reason=reason, created_at=created)
            )
        path = "unsubscribes" if reason == "unsubscribed" else "bounces"
        return Seeded(f"/api/v1/{path}", [{"since": (T0 + timedelta(minutes=2)).isoformat()}])

    return seed


def seed_survey_requests(project_id: int, n: int, tag: str) -> Seeded:
    survey_id = _survey(project_id)
    people = _people(project_id, 2, tag)
    for i in range(n):
        status = "sent" if i % 2 else "pending"
        db.session.add(
            SurveyRequest(
                project_id=project_id,
                survey_id=survey_id,
                person_id=people[i % 2].id,
                channel="email",
                status=status,
            )
        )
    return Seeded("/api/v1/survey_requests", [{"status": "pending"}, {"person_id": str(people[1].id)}])


def seed_dismissals(project_id: int, n: int, tag: str) -> Seeded:
    people = _people(project_id, n, tag)
    for i, person in enumerate(people):
        # Two share a time: the order's tie-break (the id) must hold across a page boundary.
        at = T0 + timedelta(minutes=min(i, 3) if i != 1 else 2)
        db.session.add(WidgetDismissal(project_id=project_id, person_id=person.id, dismissed_at=at))
    return Seeded(
        "/api/v1/widget/dismissals",
        [
            {"until": (T0 + timedelta(minutes=3)).isoformat()},
            {"since": (T0 + timedelta(minutes=2)).isoformat()},
        ],
    )


def _rule(project_id: int, name: str) -> AlertRule:
    rule = AlertRule(
        project_id=project_id,
        name=name,
        target_url="https://hooks.example.com/nps",
        secret_encrypted="unused",
        events=["response.created"],
    )
    db.session.add(rule)
    db.session.flush()
    return rule


def seed_alert_rules(project_id: int, n: int, tag: str) -> Seeded:
    for i in range(n):
        _rule(project_id, f"{tag} rule {i}")
    return Seeded("/api/v1/alert_rules")


def seed_deliveries(project_id: int, n: int, tag: str) -> Seeded:
    rule = _rule(project_id, f"{tag} rule")
    other = _rule(project_id, f"{tag} other rule")  # its deliveries are another list
    responses = _responses(project_id, n, tag)
    for target in (rule, other):
        for response in responses:
            db.session.add(
                WebhookDelivery(
                    project_id=project_id,
                    rule_id=target.id,
                    response_id=response.id,
                    event="response.created",
                )
            )
    return Seeded(f"/api/v1/alert_rules/{rule.id}/deliveries")


def seed_triggers(project_id: int, n: int, tag: str) -> Seeded:
    survey_id = _survey(project_id)
    for i in range(n):
        db.session.add(
            TriggerRule(
                project_id=project_id, event_type=f"{tag}_event_{i}", survey_id=survey_id, channel="email"
            )
        )
    return Seeded("/api/v1/triggers")


def seed_recurring(project_id: int, n: int, tag: str) -> Seeded:
    survey_id = _survey(project_id)
    for person in _people(project_id, n, tag):
        db.session.add(
            Enrollment(
                project_id=project_id,
                person_id=person.id,
                survey_id=survey_id,
                channel="email",
                interval_days=90,
                next_run_at=T0,
            )
        )
    return Seeded("/api/v1/recurring")


LISTS: dict[str, Callable[[int, int, str], Seeded]] = {
    "responses": seed_responses,
    "unsubscribes": _seed_suppressions("unsubscribed"),
    "bounces": _seed_suppressions("bounced"),
    "survey_requests": seed_survey_requests,
    "widget_dismissals": seed_dismissals,
    "alert_rules": seed_alert_rules,
    "deliveries": seed_deliveries,
    "triggers": seed_triggers,
    "recurring": seed_recurring,
}


def identity(item: dict[str, Any]) -> Any:
    """What tells a list's items apart (suppressions and dismissals carry no id of their own)."""
    if "id" in item:
        return item["id"]
    if "person_id" in item and "dismissed_at" in item:
        return (item["person_id"], item["dismissed_at"])
    return item["email"]


def walk(client: FlaskClient, auth: dict[str, str], url: str, **params: str) -> tuple[list[Any], int]:
    """Every item of a list, page by page; and how many pages it took."""
    items: list[Any] = []
    cursor: str | None = None
    for pages in range(1, 100):
        answer = client.get(
            url, query_string={**params, **({"cursor": cursor} if cursor else {})}, headers=auth
        )
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert set(body) >= {"data", "next_cursor"}
        items += [identity(item) for item in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
        assert isinstance(cursor, str) and body["data"]
    raise AssertionError("the walk never ended")


def assert_error_shape(answer: Any) -> None:
    assert answer.status_code == 422, (answer.status_code, answer.get_data(as_text=True))
    body = answer.get_json()
    assert set(body) == {"status", "code", "message", "details"} and body["status"] == 422
    assert "cursor" in body["details"]


def tampered(cursor: str) -> list[str]:
    """Spellings of a cursor that are not one the server made."""
    flipped = cursor[:3] + ("A" if cursor[3] != "A" else "B") + cursor[4:]
    body, _, mac = cursor.partition(".")
    other_mac = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    return [
        flipped,
        f"{body}.{other_mac}",
        body,
        cursor[:-2],
        "3",
        "cjM",
        "not a cursor!",
        "x" * 201,
        "." * 5,
    ]


@pytest.fixture
def two_projects(app: Flask) -> tuple[dict[str, Any], dict[str, Any]]:
    return make_project(app, "A"), make_project(app, "B")


@pytest.mark.parametrize("name", list(LISTS))
def test_every_list_pages_by_opaque_keyset_cursor(
    app: Flask, client: FlaskClient, two_projects: tuple[dict[str, Any], dict[str, Any]], name: str
) -> None:
    a, b = two_projects
    auth_a = {"Authorization": f"Bearer {a['secret_key']}"}
    auth_b = {"Authorization": f"Bearer {b['secret_key']}"}
    with app.app_context():
        seeded = LISTS[name](a["id"], 5, "a")
        seeded_b = LISTS[name](b["id"], 3, "b")
        db.session.commit()

    everything = client.get(seeded.url, query_string={"limit": 100}, headers=auth_a).get_json()
    assert everything["next_cursor"] is None
    rows = [identity(item) for item in everything["data"]]
    assert len(rows) == 5 == len(set(rows))

    # limit=2 over 5 rows: three pages, each row once, in the list's order, null cursor at the end.
    items, pages = walk(client, auth_a, seeded.url, limit="2")
    assert items == rows and pages == 3

    first = client.get(seeded.url, query_string={"limit": 2}, headers=auth_a).get_json()
    cursor = first["next_cursor"]
    assert [identity(item) for item in first["data"]] == rows[:2]

    # A tampered or made-up cursor (or the old numeric kind) is a 422 in the one error shape.
    for bad in tampered(cursor):
        assert_error_shape(client.get(seeded.url, query_string={"limit": 2, "cursor": bad}, headers=auth_a))

    # Another project's cursor, or another list's, is refused, not a read of its rows or a jump.
    b_first = client.get(seeded_b.url, query_string={"limit": 1}, headers=auth_b).get_json()
    assert b_first["next_cursor"]
    assert_error_shape(
        client.get(seeded.url, query_string={"cursor": b_first["next_cursor"]}, headers=auth_a)
    )
    assert_error_shape(client.get(seeded_b.url, query_string={"cursor": cursor}, headers=auth_b))
    other_list = "/api/v1/bounces" if name != "bounces" else "/api/v1/unsubscribes"
    assert_error_shape(client.get(other_list, query_string={"cursor": cursor}, headers=auth_a))

    # The same cursor with another limit, or other filters, is honoured: that filter's rows after that row.
    rest = client.get(seeded.url, query_string={"limit": 100, "cursor": cursor}, headers=auth_a).get_json()
    assert [identity(item) for item in rest["data"]] == rows[2:] and rest["next_cursor"] is None
    for filters in seeded.filters:
        matching = client.get(seeded.url, query_string={"limit": 100, **filters}, headers=auth_a).get_json()
        wanted = [identity(item) for item in matching["data"]]
        assert 0 < len(wanted) < 5, filters  # the filter really filters
        answer = client.get(
            seeded.url, query_string={"limit": 100, "cursor": cursor, **filters}, headers=auth_a
        )
        got = [identity(item) for item in answer.get_json()["data"]]
        assert got == [row for row in wanted if rows.index(row) >= 2], filters

    # Rows inserted mid-walk never repeat a row or skip one of those already there (no OFFSET).
    page_two = client.get(seeded.url, query_string={"limit": 2, "cursor": cursor}, headers=auth_a).get_json()
    with app.app_context():
        LISTS[name](a["id"], 2, "late")
        db.session.commit()
    items = [identity(item) for item in first["data"] + page_two["data"]]
    following, _ = walk(client, auth_a, seeded.url, limit="2", cursor=page_two["next_cursor"])
    items += following
    assert len(items) == len(set(items)) and set(rows) <= set(items)


def test_limit_bounds_and_list_envelope_in_openapi(client: FlaskClient, auth: dict[str, str]) -> None:
    for bad in ("0", "-1", "1001", "x"):
        answer = client.get("/api/v1/triggers", query_string={"limit": bad}, headers=auth)
        assert answer.status_code == 422 and "limit" in answer.get_json()["details"]
    spec = client.get("/openapi.json").get_json()
    lists = [
        "/api/v1/responses",
        "/api/v1/unsubscribes",
        "/api/v1/bounces",
        "/api/v1/survey_requests",
        "/api/v1/widget/dismissals",
        "/api/v1/alert_rules",
        "/api/v1/alert_rules/{rule_id}/deliveries",
        "/api/v1/triggers",
        "/api/v1/recurring",
    ]
    for path in lists:
        operation = spec["paths"][path]["get"]
        names = {parameter["name"] for parameter in operation["parameters"] if parameter["in"] == "query"}
        assert {"limit", "cursor"} <= names, path
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        properties = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
        assert {"data", "next_cursor"} <= set(properties), path
