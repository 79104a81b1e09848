"""A fixed-window request counter per project on the configured Redis; open when Redis is down."""

from __future__ import annotations

from flask import current_app

from survey_service.core.ratelimit import fixed_window_wait

DEFAULT_LIMIT = 1000  # requests per window and project
DEFAULT_WINDOW = 60  # seconds


def retry_after(project_id: int) -> int | None:
    """Count this request; the seconds to wait when the project is over its limit, else None."""
    limit = int(current_app.config.get("DELIGHTED_RATE_LIMIT", DEFAULT_LIMIT))
    window = int(current_app.config.get("DELIGHTED_RATE_WINDOW", DEFAULT_WINDOW))
    return fixed_window_wait("delighted", str(project_id), limit, window)
