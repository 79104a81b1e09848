"""Delighted's unsubscribe.created webhook: every unsubscribe path, a real receiver, a real RQ worker."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq.job import Job
from sqlalchemy import select

from survey_service.delighted import webhooks as unsubscribe_webhooks
from survey_service.extensions import db, queues, scheduled_jobs
from survey_service.models import EmailSuppression, Person
from survey_service.services import alerts, email_requests
from survey_service.services.people import upsert_person
from survey_service.services.suppressions import add_suppression
from tests.support.webhooks import Receiver, create_rule, run_jobs


def unsubscribe_link(app: Flask, project_id: int, email: str) -> str:
    """The path of the unsubscribe link in a survey email sent to this address."""
    with app.app_context():
        person, _ = upsert_person(project_id, {"email": email, "name": "Ann"})
        db.session.commit()
        request = email_requests.create_email_request(project_id, person.id)
        url: str = email_requests.survey_links(request)["unsubscribe_url"]
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def delighted_rule(client: FlaskClient, auth: dict[str, str], url: str, events: list[str]) -> Any:
    res = create_rule(client, auth, target_url=url, format="delighted", events=events)
    assert res.status_code == 201, res.get_json()
    return res.get_json()


def test_unsubscribe_webhook_sent_signed_from_every_unsubscribe_path(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], receiver: Receiver
) -> None:
    rule = delighted_rule(client, auth, receiver.url, ["response.created", "unsubscribe.created"])
    link = unsubscribe_link(private_ok, project["id"], "ann@example.com")
    one_click = client.post(
        link, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert one_click.status_code == 200
    assert client.post(link).status_code == 200  # already unsubscribed: no second event
    basic = {"Authorization": auth["Authorization"]}
    assert (
        client.post("/v1/unsubscribes", json={"person_email": "bo@example.com"}, headers=basic).status_code
        == 200
    )
    assert (
        client.post("/api/v1/unsubscribes", json={"email": "cy@example.com"}, headers=auth).status_code == 201
    )
    assert client.post("/api/v1/bounces", json={"email": "dy@example.com"}, headers=auth).status_code == 201
    run_jobs(private_ok)

    assert len(receiver.requests) == 3
    events = []
    for headers, body in receiver.requests:
        expected = "sha256=" + hmac.new(rule["secret"].encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Delighted-Webhook-Signature"], expected)
        assert headers["X-Survey-Event"] == "unsubscribe.created"
        events.append(json.loads(body))
    assert [e["event_data"]["email"] for e in events] == [
        "ann@example.com",
        "bo@example.com",
        "cy@example.com",
    ]
    with private_ok.app_context():
        ann = db.session.scalar(select(Person).where(Person.email == "ann@example.com"))
        first = db.session.scalar(select(EmailSuppression).where(EmailSuppression.email == "ann@example.com"))
        assert ann is not None and first is not None
        assert events[0] == {
            "event_type": "unsubscribe.created",
            "event_id": f"unsubscribe-{first.id}",
            "event_data": {
                "person_id": str(ann.id),
                "email": "ann@example.com",
                "unsubscribed_at": int(first.created_at.timestamp()),
            },
            "event_creation_timestamp": int(first.created_at.timestamp()),
        }
    assert events[1]["event_data"]["person_id"] is None  # an address nobody was surveyed at
    assert len({e["event_id"] for e in events}) == 3


def test_unsubscribe_webhook_only_for_rules_that_ask_for_it(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], receiver: Receiver
) -> None:
    delighted_rule(client, auth, receiver.url, ["response.created"])
    create_rule(client, auth, target_url=receiver.url)  # our own format: response events only
    disabled = create_rule(
        client,
        auth,
        target_url=receiver.url,
        format="delighted",
        events=["unsubscribe.created"],
        enabled=False,
    )
    assert disabled.status_code == 201
    with private_ok.app_context():
        add_suppression(project["id"], "ann@example.com", "unsubscribed")
    run_jobs(private_ok)
    assert receiver.requests == []


@pytest.mark.parametrize("fmt", ["webhook", "slack", "email"])
def test_unsubscribe_event_needs_the_delighted_format(
    client: FlaskClient, auth: dict[str, str], fmt: str
) -> None:
    url = "mailto:cs@example.com" if fmt == "email" else "https://8.8.8.8/hook"
    res = create_rule(client, auth, target_url=url, format=fmt, events=["unsubscribe.created"])
    assert res.status_code == 422 and "events" in str(res.get_json()["details"])


def test_unsubscribe_webhook_failure_is_retried_then_delivered(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], receiver: Receiver
) -> None:
    rule = delighted_rule(client, auth, receiver.url, ["unsubscribe.created"])
    receiver.status = 500
    with private_ok.app_context():
        add_suppression(project["id"], "ann@example.com", "unsubscribed", "test")
        suppression_id = db.session.scalar(select(EmailSuppression.id))
        assert suppression_id is not None
    run_jobs(private_ok)
    job_id = unsubscribe_webhooks.job_id(suppression_id, rule["id"])
    with private_ok.app_context():
        handle = queues()
        assert job_id in scheduled_jobs(handle.queue("webhooks")).get_job_ids()
        job = Job.fetch(job_id, connection=handle.redis)
        assert job.retries_left == alerts.MAX_ATTEMPTS - 2
        assert job.meta["project_id"] == project["id"]  # the project's failed-jobs listing shows it
        receiver.status = 204
        assert unsubscribe_webhooks.deliver_unsubscribe_webhook(suppression_id, rule["id"]) == "delivered"
    first, second = (json.loads(body) for _, body in receiver.requests)
    assert first == second  # a retry sends the same event, event_id included


def test_unsubscribe_webhook_to_private_target_is_blocked_when_not_allowed(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], receiver: Receiver
) -> None:
    rule = delighted_rule(client, auth, receiver.url, ["unsubscribe.created"])
    private_ok.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = False  # e.g. DNS now points inside
    with private_ok.app_context():
        add_suppression(project["id"], "ann@example.com", "unsubscribed")
        suppression_id = db.session.scalar(select(EmailSuppression.id))
        assert suppression_id is not None
        assert unsubscribe_webhooks.deliver_unsubscribe_webhook(suppression_id, rule["id"]) == "blocked"
    assert receiver.requests == []


def test_unsubscribe_webhook_lost_to_a_redis_outage_is_sent_by_the_relay(
    private_ok: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    receiver: Receiver,
    redis_url: str,
) -> None:
    from datetime import timedelta

    from survey_service.core import clock

    delighted_rule(client, auth, receiver.url, ["unsubscribe.created"])
    with private_ok.app_context():
        handle = queues()
        handle.app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
        handle._redis = None
    basic = {"Authorization": auth["Authorization"]}
    res = client.post("/v1/unsubscribes", json={"person_email": "ann@example.com"}, headers=basic)
    assert res.status_code == 200  # the unsubscribe counts; its webhook waits for the relay
    with private_ok.app_context():
        handle.app.config["REDIS_URL"] = redis_url
        handle._redis = None
        later = clock.now() + timedelta(minutes=2)
        assert unsubscribe_webhooks.relay_unsent(every=0) == 0  # too fresh: its enqueue may be on the way
        assert unsubscribe_webhooks.relay_unsent(now=later, every=0) == 1
        assert unsubscribe_webhooks.relay_unsent(now=later, every=0) == 0  # its job is in Redis now
    # A rule created after the unsubscribe does not receive it.
    delighted_rule(client, auth, receiver.url + "&late=1", ["unsubscribe.created"])
    run_jobs(private_ok)
    assert [json.loads(body)["event_data"]["email"] for _, body in receiver.requests] == ["ann@example.com"]
    with private_ok.app_context():
        later = clock.now() + timedelta(minutes=2)
        assert unsubscribe_webhooks.relay_unsent(now=later, every=0) == 0  # delivered jobs are remembered
