"""Streamed exports of responses (CSV, JSON lines, promoters): constant memory, spreadsheet-safe cells."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Response as HttpResponse
from flask import stream_with_context
from sqlalchemy import String, case, cast, func, literal, select, true

from survey_service.core import clock, nps
from survey_service.extensions import db
from survey_service.models import Person, Response
from survey_service.reporting import rollups
from survey_service.reporting.filters import ResponseFilter

# Rows fetched per round trip (a server-side cursor on PostgreSQL) and rows per yielded chunk.
FETCH_ROWS = 2000
CHUNK_ROWS = 500
COPY_CHUNK_BYTES = 16 * 1024
MAX_PROPERTY_COLUMNS = 200
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The download formats, shared by /api/v1/exports and the dashboard's export links.
CSV = "csv"
JSONL = "jsonl"
CONTENT_TYPES = {CSV: "text/csv; charset=utf-8", JSONL: "application/x-ndjson; charset=utf-8"}

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
    "review_link_clicked_at",
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
    # The promoter loop (services/promoters.py): who was offered a review, agreed, followed a link.
    "review_asked_at",
    "review_consented_at",
    "review_link_clicked_at",
)
REVIEW_COLUMNS = ("review_asked_at", "review_consented_at", "review_link_clicked_at")


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
    # Whole seconds, the same text PostgreSQL's to_char produces on the COPY path.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else _iso(moment)


def property_keys(flt: ResponseFilter, sample: int | None = None) -> list[str]:
    """The distinct keys of the frozen properties of the filtered responses, sorted (no rows loaded).

    With sample, only the newest `sample` responses are looked at: enough for a picker, and cheap.
    """
    conds = flt.conditions()
    known: set[str] = set()
    if not sample and not flt.where and rollups.can_answer(flt):
        first, last = rollups.full_days(flt.since, flt.until)
        days, known = rollups.keys(
            flt.project_id, first, last, survey_id=flt.survey_id, channel=flt.channel, category=flt.category
        )
        rest = rollups.outside(days, flt.since, flt.until) if days else None
        if rest is None:
            known = set()
        else:
            conds = [*conds, rest]  # the closed days' names came from the rollups: scan the rest
    # One pass over the rows: selecting ids first and the properties by id fetched each row twice.
    source = select(Response.properties).where(*conds)
    if sample:
        source = source.order_by(Response.created_at.desc()).limit(sample)
    rows = source.subquery()
    if db.engine.dialect.name == "postgresql":
        inner = select(func.jsonb_object_keys(rows.c.properties).label("key")).subquery()
        stmt = select(inner.c.key).distinct().order_by(inner.c.key).limit(MAX_PROPERTY_COLUMNS)
    else:
        each = func.json_each(rows.c.properties).table_valued("key")
        stmt = (
            select(cast(each.c.key, String).label("key"))
            .select_from(rows)
            .join(each, true())
            .distinct()
            .order_by("key")
            .limit(MAX_PROPERTY_COLUMNS)
        )
    found = known | {row.key for row in db.session.execute(stmt)}
    return sorted(found)[:MAX_PROPERTY_COLUMNS]


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
            Response.review_asked_at,
            Response.review_consented_at,
            Response.review_link_clicked_at,
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
        **{column: _iso_or_none(getattr(row, column)) for column in REVIEW_COLUMNS},
    }


def _csv(flt: ResponseFilter, fixed: tuple[str, ...]) -> Iterator[bytes]:
    keys = property_keys(flt)
    header = [safe_cell(h) for h in _header(fixed, keys)]
    if db.engine.dialect.name == "postgresql":
        # COPY ends lines with \n; property names never hold a line break, so the header may too.
        yield csv.writer(_Line(), lineterminator="\n").writerow(header).encode()
        yield from _copy_rows(flt, fixed, keys)
        return
    # RFC 4180 line ends (\r\n): the csv module then quotes any cell holding a bare \r or \n.
    writer = csv.writer(_Line())
    yield writer.writerow(header).encode()
    chunk: list[str] = []
    for row in _rows(flt):
        values = _fixed_values(row)
        props = row.properties or {}
        cells = [safe_cell(values[c]) for c in fixed] + [safe_cell(props.get(k)) for k in keys]
        chunk.append(writer.writerow(cells))
        if len(chunk) >= CHUNK_ROWS:
            yield "".join(chunk).encode()
            chunk.clear()
    if chunk:
        yield "".join(chunk).encode()


def _sql_text(expr: Any) -> Any:
    """The SQL twin of safe_cell for text: a leading quote before formula starts."""
    return case((func.left(expr, 1).in_(FORMULA_STARTS), literal("'", String) + expr), else_=expr)


def _sql_utc(column: Any) -> Any:
    return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')


def _sql_columns(fixed: tuple[str, ...], keys: list[str]) -> list[Any]:
    utc = _sql_utc(Response.created_at)
    consent = case(
        (Response.reference_consent.is_(True), "true"), (Response.reference_consent.is_(False), "false")
    )
    columns = {
        "email": _sql_text(Person.email),
        "name": _sql_text(Person.name),
        "score": Response.score,
        "comment": _sql_text(Response.comment),
        "created_at": utc,
        "category": Response.category,
        "channel": Response.channel,
        "external_id": _sql_text(Person.external_id),
        "response_id": Response.id,
        "reference_consent": consent,
        **{column: _sql_utc(getattr(Response, column)) for column in REVIEW_COLUMNS},
    }
    props = [
        case(
            (func.jsonb_typeof(Response.properties[k]) == "number", Response.properties[k].as_string()),
            else_=_sql_text(Response.properties[k].as_string()),
        )
        for k in keys
    ]
    return [columns[c] for c in fixed] + props


def _copy_rows(flt: ResponseFilter, fixed: tuple[str, ...], keys: list[str]) -> Iterator[bytes]:
    """PostgreSQL writes the CSV itself (COPY … TO STDOUT): same cells as the Python path, far faster."""
    stmt = (
        select(*_sql_columns(fixed, keys))
        .join(Person, Person.id == Response.person_id)
        .where(*flt.conditions())
        .order_by(Response.created_at, Response.id)
    )
    compiled = stmt.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
    raw: Any = db.session.connection().connection.driver_connection
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv)", compiled.params) as copy,
    ):
        buffer = bytearray()
        for block in copy:  # one block per row: gather them into chunks worth a write
            buffer += block
            if len(buffer) >= COPY_CHUNK_BYTES:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)


def responses_csv(flt: ResponseFilter) -> Iterator[bytes]:
    """CSV text chunks: header, then one row per response with its frozen properties as columns."""
    return _csv(flt, RESPONSE_COLUMNS)


def promoters_csv(flt: ResponseFilter) -> Iterator[bytes]:
    """CSV for marketing: promoters only, with contact data, comment, consent and segment values."""
    return _csv(ResponseFilter(**{**flt.__dict__, "category": nps.PROMOTER}), PROMOTER_COLUMNS)


def responses_jsonl(flt: ResponseFilter) -> Iterator[bytes]:
    """JSON lines: one object per response (JSON needs no formula escaping; values keep their types)."""
    chunk: list[str] = []
    for row in _rows(flt):
        values = _fixed_values(row)
        values["properties"] = row.properties or {}
        chunk.append(json.dumps(values, ensure_ascii=False, separators=(",", ":")) + "\n")
        if len(chunk) >= CHUNK_ROWS:
            yield "".join(chunk).encode()
            chunk.clear()
    if chunk:
        yield "".join(chunk).encode()


def streamed(
    chunks: Callable[[ResponseFilter], Iterator[bytes]], flt: ResponseFilter, name: str, ext: str
) -> HttpResponse:
    """A streamed download; the generator runs inside the request (and its database session)."""
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    return HttpResponse(
        stream_with_context(chunks(flt)),
        content_type=CONTENT_TYPES[ext],
        headers={
            "Content-Disposition": f'attachment; filename="{name}-{stamp}.{ext}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
