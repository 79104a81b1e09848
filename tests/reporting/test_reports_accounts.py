"""Roll-ups by account: group_by an account property (`account`, `company`), counted by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from survey_service.services.responses import record_response
from tests.support.reports import report

# (person, account, score, created_at): B2B accounts with several respondents each.
ANSWERS: list[tuple[str, str | None, int, str]] = [
    ("ann", "acme", 10, "2026-01-05T10:00:00Z"),
    ("bob", "acme", 9, "2026-01-06T10:00:00Z"),
    ("cid", "acme", 2, "2026-01-07T10:00:00Z"),
    ("dee", "globex", 7, "2026-01-08T10:00:00Z"),
    ("eve", "globex", 8, "2026-01-09T10:00:00Z"),
    ("fay", "initech", 0, "2026-02-03T10:00:00Z"),
    ("gus", None, 9, "2026-02-04T10:00:00Z"),  # no account known
    ("cid", "acme", 10, "2026-02-10T10:00:00Z"),  # cid answers again, now a promoter
]


@pytest.fixture(params=["account", "company"])
def key(request: pytest.FixtureRequest, app: Flask, project: dict[str, Any]) -> str:
    """The same answers with the account under the property name of this run."""
    name: str = request.param
    with app.app_context():
        for who, account, score, when in ANSWERS:
            props = {name: account} if account else {}
            created_at = datetime.fromisoformat(when.replace("Z", "+00:00"))
            record_response(
                project["id"], {"external_id": who, "properties": props}, score, created_at=created_at
            )
    return name


def rows(body: dict[str, Any]) -> list[tuple[Any, int, int, int, float | None]]:
    return [(g["key"], g["promoters"], g["passives"], g["detractors"], g["nps"]) for g in body["groups"]]


def test_report_group_by_account_rolls_up_every_respondent(
    client: FlaskClient, auth: dict[str, str], key: str
) -> None:
    # acme: 10, 9, 2, 10 -> 3 promoters, 1 detractor of 4 = +50; globex: 7, 8 -> 0; initech: 0 -> -100.
    assert rows(report(client, auth, f"group_by={key}")) == [
        ("acme", 3, 0, 1, 50.0),
        ("globex", 0, 2, 0, 0.0),
        ("initech", 0, 0, 1, -100.0),
        (None, 1, 0, 0, 100.0),
    ]


def test_report_group_by_account_last_per_person_counts_each_respondent_once(
    client: FlaskClient, auth: dict[str, str], key: str
) -> None:
    # cid's latest answer (10) replaces the 2: acme 10, 9, 10 -> +100.
    body = report(client, auth, f"group_by={key}&mode=last_per_person")
    assert rows(body)[0] == ("acme", 3, 0, 0, 100.0)
    assert body["overall"]["responses"] == 7


def test_report_group_by_account_with_series_and_filter(
    client: FlaskClient, auth: dict[str, str], key: str
) -> None:
    body = report(client, auth, f"group_by={key}&where={key}:acme&interval=month")
    assert rows(body) == [("acme", 3, 0, 1, 50.0)]
    # January: 10, 9, 2 -> +33.3; February: 10 -> +100.
    assert [(s["period"], s["responses"], s["nps"]) for s in body["series"]] == [
        ("2026-01-01", 3, 33.3),
        ("2026-02-01", 1, 100.0),
    ]


def test_report_account_is_frozen_when_a_person_moves(
    client: FlaskClient, app: Flask, project: dict[str, Any], auth: dict[str, str], key: str
) -> None:
    # dee moves to acme and answers again: the old 7 stays with globex.
    with app.app_context():
        record_response(
            project["id"],
            {"external_id": "dee", "properties": {key: "acme"}},
            6,
            created_at=datetime.fromisoformat("2026-03-01T10:00:00+00:00"),
        )
    groups = {g[0]: g[1:] for g in rows(report(client, auth, f"group_by={key}"))}
    assert groups["globex"] == (0, 2, 0, 0.0)
    assert groups["acme"] == (3, 0, 2, 20.0)  # 10, 9, 2, 10, 6: (3 - 2) / 5
