"""The ceiling for recording a response: a bare Flask JSON endpoint, no database, same gunicorn config."""

from __future__ import annotations

from typing import Any

from flask import Flask, request

app = Flask(__name__)


@app.post("/api/v1/responses")
def create_response() -> tuple[dict[str, Any], int]:
    """Parse the JSON body and echo a response-shaped JSON object with 201."""
    body = request.get_json()
    return {"id": 1, "score": body["score"], "category": "promoter", "comment": body.get("comment")}, 201
