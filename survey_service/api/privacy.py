"""Privacy endpoints: export everything about one person, erase one person."""

from __future__ import annotations

from typing import Any

from survey_service.api import api_blueprint, current_project_id
from survey_service.services.privacy import erase_person, export_person

bp = api_blueprint("privacy", __name__, "Privacy: a person's data export and erasure")


@bp.get("/people/<int:person_id>/export")
@bp.response(200)
def export_person_data(person_id: int) -> dict[str, Any]:
    """Everything stored about a person, as one JSON document."""
    return export_person(current_project_id(), person_id)


@bp.delete("/people/<int:person_id>")
@bp.response(200)
def erase_person_data(person_id: int) -> dict[str, Any]:
    """Erase a person, their rows of every person-owned table (the export's lists) and their queued jobs."""
    return {"erased": True, "counts": erase_person(current_project_id(), person_id)}
