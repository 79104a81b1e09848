"""Streamed exports of responses (CSV, JSON lines, promoters): constant memory, spreadsheet-safe cells."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, cast, func, select, true

from .. import nps
from ..extensions import db
from ..models import Person, Response
from .filters import ResponseFilter

# Rows fetched per round trip (a server-side cursor on PostgreSQL) and rows per yielded chunk.
FETCH_ROWS = 2000
CHUNK_ROWS = 500
MAX_PROPERTY_COLUMNS = 200
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

RESPONSE_COLUMNS = (
    "email",
    "name",
    "score",
    "comment",
    "created_at",
    "category",
    "channel",
    "external_id",
    "response_id",
)
PROMOTER_COLUMNS = (
    "email",
    "name",
    "score",
    "comment",
    "created_at",
    "reference_consent",
    "external_id",
    "response_id",
)


def safe_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: formula starts get a leading quote, numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def property_keys(flt: ResponseFilter) -> list[str]:
    """The distinct keys of the frozen properties of the filtered responses, sorted (no rows loaded)."""
    if db.engine.dialect.name == "postgresql":
        key = func.jsonb_object_keys(Response.properties).label("key")
        inner = select(key).where(*flt.conditions()).subquery()
        stmt = select(inner.c.key).distinct().order_by(inner.c.key).limit(MAX_PROPERTY_COLUMNS)
    else:
        each = func.json_each(Response.properties).table_valued("key")
        stmt = (
            select(cast(each.c.key, String).label("key"))
            .select_from(Response)
            .join(each, true())
            .where(*flt.conditions())
            .distinct()
            .order_by("key")
            .limit(MAX_PROPERTY_COLUMNS)
        )
    return [row.key for row in db.session.execute(stmt)]


def _rows(flt: ResponseFilter) -> Iterator[Any]:
    """The filtered responses with their person, oldest first, streamed in batches."""
    stmt = (
        select(
            Response.id,
            Response.score,
            Response.category,
            Response.comment,
            Response.channel,
            Response.properties,
            Response.reference_consent,
            Response.created_at,
            Person.email,
            Person.name,
            Person.external_id,
        )
        .join(Person, Person.id == Response.person_id)
        .where(*flt.conditions())
        .order_by(Response.created_at, Response.id)
        .execution_options(yield_per=FETCH_ROWS)
    )
    yield from db.session.execute(stmt)


class _Line:
    """A file-like object whose write() hands back the text, so csv.writer formats one row at a time."""

    def write(self, text: str) -> str:
        return text


def _header(fixed: tuple[str, ...], keys: list[str]) -> list[str]:
    # A property named like a fixed column gets a prefix instead of shadowing it.
    return [*fixed, *(f"property.{k}" if k in fixed else k for k in keys)]


def _fixed_values(row: Any) -> dict[str, Any]:
    return {
        "email": row.email,
        "name": row.name,
        "score": row.score,
        "comment": row.comment,
        "created_at": _iso(row.created_at),
        "category": row.category,
        "channel": row.channel,
        "external_id": row.external_id,
        "response_id": row.id,
        "reference_consent": row.reference_consent,
    }


def _csv(flt: ResponseFilter, fixed: tuple[str, ...]) -> Iterator[str]:
    keys = property_keys(flt)
    writer = csv.writer(_Line())
    yield writer.writerow([safe_cell(h) for h in _header(fixed, keys)])
    chunk: list[str] = []
    for row in _rows(flt):
        values = _fixed_values(row)
        props = row.properties or {}
        cells = [safe_cell(values[c]) for c in fixed] + [safe_cell(props.get(k)) for k in keys]
        chunk.append(writer.writerow(cells))
        if len(chunk) >= CHUNK_ROWS:
            yield "".join(chunk)
            chunk.clear()
    if chunk:
        yield "".join(chunk)


def responses_csv(flt: ResponseFilter) -> Iterator[str]:
    """CSV text chunks: header, then one row per response with its frozen properties as columns."""
    return _csv(flt, RESPONSE_COLUMNS)


def promoters_csv(flt: ResponseFilter) -> Iterator[str]:
    """CSV for marketing: promoters only, with contact data, comment, consent and segment values."""
    return _csv(ResponseFilter(**{**flt.__dict__, "category": nps.PROMOTER}), PROMOTER_COLUMNS)


def responses_jsonl(flt: ResponseFilter) -> Iterator[str]:
    """JSON lines: one object per response (JSON needs no formula escaping; values keep their types)."""
    chunk: list[str] = []
    for row in _rows(flt):
        values = _fixed_values(row)
        values["properties"] = row.properties or {}
        chunk.append(json.dumps(values, ensure_ascii=False, separators=(",", ":")) + "\n")
        if len(chunk) >= CHUNK_ROWS:
            yield "".join(chunk)
            chunk.clear()
    if chunk:
        yield "".join(chunk)
