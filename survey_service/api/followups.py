"""Follow-up endpoint: status, owner, notes and tags of a response (close the loop)."""

from __future__ import annotations

from typing import Any

from survey_service.api import api_blueprint, current_project_id
from survey_service.models import Response
from survey_service.schemas.followups import FollowupIn
from survey_service.schemas.responses import ResponseOut
from survey_service.services.followups import update_followup

bp = api_blueprint("followups", __name__, "Follow-up of responses: new → contacted → resolved")


@bp.patch("/responses/<int:response_id>")
@bp.arguments(FollowupIn)
@bp.response(200, ResponseOut)
def patch_response(changes: dict[str, Any], response_id: int) -> Response:
    """Set a response's follow-up status, owner, notes or tags."""
    return update_followup(current_project_id(), response_id, changes)
