"""What the write hot paths cache per process (core/hot_cache) never outlives a change.

A change made through this process (a key rotation, a settings change, an alert or trigger rule created,
changed or deleted) applies to the very next request; one made by another process (the CLI, another
gunicorn worker: here a second app on the same database) within HOT_CACHE_SECONDS.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from survey_service.extensions import db
from survey_service.models import SurveyRequest, WebhookDelivery
from survey_service.services.projects import new_server_key
from survey_service.services.surveying import update_survey
from tests.support.env import wait_for


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _respond(client: FlaskClient, key: str, n: int) -> int:
    body = {"person": {"external_id": f"u{n}", "email": f"u{n}@example.com"}, "score": 3, "comment": "slow"}
    return client.post("/api/v1/responses", json=body, headers=_bearer(key)).status_code


def _event(client: FlaskClient, key: str, n: int, event_type: str = "hot_cache_event") -> Any:
    body = {
        "id": f"e{n}",
        "type": event_type,
        "person": {"external_id": f"p{n}", "email": f"p{n}@example.com"},
    }
    return client.post("/api/v1/events", json=body, headers=_bearer(key))


def _deliveries(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0


def test_hot_cache_rotated_key_refused_by_the_next_request_of_this_process(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["HOT_CACHE_SECONDS"] = 3600
    old = project["secret_key"]
    assert _respond(client, old, 1) == 201  # cached now
    with app.app_context():
        new = new_server_key(project["id"])
    assert _respond(client, old, 2) == 401
    assert _respond(client, new, 3) == 201


def test_hot_cache_key_rotated_elsewhere_refused_within_the_bound(
    app: Flask, fresh_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["HOT_CACHE_SECONDS"] = 1
    old = project["secret_key"]
    assert _respond(client, old, 1) == 201
    with fresh_app.app_context():  # another process: its rotation clears only its own cache
        new = new_server_key(project["id"])
    wait_for(lambda: _respond(client, old, 2) == 401, "the old key refused", seconds=30)
    assert _respond(client, new, 3) == 201


def test_hot_cache_off_key_rotated_elsewhere_refused_at_once(
    app: Flask, fresh_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["HOT_CACHE_SECONDS"] = 0
    old = project["secret_key"]
    assert _respond(client, old, 1) == 201
    with fresh_app.app_context():
        new_server_key(project["id"])
    assert _respond(client, old, 2) == 401


def test_hot_cache_previous_key_refused_when_its_overlap_ends_though_cached(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["HOT_CACHE_SECONDS"] = 3600
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    app.config["FROZEN_NOW"] = start
    with app.app_context():
        new_server_key(project["id"], overlap=timedelta(hours=1))
    old = project["secret_key"]
    assert _respond(client, old, 1) == 201  # the previous key, cached with its overlap's end
    app.config["FROZEN_NOW"] = start + timedelta(hours=1, seconds=1)
    assert _respond(client, old, 2) == 401


def test_hot_cache_alert_rule_created_changed_deleted_applies_to_the_next_response(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["HOT_CACHE_SECONDS"] = 3600
    key = project["secret_key"]
    assert _respond(client, key, 1) == 201 and _deliveries(app) == 0  # "no rules" cached
    rule = {"name": "Detractors", "target_url": "mailto:cs@example.com", "format": "email", "max_score": 6}
    created = client.post("/api/v1/alert_rules", json=rule, headers=_bearer(key))
    assert created.status_code == 201, created.get_json()
    assert _respond(client, key, 2) == 201 and _deliveries(app) == 1
    rule_id = created.get_json()["id"]
    changed = client.patch(f"/api/v1/alert_rules/{rule_id}", json={"enabled": False}, headers=_bearer(key))
    assert changed.status_code == 200
    assert _respond(client, key, 3) == 201 and _deliveries(app) == 1
    client.patch(f"/api/v1/alert_rules/{rule_id}", json={"enabled": True}, headers=_bearer(key))
    assert _respond(client, key, 4) == 201 and _deliveries(app) == 2
    assert client.delete(f"/api/v1/alert_rules/{rule_id}", headers=_bearer(key)).status_code == 204
    assert _deliveries(app) == 0  # a rule's deliveries go with it
    assert _respond(client, key, 5) == 201 and _deliveries(app) == 0


def test_hot_cache_trigger_rule_created_changed_deleted_applies_to_the_next_event(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["HOT_CACHE_SECONDS"] = 3600
    key = project["secret_key"]
    assert _event(client, key, 1).get_json()["scheduled"] == []  # "no rules" cached
    rule = {"event_type": "hot_cache_event", "channel": "email", "delay_seconds": 3600}
    created = client.post("/api/v1/triggers", json=rule, headers=_bearer(key))
    assert created.status_code == 201, created.get_json()
    assert len(_event(client, key, 2).get_json()["scheduled"]) == 1
    rule_id = created.get_json()["id"]
    patched = client.patch(f"/api/v1/triggers/{rule_id}", json={"enabled": False}, headers=_bearer(key))
    assert patched.status_code == 200
    assert _event(client, key, 3).get_json()["scheduled"] == []
    client.patch(f"/api/v1/triggers/{rule_id}", json={"enabled": True}, headers=_bearer(key))
    assert len(_event(client, key, 4).get_json()["scheduled"]) == 1
    assert client.delete(f"/api/v1/triggers/{rule_id}", headers=_bearer(key)).status_code == 204
    assert _event(client, key, 5).get_json()["scheduled"] == []


def _asked_plan(app: Flask, client: FlaskClient, key: str, n: int) -> Any:
    """The reminder plan of the ask event n makes (the project's one rule asks its default survey)."""
    [request] = _event(client, key, n).get_json()["scheduled"]
    with app.app_context():
        return db.session.get(SurveyRequest, request["id"]).reminder_plan  # type: ignore[union-attr]


def _survey_asking(client: FlaskClient, key: str) -> int:
    rule = {"event_type": "hot_cache_event", "channel": "email", "delay_seconds": 3600}
    created = client.post("/api/v1/triggers", json=rule, headers=_bearer(key))
    assert created.status_code == 201, created.get_json()
    survey_id: int = created.get_json()["survey_id"]
    return survey_id


def test_hot_cache_survey_plan_changed_applies_to_the_next_event(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["HOT_CACHE_SECONDS"] = 3600
    key = project["secret_key"]
    survey_id = _survey_asking(client, key)
    assert _asked_plan(app, client, key, 1) is None  # the survey (no plan) cached
    plan = {"reminders": {"count": 2}}
    assert client.patch(f"/api/v1/surveys/{survey_id}", json=plan, headers=_bearer(key)).status_code == 200
    assert _asked_plan(app, client, key, 2)["count"] == 2


def test_hot_cache_survey_plan_changed_elsewhere_applies_within_the_bound(
    app: Flask, fresh_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["HOT_CACHE_SECONDS"] = 1
    key = project["secret_key"]
    survey_id = _survey_asking(client, key)
    assert _asked_plan(app, client, key, 1) is None
    with fresh_app.app_context():  # another process: its change clears only its own cache
        update_survey(project["id"], survey_id, {"reminders": {"count": 2}})
    sent = iter(range(2, 1000))
    wait_for(lambda: _asked_plan(app, client, key, next(sent)) is not None, "the new plan asked", seconds=30)


def test_hot_cache_custom_events_switched_off_refused_by_the_next_event(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["HOT_CACHE_SECONDS"] = 3600
    key = project["secret_key"]
    assert _event(client, key, 1).status_code == 202  # the project's settings cached with its key
    off = client.patch("/api/v1/project", json={"allow_custom_events": False}, headers=_bearer(key))
    assert off.status_code == 200
    refused = _event(client, key, 2)
    assert refused.status_code == 422 and refused.get_json()["code"] == "unknown_event_type"


def test_hot_cache_event_for_a_known_person_still_superseded_and_quiet(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    # The fatigue checks are skipped only for a person the event itself creates.
    key = project["secret_key"]
    rule = {"event_type": "hot_cache_event", "channel": "email", "delay_seconds": 3600}
    assert client.post("/api/v1/triggers", json=rule, headers=_bearer(key)).status_code == 201
    person = {"external_id": "same", "email": "same@example.com"}
    first = client.post(
        "/api/v1/events", json={"id": "a", "type": "hot_cache_event", "person": person}, headers=_bearer(key)
    )
    second = client.post(
        "/api/v1/events", json={"id": "b", "type": "hot_cache_event", "person": person}, headers=_bearer(key)
    )
    assert len(first.get_json()["scheduled"]) == 1 and len(second.get_json()["scheduled"]) == 1
    listed = client.get("/api/v1/survey_requests", headers=_bearer(key)).get_json()["data"]
    assert sorted(r["status"] for r in listed) == ["scheduled", "superseded"]
