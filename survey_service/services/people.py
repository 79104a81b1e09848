"""People: upsert by external id, else by email, with properties merged."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm.attributes import flag_modified

from ..errors import ApiError
from ..extensions import db
from ..models import Person


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


def upsert_person(project_id: int, data: dict[str, Any]) -> tuple[Person, bool]:
    """Find or create the person described by data and apply its fields; flushes, does not commit.

    Properties merge into the stored ones; a property sent as null is removed.
    """
    external_id, email = data.get("external_id"), data.get("email")
    by_external_id, by_email = _candidates(project_id, external_id, email)
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
    for field in ("name", "locale", "time_zone"):
        if field in data:
            setattr(person, field, data[field])
    if data.get("properties"):
        stored = person.properties or {}
        merged = dict(stored)
        for key, value in data["properties"].items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        if _as_json(merged) != _as_json(stored):
            person.properties = merged  # a new dict, so the JSON column sees the change
            # SQLAlchemy compares with ==, which takes true for 1 and 3.0 for 3: JSON does not.
            flag_modified(person, "properties")
    db.session.flush()
    return person, created
