"""The service's front door: `/` says what runs here and where to go; `/docs/api` is the API reference.

The reference is rendered here, server-side, from the same OpenAPI document `/openapi.json` serves, so it
cannot drift from the API; both pages are plain HTML with this origin's stylesheet and no script at all.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, render_template

from survey_service.core import security
from survey_service.public.api_reference import Reference, build_reference

bp = Blueprint("site", __name__)


@bp.after_request
def page_headers(response: Response) -> Response:
    """No script on these pages: the dashboard's CSP variation (set before the app-wide default)."""
    response.headers.setdefault("Content-Security-Policy", security.content_security_policy(scripts=False))
    return response


@bp.get("/")
def index() -> str:
    """Show what this service is and link its sign-in, API reference, OpenAPI document, widget and health."""
    return render_template("site_index.html", demo=bool(current_app.config.get("DEMO_PAGE")))


@bp.get("/favicon.ico")
def favicon() -> Response:
    """The site's icon where browsers look for it unasked (the SVG of the pages' <link rel="icon">)."""
    response = current_app.send_static_file("favicon.svg")
    response.mimetype = "image/svg+xml"
    response.cache_control.max_age = 86400
    response.cache_control.public = True
    return response


@bp.get("/docs/api")
def api_reference() -> str:
    """Show the API reference: every operation of /openapi.json, with parameters, bodies and schemas."""
    return render_template("site_api_reference.html", ref=reference())


def reference() -> Reference:
    """The reference's page model, built once per app: the OpenAPI document does not change while it runs."""
    found: Reference | None = current_app.extensions.get("api_reference")
    if found is None:
        found = current_app.extensions["api_reference"] = build_reference(openapi_document())
    return found


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document, from the flask-smorest Api that serves /openapi.json."""
    apis = current_app.extensions["flask-smorest"]["apis"]
    document: dict[str, Any] = apis[""]["ext_obj"].spec.to_dict()
    return document
