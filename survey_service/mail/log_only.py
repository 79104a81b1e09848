"""SMTP's stand-in when SMTP_URL is unset: the email is logged, not sent, its link tokens redacted."""

from __future__ import annotations

import logging
from email.message import EmailMessage

from survey_service.core.log_redaction import redact_tokens

# Headers worth seeing in a development log; the rest (Date, MIME plumbing) say nothing about the email.
LOGGED_HEADERS = ("From", "To", "Subject", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post")


def logged_text(message: EmailMessage) -> str:
    """The email as logged: its main headers and plain-text body, every link token replaced by [redacted]."""
    lines = [f"{name}: {message[name]}" for name in LOGGED_HEADERS if message[name] is not None]
    body = message.get_body(preferencelist=("plain",))
    # The decoded text, not message.as_string(): quoted-printable line breaks would split a token in two.
    text = body.get_content() if isinstance(body, EmailMessage) else "(no text part)"
    return redact_tokens("\n".join([*lines, "", text]))


def log_unsent(log: logging.Logger, message: EmailMessage, kind: str = "email") -> None:
    """Log, on the sender's logger, an email that is not sent because SMTP_URL is unset."""
    log.info("SMTP_URL is unset; the %s is logged, not sent:\n%s", kind, logged_text(message))
