"""SMTP's stand-in when SMTP_URL is unset: the email is kept as a file under `instance/outbox/`, not sent.

Each email becomes two files, both readable by the service's user only (0600):

- `<timestamp>-<name>.eml`: the whole message, as SMTP would have sent it (open it in a mail client);
- `<timestamp>-<name>.txt`: its main headers and decoded plain-text body, so the live score links can be
  clicked in development.

The log gets one line: recipient, subject and the two paths, never a live link (docs/security.md, logging
policy): the links stay in files only the service's user can read.
"""

from __future__ import annotations

import logging
import os
import re
from email.message import EmailMessage
from pathlib import Path

from flask import current_app

from survey_service.core import clock

# Headers worth seeing in a development file; the rest (Date, MIME plumbing) say nothing about the email.
SHOWN_HEADERS = ("From", "To", "Subject", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post")
OUTBOX_DIR = "outbox"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def readable_text(message: EmailMessage) -> str:
    """The main headers and the decoded plain-text body, its links whole (not quoted-printable)."""
    lines = [f"{name}: {message[name]}" for name in SHOWN_HEADERS if message[name] is not None]
    body = message.get_body(preferencelist=("plain",))
    # The decoded text, not message.as_string(): quoted-printable line breaks would split every link.
    text = body.get_content() if isinstance(body, EmailMessage) else "(no text part)"
    return "\n".join([*lines, "", text])


def outbox_dir() -> Path:
    """Where unsent emails are kept: `<INSTANCE_PATH>/outbox`."""
    return Path(current_app.instance_path) / OUTBOX_DIR


def _write_private(path: Path, data: bytes) -> None:
    """Create the file readable and writable by its owner only, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def keep_unsent(message: EmailMessage, name: str) -> tuple[Path, Path]:
    """Write the message as `<timestamp>-<name>.eml` plus its readable `.txt`; returns both paths."""
    folder = outbox_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = clock.now().strftime("%Y%m%dT%H%M%S.%fZ")
    stem = f"{stamp}-{_UNSAFE_NAME.sub('_', name)[:80]}"
    eml, txt = folder / f"{stem}.eml", folder / f"{stem}.txt"
    _write_private(eml, message.as_bytes())
    _write_private(txt, readable_text(message).encode("utf-8"))
    return eml, txt


def log_unsent(
    log: logging.Logger, message: EmailMessage, name: str, kind: str = "email"
) -> tuple[Path, Path]:
    """Keep an email that is not sent because SMTP_URL is unset, and log one line saying where it is."""
    eml, txt = keep_unsent(message, name)
    log.info(
        "SMTP_URL is unset; %s to %s (%s) not sent, kept in %s; its links are in %s",
        kind,
        message["To"],
        message["Subject"],
        eml,
        txt,
    )
    return eml, txt
