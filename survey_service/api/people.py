"""People endpoints: upsert, look up by email or external id, fetch one."""

from __future__ import annotations

from typing import Any

from survey_service.api import api_blueprint, current_project_id
from survey_service.models import Person
from survey_service.schemas.people import PersonIn, PersonOut, PersonPage, PersonQuery
from survey_service.services.people import get_person as project_person
from survey_service.services.people import list_people, upsert_person
from survey_service.services.tx import commit_with_retry

bp = api_blueprint("people", __name__, "People who can be surveyed")


@bp.post("/people")
@bp.arguments(PersonIn)
@bp.response(200, PersonOut, description="the person, created (201) or updated (200)")
@bp.alt_response(201, schema=PersonOut, description="created")
def create_or_update_person(data: dict[str, Any]) -> tuple[Person, int]:
    """Create a person, or update the one with this external_id (else email)."""
    project_id = current_project_id()
    person, created = commit_with_retry(lambda: upsert_person(project_id, data))
    return person, 201 if created else 200


@bp.get("/people")
@bp.arguments(PersonQuery, location="query")
@bp.response(200, PersonPage)
def get_people(query: dict[str, Any]) -> dict[str, Any]:
    """List people newest first; `email` or `external_id` finds the person with exactly that value."""
    rows, next_cursor = list_people(current_project_id(), **query)
    return {"data": rows, "next_cursor": next_cursor}


@bp.get("/people/<int:person_id>")
@bp.response(200, PersonOut)
def get_person(person_id: int) -> Person:
    """Fetch one person of this project."""
    return project_person(current_project_id(), person_id)
