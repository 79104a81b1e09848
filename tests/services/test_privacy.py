"""Privacy: one person's data export, and erasure that leaves nothing behind (rows and queued jobs)."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from rq.job import Job
from sqlalchemy import DateTime, FromClause, func, select

from survey_service.core import clock
from survey_service.extensions import Base, db, queues, scheduled_jobs
from survey_service.models import (
    EmailSuppression,
    Person,
    Response,
    SurveyRequest,
    UTCDateTime,
    WebhookDelivery,
    WidgetDismissal,
)
from survey_service.reporting import rollups
from survey_service.services import email_requests, landing, outbox, privacy, suppressions
from survey_service.services.people import upsert_person
from survey_service.services.projects import default_survey
from tests.support.db import empty_tables, make_project
from tests.support.themes import analyse


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
        db.session.add(WidgetDismissal(project_id=project["id"], person_id=person_id))
        db.session.commit()
        delivery_ids = list(
            db.session.scalars(
                select(WebhookDelivery.id).join(Response).where(Response.person_id == person_id)
            )
        )
        assert len(delivery_ids) == 2
        assert all(Job.exists(f"webhook-delivery-{i}", connection=queues().redis) for i in delivery_ids)

    event = {
        "id": "evt-1",
        "type": "ticket.closed",
        "person": {"email": "gone@acme.test"},
        "properties": {"ticket": "T-42"},
    }
    assert client.post("/api/v1/events", json=event, headers=auth).status_code == 202
    enrol = {"person": {"email": "gone@acme.test"}, "interval_days": 90, "channel": "email"}
    assert client.post("/api/v1/recurring", json=enrol, headers=auth).status_code == 201

    analyse(app)  # what the theme analysis read in their comments is theirs too

    exported = client.get(f"/api/v1/people/{person_id}/export", headers=auth)
    assert exported.status_code == 200
    data = exported.get_json()
    assert data["person"]["email"] == "gone@acme.test" and data["person"]["properties"] == {"plan": "pro"}
    assert len(data["response_analyses"]) == 2 and len(data["response_themes"]) == 1
    assert [r["comment"] for r in data["responses"]] == ["Too slow", "Better now"]
    assert len(data["survey_requests"]) == 1 and len(data["webhook_deliveries"]) == 2
    # Lifecycle events with their properties, recurring enrolments and widget dismissals too.
    assert [(e["external_id"], e["properties"]) for e in data["events"]] == [("evt-1", {"ticket": "T-42"})]
    assert [e["interval_days"] for e in data["enrollments"]] == [90]
    assert [d["person_id"] for d in data["widget_dismissals"]] == [person_id]
    assert set(data) == {"person"} | {owned.name for owned in privacy.PERSON_OWNED}

    other = {"Authorization": f"Bearer {make_project(app, 'Other')['secret_key']}"}
    assert client.get(f"/api/v1/people/{person_id}/export", headers=other).status_code == 404
    assert client.delete(f"/api/v1/people/{person_id}", headers=other).status_code == 404

    erased = client.delete(f"/api/v1/people/{person_id}", headers=auth)
    assert erased.status_code == 200
    assert erased.get_json()["counts"] == {
        "responses": 2,
        "survey_requests": 1,
        "webhook_deliveries": 2,
        "events": 1,
        "enrollments": 1,
        "widget_dismissals": 1,
        "response_analyses": 2,
        "response_themes": 1,
    }
    with app.app_context():
        assert person_id is not None and set(privacy.person_row_counts(person_id).values()) == {0}
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


def _person_tables(tables: list[FromClause]) -> dict[str, str]:
    """Tables holding rows about a person (table: why): a person_id column or a foreign key to people,
    or a foreign key that deletes the row with a person-owned row. Read from the models, not a list."""
    found: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for table in tables:
            name = getattr(table, "name", None)
            if name is None or name == "people" or name in found:
                continue
            why = None
            if "person_id" in table.columns:
                why = "has a person_id column"
            for fk in table.foreign_keys:
                target = fk.column.table.name
                if target == "people":
                    why = f"{fk.parent.name} points at people"
                elif target in found and (fk.ondelete or "").upper() == "CASCADE":
                    why = f"{fk.parent.name} goes with a {target} row"
            if why:
                found[name] = why
                changed = True
    return found


def _unregistered(registry: tuple[privacy.Owned, ...]) -> dict[str, str]:
    tables = [mapper.local_table for mapper in Base.registry.mappers]  # every model, as db.Model sees them
    registered = {getattr(owned.model.__table__, "name", None) for owned in registry}
    return {
        name: why
        for name, why in _person_tables(tables).items()
        if name not in registered and name not in privacy.NOT_PERSON_ROWS
    }


def test_every_person_owned_table_is_in_the_privacy_registry() -> None:
    # A new model with a person_id (or a row that goes with a person's row) must be exported and erased:
    # add it to privacy.PERSON_OWNED (or, holding nothing about the person, to NOT_PERSON_ROWS).
    assert _unregistered(privacy.PERSON_OWNED) == {}
    # The check can fail: leave one table out and it is named.
    without_events = tuple(o for o in privacy.PERSON_OWNED if o.name != "events")
    assert set(_unregistered(without_events)) == {"events"}
    # And the registry holds nothing twice.
    names = [owned.name for owned in privacy.PERSON_OWNED]
    assert len(set(names)) == len(names)


def test_anonymise_comments_blanks_only_old_ones(app: Flask, runner: Any, project: dict[str, Any]) -> None:
    from datetime import timedelta

    from survey_service.core import clock
    from survey_service.services.responses import record_response

    with app.app_context():
        old, _ = record_response(
            project["id"],
            {"email": "a@acme.test"},
            3,
            "Old complaint",
            created_at=clock.now() - timedelta(days=400),
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


# ---- sec-crypto: erasure leaves no address in suppressions and nothing queued in Redis ------------

ERASERS = {
    "api": lambda person_id: f"/api/v1/people/{person_id}",
    "delighted": lambda person_id: f"/v1/people/{person_id}.json",
}


def _basic(project: dict[str, Any]) -> dict[str, str]:
    """HTTP Basic with the secret key as user name, as Delighted's clients send it."""
    return {"Authorization": "Basic " + base64.b64encode(f"{project['secret_key']}:".encode()).decode()}


def _erase(client: FlaskClient, project: dict[str, Any], eraser: str, person_id: int) -> None:
    res = client.delete(ERASERS[eraser](person_id), headers=_basic(project))
    assert res.status_code in (200, 202), res.get_data(as_text=True)


@pytest.mark.parametrize("eraser", sorted(ERASERS))
def test_erase_person_queued_sends_and_link_views_leave_redis(
    app: Flask, client: FlaskClient, project: dict[str, Any], redis_url: str, eraser: str
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    with app.app_context():
        person, _ = upsert_person(project["id"], {"email": "gone@acme.test"})
        stays, _ = upsert_person(project["id"], {"email": "stays@acme.test"})
        db.session.commit()
        person_id = person.id
        later = email_requests.send_email_survey(project["id"], person.id, delay_seconds=3600)
        kept = email_requests.send_email_survey(project["id"], stays.id, delay_seconds=3600)
        landing.note_view(later.id, 9)
        landing.note_view(kept.id, 9)
        gone_job, kept_job = outbox.job_id(later.id), outbox.job_id(kept.id)
        views = [f"survey:link-views:{later.id}", f"survey:link-views:{kept.id}"]
        connection = queues().redis
        assert Job.exists(gone_job, connection=connection) and connection.exists(*views) == 2
    _erase(client, project, eraser, person_id)
    with app.app_context():
        connection = queues().redis
        assert not Job.exists(gone_job, connection=connection)
        scheduled = scheduled_jobs(queues().queue()).get_job_ids()
        assert gone_job not in scheduled and kept_job in scheduled
        assert connection.exists(views[0]) == 0 and connection.exists(views[1]) == 1


@pytest.mark.parametrize("eraser", sorted(ERASERS))
def test_erase_person_suppressions_keep_only_a_keyed_hash_and_still_suppress(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    runner: FlaskCliRunner,
    tmp_path: Path,
    redis_url: str,
    eraser: str,
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    address = "Gone@Acme.test"
    person = client.post("/api/v1/people", json={"email": address}, headers=auth).get_json()
    assert client.post("/api/v1/unsubscribes", json={"email": address}, headers=auth).status_code == 201
    bounce = {"email": address, "detail": "550 5.1.1 <gone@acme.test>: Recipient address rejected"}
    assert client.post("/api/v1/bounces", json=bounce, headers=auth).status_code == 201
    _erase(client, project, eraser, person["id"])

    with app.app_context():
        rows = list(db.session.scalars(select(EmailSuppression)))
        assert len(rows) == 2
        assert all(r.email is None and r.detail is None and r.email_hash for r in rows)
        assert all("acme" not in (r.email_hash or "") for r in rows)
        assert suppressions.is_suppressed(project["id"], "gone@acme.test")
        assert not suppressions.is_suppressed(make_project(app, "Other")["id"], "gone@acme.test")
    for listing in ("/api/v1/unsubscribes", "/api/v1/bounces"):
        assert client.get(listing, headers=auth).get_json()["data"] == []
    for listing in ("/v1/unsubscribes.json", "/v1/bounces.json"):
        assert client.get(listing, headers=_basic(project)).get_json() == []

    # The address comes back: an email ask is refused, an import does not schedule it.
    refused = client.post("/api/v1/survey_requests", json={"person": {"email": address}}, headers=auth)
    assert refused.status_code == 409 and refused.get_json()["code"] == "email_suppressed"
    people_csv = tmp_path / "people.csv"
    people_csv.write_text("Email,Name\ngone@acme.test,Gone Again\n")
    imported = runner.invoke(
        args=["import-delighted", "--people", str(people_csv), "--project", str(project["id"]), "--send"]
    )
    assert imported.exit_code == 0, imported.output
    assert "1 × unsubscribed or bounced" in imported.output

    # Unsubscribed again by the product: the row holds the address again, once, and lists it.
    again = client.post("/api/v1/unsubscribes", json={"email": address}, headers=auth)
    assert again.status_code == 201 and again.get_json()["email"] == "gone@acme.test"
    listed = client.get("/api/v1/unsubscribes", headers=auth).get_json()["data"]
    assert [row["email"] for row in listed] == ["gone@acme.test"]


def test_erase_person_hash_still_matches_after_secret_key_moves_to_fallbacks(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any]
) -> None:
    person = client.post("/api/v1/people", json={"email": "gone@acme.test"}, headers=auth).get_json()
    client.post("/api/v1/unsubscribes", json={"email": "gone@acme.test"}, headers=auth)
    assert client.delete(f"/api/v1/people/{person['id']}", headers=auth).status_code == 200
    app.config["SECRET_KEY_FALLBACKS"] = [app.config["SECRET_KEY"]]
    app.config["SECRET_KEY"] = "the-next-key"
    with app.app_context():
        assert suppressions.is_suppressed(project["id"], "gone@acme.test")


# ---- one eraser: every door leaves the same database and the same Redis --------------------------

# Columns that differ from one build of the same world to the next (clock readings, random keys).
VOLATILE = {
    "projects": {"secret_key_hash", "secret_key_hint", "public_key", "identity_secret_encrypted"},
    "alert_rules": {"secret_encrypted"},
}
Table = tuple[tuple[str, ...], list[tuple[Any, ...]]]
# Rate limiters' counters (per key and window, whichever door was called): not about the person.
RATE_LIMIT_KEY = re.compile(r"limit|(^|:)rate(:|$)", re.IGNORECASE)


def _comparable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def _database_rows() -> dict[str, Table]:
    """Every row of every table (its column names, its rows), without the columns that change from
    one build of the same world to the next."""
    found: dict[str, Table] = {}
    for table in db.metadata.sorted_tables:
        columns = [
            c
            for c in table.columns
            if not isinstance(c.type, DateTime | UTCDateTime)
            and c.name not in VOLATILE.get(table.name, set())
        ]
        rows = db.session.execute(select(*columns)).all()
        found[table.name] = (
            tuple(c.name for c in columns),
            sorted((tuple(_comparable(v) for v in row) for row in rows), key=repr),
        )
    return found


def _redis_state() -> dict[str, Any]:
    """Every key of the test's Redis database, with the members of its sets, lists and sorted sets."""
    connection: Any = queues().redis  # redis-py types every reply as maybe-awaitable
    state: dict[str, Any] = {}
    for raw in connection.scan_iter():
        key = raw.decode()
        if RATE_LIMIT_KEY.search(key):  # the rate limiters' counters hold no one's data
            continue
        kind = connection.type(raw).decode()
        if kind == "zset":
            state[key] = sorted(m.decode() for m in connection.zrange(raw, 0, -1))
        elif kind == "list":
            state[key] = sorted(m.decode() for m in connection.lrange(raw, 0, -1))
        elif kind == "set":
            state[key] = sorted(m.decode() for m in connection.smembers(raw))
        else:
            state[key] = kind
    return state


def _ok(res: Any) -> dict[str, Any]:
    assert res.status_code in (200, 201, 202), res.get_data(as_text=True)
    return dict(res.get_json())


def _build_world(
    app: Flask, client: FlaskClient, redis_url: str, answered_at: datetime
) -> tuple[dict[str, Any], int]:
    """From empty stores: two tenants, each with a person to erase (the same address in both) and one
    who stays, with answers, webhook deliveries, an event, a trigger's and an API's queued sends, a
    link, link views, a recurring enrolment and an unsubscribe. Returns tenant A and its person to erase."""
    with app.app_context():
        empty_tables()
    redis.Redis.from_url(redis_url).flushdb()
    tenants = [make_project(app, "Acme"), make_project(app, "Other")]
    for tenant in tenants:
        h = {"Authorization": f"Bearer {tenant['secret_key']}"}
        _ok(
            client.post(
                "/api/v1/alert_rules", json={"name": "all", "target_url": "https://8.8.8.8/a"}, headers=h
            )
        )
        delighted_rule = {
            "name": "delighted",
            "target_url": "https://8.8.8.8/d",
            "format": "delighted",
            "events": ["response.created", "unsubscribe.created"],
        }
        _ok(client.post("/api/v1/alert_rules", json=delighted_rule, headers=h))
        trigger = {"event_type": "ticket.closed", "channel": "email", "delay_seconds": 3600}
        _ok(client.post("/api/v1/triggers", json=trigger, headers=h))
        for who in ("gone", "stays"):
            person = {
                "email": f"{who}@acme.test",
                "external_id": who,
                "properties": {"company": f"{who} Ltd"},
            }
            for score, days in ((3, 3), (9, 2)):
                at = (answered_at - timedelta(days=days)).isoformat()
                body = {"person": person, "score": score, "comment": f"{who} {score}", "created_at": at}
                _ok(client.post("/api/v1/responses", json=body, headers=h))
            event = {"id": f"evt-{who}", "type": "ticket.closed", "person": {"external_id": who}}
            _ok(client.post("/api/v1/events", json=event, headers=h))
            enrol = {"person": {"external_id": who}, "interval_days": 90}
            _ok(client.post("/api/v1/recurring", json=enrol, headers=h))
            asked = _ok(
                client.post(
                    "/api/v1/survey_requests",
                    json={"person": person, "delay_seconds": 7200, "force": True},  # they answered
                    headers=h,
                )
            )
            link = _ok(client.post("/api/v1/survey_links", json={"person": person}, headers=h))
            with app.app_context():
                landing.note_view(link["id"], 9)
                landing.note_view(asked["id"], 3)
        _ok(client.post("/api/v1/unsubscribes", json={"email": "gone@acme.test"}, headers=h))
    with app.app_context():
        rollups.refresh()  # PostgreSQL: the closed days are counted, so erasure has counts to drop
        gone = db.session.scalar(
            select(Person.id).where(Person.project_id == tenants[0]["id"], Person.external_id == "gone")
        )
    assert gone is not None
    return tenants[0], gone


def test_every_eraser_leaves_the_same_rows_and_jobs_as_the_server_api(
    app: Flask, client: FlaskClient, redis_url: str
) -> None:
    answered_at = clock.now().replace(minute=0, second=0, microsecond=0)
    after: dict[str, tuple[dict[str, Table], dict[str, Any]]] = {}
    for door in sorted(ERASERS):
        project, gone_id = _build_world(app, client, redis_url, answered_at)
        with app.app_context():
            before = (_database_rows(), _redis_state())
            if rollups.enabled():
                assert before[0]["response_rollups"][1], "no counted day for the erasure to forget"
        for prefix in ("rq:job:send-email-", "rq:job:webhook-delivery-", "rq:job:webhook-unsubscribe-"):
            assert any(key.startswith(prefix) for key in before[1]), prefix
        assert any(key.startswith("survey:link-views:") for key in before[1])
        _erase(client, project, door, gone_id)
        with app.app_context():
            after[door] = (_database_rows(), _redis_state())
        rows, kept = after[door]
        other_tenant = project["id"] + 1
        for name, (columns, table_rows) in rows.items():
            person_column = "id" if name == "people" else "person_id"
            if person_column in columns:  # no row names the person any more
                at = columns.index(person_column)
                assert all(row[at] != gone_id for row in table_rows), name
            if "project_id" in columns:  # and the other tenant's rows are all still there, unchanged
                at = columns.index("project_id")
                assert [r for r in table_rows if r[at] == other_tenant] == [
                    r for r in before[0][name][1] if r[at] == other_tenant
                ], name
        assert rows != before[0] and kept != before[1]  # the erasure did remove rows and Redis entries
        assert any(key.startswith("survey:link-views:") for key in kept)  # those of the people who stay
    for door in ERASERS:
        rows, kept = after[door]
        assert {t: v for t, v in rows.items() if v != after["api"][0][t]} == {}, door
        assert kept == after["api"][1], door
