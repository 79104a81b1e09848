"""The app served over real HTTP from a thread (werkzeug's server), for browsers and real HTTP clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def live_server(app: Flask, *, threaded: bool = True, set_base_url: bool = True) -> Iterator[str]:
    """Serve the app on a free local port (and point BASE_URL at it); yields the base URL, no slash."""
    server = make_server("127.0.0.1", 0, app, threaded=threaded)
    base = f"http://127.0.0.1:{server.server_port}"
    if set_base_url:
        app.config["BASE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@contextmanager
def host_pages(pages: dict[str, str]) -> Iterator[str]:
    """A stand-in for a customer's web app: serves pages[path] as HTML on a free local port of its own (a
    real address, so a browser treats it as another local origin); yields its origin, no slash."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = pages.get(self.path.split("?")[0])
            if body is None:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
