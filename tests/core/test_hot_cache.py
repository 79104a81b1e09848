"""core/hot_cache: entries per app, kept for HOT_CACHE_SECONDS, forgotten on invalidate; misses never kept."""

from __future__ import annotations

from flask import Flask

from survey_service.core import hot_cache


def test_hot_cache_value_loaded_once_until_invalidated(app: Flask) -> None:
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    with app.app_context():
        app.config["HOT_CACHE_SECONDS"] = 60
        assert hot_cache.cached("t", "k", load) == 1
        assert hot_cache.cached("t", "k", load) == 1
        hot_cache.invalidate("t")
        assert hot_cache.cached("t", "k", load) == 2
        assert len(loads) == 2


def test_hot_cache_none_and_zero_seconds_are_never_kept(app: Flask) -> None:
    loads: list[int] = []

    def missing() -> None:
        loads.append(1)

    with app.app_context():
        app.config["HOT_CACHE_SECONDS"] = 60
        hot_cache.cached("t", "missing", missing)
        hot_cache.cached("t", "missing", missing)
        assert len(loads) == 2
        app.config["HOT_CACHE_SECONDS"] = 0
        assert [hot_cache.cached("t", "off", lambda: len(loads)) for _ in range(2)] == [2, 2]
        loads.append(1)
        assert hot_cache.cached("t", "off", lambda: len(loads)) == 3


def test_hot_cache_each_app_has_its_own(app: Flask, fresh_app: Flask) -> None:
    with app.app_context():
        app.config["HOT_CACHE_SECONDS"] = 60
        hot_cache.cached("t", "k", lambda: "first app")
    with fresh_app.app_context():
        fresh_app.config["HOT_CACHE_SECONDS"] = 60
        assert hot_cache.cached("t", "k", lambda: "second app") == "second app"
