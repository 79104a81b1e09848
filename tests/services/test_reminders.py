"""Reminders to non-responders, on both databases with the real SMTP test server and real Redis: plans and
their validation, steps created on schedule and sent once with the first ask's links, and every way a
chain ends early (an answer on any channel, unsubscribe, bounce, erasure, a rule switched off)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from survey_service.core import keys
from survey_service.extensions import db
from survey_service.models import Person, Response, SurveyRequest
from survey_service.services import campaigns, email_requests, enrollments, reminders
from survey_service.services.email_sends import claim_batch, send_batch
from survey_service.services.people import upsert_person
from survey_service.services.projects import default_survey_id
from survey_service.services.responses import record_response
from survey_service.services.suppressions import add_suppression
from tests.support.concurrency import at_once
from tests.support.mail import SmtpSink, flush_redis, run_worker_burst, smtp_server

T0 = datetime(2031, 3, 3, 10, 0, tzinfo=UTC)  # a Monday
DAY = 86400


@pytest.fixture
def rem_app(app: Flask, redis_url: str) -> Iterator[Flask]:
    """The app on an empty Redis, its clock frozen at T0, unique rate-limit keys."""
    app.config["EMAIL_RETRY_INTERVALS"] = [0, 0]
    app.config["FROZEN_NOW"] = T0
    app.config["RATELIMIT_KEY_PREFIX"] = f"rem-{id(app)}-{T0.timestamp()}"
    flush_redis(app)
    yield app


@pytest.fixture
def sink(rem_app: Flask) -> Iterator[SmtpSink]:
    with smtp_server() as (found, url):
        rem_app.config["SMTP_URL"] = url
        yield found


def at(app: Flask, when: datetime) -> None:
    app.config["FROZEN_NOW"] = when


def set_survey_plan(
    client: FlaskClient, auth: dict[str, str], app: Flask, project: dict[str, Any], plan: Any
) -> Any:
    with app.app_context():
        survey_id = default_survey_id(project["id"])
    res = client.patch(f"/api/v1/surveys/{survey_id}", json={"reminders": plan}, headers=auth)
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def ask(app: Flask, project: dict[str, Any], email: str = "ann@example.com", **person: Any) -> int:
    """An email first ask of a person (created and enqueued now)."""
    with app.app_context():
        request = email_requests.request_email_survey(project["id"], {"email": email, **person}, force=True)
        return request.id


def row(app: Flask, request_id: int) -> SurveyRequest:
    with app.app_context():
        found = db.session.get(SurveyRequest, request_id)
        assert found is not None
        db.session.expunge(found)
        return found


def steps_of(app: Flask, first_id: int) -> list[SurveyRequest]:
    with app.app_context():
        rows = list(
            db.session.scalars(
                select(SurveyRequest)
                .where(SurveyRequest.reminder_of_id == first_id)
                .order_by(SurveyRequest.step, SurveyRequest.channel)
            )
        )
        for found in rows:
            db.session.expunge(found)
        return rows


def schedule(app: Flask) -> int:
    with app.app_context():
        return reminders.schedule_due()


def score_links(message: EmailMessage) -> list[str]:
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    return re.findall(r'href="(http://[^"]+/s/[^"?]+\?score=\d+)"', str(html.get_content()))


def sent_to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return [m for m, (_, rcpts) in zip(sink.messages, sink.envelopes, strict=True) if address in rcpts]


def answer_by_link(client: FlaskClient, url: str, score: int) -> None:
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    page = client.get(path).get_data(as_text=True)
    view = re.search(r'name="view" value="([^"]+)"', page)
    assert view is not None
    res = client.post(
        path.split("?")[0],
        data={"score": str(score), "view": view.group(1), "mode": "interaction"},
        headers={"Accept": "application/json"},
    )
    assert res.get_json()["counted"] is True, res.get_json()


# --- plans: validation, resolution ----------------------------------------------------------------

BAD_PLANS = [
    {"count": 4},
    {"count": -1},
    {"count": "1"},
    {"delays_seconds": [3599]},
    {"delays_seconds": [30 * DAY + 1]},
    {"delays_seconds": []},
    {"delays_seconds": [DAY, DAY, DAY, DAY]},
    {"mode": "sms"},
    {"in_app_window_days": 0},
    {"in_app_window_days": 91},
    {"count": 1, "every": 3},
    [1],
]


@pytest.mark.parametrize("plan", BAD_PLANS, ids=[json.dumps(p) for p in BAD_PLANS])
@pytest.mark.parametrize("door", ["survey", "trigger", "recurring"])
def test_reminder_settings_invalid_plan_is_422_in_error_shape(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], plan: Any, door: str
) -> None:
    with app.app_context():
        survey_id = default_survey_id(project["id"])
    if door == "survey":
        res = client.patch(f"/api/v1/surveys/{survey_id}", json={"reminders": plan}, headers=auth)
    elif door == "trigger":
        body = {"event_type": "x_done", "channel": "email", "reminders": plan}
        res = client.post("/api/v1/triggers", json=body, headers=auth)
    else:
        body = {"person": {"email": "a@example.com"}, "interval_days": 30, "reminders": plan}
        res = client.post("/api/v1/recurring", json=body, headers=auth)
    assert res.status_code == 422, res.get_json()
    body = res.get_json()
    assert set(body) == {"status", "code", "message", "details"} and body["status"] == 422
    assert "reminders" in json.dumps(body["details"])


def test_reminder_settings_defaults_filled_and_returned_by_every_door(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any]
) -> None:
    survey = set_survey_plan(client, auth, app, project, {})
    full = {"count": 1, "delays_seconds": [3 * DAY], "mode": "email", "in_app_window_days": 7}
    assert survey["reminders"] == full
    assert client.get(f"/api/v1/surveys/{survey['id']}", headers=auth).get_json()["reminders"] == full
    listed = client.get("/api/v1/surveys", headers=auth).get_json()["data"]
    assert [s["reminders"] for s in listed] == [full]
    rule = {"event_type": "x_done", "channel": "email", "reminders": {"count": 2, "delays_seconds": [3600]}}
    made = client.post("/api/v1/triggers", json=rule, headers=auth).get_json()
    assert made["reminders"] == {**full, "count": 2, "delays_seconds": [3600]}
    patched = client.patch(f"/api/v1/triggers/{made['id']}", json={"reminders": None}, headers=auth)
    assert patched.get_json()["reminders"] is None
    enrol = {"person": {"email": "a@example.com"}, "interval_days": 30, "reminders": {"mode": "both"}}
    assert (
        client.post("/api/v1/recurring", json=enrol, headers=auth).get_json()["reminders"]["mode"] == "both"
    )
    assert set_survey_plan(client, auth, app, project, None)["reminders"] is None


def test_plan_resolution_rule_overrides_survey_and_count_zero_means_none(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any]
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"count": 2})
    rules = {
        "own": {"count": 3, "delays_seconds": [3600]},
        "none": {"count": 0},
        "inherit": None,
    }
    for name, plan in rules.items():
        body = {"event_type": f"x_{name}", "channel": "email", "reminders": plan}
        assert client.post("/api/v1/triggers", json=body, headers=auth).status_code == 201
    plans = {}
    for n, name in enumerate(rules):
        event = {"id": f"e{n}", "type": f"x_{name}", "person": {"email": f"{name}@example.com"}}
        res = client.post("/api/v1/events", json=event, headers=auth).get_json()
        plans[name] = row(rem_app, res["scheduled"][0]["id"]).reminder_plan
    assert plans["own"] is not None and plans["own"]["count"] == 3
    assert plans["none"] is None
    assert plans["inherit"] is not None and plans["inherit"]["count"] == 2
    with rem_app.app_context():  # no plan is SQL NULL, not JSON null
        assert db.session.scalar(select(func.count()).where(SurveyRequest.reminder_plan.is_(None))) == 1


def test_campaigns_and_enrolments_keep_the_plan_resolved_when_each_ask_is_made(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any]
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"count": 2})
    enrol = {"person": {"email": "e@example.com"}, "interval_days": 30, "reminders": {"count": 3}}
    assert client.post("/api/v1/recurring", json=enrol, headers=auth).status_code == 201
    with rem_app.app_context():
        upsert_person(project["id"], {"email": "c@example.com"})
        db.session.commit()
        assert enrollments.run_due() == 1
        assert sum(campaigns.start_campaign(project["id"], "q1")) == 2  # both people have an address
        counts = sorted(
            (r.enrollment_id is not None, r.campaign or "", (r.reminder_plan or {}).get("count"))
            for r in db.session.scalars(select(SurveyRequest))
        )
    assert counts == [(False, "q1", 2), (False, "q1", 2), (True, "", 3)]


# --- on schedule, with the first ask's links ------------------------------------------------------


def test_no_answer_reminders_arrive_on_schedule_with_the_first_asks_links(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"count": 2, "delays_seconds": [DAY, 2 * DAY]})
    first_id = ask(rem_app, project)
    run_worker_burst(rem_app)
    assert len(sink.messages) == 1
    first = row(rem_app, first_id)
    assert first.status == "sent" and first.next_reminder_at == T0 + timedelta(days=1)
    at(rem_app, T0 + timedelta(hours=23))
    assert schedule(rem_app) == 0
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    assert schedule(rem_app) == 1
    assert schedule(rem_app) == 0  # moved on: never the same step twice
    run_worker_burst(rem_app)
    assert len(sink.messages) == 2
    assert row(rem_app, first_id).next_reminder_at == T0 + timedelta(days=3)
    at(rem_app, T0 + timedelta(days=3, seconds=1))
    assert schedule(rem_app) == 1
    run_worker_burst(rem_app)
    at(rem_app, T0 + timedelta(days=20))
    assert schedule(rem_app) == 0  # the plan's two reminders are all
    assert len(sink.messages) == 3
    original, one, two = sink.messages
    assert score_links(one) == score_links(original) == score_links(two) and len(score_links(one)) == 11
    assert one["List-Unsubscribe"] == original["List-Unsubscribe"]
    assert len({m["Message-ID"] for m in sink.messages}) == 3
    assert "Reminder" in one["Subject"] and "Reminder" not in original["Subject"]
    steps = steps_of(rem_app, first_id)
    assert [(s.step, s.channel, s.status) for s in steps] == [(1, "email", "sent"), (2, "email", "sent")]
    assert all(s.expires_at == first.expires_at for s in steps)
    assert row(rem_app, first_id).next_reminder_at is None


def test_reminder_in_the_persons_language(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"delays_seconds": [3600]})
    with rem_app.app_context():
        person, _ = upsert_person(project["id"], {"email": "de@example.com"})
        person.locale = "de-AT"
        db.session.commit()
    ask(rem_app, project, "de@example.com")
    run_worker_burst(rem_app)
    at(rem_app, T0 + timedelta(hours=2))
    assert schedule(rem_app) == 1
    run_worker_burst(rem_app)
    assert sink.messages[1]["Subject"].startswith("Erinnerung")
    text = sink.messages[1].get_body(preferencelist=("plain",))
    assert text is not None and "Wir haben noch nichts von Ihnen gehört" in str(text.get_content())


def test_reminder_waits_for_the_rules_send_window_in_the_persons_time_zone(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    rule = {
        "event_type": "x_done",
        "channel": "email",
        "delay_seconds": 0,
        "send_window": {"start_hour": 9, "end_hour": 17},
        "reminders": {"delays_seconds": [10 * 3600]},
    }
    assert client.post("/api/v1/triggers", json=rule, headers=auth).status_code == 201
    with rem_app.app_context():
        person, _ = upsert_person(project["id"], {"email": "tz@example.com"})
        person.time_zone = "Asia/Tokyo"
        db.session.commit()
    asked = T0 - timedelta(hours=9)  # 01:00 UTC, 10:00 in Tokyo: inside the window
    at(rem_app, asked)
    event = {"id": "e1", "type": "x_done", "person": {"email": "tz@example.com"}}
    first_id = client.post("/api/v1/events", json=event, headers=auth).get_json()["scheduled"][0]["id"]
    run_worker_burst(rem_app)
    # Due ten hours later: 20:00 in Tokyo, after the window; it waits for 09:00 the next morning.
    at(rem_app, asked + timedelta(hours=10, seconds=1))
    assert schedule(rem_app) == 1
    (step,) = steps_of(rem_app, first_id)
    assert step.scheduled_at == datetime(2031, 3, 4, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
    run_worker_burst(rem_app)
    assert len(sink.messages) == 1  # not before its time
    at(rem_app, datetime(2031, 3, 4, 0, 0, 1, tzinfo=UTC))
    with rem_app.app_context():
        assert claim_batch(datetime(2031, 3, 4, 0, 0, 1, tzinfo=UTC), 10) == [step.id]


# --- an answer on any channel ends the chain ------------------------------------------------------


def test_answer_through_the_email_link_between_steps_stops_further_reminders(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"count": 3, "delays_seconds": [DAY]})
    first_id = ask(rem_app, project)
    run_worker_burst(rem_app)
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    assert schedule(rem_app) == 1
    run_worker_burst(rem_app)
    assert len(sink.messages) == 2
    answer_by_link(client, score_links(sink.messages[1])[9], 9)
    with rem_app.app_context():
        response = db.session.scalars(select(Response)).one()
        assert response.request_id == first_id and response.answered_after_step == 1
    assert row(rem_app, first_id).next_reminder_at is None
    assert row(rem_app, first_id).responded_at is not None
    at(rem_app, T0 + timedelta(days=10))
    assert schedule(rem_app) == 0
    run_worker_burst(rem_app)
    assert len(sink.messages) == 2


def test_scanner_count_withdrawn_gives_the_person_their_reminder_back(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"delays_seconds": [DAY]})
    rem_app.config["LANDING_MIN_VISIBLE_SECONDS"] = 0
    first_id = ask(rem_app, project)
    run_worker_burst(rem_app)
    urls = score_links(sink.messages[0])

    def opened(score: int) -> tuple[str, str]:
        path = "/" + urls[score].split("://", 1)[1].split("/", 1)[1]
        view = re.search(r'name="view" value="([^"]+)"', client.get(path).get_data(as_text=True))
        assert view is not None
        return path.split("?")[0], view.group(1)

    def auto(score: int, path: str, view: str) -> Any:
        body = {"score": str(score), "view": view, "mode": "auto"}
        return client.post(path, data=body, headers={"Accept": "application/json"}).get_json()

    assert auto(0, *opened(0))["counted"] is True  # a mail scanner, not yet recognised as one
    assert row(rem_app, first_id).next_reminder_at is None
    for score in range(1, 10):
        opened(score)
    assert auto(10, *opened(10))["reason"] == "burst"  # recognised: its count withdrawn
    assert row(rem_app, first_id).next_reminder_at == T0 + timedelta(days=1)
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    assert schedule(rem_app) == 1


def test_answer_to_the_first_ask_before_any_reminder_counts_as_step_zero(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"count": 1})
    first_id = ask(rem_app, project)
    run_worker_burst(rem_app)
    answer_by_link(client, score_links(sink.messages[0])[3], 3)
    with rem_app.app_context():
        assert db.session.scalars(select(Response.answered_after_step)).one() == 0
    assert row(rem_app, first_id).next_reminder_at is None
    at(rem_app, T0 + timedelta(days=5))
    assert schedule(rem_app) == 0


@pytest.mark.parametrize("when", ["before_the_step", "step_waiting"])
def test_answer_through_the_api_stops_the_reminder(
    rem_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    sink: SmtpSink,
    when: str,
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"count": 2, "delays_seconds": [DAY]})
    first_id = ask(rem_app, project)
    run_worker_burst(rem_app)
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    if when == "step_waiting":
        assert schedule(rem_app) == 1
    body = {"person": {"email": "ann@example.com"}, "score": 8}
    assert client.post("/api/v1/responses", json=body, headers=auth).status_code == 201
    assert row(rem_app, first_id).next_reminder_at is None
    if when == "step_waiting":
        (step,) = steps_of(rem_app, first_id)
        assert (step.status, step.status_reason) == ("cancelled", "answered")
    assert schedule(rem_app) == 0
    run_worker_burst(rem_app)
    assert len(sink.messages) == 1
    with rem_app.app_context():
        assert db.session.scalars(select(Response.answered_after_step)).one() is None


def test_answer_landing_after_the_reminder_was_claimed_is_not_sent(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"delays_seconds": [DAY]})
    first_id = ask(rem_app, project)
    run_worker_burst(rem_app)
    now = T0 + timedelta(days=1, seconds=1)
    at(rem_app, now)
    assert schedule(rem_app) == 1
    (step,) = steps_of(rem_app, first_id)
    with rem_app.app_context():
        assert claim_batch(now, 10) == [step.id]  # the send job holds it
    answer_by_link(client, score_links(sink.messages[0])[10], 10)  # the person answers meanwhile
    assert steps_of(rem_app, first_id)[0].status == "sending"  # a claim is the send job's to finish
    with rem_app.app_context():
        result = send_batch([step.id])
    assert result.outcomes == {step.id: "cancelled_answered"}
    assert len(sink.messages) == 1
    (step,) = steps_of(rem_app, first_id)
    assert (step.status, step.status_reason, step.sent_at) == ("cancelled", "answered", None)
    with rem_app.app_context():
        assert db.session.scalars(select(Response.answered_after_step)).one() == 0


def test_answer_in_the_widget_stops_the_email_reminders(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"count": 2, "delays_seconds": [DAY]})
    first_id = ask(rem_app, project, external_id="u-widget")
    run_worker_burst(rem_app)
    at(rem_app, T0 + timedelta(hours=3))
    identify = {
        "key": project["public_key"],
        "force": True,
        "user": {"id": "u-widget", "user_hash": keys.user_hash(project["identity_secret"], "u-widget")},
    }
    shown = client.post("/api/widget/identify", data=json.dumps(identify), content_type="text/plain")
    token = shown.get_json().get("token")
    assert token, shown.get_json()
    body = {"key": project["public_key"], "token": token, "score": 6}
    res = client.post("/api/widget/answer", data=json.dumps(body), content_type="text/plain")
    assert res.status_code in (200, 201), res.get_json()
    assert row(rem_app, first_id).next_reminder_at is None
    at(rem_app, T0 + timedelta(days=4))
    assert schedule(rem_app) == 0
    run_worker_burst(rem_app)
    assert len(sink.messages) == 1


def test_in_app_first_reminds_a_recently_seen_person_in_the_product_and_sends_no_email(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"delays_seconds": [DAY], "mode": "in_app_first"})
    seen_id = ask(rem_app, project, "seen@example.com")
    away_id = ask(rem_app, project, "away@example.com")
    run_worker_burst(rem_app)
    with rem_app.app_context():
        person = db.session.scalars(select(Person).where(Person.email == "seen@example.com")).one()
        person.widget_seen_at = T0 + timedelta(hours=5)
        db.session.commit()
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    assert schedule(rem_app) == 2
    run_worker_burst(rem_app)
    assert [(s.channel, s.status) for s in steps_of(rem_app, seen_id)] == [("in_app", "pending")]
    assert [(s.channel, s.status) for s in steps_of(rem_app, away_id)] == [("email", "sent")]
    assert len(sent_to(sink, "seen@example.com")) == 1 and len(sent_to(sink, "away@example.com")) == 2


def test_both_mode_asks_a_seen_person_by_email_and_in_app_and_an_in_app_answer_closes_the_first_ask(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    plan = {"count": 2, "delays_seconds": [DAY], "mode": "both", "in_app_window_days": 2}
    set_survey_plan(client, auth, rem_app, project, plan)
    first_id = ask(rem_app, project)
    run_worker_burst(rem_app)
    with rem_app.app_context():
        person = db.session.scalars(select(Person)).one()
        person.widget_seen_at = T0 - timedelta(hours=12)
        db.session.commit()
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    assert schedule(rem_app) == 2
    run_worker_burst(rem_app)
    email_step, in_app_step = steps_of(rem_app, first_id)
    assert (email_step.channel, email_step.status) == ("email", "sent")
    assert (in_app_step.channel, in_app_step.status, in_app_step.step) == ("in_app", "pending", 1)
    assert in_app_step.scheduled_at == T0 + timedelta(days=1)
    with rem_app.app_context():  # the widget shows the in-app step (the widget's side), then it is answered
        shown = db.session.get(SurveyRequest, in_app_step.id)
        assert shown is not None
        shown.status, shown.sent_at = "sent", T0 + timedelta(days=1, hours=1)
        db.session.commit()
        person = db.session.scalars(select(Person)).one()
        record_response(project["id"], {}, 9, channel="in_app", request=shown, person=person)
        response = db.session.scalars(select(Response)).one()
        assert (response.request_id, response.answered_after_step) == (in_app_step.id, 1)
    first = row(rem_app, first_id)
    assert first.responded_at is not None and first.next_reminder_at is None
    at(rem_app, T0 + timedelta(days=5))
    assert schedule(rem_app) == 0
    run_worker_burst(rem_app)
    assert len(sink.messages) == 2


def test_the_widget_unseen_for_longer_than_the_window_means_email(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    plan = {"delays_seconds": [DAY], "mode": "in_app_first", "in_app_window_days": 2}
    set_survey_plan(client, auth, rem_app, project, plan)
    first_id = ask(rem_app, project)
    run_worker_burst(rem_app)
    with rem_app.app_context():
        person = db.session.scalars(select(Person)).one()
        person.widget_seen_at = T0 - timedelta(days=1, hours=1)  # 2 days 1 hour before the reminder
        db.session.commit()
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    assert schedule(rem_app) == 1
    run_worker_burst(rem_app)
    assert [(s.channel, s.status) for s in steps_of(rem_app, first_id)] == [("email", "sent")]


# --- unsubscribe, bounce, erasure, rules switched off ----------------------------------------------


@pytest.mark.parametrize("reason", ["unsubscribed", "bounced"])
def test_unsubscribe_or_bounce_cancels_waiting_reminders(
    rem_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    sink: SmtpSink,
    reason: str,
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"count": 2, "delays_seconds": [DAY]})
    first_id = ask(rem_app, project)
    other_id = ask(rem_app, project, "bob@example.com")
    run_worker_burst(rem_app)
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    assert schedule(rem_app) == 2
    with rem_app.app_context():
        assert add_suppression(project["id"], "ANN@example.com", reason)
    (step,) = steps_of(rem_app, first_id)
    assert (step.status, step.status_reason) == ("cancelled", reason)
    assert row(rem_app, first_id).next_reminder_at is None
    assert row(rem_app, other_id).next_reminder_at is not None  # Bob's chain goes on
    run_worker_burst(rem_app)
    assert len(sent_to(sink, "ann@example.com")) == 1 and len(sent_to(sink, "bob@example.com")) == 2


def test_suppressed_address_is_never_reminded_even_when_claimed_before(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"delays_seconds": [DAY]})
    first_id = ask(rem_app, project)
    run_worker_burst(rem_app)
    now = T0 + timedelta(days=1, seconds=1)
    at(rem_app, now)
    assert schedule(rem_app) == 1
    (step,) = steps_of(rem_app, first_id)
    with rem_app.app_context():
        assert claim_batch(now, 10) == [step.id]
        add_suppression(project["id"], "ann@example.com", "unsubscribed")
        assert send_batch([step.id]).outcomes == {step.id: "suppressed"}
    assert len(sink.messages) == 1


def test_erasure_removes_the_first_ask_and_its_reminders(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"count": 2, "delays_seconds": [DAY]})
    first_id = ask(rem_app, project)
    run_worker_burst(rem_app)
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    assert schedule(rem_app) == 1
    person_id = row(rem_app, first_id).person_id
    assert client.delete(f"/api/v1/people/{person_id}", headers=auth).status_code in (200, 204)
    with rem_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SurveyRequest)) == 0
    at(rem_app, T0 + timedelta(days=9))
    assert schedule(rem_app) == 0
    run_worker_burst(rem_app)
    assert len(sink.messages) == 1


@pytest.mark.parametrize("change", ["delete", "count_zero", "new_delays"])
def test_changing_or_deleting_a_rule_cancels_or_keeps_its_pending_reminders(
    rem_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    sink: SmtpSink,
    change: str,
) -> None:
    rule = {"event_type": "x_done", "channel": "email", "reminders": {"count": 2, "delays_seconds": [DAY]}}
    rule_id = client.post("/api/v1/triggers", json=rule, headers=auth).get_json()["id"]
    event = {"id": "e1", "type": "x_done", "person": {"email": "ann@example.com"}}
    first_id = client.post("/api/v1/events", json=event, headers=auth).get_json()["scheduled"][0]["id"]
    run_worker_burst(rem_app)
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    assert schedule(rem_app) == 1
    if change == "delete":
        assert client.delete(f"/api/v1/triggers/{rule_id}", headers=auth).status_code == 204
    else:
        plan = {"count": 0} if change == "count_zero" else {"count": 3, "delays_seconds": [3600]}
        assert (
            client.patch(f"/api/v1/triggers/{rule_id}", json={"reminders": plan}, headers=auth).status_code
            == 200
        )
    run_worker_burst(rem_app)
    at(rem_app, T0 + timedelta(days=5))
    schedule(rem_app)
    run_worker_burst(rem_app)
    steps = steps_of(rem_app, first_id)
    if change == "new_delays":  # the ask keeps the plan it was made with: two reminders, a day apart
        assert [(s.step, s.status) for s in steps] == [(1, "sent"), (2, "sent")]
        assert len(sink.messages) == 3
    else:
        assert [(s.step, s.status, s.status_reason) for s in steps] == [(1, "cancelled", "reminders_off")]
        assert row(rem_app, first_id).next_reminder_at is None
        assert len(sink.messages) == 1


@pytest.mark.parametrize("door", ["cancelled_event", "cancel_pending_api"])
def test_churn_or_cancelling_a_persons_pending_asks_cancels_their_reminders(
    rem_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    sink: SmtpSink,
    door: str,
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"count": 2, "delays_seconds": [DAY]})
    first_id = ask(rem_app, project)
    run_worker_burst(rem_app)
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    assert schedule(rem_app) == 1
    if door == "cancelled_event":
        event = {"id": "churn-1", "type": "cancelled", "person": {"email": "ann@example.com"}}
        assert client.post("/api/v1/events", json=event, headers=auth).status_code == 202
        reason = "churned"
    else:
        person_id = row(rem_app, first_id).person_id
        path = f"/api/v1/people/{person_id}/survey_requests/pending"
        assert client.delete(path, headers=auth).status_code == 200
        reason = "api"
    assert [(s.status, s.status_reason) for s in steps_of(rem_app, first_id)] == [("cancelled", reason)]
    assert row(rem_app, first_id).next_reminder_at is None
    run_worker_burst(rem_app)
    assert len(sink.messages) == 1


# --- fatigue rules ---------------------------------------------------------------------------------


def test_reminder_is_not_blocked_by_its_own_first_ask_but_by_an_unrelated_newer_ask(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], sink: SmtpSink
) -> None:
    rule = {"event_type": "x_done", "channel": "email", "reminders": {"delays_seconds": [DAY]}}
    assert client.post("/api/v1/triggers", json=rule, headers=auth).status_code == 201
    ids = {}
    for email in ("ann@example.com", "bob@example.com"):
        event = {"id": f"e-{email}", "type": "x_done", "person": {"email": email}}
        ids[email] = client.post("/api/v1/events", json=event, headers=auth).get_json()["scheduled"][0]["id"]
    run_worker_burst(rem_app)
    at(rem_app, T0 + timedelta(hours=12))
    # Bob is asked again meanwhile, by a link the product sends itself: a new ask in his quiet period.
    with rem_app.app_context():
        email_requests.create_link_request(project["id"], {"email": "bob@example.com"})
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    assert schedule(rem_app) == 2
    run_worker_burst(rem_app)
    assert len(sent_to(sink, "ann@example.com")) == 2
    assert len(sent_to(sink, "bob@example.com")) == 1
    (bobs,) = steps_of(rem_app, ids["bob@example.com"])
    assert (bobs.status, bobs.status_reason) == ("skipped", "quiet_period")


# --- concurrency -----------------------------------------------------------------------------------


def test_two_concurrent_schedulers_never_create_a_step_twice(
    rem_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any]
) -> None:
    set_survey_plan(client, auth, rem_app, project, {"delays_seconds": [DAY]})
    firsts = [ask(rem_app, project, f"p{n}@example.com") for n in range(40)]
    with rem_app.app_context():  # recorded as sent (the send path itself is tested above)
        for first_id in firsts:
            found = db.session.get(SurveyRequest, first_id)
            assert found is not None
            found.status, found.sent_at, found.next_reminder_at = "sent", T0, T0 + timedelta(days=1)
        db.session.commit()
    at(rem_app, T0 + timedelta(days=1, seconds=1))
    made = at_once(lambda _: reminders.schedule_due(), 2, rem_app)
    made.append(schedule(rem_app))  # whatever a rolled-back pass left
    with rem_app.app_context():
        per_first = Counter(
            db.session.scalars(select(SurveyRequest.reminder_of_id).where(SurveyRequest.step == 1))
        )
    assert sum(made) == 40
    assert set(per_first) == set(firsts) and set(per_first.values()) == {1}
