"""A throw-away PostgreSQL database per benchmark run: created at start, dropped at the end."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL",
    os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)


@contextmanager
def temporary_database() -> Iterator[str]:
    """Yield the SQLAlchemy URL of a fresh database `bench_<random>`, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = ADMIN_URL.rpartition("/")
        try:
            yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def libpq_url(sqlalchemy_url: str) -> str:
    """The psycopg (libpq) spelling of a SQLAlchemy PostgreSQL URL."""
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)
