"""Rate limits for the public pages (Flask-Limiter) on the configured Redis, falling back to memory."""

from __future__ import annotations

from flask import Blueprint, Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

DEFAULT_PUBLIC_LIMIT = "60 per minute;600 per hour"


def storage_uri(redis_url: str | None) -> str:
    """The limits storage URI for REDIS_URL; memory when there is no Redis URL (plain `flask run`)."""
    if not redis_url:
        return "memory://"
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url


def init_limiter(app: Flask, *blueprints: Blueprint) -> Limiter:
    """Create the app's limiter (one per app, in app.extensions) and limit the given blueprints."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_uri(app.config.get("REDIS_URL")))
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 1, "socket_timeout": 1})
    # If Redis is down, count in memory per process rather than fail the page or stop limiting.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "survey-limits")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limit = app.config.get("PUBLIC_RATE_LIMIT", DEFAULT_PUBLIC_LIMIT)
    limiter = Limiter(get_remote_address, app=app)
    for bp in blueprints:
        limiter.limit(limit)(bp)
    app.extensions["survey_limiter"] = limiter
    return limiter
