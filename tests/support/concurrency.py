"""Run the same work in several threads released at once: races between workers, in one test process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from flask import Flask

from survey_service.extensions import db

T = TypeVar("T")


def at_once(work: Callable[[int], T], count: int, app: Flask | None = None, timeout: float = 120) -> list[T]:
    """work(0) … work(count - 1), each in a thread of its own, all released together at a barrier.

    With `app`, each thread runs in an app context of its own (its own session, its own database
    connection, as each gunicorn thread or RQ worker has) and removes its session at the end. Returns the
    results in the order of the numbers; an exception in any thread, or a thread still running after
    `timeout` seconds, fails the caller.
    """
    start = threading.Barrier(count)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            if app is None:
                start.wait(timeout)
                results[number] = work(number)
                return
            with app.app_context():
                try:
                    start.wait(timeout)
                    results[number] = work(number)
                finally:
                    db.session.remove()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads), f"a thread still ran after {timeout} s"
    return [results[number] for number in range(count)]
