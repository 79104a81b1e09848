"""The server API under /api/v1: thin views over the services, authenticated by secret key."""

from __future__ import annotations

from flask import Response, g, request
from flask_smorest import Blueprint

from survey_service.core import keys
from survey_service.core.ratelimit import api_retry_after
from survey_service.errors import ApiError, error_response
from survey_service.models import Project
from survey_service.services.projects import project_for_secret_key

BEARER = "bearerAuth"
BASIC = "basicAuth"


def key_from_request() -> str | None:
    """The secret key from `Authorization: Bearer sk_…` or HTTP Basic with the key as user name."""
    return keys.key_from_authorization(request.headers.get("Authorization", ""))


def authenticate() -> None:
    """before_request: resolve the project of the secret key or answer 401."""
    if request.method == "OPTIONS":
        return
    key = key_from_request()
    project = project_for_secret_key(key) if key else None
    if project is None:
        raise ApiError(401, "unauthorized", "A valid secret key is required (Authorization: Bearer sk_…).")
    g.project = project


def limit_requests() -> Response | None:
    """before_request, after authenticate: 429 with Retry-After when the project is over its limit."""
    if request.method == "OPTIONS":
        return None
    # Counted per project, named by its public key: a project id reused after a deletion starts afresh.
    wait = api_retry_after(current_project().public_key, request.path)
    if wait is None:
        return None
    message = f"Too many requests for this project; retry in {wait} s."
    return error_response(429, "rate_limited", message, {"retry_after": wait}, {"Retry-After": str(wait)})


def current_project() -> Project:
    """The project the request authenticated as."""
    project: Project = g.project
    return project


def api_blueprint(name: str, import_name: str, description: str) -> Blueprint:
    """A flask-smorest blueprint under /api/v1 that requires the secret key."""
    bp = Blueprint(name, import_name, url_prefix="/api/v1", description=description)
    bp.before_request(authenticate)
    bp.before_request(limit_requests)
    return bp
