"""A fixed-window request counter per project on the configured Redis; open when Redis is down."""

from __future__ import annotations

import logging
import time

from flask import current_app
from redis.exceptions import RedisError

from ..extensions import queues

log = logging.getLogger(__name__)
DEFAULT_LIMIT = 1000  # requests per window and project
DEFAULT_WINDOW = 60  # seconds
REDIS_RETRY_AFTER = 30  # seconds to stop asking a Redis that just failed


def retry_after(project_id: int) -> int | None:
    """Count this request; the seconds to wait when the project is over its limit, else None."""
    limit = int(current_app.config.get("DELIGHTED_RATE_LIMIT", DEFAULT_LIMIT))
    window = int(current_app.config.get("DELIGHTED_RATE_WINDOW", DEFAULT_WINDOW))
    if limit <= 0:
        return None
    state = current_app.extensions.setdefault("delighted_ratelimit", {"down_until": 0.0})
    now = time.time()
    if now < state["down_until"]:
        return None
    start = int(now // window) * window
    key = f"delighted:rate:{project_id}:{start}"
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
