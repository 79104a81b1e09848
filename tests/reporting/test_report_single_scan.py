"""The NPS report's single-scan rollup: groups and series from one query, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

# (plan, score, created_at): one person each, so every response freezes exactly its own plan.
ROWS: list[tuple[Any, int, str]] = [
    ("pro", 10, "2024-01-03T12:00:00Z"),
    ("pro", 9, "2024-01-20T12:00:00Z"),
    ("free", 7, "2024-01-10T12:00:00Z"),
    ("pro", 3, "2024-03-05T12:00:00Z"),
    ("free", 8, "2024-03-06T12:00:00Z"),
    (None, 0, "2024-03-07T12:00:00Z"),
    (5, 9, "2024-03-10T23:30:00Z"),
]


@pytest.fixture
def dataset(client: FlaskClient, auth: dict[str, str]) -> None:
    for i, (plan, score, created_at) in enumerate(ROWS):
        properties = {} if plan is None else {"plan": plan}
        person = {"external_id": f"p{i}", "properties": properties}
        body = {"person": person, "score": score, "created_at": created_at}
        assert client.post("/api/v1/responses", json=body, headers=auth).status_code == 201


def counts(stats: dict[str, Any]) -> tuple[int, int, int]:
    return stats["promoters"], stats["passives"], stats["detractors"]


@pytest.mark.usefixtures("dataset")
def test_nps_report_grouped_by_plan_groups_and_series_match_hand_counts(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    res = client.get("/api/v1/reports/nps?group_by=plan&interval=month", headers=auth)
    assert res.status_code == 200
    body = res.get_json()
    assert counts(body["overall"]) == (3, 2, 2) and body["overall"]["nps"] == 14.3
    assert [(g["key"], counts(g)) for g in body["groups"]] == [
        ("pro", (2, 0, 1)),
        ("free", (0, 2, 0)),
        ("5", (1, 0, 0)),
        (None, (0, 0, 1)),
    ]
    assert [(s["period"], counts(s)) for s in body["series"]] == [
        ("2024-01-01", (2, 1, 0)),
        ("2024-02-01", (0, 0, 0)),
        ("2024-03-01", (1, 1, 2)),
    ]
    assert body["series"][1]["nps"] is None


@pytest.mark.usefixtures("dataset")
def test_nps_report_without_group_by_has_series_and_no_groups(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    body = client.get("/api/v1/reports/nps?interval=week", headers=auth).get_json()
    assert body["groups"] == []
    assert counts(body["overall"]) == (3, 2, 2)
    weeks = {s["period"]: counts(s) for s in body["series"]}
    # ISO weeks start on Monday: 2024-01-03 (Wednesday) falls in the week of 2024-01-01.
    assert weeks["2024-01-01"] == (1, 0, 0)
    # Sunday 2024-03-10 23:30 UTC is still the week of Monday 2024-03-04.
    assert weeks["2024-03-04"] == (1, 1, 2) and "2024-03-11" not in weeks
    assert weeks["2024-01-29"] == (0, 0, 0)
    assert sum(p + pa + d for p, pa, d in weeks.values()) == len(ROWS)


@pytest.mark.usefixtures("dataset")
def test_nps_report_grouped_by_missing_property_is_one_null_group(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    body = client.get("/api/v1/reports/nps?group_by=region", headers=auth).get_json()
    assert [(g["key"], g["responses"]) for g in body["groups"]] == [(None, len(ROWS))]
