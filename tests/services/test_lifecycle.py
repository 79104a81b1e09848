"""Lifecycle triggers: events, rules, fatigue rules and the outbox, on both databases and real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import inspect, select

from survey_service.errors import ApiError
from survey_service.extensions import db, scheduled_jobs
from survey_service.models import Enrollment, Event, Person, Project, SurveyRequest
from survey_service.services import enrollments, outbox, triggers
from survey_service.services.events import EventOutcome, record_event
from tests.support.concurrency import at_once
from tests.support.db import make_project
from tests.support.sql import sql_log

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday afternoon, UTC


@pytest.fixture(autouse=True)
def frozen_clock(app: Flask) -> None:
    app.config["FROZEN_NOW"] = NOW


@pytest.fixture
def queue(app: Flask, redis_url: str) -> Queue:
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    return Queue("default", connection=connection)


def add_rule(client: FlaskClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    res = client.post("/api/v1/triggers", json={"channel": "email", **body}, headers=auth)
    assert res.status_code == 201, res.get_json()
    rule: dict[str, Any] = res.get_json()
    return rule


def send_event(
    client: FlaskClient, auth: dict[str, str], event_id: str, event_type: str, **extra: Any
) -> Any:
    body = {"id": event_id, "type": event_type, "person": {"email": "pat@example.com"}, **extra}
    res = client.post("/api/v1/events", json=body, headers=auth)
    assert outbox.settle_wakes()  # a due email's wake-up is made by a thread of the process
    return res


def requests_of(app: Flask) -> list[SurveyRequest]:
    with app.app_context():
        rows = db.session.scalars(select(SurveyRequest).order_by(SurveyRequest.id)).all()
        db.session.expunge_all()
        return list(rows)


@pytest.mark.parametrize("template", list(triggers.TEMPLATES.values()), ids=lambda t: t.event_type)
def test_builtin_rule_schedules_at_its_default_delay(
    app: Flask, client: FlaskClient, auth: dict[str, str], queue: Queue, template: triggers.Template
) -> None:
    rule = add_rule(client, auth, event_type=template.event_type)
    assert rule["delay_seconds"] == template.delay_seconds
    occurred = NOW - timedelta(minutes=5)
    props: dict[str, Any] = {}
    expected = occurred + timedelta(seconds=template.delay_seconds)
    if template.relative_to:
        props = {template.relative_to: "2026-09-01"}
        expected = datetime(2026, 9, 1, 9, tzinfo=UTC) + timedelta(seconds=template.delay_seconds)
    res = send_event(
        client, auth, "e1", template.event_type, occurred_at=occurred.isoformat(), properties=props
    )
    assert res.status_code == 202, res.get_json()
    [request] = requests_of(app)
    assert request.status == "scheduled" and request.trigger_id == rule["id"]
    # A delay that already passed (delay 0 and the event five minutes old) sends now, not in the past.
    assert request.scheduled_at == max(expected, NOW)


def test_event_same_id_twice_is_duplicate_and_schedules_once(
    app: Flask, client: FlaskClient, auth: dict[str, str], queue: Queue
) -> None:
    add_rule(client, auth, event_type="ticket_closed")
    first = send_event(client, auth, "evt-1", "ticket_closed")
    second = send_event(client, auth, "evt-1", "ticket_closed")
    assert first.status_code == second.status_code == 202
    assert first.get_json()["duplicate"] is False and second.get_json()["duplicate"] is True
    assert len(first.get_json()["scheduled"]) == 1 and second.get_json()["scheduled"] == []
    assert len(requests_of(app)) == 1


def _record(
    project_id: int, event_id: str, person: dict[str, Any], seen: list[EventOutcome], **options: Any
) -> EventOutcome:
    project = db.session.get(Project, project_id)
    assert project is not None
    outcome = record_event(project, event_id, "ticket_closed", person, also=seen.append, **options)
    assert outbox.settle_wakes()
    return outcome


def _columns(row: Event | SurveyRequest) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def test_event_and_its_request_are_held_as_stored_without_a_read_back(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], queue: Queue
) -> None:
    """Both are written by a Core INSERT and made persistent from the values written: a column added to
    the model but not to those values would be missing here (and read back lazily later)."""
    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0)
    with app.app_context():
        outcome = _record(project["id"], "e1", {"email": "pat@example.com", "properties": {"a": 1}}, [])
        [request] = outcome.requests
        assert not inspect(outcome.event).unloaded and not inspect(request).unloaded
        held = [_columns(outcome.event), _columns(request)]
        db.session.expunge_all()
        stored = [db.session.get(Event, outcome.event.id), db.session.get(SurveyRequest, request.id)]
        assert [_columns(row) for row in stored if row is not None] == held
        assert request.enqueued_at == NOW and request.status == "scheduled"


def test_event_of_someone_new_is_written_with_its_person_in_one_statement_on_postgresql(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], queue: Queue
) -> None:
    """The person, the event and the rule's request: one INSERT … SELECT FROM (INSERT …) on PostgreSQL,
    three INSERTs on SQLite; then the one commit. Someone already known goes the long way: their event is
    theirs."""
    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0)
    p0, p1 = {"external_id": "p0"}, {"external_id": "p1", "email": "p1@example.com"}
    # The warm-up fills the caches of the project and its rules.
    assert send_event(client, auth, "warm-up", "ticket_closed", person=p0).status_code == 202
    with sql_log(app) as seen:
        assert send_event(client, auth, "e1", "ticket_closed", person=p1).status_code == 202
    writes = [s.split()[0].upper() for s in seen if not s.lstrip().upper().startswith("SELECT")]
    on_postgresql = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    assert writes == (["WITH", "COMMIT"] if on_postgresql else ["INSERT"] * 3 + ["COMMIT"]), seen
    assert send_event(client, auth, "e2", "ticket_closed", person=p1).status_code == 202
    with app.app_context():
        people = {p.external_id: p.id for p in db.session.scalars(select(Person))}
        events = {e.external_id: e.person_id for e in db.session.scalars(select(Event))}
    assert people.keys() == {"p0", "p1"}
    assert events == {"warm-up": people["p0"], "e1": people["p1"], "e2": people["p1"]}
    assert {r.person_id for r in requests_of(app)} == {people["p1"]}  # p0 has no email to send to


ALONG_CASES = {
    "delay": ({"delay_seconds": 3600}, {}),
    "send window in the person's zone": (
        {"delay_seconds": 0, "send_window": {"start_hour": 9, "end_hour": 10}},
        {"time_zone": "Asia/Tokyo"},
    ),
    "in-app": ({"delay_seconds": 0, "channel": "in_app"}, {}),
    "reminders": ({"delay_seconds": 0, "reminders": {"count": 1, "delays_seconds": [86400]}}, {}),
    "relative to an event date": ({"delay_seconds": 0, "relative_to": "renews_on"}, {}),
    "conditions": ({"conditions": [{"property": "plan", "op": "eq", "value": "pro"}]}, {}),
}


@pytest.mark.parametrize("rule, person", ALONG_CASES.values(), ids=ALONG_CASES.keys())
def test_event_request_written_along_with_someone_new_is_the_one_the_long_way_makes(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], queue: Queue,
    monkeypatch: pytest.MonkeyPatch, rule: dict[str, Any], person: dict[str, Any],
) -> None:  # fmt: skip
    """_one_ask plans the request before the person exists; _schedule, after. Both must agree."""
    from survey_service.services import events

    add_rule(client, auth, event_type="ticket_closed", **rule)
    asked: list[dict[str, Any]] = []
    for name, along in (("along", True), ("long", False)):
        if not along:
            monkeypatch.setattr(events, "_one_ask", lambda *args: None)
        data = {"email": f"{name}@example.com", "properties": {"plan": "pro"}, **person}
        with app.app_context(), sql_log(app) as seen:
            outcome = _record(project["id"], name, data, [], properties={"renews_on": "2026-07-01"})
            [request] = outcome.requests
            inserts = [s for s in seen if s.lstrip().upper().startswith(("INSERT", "WITH"))]
            on_postgresql = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
            # On PostgreSQL one statement along, the pair's and the request's the long way; three on SQLite.
            assert len(inserts) == ((1 if along else 2) if on_postgresql else 3), seen
            db.session.expunge_all()
            stored = db.session.get(SurveyRequest, request.id)
            assert stored is not None and stored.event_id == outcome.event.id
            assert stored.person_id == outcome.event.person_id
            different = {"id", "person_id", "event_id", "created_at"}
            asked.append({k: v for k, v in _columns(stored).items() if k not in different})
    assert asked[0] == asked[1]


def test_event_of_someone_new_takes_the_long_way_when_the_ask_needs_their_id_or_has_several_rules(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], queue: Queue
) -> None:
    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0, sample_percent=50)
    add_rule(client, auth, event_type="renewed", delay_seconds=0)
    add_rule(client, auth, event_type="renewed", delay_seconds=60)
    on_postgresql = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    for event_type in ("ticket_closed", "renewed"):
        with sql_log(app) as seen:
            person = {"email": f"{event_type}@example.com"}
            assert send_event(client, auth, event_type, event_type, person=person).status_code == 202
        writes = [s.split()[0].upper() for s in seen if not s.lstrip().upper().startswith("SELECT")]
        assert writes[0] == ("WITH" if on_postgresql else "INSERT") and writes.count("INSERT") >= 1, seen
    with app.app_context():
        renewed = db.session.scalars(
            select(SurveyRequest)
            .join(Event, Event.id == SurveyRequest.event_id)
            .where(Event.type == "renewed")
        ).all()
    # Two rules: the newer superseded the first, as ever.
    assert sorted(r.status for r in renewed) == ["scheduled", "superseded"]


def test_event_repeat_writes_nothing_of_its_person_and_tells_also_it_is_a_duplicate(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], queue: Queue
) -> None:
    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0)
    seen: list[EventOutcome] = []
    with app.app_context():
        first = _record(project["id"], "e1", {"external_id": "p1", "properties": {"plan": "free"}}, seen)
        changed = _record(project["id"], "e1", {"external_id": "p1", "properties": {"plan": "pro"}}, seen)
        someone_new = _record(project["id"], "e1", {"external_id": "p2", "email": "new@example.com"}, seen)
        # The same session goes on: a new person's id, taken back with the repeat, serves again on SQLite.
        after = _record(project["id"], "e2", {"external_id": "p3", "email": "p3@example.com"}, seen)
        assert [o.duplicate for o in seen] == [False, True, True, False]
        assert changed.event.id == someone_new.event.id == first.event.id and not changed.requests
        assert not inspect(first.event).unloaded  # written by a Core INSERT: every column held, none read
        db.session.expunge_all()
        people = {p.external_id: p.properties for p in db.session.scalars(select(Person))}
    assert people == {"p1": {"plan": "free"}, "p3": {}} and after.event.person_id != first.event.person_id
    assert len(requests_of(app)) == 1 and len(queue.job_ids) == 1


def test_event_repeat_whose_person_can_no_longer_be_written_is_still_a_duplicate(
    app: Flask, project: dict[str, Any]
) -> None:
    seen: list[EventOutcome] = []
    with app.app_context():
        _record(project["id"], "e1", {"external_id": "a", "email": "a@example.com"}, seen)
        # The repeat names an email another person holds: a new event would be a 409.
        repeat = _record(project["id"], "e1", {"external_id": "b", "email": "a@example.com"}, seen)
        with pytest.raises(ApiError) as refused:
            _record(project["id"], "e2", {"external_id": "b", "email": "a@example.com"}, seen)
    assert repeat.duplicate and [o.duplicate for o in seen] == [False, True]
    assert refused.value.code == "email_taken"


def test_event_same_id_at_once_from_two_workers_is_recorded_and_sent_once(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], queue: Queue
) -> None:
    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0)
    outcomes = at_once(
        lambda _: _record(project["id"], "e1", {"email": "pat@example.com"}, []).duplicate, 2, app
    )
    assert sorted(outcomes) == [False, True]
    [request] = requests_of(app)
    [job] = queue.jobs  # one wake-up for the one request
    assert job.func_name == "survey_service.jobs.send_due_emails" and request.enqueued_at is not None


def test_event_email_rule_due_now_wakes_a_sender_after_commit_and_a_later_one_gets_its_own_job(
    app: Flask, client: FlaskClient, auth: dict[str, str], queue: Queue
) -> None:
    from survey_service.services import outbox

    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0)
    add_rule(client, auth, event_type="renewed", delay_seconds=3600)
    send_event(client, auth, "now", "ticket_closed")
    [now_request] = requests_of(app)
    # Due now: no job of its own, one wake-up job that claims whatever is due, and the key that says so.
    [job] = queue.jobs
    assert job.func_name == "survey_service.jobs.send_due_emails" and job.args == ()
    token: Any = queue.connection.get(outbox.WAKE_KEY)
    assert job.id == f"send-due-{token.decode()}"
    assert now_request.enqueued_at is not None
    # A person with a queued request: the newer trigger supersedes it and is scheduled for later.
    send_event(client, auth, "later", "renewed")
    old, new = requests_of(app)
    assert (old.status, old.status_reason, new.status) == ("superseded", "newer_request", "scheduled")
    assert scheduled_jobs(queue).get_job_ids() == [f"send-email-{new.id}"]


def test_event_in_app_rule_makes_person_eligible_without_a_job(
    app: Flask, client: FlaskClient, auth: dict[str, str], queue: Queue
) -> None:
    add_rule(client, auth, event_type="upgraded", channel="in_app", delay_seconds=0)
    send_event(client, auth, "u1", "upgraded")
    [request] = requests_of(app)
    assert (request.channel, request.status, request.scheduled_at) == ("in_app", "scheduled", NOW)
    assert queue.job_ids == []


def test_quiet_period_blocks_across_channels(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0)
    body = {
        "person": {"email": "pat@example.com"},
        "score": 8,
        "created_at": (NOW - timedelta(days=30)).isoformat(),
    }
    client.post("/api/v1/responses", json=body, headers=auth)
    res = send_event(client, auth, "t1", "ticket_closed")
    assert res.get_json()["scheduled"] == [] and res.get_json()["skipped"][0]["reason"] == "quiet_period"
    # With a 20-day quiet period the 30-day-old answer no longer blocks...
    client.patch("/api/v1/project", json={"quiet_period_days": 20}, headers=auth)
    res = send_event(client, auth, "t2", "ticket_closed")
    [request] = requests_of(app)
    assert res.get_json()["scheduled"][0]["id"] == request.id
    # ...but an in-app ask shown two days ago blocks an email.
    with app.app_context():
        row = db.session.get(SurveyRequest, request.id)
        assert row is not None
        row.channel, row.status, row.sent_at = "in_app", "sent", NOW - timedelta(days=2)
        db.session.commit()
    res = send_event(client, auth, "t3", "ticket_closed")
    assert res.get_json()["skipped"][0]["reason"] == "quiet_period"


def test_manual_survey_request_respects_the_quiet_period_unless_forced(
    app: Flask, client: FlaskClient, auth: dict[str, str], queue: Queue
) -> None:
    person = {"email": "pat@example.com"}
    answered = {"person": person, "score": 8, "created_at": (NOW - timedelta(days=30)).isoformat()}
    assert client.post("/api/v1/responses", json=answered, headers=auth).status_code == 201
    refused = client.post("/api/v1/survey_requests", json={"person": person}, headers=auth)
    assert refused.status_code == 409, refused.get_json()
    error = refused.get_json()
    assert error["code"] == "quiet_period" and error["details"]["reason"] == "quiet_period"
    assert error["details"]["quiet_period_days"] == 90 and '"force": true' in error["message"]
    assert requests_of(app) == []  # nothing written, nothing queued
    # A delay that ends past the quiet period is no way around it either (the answer is 30 days old).
    later = client.post(
        "/api/v1/survey_requests", json={"person": person, "delay_seconds": 86400}, headers=auth
    )
    assert later.status_code == 409
    # "force": true asks anyway.
    forced = client.post("/api/v1/survey_requests", json={"person": person, "force": True}, headers=auth)
    assert forced.status_code == 201, forced.get_json()
    assert forced.get_json()["status"] == "pending"
    # Past the quiet period the same ask goes through unforced...
    client.patch("/api/v1/project", json={"quiet_period_days": 20}, headers=auth)
    other = {"email": "sam@example.com"}
    ok = client.post("/api/v1/survey_requests", json={"person": other}, headers=auth)
    assert ok.status_code == 201
    # ...but an ask that is out and still open blocks the next one.
    with app.app_context():
        row = db.session.get(SurveyRequest, ok.get_json()["id"])
        assert row is not None
        row.status, row.sent_at = "sent", NOW - timedelta(days=25)
        db.session.commit()
    again = client.post("/api/v1/survey_requests", json={"person": other}, headers=auth)
    assert again.status_code == 409 and again.get_json()["code"] == "open_request"


def test_manual_survey_request_force_must_be_a_boolean(client: FlaskClient, auth: dict[str, str]) -> None:
    body = {"person": {"email": "pat@example.com"}, "force": "yes please"}
    res = client.post("/api/v1/survey_requests", json=body, headers=auth)
    assert res.status_code == 422 and "force" in res.get_json()["details"]


def test_cancelled_event_cancels_pending_and_api_delete_cancels_too(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rule(client, auth, event_type="renewed", delay_seconds=86400)
    send_event(client, auth, "r1", "renewed")
    send_event(client, auth, "c1", "cancelled")
    [request] = requests_of(app)
    assert (request.status, request.status_reason) == ("cancelled", "churned")
    send_event(client, auth, "r2", "renewed")
    person_id = requests_of(app)[-1].person_id
    res = client.delete(f"/api/v1/people/{person_id}/survey_requests/pending", headers=auth)
    assert res.status_code == 200 and res.get_json() == {"cancelled": 1}
    assert [r.status for r in requests_of(app)] == ["cancelled", "cancelled"]


def test_conditions_on_person_and_event_properties(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    conditions = [
        {"property": "plan", "op": "in", "value": ["pro", "enterprise"]},
        {"property": "event.priority", "op": "gte", "value": 2},
    ]
    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0, conditions=conditions)

    def send(event_id: str, plan: str, priority: int) -> list[dict[str, Any]]:
        body = {
            "id": event_id,
            "type": "ticket_closed",
            "person": {"external_id": event_id, "email": f"{event_id}@x.co", "properties": {"plan": plan}},
            "properties": {"priority": priority},
        }
        scheduled: list[dict[str, Any]] = client.post("/api/v1/events", json=body, headers=auth).get_json()[
            "scheduled"
        ]
        return scheduled

    assert len(send("a", "pro", 3)) == 1
    assert send("b", "basic", 3) == []
    assert send("c", "enterprise", 1) == []


def test_sampling_is_stable_per_person_and_near_the_percentage() -> None:
    decisions = [triggers.in_sample(7, person_id, 30) for person_id in range(2000)]
    assert decisions == [triggers.in_sample(7, person_id, 30) for person_id in range(2000)]
    assert 0.25 < sum(decisions) / len(decisions) < 0.35
    assert all(triggers.in_sample(7, p, 100) for p in range(50))
    assert not any(triggers.in_sample(7, p, 0) for p in range(50))


def test_send_window_moves_night_sends_to_the_persons_morning(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rule(
        client,
        auth,
        event_type="ticket_closed",
        delay_seconds=0,
        send_window={"start_hour": 9, "end_hour": 17},
    )
    # 15:00 UTC is 00:00 in Tokyo: the send waits for 09:00 Tokyo = 00:00 UTC next day.
    body = {"id": "w1", "type": "ticket_closed", "person": {"email": "t@x.co", "time_zone": "Asia/Tokyo"}}
    client.post("/api/v1/events", json=body, headers=auth)
    # In Berlin (16:00) it goes now.
    body = {"id": "w2", "type": "ticket_closed", "person": {"email": "b@x.co", "time_zone": "Europe/Berlin"}}
    client.post("/api/v1/events", json=body, headers=auth)
    tokyo, berlin = requests_of(app)
    assert tokyo.scheduled_at == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    assert berlin.scheduled_at == NOW


def test_redis_down_still_accepts_events_and_relay_sends_later(
    app: Flask, client: FlaskClient, auth: dict[str, str], queue: Queue, redis_url: str
) -> None:
    from survey_service.extensions import queues
    from survey_service.services import outbox

    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0)
    with app.app_context():
        handle = queues()
        handle.app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
        handle._redis = None
    for i in range(5):
        body = {"id": f"d{i}", "type": "ticket_closed", "person": {"email": f"p{i}@x.co"}}
        assert client.post("/api/v1/events", json=body, headers=auth).status_code == 202
    assert outbox.settle_wakes()  # the wake-up thread found Redis away: stamps taken back
    assert all(r.enqueued_at is None for r in requests_of(app)) and queue.job_ids == []
    with app.app_context():
        handle.app.config["REDIS_URL"] = redis_url
        handle._redis = None
        outbox._breaker_open_until = 0.0
        assert outbox.relay() == 5
    assert sorted(queue.job_ids) == sorted(f"send-email-{r.id}" for r in requests_of(app))


def test_relay_reenqueues_overdue_request_whose_job_vanished(
    app: Flask, client: FlaskClient, auth: dict[str, str], queue: Queue
) -> None:
    from survey_service.services import outbox

    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0)
    send_event(client, auth, "v1", "ticket_closed")
    [request] = requests_of(app)
    queue.connection.flushdb()  # Redis restarted empty: the job is gone
    with app.app_context():
        assert outbox.relay(now=NOW + timedelta(seconds=5)) == 0  # not overdue yet
        assert outbox.relay(now=NOW + timedelta(minutes=5)) == 1
        assert outbox.relay(now=NOW + timedelta(minutes=5)) == 0  # its job is alive now
    assert queue.job_ids == [f"send-email-{request.id}"]


def test_relay_reenqueues_job_taken_off_the_queue_by_a_worker_killed_before_starting_it(
    app: Flask, client: FlaskClient, auth: dict[str, str], queue: Queue
) -> None:
    from survey_service.services import outbox

    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0)
    send_event(client, auth, "k1", "ticket_closed")
    [request] = requests_of(app)
    job_id = f"send-email-{request.id}"
    queue.connection.flushdb()  # its wake-up lost: overdue, the relay gives the request its own job
    with app.app_context():
        assert outbox.relay(now=NOW + timedelta(minutes=5)) == 1
    # What a worker's dequeue does (LMOVE into RQ's intermediate list); then it died: the job
    # hash still says "queued", but no queue holds it.
    assert queue.connection.lmove(queue.key, queue.intermediate_queue_key) == job_id.encode()
    assert queue.job_ids == []
    with app.app_context():
        assert outbox.relay(now=NOW + timedelta(minutes=5)) == 1
        assert outbox.relay(now=NOW + timedelta(minutes=5)) == 0  # queued again: alive
    assert queue.job_ids == [job_id]


def test_recurring_enrollment_asks_every_interval_under_quiet_period(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    res = client.post(
        "/api/v1/recurring", json={"person": {"email": "q@x.co"}, "interval_days": 90}, headers=auth
    )
    assert res.status_code == 201
    with app.app_context():
        assert enrollments.run_due(now=NOW) == 1
        enrollment = db.session.scalar(select(Enrollment))
        assert enrollment is not None and enrollment.next_run_at == NOW + timedelta(days=90)
        request = db.session.scalar(select(SurveyRequest))
        assert request is not None
        request.status, request.sent_at = "sent", NOW
        request.expires_at = NOW + timedelta(days=30)
        db.session.commit()
        assert enrollments.run_due(now=NOW + timedelta(days=1)) == 0  # not due
        # Due again after 90 days; the ask 90 days ago is just outside the quiet period.
        assert enrollments.run_due(now=NOW + timedelta(days=90, seconds=1)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_type": "ticket_closed", "channel": "sms"}, "channel"),
        ({"event_type": "ticket_closed", "channel": "email", "delay_seconds": 10**9}, "delay_seconds"),
        ({"event_type": "ticket_closed", "channel": "email", "delay_seconds": -60}, "delay_seconds"),
        (
            {
                "event_type": "x",
                "channel": "email",
                "conditions": [{"property": "plan", "op": "like", "value": 1}],
            },
            "conditions",
        ),
        (
            {
                "event_type": "x",
                "channel": "email",
                "conditions": [{"property": "plan", "op": "in", "value": "pro"}],
            },
            "conditions",
        ),
        ({"event_type": "x", "channel": "email", "sample_percent": 101}, "sample_percent"),
        (
            {"event_type": "x", "channel": "email", "send_window": {"start_hour": 18, "end_hour": 9}},
            "send_window",
        ),
        ({"event_type": "Bad Type", "channel": "email"}, "event_type"),
    ],
)
def test_trigger_invalid_rule_is_422(
    client: FlaskClient, auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    res = client.post("/api/v1/triggers", json=body, headers=auth)
    assert res.status_code == 422, res.get_json()
    assert field in res.get_json()["details"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"id": "1", "type": "ticket_closed", "person": {"email": "a@b.co"}, "occurred_at": "31/12/2026"},
            "occurred_at",
        ),
        ({"type": "ticket_closed", "person": {"email": "a@b.co"}}, "id"),
        ({"id": "1", "type": "ticket_closed", "person": {}}, "person"),
        ({"id": "", "type": "ticket_closed", "person": {"email": "a@b.co"}}, "id"),
    ],
)
def test_event_invalid_body_is_422(
    client: FlaskClient, auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    res = client.post("/api/v1/events", json=body, headers=auth)
    assert res.status_code == 422
    assert field in res.get_json()["details"]


def test_custom_event_types_only_when_allowed(client: FlaskClient, auth: dict[str, str]) -> None:
    assert send_event(client, auth, "c1", "feature_adopted").status_code == 202
    client.patch("/api/v1/project", json={"allow_custom_events": False}, headers=auth)
    res = send_event(client, auth, "c2", "feature_adopted")
    assert res.status_code == 422 and res.get_json()["code"] == "unknown_event_type"
    assert send_event(client, auth, "c3", "ticket_closed").status_code == 202


def test_event_person_properties_update_the_person(client: FlaskClient, auth: dict[str, str]) -> None:
    body = {
        "id": "p1",
        "type": "upgraded",
        "person": {"external_id": "u9", "properties": {"plan": "enterprise"}},
    }
    client.post("/api/v1/events", json=body, headers=auth)
    person = client.post("/api/v1/people", json={"external_id": "u9"}, headers=auth).get_json()
    assert person["properties"] == {"plan": "enterprise"}


def test_triggers_crud_and_tenant_isolation(app: Flask, client: FlaskClient, auth: dict[str, str]) -> None:
    rule = add_rule(client, auth, event_type="qbr_held")
    assert rule["delay_seconds"] == 86400
    res = client.patch(
        f"/api/v1/triggers/{rule['id']}", json={"sample_percent": 50, "enabled": False}, headers=auth
    )
    assert res.get_json()["sample_percent"] == 50 and res.get_json()["enabled"] is False
    assert [r["id"] for r in client.get("/api/v1/triggers", headers=auth).get_json()["data"]] == [rule["id"]]
    other = make_project(app, "Other")
    other_auth = {"Authorization": f"Bearer {other['secret_key']}"}
    assert client.get(f"/api/v1/triggers/{rule['id']}", headers=other_auth).status_code == 404
    assert client.delete(f"/api/v1/triggers/{rule['id']}", headers=other_auth).status_code == 404
    assert client.delete(f"/api/v1/triggers/{rule['id']}", headers=auth).status_code == 204
    assert client.get(f"/api/v1/triggers/{rule['id']}", headers=auth).status_code == 404
    templates = client.get("/api/v1/trigger_templates", headers=auth).get_json()["data"]
    assert {t["event_type"] for t in templates} == set(triggers.TEMPLATES)


def test_failed_jobs_listed_per_project_by_api_and_cli(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any], queue: Queue
) -> None:
    other = make_project(app, "Other")
    queue.enqueue("tests.support.jobs.always_fails", 41, meta={"project_id": project["id"], "request_id": 41})
    queue.enqueue("tests.support.jobs.always_fails", 42, meta={"project_id": other["id"], "request_id": 42})
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    mine = client.get("/api/v1/jobs/failed", headers=auth).get_json()["data"]
    assert [(j["request_id"], j["function"]) for j in mine] == [(41, "tests.support.jobs.always_fails")]
    assert mine[0]["error"] == "RuntimeError: SMTP said no to request 41"
    cli = app.test_cli_runner().invoke(args=["failed-jobs"])
    assert "2 failed job(s)" in cli.output


def test_relay_releases_claim_of_a_worker_that_died_mid_send(
    app: Flask, client: FlaskClient, auth: dict[str, str], queue: Queue
) -> None:
    from survey_service.services import outbox

    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0)
    send_event(client, auth, "k1", "ticket_closed")
    [request] = requests_of(app)
    queue.connection.flushdb()
    with app.app_context():
        row = db.session.get(SurveyRequest, request.id)
        assert row is not None
        row.status, row.sent_at = "sending", NOW  # claimed, then the worker was SIGKILLed
        db.session.commit()
        assert outbox.relay(now=NOW + timedelta(seconds=60)) == 0  # could still be running
        assert outbox.relay(now=NOW + timedelta(minutes=10)) == 1
    [request] = requests_of(app)
    assert (request.status, request.status_reason, request.sent_at) == ("pending", "claim_expired", None)
    assert queue.job_ids == [f"send-email-{request.id}"]


def test_relay_releases_a_dead_claim_while_the_person_holds_a_newer_scheduled_ask(
    app: Flask, client: FlaskClient, auth: dict[str, str], queue: Queue
) -> None:
    from survey_service.services import outbox

    add_rule(client, auth, event_type="ticket_closed", delay_seconds=0)
    send_event(client, auth, "k1", "ticket_closed")
    [request] = requests_of(app)
    with app.app_context():
        row = db.session.get(SurveyRequest, request.id)
        assert row is not None
        row.status, row.sent_at = "sending", NOW  # claimed, then the worker was SIGKILLed
        newer = SurveyRequest(
            project_id=row.project_id,
            survey_id=row.survey_id,
            person_id=row.person_id,
            channel="email",
            status="scheduled",
            scheduled_at=NOW + timedelta(days=30),
        )
        db.session.add(newer)
        db.session.commit()
        newer_id = newer.id
        outbox.relay(now=NOW + timedelta(minutes=10))  # used to break the one-scheduled-ask index
    statuses = {r.id: (r.status, r.status_reason) for r in requests_of(app)}
    assert statuses == {request.id: ("pending", "claim_expired"), newer_id: ("scheduled", None)}


def test_relay_reenqueues_send_stuck_in_the_scheduled_registry(
    app: Flask, client: FlaskClient, auth: dict[str, str], queue: Queue
) -> None:
    from survey_service.services import outbox

    add_rule(client, auth, event_type="renewed", delay_seconds=3600)
    send_event(client, auth, "s1", "renewed")
    [request] = requests_of(app)
    due = NOW + timedelta(hours=1)
    scheduled = queue.connection.zrange(scheduled_jobs(queue).key, 0, -1)
    assert scheduled == [f"send-email-{request.id}".encode()]
    with app.app_context():
        # A backoff or a delay still ahead counts as alive; one far past its time is stuck.
        assert outbox.relay(now=due + timedelta(seconds=10)) == 0
        assert outbox.relay(now=due + timedelta(minutes=5)) == 1
    assert queue.job_ids == [f"send-email-{request.id}"]
