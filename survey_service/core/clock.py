"""The service's clock: real UTC time, or a frozen instant set in config (tests, demos, replays)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, has_app_context


def now() -> datetime:
    """The current instant, honouring app.config["FROZEN_NOW"] when set."""
    if has_app_context():
        frozen: datetime | None = current_app.config.get("FROZEN_NOW")
        if frozen is not None:
            return frozen
    return datetime.now(UTC)  # as models.utcnow; core never imports models
