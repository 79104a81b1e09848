"""One error shape for every failure: {"status", "code", "message", "details"}."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from survey_service.extensions import db

log = logging.getLogger(__name__)
# What a 503 tells clients to wait before retrying (a database restart takes seconds).
RETRY_AFTER_SECONDS = 5
# The database is down, restarting, refused the connection, or the pool had no connection free in time.
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeout)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error a service raises for a client to see, with a stable snake_case code."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    """Build the one JSON error response."""
    resp = jsonify({"status": status, "code": code, "message": message, "details": details})
    resp.status_code = status
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def rate_limited(wait: int, whose: str) -> Response:
    """The one 429 of a counted limit: wait seconds in `Retry-After` and `details.retry_after`."""
    message = f"Too many {whose}; retry in {wait} s."
    return error_response(429, "rate_limited", message, {"retry_after": wait}, {"Retry-After": str(wait)})


def from_http_exception(error: HTTPException) -> Response:
    """Render a werkzeug/webargs HTTPException in the one shape."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    details = data.get("errors") or data.get("messages")
    if isinstance(details, dict) and set(details) <= {"json", "query", "form", "headers", "files"}:
        # webargs nests errors by location; with one location the nesting is noise.
        details = next(iter(details.values())) if len(details) == 1 else details
    message = data.get("message")
    if not message and isinstance(details, list) and len(details) == 1 and isinstance(details[0], str):
        message, details = details[0], None  # e.g. webargs' "Invalid JSON body."
    message = message or error.description or error.name
    if status == 422 and not data.get("message"):
        message = "The request did not validate; see details."
    headers = dict(data.get("headers") or {})
    if status == 405 and error.get_headers():
        headers.update({k: v for k, v in error.get_headers() if k == "Allow"})
    return error_response(status, CODES.get(status, "error"), message, details, headers)


def database_unavailable(error: Exception, retry_after: int = RETRY_AFTER_SECONDS) -> Response:
    """The one 503: the database does not answer, nothing was acknowledged, the client should retry."""

    with contextlib.suppress(Exception):  # the connection may be gone already; nothing more to undo
        db.session.rollback()
    # The driver's text may name hosts: log only the class of the driver's (or SQLAlchemy's) error.
    log.warning("database unavailable: %s", type(getattr(error, "orig", None) or error).__name__)
    return error_response(
        503,
        "unavailable",
        "The database is unavailable; retry shortly.",
        headers={"Retry-After": str(retry_after)},
    )


def register_error_handlers(app: Flask) -> None:
    """Make every error, including unexpected ones, answer in the one shape."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error.status, error.code, error.message, error.details)

    @app.errorhandler(DataError)
    def _data_error(error: DataError) -> Response:
        # The schemas bound every field; this is the safety net for a value the database still
        # refuses (a NUL byte in text, a number out of its column's range): the client's fault.
        db.session.rollback()
        log.info("database refused a value: %s", error.orig.__class__.__name__)
        return error_response(422, "validation_error", "A value is not valid (out of range or not storable).")

    for down in DATABASE_DOWN:
        app.register_error_handler(down, database_unavailable)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return from_http_exception(error)
        # Never echo the exception to the client: it may carry SQL or secrets.
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong on our side.")
