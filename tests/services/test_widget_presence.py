"""The widget's sight of a person and the channels a due reminder takes (services/widget_presence)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from survey_service.extensions import db
from survey_service.models import Person
from survey_service.services.widget_presence import channels_for, note_seen, seen_is_stale
from tests.support.sql import sql_log

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def seen(ago: timedelta | None) -> Person:
    return Person(project_id=1, external_id="u1", widget_seen_at=None if ago is None else NOW - ago)


@pytest.mark.parametrize(
    ("ago", "stale"),
    [
        (None, True),  # never seen
        (timedelta(minutes=1), False),
        (timedelta(minutes=59, seconds=59), False),
        (timedelta(hours=1), True),
        (timedelta(days=3), True),
        (timedelta(minutes=-5), False),  # a sight from a clock a little ahead: kept
    ],
)
def test_seen_is_stale_after_an_hour(ago: timedelta | None, stale: bool) -> None:
    assert seen_is_stale(seen(ago).widget_seen_at, NOW) is stale


def test_note_seen_writes_once_an_hour_without_a_read_and_keeps_updated_at(
    app: Flask, project: dict[str, Any]
) -> None:
    with app.app_context():
        person = Person(project_id=project["id"], external_id="u1", properties={}, updated_at=NOW - DAY)
        db.session.add(person)
        db.session.commit()
        person_id = person.id
    for at, writes in [
        (NOW, True),
        (NOW + timedelta(minutes=30), False),
        (NOW + timedelta(minutes=61), True),
    ]:
        with app.app_context():
            loaded = db.session.get(Person, person_id)
            assert loaded is not None
            with sql_log(app) as statements:
                assert note_seen(loaded, at) is writes
                db.session.commit()
            assert [s.split()[0].upper() for s in statements if s != "COMMIT"] == (
                ["UPDATE"] if writes else []
            )
    with app.app_context():
        stored = db.session.get(Person, person_id)
        assert stored is not None
        assert stored.widget_seen_at == NOW + timedelta(minutes=61) and stored.updated_at == NOW - DAY


@pytest.mark.parametrize(
    ("plan", "ago", "expected"),
    [
        ({"mode": "email"}, timedelta(hours=2), ("email",)),
        ({"mode": "in_app_first"}, timedelta(hours=2), ("in_app",)),
        ({"mode": "both"}, timedelta(hours=2), ("email", "in_app")),
        # Not seen within the window (7 days by default), or never: email whatever the mode.
        ({"mode": "in_app_first"}, None, ("email",)),
        ({"mode": "both"}, None, ("email",)),
        ({"mode": "in_app_first"}, 7 * DAY, ("in_app",)),  # the window's edge is inside
        ({"mode": "in_app_first"}, 7 * DAY + timedelta(seconds=1), ("email",)),
        ({"mode": "both"}, 8 * DAY, ("email",)),
        # The plan's own window.
        ({"mode": "in_app_first", "in_app_window_days": 1}, 2 * DAY, ("email",)),
        ({"mode": "in_app_first", "in_app_window_days": 30}, 20 * DAY, ("in_app",)),
        ({"mode": "both", "in_app_window_days": 90}, 89 * DAY, ("email", "in_app")),
        # A plan the validator would refuse still reminds: by email, or with the default window.
        ({}, timedelta(hours=2), ("email",)),
        ({"mode": "sms"}, timedelta(hours=2), ("email",)),
        ({"mode": "in_app_first", "in_app_window_days": 0}, 6 * DAY, ("in_app",)),
        ({"mode": "in_app_first", "in_app_window_days": 365}, 30 * DAY, ("email",)),
        ({"mode": "in_app_first", "in_app_window_days": True}, 6 * DAY, ("in_app",)),
        ({"mode": "in_app_first", "in_app_window_days": "30"}, 20 * DAY, ("email",)),
    ],
)
def test_channels_for_mode_and_sight(
    plan: dict[str, Any], ago: timedelta | None, expected: tuple[str, ...]
) -> None:
    assert channels_for(plan, seen(ago), NOW) == expected
