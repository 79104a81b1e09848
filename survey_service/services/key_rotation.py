"""Re-encrypting secrets at rest under the current SECRET_KEY's per-purpose keys (after a key rotation)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from survey_service.core import keys
from survey_service.extensions import db
from survey_service.models import AlertRule, EventSource, Project

# Every encrypted column: (model, its primary key, the ciphertext column, the purpose of its key).
ENCRYPTED_COLUMNS: tuple[tuple[Any, Any, Any, str], ...] = (
    (Project, Project.id, Project.identity_secret_encrypted, keys.IDENTITY_SECRET),
    # The identity secret a rotation replaced, kept (nullable) while its overlap lasts.
    (Project, Project.id, Project.previous_identity_secret_encrypted, keys.IDENTITY_SECRET),
    (AlertRule, AlertRule.id, AlertRule.secret_encrypted, keys.WEBHOOK_SECRET),
    (EventSource, EventSource.id, EventSource.secret_encrypted, keys.SOURCE_SECRET),
    (EventSource, EventSource.id, EventSource.previous_secret_encrypted, keys.SOURCE_SECRET),
)


ROTATED, CURRENT, UNDECRYPTABLE = "rotated", "current", "undecryptable"


def rotate_secrets() -> tuple[int, Iterator[str]]:
    """How many secrets are stored, and a generator re-encrypting them one by one, yielding each outcome.

    The outcome is ROTATED, CURRENT (already under SECRET_KEY's purpose key: left alone) or
    UNDECRYPTABLE (under none of the configured keys: left alone, the rest go on).

    Each row is rewritten only if its ciphertext is unchanged since it was read, so a secret replaced
    meanwhile (a new identity secret, say) is never overwritten with the old one.
    """
    rows = [
        (model, pk, column, purpose, row_id, token)
        for model, pk, column, purpose in ENCRYPTED_COLUMNS
        for row_id, token in db.session.execute(
            select(pk, column).where(column.is_not(None)).order_by(pk)
        ).all()
    ]
    db.session.commit()
    return len(rows), (_rotate_one(*row) for row in rows)


def _rotate_one(model: Any, pk: Any, column: Any, purpose: str, row_id: int, token: str) -> str:
    cfg = current_app.config
    try:
        fresh = keys.reencrypt_secret(token, cfg["SECRET_KEY"], cfg["SECRET_KEY_FALLBACKS"], purpose=purpose)
    except ValueError:
        return UNDECRYPTABLE
    if fresh is None:
        return CURRENT
    result = db.session.execute(
        update(model).where(pk == row_id, column == token).values({column.key: fresh})
    )
    db.session.commit()
    # No row matched: it was replaced (under the current key) or deleted since it was read.
    return ROTATED if getattr(result, "rowcount", 0) else CURRENT
