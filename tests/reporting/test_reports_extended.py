"""Report extensions against hand-computed cases: quarter, filters, comparison, flags, comments, modes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from survey_service.core import nps
from survey_service.services.responses import record_response
from tests.support.db import make_project
from tests.support.reports import report


def answer(app: Flask, project_id: int, who: str, score: int, when: str, **extra: Any) -> None:
    props = extra.pop("properties", {})
    with app.app_context():
        record_response(
            project_id,
            {"external_id": who, "properties": props},
            score,
            extra.pop("comment", None),
            created_at=datetime.fromisoformat(when.replace("Z", "+00:00")),
            **extra,
        )


def test_compare_worked_example_against_even_split_is_significant() -> None:
    # 173/286/34 (NPS +28.2) vs 30/40/30 (NPS 0), each with +3/4, +3/2, +3/4 pseudo-responses:
    # p' = 173.75/496 = 0.350302, d' = 34.75/496 = 0.070060, NPS1' = 0.280242,
    # var1 = (0.420363 - 0.280242^2) / 496 = 0.00068917; NPS2' = 0, var2 = (61.5/103) / 103 = 0.0057970;
    # z = 0.280242 / sqrt(0.0064862) = 3.480, p = 0.0005. The change stays the observed +28.2.
    result = nps.compare(nps.NpsStats(173, 286, 34), nps.NpsStats(30, 40, 30))
    assert (result.change, result.z, result.p_value, result.significant) == (28.2, 3.48, 0.0005, True)


def test_compare_small_samples_are_not_significant() -> None:
    # 5/3/2 (NPS +30) vs 4/3/3 (NPS +10), adjusted: NPS1' = 3/13, NPS2' = 1/13, p' + d' = 8.5/13 on both,
    # var1 = (0.653846 - 0.053254) / 13 = 0.046199, var2 = (0.653846 - 0.005917) / 13 = 0.049841,
    # z = (2/13) / sqrt(0.096040) = 0.496, p = 0.6196.
    result = nps.compare(nps.NpsStats(5, 3, 2), nps.NpsStats(4, 3, 3))
    assert (result.change, result.z, result.p_value, result.significant) == (20.0, 0.496, 0.6196, False)


def test_compare_one_answer_each_is_not_certainly_different() -> None:
    # One promoter vs one detractor used to be z undefined, p = 0 ("significant"): NPS' = +-1/4,
    # var = (0.625 - 0.0625) / 4 = 0.140625 each, z = 0.5 / sqrt(0.28125) = 0.943, p = 0.3458.
    result = nps.compare(nps.NpsStats(1, 0, 0), nps.NpsStats(0, 0, 1))
    assert (result.change, result.z, result.p_value, result.significant) == (200.0, 0.943, 0.3458, False)
    same = nps.compare(nps.NpsStats(10, 0, 0), nps.NpsStats(10, 0, 0))
    assert (same.change, same.z, same.p_value, same.significant) == (0.0, 0.0, 1.0, False)


def test_compare_empty_side_is_undefined() -> None:
    result = nps.compare(nps.EMPTY, nps.NpsStats(2, 0, 0))
    assert result.as_dict()["change"] is None and result.significant is None


def test_report_quarter_interval_fills_quarters(
    client: FlaskClient, app: Flask, project: dict[str, Any], auth: dict[str, str]
) -> None:
    answer(app, project["id"], "a", 10, "2026-02-15T12:00:00Z")
    answer(app, project["id"], "b", 3, "2026-03-31T23:59:00Z")
    answer(app, project["id"], "c", 8, "2026-08-01T00:00:00Z")
    body = report(client, auth, "interval=quarter")
    assert [(s["period"], s["responses"], s["nps"]) for s in body["series"]] == [
        ("2026-01-01", 2, 0.0),
        ("2026-04-01", 0, None),
        ("2026-07-01", 1, 0.0),
    ]


def test_report_filters_by_property_and_channel(
    client: FlaskClient, app: Flask, project: dict[str, Any], auth: dict[str, str]
) -> None:
    answer(
        app,
        project["id"],
        "a",
        10,
        "2026-01-02T00:00:00Z",
        properties={"plan": "pro", "seats": 5},
        channel="email",
    )
    answer(app, project["id"], "b", 2, "2026-01-03T00:00:00Z", properties={"plan": "pro"}, channel="in_app")
    answer(app, project["id"], "c", 9, "2026-01-04T00:00:00Z", properties={"plan": "free"}, channel="email")
    assert report(client, auth, "where=plan:pro")["overall"]["responses"] == 2
    assert report(client, auth, "where=plan:pro&channel=email")["overall"]["nps"] == 100.0
    assert report(client, auth, "where=seats:5")["overall"]["responses"] == 1
    body = report(client, auth, "where=plan:enterprise&group_by=plan")
    assert body["overall"]["responses"] == 0 and body["overall"]["nps"] is None and body["groups"] == []


def test_report_compare_previous_period_hand_computed(
    client: FlaskClient, app: Flask, project: dict[str, Any], auth: dict[str, str]
) -> None:
    # January (current): 5 promoters, 3 passives, 2 detractors. December (previous): 4, 3, 3.
    for i, score in enumerate([10, 9, 9, 10, 9, 7, 8, 7, 3, 6]):
        answer(app, project["id"], f"jan{i}", score, f"2026-01-{i + 2:02d}T10:00:00Z")
    for i, score in enumerate([10, 9, 9, 9, 7, 8, 8, 0, 5, 6]):
        answer(app, project["id"], f"dec{i}", score, f"2025-12-{i + 2:02d}T10:00:00Z")
    answer(app, project["id"], "nov", 0, "2025-11-20T10:00:00Z")  # before the previous window
    body = report(client, auth, "since=2026-01-01&until=2026-01-31&compare=previous")
    assert body["overall"]["nps"] == 30.0 and body["overall"]["responses"] == 10
    comparison = body["comparison"]
    assert comparison["since"] == "2025-12-01T00:00:00Z" and comparison["until"] == "2026-01-01T00:00:00Z"
    assert comparison["previous"]["nps"] == 10.0 and comparison["previous"]["responses"] == 10
    assert comparison["change"] == 20.0 and comparison["z"] == 0.496
    assert comparison["p_value"] == 0.6196 and comparison["significant"] is False


def test_report_too_few_responses_flag_and_comment_counts(
    client: FlaskClient, app: Flask, project: dict[str, Any], auth: dict[str, str]
) -> None:
    answer(app, project["id"], "a", 10, "2026-01-02T00:00:00Z", properties={"plan": "pro"}, comment="Great")
    answer(app, project["id"], "b", 9, "2026-01-03T00:00:00Z", properties={"plan": "pro"}, comment="")
    answer(app, project["id"], "c", 1, "2026-01-04T00:00:00Z", properties={"plan": "free"}, comment="Bad")
    body = report(client, auth, "group_by=plan&min_responses=2")
    assert body["min_responses"] == 2
    assert body["overall"]["comments"] == 2 and body["overall"]["too_few_responses"] is False
    groups = {g["key"]: g for g in body["groups"]}
    assert groups["pro"]["comments"] == 1 and groups["pro"]["too_few_responses"] is False
    assert groups["free"]["comments"] == 1 and groups["free"]["too_few_responses"] is True
    assert report(client, auth, "")["overall"]["too_few_responses"] is True  # default n = 30


def test_report_last_score_per_person_counts_each_person_once(
    client: FlaskClient, app: Flask, project: dict[str, Any], auth: dict[str, str]
) -> None:
    answer(app, project["id"], "a", 2, "2026-01-02T00:00:00Z")
    answer(app, project["id"], "a", 10, "2026-02-02T00:00:00Z")
    answer(app, project["id"], "b", 9, "2026-01-05T00:00:00Z")
    everything = report(client, auth, "")["overall"]
    assert (everything["responses"], everything["nps"]) == (3, 33.3)
    latest = report(client, auth, "mode=last_per_person")
    assert (latest["overall"]["responses"], latest["overall"]["nps"]) == (2, 100.0)
    assert [(s["period"], s["responses"]) for s in latest["series"]] == [("2026-01-01", 1), ("2026-02-01", 1)]
    # Within January only, a's latest answer is the 2.
    january = report(client, auth, "mode=last_per_person&since=2026-01-01&until=2026-01-31")["overall"]
    assert (january["responses"], january["detractors"], january["promoters"]) == (2, 1, 1)


def test_report_keeps_contract_fields(
    client: FlaskClient, app: Flask, project: dict[str, Any], auth: dict[str, str]
) -> None:
    answer(app, project["id"], "a", 9, "2026-01-02T00:00:00Z", properties={"plan": "pro"})
    body = report(client, auth, "group_by=plan&interval=week")
    contract = {"nps", "responses", "promoters", "passives", "detractors", "promoter_percent",
                "passive_percent", "detractor_percent", "margin_of_error", "nps_low", "nps_high"}  # fmt: skip
    assert contract <= set(body["overall"]) and contract <= set(body["groups"][0])
    assert {"period"} | contract <= set(body["series"][0])
    assert body["groups"][0]["key"] == "pro" and "comparison" not in body


@pytest.mark.parametrize(
    "query",
    [
        "interval=year",
        "compare=previous",
        "compare=last",
        "where=plan",
        "mode=latest",
        "min_responses=0",
        "since=2026-13-01",
    ],
)
def test_report_bad_parameters_are_422(client: FlaskClient, auth: dict[str, str], query: str) -> None:
    res = client.get(f"/api/v1/reports/nps?{query}", headers=auth)
    assert res.status_code == 422 and res.get_json()["code"] == "validation_error"


def test_report_other_projects_responses_never_counted(
    client: FlaskClient, app: Flask, project: dict[str, Any], auth: dict[str, str]
) -> None:
    other = make_project(app, "Other")
    answer(app, other["id"], "x", 0, "2026-01-02T00:00:00Z", properties={"plan": "pro"})
    answer(app, project["id"], "a", 10, "2026-01-02T00:00:00Z", properties={"plan": "pro"})
    body = report(client, auth, "where=plan:pro&mode=last_per_person&compare=previous&since=2026-01-01")
    assert body["overall"]["responses"] == 1 and body["comparison"]["previous"]["responses"] == 0


def test_report_response_rate_per_channel_counts_answered_requests(
    client: FlaskClient, app: Flask, project: dict[str, Any], auth: dict[str, str]
) -> None:
    from survey_service.extensions import db
    from survey_service.models import Person, SurveyRequest
    from survey_service.services.projects import default_survey

    sent = datetime.fromisoformat("2026-01-10T00:00:00+00:00")
    with app.app_context():
        survey_id = default_survey(project["id"]).id
        person = Person(project_id=project["id"], email="p@acme.test", properties={})
        db.session.add(person)
        db.session.flush()
        requests = [
            SurveyRequest(
                project_id=project["id"],
                survey_id=survey_id,
                person_id=person.id,
                channel=channel,
                sent_at=sent,
            )
            for channel in ["email"] * 4 + ["in_app"] * 2
        ]
        requests.append(
            SurveyRequest(project_id=project["id"], survey_id=survey_id, person_id=person.id, channel="email")
        )
        db.session.add_all(requests)
        db.session.commit()
        for request in (requests[0], requests[1], requests[4]):
            record_response(
                project["id"], {"email": "p@acme.test"}, 9, request=request, channel=request.channel
            )
    body = report(client, auth, "since=2026-01-01&until=2026-01-31")
    assert body["response_rates"] == [
        {"channel": "email", "sent": 4, "responded": 2, "response_rate": 50.0},
        {"channel": "in_app", "sent": 2, "responded": 1, "response_rate": 50.0},
    ]
    assert report(client, auth, "since=2026-02-01")["response_rates"] == []


def test_report_rolling_window_sums_trailing_days_even_before_since(
    client: FlaskClient, app: Flask, project: dict[str, Any], auth: dict[str, str]
) -> None:
    for who, score, when in [
        ("d", 5, "2025-12-28T12:00:00Z"),
        ("a", 10, "2026-01-10T12:00:00Z"),
        ("b", 0, "2026-01-25T12:00:00Z"),
        ("c", 10, "2026-02-05T12:00:00Z"),
        ("e", 9, "2026-02-20T12:00:00Z"),
    ]:
        answer(app, project["id"], who, score, when)
    body = report(client, auth, "since=2026-01-01&until=2026-02-28&interval=month&rolling_days=40")
    # January ends Feb 1: window Dec 22 - Jan 31 holds d (5), a (10), b (0) -> (1 - 2) / 3 = -33.3.
    # February ends Mar 1: window Jan 20 - Feb 28 holds b (0), c (10), e (9) -> (2 - 1) / 3 = +33.3.
    assert [(s["period"], s["responses"], s["nps"]) for s in body["series"]] == [
        ("2026-01-01", 2, 0.0),
        ("2026-02-01", 2, 100.0),
    ]
    assert [(s["rolling"]["responses"], s["rolling"]["nps"]) for s in body["series"]] == [
        (3, -33.3),
        (3, 33.3),
    ]
    assert "rolling" not in report(client, auth, "since=2026-01-01&until=2026-02-28")["series"][0]
    res = client.get("/api/v1/reports/nps?rolling_days=0", headers=auth)
    assert res.status_code == 422
