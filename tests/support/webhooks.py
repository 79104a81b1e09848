"""A real local webhook receiver, alert rules through the API, and a burst of the webhook worker."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker

from survey_service.extensions import queues


class Receiver:
    """A local webhook receiver that records requests and answers with a chosen status."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/nps?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_jobs(app: Flask) -> None:
    """Run every queue of the app with a SimpleWorker (no fork) until they are empty."""
    with app.app_context():
        handle = queues()
        names = app.config["RQ_QUEUES"]
        SimpleWorker([handle.queue(n) for n in names], connection=handle.redis).work(burst=True)


def create_rule(client: FlaskClient, auth: dict[str, str], **body: Any) -> Any:
    """POST an alert rule named "Detractors" with the given fields; the test checks the answer."""
    return client.post("/api/v1/alert_rules", json={"name": "Detractors", **body}, headers=auth)
