"""core.inserts: a row written by one Core INSERT and held as loaded takes every column but id, exactly."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from survey_service.core import clock
from survey_service.core.inserts import insert_loaded, insert_unless_taken
from survey_service.extensions import db
from survey_service.models import Event, Person


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
