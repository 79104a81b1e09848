"""The in-app fallback of reminders through the widget API, on SQLite and PostgreSQL: the widget's sight of a
person, a due in-app reminder step shown despite its own ask's quiet period, answered and dismissed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from survey_service.core import clock, keys
from survey_service.extensions import db
from survey_service.jobs import send_survey_email
from survey_service.models import Person, Project, Response, Survey, SurveyRequest, WidgetDismissal
from survey_service.services import email_requests
from survey_service.services.people import upsert_person
from survey_service.services.relay import relay_once
from survey_service.widget.answers import _serializer
from tests.support.db import add_response
from tests.support.mail import flush_redis, run_worker_burst, smtp_server
from tests.support.sql import sql_log

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
PLAN = {"count": 2, "delays_seconds": [3 * 86400], "mode": "in_app_first", "in_app_window_days": 7}


def identify(client: FlaskClient, project: dict[str, Any], user_id: str = "u1", **traits: Any) -> Any:
    user = {"id": user_id, "user_hash": keys.user_hash(project["identity_secret"], user_id), **traits}
    body = {"key": project["public_key"], "user": user}
    res = client.post("/api/widget/identify", data=json.dumps(body), content_type="text/plain")
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def post(client: FlaskClient, path: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/widget/{path}", data=json.dumps(body), content_type="text/plain")


def add_person(app: Flask, project: dict[str, Any], external_id: str = "u1", **fields: Any) -> int:
    """A person known to the product's server (email and external id), first seen a year ago."""
    with app.app_context():
        person = Person(
            project_id=project["id"],
            external_id=external_id,
            email=f"{external_id}@example.com",
            properties={},
            created_at=clock.now() - timedelta(days=365),
            **fields,
        )
        db.session.add(person)
        db.session.commit()
        return person.id


def add_request(app: Flask, project: dict[str, Any], person_id: int, **fields: Any) -> int:
    with app.app_context():
        survey_id = db.session.scalar(select(Survey.id).where(Survey.project_id == project["id"]))
        row = SurveyRequest(project_id=project["id"], survey_id=survey_id, person_id=person_id, **fields)
        db.session.add(row)
        db.session.commit()
        return row.id


def emailed_ask(
    app: Flask, project: dict[str, Any], person_id: int, days_ago: float = 3, **fields: Any
) -> int:
    """A first ask emailed days_ago days ago, with a reminder plan, as the email channel leaves it."""
    now = clock.now()
    values: dict[str, Any] = {
        "channel": "email",
        "status": "sent",
        "sent_at": now - timedelta(days=days_ago),
        "scheduled_at": now - timedelta(days=days_ago),
        "expires_at": now + timedelta(days=30 - days_ago),
        "reminder_plan": PLAN,
        "next_reminder_at": now + timedelta(days=3),
        **fields,
    }
    return add_request(app, project, person_id, **values)


def in_app_step(
    app: Flask, project: dict[str, Any], ask_id: int, step: int = 1, channel: str = "in_app", **fields: Any
) -> int:
    """A reminder step of the ask, as the reminder scheduler makes it when it falls due (one minute ago)."""
    with app.app_context():
        ask = db.session.get(SurveyRequest, ask_id)
        assert ask is not None
        person_id, expires_at = ask.person_id, ask.expires_at
    values: dict[str, Any] = {
        "channel": channel,
        "status": "pending",
        "reminder_of_id": ask_id,
        "step": step,
        "scheduled_at": clock.now() - timedelta(minutes=1),
        "expires_at": expires_at,
        **fields,
    }
    return add_request(app, project, person_id, **values)


def token_request_id(app: Flask, token: str) -> int:
    with app.app_context():
        request_id: int = _serializer().loads(token)[2]
        return request_id


def fresh(app: Flask, request_id: int) -> SurveyRequest:
    with app.app_context():
        row = db.session.get(SurveyRequest, request_id)
        assert row is not None
        db.session.expunge(row)
        return row


def seen_at(app: Flask, external_id: str = "u1") -> datetime | None:
    with app.app_context():
        return db.session.scalar(select(Person.widget_seen_at).where(Person.external_id == external_id))


# --- the widget's sight of a person -----------------------------------------------------------------


def test_identify_notes_the_person_seen_at_most_once_an_hour(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["FROZEN_NOW"] = T0
    identify(client, project)  # a new person: created and seen in one transaction
    assert seen_at(app) == T0
    app.config["FROZEN_NOW"] = T0 + timedelta(minutes=59)
    with sql_log(app) as statements:
        identify(client, project)
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT")
    assert seen_at(app) == T0
    later = T0 + timedelta(minutes=61)
    app.config["FROZEN_NOW"] = later
    with sql_log(app) as statements:
        identify(client, project)
    assert [s.split()[0].upper() for s in statements] == ["SELECT", "UPDATE"]
    assert seen_at(app) == later
    with app.app_context():  # a sight is not a change of the person's data
        assert db.session.scalar(select(Person.updated_at).where(Person.external_id == "u1")) == T0
    with sql_log(app) as statements:
        identify(client, project)
    assert len(statements) == 1 and seen_at(app) == later


def test_identify_write_path_notes_a_known_person_seen_with_its_other_changes(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["FROZEN_NOW"] = T0
    add_person(app, project)
    assert seen_at(app) is None
    identify(client, project, locale="de")  # a change: the write path
    assert seen_at(app) == T0


def test_identify_without_a_user_hash_is_not_a_sight(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    with app.app_context():
        db.session.execute(
            update(Project).where(Project.id == project["id"]).values(require_identity_verification=False)
        )
        db.session.commit()
    body = {"key": project["public_key"], "user": {"id": "u1"}}
    for _ in range(2):  # created by the first (write path), known by the second (read-only path)
        res = client.post("/api/widget/identify", data=json.dumps(body), content_type="text/plain")
        assert res.status_code == 200
    # Anyone may claim an unverified id: it must not move that person's reminders into a browser.
    assert seen_at(app) is None


# --- a due in-app reminder step ---------------------------------------------------------------------


def test_identify_shows_due_in_app_reminder_despite_its_emailed_ask_quiet_period(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person_id = add_person(app, project)
    ask_id = emailed_ask(app, project, person_id)
    step_id = in_app_step(app, project, ask_id)
    body = identify(client, project)
    assert body["show"] is True and body["reason"] == "requested"
    assert token_request_id(app, body["token"]) == step_id
    row = fresh(app, step_id)
    assert row.status == "sent" and row.sent_at is not None
    assert row.expires_at == fresh(app, ask_id).expires_at
    again = identify(client, project)  # the next page: the same ask, read-only
    assert again["show"] is True and token_request_id(app, again["token"]) == step_id


@pytest.mark.parametrize("unrelated", ["in_app_request", "other_email_ask"])
def test_identify_quiet_period_of_an_unrelated_ask_still_blocks(
    app: Flask, client: FlaskClient, project: dict[str, Any], unrelated: str
) -> None:
    person_id = add_person(app, project)
    ask_id = emailed_ask(app, project, person_id)
    if unrelated == "in_app_request":
        # An ordinary in-app request: the ask emailed three days ago is another ask, and blocks it.
        add_request(app, project, person_id, channel="in_app", status="pending")
    else:
        # The reminder of one ask, while another ask went out by email yesterday.
        in_app_step(app, project, ask_id)
        emailed_ask(app, project, person_id, days_ago=1, reminder_plan=None, next_reminder_at=None)
    body = identify(client, project)
    assert body["show"] is False and body["reason"] == "quiet_period"


def test_identify_quiet_period_of_an_answer_still_blocks_the_reminder(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person_id = add_person(app, project)
    in_app_step(app, project, emailed_ask(app, project, person_id))
    add_response(app, project, person_id, 1, score=7, channel="api")
    assert identify(client, project)["reason"] == "quiet_period"


@pytest.mark.parametrize(
    ("ask_fields", "step_fields"),
    [
        ({}, {"scheduled_at": "later"}),  # not due yet
        ({}, {"expires_at": "past"}),  # the ask expired
        ({}, {"status": "cancelled"}),  # cancelled (an unsubscribe, a rule deleted)
        ({"responded_at": "past"}, {}),  # answered by email while the step waited
        ({"status": "bounced"}, {}),  # the ask bounced
    ],
    ids=["not_due", "expired", "cancelled", "answered_by_email", "bounced"],
)
def test_identify_reminder_not_due_or_closed_is_not_shown(
    app: Flask,
    client: FlaskClient,
    project: dict[str, Any],
    ask_fields: dict[str, str],
    step_fields: dict[str, str],
) -> None:
    now = clock.now()
    instants: dict[str, Any] = {"later": now + timedelta(hours=1), "past": now - timedelta(minutes=5)}

    def values(fields: dict[str, str]) -> dict[str, Any]:
        return {k: instants.get(v, v) for k, v in fields.items()}

    person_id = add_person(app, project)
    ask_id = emailed_ask(app, project, person_id, **values(ask_fields))
    step_id = in_app_step(app, project, ask_id, **values(step_fields))
    body = identify(client, project)
    assert body["show"] is False
    assert fresh(app, step_id).sent_at is None


def test_identify_reminder_is_not_subject_to_the_widget_sample(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    res = client.patch("/api/v1/widget/settings", json={"sample_percent": 0}, headers=auth)
    assert res.status_code == 200
    asked, plain = add_person(app, project, "u1"), add_person(app, project, "u2")
    in_app_step(app, project, emailed_ask(app, project, asked))
    add_request(app, project, plain, channel="in_app", status="pending")
    assert identify(client, project, "u1")["show"] is True
    assert identify(client, project, "u2")["reason"] == "not_sampled"


def test_identify_reminder_waits_out_a_dismissal_cool_down(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person_id = add_person(app, project)
    in_app_step(app, project, emailed_ask(app, project, person_id))
    with app.app_context():
        db.session.add(
            WidgetDismissal(
                project_id=project["id"], person_id=person_id, dismissed_at=clock.now() - timedelta(days=5)
            )
        )
        db.session.commit()
    body = identify(client, project)
    assert body["show"] is False and body["reason"] == "dismissed"


# --- answering and dismissing it --------------------------------------------------------------------


@pytest.fixture
def mail_app(app: Flask, redis_url: str) -> Flask:
    """The app on an empty Redis database, with retries that do not wait."""
    app.config["EMAIL_RETRY_INTERVALS"] = [0, 0]
    flush_redis(app)
    return app


def first_ask_by_email(app: Flask, project: dict[str, Any], external_id: str = "u1") -> tuple[int, int]:
    """A person and their first ask, emailed for real (to the test's SMTP server), then dated three days back
    with its next reminder due; returns (person id, ask id)."""
    with app.app_context():
        person, _ = upsert_person(
            project["id"], {"email": f"{external_id}@example.com", "external_id": external_id}
        )
        db.session.commit()
        person_id = person.id
        ask_id = email_requests.create_email_request(project["id"], person_id).id
        assert send_survey_email(ask_id) == "sent"
        back = clock.now() - timedelta(days=3)
        db.session.execute(
            update(SurveyRequest)
            .where(SurveyRequest.id == ask_id)
            .values(
                sent_at=back,
                scheduled_at=back,
                reminder_plan={**PLAN, "mode": "both"},
                next_reminder_at=clock.now() - timedelta(minutes=1),
            )
        )
        db.session.commit()
    return person_id, ask_id


def test_answer_in_app_reminder_records_its_response_and_sends_no_email(
    mail_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        _, ask_id = first_ask_by_email(mail_app, project)
        assert len(sink.messages) == 1  # the first ask
        step_id = in_app_step(mail_app, project, ask_id)
        token = identify(client, project)["token"]
        key = project["public_key"]
        res = post(client, "answer", {"key": key, "token": token, "score": 9})
        assert res.status_code == 200, res.get_json()
        res = post(client, "answer", {"key": key, "token": token, "score": 9, "comment": "Saw it in the app"})
        assert res.status_code == 200, res.get_json()
        # Whatever is due now (the relay's pass, the jobs it hands to the worker) goes out.
        relay_once(mail_app)
        run_worker_burst(mail_app)
        assert sink.messages[1:] == []
    with mail_app.app_context():
        responses = db.session.scalars(select(Response).where(Response.project_id == project["id"])).all()
        assert [(r.request_id, r.channel, r.score, r.comment) for r in responses] == [
            (step_id, "in_app", 9, "Saw it in the app")
        ]
    row = fresh(mail_app, step_id)
    assert row.status == "responded" and row.responded_at is not None
    # One ask, one answer: the emailed first ask is answered too, and nothing more falls due.
    ask = fresh(mail_app, ask_id)
    assert ask.responded_at is not None and ask.next_reminder_at is None
    assert [r.answered_after_step for r in responses] == [1]


def test_in_app_first_end_to_end_scheduler_widget_answer_closes_the_emailed_ask(
    mail_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    """The reminder falls due for a person the widget saw yesterday: the scheduler makes an in-app step,
    the widget's next identify shows it, the answer closes the emailed first ask; no second email."""
    from survey_service.services import reminders

    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        person_id, ask_id = first_ask_by_email(mail_app, project)
        with mail_app.app_context():
            db.session.execute(
                update(SurveyRequest).where(SurveyRequest.id == ask_id).values(reminder_plan=PLAN)
            )
            db.session.execute(
                update(Person)
                .where(Person.id == person_id)
                .values(widget_seen_at=clock.now() - timedelta(days=1))
            )
            db.session.commit()
            assert reminders.schedule_due() == 1
        [step] = [r for r in steps(mail_app, ask_id)]
        assert (step.channel, step.status, step.step) == ("in_app", "pending", 1)
        body = identify(client, project)
        assert body["show"] is True and token_request_id(mail_app, body["token"]) == step.id
        res = post(client, "answer", {"key": project["public_key"], "token": body["token"], "score": 4})
        assert res.status_code == 200, res.get_json()
        relay_once(mail_app)
        run_worker_burst(mail_app)
        assert len(sink.messages) == 1  # the first ask only
    ask = fresh(mail_app, ask_id)
    assert ask.responded_at is not None and ask.next_reminder_at is None
    with mail_app.app_context():
        response = db.session.scalars(select(Response).where(Response.project_id == project["id"])).one()
        assert (response.request_id, response.answered_after_step, response.score) == (step.id, 1, 4)


def steps(app: Flask, ask_id: int) -> list[SurveyRequest]:
    with app.app_context():
        rows = db.session.scalars(
            select(SurveyRequest).where(SurveyRequest.reminder_of_id == ask_id).order_by(SurveyRequest.id)
        ).all()
        db.session.expunge_all()
        return list(rows)


def test_answer_in_app_reminder_after_its_ask_was_answered_by_email_is_refused(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person_id = add_person(app, project)
    ask_id = emailed_ask(app, project, person_id)
    in_app_step(app, project, ask_id)
    token = identify(client, project)["token"]
    with app.app_context():  # the person clicks a score in the email while the widget is on screen
        db.session.execute(
            update(SurveyRequest).where(SurveyRequest.id == ask_id).values(responded_at=clock.now())
        )
        db.session.commit()
    res = post(client, "answer", {"key": project["public_key"], "token": token, "score": 3})
    assert res.status_code == 410 and res.get_json()["code"] == "survey_closed"
    with app.app_context():
        assert db.session.scalars(select(Response)).all() == []


def test_dismiss_in_app_reminder_ends_the_ask_reminders(
    mail_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        _, ask_id = first_ask_by_email(mail_app, project)
        # "both": the step's email, not yet gone out, and its in-app ask.
        email_step = in_app_step(mail_app, project, ask_id, channel="email")
        step_id = in_app_step(mail_app, project, ask_id)
        # Someone else's ask, due as well: the relay and the worker do send what is due.
        other_person = add_person(mail_app, project, "u2")
        with mail_app.app_context():
            other = email_requests.create_email_request(project["id"], other_person).id
        token = identify(client, project)["token"]
        res = post(client, "dismiss", {"key": project["public_key"], "token": token})
        assert res.status_code == 200 and res.get_json()["dismissed"] is True
        relay_once(mail_app)
        run_worker_burst(mail_app)
        assert [m["To"] for m in sink.messages[1:]] == ["u2@example.com"]
    assert fresh(mail_app, other).status == "sent"
    assert fresh(mail_app, step_id).status == "dismissed"
    cancelled = fresh(mail_app, email_step)
    assert (cancelled.status, cancelled.status_reason, cancelled.sent_at) == (
        "cancelled",
        "dismissed_in_app",
        None,
    )
    ask = fresh(mail_app, ask_id)
    # No more reminders; the ask itself stays answerable through its email's links until it expires.
    assert ask.next_reminder_at is None and ask.status == "sent" and ask.responded_at is None


def test_dismiss_in_app_reminder_leaves_other_asks_reminders_alone(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    person_id = add_person(app, project)
    other_person = add_person(app, project, "u2")
    ask_id = emailed_ask(app, project, person_id)
    step_id = in_app_step(app, project, ask_id)
    other_ask = emailed_ask(app, project, other_person)
    other_step = in_app_step(app, project, other_ask, channel="email")
    token = identify(client, project)["token"]
    assert token_request_id(app, token) == step_id
    assert post(client, "dismiss", {"key": project["public_key"], "token": token}).status_code == 200
    assert fresh(app, other_ask).next_reminder_at is not None
    assert fresh(app, other_step).status == "pending"
