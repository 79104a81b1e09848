"""Reading the cells of Delighted's CSV exports (header spellings, dates, emails), shared by the responses
importer (importer.py) and the people importer (people_import.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from marshmallow import validate

from survey_service.core import instants

DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S %Z",
    "%Y-%m-%d %H:%M %z",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
)
email = validate.Email()


def header_key(header: str) -> str:
    """A header compared case-insensitively, spaces and underscores alike."""
    return re.sub(r"[\s_]+", " ", header.strip().lower())


def parse_moment(value: str) -> datetime | None:
    """A Unix timestamp, ISO 8601, or one of Delighted's export date formats; naive means UTC.

    None when unreadable or outside instants.check_fact's range (every imported date is a fact).
    """
    value = value.strip()
    if not value:
        return None
    if re.fullmatch(r"[0-9]{9,11}", value):
        return _fact(datetime.fromtimestamp(int(value), UTC))
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        for fmt in DATE_FORMATS:
            try:
                parsed = _strptime_aware(value.replace(" UTC", " +0000"), fmt)
                break
            except (ValueError, OverflowError):  # unreadable, or an offset moving year 1/9999 out of range
                continue
    if parsed is None:
        return None
    try:
        return _fact(parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC))
    except OverflowError:  # an offset moving year 1 or 9999 out of datetime's range
        return None


def _strptime_aware(text: str, fmt: str) -> datetime:
    """strptime with the offset the text gives (a format with %z), else UTC (a naive export time is UTC)."""
    if "%z" in fmt:
        return datetime.strptime(text, fmt).astimezone(UTC)
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def _fact(moment: datetime) -> datetime | None:
    try:
        return instants.check_fact(moment)
    except instants.OutOfRange:
        return None
