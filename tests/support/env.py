"""The test run's environment: paths, the shared PostgreSQL and Redis, free ports, skips failing under CI."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the repository
DATA = ROOT / "tests" / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers the tests start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable(what: str, why: Exception, *, install: str = "") -> None:
    """Skip a test whose service is missing; under CI that is a failure, never a silent skip."""
    message = f"{what} is not reachable ({why.__class__.__name__}: {why})"
    if IN_CI:
        pytest.fail(message + " and CI=true requires it" + (f"; {install}" if install else ""))
    pytest.skip(message + (f"; {install}" if install else ""))


def wait_for(predicate: Callable[[], object], what: str, seconds: float = 90) -> None:
    """Poll until predicate() is true (a start-up wait, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen")
