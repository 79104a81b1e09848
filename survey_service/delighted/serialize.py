"""Delighted's JSON shapes: string ids, Unix timestamps, empty notes/tags."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from survey_service.delighted.service import Activity
from survey_service.models import Person, Response


def unix(moment: datetime | None) -> int | None:
    """Seconds since the epoch, as Delighted returned every time."""
    return None if moment is None else int(moment.timestamp())


def person_json(person: Person, seen: Activity) -> dict[str, Any]:
    """A person as GET /v1/people lists them (plus their current properties).

    `seen` comes from `service.activity`, the one place that works out last sent, last responded and
    next scheduled: every shape holding a person (lists, expanded responses, autopilot) shows the same.
    """
    return {
        "id": str(person.id),
        "email": person.email,
        "name": person.name,
        "created_at": unix(person.created_at),
        "phone_number": person.phone_number,
        "last_sent_at": unix(seen.last_sent_at),
        "last_responded_at": unix(seen.last_responded_at),
        "next_survey_scheduled_at": unix(seen.next_survey_scheduled_at),
        "properties": dict(person.properties or {}),
    }


def response_json(response: Response, survey_type: str, *, seen: Activity | None) -> dict[str, Any]:
    """A survey response as Delighted returned it; `person` is the id unless expanded (`seen` given)."""
    return {
        "id": str(response.id),
        "person": person_json(response.person, seen) if seen is not None else str(response.person_id),
        "survey_type": survey_type,
        "score": response.score,
        "comment": response.comment,
        "permalink": None,
        "created_at": unix(response.created_at),
        "updated_at": unix(response.updated_at),
        # Delighted sent null, not {}, for a response without properties.
        "person_properties": dict(response.properties) if response.properties else None,
        "notes": [],
        "tags": [],
        "additional_answers": [],
    }
