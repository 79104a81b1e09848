"""Whether the widget saw a person lately, and which channels a due reminder then takes (issue 18).

The in-app fallback of reminders asks a person inside the product instead of by email when the widget
identified them recently. The widget records that sight on `people.widget_seen_at` (`note_seen`, at
most once an hour: identify is the hottest path of the service); the reminder scheduler reads it back
through `channels_for`, which is pure.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Update, or_, update
from sqlalchemy.orm.attributes import set_committed_value

from survey_service.extensions import db
from survey_service.models import Person
from survey_service.services.reminder_plans import DEFAULT_PLAN, IN_APP_WINDOW_DAYS

# A sight younger than this is not written again: the window it feeds is counted in days.
SEEN_EVERY = timedelta(hours=1)
DEFAULT_IN_APP_WINDOW_DAYS: int = DEFAULT_PLAN["in_app_window_days"]


def seen_is_stale(seen_at: datetime | None, now: datetime) -> bool:
    """Whether a stored sight is old enough (or absent) to be written again."""
    return seen_at is None or seen_at <= now - SEEN_EVERY


def _seen_update(person_id: int, now: datetime) -> Update:
    """The guarded write of a sight: seen_is_stale again in SQL, so identifies racing each other write once.

    updated_at is kept: being seen is not a change of the person's data (the API shows updated_at).
    """
    return (
        update(Person)
        .where(
            Person.id == person_id,
            or_(Person.widget_seen_at.is_(None), Person.widget_seen_at <= now - SEEN_EVERY),
        )
        .values(widget_seen_at=now, updated_at=Person.updated_at)
        .execution_options(synchronize_session=False)
    )


def note_seen(person: Person, now: datetime) -> bool:
    """Record that the widget identified this (already loaded) person now; True when it wrote.

    No write at all while the stored sight is younger than SEEN_EVERY, so most identifies stay read-only,
    and no read either: the loaded row says how old the sight is. Callers pass only identities the
    user_hash proved: an unverified claim must not move someone's reminders from their inbox into a browser.
    """
    if not seen_is_stale(person.widget_seen_at, now):
        return False
    db.session.execute(_seen_update(person.id, now))
    # The row now holds it; the loaded person says so without counting as a change of its own.
    set_committed_value(person, "widget_seen_at", now)
    return True


def note_seen_by_id(conn: Connection, person_id: int, now: datetime) -> None:
    """note_seen for identify's read-only path, which holds a row, not a Person: one UPDATE on conn."""
    conn.execute(_seen_update(person_id, now))


def in_app_window(plan: dict[str, Any]) -> timedelta:
    """The plan's in_app_window_days (1..90, default 7) as a duration; a bad value means the default."""
    days = plan.get("in_app_window_days", DEFAULT_IN_APP_WINDOW_DAYS)
    low, high = IN_APP_WINDOW_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or not low <= days <= high:
        days = DEFAULT_IN_APP_WINDOW_DAYS
    return timedelta(days=days)


def recently_seen(plan: dict[str, Any], person: Person, now: datetime) -> bool:
    """Whether the widget identified the person within the plan's in-app window."""
    seen_at = person.widget_seen_at
    return seen_at is not None and seen_at >= now - in_app_window(plan)


def channels_for(plan: dict[str, Any], person: Person, now: datetime) -> tuple[str, ...]:
    """The channels a reminder step due now takes for this person under this reminder plan.

    ("email",) for mode "email", and for a person the widget has not seen within in_app_window_days (or
    never): an in-app ask would wait for a visit that may not come. For a recently seen person:
    ("in_app",) under "in_app_first", ("email", "in_app") under "both". An unknown mode is "email",
    so a reminder is never dropped for want of a channel (plans are validated where they are saved).
    """
    mode = plan.get("mode", "email")
    if mode not in ("in_app_first", "both") or not recently_seen(plan, person, now):
        return ("email",)
    return ("in_app",) if mode == "in_app_first" else ("email", "in_app")
