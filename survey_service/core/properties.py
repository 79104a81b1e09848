"""Property names: one normalisation for every door (API, widget, Delighted API, CSV imports, reports);
and what a lifecycle event type may be, wherever events come in (the API, event sources).

A name is stripped, its runs of spaces and tabs become one `_`, and it is lower-cased: `" Plan "`, `"PLAN"`
and `"plan"` are one property, and Delighted's `"Purchase Experience"` is `purchase_experience`. What is left
must then be 1-64 of `a-z 0-9 _ . -` (not starting with `.` or `-`) at the strict doors (`/api/v1`, the
widget, reports); the Delighted doors, which accepted any printable name, keep the rest as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MAX_PROPERTY_KEY = 64
# What a normalised name may be at the strict doors (the OpenAPI document states it too).
PROPERTY_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.\-]{0,63}$")
# A lifecycle event type: lower-case snake_case (dots and dashes allowed), 1-64 characters.
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.\-]{0,63}$")
# Spaces and tabs inside a name; a line break or another control character stays, to be refused.
_WHITESPACE = re.compile(r"[ \t]+")


def normalize_property_name(name: str) -> str:
    """The one spelling of a property name: stripped, inner runs of spaces and tabs as `_`, lower-case."""
    return _WHITESPACE.sub("_", name.strip()).lower()


def is_property_name(name: str) -> bool:
    """Whether a normalised name is valid at the strict doors."""
    return PROPERTY_NAME.fullmatch(name) is not None


def normalized_columns(headers: Iterable[str]) -> dict[str, list[str]]:
    """A file's property columns grouped by their normalised name (in file order), empty names left out."""
    found: dict[str, list[str]] = {}
    for header in headers:
        name = normalize_property_name(header)[:MAX_PROPERTY_KEY]
        if name:
            found.setdefault(name, []).append(header)
    return found


def properties_from_columns(
    record: Mapping[str, str | None], columns: Mapping[str, list[str]], max_value: int = 500
) -> dict[str, str]:
    """One CSV line's properties: per normalised name, the first non-empty value among its columns."""
    found: dict[str, str] = {}
    for name, headers in columns.items():
        for header in headers:
            value = (record.get(header) or "").strip()
            if value:
                found[name] = value[:max_value]
                break
    return found
