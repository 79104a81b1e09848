"""Response rates per step of the email first asks (issue 18), against a hand-built case counted by hand.

Wilson intervals and the NPS test are computed here from their textbook formulas, not by the code under
test: a wrong constant or a swapped count there fails these tests.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from survey_service.extensions import db
from survey_service.models import Person, Response, SurveyRequest
from survey_service.services.projects import default_survey
from tests.support.db import make_project
from tests.support.follow_through import CASE, JANUARY, NOISE, SENT, Ask, Step, add_answer, seed_asks

URL = "/api/v1/reports/response_rates/steps"
Z = 1.96


def wilson(x: int, n: int) -> tuple[float, float]:
    """The Wilson score interval in percent, one decimal, from its formula."""
    p = x / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return round(max(centre - half, 0) * 100, 1), round(min(centre + half, 1) * 100, 1)


def adjusted(promoters: int, passives: int, detractors: int) -> tuple[float, float]:
    """The adjusted-Wald NPS (3 pseudo-answers: 3/4, 3/2, 3/4) and its variance, as fractions."""
    n = promoters + passives + detractors + 3
    p, d = (promoters + 0.75) / n, (detractors + 0.75) / n
    return p - d, (p + d - (p - d) ** 2) / n


def steps_of(body: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    return {(s["step"], s["channel"]): s for s in body["steps"]}


def get(client: FlaskClient, auth: dict[str, str], query: str = JANUARY) -> dict[str, Any]:
    res = client.get(f"{URL}?{query}", headers=auth)
    assert res.status_code == 200, res.get_json()
    body: dict[str, Any] = res.get_json()
    return body


@pytest.fixture
def case(app: Flask, project: dict[str, Any]) -> dict[str, int]:
    """CASE and NOISE in the project, an answer to no request, and another project's follow-through,
    two of whose rows point at this project's first asks."""
    with app.app_context():
        first_ids = seed_asks(project["id"], CASE + NOISE)
        person = Person(project_id=project["id"], external_id="api-only")
        db.session.add(person)
        db.session.flush()
        add_answer(project["id"], person.id, None, 5, None, "api")
        db.session.commit()
    other = make_project(app, "Other")
    with app.app_context():
        seed_asks(
            other["id"],
            [Ask("o0", steps=(Step(1),), score=1, after_step=1), Ask("o1", score=10, after_step=0)],
        )
        stranger = Person(project_id=other["id"], external_id="stranger")
        db.session.add(stranger)
        db.session.flush()
        survey_id = default_survey(other["id"]).id
        # Another project's reminder of p10's first ask, and its answer naming p9's first ask: never counted.
        db.session.add(
            SurveyRequest(
                project_id=other["id"], survey_id=survey_id, person_id=stranger.id, channel="email",
                status="sent", sent_at=SENT, reminder_of_id=first_ids["p10"], step=1,
            )
        )  # fmt: skip
        db.session.add(
            Response(
                project_id=other["id"], survey_id=survey_id, person_id=stranger.id,
                request_id=first_ids["p9"], score=0, category="detractor", channel="email",
                answered_after_step=2, created_at=SENT,
            )
        )  # fmt: skip
        db.session.commit()
    return first_ids


def test_step_rates_hand_built_case_every_figure_as_counted_by_hand(
    client: FlaskClient, auth: dict[str, str], case: dict[str, int]
) -> None:
    body = get(client, auth)
    assert body["first_asks"] == 12  # p0…p11 (p10 bounced, still asked)
    # (step, channel): (reached, answers it added), counted from CASE by hand.
    expected = {
        (0, "email"): (11, 4),  # all but p10
        (1, "email"): (6, 2),  # p4…p9; p4, p5 answered (p11's was cancelled unsent)
        (1, "in_app"): (0, 0),
        (2, "email"): (2, 1),  # p7, p9 (p8's failed); p7 answered by the email link
        (2, "in_app"): (2, 1),  # p6, p7; p6 answered in the widget
        (3, "email"): (0, 0),  # p9's bounced
        (3, "in_app"): (0, 0),
    }
    found = steps_of(body)
    assert list(found) == list(expected)  # first ask, then each reminder by email and in-app
    for key, (reached, added) in expected.items():
        row = found[key]
        assert (row["reached"], row["responses"]) == (reached, added), key
        if reached:
            assert row["response_rate"] == round(added / reached * 100, 1)
            assert (row["rate_low"], row["rate_high"]) == wilson(added, reached), key
        else:
            assert (row["response_rate"], row["rate_low"], row["rate_high"]) == (None, None, None)
    assert found[(0, "email")]["label"] == "First ask"
    assert found[(2, "in_app")]["label"] == "Reminder 2 (in-app)"
    assert [(c["after_step"], c["responses"], c["reached"]) for c in body["cumulative"]] == [
        (0, 4, 11),
        (1, 6, 11),
        (2, 8, 11),
        (3, 8, 11),
    ]
    for c in body["cumulative"]:
        assert c["response_rate"] == round(c["responses"] / 11 * 100, 1)
        assert (c["rate_low"], c["rate_high"]) == wilson(c["responses"], 11)


def test_step_rates_reminded_vs_first_ask_nps_and_test_as_computed_by_hand(
    client: FlaskClient, auth: dict[str, str], case: dict[str, int]
) -> None:
    cmp = get(client, auth)["reminded_vs_first_ask"]
    # First ask: 10, 9, 7, 3 (2 promoters, 1 passive, 1 detractor). Reminded: 6, 2, 9, 8 (1, 1, 2).
    first, reminded = cmp["first_ask"], cmp["reminded"]
    assert (first["responses"], first["promoters"], first["passives"], first["detractors"]) == (4, 2, 1, 1)
    assert (reminded["responses"], reminded["promoters"], reminded["passives"], reminded["detractors"]) == (
        4,
        1,
        1,
        2,
    )
    assert (first["nps"], reminded["nps"]) == (25.0, -25.0)
    a, b = adjusted(1, 1, 2), adjusted(2, 1, 1)
    assert reminded["margin_of_error"] == round(Z * math.sqrt(a[1]) * 100, 1)
    assert first["margin_of_error"] == round(Z * math.sqrt(b[1]) * 100, 1)
    z = (a[0] - b[0]) / math.sqrt(a[1] + b[1])
    assert cmp["change"] == -50.0
    assert cmp["z"] == round(z, 3)
    assert cmp["p_value"] == round(math.erfc(abs(z) / math.sqrt(2)), 4)
    assert cmp["significant"] is False  # four answers a side: nowhere near


def test_step_rates_another_projects_rows_never_counted(
    app: Flask, client: FlaskClient, auth: dict[str, str], case: dict[str, int]
) -> None:
    body = get(client, auth)
    assert steps_of(body)[(1, "email")]["reached"] == 6  # not 7: the other project's reminder of p10
    assert body["reminded_vs_first_ask"]["reminded"]["detractors"] == 2  # not 3: its answer to p9
    other = make_project(app, "Third")
    empty = get(client, {"Authorization": f"Bearer {other['secret_key']}"})
    assert empty["first_asks"] == 0
    assert all(s["reached"] == 0 and s["response_rate"] is None for s in empty["steps"])
    assert empty["reminded_vs_first_ask"]["first_ask"]["nps"] is None


@pytest.mark.parametrize(
    ("query", "first_asks", "step0"),
    [
        (JANUARY + "&campaign=q1", 5, (5, 4)),  # p0…p4
        (JANUARY + "&campaign=none-such", 0, (0, 0)),
        ("since=2025-12-01&until=2025-12-31", 1, (1, 0)),  # "old": answered after its reminder
        ("", 13, (12, 4)),  # every email first ask, whenever sent
    ],
)
def test_step_rates_filters_narrow_the_cohort(
    client: FlaskClient,
    auth: dict[str, str],
    case: dict[str, int],
    query: str,
    first_asks: int,
    step0: tuple[int, int],
) -> None:
    body = get(client, auth, query)
    assert body["first_asks"] == first_asks
    row = steps_of(body)[(0, "email")]
    assert (row["reached"], row["responses"]) == step0


def test_step_rates_survey_filter_of_another_survey_counts_nothing(
    app: Flask, client: FlaskClient, auth: dict[str, str], case: dict[str, int], project: dict[str, Any]
) -> None:
    with app.app_context():
        survey_id = default_survey(project["id"]).id
    assert get(client, auth, f"{JANUARY}&survey_id={survey_id}")["first_asks"] == 12
    assert get(client, auth, f"{JANUARY}&survey_id={survey_id + 1000}")["first_asks"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("since=2026-02-01&until=2026-01-01", "until"),
        ("campaign=", "campaign"),
        ("campaign=" + "x" * 65, "campaign"),
        ("survey_id=0", "survey_id"),
        ("trigger_id=abc", "trigger_id"),
        ("channel=email", "channel"),  # the cohort is email first asks: no channel filter
    ],
)
def test_step_rates_bad_query_is_422_in_the_one_error_shape(
    client: FlaskClient, auth: dict[str, str], query: str, field: str
) -> None:
    res = client.get(f"{URL}?{query}", headers=auth)
    assert res.status_code == 422
    body = res.get_json()
    assert set(body) == {"status", "code", "message", "details"}
    assert body["status"] == 422 and isinstance(body["message"], str)
    assert field in json.dumps(body["details"])


def test_step_rates_without_key_is_401(client: FlaskClient) -> None:
    res = client.get(URL)
    assert res.status_code == 401
    assert res.get_json()["code"] == "unauthorized"


def test_step_rates_documented_in_openapi(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/reports/response_rates/steps"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"since", "until", "campaign", "survey_id"}
    assert "422" in operation["responses"]


def test_nps_report_response_rates_keep_their_shape(
    client: FlaskClient, auth: dict[str, str], case: dict[str, int]
) -> None:
    res = client.get(f"/api/v1/reports/nps?{JANUARY}", headers=auth)
    assert res.status_code == 200
    for row in res.get_json()["response_rates"]:
        assert set(row) == {"channel", "sent", "responded", "response_rate"}


@pytest.mark.parametrize("path", ["responses.csv", "responses.jsonl", "promoters.csv"])
def test_exports_carry_answered_after_step(
    client: FlaskClient, auth: dict[str, str], case: dict[str, int], path: str
) -> None:
    res = client.get(f"/api/v1/exports/{path}", headers=auth)
    assert res.status_code == 200
    text = res.get_data(as_text=True)
    if path.endswith(".jsonl"):
        rows = [json.loads(line) for line in text.splitlines()]
        by_email = {r["email"]: r["answered_after_step"] for r in rows}
    else:
        reader = list(csv.DictReader(io.StringIO(text)))
        by_email = {r["email"]: r["answered_after_step"] for r in reader}
    # p6 answered in the widget after reminder 2; p1 the first ask; the API answer came after no ask.
    assert by_email["p6@example.com"] in (2, "2")
    assert by_email["p1@example.com"] in (0, "0")
    if path != "promoters.csv":
        assert by_email["p5@example.com"] in (1, "1")
        assert by_email[None if path.endswith(".jsonl") else ""] in (None, "")


def test_step_rates_answer_stored_before_reminders_counts_for_the_first_ask(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    """Answers recorded before reminders_01 have no answered_after_step: they answered the first ask."""
    with app.app_context():
        seed_asks(
            project["id"], [Ask("legacy", score=9), Ask("late", steps=(Step(1),), score=0, after_step=1)]
        )
    body = get(client, {"Authorization": f"Bearer {project['secret_key']}"})
    found = steps_of(body)
    assert (found[(0, "email")]["reached"], found[(0, "email")]["responses"]) == (2, 1)
    assert (found[(1, "email")]["reached"], found[(1, "email")]["responses"]) == (1, 1)
    assert body["reminded_vs_first_ask"]["first_ask"]["promoters"] == 1
