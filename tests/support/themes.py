"""Themes in tests: responses with comments through the API, analysed as the worker would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from survey_service.themes import service


def post_comments(
    client: FlaskClient, auth: dict[str, str], rows: list[tuple[int, str]], *, prefix: str = "p", **extra: Any
) -> list[int]:
    """POST a response per (score, comment); return their ids."""
    ids = []
    for i, (score, comment) in enumerate(rows):
        body = {"person": {"external_id": f"{prefix}{i}"}, "score": score, "comment": comment, **extra}
        res = client.post("/api/v1/responses", json=body, headers=auth)
        assert res.status_code == 201, res.get_json()
        ids.append(res.get_json()["id"])
    return ids


def analyse(app: Flask) -> int:
    """Run the relay's theme step until nothing is left (no lag: the test's writes are committed)."""
    done = 0
    with app.app_context():
        while found := service.analyse_recent(lag=timedelta(0)):
            done += found
    return done


def themes_report(client: FlaskClient, auth: dict[str, str], query: str = "") -> dict[str, Any]:
    res = client.get(f"/api/v1/reports/themes?{query}", headers=auth)
    assert res.status_code == 200, res.get_json()
    body: dict[str, Any] = res.get_json()
    return body


def by_key(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["key"]: t for t in report["themes"]}
