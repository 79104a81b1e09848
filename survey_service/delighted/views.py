"""The Delighted-compatible HTTP API under /v1/ (each path also with the `.json` suffix)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, g, jsonify, request
from flask import Response as FlaskResponse

from survey_service.core import keys
from survey_service.core.ratelimit import delighted_retry_after
from survey_service.delighted import params, service
from survey_service.delighted.serialize import person_json, response_json, unix
from survey_service.errors import DATABASE_DOWN, database_unavailable, error_response
from survey_service.extensions import db
from survey_service.models import Enrollment, Person, Project
from survey_service.services.enrollments import enroll
from survey_service.services.projects import project_for_secret_key
from survey_service.services.responses import record_response
from survey_service.services.suppressions import add_suppression

bp = Blueprint("delighted", __name__, url_prefix="/v1")
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
ORDERS = ("asc", "desc", "asc:updated_at", "desc:updated_at")
DATABASE_RETRY_AFTER_SECONDS = 30


def route(rule: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view at rule and at rule + ".json", as Delighted answered both."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        bp.add_url_rule(rule, view_func=view, **options)
        bp.add_url_rule(rule + ".json", endpoint=view.__name__ + "_json", view_func=view, **options)
        return view

    return decorator


@bp.before_request
def authenticate() -> FlaskResponse | None:
    """Resolve the project from HTTP Basic (secret key as user name), then apply the rate limit."""
    key = keys.key_from_authorization(request.headers.get("Authorization", ""))
    project = project_for_secret_key(key) if key else None
    if project is None:
        return error_response(
            401,
            "unauthorized",
            "A valid secret key is required (HTTP Basic, the key as user name).",
            headers={"WWW-Authenticate": 'Basic realm="survey-service"'},
        )
    g.project = project
    # Counted per project, named by its public key (as /api/v1): a reused project id starts afresh.
    wait = delighted_retry_after(project.public_key)
    if wait is not None:
        return error_response(
            429, "rate_limited", f"Too many requests; retry in {wait} s.", headers={"Retry-After": str(wait)}
        )
    return None


# Delighted's clients raise ServiceUnavailableError on the one 503 and are told to wait longer.
for down in DATABASE_DOWN:
    bp.register_error_handler(down, partial(database_unavailable, retry_after=DATABASE_RETRY_AFTER_SECONDS))


def project() -> Project:
    found: Project = g.project
    return found


# ---- people ---------------------------------------------------------------------------------


@route("/people", methods=["POST"])
def send_to_person() -> tuple[dict[str, Any], int]:
    """Create or update a person and schedule a survey unless send=false."""
    data, errors = params.body(), params.Errors()
    clean: dict[str, Any] = {
        "email": params.email(data.get("email"), "email", errors),
        "phone_number": params.phone(data.get("phone_number"), "phone_number", errors),
        "email_update": params.email(data.get("email_update"), "email_update", errors),
        "phone_number_update": params.phone(data.get("phone_number_update"), "phone_number_update", errors),
        "delay": params.integer(data.get("delay"), "delay", errors, 0, 10 * 365 * 86400, 0),
        "send": params.boolean(data.get("send"), "send", errors, True),
        "last_sent_at": params.unix_fact(data.get("last_sent_at"), "last_sent_at", errors),
    }
    if "name" in data:
        clean["name"] = params.text(data["name"], "name", errors, 255)
    if data.get("properties") is not None:
        clean["properties"] = params.properties(data["properties"], "properties", errors)
    channel = data.get("channel", "email")
    if channel != "email":
        why = "Only the email channel is supported." if channel == "sms" else "Unknown channel."
        errors.add("channel", why)
    if not clean["email"] and not clean["phone_number"] and "email" not in errors.fields:
        errors.add("email", "Missing data for required field.")
    errors.raise_if_any()
    result = service.send_to_person(project().id, clean)
    person = result.person
    return {
        "id": str(person.id),
        "email": person.email,
        "name": person.name,
        "phone_number": person.phone_number,
        "survey_scheduled_at": unix(result.request.scheduled_at) if result.request else None,
        # An addition: why no survey was scheduled (e.g. "quiet_period", Delighted's throttling).
        "survey_skipped_reason": result.skipped_reason,
        "properties": dict(person.properties or {}),
    }, 200


def _next_link(page_info: str) -> str:
    args = {k: v for k, v in request.args.items(multi=True) if k != "page_info"}
    pairs = list(args.items()) + [("page_info", page_info)]
    return f'<{request.base_url}?{urlencode(pairs)}>; rel="next"'


@route("/people", methods=["GET"])
def list_people() -> FlaskResponse:
    """List people oldest first; the next page is in the `Link: <…>; rel="next"` header."""
    errors, args = params.Errors(), request.args
    per_page = params.integer(args.get("per_page"), "per_page", errors, 1, MAX_PER_PAGE, DEFAULT_PER_PAGE)
    since = params.unix_time(args.get("since"), "since", errors)
    until = params.unix_time(args.get("until"), "until", errors)
    email = params.email(args.get("email"), "email", errors)
    phone = params.phone(args.get("phone_number"), "phone_number", errors)
    errors.raise_if_any()
    people, next_info = service.list_people(
        project().id,
        per_page=per_page,
        page_info=args.get("page_info") or None,
        since=since,
        until=until,
        email=email,
        phone=phone,
    )
    seen = service.activity(project().id, [p.id for p in people])
    resp = jsonify([person_json(p, seen[p.id]) for p in people])
    if next_info:
        resp.headers["Link"] = _next_link(next_info)
    return resp


@bp.route("/people/<path:identifier>", methods=["DELETE"])
def delete_person(identifier: str) -> tuple[dict[str, Any], int]:
    """Erase a person (by id, `email:…` or `phone_number:…`) with their responses and requests."""
    identifier = identifier.removesuffix(".json")
    person = service.person_by_identifier(project().id, identifier)
    if person is None:
        raise service.not_found("Person")
    service.delete_person(project().id, person)
    return {"ok": True}, 202


@bp.route("/people/<path:email>/survey_requests/pending", methods=["DELETE"])
@bp.route("/people/<path:email>/survey_requests/pending.json", methods=["DELETE"])
def delete_pending(email: str) -> tuple[dict[str, Any], int]:
    """Cancel the person's scheduled survey requests."""
    person = service.find_person(project().id, email=email.strip().lower())
    if person is None:
        raise service.not_found("Person")
    cancelled = service.cancel_pending(project().id, person)
    return {"ok": True, "cancelled": cancelled}, 200


# ---- survey responses -----------------------------------------------------------------------


def _responses_json(rows: list[Any], expand_person: bool) -> list[dict[str, Any]]:
    kinds = service.survey_kinds({r.survey_id for r in rows})
    seen = service.activity(project().id, sorted({r.person_id for r in rows})) if expand_person else {}
    return [response_json(r, kinds.get(r.survey_id, "nps"), seen=seen.get(r.person_id)) for r in rows]


def _person_ref(value: Any, errors: params.Errors) -> int | None:
    """The person id of a body: "12", 12, or an expanded person object with that id."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    errors.add("person", "Must be the id of a person.")
    return None


@route("/survey_responses", methods=["POST"])
def create_response() -> tuple[dict[str, Any], int]:
    """Add a response for an existing person (by id)."""
    data, errors = params.body(), params.Errors()
    person_id = _person_ref(data.get("person"), errors) if data.get("person") is not None else None
    if data.get("person") is None:
        errors.add("person", "Missing data for required field.")
    score = params.score(data.get("score"), "score", errors, required=True)
    comment = params.text(data.get("comment"), "comment", errors, 5000)
    props = params.properties(data.get("person_properties"), "person_properties", errors)
    created_at = params.unix_fact(data.get("created_at"), "created_at", errors)
    errors.raise_if_any()
    person = db.session.get(Person, person_id)
    if person is None or person.project_id != project().id:
        raise service.not_found("Person")
    ref: dict[str, Any] = {"email": person.email, "external_id": person.external_id}
    ref = {k: v for k, v in ref.items() if v}
    if props:
        ref["properties"] = props
    assert score is not None
    response, _ = record_response(project().id, ref, score, comment, channel="api", created_at=created_at)
    return _responses_json([response], "person" in params.expand())[0], 201


@route("/survey_responses/<int:response_id>", methods=["GET"])
def retrieve_response(response_id: int) -> dict[str, Any]:
    """Return one response (`expand[]=person` for the whole person)."""
    response = service.get_response(project().id, response_id)
    return _responses_json([response], "person" in params.expand())[0]


@route("/survey_responses/<int:response_id>", methods=["PUT"])
def update_response(response_id: int) -> dict[str, Any]:
    """Change a response's score, comment or person_properties; other fields are read-only."""
    data, errors = params.body(), params.Errors()
    person_id = _person_ref(data["person"], errors) if data.get("person") is not None else None
    score = params.score(data.get("score"), "score", errors, required=False)
    comment = params.text(data.get("comment"), "comment", errors, 5000) if "comment" in data else ...
    props = params.properties(data.get("person_properties"), "person_properties", errors)
    errors.raise_if_any()
    response = service.update_response(
        project().id, response_id, score=score, comment=comment, person_properties=props, person_id=person_id
    )
    expand_person = isinstance(data.get("person"), dict) or "person" in params.expand()
    return _responses_json([response], expand_person)[0]


@route("/survey_responses", methods=["GET"])
def list_responses() -> FlaskResponse:
    """List responses, oldest first by default, page by page."""
    errors, args = params.Errors(), request.args
    per_page = params.integer(args.get("per_page"), "per_page", errors, 1, MAX_PER_PAGE, DEFAULT_PER_PAGE)
    page = params.integer(args.get("page"), "page", errors, 1, 10**6, 1)
    filters = service.ResponseFilters(
        since=params.unix_time(args.get("since"), "since", errors),
        until=params.unix_time(args.get("until"), "until", errors),
        updated_since=params.unix_time(args.get("updated_since"), "updated_since", errors),
        updated_until=params.unix_time(args.get("updated_until"), "updated_until", errors),
        person_email=params.email(args.get("person_email"), "person_email", errors),
        order=args.get("order", "asc"),
    )
    if args.get("person_id"):
        filters.person_id = params.integer(args["person_id"], "person_id", errors, 1, 2**62, 0)
    if filters.order not in ORDERS:
        errors.add("order", f"Must be one of: {', '.join(ORDERS)}.")
    if args.get("trend"):
        errors.add("trend", "Trends are not supported by this service.")
    errors.raise_if_any()
    rows = service.list_responses(project().id, filters, page=page, per_page=per_page)
    return jsonify(_responses_json(rows, "person" in params.expand()))


# ---- metrics --------------------------------------------------------------------------------


@route("/metrics", methods=["GET"])
def get_metrics() -> dict[str, Any]:
    """NPS and counts for since/until (Unix times, both inclusive; all time when absent)."""
    errors, args = params.Errors(), request.args
    since = params.unix_time(args.get("since"), "since", errors)
    until = params.unix_time(args.get("until"), "until", errors)
    if since and until and since > until:
        errors.add("until", "Must not be before since.")
    if args.get("trend"):
        errors.add("trend", "Trends are not supported by this service.")
    groups = set(args.getlist("groups[]")) - {"core"}
    if groups:
        errors.add("groups", "Only the core metric group is supported.")
    errors.raise_if_any()
    return service.metrics(project().id, since, until)


# ---- unsubscribes and bounces -------------------------------------------------------------------


def _suppressions(reason: str, stamp: str) -> FlaskResponse:
    """List a project's unsubscribes or bounces, oldest first, page by page, as Delighted did."""
    errors, args = params.Errors(), request.args
    per_page = params.integer(args.get("per_page"), "per_page", errors, 1, MAX_PER_PAGE, DEFAULT_PER_PAGE)
    page = params.integer(args.get("page"), "page", errors, 1, 10**6, 1)
    since = params.unix_time(args.get("since"), "since", errors)
    until = params.unix_time(args.get("until"), "until", errors)
    errors.raise_if_any()
    rows = service.suppressions(project().id, reason, since, until, page=page, per_page=per_page)
    return jsonify(
        [
            {
                "person_id": str(person.id) if person is not None else None,
                "email": row.email,
                "name": person.name if person is not None else None,
                stamp: unix(row.created_at),
            }
            for row, person in rows
        ]
    )


@route("/unsubscribes", methods=["POST"])
def create_unsubscribe() -> tuple[dict[str, Any], int]:
    """Unsubscribe an address: it is never emailed again and its waiting emails are cancelled."""
    errors = params.Errors()
    email = params.email(params.body().get("person_email"), "person_email", errors)
    if not email and "person_email" not in errors.fields:
        errors.add("person_email", "Missing data for required field.")
    errors.raise_if_any()
    assert email is not None
    add_suppression(project().id, email, "unsubscribed", "Delighted API")
    return {"ok": True}, 200


@route("/unsubscribes", methods=["GET"])
def list_unsubscribes() -> FlaskResponse:
    """List unsubscribed people."""
    return _suppressions("unsubscribed", "unsubscribed_at")


@route("/bounces", methods=["GET"])
def list_bounces() -> FlaskResponse:
    """List people whose address bounced."""
    return _suppressions("bounced", "bounced_at")


# ---- autopilot: recurring surveys ---------------------------------------------------------------


def _membership_json(enrollment: Enrollment, person: Person, seen: service.Activity) -> dict[str, Any]:
    return {
        "created_at": unix(enrollment.created_at),
        "updated_at": unix(enrollment.created_at),
        "person": person_json(person, seen),
        "next_survey_request": {
            "id": str(enrollment.id),
            "created_at": unix(enrollment.created_at),
            "survey_scheduled_at": unix(enrollment.next_run_at),
            "properties": dict(person.properties or {}),
        },
    }


@route("/autopilot/email", methods=["GET"])
def autopilot_configuration() -> dict[str, Any]:
    """Autopilot (recurring email NPS): on when anyone is enrolled; the frequency is the quiet period."""
    first, active = service.autopilot_state(project().id)
    return {
        "platform_id": "email",
        "active": active,
        "frequency": service.autopilot_interval_days(project()) * 86400,
        "created_at": unix(first),
        "updated_at": unix(first),
    }


def _member(data: dict[str, Any], errors: params.Errors) -> Person | None:
    """The person named by exactly one of person_id, person_email, person_phone_number."""
    email = params.email(data.get("person_email"), "person_email", errors)
    phone = params.phone(data.get("person_phone_number"), "person_phone_number", errors)
    person_id = data.get("person_id")
    given = [
        name
        for name, value in (("person_id", person_id), ("person_email", email), ("person_phone_number", phone))
        if value
    ]
    if len(given) != 1 and not errors.fields:
        errors.add(
            given[1] if given else "person_email",
            "Give exactly one of person_id, person_email, person_phone_number.",
        )
    errors.raise_if_any()
    if person_id is not None:
        return service.person_by_identifier(project().id, str(person_id))
    return service.find_person(project().id, email=email, phone=phone)


@route("/autopilot/email/memberships", methods=["POST"])
def add_autopilot_membership() -> tuple[dict[str, Any], int]:
    """Enrol a person in recurring email surveys (created when new)."""
    data, errors = params.body(), params.Errors()
    email = params.email(data.get("person_email"), "person_email", errors)
    props = (
        params.properties(data.get("properties"), "properties", errors) if data.get("properties") else None
    )
    name = params.text(data["person_name"], "person_name", errors, 255) if "person_name" in data else None
    person = None
    if data.get("person_id") is not None:
        person = service.person_by_identifier(project().id, str(data["person_id"]))
        if person is None:
            raise service.not_found("person")
    elif not email and "person_email" not in errors.fields:
        errors.add("person_email", "Give person_email or person_id.")
    errors.raise_if_any()
    ref: dict[str, Any] = {"email": person.email if person is not None else email}
    if person is not None and person.external_id:
        ref = {"external_id": person.external_id, **({"email": person.email} if person.email else {})}
    if name is not None:
        ref["name"] = name
    if props:
        ref["properties"] = props
    if not ref.get("email"):
        errors.add("person_email", "Autopilot emails need the person's email.")
        errors.raise_if_any()
    enrollment = enroll(
        project().id,
        {"person": ref, "interval_days": service.autopilot_interval_days(project()), "channel": "email"},
    )
    member = db.session.get(Person, enrollment.person_id)
    assert member is not None
    # Delighted answered {"person", "properties"}; the listing's fields come along as an addition.
    seen = service.activity_of(project().id, member.id)
    return {**_membership_json(enrollment, member, seen), "properties": dict(member.properties or {})}, 200


@route("/autopilot/email/memberships", methods=["GET"])
def list_autopilot_memberships() -> FlaskResponse:
    """List people enrolled in recurring email surveys; the next page is in the Link header."""
    errors, args = params.Errors(), request.args
    per_page = params.integer(args.get("per_page"), "per_page", errors, 1, MAX_PER_PAGE, DEFAULT_PER_PAGE)
    email = params.email(args.get("person_email"), "person_email", errors)
    phone = params.phone(args.get("person_phone_number"), "person_phone_number", errors)
    person_id = None
    if args.get("person_id"):
        person_id = params.integer(args["person_id"], "person_id", errors, 1, 2**62, 0)
    errors.raise_if_any()
    rows, next_info = service.list_memberships(
        project().id,
        per_page=per_page,
        page_info=args.get("page_info") or None,
        email=email,
        person_id=person_id,
        phone=phone,
    )
    seen = service.activity(project().id, [person.id for _, person in rows])
    resp = jsonify([_membership_json(enrollment, person, seen[person.id]) for enrollment, person in rows])
    if next_info:
        resp.headers["Link"] = _next_link(next_info)
    return resp


@route("/autopilot/email/memberships", methods=["DELETE"])
def remove_autopilot_membership() -> tuple[dict[str, Any], int]:
    """Stop recurring email surveys for a person."""
    errors = params.Errors()
    person = _member(params.body() or dict(request.args), errors)
    if person is None or not service.leave_autopilot(project().id, person.id):
        raise service.not_found("autopilot membership")
    return {"person": person_json(person, service.activity_of(project().id, person.id))}, 200
