"""People: upsert by external id, else by email, with properties merged."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..errors import ApiError
from ..extensions import db
from ..models import Person


def find_person(project_id: int, external_id: str | None, email: str | None) -> Person | None:
    """The project's person with this external id, else with this email."""
    if external_id:
        person = db.session.scalar(
            select(Person).where(Person.project_id == project_id, Person.external_id == external_id)
        )
        if person is not None:
            return person
    if email:
        person = db.session.scalar(
            select(Person).where(Person.project_id == project_id, Person.email == email)
        )
        if person is not None and external_id and person.external_id not in (None, external_id):
            raise ApiError(
                409,
                "email_taken",
                "This email belongs to a person with another external_id.",
                {"email": email},
            )
        return person
    return None


def upsert_person(project_id: int, data: dict[str, Any]) -> tuple[Person, bool]:
    """Find or create the person described by data and apply its fields; flushes, does not commit.

    Properties merge into the stored ones; a property sent as null is removed.
    """
    external_id, email = data.get("external_id"), data.get("email")
    person = find_person(project_id, external_id, email)
    created = person is None
    if person is None:
        person = Person(project_id=project_id, properties={})
        db.session.add(person)
    if external_id:
        person.external_id = external_id
    if email and person.email != email:
        if not created and db.session.scalar(
            select(Person.id).where(Person.project_id == project_id, Person.email == email)
        ):
            raise ApiError(409, "email_taken", "This email belongs to another person.", {"email": email})
        person.email = email
    for field in ("name", "locale", "time_zone"):
        if field in data:
            setattr(person, field, data[field])
    if data.get("properties"):
        merged = dict(person.properties or {})
        for key, value in data["properties"].items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        person.properties = merged  # a new dict, so the JSON column sees the change
    db.session.flush()
    return person, created
