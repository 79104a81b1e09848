"""services.people.upsert_person: a new person in one INSERT … ON CONFLICT, a known one the long way, the
same result either way (on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, inspect, select

from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Person, Response, SurveyRequest
from survey_service.services import email_requests
from survey_service.services.people import upsert_person
from survey_service.services.responses import record_response
from tests.support.concurrency import at_once
from tests.support.db import make_project


def _fresh(project_id: int) -> list[Person]:
    db.session.expunge_all()
    return list(db.session.scalars(select(Person).where(Person.project_id == project_id).order_by(Person.id)))


def test_upsert_person_new_person_is_written_as_sent_and_readable_without_a_reload(
    app: Flask, project: dict[str, Any]
) -> None:
    data = {
        "external_id": "u1",
        "email": "u1@example.com",
        "name": "Ann",
        "locale": "fr",
        "properties": {"Plan": "pro", "seats": 3, "gone": None},
    }
    with app.app_context():
        person, created = upsert_person(project["id"], data)
        db.session.commit()
        assert created and person.id is not None
        assert person.properties == {"plan": "pro", "seats": 3} and person.browser_properties == {}
        assert person.created_at is not None and person.email_from_browser is False
        (stored,) = _fresh(project["id"])
        assert (stored.id, stored.external_id, stored.email, stored.name, stored.locale) == (
            person.id, "u1", "u1@example.com", "Ann", "fr"
        )  # fmt: skip
        assert stored.properties == {"plan": "pro", "seats": 3} and stored.email_from_browser is False


def test_upsert_person_known_person_is_merged_not_duplicated(app: Flask, project: dict[str, Any]) -> None:
    with app.app_context():
        first, created = upsert_person(project["id"], {"external_id": "u1", "properties": {"plan": "free"}})
        db.session.commit()
        again, created_again = upsert_person(
            project["id"], {"external_id": "u1", "email": "u1@example.com", "properties": {"region": "eu"}}
        )
        db.session.commit()
        assert created and not created_again and again.id == first.id
        (stored,) = _fresh(project["id"])
        assert stored.email == "u1@example.com" and stored.properties == {"plan": "free", "region": "eu"}


def test_upsert_person_email_of_another_external_id_is_409_and_writes_nothing(
    app: Flask, project: dict[str, Any]
) -> None:
    with app.app_context():
        upsert_person(project["id"], {"external_id": "u1", "email": "taken@example.com"})
        db.session.commit()
        with pytest.raises(ApiError) as refused:
            upsert_person(project["id"], {"external_id": "u2", "email": "taken@example.com"})
        db.session.rollback()
        assert refused.value.status == 409 and refused.value.code == "email_taken"
        assert db.session.scalar(select(func.count()).select_from(Person)) == 1


def test_upsert_person_same_external_id_in_another_project_is_another_person(app: Flask) -> None:
    a, b = make_project(app, "A"), make_project(app, "B")
    with app.app_context():
        pa, _ = upsert_person(a["id"], {"external_id": "same", "email": "same@example.com"})
        pb, created = upsert_person(b["id"], {"external_id": "same", "email": "same@example.com"})
        db.session.commit()
        assert created and pa.id != pb.id and pb.project_id == b["id"]


def test_new_person_and_new_response_are_fully_loaded_without_a_read_back(
    app: Flask, project: dict[str, Any]
) -> None:
    """Both are written by Core (one statement on PostgreSQL, an INSERT each on SQLite) and made persistent
    from the values written: a column added to the model but not to those values would be missing here
    (and read back lazily later)."""
    statements: list[str] = []
    with app.app_context():

        def seen(*args: Any) -> None:
            statements.append(args[2])

        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            response, created = record_response(project["id"], {"external_id": "full-1"}, 9, "Great")
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
        assert created
        assert not inspect(response).unloaded and not inspect(response.person).unloaded
        assert response.followup_tags == [] and response.followup_status == "new"
        assert response.person.properties == {} and response.person.widget_seen_at is None
        reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert not [s for s in reads if "FROM people" in s or "FROM responses" in s], reads
        writes = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "WITH"))]
        assert len(writes) == (1 if db.engine.dialect.name == "postgresql" else 2), writes
        held = {column.key: getattr(response, column.key) for column in Response.__table__.columns}
        db.session.expunge_all()
        stored = db.session.get(Response, response.id)
        assert stored is not None
        assert (stored.score, stored.category, stored.comment) == (9, "promoter", "Great")
        assert stored.created_at == response.created_at and stored.person.external_id == "full-1"
        assert {column.key: getattr(stored, column.key) for column in Response.__table__.columns} == held


def test_first_answer_to_a_request_that_lost_a_race_updates_the_winner_instead(
    app: Flask, project: dict[str, Any]
) -> None:
    """A never-answered request's answer goes straight to the INSERT; when another answer to the same
    request committed meanwhile (the caller's copy still says unanswered), the unique request_id fails
    that INSERT and the rerun finds and updates the winner: one response, the later score, no 409."""
    with app.app_context():
        person, _ = upsert_person(project["id"], {"external_id": "race-1", "email": "race@example.com"})
        db.session.commit()
        request = email_requests.create_email_request(project["id"], person.id)
        stale = db.session.get(SurveyRequest, request.id)
        assert stale is not None and stale.responded_at is None
        first, created = record_response(project["id"], {}, 3, channel="email", request=stale, person=person)
        assert created
        stale.responded_at, stale.status = None, "sent"  # as another worker's copy still sees it
        second, created = record_response(
            project["id"], {}, 9, "Changed my mind", channel="email", request=stale, person=person
        )
        assert not created and second.id == first.id
        request_id = request.id
        db.session.expunge_all()
        stored = db.session.scalars(select(Response).where(Response.request_id == request_id)).all()
        assert [(r.score, r.comment) for r in stored] == [(9, "Changed my mind")]


def test_answers_of_someone_new_at_once_make_one_person_with_every_answer(
    app: Flask, project: dict[str, Any]
) -> None:
    """Four first answers of the same new person at once (four workers): one wins the person's INSERT (on
    PostgreSQL inside the response's statement); the others find its key taken, wait for it, and take
    the long way to the same person. Four responses, one person, nothing refused."""
    who = {"external_id": "same-1", "email": "same@example.com", "properties": {"plan": "pro"}}
    made = at_once(lambda score: record_response(project["id"], who, score)[1], 4, app)
    assert made == [True] * 4
    with app.app_context():
        [person] = db.session.scalars(select(Person)).all()
        responses = db.session.scalars(select(Response)).all()
        assert sorted(r.score for r in responses) == [0, 1, 2, 3]
        assert {r.person_id for r in responses} == {person.id}
        assert all(r.properties == {"plan": "pro"} for r in responses)
