"""Streamed exports of responses (CSV, JSON lines, promoters): constant memory, spreadsheet-safe cells."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Response as HttpResponse
from flask import current_app, stream_with_context
from psycopg import sql
from sqlalchemy import String, case, cast, func, literal, select, true
from sqlalchemy.dialects.postgresql import JSONB

from survey_service.core import clock, nps
from survey_service.extensions import db
from survey_service.models import Person, Response
from survey_service.reporting import rollups
from survey_service.reporting.filters import ResponseFilter
from survey_service.reporting.themes import theme_keys_by_response

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
    "themes",
    # The follow-through (reporting/follow_through.py): 0 after the first ask, k after its k-th reminder.
    "answered_after_step",
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
    "answered_after_step",
)
REVIEW_COLUMNS = ("review_asked_at", "review_consented_at", "review_link_clicked_at")
# A JSON line's keys in order (`_fixed_values`, then `properties`): the Python and the COPY path agree.
JSONL_COLUMNS = (
    *RESPONSE_COLUMNS[: RESPONSE_COLUMNS.index("response_id") + 1],
    "reference_consent",
    *REVIEW_COLUMNS,
    "themes",
    "answered_after_step",
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
        days, known, wide = rollups.keys(
            flt.project_id, first, last, survey_id=flt.survey_id, channel=flt.channel, category=flt.category
        )
        rest = rollups.outside(days, flt.since, flt.until) if days else None
        if rest is None:
            known = set()
        else:
            # The closed days' names came from the rollups: scan the rest. A property too wide to
            # count is named by its days, not by the answers: one look-up says whether any of these
            # responses has it (a common key is found at once).
            known |= {key for key in wide - known if _any_has(flt, key)}
            conds = [*conds, rest]
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


def _any_has(flt: ResponseFilter, key: str) -> bool:
    """Whether any of the filtered responses has the frozen property `key` (`->` is NULL when absent)."""
    found = db.session.scalar(
        select(Response.id).where(*flt.conditions(), Response.properties[key].is_not(None)).limit(1)
    )
    return found is not None


def _rows(flt: ResponseFilter) -> Iterator[Any]:
    """The filtered responses with their person, oldest first, streamed in batches."""

    def columns(themes: Any) -> list[Any]:
        return [
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
            Response.answered_after_step,
            Person.email,
            Person.name,
            Person.external_id,
            themes.label("themes"),
        ]

    yield from db.session.execute(_ordered(flt, columns).execution_options(yield_per=FETCH_ROWS))


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
        "themes": row.themes or "",
        "answered_after_step": row.answered_after_step,
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


def _sql_columns(fixed: tuple[str, ...], keys: list[str], themes: Any) -> list[Any]:
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
        "themes": func.coalesce(themes, ""),
        "answered_after_step": Response.answered_after_step,
    }
    props = [
        case(
            (func.jsonb_typeof(Response.properties[k]) == "number", Response.properties[k].as_string()),
            else_=_sql_text(Response.properties[k].as_string()),
        )
        for k in keys
    ]
    return [columns[c] for c in fixed] + props


def _copy(stmt: Any, options: str) -> Iterator[bytes]:
    """Stream `COPY (stmt) TO STDOUT WITH (options)` in chunks worth a write (PostgreSQL only)."""
    compiled = stmt.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
    raw: Any = db.session.connection().connection.driver_connection
    work_mem = current_app.config.get("EXPORT_WORK_MEM")
    if work_mem:
        # This transaction only (SET LOCAL): the sort and the join of an export of millions of answers
        # then spill far less (10M rows: 147 s at the server's 4MB, 102 s at 256MB, bare psql \copy).
        with raw.cursor() as cursor:
            cursor.execute(sql.SQL("SET LOCAL work_mem = {}").format(sql.Literal(work_mem)))
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY ({compiled}) TO STDOUT WITH ({options})", compiled.params) as copy,
    ):
        buffer = bytearray()
        for block in copy:  # one block per row: gather them into chunks worth a write
            buffer += block
            if len(buffer) >= COPY_CHUNK_BYTES:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)


def _ordered(flt: ResponseFilter, columns: Callable[[Any], list[Any]]) -> Any:
    """The filtered responses with their person and theme keys, oldest first: the rows of every export.

    columns(themes) names what to select; `themes` is each response's theme keys (NULL when none).
    """
    themes = theme_keys_by_response(flt.project_id)
    return (
        select(*columns(themes.c.theme_keys))
        .join(Person, Person.id == Response.person_id)
        .outerjoin(themes, themes.c.response_id == Response.id)
        .where(*flt.conditions())
        .order_by(Response.created_at, Response.id)
    )


def _copy_rows(flt: ResponseFilter, fixed: tuple[str, ...], keys: list[str]) -> Iterator[bytes]:
    """PostgreSQL writes the CSV itself (COPY … TO STDOUT): same cells as the Python path, far faster."""
    return _copy(_ordered(flt, lambda themes: _sql_columns(fixed, keys, themes)), "FORMAT csv")


def _json(expr: Any) -> Any:
    """A value as JSON text (`null` for NULL), escaped as json.dumps(ensure_ascii=False) escapes it."""
    return func.coalesce(cast(func.to_json(expr), String), literal("null", String))


def _jsonl_line(names: tuple[str, ...], themes: Any) -> Any:
    """One response as a line of JSON built by PostgreSQL: the Python path's keys, order and values.

    Compact like json.dumps(separators=(",", ":")), except inside `properties`, which is the stored
    jsonb's own text (a space after each colon and comma): the same object once parsed.
    """
    utc = _sql_utc(Response.created_at)
    values = {
        "email": _json(Person.email),
        "name": _json(Person.name),
        "score": cast(Response.score, String),
        "comment": _json(Response.comment),
        "created_at": _json(utc),
        "category": _json(Response.category),
        "channel": _json(Response.channel),
        "external_id": _json(Person.external_id),
        "response_id": cast(Response.id, String),
        "reference_consent": _json(Response.reference_consent),
        **{column: _json(_sql_utc(getattr(Response, column))) for column in REVIEW_COLUMNS},
        "themes": _json(func.coalesce(themes, "")),
        "answered_after_step": _json(Response.answered_after_step),
    }
    # `row.properties or {}` on the Python path: SQL NULL, JSON null and empty values become {}.
    props = case(
        (func.coalesce(func.jsonb_typeof(Response.properties), "null") == "null", literal("{}", String)),
        (Response.properties.in_([cast("{}", JSONB), cast("[]", JSONB)]), literal("{}", String)),
        else_=cast(Response.properties, String),
    )
    parts: list[Any] = []
    for i, name in enumerate(names):
        parts += [literal(("{" if i == 0 else ",") + json.dumps(name) + ":", String), values[name]]
    parts += [literal(',"properties":', String), props, literal("}", String)]
    return func.concat(*parts)


def _copy_jsonl(flt: ResponseFilter) -> Iterator[bytes]:
    """PostgreSQL writes the JSON lines (COPY … TO STDOUT): no Python work per row.

    CSV format with a delimiter and quote no JSON text can hold raw (JSON escapes every control
    character), so each line is copied verbatim, whatever backslashes and quotes it carries.
    """
    lines = _ordered(flt, lambda themes: [_jsonl_line(JSONL_COLUMNS, themes)])
    return _copy(lines, "FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02'")


def responses_csv(flt: ResponseFilter) -> Iterator[bytes]:
    """CSV text chunks: header, then one row per response with its frozen properties as columns."""
    return _csv(flt, RESPONSE_COLUMNS)


def promoters_csv(flt: ResponseFilter) -> Iterator[bytes]:
    """CSV for marketing: promoters only, with contact data, comment, consent and segment values."""
    return _csv(ResponseFilter(**{**flt.__dict__, "category": nps.PROMOTER}), PROMOTER_COLUMNS)


def responses_jsonl(flt: ResponseFilter) -> Iterator[bytes]:
    """JSON lines: one object per response (JSON needs no formula escaping; values keep their types)."""
    if db.engine.dialect.name == "postgresql":
        return _copy_jsonl(flt)
    return python_jsonl(flt)


def python_jsonl(flt: ResponseFilter) -> Iterator[bytes]:
    """The JSON lines built row by row in Python (SQLite; on PostgreSQL the reference for the COPY path)."""
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
