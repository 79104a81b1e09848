"""Keyset paging for every /api/v1 list: `limit` + an opaque `cursor` in, `{"data", "next_cursor"}` out.

A cursor names the sort key of the last row of a page (e.g. its id, or its time and id), plus the list it
belongs to (its scope: the list's name and the project, and the parent row when the list has one), signed
by core/tokens (the one key ring, its own salt). The next page is the rows strictly after that key in the
list's order: no OFFSET, so rows inserted meanwhile never shift a page (new rows land before the first page
of a newest-first list, or after the last of an oldest-first one) and each row is listed once.

A cursor altered by one byte, truncated, made up, from another list or another project is a 422 on `cursor`
in the one error shape, never a 500 and never a read of other rows. Filters are not part of the cursor: a
cursor used with other filters is honoured consistently, as "the rows matching these filters after this
row". The tenant scoping stays the query's (every list filters by the key's project); the scope in the
cursor only makes a cursor copied across lists a clear error instead of a silent jump.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from survey_service.core import tokens
from survey_service.errors import ApiError
from survey_service.extensions import db

MAX_CURSOR_LENGTH = tokens.MAX_TOKEN_LENGTH

Key = tuple[int | str, ...]


def encode(scope: str, key: Key) -> str:
    """The cursor of the page after the row with this sort key, in the list `scope`."""
    return tokens.paging_cursor(scope, list(key))


def _invalid(field: str = "cursor") -> ApiError:
    return ApiError(422, "validation_error", f"{field}: not valid.", {field: ["Not valid."]})


def decode(scope: str, token: str, arity: int, field: str = "cursor") -> Key:
    """The sort key a cursor of the list `scope` names; anything else is a validation error on `field`."""
    try:
        key = tokens.read_paging_cursor(token, scope)
    except tokens.TokenInvalid:
        raise _invalid(field) from None
    if len(key) != arity:
        raise _invalid(field)
    if not all(isinstance(part, int | str) and not isinstance(part, bool) for part in key):
        raise _invalid(field)
    return tuple(key)


def _to_key(value: Any) -> int | str:
    """A sort column's value as it travels in a cursor (a time as ISO 8601, exact to the microsecond)."""
    return value.isoformat() if isinstance(value, datetime) else int(value)


def _from_key(part: int | str) -> Any:
    """A cursor's key part as the sort column's value (the cursor is signed: its types are ours)."""
    return datetime.fromisoformat(part) if isinstance(part, str) else part


def _after(order: Sequence[InstrumentedAttribute[Any]], key: Key, descending: bool) -> Any:
    """Rows strictly after `key` in the order (a, b, …): a > x, or a = x and b > y, … (< when descending)."""
    values = [_from_key(part) for part in key]
    clauses = []
    for i, column in enumerate(order):
        beyond = column < values[i] if descending else column > values[i]
        clauses.append(and_(*(order[j] == values[j] for j in range(i)), beyond))
    return or_(*clauses)


def page(
    stmt: Select[*tuple[Any, ...]],
    order: Sequence[InstrumentedAttribute[Any]],
    *,
    scope: str,
    limit: int,
    cursor: str | None = None,
    descending: bool = True,
    scalars: bool = True,
    key_of: Callable[[Any], Sequence[Any]] | None = None,
    field: str = "cursor",
) -> tuple[list[Any], str | None]:
    """One page of `stmt` in `order` (its last column unique, e.g. the id) and the cursor of the next page.

    `scope` names the list (its name and project, e.g. "responses:7"); `scalars=False` returns rows of
    several columns, then `key_of(row)` gives the row's sort key. The cursor is null on the last page;
    `field` names the argument the cursor came in (a bad one is a 422 on it).
    """
    if cursor:
        stmt = stmt.where(_after(order, decode(scope, cursor, len(order), field), descending))
    stmt = stmt.order_by(*(column.desc() if descending else column.asc() for column in order))
    stmt = stmt.limit(limit + 1)
    rows: list[Any] = list(db.session.scalars(stmt)) if scalars else list(db.session.execute(stmt).all())
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    values = key_of(last) if key_of else [getattr(last, column.key) for column in order]
    return rows[:limit], encode(scope, tuple(_to_key(value) for value in values))
