"""Junk request bodies that must answer a client error in the one shape, never a 500, and HTTP Basic auth."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

ERROR_KEYS = {"status", "code", "message", "details"}
DEEP = 5000  # past Python's recursion limit: json.loads raises RecursionError
HUGE_INT = "9" * 5000  # past the int-to-str digit limit: json.loads raises ValueError


def _fill(body: dict[str, Any], text: str = '"x"', number: str = "9") -> str:
    """A door's body as JSON text with its SURROGATE and HUGE markers replaced."""
    return json.dumps(body).replace('"SURROGATE"', text).replace('"HUGE"', number)


def _nested(body: dict[str, Any], depth: int) -> str:
    return _fill(body)[:-1] + ', "junk": ' + "[" * depth + "]" * depth + "}"


# Junk made from a door's valid body: "SURROGATE" marks its strings, "HUGE" its numbers.
JUNK: dict[str, Callable[[dict[str, Any]], str]] = {
    "deep_nesting": lambda body: _nested(body, DEEP),
    "nesting_past_the_limit": lambda body: _nested(body, 65),
    "lone_surrogate": lambda body: _fill(body, text='"\\ud800"'),
    "surrogate_in_a_key": lambda body: _fill(body)[:-1] + ', "\\udc00": 1}',
    "huge_integer": lambda body: _fill(body, number=HUGE_INT),
    "long_integer": lambda body: _fill(body, number="-" + "1" * 30),
    "nan": lambda body: _fill(body, number="NaN"),
}
# For doors without markers (the fuzz run's operations): the junk as whole bodies.
GENERIC_BODY = {"name": "SURROGATE", "email": "a@b.co", "score": "HUGE", "id": "SURROGATE"}
JUNK_BODIES = {name: make(GENERIC_BODY) for name, make in JUNK.items()}


def basic(project: dict[str, Any]) -> dict[str, str]:
    """HTTP Basic with the secret key as user name, as the Delighted clients send it."""
    token = base64.b64encode(f"{project['secret_key']}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}
