"""The app served over real HTTP from a thread (werkzeug's server), for browsers and real HTTP clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
