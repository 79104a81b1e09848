"""Privacy: one person's data export, and erasure that leaves nothing behind (rows and queued jobs)."""

from __future__ import annotations

from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient
from rq.job import Job
from sqlalchemy import func, select

from survey_service.extensions import db, queues
from survey_service.models import Person, Response, SurveyRequest, WebhookDelivery
from survey_service.services.projects import default_survey
from tests.conftest import make_project


def test_person_export_and_erase_leave_nothing_behind(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], redis_url: str
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    rule = client.post(
        "/api/v1/alert_rules", json={"name": "all", "target_url": "https://8.8.8.8/hook"}, headers=auth
    )
    assert rule.status_code == 201
    for score, comment in [(2, "Too slow"), (9, "Better now")]:
        res = client.post(
            "/api/v1/responses",
            json={
                "person": {"email": "gone@acme.test", "properties": {"plan": "pro"}},
                "score": score,
                "comment": comment,
            },
            headers=auth,
        )
        assert res.status_code == 201
    client.post("/api/v1/responses", json={"person": {"email": "stays@acme.test"}, "score": 5}, headers=auth)
    with app.app_context():
        person_id = db.session.scalar(select(Person.id).where(Person.email == "gone@acme.test"))
        db.session.add(
            SurveyRequest(
                project_id=project["id"],
                survey_id=default_survey(project["id"]).id,
                person_id=person_id,
                channel="email",
            )
        )
        db.session.commit()
        delivery_ids = list(
            db.session.scalars(
                select(WebhookDelivery.id).join(Response).where(Response.person_id == person_id)
            )
        )
        assert len(delivery_ids) == 2
        assert all(Job.exists(f"webhook-delivery-{i}", connection=queues().redis) for i in delivery_ids)

    exported = client.get(f"/api/v1/people/{person_id}/export", headers=auth)
    assert exported.status_code == 200
    data = exported.get_json()
    assert data["person"]["email"] == "gone@acme.test" and data["person"]["properties"] == {"plan": "pro"}
    assert [r["comment"] for r in data["responses"]] == ["Too slow", "Better now"]
    assert len(data["survey_requests"]) == 1 and len(data["webhook_deliveries"]) == 2

    other = {"Authorization": f"Bearer {make_project(app, 'Other')['secret_key']}"}
    assert client.get(f"/api/v1/people/{person_id}/export", headers=other).status_code == 404
    assert client.delete(f"/api/v1/people/{person_id}", headers=other).status_code == 404

    erased = client.delete(f"/api/v1/people/{person_id}", headers=auth)
    assert erased.status_code == 200
    assert erased.get_json()["counts"] == {"responses": 2, "survey_requests": 1, "webhook_deliveries": 2}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Person).where(Person.id == person_id)) == 0
        assert (
            db.session.scalar(
                select(func.count()).select_from(Response).where(Response.person_id == person_id)
            )
            == 0
        )
        assert db.session.scalar(select(func.count()).select_from(SurveyRequest)) == 0
        remaining = db.session.scalars(select(WebhookDelivery.id)).all()
        assert not set(remaining) & set(delivery_ids)
        assert not any(Job.exists(f"webhook-delivery-{i}", connection=queues().redis) for i in delivery_ids)
        assert (
            db.session.scalar(
                select(func.count()).select_from(Person).where(Person.email == "stays@acme.test")
            )
            == 1
        )
    assert client.get(f"/api/v1/people/{person_id}/export", headers=auth).status_code == 404
    csv_text = client.get("/api/v1/exports/responses.csv", headers=auth).get_data(as_text=True)
    assert "gone@acme.test" not in csv_text and "stays@acme.test" in csv_text


def test_anonymise_comments_blanks_only_old_ones(app: Flask, runner: Any, project: dict[str, Any]) -> None:
    from datetime import timedelta

    from survey_service.models import utcnow
    from survey_service.services.responses import record_response

    with app.app_context():
        old, _ = record_response(
            project["id"],
            {"email": "a@acme.test"},
            3,
            "Old complaint",
            created_at=utcnow() - timedelta(days=400),
        )
        new, _ = record_response(project["id"], {"email": "b@acme.test"}, 9, "Fresh praise")
        old_id, new_id = old.id, new.id
    assert runner.invoke(args=["anonymise-comments"]).exit_code != 0  # no retention configured
    result = runner.invoke(args=["anonymise-comments", "--older-than-days", "365"])
    assert result.exit_code == 0 and '"anonymised": 1' in result.output
    with app.app_context():
        old_row, new_row = db.session.get(Response, old_id), db.session.get(Response, new_id)
        assert old_row is not None and old_row.comment is None and old_row.score == 3
        assert new_row is not None and new_row.comment == "Fresh praise"
