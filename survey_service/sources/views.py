"""The public receiver: a provider posts its own webhook payloads to /sources/<token>."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from survey_service.errors import rate_limited
from survey_service.sources import service
from survey_service.sources.base import Delivery

bp = Blueprint("source_receiver", __name__)


@bp.post(service.RECEIVER_PREFIX + "<token>")
def receive(token: str) -> Response | tuple[dict[str, Any], int]:
    """Verify a provider's delivery and record what it maps to (200 even when nothing maps)."""
    source, project = service.source_for_token(token)
    wait = service.retry_after(source)
    if wait is not None:
        return rate_limited(wait, "deliveries to this source")
    delivery = Delivery(
        method=request.method,
        # HubSpot signs the URL it called: the public one (BASE_URL), whatever proxy sits in between.
        url=str(current_app.config["BASE_URL"]).rstrip("/") + request.full_path.rstrip("?"),
        body=request.get_data(),
        headers={name.lower(): value for name, value in request.headers.items()},
        authorization=request.headers.get("Authorization", ""),
    )
    return service.receive(source, project, delivery).as_dict(), 200


def init_app(app: Flask) -> None:
    """Register the public receiver (/sources/<token>); the settings API lives in api/sources."""
    app.register_blueprint(bp)
