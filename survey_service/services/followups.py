"""Close the loop: the follow-up status, owner, notes and tags of one response."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from survey_service.core import clock
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Response
from survey_service.services.alerts import dispatch_response_event


def update_followup(project_id: int, response_id: int, changes: dict[str, Any]) -> Response:
    """Apply follow-up changes to a project's response; 404 for another project's id."""
    response = db.session.scalar(
        select(Response).where(Response.id == response_id, Response.project_id == project_id)
    )
    if response is None:
        raise ApiError(404, "not_found", "No such response.")
    for field in ("followup_status", "followup_owner", "followup_notes"):
        if field in changes:
            setattr(response, field, changes[field])
    if "followup_tags" in changes:
        # Keep the order given, drop repeats.
        response.followup_tags = list(dict.fromkeys(changes["followup_tags"]))
    response.updated_at = clock.now()
    db.session.commit()
    dispatch_response_event(project_id, response.id, "response.updated")
    return response
