"""The raw SQL ceiling for recording a response: parse JSON, one psycopg INSERT + COMMIT, answer 201.

The least any durable write needs: no ORM, no validation, no person upsert; one connection per
gunicorn worker thread (as a pool would keep), created on the thread's first request.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import psycopg
from flask import Flask, request

TABLE = "bench_raw_responses"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, score integer NOT NULL,"
    " comment text, person jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)

app = Flask(__name__)
# One connection per thread (a sync worker has one thread; a gthread worker several), as a pool would keep.
_local = threading.local()


def _connection() -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(os.environ["RAW_DATABASE_URL"])
    return conn


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer the readiness probe of bench/servers.py."""
    return {"status": "ok"}


@app.post("/api/v1/responses")
def create_response() -> tuple[dict[str, Any], int]:
    """Insert the score, comment and person as one row, commit, and answer 201 with its id."""
    body = request.get_json()
    conn = _connection()
    row = conn.execute(
        f"INSERT INTO {TABLE} (score, comment, person) VALUES (%s, %s, %s) RETURNING id",
        (body["score"], body.get("comment"), json.dumps(body["person"])),
    ).fetchone()
    conn.commit()
    assert row is not None
    return {"id": row[0], "score": body["score"], "comment": body.get("comment")}, 201
