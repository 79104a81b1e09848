"""End to end: a provider's signed delivery through the lifecycle engine to a scheduled or sent email."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import select

from survey_service.extensions import db, scheduled_jobs
from survey_service.models import SurveyRequest
from tests.support.mail import flush_redis, run_worker_burst, smtp_server
from tests.support.sources import create_source, deliver, sample

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def requests_of(app: Flask) -> list[SurveyRequest]:
    with app.app_context():
        rows = list(db.session.scalars(select(SurveyRequest).order_by(SurveyRequest.id)))
        db.session.expunge_all()
        return rows


def test_stripe_invoice_upcoming_60_days_out_with_rule_at_minus_45_days_schedules_one_email_15_days_out(
    app: Flask, client: FlaskClient, auth: dict[str, str], redis_url: str
) -> None:
    app.config["FROZEN_NOW"] = NOW
    flush_redis(app)
    rule = {"event_type": "renewal_upcoming", "channel": "email", "relative_to": "renewal_date"}
    res = client.post("/api/v1/triggers", json={**rule, "delay_seconds": -45 * 86400}, headers=auth)
    assert res.status_code == 201
    source = create_source(client, auth, "stripe")
    payload: dict[str, Any] = sample("stripe_invoice_upcoming.json")
    renewal = NOW + timedelta(days=60)
    payload["created"] = int(NOW.timestamp())
    payload["data"]["object"]["next_payment_attempt"] = int(renewal.timestamp())
    for _ in range(3):  # Stripe retries: still one
        assert deliver(client, source, payload, NOW).status_code == 200
    [request] = requests_of(app)
    assert (request.channel, request.status) == ("email", "scheduled")
    assert request.scheduled_at == NOW + timedelta(days=15)
    queue = Queue("default", connection=redis.Redis.from_url(redis_url))
    assert scheduled_jobs(queue).get_job_ids() == [f"send-email-{request.id}"]


def test_zendesk_ticket_solved_with_ticket_closed_rule_sends_one_email_over_smtp(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    app.config["EMAIL_RETRY_INTERVALS"] = [0, 0]
    flush_redis(app)
    rule = {"event_type": "ticket_closed", "channel": "email", "delay_seconds": 0}
    assert client.post("/api/v1/triggers", json=rule, headers=auth).status_code == 201
    source = create_source(client, auth, "zendesk")
    with smtp_server() as (sink, url):
        app.config["SMTP_URL"] = url
        for _ in range(10):  # Zendesk retries until it sees a 2xx; each try is signed anew
            now = datetime.now(UTC)
            assert (
                deliver(client, source, sample("zendesk_trigger_ticket_solved.json"), now).status_code == 200
            )
        run_worker_burst(app)
    assert len(sink.messages) == 1
    message = sink.messages[0]
    assert message["To"] == "Ana Lima <ana.lima@example.com>"
    [request] = requests_of(app)
    assert request.status in ("sent", "delivered")
