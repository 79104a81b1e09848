"""core.inserts: a row written by one Core INSERT and held as loaded takes every column but id, exactly."""

from __future__ import annotations

from typing import Any, cast

import pytest
from flask import Flask
from sqlalchemy import Table, bindparam, event, func, inspect, select, update

from survey_service.core import clock
from survey_service.core.inserts import (
    insert_loaded,
    insert_pair_unless_taken,
    insert_trio_unless_taken,
    insert_unless_taken,
)
from survey_service.extensions import db
from survey_service.models import Event, Person, SurveyRequest
from tests.support.db import make_project
from tests.support.sql import sql_log


@pytest.mark.parametrize("key", ["typo", "received_at"], ids=["stray key", "column left out"])
def test_insert_loaded_values_not_the_columns_is_a_type_error_and_writes_nothing(
    app: Flask, project: dict[str, Any], key: str
) -> None:
    values: dict[str, Any] = {
        "project_id": project["id"],
        "external_id": "e1",
        "type": "signed_up",
        "person_id": 1,
        "occurred_at": clock.now(),
        "properties": {},
        "received_at": clock.now(),
    }
    if key in values:
        del values[key]
    else:
        values[key] = "x"
    with app.app_context():
        with pytest.raises(TypeError, match=key):
            insert_loaded(Event, values)
        assert db.session.scalar(select(func.count()).select_from(Event)) == 0


def _person_values(project_id: int) -> dict[str, Any]:
    now = clock.now()
    return {
        "project_id": project_id,
        "external_id": "p1",
        "email": None,
        "email_from_browser": False,
        "name": None,
        "locale": None,
        "time_zone": None,
        "properties": {},
        "browser_properties": {},
        "phone_number": None,
        "widget_seen_at": None,
        "created_at": now,
        "updated_at": now,
    }


def test_a_rolled_back_insert_leaves_the_session_and_the_retry_inserts_again(
    app: Flask, project: dict[str, Any]
) -> None:
    """As the ORM forgets what it flushed in a rolled-back transaction: the retry of commit_with_retry
    inserts the row again, under the same id on SQLite (a rolled-back rowid is handed out again)."""
    with app.app_context():
        first = insert_unless_taken(Person, _person_values(project["id"]))
        assert first is not None and first in db.session
        db.session.rollback()
        assert first not in db.session
        again = insert_unless_taken(Person, _person_values(project["id"]))
        assert again is not None and again in db.session
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(Person)) == 1
        assert db.session.get(Person, again.id) is again


def _columns(row: Any) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def _event_values(project_id: int, external_id: str = "e1") -> dict[str, Any]:
    return {
        "project_id": project_id,
        "external_id": external_id,
        "type": "signed_up",
        "occurred_at": clock.now(),
        "properties": {"plan": "pro"},
        "received_at": clock.now(),
    }


def test_insert_pair_writes_parent_and_child_in_one_statement_on_postgresql_held_as_stored(
    app: Flask, project: dict[str, Any]
) -> None:
    """A new person and its event: one INSERT … SELECT FROM (INSERT … RETURNING) on PostgreSQL, two
    INSERTs on SQLite; both objects hold every column as stored, the child pointing at the parent."""
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    with app.app_context():
        db.session.connection()  # the transaction's BEGIN is not counted
        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            pair = insert_pair_unless_taken(
                Person, _person_values(project["id"]), Event, _event_values(project["id"]), "person_id"
            )
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
        assert pair is not None
        person, new_event = pair
        assert new_event.person_id == person.id and person in db.session and new_event in db.session
        assert not inspect(person).unloaded and not inspect(new_event).unloaded
        held = [_columns(person), _columns(new_event)]
        db.session.commit()
        db.session.expunge_all()
        stored = [db.session.get(Person, person.id), db.session.get(Event, new_event.id)]
        assert [_columns(row) for row in stored if row is not None] == held
        assert len(statements) == (1 if db.engine.dialect.name == "postgresql" else 2), statements


def test_insert_pair_with_the_parent_taken_writes_nothing(app: Flask, project: dict[str, Any]) -> None:
    with app.app_context():
        assert insert_unless_taken(Person, _person_values(project["id"])) is not None
        db.session.commit()
        taken = insert_pair_unless_taken(
            Person, _person_values(project["id"]), Event, _event_values(project["id"]), "person_id"
        )
        assert taken is None
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(Person)) == 1
        assert db.session.scalar(select(func.count()).select_from(Event)) == 0


def test_insert_pair_with_the_child_taken_is_none_and_the_new_parent_is_there_to_find(
    app: Flask, project: dict[str, Any]
) -> None:
    """A repeat event of someone new: nothing comes back, and the caller's long way finds the person
    written in this transaction (a rollback takes it back, as the event's repeat path does)."""
    with app.app_context():
        first = insert_pair_unless_taken(
            Person, _person_values(project["id"]), Event, _event_values(project["id"]), "person_id"
        )
        assert first is not None
        db.session.commit()
        someone_new = {**_person_values(project["id"]), "external_id": "p2"}
        assert (
            insert_pair_unless_taken(Person, someone_new, Event, _event_values(project["id"]), "person_id")
            is None
        )
        found = db.session.scalar(select(Person).where(Person.external_id == "p2"))
        assert found is not None and db.session.scalar(select(func.count()).select_from(Event)) == 1
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Person)) == 1


def test_insert_pair_rolled_back_leaves_the_session(app: Flask, project: dict[str, Any]) -> None:
    with app.app_context():
        pair = insert_pair_unless_taken(
            Person, _person_values(project["id"]), Event, _event_values(project["id"]), "person_id"
        )
        assert pair is not None
        db.session.rollback()
        assert not any(row in db.session for row in pair)
        again = insert_pair_unless_taken(
            Person, _person_values(project["id"]), Event, _event_values(project["id"]), "person_id"
        )
        assert again is not None
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(Event)) == 1


@pytest.mark.parametrize("bad", ["link given", "child column left out", "parent stray key"])
def test_insert_pair_values_not_the_columns_is_a_type_error(
    app: Flask, project: dict[str, Any], bad: str
) -> None:
    person, child = _person_values(project["id"]), _event_values(project["id"])
    if bad == "link given":
        child["person_id"] = 1
    elif bad == "child column left out":
        del child["received_at"]
    else:
        person["typo"] = 1
    with app.app_context():
        with pytest.raises(TypeError):
            insert_pair_unless_taken(Person, person, Event, child, "person_id")
        assert db.session.scalar(select(func.count()).select_from(Person)) == 0


def test_insert_loaded_along_an_update_changes_only_what_the_update_sets(
    app: Flask, project: dict[str, Any]
) -> None:
    """The UPDATE rides in the INSERT's statement on PostgreSQL (a CTE). Only its own SET columns change:
    the inserted row's values name columns the updated table has too (project_id, created_at, …), and
    none of them may leak into the UPDATE."""
    people = cast(Table, Person.__table__)
    rename = update(people).where(people.c.id == bindparam("along_id")).values(name=bindparam("along_name"))
    with app.app_context():
        person = insert_unless_taken(Person, _person_values(project["id"]))
        assert person is not None
        db.session.commit()
        before = _columns(person)
        other = make_project(app, "Other")
        values = {**_event_values(other["id"]), "person_id": person.id, "received_at": clock.now()}
        statements: list[str] = []

        def seen(*args: Any) -> None:
            statements.append(args[2])

        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            inserted = insert_loaded(
                Event, values, along=rename, along_params={"along_id": person.id, "along_name": "Pat"}
            )
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
        db.session.commit()
        assert len(statements) == (1 if db.engine.dialect.name == "postgresql" else 2), statements
        db.session.expunge_all()
        stored_person, stored_event = db.session.get(Person, person.id), db.session.get(Event, inserted.id)
        assert stored_person is not None and stored_event is not None
        # Only the UPDATE's own SET columns changed: the name, and updated_at (the column's onupdate).
        assert _columns(stored_person) == {**before, "name": "Pat", "updated_at": stored_person.updated_at}
        assert stored_person.updated_at >= before["updated_at"]
        assert _columns(stored_event) == _columns(inserted)


def _request_values(project_id: int) -> dict[str, Any]:
    from survey_service.services.surveying import new_request_values

    return new_request_values(
        project_id, channel="email", send_at=clock.now(), survey_id=None, trigger_id=None,
        enrollment_id=None, enqueued_at=None, reminders=None,
    )  # fmt: skip


def _trio(
    project_id: int, person: dict[str, Any] | None = None, request: dict[str, Any] | None = None
) -> Any:
    return insert_trio_unless_taken(
        Person, person or _person_values(project_id), Event, _event_values(project_id), "person_id",
        SurveyRequest, request or _request_values(project_id), ("person_id", "event_id"),
    )  # fmt: skip


def test_insert_trio_writes_the_three_rows_in_one_statement_on_postgresql_held_as_stored(
    app: Flask, project: dict[str, Any]
) -> None:
    with app.app_context():
        db.session.connection()
        request_values = _request_values(project["id"])  # reads the survey's terms
        with sql_log(app) as statements:
            trio = _trio(project["id"], request=request_values)
        assert trio is not None
        person, new_event, request = trio
        assert new_event.person_id == request.person_id == person.id and request.event_id == new_event.id
        held = [_columns(row) for row in trio]
        db.session.commit()
        db.session.expunge_all()
        stored = [db.session.get(type(row), row.id) for row in trio]
        assert [_columns(row) for row in stored if row is not None] == held
        assert len(statements) == (1 if db.engine.dialect.name == "postgresql" else 3), statements
        # A None for a JSON column without a default is SQL NULL, JSONB's variant on PostgreSQL included.
        assert db.session.scalar(select(func.count()).where(SurveyRequest.reminder_plan.is_(None))) == 1
        if db.engine.dialect.name == "postgresql":  # a None column without a default is left out: no bind
            assert "reminder_plan" not in statements[0] and "phone_number" not in statements[0]
            assert "%(g_status)s" in statements[0]


def test_insert_trio_with_the_parent_or_child_taken_writes_no_third_row(
    app: Flask, project: dict[str, Any]
) -> None:
    with app.app_context():
        assert _trio(project["id"]) is not None
        db.session.commit()
        assert _trio(project["id"]) is None  # the person's key taken: nothing written
        someone_new = {**_person_values(project["id"]), "external_id": "p2"}
        assert _trio(project["id"], someone_new) is None  # the event's id taken: the new person only
        found = db.session.scalar(select(Person).where(Person.external_id == "p2"))
        assert found is not None
        assert db.session.scalar(select(func.count()).select_from(SurveyRequest)) == 1
        db.session.rollback()


def test_insert_trio_links_given_is_a_type_error(app: Flask, project: dict[str, Any]) -> None:
    with app.app_context():
        with pytest.raises(TypeError):
            insert_trio_unless_taken(
                Person, _person_values(project["id"]), Event, _event_values(project["id"]), "person_id",
                SurveyRequest, {**_request_values(project["id"]), "event_id": 1}, ("person_id", "event_id"),
            )  # fmt: skip
        assert db.session.scalar(select(func.count()).select_from(Person)) == 0
