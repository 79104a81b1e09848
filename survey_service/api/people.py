"""People endpoints."""

from __future__ import annotations

from typing import Any

from survey_service.api import api_blueprint, current_project
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Person
from survey_service.schemas.people import PersonIn, PersonOut
from survey_service.services.people import upsert_person
from survey_service.services.tx import commit_with_retry

bp = api_blueprint("people", __name__, "People who can be surveyed")


@bp.post("/people")
@bp.arguments(PersonIn)
@bp.response(200, PersonOut, description="the person, created (201) or updated (200)")
@bp.alt_response(201, schema=PersonOut, description="created")
def create_or_update_person(data: dict[str, Any]) -> tuple[Person, int]:
    """Create a person, or update the one with this external_id (else email)."""
    project_id = current_project().id
    person, created = commit_with_retry(lambda: upsert_person(project_id, data))
    return person, 201 if created else 200


@bp.get("/people/<int:person_id>")
@bp.response(200, PersonOut)
def get_person(person_id: int) -> Person:
    """Fetch one person of this project."""
    person = db.session.get(Person, person_id)
    if person is None or person.project_id != current_project().id:
        raise ApiError(404, "not_found", "No such person.")
    return person
