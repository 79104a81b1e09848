"""New rows on the write hot paths: one Core INSERT, built once, held as a loaded ORM object.

The ORM's unit of work (a flush) cost about a fifth of a recorded response's CPU for its one INSERT, and
building the statement per call a third. Here the statement is built once per model and dialect, and the
object is made persistent from the values written, as if loaded: nothing read back, nothing left to flush.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, Column, Table, Update, bindparam, event, insert, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.util import immutabledict

from survey_service.extensions import Base, db

M = TypeVar("M", bound=Base)
# session.info key: the objects this transaction inserted here, forgotten if it rolls back.
_INSERTED = "core.inserts.rows"


def insert_loaded(
    model: type[M],
    values: dict[str, Any],
    *,
    along: Update | None = None,
    along_params: dict[str, Any] | None = None,
) -> M:
    """INSERT a row and return it as a loaded, persistent object.

    values holds every column but `id`, no other key (else TypeError). A None for a JSON column without a
    default is left out of the INSERT: SQL NULL, as for an attribute never set (the JSON type writes a
    bound None as JSON null).

    along: an UPDATE (built once; no bind of it named v_<anything>) run in the same transaction with
    along_params: on PostgreSQL in the same statement, as a CTE (one round trip), elsewhere right after.
    """
    if along is not None and db.session.connection().dialect.name == "postgresql":
        _check_columns(model, values)
        params = {**{f"v_{key}": value for key, value in values.items()}, **(along_params or {})}
        row_id = db.session.connection().execute(_insert_along(model, along), params).scalar_one()
        return _loaded(model, values, row_id)
    row = _insert(model, values, skip_conflict=False)
    if along is not None:
        db.session.connection().execute(along, along_params or {})
    assert row is not None  # without ON CONFLICT, a taken unique key raises IntegrityError
    return row


def insert_unless_taken(model: type[M], values: dict[str, Any]) -> M | None:
    """insert_loaded with `ON CONFLICT DO NOTHING`: None, and nothing written, when a unique key is taken."""
    return _insert(model, values, skip_conflict=True)


P = TypeVar("P", bound=Base)


def insert_pair_unless_taken(
    parent: type[P], parent_values: dict[str, Any], child: type[M], child_values: dict[str, Any], link: str
) -> tuple[P, M] | None:
    """A new parent row and a child row pointing at it (`child.link` = the parent's id), both loaded.

    Both INSERTs are `ON CONFLICT DO NOTHING`. None when a unique key of either is taken: nothing is
    written when the parent's was; when only the child's was, the new parent row is written (in this
    transaction, not held here), so the caller's long way (look the parent up, insert the child) finds it.
    On PostgreSQL it is one statement, `WITH parent AS (INSERT … RETURNING id) INSERT INTO child … SELECT …
    FROM parent`: a round trip less than insert_unless_taken twice, which it is on SQLite (no INSERT inside
    WITH there). child_values holds every column but `id` and link.
    """
    _check_columns(parent, parent_values)
    if link in child_values:
        raise TypeError(f"{child.__name__}.{link} is the parent's new id: leave it out of child_values")
    _check_columns(child, {**child_values, link: None})
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        parent_row = insert_unless_taken(parent, parent_values)
        if parent_row is None:
            return None
        child_row = insert_unless_taken(child, {**child_values, link: instance_dict(parent_row)["id"]})
        return None if child_row is None else (parent_row, child_row)
    p_null, c_null = nulls_of(parent, parent_values), nulls_of(child, child_values)
    statement = _pair_statement(parent, child, link, p_null, c_null)
    params = binds_of("p", parent_values, p_null)
    params.update(binds_of("c", child_values, c_null))
    row = connection.execute(statement, params).first()
    if row is None:
        return None
    child_id, parent_id = row
    child_row = _loaded(child, {**child_values, link: parent_id}, child_id)
    return _loaded(parent, parent_values, parent_id), child_row


G = TypeVar("G", bound=Base)


def insert_trio_unless_taken(
    parent: type[P],
    parent_values: dict[str, Any],
    child: type[M],
    child_values: dict[str, Any],
    link: str,
    grandchild: type[G],
    grandchild_values: dict[str, Any],
    links: tuple[str, str],
) -> tuple[P, M, G] | None:
    """insert_pair_unless_taken, and a third row pointing at both new rows: `links` names its columns that
    take the parent's and the child's new ids. None exactly when the pair would be None (nothing of the third
    row written then); the third INSERT has no ON CONFLICT: a unique key of it taken raises IntegrityError.

    On PostgreSQL one statement: `WITH parent AS (INSERT …), child AS (INSERT … SELECT … FROM parent …)
    INSERT INTO grandchild … SELECT … FROM child`. Elsewhere the pair, then the third INSERT.
    """
    parent_link, child_link = links
    if {parent_link, child_link} & grandchild_values.keys():
        raise TypeError(f"{grandchild.__name__}.{parent_link}/{child_link} are the new ids: leave them out")
    _check_columns(grandchild, {**grandchild_values, parent_link: None, child_link: None})
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        pair = insert_pair_unless_taken(parent, parent_values, child, child_values, link)
        if pair is None:
            return None
        ids = {parent_link: instance_dict(pair[0])["id"], child_link: instance_dict(pair[1])["id"]}
        return (*pair, insert_loaded(grandchild, {**grandchild_values, **ids}))
    _check_columns(parent, parent_values)
    _check_columns(child, {**child_values, link: None})
    nulls = (
        nulls_of(parent, parent_values),
        nulls_of(child, child_values),
        nulls_of(grandchild, grandchild_values),
    )
    statement = _trio_statement(parent, child, link, grandchild, links, *nulls)
    params = binds_of("p", parent_values, nulls[0])
    params.update(binds_of("c", child_values, nulls[1]))
    params.update(binds_of("g", grandchild_values, nulls[2]))
    row = connection.execute(statement, params).first()
    if row is None:
        return None
    grandchild_id, parent_id, child_id = row
    return (
        _loaded(parent, parent_values, parent_id),
        _loaded(child, {**child_values, link: parent_id}, child_id),
        _loaded(
            grandchild, {**grandchild_values, parent_link: parent_id, child_link: child_id}, grandchild_id
        ),
    )


def inserting_from(
    model: type[Base], taken: dict[str, Any], select_from: Any, nulls: frozenset[str] = frozenset()
) -> Any:
    """`INSERT INTO model … SELECT <bound values>, <taken> FROM select_from RETURNING id, <taken columns>`
    (PostgreSQL; build it once per `nulls`). Binds are v_<column> for every column but id, the taken ones
    and `nulls` (columns left to their NULL: see nulls_of), each CAST to its column's type; `taken` maps the
    other columns to expressions of select_from."""
    return _insert_from(model, "v", taken, select_from, nulls)


def held_as_loaded(model: type[M], values: dict[str, Any], row_id: int) -> M:
    """A row written by a statement of the caller's (values: every column but id), as a loaded object."""
    _check_columns(model, values)
    return _loaded(model, values, row_id)


def _insert(model: type[M], values: dict[str, Any], *, skip_conflict: bool) -> M | None:
    _check_columns(model, values)
    connection = db.session.connection()
    statement = _insert_statement(model, connection.dialect.name, skip_conflict)
    row_id = connection.execute(statement, _written(model, values)).scalar()
    return None if row_id is None else _loaded(model, values, row_id)


def _check_columns(model: type[Base], values: dict[str, Any]) -> None:
    columns = _columns_but_id(model)
    if values.keys() != columns:
        # The INSERT would ignore a stray key, and a column left out would be read back lazily.
        raise TypeError(f"{model.__name__}: columns missing or unknown: {sorted(values.keys() ^ columns)}")


def _written(model: type[Base], values: dict[str, Any]) -> dict[str, Any]:
    """The values to bind: a None for a JSON column without a default left out (SQL NULL, not JSON null)."""
    null_json = _null_json_columns(model)
    return {key: value for key, value in values.items() if value is not None or key not in null_json}


def _loaded(model: type[M], values: dict[str, Any], row_id: int) -> M:
    """The inserted row as a persistent object in the session, as if loaded: nothing read back or to flush."""
    # Filled in as a load fills a row in: the constructor's attribute events cost five times as much.
    row: M = manager_of_class(model).new_instance()
    instance_dict(row).update(values, id=row_id)
    make_transient_to_detached(row)  # as if loaded: every column set, nothing to flush
    db.session.add(row)
    db.session.info.setdefault(_INSERTED, []).append(row)
    return row


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    """Expunge the rows a rolled-back transaction inserted here, as the ORM does with what it flushed.

    Added as loaded, they would otherwise stay in the session, rows that no longer exist: a retry that
    inserts again (SQLite hands out a rolled-back rowid again) could not add its new row under that id.
    """
    for row in session.info.pop(_INSERTED, ()):
        if row in session:
            session.expunge(row)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    session.info.pop(_INSERTED, None)


@functools.cache
def _insert_statement(model: type[Base], dialect: str, skip_conflict: bool) -> Any:
    table = cast(Table, model.__table__)
    if not skip_conflict:
        return insert(table).returning(table.c.id)
    dialect_insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return dialect_insert(table).on_conflict_do_nothing().returning(table.c.id)


@functools.cache
def _insert_along(model: type[Base], along: Update) -> Any:
    """PostgreSQL: `WITH along AS (UPDATE …) INSERT … RETURNING id` (a modifying CTE runs once, in full).

    The INSERT's binds are named v_<column>: SQLAlchemy applies a statement's execution keys that name
    columns to the UPDATE in its WITH too (it would SET the request's project_id from the response's).
    """
    table = cast(Table, model.__table__)
    values = {c: bindparam(f"v_{c.key}", type_=_bind_type(model, c)) for c in _but_id(table)}
    return insert(table).values(values).returning(table.c.id).add_cte(along.cte("along"))


def nulls_of(model: type[Base], values: dict[str, Any]) -> frozenset[str]:
    """The columns of values a statement leaves out: None, no default of ours or the table's (NULL then).

    Each bind costs SQLAlchemy's and psycopg's processing on every execution; a new row has a dozen of
    them. The statement is built (and cached) per set left out, a handful per hot path."""
    return frozenset(key for key in _defaultless(model) if values.get(key, 0) is None)


def binds_of(prefix: str, values: dict[str, Any], nulls: frozenset[str]) -> dict[str, Any]:
    """The parameters of a statement built with `nulls` left out: <prefix>_<column> for the others."""
    return {f"{prefix}_{key}": value for key, value in values.items() if key not in nulls}


@functools.cache
def _defaultless(model: type[Base]) -> frozenset[str]:
    table = cast(Table, model.__table__)
    return frozenset(
        c.key for c in _but_id(table) if c.nullable and c.default is None and c.server_default is None
    )


@functools.cache
def _pair_statement(
    parent: type[Base],
    child: type[Base],
    link: str,
    p_null: frozenset[str] = frozenset(),
    c_null: frozenset[str] = frozenset(),
) -> Any:
    """PostgreSQL: the parent's INSERT as a CTE, the child's INSERT … SELECT from it (both skip conflicts).

    Binds are p_<column> and c_<column>. Each child value is CAST to its column's type: a NULL bound in a
    SELECT list would otherwise be text, which an integer column refuses. A None for a JSON column without
    a default is SQL NULL, as insert_loaded writes it.
    """
    parent_table = cast(Table, parent.__table__)
    written = [c for c in _but_id(parent_table) if c.key not in p_null]
    new_parent = (
        postgresql_insert(parent_table)
        .values({c: bindparam(f"p_{c.key}", type_=_bind_type(parent, c)) for c in written})
        .on_conflict_do_nothing()
        .returning(parent_table.c.id)
        .cte("new_parent")
    )
    return _insert_from(child, "c", {link: new_parent.c.id}, None, c_null).on_conflict_do_nothing()


@functools.cache
def _trio_statement(
    parent: type[Base],
    child: type[Base],
    link: str,
    grandchild: type[Base],
    links: tuple[str, str],
    p_null: frozenset[str] = frozenset(),
    c_null: frozenset[str] = frozenset(),
    g_null: frozenset[str] = frozenset(),
) -> Any:
    """PostgreSQL: the pair's statement as a CTE, the grandchild's INSERT … SELECT from it (binds g_…)."""
    new_child = _pair_statement(parent, child, link, p_null, c_null).cte("new_child")
    parent_link, child_link = links
    taken = {parent_link: new_child.c[link], child_link: new_child.c.id}
    return _insert_from(grandchild, "g", taken, None, g_null)


def _insert_from(
    model: type[Base],
    prefix: str,
    taken: dict[str, Any],
    select_from: Any = None,
    nulls: frozenset[str] = frozenset(),
) -> Any:
    """INSERT INTO model … SELECT <its bound values, each CAST>, <the `taken` columns of a CTE> RETURNING id
    and the taken columns; the `nulls` columns left out."""
    table = cast(Table, model.__table__)
    columns = [c for c in _but_id(table) if c.key not in taken and c.key not in nulls]
    chosen = select(
        *[sql_cast(bindparam(f"{prefix}_{c.key}", type_=_bind_type(model, c)), c.type) for c in columns],
        *taken.values(),
    )
    if select_from is not None:
        chosen = chosen.select_from(select_from)
    return (
        postgresql_insert(table)
        .from_select([*[c.key for c in columns], *taken], chosen)
        .returning(table.c.id, *[table.c[key] for key in taken])
    )


def _but_id(table: Table) -> list[Column[Any]]:
    return [column for column in table.columns if column.key != "id"]


def _bind_type(model: type[Base], column: Column[Any]) -> Any:
    """The column's type, or for a JSON column without a default the same type writing None as SQL NULL."""
    if column.key not in _null_json_columns(model):
        return column.type
    as_null = cast(JSON, column.type.copy())
    as_null.none_as_null = True
    # JSONType is JSONB on PostgreSQL (a variant): the type bound there must write None as NULL too.
    variants = {}
    for dialect, variant in as_null._variant_mapping.items():
        variant = cast(JSON, variant.copy())
        variant.none_as_null = True
        variants[dialect] = variant
    as_null._variant_mapping = immutabledict(variants)
    return as_null


@functools.cache
def _columns_but_id(model: type[Base]) -> frozenset[str]:
    return frozenset(column.key for column in _but_id(cast(Table, model.__table__)))


@functools.cache
def _null_json_columns(model: type[Base]) -> frozenset[str]:
    table = cast(Table, model.__table__)
    return frozenset(
        column.key
        for column in table.columns
        if isinstance(column.type, JSON) and column.default is None and column.server_default is None
    )
