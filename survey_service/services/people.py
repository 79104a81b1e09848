"""People: upsert by external id, else by email, with properties merged."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm.attributes import flag_modified

from survey_service.core import clock, cursors
from survey_service.core.inserts import insert_unless_taken
from survey_service.core.properties import normalize_property_name
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Person


def _candidates(
    project_id: int, external_id: str | None, email: str | None
) -> tuple[Person | None, Person | None]:
    """The project's person with this external id and the one with this email, in one query."""
    matches = []
    if external_id:
        matches.append(Person.external_id == external_id)
    if email:
        matches.append(Person.email == email)
    if not matches:
        return None, None
    rows = db.session.scalars(select(Person).where(Person.project_id == project_id, or_(*matches))).all()
    by_external_id = next((p for p in rows if external_id and p.external_id == external_id), None)
    by_email = next((p for p in rows if email and p.email == email), None)
    return by_external_id, by_email


def get_person(project_id: int, person_id: int) -> Person:
    """The project's person with this id; another project's id and an unknown one are the same 404."""
    person = db.session.get(Person, person_id)
    if person is None or person.project_id != project_id:
        raise ApiError(404, "not_found", "No such person.")
    return person


def list_people(
    project_id: int,
    *,
    email: str | None = None,
    external_id: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[Person], str | None]:
    """One page of a project's people, newest first, matching email and external_id exactly when given."""
    query = select(Person).where(Person.project_id == project_id)
    if email is not None:
        query = query.where(Person.email == email)
    if external_id is not None:
        query = query.where(Person.external_id == external_id)
    return cursors.page(query, [Person.id], scope=f"people:{project_id}", limit=limit, cursor=cursor)


def find_person(project_id: int, external_id: str | None, email: str | None) -> Person | None:
    """The project's person with this external id, else with this email."""
    return _pick(*_candidates(project_id, external_id, email), external_id, email)


def _pick(
    by_external_id: Person | None, by_email: Person | None, external_id: str | None, email: str | None
) -> Person | None:
    if by_external_id is not None:
        return by_external_id
    if by_email is not None and external_id and by_email.external_id not in (None, external_id):
        raise ApiError(
            409,
            "email_taken",
            "This email belongs to a person with another external_id.",
            {"email": email},
        )
    return by_email


def _as_json(properties: dict[str, Any]) -> str:
    return json.dumps(properties, sort_keys=True)


def upsert_person(project_id: int, data: dict[str, Any], *, new_first: bool = True) -> tuple[Person, bool]:
    """Find or create the person described by data and apply its fields; flushes, does not commit.

    Properties merge into the stored ones; a property sent as null is removed. new_first=False skips the
    one-statement insert of a new person, for a caller whose own such insert found a unique key taken.
    """
    external_id, email = data.get("external_id"), data.get("email")
    if new_first and (external_id or email):
        inserted = _insert_new(project_id, data)
        if inserted is not None:
            return inserted, True
    by_external_id, by_email = _candidates(project_id, external_id, email)
    if (
        by_email is not None
        and by_email.email_from_browser
        and external_id
        and by_email.external_id != external_id
    ):
        # A browser claimed this address for its own user: the server, naming another person, takes it back
        # (else any signed-in user could squat a customer's email and make the server's upserts fail).
        by_email.email, by_email.email_from_browser = None, False
        db.session.flush()
        by_email = None
    person = _pick(by_external_id, by_email, external_id, email)
    created = person is None
    if person is None:
        person = Person(project_id=project_id, properties={})
        db.session.add(person)
    if external_id:
        person.external_id = external_id
    if email and person.email != email:
        # by_email, loaded with the external id, is whoever else holds this email in the project.
        if not created and by_email is not None:
            raise ApiError(409, "email_taken", "This email belongs to another person.", {"email": email})
        person.email = email
    if email:
        person.email_from_browser = False  # the server set (or confirmed) it
    for field in ("name", "locale", "time_zone"):
        if field in data:
            setattr(person, field, data[field])
    if data.get("properties"):
        _merge_properties(person, data["properties"])
    db.session.flush()
    return person, created


def _insert_new(project_id: int, data: dict[str, Any]) -> Person | None:
    """The person described by data, inserted when nobody in the project has its external id or email.

    The common case of a new person in one statement, `INSERT … ON CONFLICT DO NOTHING RETURNING id`,
    instead of a look-up and an insert: no row comes back when either unique key is taken (a person to
    update, a 409 to decide, a browser-claimed email to take back), and the caller goes the long way.
    """
    return insert_unless_taken(Person, new_person_values(project_id, data))


def names_person(data: dict[str, Any]) -> bool:
    """Whether person data names someone by a unique key (else it always describes someone new)."""
    return bool(data.get("external_id") or data.get("email"))


def new_person_values(project_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Every column of the new person data describes, for an insert of core.inserts (upsert_person's fields:
    a caller whose insert finds a unique key taken calls upsert_person(…, new_first=False))."""
    now = clock.now()
    return {
        "project_id": project_id,
        "external_id": data.get("external_id") or None,
        "email": data.get("email") or None,
        "email_from_browser": False,
        "name": data.get("name"),
        "locale": data.get("locale"),
        "time_zone": data.get("time_zone"),
        "properties": _merged({}, data.get("properties") or {}),
        "browser_properties": {},
        "phone_number": None,
        "widget_seen_at": None,
        "created_at": now,
        "updated_at": now,
    }


def _merged(stored: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """stored with sent merged in: names normalised, null removes a key."""
    merged = dict(stored)
    for sent_key, value in sent.items():
        key = normalize_property_name(sent_key)
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _merge_properties(person: Person, sent: dict[str, Any]) -> None:
    """Merge sent properties into the person's (null removes a key); marks the column only on a change.

    Every door normalises names already; doing it here too keeps a caller that forgot from storing `Plan`.
    """
    stored = person.properties or {}
    merged = _merged(stored, sent)
    if _as_json(merged) != _as_json(stored):
        person.properties = merged  # a new dict, so the JSON column sees the change
        # SQLAlchemy compares with ==, which takes true for 1 and 3.0 for 3: JSON does not.
        flag_modified(person, "properties")


# --- what a browser may write (the widget's door) ----------------------------------------------------
# The product's server (secret key) is trusted with everything above. A browser is trusted only for *who*
# (the user_hash proves the user id): it never finds a person by email, never changes an email or a name,
# and writes properties into browser_properties, only under keys the server never set.

# How many keys browser_properties may hold: later new keys are ignored (each request is bounded already).
MAX_BROWSER_PROPERTIES = 50


def merged_properties(person: Person) -> dict[str, Any]:
    """A person's properties as reports see them: browser-set ones under server-set ones (the server wins)."""
    return {**(person.browser_properties or {}), **(person.properties or {})}


def _same_value(stored: Any, sent: Any) -> bool:
    # Types too: True == 1 in Python, but not in the JSON the properties are stored as.
    return type(stored) is type(sent) and stored == sent


def browser_properties_after(
    server: dict[str, Any] | None,
    browser: dict[str, Any] | None,
    sent: dict[str, Any] | None,
    allowed: list[str] | None,
) -> dict[str, Any] | None:
    """The person's browser_properties once a browser's properties apply; None when nothing changes.

    Keys the server set, and keys outside the project's allow-list (None: any), are ignored; null removes
    a browser-set key; new keys beyond MAX_BROWSER_PROPERTIES are ignored.
    """
    server, current = server or {}, browser or {}
    merged = dict(current)
    for key, value in (sent or {}).items():
        if key in server or (allowed is not None and key not in allowed):
            continue
        if value is None:
            merged.pop(key, None)
        elif key in merged or len(merged) < MAX_BROWSER_PROPERTIES:
            merged[key] = value
    unchanged = merged.keys() == current.keys() and all(_same_value(current[k], v) for k, v in merged.items())
    return None if unchanged else merged


def browser_identity_changes(stored: Any, user: dict[str, Any], allowed: list[str] | None) -> dict[str, Any]:
    """What a browser's identify would change of a stored person (a Person or a row with the same
    fields): email and name only when the person has none, locale, browser properties."""
    changes: dict[str, Any] = {}
    if user.get("email") and stored.email is None:
        changes["email"] = user["email"]
    if user.get("name") and stored.name is None:
        changes["name"] = user["name"]
    if "locale" in user and user["locale"] != stored.locale:
        changes["locale"] = user["locale"]
    browser = browser_properties_after(
        stored.properties, stored.browser_properties, user.get("properties"), allowed
    )
    if browser is not None:
        changes["browser_properties"] = browser
    return changes


def identify_browser_person(
    project_id: int, user: dict[str, Any], allowed: list[str] | None
) -> tuple[Person, bool]:
    """Find (by external id only) or create the widget user's person and apply what a browser may write;
    flushes, does not commit. An email someone else in the project holds is silently ignored (no oracle)."""
    external_id = user["id"]
    person = db.session.scalar(
        select(Person).where(Person.project_id == project_id, Person.external_id == external_id)
    )
    created = person is None
    if person is None:
        person = Person(project_id=project_id, external_id=external_id, properties={}, browser_properties={})
        db.session.add(person)
    changes = browser_identity_changes(person, user, allowed)
    email = changes.pop("email", None)
    if email is not None:
        taken = db.session.scalar(
            select(Person.id).where(Person.project_id == project_id, Person.email == email).limit(1)
        )
        if taken is None:
            person.email, person.email_from_browser = email, True
    for field, value in changes.items():
        setattr(person, field, value)
    if "browser_properties" in changes:
        flag_modified(person, "browser_properties")
    db.session.flush()
    return person, created
