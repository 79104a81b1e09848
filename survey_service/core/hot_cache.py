"""Short-lived per-process caches of what the write hot paths read on every request.

Recording a response or an event used to read, on every request, rows that change a few times a year:
the project behind a secret key, the project's enabled alert rules, the trigger rules of an event type.
Each read is a database round trip, which on the recording path cost as much as the write itself.

Each cache lives in `app.extensions` (one per app: tests build many apps whose ids repeat) and keeps an
entry for `HOT_CACHE_SECONDS` (monotonic time). The service that changes a cached row clears the cache
in its own process at once (`invalidate`); other processes see the change when their entry expires, so
`HOT_CACHE_SECONDS` is the documented bound for a change made elsewhere (a rotated-out key refused, a
new alert rule firing). `HOT_CACHE_SECONDS = 0` turns every cache off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from flask import current_app

T = TypeVar("T")

# A bound on entries per cache, so a spray of distinct keys cannot grow a worker's memory without limit.
MAX_ENTRIES = 10_000
EXTENSION = "hot_caches"


class TtlCache:
    """Values by key, each kept `seconds` after it was loaded; safe to share between threads."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T], seconds: float) -> T:
        """The cached value of key, else load() (cached unless it returned None, or seconds is 0)."""
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            value: T = entry[1]
            return value
        loaded = load()
        if loaded is not None and seconds > 0:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = (now + seconds, loaded)
        return loaded

    def invalidate(self) -> None:
        """Forget every entry (the next get of any key loads again)."""
        with self._lock:
            self._entries.clear()


def cache(name: str) -> TtlCache:
    """The current app's cache called name."""
    caches: dict[str, TtlCache] = current_app.extensions.setdefault(EXTENSION, {})
    found = caches.get(name)
    if found is None:
        found = caches.setdefault(name, TtlCache())
    return found


def cached(name: str, key: Hashable, load: Callable[[], T]) -> T:
    """cache(name).get(key, load) for the app's HOT_CACHE_SECONDS."""
    return cache(name).get(key, load, float(current_app.config.get("HOT_CACHE_SECONDS", 0)))


def invalidate(name: str) -> None:
    """Forget the current app's cache called name (a service changed what it holds)."""
    cache(name).invalidate()
