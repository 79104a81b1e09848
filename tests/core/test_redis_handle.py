"""The app's Redis handle (extensions.RedisQueues) in a worker whose threads reach it at once."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator

import pytest
from flask import Flask
from redis import Redis

from survey_service.extensions import RedisQueues
from tests.support.concurrency import at_once

THREADS = 16


@pytest.fixture
def switching_often() -> Iterator[None]:
    """Hand the interpreter from thread to thread as often as it can: a race in a first use shows."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def test_threads_reaching_a_new_handle_at_once_share_one_client(
    app: Flask, redis_url: str, switching_often: None
) -> None:
    """A fresh worker's first requests come together. Each gets the one client: a second one made then
    would be dropped, and its __del__ closes its pool's connections under the thread still using one
    (the 500 "I/O operation on closed file" of an event's enqueue seen under load)."""
    for _ in range(5):
        handle = RedisQueues(app)  # as a worker has it after the fork: no client yet
        clients = at_once(functools.partial(_pinged, handle), THREADS)
        assert all(client is clients[0] for client in clients)
        handle.close()


def _pinged(handle: RedisQueues, _thread: int) -> Redis:
    """The handle's client, after a pipeline of one PING on it."""
    client = handle.redis
    with client.pipeline() as pipeline:
        pipeline.ping()
        assert pipeline.execute() == [True]
    return client
