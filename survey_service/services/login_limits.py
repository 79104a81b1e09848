"""Failed sign-in counting in Redis (fixed windows), with a per-process fallback when Redis is down."""

from __future__ import annotations

import logging
import threading
import time

from redis import RedisError

from ..extensions import queues

log = logging.getLogger(__name__)

WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_EMAIL = 10
MAX_FAILURES_PER_ADDRESS = 30

_memory: dict[str, tuple[float, int]] = {}
_lock = threading.Lock()


def _keys(email: str, address: str) -> list[tuple[str, int]]:
    return [
        (f"login-fail:email:{email.strip().lower()[:320]}", MAX_FAILURES_PER_EMAIL),
        (f"login-fail:addr:{address}", MAX_FAILURES_PER_ADDRESS),
    ]


def _memory_count(key: str, add: int) -> int:
    now = time.monotonic()
    with _lock:
        started, count = _memory.get(key, (now, 0))
        if now - started > WINDOW_SECONDS:
            started, count = now, 0
        count += add
        _memory[key] = (started, count)
        return count


def is_locked(email: str, address: str) -> bool:
    """Whether this email or client address has failed too often in the current window."""
    for key, limit in _keys(email, address):
        try:
            raw = queues().redis.get(key)
            count = int(raw or 0)  # type: ignore[arg-type]  # sync client: bytes or None
        except RedisError:
            log.warning("Redis unavailable for login limits; counting in process memory")
            count = _memory_count(key, 0)
        if count >= limit:
            return True
    return False


def record_failure(email: str, address: str) -> None:
    """Count one failed sign-in for the email and the address."""
    for key, _ in _keys(email, address):
        try:
            pipe = queues().redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS, nx=True)
            pipe.execute()
        except RedisError:
            _memory_count(key, 1)


def clear_failures(email: str) -> None:
    """Forget the email's failures after a successful sign-in."""
    key = _keys(email, "")[0][0]
    try:
        queues().redis.delete(key)
    except RedisError:
        with _lock:
            _memory.pop(key, None)
