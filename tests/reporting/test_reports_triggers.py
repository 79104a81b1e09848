"""Report filters by trigger rule and event type, and response rates per trigger, counted by hand."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from survey_service.extensions import db
from survey_service.models import Event, Person, SurveyRequest, TriggerRule
from survey_service.services.projects import default_survey
from survey_service.services.responses import record_response
from tests.support.db import make_project
from tests.support.reports import report

SENT = datetime.fromisoformat("2026-01-10T09:00:00+00:00")
ANSWERED = datetime.fromisoformat("2026-01-11T09:00:00+00:00")
JANUARY = "since=2026-01-01&until=2026-01-31"  # every report below covers the dataset's month
# (person, plan, rule, channel, score or None when the request went unanswered)
REQUESTS: list[tuple[str, str, str | None, str, int | None]] = [
    ("a", "pro", "ticket", "email", 10),
    ("b", "free", "ticket", "email", 3),
    ("c", "pro", "ticket", "email", None),
    ("d", "pro", "renewal", "in_app", 9),
    ("e", "free", "renewal", "in_app", None),
    ("f", "free", None, "email", 8),  # a request no rule made (sent by hand)
]


def _rule(project_id: int, survey_id: int, event_type: str, channel: str) -> TriggerRule:
    rule = TriggerRule(project_id=project_id, event_type=event_type, survey_id=survey_id, channel=channel)
    db.session.add(rule)
    return rule


@pytest.fixture
def rules(app: Flask, project: dict[str, Any]) -> dict[str, int]:
    """Two rules with their events and requests, the answers above, and one answer with no request."""
    pid = project["id"]
    with app.app_context():
        survey_id = default_survey(pid).id
        made = {
            "ticket": _rule(pid, survey_id, "ticket.closed", "email"),
            "renewal": _rule(pid, survey_id, "renewal.upcoming", "in_app"),
        }
        db.session.flush()
        requests = []
        for who, plan, rule_name, channel, _ in REQUESTS:
            person = Person(project_id=pid, external_id=who, properties={"plan": plan})
            db.session.add(person)
            db.session.flush()
            rule, event = made.get(rule_name or ""), None
            if rule is not None:
                event = Event(
                    project_id=pid, external_id=f"ev-{who}", type=rule.event_type, person_id=person.id,
                    occurred_at=SENT,
                )  # fmt: skip
                db.session.add(event)
                db.session.flush()
            request = SurveyRequest(
                project_id=pid,
                survey_id=survey_id,
                person_id=person.id,
                channel=channel,
                status="sent",
                sent_at=SENT,
                trigger_id=rule.id if rule else None,
                event_id=event.id if event else None,
            )
            db.session.add(request)
            requests.append(request)
        db.session.commit()
        for request, (who, _, _, channel, score) in zip(requests, REQUESTS, strict=True):
            if score is not None:
                record_response(
                    pid, {"external_id": who}, score, channel=channel, created_at=ANSWERED, request=request
                )
        record_response(pid, {"external_id": "g", "properties": {"plan": "pro"}}, 0, created_at=ANSWERED)
        return {name: rule.id for name, rule in made.items()}


def counts(stats: dict[str, Any]) -> tuple[int, int, int, float | None]:
    return stats["promoters"], stats["passives"], stats["detractors"], stats["nps"]


def test_report_without_trigger_filter_counts_every_response(
    client: FlaskClient, auth: dict[str, str], rules: dict[str, int]
) -> None:
    # a 10, b 3, d 9, f 8, g 0: promoters 2, passive 1, detractors 2 -> NPS 0.
    assert counts(report(client, auth, JANUARY)["overall"]) == (2, 1, 2, 0.0)


def test_report_trigger_id_keeps_only_that_rules_answers(
    client: FlaskClient, auth: dict[str, str], rules: dict[str, int]
) -> None:
    body = report(client, auth, f"{JANUARY}&trigger_id={rules['ticket']}&group_by=plan")
    assert counts(body["overall"]) == (1, 0, 1, 0.0)  # a 10, b 3
    assert [(g["key"], counts(g)) for g in body["groups"]] == [
        ("free", (0, 0, 1, -100.0)),
        ("pro", (1, 0, 0, 100.0)),
    ]
    assert counts(report(client, auth, f"{JANUARY}&trigger_id={rules['renewal']}")["overall"]) == (
        1,
        0,
        0,
        100.0,
    )


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [("ticket.closed", (1, 0, 1, 0.0)), ("renewal.upcoming", (1, 0, 0, 100.0)), ("signup", (0, 0, 0, None))],
)
def test_report_event_type_keeps_answers_to_requests_for_that_event(
    client: FlaskClient,
    auth: dict[str, str],
    rules: dict[str, int],
    event_type: str,
    expected: tuple[int, int, int, float | None],
) -> None:
    assert counts(report(client, auth, f"{JANUARY}&event_type={event_type}")["overall"]) == expected


def test_report_unknown_or_foreign_trigger_matches_nothing(
    client: FlaskClient, app: Flask, auth: dict[str, str], rules: dict[str, int]
) -> None:
    other = make_project(app, "Other")
    with app.app_context():
        foreign = _rule(other["id"], default_survey(other["id"]).id, "ticket.closed", "email")
        db.session.commit()
        foreign_id = foreign.id
    for trigger_id in (foreign_id, 2**31 - 1):
        body = report(client, auth, f"{JANUARY}&trigger_id={trigger_id}")
        assert body["overall"]["responses"] == 0 and body["overall"]["nps"] is None
        assert body["response_rates"] == [] and body["response_rates_by_trigger"] == []


def test_report_response_rates_per_channel_and_per_trigger(
    client: FlaskClient, auth: dict[str, str], rules: dict[str, int]
) -> None:
    body = report(client, auth, JANUARY)
    # email: a, b, c, f sent, a, b, f answered; in_app: d, e sent, d answered.
    assert body["response_rates"] == [
        {"channel": "email", "sent": 4, "responded": 3, "response_rate": 75.0},
        {"channel": "in_app", "sent": 2, "responded": 1, "response_rate": 50.0},
    ]
    ticket, renewal = rules["ticket"], rules["renewal"]
    assert body["response_rates_by_trigger"] == [
        {"trigger_id": ticket, "event_type": "ticket.closed", "channel": "email",
         "sent": 3, "responded": 2, "response_rate": 66.7},
        {"trigger_id": renewal, "event_type": "renewal.upcoming", "channel": "in_app",
         "sent": 2, "responded": 1, "response_rate": 50.0},
        {"trigger_id": None, "event_type": None, "channel": "email",
         "sent": 1, "responded": 1, "response_rate": 100.0},
    ]  # fmt: skip
    filtered = report(client, auth, f"{JANUARY}&event_type=ticket.closed")
    assert filtered["response_rates"] == [
        {"channel": "email", "sent": 3, "responded": 2, "response_rate": 66.7}
    ]
    assert [r["trigger_id"] for r in filtered["response_rates_by_trigger"]] == [ticket]


@pytest.mark.parametrize(
    "query", ["trigger_id=abc", "trigger_id=0", "trigger_id=-3", "event_type=Bad%20Type"]
)
def test_report_bad_trigger_parameters_are_422(client: FlaskClient, auth: dict[str, str], query: str) -> None:
    res = client.get(f"/api/v1/reports/nps?{query}", headers=auth)
    assert res.status_code == 422 and res.get_json()["code"] == "validation_error"


def test_openapi_documents_trigger_filters_and_rates(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    params = {p["name"] for p in spec["paths"]["/api/v1/reports/nps"]["get"]["parameters"]}
    assert {"trigger_id", "event_type"} <= params
    assert "response_rates_by_trigger" in spec["components"]["schemas"]["NpsReport"]["properties"]


@pytest.mark.parametrize(
    ("query", "people"),
    [
        ("", ["a", "b", "d", "f", "g"]),
        ("trigger_id={ticket}", ["a", "b"]),
        ("event_type=renewal.upcoming", ["d"]),
        ("trigger_id={ticket}&event_type=renewal.upcoming", []),
        ("trigger_id=999999", []),
    ],
)
def test_export_filters_by_trigger_and_event_type_like_the_report(
    client: FlaskClient, auth: dict[str, str], rules: dict[str, int], query: str, people: list[str]
) -> None:
    res = client.get(f"/api/v1/exports/responses.jsonl?{query.format(**rules)}", headers=auth)
    assert res.status_code == 200, res.get_data(as_text=True)
    rows = [json.loads(line) for line in res.get_data(as_text=True).splitlines() if line]
    assert sorted(row["external_id"] for row in rows) == people


def test_export_malformed_trigger_filter_is_422(client: FlaskClient, auth: dict[str, str]) -> None:
    for query in ("trigger_id=abc", "trigger_id=0", "event_type=Not%20A%20Type"):
        res = client.get(f"/api/v1/exports/responses.csv?{query}", headers=auth)
        assert res.status_code == 422, (query, res.get_json())
