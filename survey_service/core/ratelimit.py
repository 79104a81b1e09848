"""Rate limits: public pages (Flask-Limiter, keys in public.survey_pages), server APIs (per project).

The server APIs' counters fail open: when Redis is down the request goes through and a warning is
logged, so an outage of Redis never stops a product from recording answers.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from redis.exceptions import RedisError

from survey_service.extensions import queues

log = logging.getLogger(__name__)
DEFAULT_PUBLIC_LIMIT = "60 per minute;600 per hour"
REDIS_RETRY_AFTER = 30  # seconds to stop asking a Redis that just failed (each try may wait to time out)
# /api/v1 paths that read many rows per request: their own, tighter limit.
EXPENSIVE_API_PREFIXES = ("/api/v1/exports/", "/api/v1/reports/")


def fixed_window_wait(name: str, subject: str, limit: int, window: int) -> int | None:
    """Count one request of subject in the current window of `name`; seconds to wait when over limit.

    None when under the limit, when limit <= 0 (off), and when Redis is unavailable (fail open).
    """
    if limit <= 0:
        return None
    state = current_app.extensions.setdefault(f"{name}_ratelimit", {"down_until": 0.0})
    now = time.time()
    if now < state["down_until"]:
        return None
    start = int(now // window) * window
    key = f"{name}:rate:{subject}:{start}"
    try:
        pipe = queues().redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, window + 1)
        count = int(pipe.execute()[0])
    except (RedisError, OSError):
        # Rate limiting protects the service; it must never take the API down with it.
        log.warning("rate limiting skipped: Redis is unavailable", exc_info=True)
        state["down_until"] = now + REDIS_RETRY_AFTER
        return None
    if count <= limit:
        return None
    return max(int(start + window - now) + 1, 1)


def api_retry_after(subject: str, path: str) -> int | None:
    """Count a /api/v1 request of one project; seconds to wait when it is over its limit, else None."""
    config = current_app.config
    window = int(config.get("API_RATE_WINDOW", 60))
    if path.startswith(EXPENSIVE_API_PREFIXES):
        return fixed_window_wait("api-export", subject, int(config.get("API_EXPORT_RATE_LIMIT", 60)), window)
    return fixed_window_wait("api", subject, int(config.get("API_RATE_LIMIT", 600)), window)


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
