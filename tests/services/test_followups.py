"""Close the loop through the API: follow-up status, owner, notes and tags on a response."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from survey_service.extensions import db
from survey_service.models import Response
from tests.support.db import make_project


def new_response(client: FlaskClient, auth: dict[str, str], score: int = 3) -> int:
    res = client.post("/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": score}, headers=auth)
    assert res.status_code == 201
    assert res.get_json()["followup_status"] == "new" and res.get_json()["followup_tags"] == []
    return int(res.get_json()["id"])


def test_followup_patch_sets_status_owner_notes_tags(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    rid = new_response(client, auth)
    body = {
        "followup_status": "contacted",
        "followup_owner": "csm@acme.test",
        "followup_notes": "Called, will fix exports.",
        "followup_tags": ["exports", "churn-risk", "exports"],
    }
    res = client.patch(f"/api/v1/responses/{rid}", json=body, headers=auth)
    assert res.status_code == 200
    assert res.get_json()["followup_tags"] == ["exports", "churn-risk"]
    res = client.patch(f"/api/v1/responses/{rid}", json={"followup_status": "resolved"}, headers=auth)
    assert res.get_json()["followup_owner"] == "csm@acme.test"
    with app.app_context():
        row = db.session.scalar(select(Response).where(Response.id == rid))
        assert row is not None
        assert (row.followup_status, row.followup_notes) == ("resolved", "Called, will fix exports.")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"followup_status": "done"},
        {"followup_tags": ["x" * 51]},
        {"followup_tags": "vip"},
        {"followup_owner": ""},
    ],
)
def test_followup_patch_bad_body_is_422(
    client: FlaskClient, auth: dict[str, str], body: dict[str, Any]
) -> None:
    rid = new_response(client, auth)
    res = client.patch(f"/api/v1/responses/{rid}", json=body, headers=auth)
    assert res.status_code == 422 and res.get_json()["code"] == "validation_error"


def test_followup_patch_other_projects_response_is_404(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    rid = new_response(client, auth)
    other = make_project(app, "Other")
    res = client.patch(
        f"/api/v1/responses/{rid}",
        json={"followup_status": "resolved"},
        headers={"Authorization": f"Bearer {other['secret_key']}"},
    )
    assert res.status_code == 404 and res.get_json()["code"] == "not_found"
    assert (
        client.patch("/api/v1/responses/999999", json={"followup_status": "new"}, headers=auth).status_code
        == 404
    )
