"""The NPS report through the server API."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient


def report(client: FlaskClient, auth: dict[str, str], query: str = "") -> dict[str, Any]:
    """GET /api/v1/reports/nps?<query>, asserting a 200, and return its body."""
    res = client.get(f"/api/v1/reports/nps?{query}", headers=auth)
    assert res.status_code == 200, res.get_json()
    body: dict[str, Any] = res.get_json()
    return body
