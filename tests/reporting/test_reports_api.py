"""The NPS report: overall, by frozen segment, and per period, on a dataset built by hand."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.support.reports import report

# (created_at, plan, score): hand-built so every figure below can be checked on paper.
DATASET = [
    ("2026-01-05T10:00:00Z", "pro", 10),  # Monday, week 2026-01-05, January
    ("2026-01-06T10:00:00Z", "pro", 9),
    ("2026-01-07T10:00:00Z", "basic", 3),
    ("2026-01-11T23:59:59Z", "basic", 7),  # Sunday: still week 2026-01-05
    ("2026-01-12T00:00:00Z", None, 8),  # Monday: next week; no plan property
    ("2026-02-02T09:00:00Z", "pro", 0),  # February
    ("2026-02-03T09:00:00Z", "basic", 10),
    ("2026-03-31T23:00:00Z", "pro", 6),  # March
]


@pytest.fixture
def seeded(client: FlaskClient, auth: dict[str, str]) -> None:
    for i, (when, plan, score) in enumerate(DATASET):
        props = {"plan": plan} if plan else {}
        body = {"person": {"external_id": f"u{i}", "properties": props}, "score": score, "created_at": when}
        assert client.post("/api/v1/responses", json=body, headers=auth).status_code == 201


@pytest.mark.slow
def test_report_guides_example_through_api_is_28_2(client: FlaskClient, auth: dict[str, str]) -> None:
    scores = [10] * 173 + [8] * 286 + [2] * 34
    for i, score in enumerate(scores):
        body = {"person": {"external_id": f"g{i}"}, "score": score}
        assert client.post("/api/v1/responses", json=body, headers=auth).status_code == 201
    overall = report(client, auth)["overall"]
    assert overall["nps"] == 28.2
    assert (overall["responses"], overall["promoters"], overall["passives"], overall["detractors"]) == (
        493,
        173,
        286,
        34,
    )
    # Adjusted Wald: p' = 173.75/496, d' = 34.75/496, NPS' = 0.280242,
    # SE' = sqrt((0.420363 - 0.280242^2) / 496) = 0.026252 → margin 1.96 * SE' * 100 = 5.145 → 5.1,
    # interval 28.024 -/+ 5.145 = 22.9 … 33.2 (the plain Wald margin would be 5.15).
    assert overall["margin_of_error"] == 5.1
    assert (overall["nps_low"], overall["nps_high"]) == (22.9, 33.2)


def test_report_empty_project_has_null_nps_and_no_rows(client: FlaskClient, auth: dict[str, str]) -> None:
    body = report(client, auth, "group_by=plan")
    assert body["overall"]["nps"] is None and body["overall"]["responses"] == 0
    assert body["overall"]["margin_of_error"] is None
    assert body["overall"]["nps_low"] is None and body["overall"]["nps_high"] is None
    assert body["groups"] == [] and body["series"] == []


@pytest.mark.usefixtures("seeded")
def test_report_overall_counts_every_category(client: FlaskClient, auth: dict[str, str]) -> None:
    overall = report(client, auth)["overall"]
    # promoters 10,9,10 = 3; passives 7,8 = 2; detractors 3,0,6 = 3; n = 8
    assert (overall["promoters"], overall["passives"], overall["detractors"]) == (3, 2, 3)
    assert overall["nps"] == 0.0
    assert overall["promoter_percent"] == 37.5 and overall["passive_percent"] == 25.0


@pytest.mark.usefixtures("seeded")
def test_report_group_by_plan_uses_frozen_values_and_null_group(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    # Changing a person's plan later must not move their past response.
    client.post("/api/v1/people", json={"external_id": "u0", "properties": {"plan": "basic"}}, headers=auth)
    groups = {g["key"]: g for g in report(client, auth, "group_by=plan")["groups"]}
    assert set(groups) == {"pro", "basic", None}
    assert (groups["pro"]["responses"], groups["pro"]["nps"]) == (4, 0.0)  # 10, 9, 0, 6
    assert (groups["basic"]["responses"], groups["basic"]["nps"]) == (3, 0.0)  # 3, 7, 10
    assert (groups[None]["responses"], groups[None]["passives"], groups[None]["nps"]) == (1, 1, 0.0)


@pytest.mark.usefixtures("seeded")
def test_report_group_by_unknown_property_is_one_null_group(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    groups = report(client, auth, "group_by=industry")["groups"]
    assert len(groups) == 1 and groups[0]["key"] is None and groups[0]["responses"] == 8


@pytest.mark.usefixtures("seeded")
def test_report_month_series_fills_periods_in_order(client: FlaskClient, auth: dict[str, str]) -> None:
    series = report(client, auth, "interval=month")["series"]
    assert [s["period"] for s in series] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert [s["responses"] for s in series] == [5, 2, 1]
    assert series[0]["nps"] == 20.0  # 2 promoters, 2 passives, 1 detractor of 5
    assert series[2]["nps"] == -100.0


@pytest.mark.usefixtures("seeded")
def test_report_week_series_starts_monday_and_shows_empty_weeks(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    series = report(client, auth, "interval=week&until=2026-01-31")["series"]
    assert [(s["period"], s["responses"]) for s in series] == [
        ("2026-01-05", 4),
        ("2026-01-12", 1),
        ("2026-01-19", 0),
        ("2026-01-26", 0),
    ]
    assert series[2]["nps"] is None and series[2]["margin_of_error"] is None


@pytest.mark.usefixtures("seeded")
def test_report_day_series_with_since_until_window(client: FlaskClient, auth: dict[str, str]) -> None:
    body = report(client, auth, "interval=day&since=2026-01-06&until=2026-01-07")
    assert [(s["period"], s["responses"]) for s in body["series"]] == [("2026-01-06", 1), ("2026-01-07", 1)]
    assert body["overall"]["responses"] == 2 and body["overall"]["nps"] == 0.0


@pytest.mark.usefixtures("seeded")
def test_report_until_datetime_is_exclusive(client: FlaskClient, auth: dict[str, str]) -> None:
    body = report(client, auth, "until=2026-01-12T00:00:00Z")
    assert body["overall"]["responses"] == 4


@pytest.mark.parametrize(
    "query",
    [
        "interval=year",
        "since=2026-13-01",
        "since=2026-02-01&until=2026-01-01",
        "group_by=bad%2Fname",  # spaces would be "_"; a slash is no property name
        "group_by=" + "x" * 65,
    ],
)
def test_report_bad_parameters_are_422(client: FlaskClient, auth: dict[str, str], query: str) -> None:
    res = client.get(f"/api/v1/reports/nps?{query}", headers=auth)
    assert res.status_code == 422
    assert res.get_json()["code"] == "validation_error"


def test_report_group_by_numeric_property_keys_are_text(client: FlaskClient, auth: dict[str, str]) -> None:
    for i, seats in enumerate([10, 10, 250]):
        body = {"person": {"external_id": f"n{i}", "properties": {"seats": seats}}, "score": 9}
        client.post("/api/v1/responses", json=body, headers=auth)
    groups = report(client, auth, "group_by=seats")["groups"]
    assert [(g["key"], g["responses"]) for g in groups] == [("10", 2), ("250", 1)]
