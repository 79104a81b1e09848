"""Limits on JSON request bodies, checked once for every door before any view parses the body.

Each door parses bodies its own way (webargs for /api/v1, Flask's get_json for /v1/, the widget's
text/plain body), and Python's json module accepts things the rest of the code cannot hold: nesting
that exhausts the stack, integers past the int-to-str digit limit, NaN, lone UTF-16 surrogates that
no database or HMAC can encode. A before_request hook parses every non-form body here first and
answers 400/422 in the one error shape; the widget reads the parsed body from `json_body()`.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from survey_service.errors import ApiError, error_response

# Deeper than any body the API documents (properties are flat; the deepest is ~4 levels).
MAX_DEPTH = 64
# Integers within a signed 64-bit range; ids, scores and counts are far smaller.
MAX_INT = 2**63 - 1
# Bodies the hook leaves to werkzeug's form parser (which never yields surrogates or nesting).
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_UNSET = object()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bad_body(message: str, details: Any = None) -> ApiError:
    return ApiError(400, "bad_request", message, details)


def parse_json(raw: bytes) -> Any:
    """Parse a JSON body within the limits; ApiError (400 or 422) when it is not within them.

    Text that is simply not JSON raises json.JSONDecodeError, left to each door to answer as before.
    """
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError:
        raise  # a ValueError too, but the door's own answer to "not JSON" stays
    except RecursionError:
        raise _bad_body(f"The body nests deeper than {MAX_DEPTH} levels.") from None
    except ValueError:
        # The int-to-str digit limit, NaN/Infinity, bytes that are not UTF-8: never the client's text.
        raise _bad_body("The body is not valid JSON (UTF-8 text, no NaN, integers within 64 bits).") from None
    check_value(data)
    return data


def check_value(data: Any) -> None:
    """Raise ApiError for nesting deeper than MAX_DEPTH, a huge integer or a lone surrogate anywhere."""
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(data, 1, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, dict):
            _check_depth(depth)
            for key, value in item.items():
                _check_text(key, path)
                stack.append((value, depth + 1, (*path, key)))
        elif isinstance(item, list):
            _check_depth(depth)
            stack.extend((value, depth + 1, (*path, i)) for i, value in enumerate(item))
        elif isinstance(item, int) and not -MAX_INT - 1 <= item <= MAX_INT:
            raise ApiError(
                422,
                "validation_error",
                "A number is out of range.",
                {_where(path): [f"Integers are within ±{MAX_INT}."]},
            )


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _bad_body(f"The body nests deeper than {MAX_DEPTH} levels.")


def _check_text(text: str, path: tuple[str | int, ...]) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (\ud800 escaped in JSON): valid JSON, but no UTF-8 text can hold it.
        raise ApiError(
            422,
            "validation_error",
            "A string holds an unpaired UTF-16 surrogate.",
            {_where(path): ["Not valid Unicode text."]},
        ) from None


def _where(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path) or "_body"


def json_body() -> Any:
    """The request's JSON body, parsed once within the limits (json.JSONDecodeError when not JSON)."""
    parsed = g.get("json_body", _UNSET)
    if parsed is _UNSET:
        parsed = parse_json(request.get_data())
        g.json_body = parsed
    return parsed


def check_request_body() -> None:
    """before_request: hold every non-form body with content to the limits, whatever its door."""
    if request.mimetype in FORM_TYPES or not request.get_data():
        return
    try:
        json_body()
    except json.JSONDecodeError:
        return  # not JSON at all: the door answers as it always did


def too_large_message(limit: int) -> str:
    """The 413's message, naming the limit a body exceeded."""
    size = f"{limit // 1024} KiB" if limit % 1024 == 0 else f"{limit} bytes"
    return f"The request body is larger than the limit of {size} ({limit} bytes)."


def too_large(error: RequestEntityTooLarge) -> Response:
    """The 413 of a body over MAX_CONTENT_LENGTH, in the one shape and naming the limit."""
    limit = int(current_app.config.get("MAX_CONTENT_LENGTH") or 0)
    message = too_large_message(limit) if limit else "The request body is too large."
    return error_response(413, "payload_too_large", message, {"max_bytes": limit} if limit else None)


def init_app(app: Flask) -> None:
    """Check request bodies before any blueprint's own hooks or views."""
    app.before_request(check_request_body)
    app.register_error_handler(RequestEntityTooLarge, too_large)
