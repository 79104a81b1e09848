"""`survey-service import-delighted`: a sample export imported once, with Delighted's NPS history."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from survey_service.delighted.importer import parse_moment
from survey_service.extensions import db
from survey_service.models import Person, Response
from survey_service.services.reports import nps_report

SAMPLE = Path(__file__).parent / "data" / "delighted_export.csv"


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
        assert first.properties == {"Plan": "pro", "Region": "EU"}  # frozen as it was then
        ann = db.session.scalar(select(Person).where(Person.email == "ann@example.com"))
        assert ann is not None and ann.name == "Ann" and ann.properties["Plan"] == "enterprise"  # latest
        cy = db.session.scalar(select(Person).where(Person.email == "cy@example.com"))
        assert cy is not None and cy.phone_number == "+15550001003"
        multiline = db.session.scalar(select(Response).where(Response.external_id == "delighted:1007"))
        assert multiline is not None and multiline.comment == "Best tool\nwe have"
        anonymous = db.session.scalar(select(Response).where(Response.external_id == "delighted:1014"))
        assert anonymous is not None and anonymous.person.email is None and anonymous.score == 10


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
