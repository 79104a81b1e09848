"""The raw SQL ceiling for recording a response: parse JSON, one psycopg INSERT + COMMIT, answer 201.

The least any durable write needs: no ORM, no validation, no person upsert; one connection per
gunicorn worker (as a pool would keep), created on the worker's first request.
"""

from __future__ import annotations

import json
import os
from typing import Any

import psycopg
from flask import Flask, request

TABLE = "bench_raw_responses"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, score integer NOT NULL,"
    " comment text, person jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)

app = Flask(__name__)
_conn: psycopg.Connection[Any] | None = None


def _connection() -> psycopg.Connection[Any]:
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(os.environ["RAW_DATABASE_URL"])
    return _conn


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
