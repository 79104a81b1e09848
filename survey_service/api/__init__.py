"""The server API under /api/v1: thin views over the services, authenticated by secret key."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

import flask
from flask import Response, current_app, g, request
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema
from webargs.flaskparser import FlaskParser, is_json_request

from survey_service.core import keys
from survey_service.core.ratelimit import api_retry_after
from survey_service.core.request_limits import json_body
from survey_service.errors import ApiError, error_response, rate_limited
from survey_service.extensions import db
from survey_service.models import Project
from survey_service.services.projects import ProjectRef, project_ref_for_secret_key

BEARER = "bearerAuth"
BASIC = "basicAuth"
UNSUPPORTED_MEDIA_TYPE = "The body must be JSON: send Content-Type: application/json."
KEY_REQUIRED = "A valid secret key is required (Authorization: Bearer sk_…)."


def key_from_request() -> str | None:
    """The secret key from `Authorization: Bearer sk_…` or HTTP Basic with the key as user name."""
    return keys.key_from_authorization(request.headers.get("Authorization", ""))


def authenticate() -> None:
    """before_request: resolve the project of the secret key or answer 401."""
    if request.method == "OPTIONS":
        return
    key = key_from_request()
    ref = project_ref_for_secret_key(key) if key else None
    if ref is None:
        raise ApiError(401, "unauthorized", KEY_REQUIRED)
    g.project_ref = ref


def limit_requests() -> Response | None:
    """before_request, after authenticate: 429 with Retry-After when the project is over its limit."""
    if request.method == "OPTIONS":
        return None
    # Counted per project, named by its public key: a project id reused after a deletion starts afresh.
    wait = api_retry_after(current_project_ref().public_key, request.path)
    if wait is None:
        return None
    return rate_limited(wait, "requests for this project")


def _arguments(view: Callable[..., Any]) -> Iterator[tuple[str, Schema | type[Schema]]]:
    """(location, schema) of each @bp.arguments of a view, as flask-smorest recorded them."""
    apidoc: dict[str, Any] = getattr(view, "_apidoc", {})
    for parameter in apidoc.get("arguments", {}).get("parameters", []):
        if isinstance(parameter, dict) and "schema" in parameter:
            yield parameter["in"], parameter["schema"]


@functools.cache
def _declared(view: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    """The query parameter names a view declares (each field's data_key, else its name), and whether
    it takes a JSON body; computed once per view."""
    names: set[str] = set()
    takes_json = False
    for location, schema in _arguments(view):
        if location in ("query", "querystring"):
            instance = schema() if isinstance(schema, type) else schema
            names.update(f.data_key or name for name, f in instance.fields.items() if not f.dump_only)
        takes_json = takes_json or location == "json"
    return frozenset(names), takes_json


def check_request_shape() -> Response | None:
    """before_request, after authenticate: refuse what a view would silently misread.

    A query parameter the endpoint does not declare is a 422 naming it (`?catgory=` must not list
    everything), on every endpoint, with or without a query schema; a body that is not JSON sent to an
    endpoint that takes a JSON body is a 415 (webargs would otherwise report every sent field missing).
    """
    if request.method == "OPTIONS":
        return None
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None:
        return None
    names, takes_json = _declared(view)
    unknown = sorted(set(request.args) - names)
    if unknown:
        listed = ", ".join(unknown)
        noun = "parameter" if len(unknown) == 1 else "parameters"
        # Per name, marshmallow's own words for an unknown body field: one way to read both.
        details = {name: ["Unknown field."] for name in unknown}
        return error_response(422, "validation_error", f"Unknown query {noun}: {listed}.", details)
    if takes_json and not request.is_json and request.get_data():
        return error_response(
            415, "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, {"content_type": request.mimetype or None}
        )
    return None


def current_project_ref() -> ProjectRef:
    """What the request's project is known by (id, public key, settings), from the per-process key cache."""
    ref: ProjectRef = g.project_ref
    return ref


def current_project_id() -> int:
    """The id of the project the request authenticated as (no query)."""
    return current_project_ref().id


def current_project() -> Project:
    """The project the request authenticated as, loaded from the database on first use in the request."""
    project: Project | None = g.get("project")
    if project is None:
        project = db.session.get(Project, current_project_id())
        if project is None:  # deleted after its key was cached
            raise ApiError(
                401, "unauthorized", "A valid secret key is required (Authorization: Bearer sk_…)."
            )
        g.project = project
    return project


class StrictParser(FlaskParser):
    """webargs' parser with unknown query parameters refused (webargs' default drops them silently)."""

    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": RAISE,
        "querystring": RAISE,
    }

    def _raw_load_json(self, req: flask.Request) -> Any:
        """The body request_limits parsed and checked before the view (not a second json.loads); a body
        that is not JSON goes webargs' own way, to its own error."""
        if is_json_request(req):
            try:
                return json_body()
            except json.JSONDecodeError:
                pass
        return super()._raw_load_json(req)


class ApiBlueprint(Blueprint):  # type: ignore[misc]  # flask-smorest is untyped: Blueprint is Any
    """A flask-smorest blueprint whose query schemas raise on unknown parameters, and whose every
    operation documents the 422 of check_request_shape (and the 415 when it takes a JSON body)."""

    ARGUMENTS_PARSER = StrictParser()

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        """flask-smorest's `arguments`, with a schema class built once here: webargs builds a class on
        every request (a deep copy of its fields, and of its nested schemas': a tenth of a recorded
        response's CPU). Loading keeps no state on the schema (marshmallow 4 has no context)."""
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: Callable[..., Any] | None = None,
        provide_automatic_options: bool | None = None,
        **options: Any,
    ) -> None:
        if view_func is not None:
            _document_refusals(view_func)
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)


def _document_refusals(view: Callable[..., Any]) -> None:
    """Add the 422 (unknown query parameter) and, for a JSON body, the 415 to a view's documentation."""
    apidoc: dict[str, Any] = getattr(view, "_apidoc", {})
    responses = apidoc.setdefault("response", {}).setdefault("responses", {})
    if 422 not in apidoc.get("arguments", {}).get("responses", {}):
        responses.setdefault(422, []).append("UNPROCESSABLE_ENTITY")
    if any(location == "json" for location, _ in _arguments(view)):
        responses.setdefault(415, []).append("UNSUPPORTED_MEDIA_TYPE")
    view._apidoc = apidoc  # type: ignore[attr-defined]


def api_blueprint(name: str, import_name: str, description: str) -> Blueprint:
    """A flask-smorest blueprint under /api/v1 that requires the secret key."""
    bp = ApiBlueprint(name, import_name, url_prefix="/api/v1", description=description)
    bp.before_request(authenticate)
    bp.before_request(limit_requests)
    bp.before_request(check_request_shape)
    return bp
