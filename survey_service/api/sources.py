"""Event sources for the project's server (secret key): create, list, change, rotate, delete."""

from __future__ import annotations

from typing import Any

from flask import Response as FlaskResponse

from survey_service.api import api_blueprint, current_project, current_project_id
from survey_service.models import EventSource
from survey_service.sources import service
from survey_service.sources.schemas import (
    RotateIn,
    SourceCreated,
    SourceDetail,
    SourceIn,
    SourceList,
    SourceOut,
    SourcePatch,
)

bp = api_blueprint("sources", __name__, "Event sources: provider webhooks (Segment, Stripe, Zendesk, …)")


def _shown(source: EventSource, **extra: Any) -> dict[str, Any]:
    """A source as the API shows it (its URL built from BASE_URL)."""
    fields = ("id", "kind", "name", "mapping", "enabled", "created_at", "last_received_at")
    return {
        **{name: getattr(source, name) for name in fields},
        "previous_secret_expires_at": source.previous_secret_expires_at,
        "url": service.source_url(source),
        **extra,
    }


@bp.post("/sources")
@bp.arguments(SourceIn)
@bp.response(201, SourceCreated)
def create_source(data: dict[str, Any]) -> dict[str, Any]:
    """Create an event source; the answer carries its URL and signing secret (shown only now)."""
    created = service.create_source(current_project(), data)
    return _shown(created.source, signing_secret=created.signing_secret or None)


@bp.get("/sources")
@bp.response(200, SourceList)
def list_sources() -> dict[str, Any]:
    """The project's event sources, oldest first."""
    return {"data": [_shown(source) for source in service.list_sources(current_project_id())]}


@bp.get("/sources/<int:source_id>")
@bp.response(200, SourceDetail)
def get_source(source_id: int) -> dict[str, Any]:
    """One event source with its newest deliveries (accepted, duplicate, ignored, refused)."""
    source = service.project_source(current_project_id(), source_id)
    return _shown(source, recent_deliveries=service.recent_deliveries(source.id))


@bp.patch("/sources/<int:source_id>")
@bp.arguments(SourcePatch)
@bp.response(200, SourceOut)
def patch_source(data: dict[str, Any], source_id: int) -> dict[str, Any]:
    """Change a source's name, mapping or whether it is enabled."""
    return _shown(service.update_source(current_project_id(), source_id, data))


@bp.post("/sources/<int:source_id>/rotate_secret")
@bp.arguments(RotateIn)
@bp.response(200, SourceCreated)
def rotate_source_secret(data: dict[str, Any], source_id: int) -> dict[str, Any]:
    """Replace the signing secret; the previous one keeps verifying for grace_hours."""
    rotated = service.rotate_secret(
        current_project_id(), source_id, data.get("signing_secret"), data["grace_hours"]
    )
    return _shown(rotated.source, signing_secret=rotated.signing_secret)


@bp.delete("/sources/<int:source_id>")
@bp.response(204)
def delete_source(source_id: int) -> FlaskResponse:
    """Delete a source: its URL answers 404 from now on; the events it recorded stay."""
    service.delete_source(current_project_id(), source_id)
    return FlaskResponse(status=204)
