"""New rows on the write hot paths: one Core INSERT, built once, held as a loaded ORM object.

The ORM's unit of work (a flush) cost about a fifth of a recorded response's CPU for its one INSERT, and
building the statement per call a third. Here the statement is built once per model and dialect, and the
object is made persistent from the values written, as if loaded: nothing read back, nothing left to flush.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, Table, event, insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict
from sqlalchemy.orm.instrumentation import manager_of_class

from survey_service.extensions import Base, db

M = TypeVar("M", bound=Base)
# session.info key: the objects this transaction inserted here, forgotten if it rolls back.
_INSERTED = "core.inserts.rows"


def insert_loaded(model: type[M], values: dict[str, Any]) -> M:
    """INSERT a row and return it as a loaded, persistent object.

    values holds every column but `id`, no other key (else TypeError). A None for a JSON column without a
    default is left out of the INSERT: SQL NULL, as for an attribute never set (the JSON type writes a
    bound None as JSON null).
    """
    row = _insert(model, values, skip_conflict=False)
    assert row is not None  # without ON CONFLICT, a taken unique key raises IntegrityError
    return row


def insert_unless_taken(model: type[M], values: dict[str, Any]) -> M | None:
    """insert_loaded with `ON CONFLICT DO NOTHING`: None, and nothing written, when a unique key is taken."""
    return _insert(model, values, skip_conflict=True)


def _insert(model: type[M], values: dict[str, Any], *, skip_conflict: bool) -> M | None:
    columns = _columns_but_id(model)
    if values.keys() != columns:
        # The INSERT would ignore a stray key, and a column left out would be read back lazily.
        raise TypeError(f"{model.__name__}: columns missing or unknown: {sorted(values.keys() ^ columns)}")
    null_json = _null_json_columns(model)
    written = {key: value for key, value in values.items() if value is not None or key not in null_json}
    connection = db.session.connection()
    statement = _insert_statement(model, connection.dialect.name, skip_conflict)
    row_id = connection.execute(statement, written).scalar()
    if row_id is None:
        return None
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
def _columns_but_id(model: type[Base]) -> frozenset[str]:
    return frozenset(column.key for column in cast(Table, model.__table__).columns if column.key != "id")


@functools.cache
def _null_json_columns(model: type[Base]) -> frozenset[str]:
    table = cast(Table, model.__table__)
    return frozenset(
        column.key
        for column in table.columns
        if isinstance(column.type, JSON) and column.default is None and column.server_default is None
    )
