"""Transaction helper: run a unit of work and commit it, running it again when a concurrent writer won.

An IntegrityError (a unique key taken by another transaction) rolls back and reruns the work, which
re-reads the state, up to `attempts` runs in all (3 by default); losing the last run is a 409
`conflict`. Any other error rolls back and propagates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError

from survey_service.errors import ApiError
from survey_service.extensions import db

T = TypeVar("T")


def commit_with_retry(work: Callable[[], T], attempts: int = 3) -> T:
    """Run work() and commit; on a unique-key race roll back and run it again (it re-reads state)."""
    for attempt in range(attempts):
        try:
            result = work()
            db.session.commit()
            return result
        except IntegrityError:
            db.session.rollback()
            if attempt == attempts - 1:
                raise conflict() from None
        except Exception:
            db.session.rollback()
            raise
    raise AssertionError("unreachable")


def conflict() -> ApiError:
    """The 409 of a unit of work a concurrent writer kept beating: the client retries."""
    return ApiError(409, "conflict", "A concurrent change conflicted with this one; retry.")
