"""Keeps survey-link tokens out of every log line: access logs, werkzeug's request log and our own records.

A token in /s/, /u/, /o/ or /r/ is a credential: whoever reads it can answer for the person, unsubscribe
them, or (/r/, a dashboard password reset link) set a dashboard user's password; one in /review/ or
/review/go/ (the promoter loop) agrees to leave a review, or follows a review link, for the person.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

REDACTED = "[redacted]"
# The path segment after /s/, /u/, /o/ or /r/, wherever it appears: a bare path, a request line, a full link.
# Redacting a harmless look-alike (e.g. a "/s/" inside another path) costs nothing; missing a token would.
TOKEN_PATH = re.compile(r"/(review/go|review|[suor])/[^\s/?#\"'<>]+")

_installed = False
_install_lock = threading.Lock()


def redact_tokens(text: str) -> str:
    """The text with the token of every survey, unsubscribe and open-pixel path replaced by [redacted]."""
    return TOKEN_PATH.sub(rf"/\1/{REDACTED}", text)


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 (a bad format string is the handler's to report, not ours)
        return
    redacted = redact_tokens(message)
    if redacted != message:
        record.msg, record.args = redacted, ()
    if record.exc_info and not record.exc_text:
        # Formatters reuse exc_text: a traceback naming a token is formatted once here, redacted; others are
        # left to the handler's own formatter.
        trace = logging.Formatter().formatException(record.exc_info)
        if redact_tokens(trace) != trace:
            record.exc_text = redact_tokens(trace)


def install_log_redaction() -> None:
    """Redact tokens in every log record this process creates (idempotent).

    A record factory rather than a handler filter: it covers every logger and handler, including
    gunicorn's access and error logs, werkzeug's request log, RQ's and pytest's capture.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
