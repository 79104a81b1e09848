"""Header text from user input: what can go into an email header without breaking the message."""

from __future__ import annotations

import re

# Line breaks and other control characters: a header holding one cannot be sent (EmailMessage refuses it).
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def header_safe(text: str) -> str:
    """Text fit for a header: control characters and line breaks become one space."""
    return _CONTROL.sub(" ", text).strip()
