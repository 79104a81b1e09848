"""The in-app widget over HTTP: its script, its public-key API under /api/widget (CORS), the demo page."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, render_template, request, url_for
from marshmallow import Schema, ValidationError

from survey_service.core import keys, request_limits, security
from survey_service.core.ratelimit import address_retry_after, rate_items
from survey_service.errors import ApiError, rate_limited
from survey_service.services import promoters
from survey_service.services.projects import demo_identity_secret
from survey_service.widget import answers
from survey_service.widget.identify import identify_visitor
from survey_service.widget.schemas import AnswerIn, DismissIn, IdentifyIn
from survey_service.widget.settings import project_id_by_public_key

bp = Blueprint("widget", __name__)

# The script's one source is the top-level widget/ of a checkout (or an editable install); an installed
# wheel carries a copy of it in this package's static/ (made by widget/build.py when the wheel is built).
SOURCE_DIR = Path(__file__).resolve().parents[2] / "widget"
PACKAGED_DIR = Path(__file__).resolve().parent / "static"
WIDGET_DIR = SOURCE_DIR if (SOURCE_DIR / "widget.js").is_file() else PACKAGED_DIR
SHORT_CACHE = "public, max-age=300"
LONG_CACHE = "public, max-age=31536000, immutable"
MAX_BODY = 16 * 1024


# Schemas are built once: building one costs more than loading a small body with it.
SCHEMAS: dict[type[Schema], Schema] = {cls: cls() for cls in (IdentifyIn, AnswerIn, DismissIn)}


def _body(schema: Schema) -> dict[str, Any]:
    """Parse the JSON body (sent as text/plain by the widget, to avoid a CORS preflight)."""
    if len(request.get_data()) > MAX_BODY:
        raise ApiError(
            413, "payload_too_large", request_limits.too_large_message(MAX_BODY), {"max_bytes": MAX_BODY}
        )
    try:
        # Parsed once within request_limits' bounds (depth, digits, surrogates) for every door.
        data = request_limits.json_body()
    except ValueError:
        raise ApiError(400, "bad_request", "The body must be JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as exc:
        raise ApiError(
            422, "validation_error", "The request did not validate; see details.", exc.messages
        ) from None
    return loaded


@bp.after_request
def _cors(response: Response) -> Response:
    """Any origin may call the widget API, without cookies: the key and token are the only credentials.

    Preflights are answered by Flask's automatic OPTIONS on each route; this adds the CORS headers.
    """
    if request.path.startswith("/api/widget/"):
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "86400"
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Register the widget's routes, rate-limited per client address (the script itself is exempt)."""
    rate_items(app.config["WIDGET_RATE_LIMIT"])  # a limit that does not parse stops the start, not a request
    app.register_blueprint(bp)


@bp.before_request
def _limit() -> Response | None:
    """429 with Retry-After when the client address is over WIDGET_RATE_LIMIT on /api/widget/*.

    Counted as the API's per-project limits are (core.ratelimit's Counters: leased from Redis, the same
    policy when Redis is away), not through Flask-Limiter, whose resolution of the limits for each request
    cost an eighth of a widget answer's CPU. The script and the preflights are not counted.
    """
    if request.method == "OPTIONS" or not request.path.startswith("/api/widget/"):
        return None
    address = request.remote_addr or "unknown"
    wait = address_retry_after("widget", address, current_app.config["WIDGET_RATE_LIMIT"])
    if wait is None:
        return None
    return rate_limited(wait, "requests from this address")


@bp.post("/api/widget/identify")
def identify() -> dict[str, Any]:
    """Identify the signed-in user and say whether the survey shows now."""
    data = _body(SCHEMAS[IdentifyIn])
    return identify_visitor(
        data["key"], data["user"], force=data["force"], lang=data.get("lang"), verdict=data.get("verdict")
    )


@bp.post("/api/widget/answer")
def answer() -> dict[str, Any]:
    """Record (or change) the score and comment of the shown survey."""
    data = _body(SCHEMAS[AnswerIn])
    project_id = project_id_by_public_key(data["key"])
    response = answers.answer(project_id, data["token"], data["score"], data.get("comment"))
    body: dict[str, Any] = {"ok": True, "category": response.category}
    # The comment's submit ends the survey (the thank-you card): a promoter may be offered the review.
    review = promoters.review_step(response) if "comment" in data else None
    if review is not None:
        body["review"] = review
    return body


@bp.post("/api/widget/dismiss")
def dismiss() -> dict[str, Any]:
    """Record that the user closed the survey without answering."""
    data = _body(SCHEMAS[DismissIn])
    project_id = project_id_by_public_key(data["key"])
    return {"ok": True, "dismissed": answers.dismiss(project_id, data["token"])}


@dataclass(frozen=True)
class Script:
    """The widget script as served: its bytes, gzipped bytes and content version."""

    body: bytes
    gzipped: bytes
    version: str


_COMMENT_LINE = re.compile(rb"^\s*//.*$\n?", re.MULTILINE)
_INDENT = re.compile(rb"^[ \t]+", re.MULTILINE)


def minify(source: bytes) -> bytes:
    """Drop whole-line // comments and indentation: safe for this source, which keeps no multi-line strings
    whose leading spaces matter (CSS does not care)."""
    return _INDENT.sub(b"", _COMMENT_LINE.sub(b"", source))


@lru_cache(maxsize=4)
def _build(path: Path, mtime_ns: int) -> Script:
    body = minify(path.read_bytes())
    return Script(body, gzip.compress(body, 9, mtime=0), hashlib.sha256(body).hexdigest()[:12])


def widget_script() -> Script:
    """The current widget script (rebuilt when widget/widget.js changes on disk)."""
    path = WIDGET_DIR / "widget.js"
    return _build(path, path.stat().st_mtime_ns)


def _serve_js(script: Script, cache: str) -> Response:
    gz = "gzip" in request.headers.get("Accept-Encoding", "")
    resp = Response(script.gzipped if gz else script.body, mimetype="application/javascript")
    resp.headers["Content-Type"] = "application/javascript; charset=utf-8"
    if gz:
        resp.headers["Content-Encoding"] = "gzip"
    resp.headers["Vary"] = "Accept-Encoding"
    resp.headers["Cache-Control"] = cache
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    resp.set_etag(script.version + ("-gz" if gz else ""))
    resp.make_conditional(request)  # sets 304 in place when the ETag matches
    return resp


@bp.get("/widget.js")
def widget_js() -> Response:
    """The embeddable widget under its stable name (short cache, revalidated by ETag)."""
    return _serve_js(widget_script(), SHORT_CACHE)


@bp.get("/widget.<version>.js")
def widget_versioned_js(version: str) -> Response:
    """The widget under its content-versioned name (cached for a year)."""
    script = widget_script()
    if version != script.version:
        raise ApiError(404, "not_found", "No such widget version.")
    return _serve_js(script, LONG_CACHE)


def _demo_project() -> dict[str, Any] | None:
    path = Path(current_app.instance_path) / "demo_project.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@bp.get("/demo")
def demo() -> Response:
    """A page where a person can try the widget against the demo project."""
    if not current_app.config.get("DEMO_PAGE"):
        raise ApiError(404, "not_found", "Not found.")
    demo_project = _demo_project()
    identity = demo_identity_secret(demo_project["public_key"]) if demo_project is not None else None
    if demo_project is None or identity is None:
        raise ApiError(
            404,
            "not_found",
            "No demo project yet: start the service with `survey-service start` (`make run`).",
        )
    # Always a fresh id the server made up: a user_hash signed for a caller-chosen id would let anyone
    # answer (and move the demo project's NPS) as any of its users.
    user_id = "demo-" + secrets.token_hex(8)
    html = render_template(
        "widget_demo.html",
        key=demo_project["public_key"],
        user_id=user_id,
        user_hash=keys.user_hash(identity, user_id),
        widget_url=url_for("widget.widget_versioned_js", version=widget_script().version),
    )
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = security.content_security_policy()
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/demo/<any('demo.js', 'demo.css'):name>")
def demo_asset(name: str) -> Response:
    """The demo page's own script and stylesheet (external files: the page's CSP forbids inline ones)."""
    path = WIDGET_DIR / name
    if not path.exists():
        abort(404)
    mimetype = "application/javascript" if name.endswith(".js") else "text/css"
    resp = Response(path.read_bytes(), mimetype=mimetype)
    resp.headers["Cache-Control"] = SHORT_CACHE
    return resp
