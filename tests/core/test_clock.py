"""One clock: core.clock.now() honours FROZEN_NOW everywhere a date is recorded, compared or shown."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from survey_service.core import clock
from tests.support.dashboard import add_user, sign_in
from tests.support.env import ROOT

PACKAGE = ROOT / "survey_service"
# Far enough before the real date that "the last 12 months" of the real clock holds none of it.
FROZEN = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen(app: Flask) -> datetime:
    app.config["FROZEN_NOW"] = FROZEN
    return FROZEN


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def answer(client: FlaskClient, auth: dict[str, str], who: str, **extra: Any) -> dict[str, Any]:
    body = {"person": {"external_id": who}, "score": 9, **extra}
    res = client.post("/api/v1/responses", json=body, headers=auth)
    assert res.status_code == 201, res.get_json()
    created: dict[str, Any] = res.get_json()
    return created


def test_clock_is_the_only_source_of_now() -> None:
    """No other module reads the wall clock for a date (time.monotonic for durations is fine)."""
    pattern = re.compile(r"datetime\.now\(|datetime\.utcnow\(|\butcnow\b|date\.today\(|datetime\.today\(")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "clock.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
    imported = [
        node.module
        for node in ast.walk(ast.parse((PACKAGE / "core" / "clock.py").read_text()))
        if isinstance(node, ast.ImportFrom)
    ]
    assert not any(m and m.startswith("survey_service") for m in imported)  # models call the clock


def test_now_is_real_time_unless_frozen(app: Flask) -> None:
    before = datetime.now(UTC)
    with app.app_context():
        assert before <= clock.now() <= datetime.now(UTC)
        app.config["FROZEN_NOW"] = FROZEN
        assert clock.now() == FROZEN
        assert before <= clock.real_now() <= datetime.now(UTC)  # the wall clock ignores FROZEN_NOW
    assert before <= clock.now() <= datetime.now(UTC)  # outside an app there is no config to honour


def test_recorded_response_is_created_at_the_frozen_instant(
    client: FlaskClient, auth: dict[str, str], frozen: datetime
) -> None:
    created = answer(client, auth, "now")
    assert created["created_at"] == iso(frozen)
    # The person's row has no created_at set by the service: its column default (clock.now) gives it.
    export = client.get(f"/api/v1/people/{created['person_id']}/export", headers=auth)
    assert export.status_code == 200, export.get_json()
    assert export.get_json()["person"]["created_at"] == iso(frozen)


def test_report_comparison_period_ends_at_the_frozen_instant(
    client: FlaskClient, auth: dict[str, str], frozen: datetime
) -> None:
    since = frozen - timedelta(days=7)
    res = client.get(f"/api/v1/reports/nps?since={iso(since)}&compare=previous", headers=auth)
    assert res.status_code == 200, res.get_json()
    comparison = res.get_json()["comparison"]
    # No `until`: the period runs to now (the frozen instant), so the previous one is the 7 days before.
    assert (comparison["since"], comparison["until"]) == (iso(since - timedelta(days=7)), iso(since))


def test_dashboard_default_range_counts_back_from_the_frozen_day(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], frozen: datetime
) -> None:
    answer(client, auth, "inside", created_at=iso(frozen - timedelta(days=10)))
    answer(client, auth, "outside", created_at=iso(frozen - timedelta(days=400)))
    add_user(app, project["id"], "viewer@acme.test")
    assert sign_in(client, "viewer@acme.test").status_code == 302
    default = client.get("/dashboard").get_data(as_text=True)  # the last 12 months
    assert "n = 1" in default, default
    assert "n = 2" in client.get("/dashboard?range=all").get_data(as_text=True)
