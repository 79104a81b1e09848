"""The public receiver (/sources/<token>): each provider's documented payload and signature, refusals,
exactly-once under redelivery, what is ignored and logged, tenants, the per-source rate limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from survey_service.extensions import db
from survey_service.models import Event, EventSource, Person, SourceDelivery, SurveyRequest
from tests.support.db import make_project
from tests.support.mail import flush_redis
from tests.support.sources import (
    EXPECTED,
    KINDS,
    SAMPLE_OF,
    create_source,
    deliver,
    path_of,
    sample,
    signed_headers,
)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday afternoon
SIGNING_KINDS = ("segment", "stripe", "zendesk", "intercom", "hubspot")  # the body is signed
TIMESTAMPED_KINDS = ("stripe", "zendesk", "hubspot")


@pytest.fixture(autouse=True)
def frozen_clock(app: Flask) -> None:
    app.config["FROZEN_NOW"] = NOW
    flush_redis(app)


def counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        found = {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Event, Person, SurveyRequest)
        }
        db.session.rollback()
        return found


def log_of(app: Flask, source_id: int) -> list[tuple[str, str | None]]:
    """The source's log, oldest first: (outcome, reason)."""
    with app.app_context():
        rows = db.session.execute(
            select(SourceDelivery.outcome, SourceDelivery.reason)
            .where(SourceDelivery.source_id == source_id)
            .order_by(SourceDelivery.id)
        ).all()
        db.session.rollback()
        return [(outcome, reason) for outcome, reason in rows]


def add_rule(client: FlaskClient, auth: dict[str, str], event_type: str, **extra: Any) -> None:
    body = {"event_type": event_type, "channel": "email", "delay_seconds": 3600, **extra}
    res = client.post("/api/v1/triggers", json=body, headers=auth)
    assert res.status_code == 201, res.get_json()


@pytest.mark.parametrize("kind", KINDS)
def test_receiver_documented_sample_signed_records_its_event_for_its_person(
    app: Flask, client: FlaskClient, auth: dict[str, str], kind: str
) -> None:
    source = create_source(client, auth, kind)
    res = deliver(client, source, sample(SAMPLE_OF[kind]), NOW)
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["accepted"] == 1
    event_type, person = EXPECTED[kind]
    with app.app_context():
        [event] = db.session.scalars(select(Event)).all()
        stored = db.session.get(Person, event.person_id)
        assert event.type == event_type and stored is not None
        assert {key: getattr(stored, key) for key in person} == person
    assert [outcome for outcome, _ in log_of(app, source["id"])] == ["accepted"]
    shown = client.get(f"/api/v1/sources/{source['id']}", headers=auth).get_json()
    assert shown["last_received_at"] == "2026-03-02T15:00:00Z"
    assert shown["recent_deliveries"][0]["event_type"] == event_type


@pytest.mark.parametrize("kind", KINDS)
def test_receiver_wrong_secret_is_401_and_records_nothing_but_a_log_line(
    app: Flask, client: FlaskClient, auth: dict[str, str], kind: str
) -> None:
    source = create_source(client, auth, kind)
    res = deliver(client, source, sample(SAMPLE_OF[kind]), NOW, secret="whsec_not_the_secret")
    body = res.get_json()
    assert res.status_code == 401 and body["code"] == "invalid_signature" and body["details"]["reason"]
    assert counts(app) == {"events": 0, "people": 0, "survey_requests": 0}
    assert [outcome for outcome, _ in log_of(app, source["id"])] == ["refused"]


@pytest.mark.parametrize("kind", KINDS)
def test_receiver_missing_signature_is_401(
    app: Flask, client: FlaskClient, auth: dict[str, str], kind: str
) -> None:
    source = create_source(client, auth, kind)
    res = client.post(
        path_of(source), data=json.dumps(sample(SAMPLE_OF[kind])), content_type="application/json"
    )
    assert res.status_code == 401 and res.get_json()["code"] == "invalid_signature"
    assert counts(app)["events"] == 0


@pytest.mark.parametrize("kind", SIGNING_KINDS)
def test_receiver_tampered_body_is_401(
    app: Flask, client: FlaskClient, auth: dict[str, str], kind: str
) -> None:
    source = create_source(client, auth, kind)
    body = json.dumps(sample(SAMPLE_OF[kind])).encode()
    headers = signed_headers(kind, body, source["signing_secret"], NOW, source["url"])
    tampered = body.replace(b"example.com", b"attacker.io").replace(b"customer", b"Customer")
    assert tampered != body
    res = client.post(path_of(source), data=tampered, headers=headers, content_type="application/json")
    assert res.status_code == 401
    assert counts(app) == {"events": 0, "people": 0, "survey_requests": 0}


@pytest.mark.parametrize("kind", TIMESTAMPED_KINDS)
@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)], ids=["old", "future"])
def test_receiver_timestamp_beyond_5_minutes_is_401(
    app: Flask, client: FlaskClient, auth: dict[str, str], kind: str, skew: timedelta
) -> None:
    source = create_source(client, auth, kind)
    res = deliver(client, source, sample(SAMPLE_OF[kind]), NOW + skew)
    assert res.status_code == 401 and "minutes" in res.get_json()["details"]["reason"]
    assert counts(app)["events"] == 0
    assert deliver(client, source, sample(SAMPLE_OF[kind]), NOW - timedelta(minutes=4)).status_code == 200


@pytest.mark.parametrize("kind", KINDS)
def test_receiver_rotated_secret_old_one_verifies_only_during_grace(
    app: Flask, client: FlaskClient, auth: dict[str, str], kind: str
) -> None:
    source = create_source(client, auth, kind)
    old = source["signing_secret"]
    res = client.post(
        f"/api/v1/sources/{source['id']}/rotate_secret",
        json={"signing_secret": f"whsec_rotated_{kind}_secret", "grace_hours": 1},
        headers=auth,
    )
    new = res.get_json()["signing_secret"]
    payload = sample(SAMPLE_OF[kind])
    assert deliver(client, source, payload, NOW, secret=new).status_code == 200
    assert deliver(client, source, payload, NOW, secret=old).status_code == 200  # a duplicate, accepted
    later = NOW + timedelta(hours=1, minutes=1)
    app.config["FROZEN_NOW"] = later
    assert deliver(client, source, payload, later, secret=old).status_code == 401
    assert deliver(client, source, payload, later, secret=new).status_code == 200


def test_receiver_stripe_header_with_two_v1_signatures_accepts_either(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    """During Stripe's own secret roll it signs with both secrets: any v1 may match."""
    source = create_source(client, auth, "stripe")
    body = json.dumps(sample("stripe_invoice_upcoming.json")).encode()
    ours = signed_headers("stripe", body, source["signing_secret"], NOW)["Stripe-Signature"]
    theirs = signed_headers("stripe", body, "whsec_some_other_endpoint", NOW)["Stripe-Signature"]
    header = f"{theirs},{ours.split(',')[1]}"
    res = client.post(path_of(source), data=body, headers={"Stripe-Signature": header})
    assert res.status_code == 200 and res.get_json()["accepted"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_receiver_same_delivery_10_times_is_one_event_and_one_ask(
    app: Flask, client: FlaskClient, auth: dict[str, str], kind: str
) -> None:
    event_type, person = EXPECTED[kind]
    extra = (
        {"relative_to": "renewal_date", "delay_seconds": -45 * 86400}
        if event_type == "renewal_upcoming"
        else {}
    )
    # HubSpot names a contact by id only: no email to send to, so the ask is in-app.
    add_rule(client, auth, event_type, channel="email" if "email" in person else "in_app", **extra)
    source = create_source(client, auth, kind)
    answers = [deliver(client, source, sample(SAMPLE_OF[kind]), NOW).get_json() for _ in range(10)]
    assert [a["accepted"] for a in answers] == [1] + [0] * 9
    assert [a["duplicates"] for a in answers] == [0] + [1] * 9
    assert counts(app) == {"events": 1, "people": 1, "survey_requests": 1}
    log = log_of(app, source["id"])
    assert [outcome for outcome, _ in log] == ["accepted"] + ["duplicate"] * 9
    assert log[0][1] == "1 survey request(s) scheduled"


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (
            "stripe",
            {**sample("stripe_customer_created.json"), "type": "charge.succeeded", "id": "evt_charge"},
        ),
        ("segment", {**sample("segment_track.json"), "type": "page"}),
        ("zendesk", {"ticket": {"id": "7", "status": "Open"}, "requester": {"email": "a@example.com"}}),
        (
            "intercom",
            {**sample("intercom_conversation_admin_closed.json"), "topic": "conversation.user.replied"},
        ),
        ("freshdesk", {"freshdesk_webhook": {"ticket_id": 9, "ticket_status": "Pending"}}),
        (
            "hubspot",
            [{**sample("hubspot_contact_lifecycle.json")[0], "subscriptionType": "deal.propertyChange"}],
        ),
        ("chargebee", {**sample("chargebee_renewal_reminder.json"), "event_type": "invoice_generated"}),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_receiver_unmapped_payload_is_acknowledged_ignored_and_logged(
    app: Flask, client: FlaskClient, auth: dict[str, str], kind: str, payload: Any
) -> None:
    source = create_source(client, auth, kind)
    res = deliver(client, source, payload, NOW)
    body = res.get_json()
    assert res.status_code == 200 and body["accepted"] == 0 and len(body["ignored"]) == 1
    assert counts(app) == {"events": 0, "people": 0, "survey_requests": 0}
    [(outcome, reason)] = log_of(app, source["id"])
    assert outcome == "ignored" and reason == body["ignored"][0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("body", [b"not json", b'{"a": ', b"[]", b'"text"', b"{}"], ids=repr)
def test_receiver_malformed_signed_body_is_400_in_the_one_shape(
    app: Flask, client: FlaskClient, auth: dict[str, str], kind: str, body: bytes
) -> None:
    source = create_source(client, auth, kind)
    res = deliver(client, source, body, NOW)
    assert res.status_code == 400, res.get_json()
    assert {"status", "code", "message", "details"} <= set(res.get_json())
    assert counts(app)["events"] == 0


def test_receiver_unknown_or_disabled_source_is_404(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    source = create_source(client, auth, "segment")
    assert client.post("/sources/" + "x" * 43, data=b"{}").status_code == 404
    assert client.post("/sources/" + "x" * 500, data=b"{}").status_code == 404
    client.patch(f"/api/v1/sources/{source['id']}", json={"enabled": False}, headers=auth)
    res = deliver(client, source, sample("segment_track.json"), NOW)
    assert res.status_code == 404 and res.get_json()["code"] == "not_found"
    assert counts(app)["events"] == 0


def test_receiver_two_tenants_never_cross(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    other = make_project(app, "Other")
    other_auth = {"Authorization": f"Bearer {other['secret_key']}"}
    ours = create_source(client, auth, "stripe", signing_secret="whsec_ours_0001")
    theirs = create_source(client, other_auth, "stripe", signing_secret="whsec_theirs_0002")
    payload = sample("stripe_invoice_upcoming.json")
    # Our secret on their URL (and theirs on ours) never verifies.
    assert (
        deliver(client, {**theirs, "signing_secret": ours["signing_secret"]}, payload, NOW).status_code == 401
    )
    assert (
        deliver(client, {**ours, "signing_secret": theirs["signing_secret"]}, payload, NOW).status_code == 401
    )
    assert deliver(client, theirs, payload, NOW).status_code == 200
    # The same Stripe event delivered to both projects is one event in each: no duplicate across tenants.
    assert deliver(client, ours, payload, NOW).get_json()["accepted"] == 1
    with app.app_context():
        projects = db.session.scalars(select(Event.project_id).order_by(Event.project_id)).all()
        assert sorted(projects) == sorted(
            [other["id"], client.get("/api/v1/project", headers=auth).get_json()["id"]]
        )
        people = db.session.execute(select(Person.project_id, Person.external_id)).all()
        assert {row.project_id for row in people} == set(projects)


def test_receiver_rate_limit_counts_per_source_not_per_address(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    app.config["SOURCE_RATE_LIMIT"] = 3
    first, second = create_source(client, auth, "segment"), create_source(client, auth, "segment")
    payload = sample("segment_track.json")
    statuses = [deliver(client, first, {**payload, "messageId": f"m{i}"}, NOW).status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = deliver(client, first, payload, NOW)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.get_json()["code"] == "rate_limited"
    # The same client address, another source: its own count.
    assert deliver(client, second, {**payload, "messageId": "other"}, NOW).status_code == 200


def test_receiver_log_is_bounded(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    source = create_source(client, auth, "segment")
    for i in range(130):
        deliver(client, source, b"{}", NOW, secret="wrong-secret-" + str(i))
    with app.app_context():
        kept = db.session.scalar(select(func.count()).where(SourceDelivery.source_id == source["id"]))
        db.session.rollback()
    assert kept is not None and 100 <= kept < 130


def test_source_row_keeps_last_received_cold_within_a_minute(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    source = create_source(client, auth, "segment")
    deliver(client, source, sample("segment_track.json"), NOW)
    app.config["FROZEN_NOW"] = NOW + timedelta(seconds=30)
    deliver(client, source, {**sample("segment_track.json"), "messageId": "m2"}, NOW + timedelta(seconds=30))
    with app.app_context():
        stored = db.session.get(EventSource, source["id"])
        assert stored is not None and stored.last_received_at == NOW
    app.config["FROZEN_NOW"] = NOW + timedelta(seconds=90)
    deliver(client, source, {**sample("segment_track.json"), "messageId": "m3"}, NOW + timedelta(seconds=90))
    with app.app_context():
        stored = db.session.get(EventSource, source["id"])
        assert stored is not None and stored.last_received_at == NOW + timedelta(seconds=90)
