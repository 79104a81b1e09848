"""`survey-service import-delighted`: a sample export imported once, with Delighted's NPS history."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from survey_service.delighted.csv_values import parse_moment
from survey_service.extensions import db
from survey_service.models import Person, Response, SurveyRequest
from survey_service.reporting.reports import nps_report
from tests.support.env import DATA, ROOT

SAMPLE = DATA / "delighted_export.csv"


def run_import(runner: FlaskCliRunner, project_id: int, path: Path = SAMPLE) -> Any:
    return runner.invoke(args=["import-delighted", str(path), "--project", str(project_id)])


def test_import_delighted_sample_imports_valid_rows_and_explains_skips(
    app: Flask, runner: FlaskCliRunner, project: dict[str, Any]
) -> None:
    result = run_import(runner, project["id"])
    assert result.exit_code == 0, result.output
    assert "imported 14 responses, skipped 6" in result.output
    for reason in (
        "score missing or not an integer from 0 to 10",
        "no Response ID",
        "duplicate Response ID in the file",
        "date missing or not readable",
        "email not valid",
    ):
        assert reason in result.output
    with app.app_context():
        rows = db.session.scalars(select(Response).order_by(Response.created_at)).all()
        assert len(rows) == 14 and {r.channel for r in rows} == {"import"}
        first = rows[0]
        assert first.external_id == "delighted:1001" and first.score == 10 and first.comment == "Love it"
        assert first.created_at == datetime(2025, 1, 5, 12, tzinfo=UTC)
        assert first.properties == {"plan": "pro", "region": "EU"}  # frozen as it was then
        ann = db.session.scalar(select(Person).where(Person.email == "ann@example.com"))
        assert ann is not None and ann.name == "Ann" and ann.properties["plan"] == "enterprise"  # latest
        cy = db.session.scalar(select(Person).where(Person.email == "cy@example.com"))
        assert cy is not None and cy.phone_number == "+15550001003"
        multiline = db.session.scalar(select(Response).where(Response.external_id == "delighted:1007"))
        assert multiline is not None and multiline.comment == "Best tool\nwe have"
        anonymous = db.session.scalar(select(Response).where(Response.external_id == "delighted:1014"))
        assert anonymous is not None and anonymous.person.email is None and anonymous.score == 10


def test_imported_and_api_responses_group_under_one_property_name(
    app: Flask, runner: FlaskCliRunner, project: dict[str, Any], tmp_path: Path
) -> None:
    # The file says "Plan" (and a second, differently spelled " PLAN " column); the API says "plan".
    export = tmp_path / "export.csv"
    export.write_text(
        "Response ID,Score,Response timestamp,Email, PLAN ,Plan\n"
        "r1,9,2025-01-05 12:00:00 UTC,ann@example.com,,pro\n"
        "r2,3,2025-01-06 12:00:00 UTC,bo@example.com,starter,ignored\n"
    )
    result = run_import(runner, project["id"], export)
    assert result.exit_code == 0 and "imported 2 responses" in result.output, result.output
    client = app.test_client()
    auth = {"Authorization": f"Bearer {project['secret_key']}"}
    body = {"person": {"email": "cy@example.com", "properties": {"Plan ": "pro"}}, "score": 10}
    assert client.post("/api/v1/responses", json=body, headers=auth).status_code == 201
    for group_by in ("plan", "Plan"):  # the query's name is normalised the same way
        report = client.get(f"/api/v1/reports/nps?group_by={group_by}", headers=auth).get_json()
        groups = {g["key"]: g["responses"] for g in report["groups"]}
        assert groups == {"pro": 2, "starter": 1}, report["groups"]  # none under null
    with app.app_context():
        keys = {key for r in db.session.scalars(select(Response)) for key in r.properties}
        assert keys == {"plan"}


def test_import_delighted_twice_imports_nothing_new(
    app: Flask, runner: FlaskCliRunner, project: dict[str, Any]
) -> None:
    assert run_import(runner, project["id"]).exit_code == 0
    again = run_import(runner, project["id"])
    assert again.exit_code == 0, again.output
    assert "imported 0 responses, skipped 20" in again.output and "14 × already imported" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Response)) == 14
        assert db.session.scalar(select(func.count()).select_from(Person)) == 11  # 10 emails + 1 anonymous


def test_import_delighted_nps_history_matches_delighted(
    app: Flask, runner: FlaskCliRunner, project: dict[str, Any]
) -> None:
    assert run_import(runner, project["id"]).exit_code == 0
    with app.app_context():
        report = nps_report(project["id"], interval="month")
    by_month = {
        s["period"]: (s["promoters"], s["passives"], s["detractors"], s["nps"]) for s in report["series"]
    }
    assert by_month == {
        "2025-01-01": (2, 1, 2, 0.0),
        "2025-02-01": (3, 1, 0, 75.0),
        "2025-03-01": (4, 0, 1, 60.0),
    }
    assert report["overall"]["nps"] == 42.9
    # What Delighted's metrics showed for the same responses: whole numbers.
    client = app.test_client()
    token = base64.b64encode(f"{project['secret_key']}:".encode()).decode()
    metrics = client.get("/v1/metrics.json", headers={"Authorization": f"Basic {token}"}).get_json()
    assert metrics == {
        "nps": 43,
        "promoter_count": 9,
        "promoter_percent": 64,
        "passive_count": 2,
        "passive_percent": 14,
        "detractor_count": 3,
        "detractor_percent": 21,
        "response_count": 14,
    }


def test_import_delighted_unknown_project_is_usage_error(runner: FlaskCliRunner) -> None:
    result = run_import(runner, 999_999)
    assert result.exit_code == 2 and "no project with id 999999" in result.output


def test_import_delighted_file_without_score_column_is_usage_error(
    runner: FlaskCliRunner, project: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text("Email,Name\na@example.com,A\n")
    result = run_import(runner, project["id"], path)
    assert result.exit_code == 2 and "no id, score, timestamp column" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1736078400", datetime(2025, 1, 5, 12, tzinfo=UTC)),
        ("2025-01-05 04:00:00 -0800", datetime(2025, 1, 5, 12, tzinfo=UTC)),
        ("2025-01-05 12:00:00 UTC", datetime(2025, 1, 5, 12, tzinfo=UTC)),
        ("2025-01-05T12:00:00Z", datetime(2025, 1, 5, 12, tzinfo=UTC)),
        ("01/05/2025 12:00", datetime(2025, 1, 5, 12, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
    ],
)
def test_parse_moment_delighted_formats_are_read_as_utc(text: str, expected: datetime | None) -> None:
    assert parse_moment(text) == expected


# ---- people lists ---------------------------------------------------------------------------------

PEOPLE = DATA / "delighted_people.csv"


def import_people(runner: FlaskCliRunner, project_id: int, path: Path = PEOPLE, *flags: str) -> Any:
    return runner.invoke(
        args=["import-delighted", "--people", str(path), "--project", str(project_id), *flags]
    )


def count_rows(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_import_people_sample_upserts_people_and_explains_skips(
    app: Flask, runner: FlaskCliRunner, project: dict[str, Any]
) -> None:
    result = import_people(runner, project["id"])
    assert result.exit_code == 0, result.output
    assert "imported 6 people (6 new, 0 updated), skipped 6" in result.output
    for reason, lines in (
        ("email not valid", "7"),
        ("no email (people surveyed by SMS only are not supported)", "8"),
        ("duplicate email in the file", "9"),
        ("phone number not valid (E.164 expected, e.g. +15550001003)", "10"),
        ("phone number already belongs to another person", "11"),
        ("last sent date not readable", "12"),
    ):
        assert f"1 × {reason} (lines {lines})" in result.output
    assert "scheduled" not in result.output  # nothing is sent unless asked
    with app.app_context():
        people = {p.email: p for p in db.session.scalars(select(Person))}
        assert sorted(people, key=str) == [
            f"{n}@example.com" for n in ("ann", "bo", "cy", "dee", "eve", "ivy")
        ]
        ann = people["ann@example.com"]
        assert (ann.name, ann.phone_number) == ("Ann", "+15550002001")
        assert ann.properties == {"plan": "pro", "purchase_experience": "Mobile App", "region": "EU"}
        assert people["ivy@example.com"].properties["plan"] == "pro, annual"
        assert people["eve@example.com"].name is None and people["eve@example.com"].properties == {}
        # Delighted's last send is kept as a sent request, so the quiet period counts it.
        [earlier] = db.session.scalars(select(SurveyRequest)).all()
        assert earlier.person_id == people["cy@example.com"].id and earlier.status == "sent"
        assert earlier.sent_at == datetime(2025, 1, 5, 12, tzinfo=UTC)


def test_import_people_again_updates_by_email_and_adds_nothing(
    app: Flask, runner: FlaskCliRunner, project: dict[str, Any], tmp_path: Path
) -> None:
    assert import_people(runner, project["id"]).exit_code == 0
    again = import_people(runner, project["id"])
    assert again.exit_code == 0, again.output
    assert "imported 6 people (0 new, 6 updated), skipped 6" in again.output
    newer = tmp_path / "people.csv"
    newer.write_text("email,name,phone_number,Plan\nann@example.com,Ann Lee,,team\nzed@example.com,Zed,,\n")
    result = import_people(runner, project["id"], newer)
    assert "imported 2 people (1 new, 1 updated), skipped 0" in result.output, result.output
    with app.app_context():
        ann = db.session.scalar(select(Person).where(Person.email == "ann@example.com"))
        assert ann is not None and (ann.name, ann.phone_number) == ("Ann Lee", "+15550002001")
        assert ann.properties == {"plan": "team", "purchase_experience": "Mobile App", "region": "EU"}
    assert count_rows(app, Person) == 7
    assert count_rows(app, SurveyRequest) == 1  # the earlier send is recorded once


def test_import_people_send_schedules_through_the_quiet_period_and_suppressions(
    app: Flask, runner: FlaskCliRunner, project: dict[str, Any], tmp_path: Path, redis_url: str
) -> None:
    import redis
    from rq.job import Job

    from survey_service.extensions import queues
    from survey_service.services.suppressions import add_suppression

    redis.Redis.from_url(redis_url).flushdb()
    recently = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    path = tmp_path / "people.csv"
    path.write_text(
        "Email,Name,Last sent at\n"
        "new@example.com,New,\n"
        f"tired@example.com,Tired,{int(recently.timestamp())}\n"
        "gone@example.com,Gone,\n"
    )
    with app.app_context():
        add_suppression(project["id"], "gone@example.com", "unsubscribed")
    result = import_people(runner, project["id"], path, "--send", "--delay", "3600")
    assert result.exit_code == 0, result.output
    assert "scheduled 1 surveys, not scheduled 2" in result.output
    assert "1 × quiet_period (lines 3)" in result.output
    assert "1 × unsubscribed or bounced (lines 4)" in result.output
    with app.app_context():
        [request] = db.session.scalars(select(SurveyRequest).where(SurveyRequest.status == "scheduled")).all()
        person = db.session.get(Person, request.person_id)
        assert person is not None and person.email == "new@example.com"
        assert request.scheduled_at is not None
        delay = (request.scheduled_at - datetime.now(UTC)).total_seconds()
        assert 3500 < delay <= 3600
        assert request.enqueued_at is not None  # handed to RQ after the commit
        assert Job.fetch(f"send-email-{request.id}", connection=queues().redis) is not None
    again = import_people(runner, project["id"], path, "--send", "--delay", "3600")
    assert "scheduled 1 surveys" in again.output  # the newer ask supersedes the queued one
    assert count_rows(app, SurveyRequest, SurveyRequest.status == "scheduled") == 1


def test_import_people_autopilot_enrols_once(
    app: Flask, runner: FlaskCliRunner, project: dict[str, Any]
) -> None:
    from survey_service.models import Enrollment

    result = import_people(runner, project["id"], PEOPLE, "--autopilot")
    assert result.exit_code == 0, result.output
    assert "enrolled 6 more people in recurring email surveys" in result.output
    assert count_rows(app, Enrollment, Enrollment.active.is_(True), Enrollment.interval_days == 90) == 6
    assert count_rows(app, SurveyRequest, SurveyRequest.status == "scheduled") == 0  # the relay asks when due
    again = import_people(runner, project["id"], PEOPLE, "--autopilot")
    assert "enrolled" not in again.output and count_rows(app, Enrollment) == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a responses export FILE, --people FILE, or both"),
        ([str(SAMPLE), "--send"], "--send, --autopilot and --delay apply to --people"),
        (["--people", str(PEOPLE), "--send", "--autopilot"], "choose --send (one survey) or --autopilot"),
        (["--people", str(SAMPLE)], "is a responses export: give it as FILE, not --people"),
        (["--people", str(ROOT / "tests" / "conftest.py")], "no email column"),
    ],
)
def test_import_people_bad_invocations_are_usage_errors(
    runner: FlaskCliRunner, project: dict[str, Any], args: list[str], message: str
) -> None:
    result = runner.invoke(args=["import-delighted", "--project", str(project["id"]), *args])
    assert result.exit_code == 2 and message in result.output, result.output
