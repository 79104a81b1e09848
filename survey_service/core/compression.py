"""Gzip for pages and stylesheets (stdlib gzip, as /widget.js), without handing BREACH a length oracle.

What is compressed: HTML, CSS, SVG and JavaScript answers (200) of 512 bytes to 1 MB, when the client
accepts gzip: rendered pages and the static files. Streamed answers (exports) are left alone. As nginx's
gzip does, a strong ETag becomes weak: both encodings of a file then revalidate with the same tag.

BREACH needs three things in one compressed response: a secret (a CSRF token, a customer's data), text
the attacker chose (a reflected search or filter), and many requests the attacker makes the victim's
browser send from their own page while they watch the sizes go by. The dashboard and sign-in pages
(`private()` marks them) have the first two, so they are compressed only for requests the browser itself
says a person started on this origin: `Sec-Fetch-Site: same-origin` (a link, a form of the dashboard) or
`none` (typed, bookmarked). A request another site started is answered uncompressed and gives the
attacker nothing to measure. Public pages (`/`, survey landing pages) are always compressed: their only
secret is the link token, which an attacker would need to send the request in the first place.
"""

from __future__ import annotations

import gzip

from flask import Flask, g, request
from werkzeug.wrappers import Response

MIN_BYTES, MAX_BYTES = 512, 1024 * 1024
MIMETYPES = frozenset({"text/html", "text/css", "image/svg+xml", "application/javascript", "text/javascript"})
SAFE_FETCH_SITES = frozenset({"same-origin", "none"})


def private() -> None:
    """Mark this request's page as carrying secrets: compressed only for requests started on this origin."""
    g.compress_same_origin_only = True


def _wanted(response: Response) -> bool:
    """Whether this answer may be gzipped for this request."""
    if response.mimetype not in MIMETYPES or "Content-Encoding" in response.headers:
        return False
    if response.status_code != 200:
        return False
    if response.direct_passthrough:  # a file: its length is known
        if not MIN_BYTES <= (response.content_length or 0) <= MAX_BYTES:
            return False
    elif response.is_streamed:
        return False
    if "gzip" not in request.headers.get("Accept-Encoding", "").lower():
        return False
    private_page = g.get("compress_same_origin_only", False)
    return not private_page or request.headers.get("Sec-Fetch-Site") in SAFE_FETCH_SITES


def compress(response: Response) -> Response:
    """Gzip the response in place when it is worth it and safe; always say what the answer varies by."""
    if response.mimetype not in MIMETYPES:
        return response
    response.vary.add("Accept-Encoding")
    if g.get("compress_same_origin_only"):
        response.vary.add("Sec-Fetch-Site")
    if not _wanted(response):
        return response
    response.direct_passthrough = False  # read the file into memory (at most MAX_BYTES)
    body = response.get_data()
    if len(body) < MIN_BYTES:
        return response
    response.set_data(gzip.compress(body, 6, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    etag, _ = response.get_etag()
    if etag:
        response.set_etag(etag, weak=True)
    return response


def init_app(app: Flask) -> None:
    """Compress the app's eligible answers (registered last: it runs after every other after_request)."""
    app.after_request(compress)
