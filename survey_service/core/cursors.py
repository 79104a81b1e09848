"""Opaque paging cursors: an id behind a tag, base64url-encoded; anything else is a 422."""

from __future__ import annotations

import base64
import binascii

from survey_service.errors import ApiError


def encode(tag: str, last_id: int) -> str:
    """The cursor of the page after the row with this id."""
    return base64.urlsafe_b64encode(f"{tag}{last_id}".encode()).decode().rstrip("=")


def decode(tag: str, token: str, field: str) -> int:
    """The id a cursor names; a malformed or foreign cursor is a validation error on `field`."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith(tag) or not raw[len(tag) :].isdigit():
            raise ValueError(raw)
        return int(raw[len(tag) :])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(422, "validation_error", f"{field}: not valid.", {field: ["Not valid."]}) from None
