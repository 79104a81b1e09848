"""Responses: recording a score with the person's properties frozen, and listing them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, Update, bindparam, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from survey_service.core import clock, cursors, nps
from survey_service.core.inserts import (
    binds_of,
    held_as_loaded,
    insert_loaded,
    insert_pair_unless_taken,
    inserting_from,
    nulls_of,
)
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import JSONType, Person, RequestStatus, Response, ResponseTheme, SurveyRequest
from survey_service.services import projects, reminders
from survey_service.services.alerts import dispatch_response_event
from survey_service.services.people import merged_properties, names_person, new_person_values, upsert_person
from survey_service.services.tx import commit_with_retry


def record_response(
    project_id: int,
    person_data: dict[str, Any],
    score: int,
    comment: str | None = None,
    *,
    channel: str = "api",
    created_at: datetime | None = None,
    request: SurveyRequest | None = None,
    reference_consent: bool | None = None,
    person: Person | None = None,
    mark_answered: bool = False,
) -> tuple[Response, bool]:
    """Record a score for a person; a second answer to the same request updates the first.

    Returns the response and whether it was created. The person's properties, after merging
    what came with this answer, are frozen on the response, in one transaction and one commit.
    A door that already holds the person (a request's own) passes it as `person`: nothing of the
    person is then upserted or changed, and person_data is not read. mark_answered marks `request`
    answered (status and first answer's instant) in the same transaction: on PostgreSQL in the new
    response's INSERT statement.
    """
    request_id = request.id if request is not None else None
    survey_id = request.survey_id if request is not None else None

    known_person_id = person.id if person is not None else None
    # A request never answered has no response to update: its first answer goes straight to the INSERT
    # (one round trip less). If another answer won the race, the unique request_id makes the INSERT fail,
    # commit_with_retry runs the work again, and that run looks the response up.
    maybe_answered = request is not None and (
        request.responded_at is not None or request.status == RequestStatus.RESPONDED
    )
    runs: list[int] = []

    def new_response(person_id: int | None, properties: dict[str, Any]) -> dict[str, Any]:
        values = {
            **_response_columns(
                project_id,
                score,
                comment,
                channel,
                reference_consent,
                reminders.answered_step(request),
                created_at or clock.now(),
            ),  # fmt: skip
            "survey_id": survey_id or projects.default_survey_id(project_id),
            "request_id": request_id,
            "properties": properties,
        }
        return values if person_id is None else {**values, "person_id": person_id}

    def write() -> tuple[Response, bool]:
        runs.append(1)
        new_first = True
        if known_person_id is None and request is None and names_person(person_data):
            fresh = _with_new_person(project_id, person_data, new_response)
            if fresh is not None:
                return fresh, True
            new_first = False  # someone has its external id or email: the long way
        if known_person_id is not None:
            # Read again inside the unit of work (identity map: no query unless a retry rolled back).
            person = db.session.get(Person, known_person_id)
            if person is None:
                raise ApiError(404, "not_found", "No such person.")
        else:
            person, _ = upsert_person(project_id, person_data, new_first=new_first)
        existing = None
        if request_id is not None and (maybe_answered or len(runs) > 1):
            existing = db.session.scalar(select(Response).where(Response.request_id == request_id))
        if existing is not None:
            _answer_again(existing, score, comment, reference_consent)
            if mark_answered:
                db.session.connection().execute(_mark_answered(), _marked(request_id, existing.created_at))
            return existing, False
        values = new_response(person.id, merged_properties(person))
        along = _mark_answered() if mark_answered else None
        marked = _marked(request_id, values["created_at"])
        response = insert_loaded(Response, values, along=along, along_params=marked)
        set_committed_value(response, "person", person)  # already loaded: the dump needs no second SELECT
        # An answer on any channel ends the person's reminders of this survey, in this transaction.
        reminders.close_on_answer(response, request)
        return response, True

    response, created = commit_with_retry(write)
    dispatch_response_event(project_id, response.id, "response.created" if created else "response.updated")
    return response, created


# Every column of a new response that record_response does not set, as the model's defaults would.
_NEW_RESPONSE_DEFAULTS: dict[str, Any] = {
    "followup_status": "new",
    "followup_owner": None,
    "followup_notes": None,
    "external_id": None,
    "review_asked_at": None,
    "review_consented_at": None,
    "review_link_clicked_at": None,
    "answered_after_step": None,
}


NewResponse = Callable[[int | None, dict[str, Any]], dict[str, Any]]  # (person id, properties) -> columns


def _response_columns(
    project_id: int,
    score: int,
    comment: str | None,
    channel: str,
    reference_consent: bool | None,
    answered_after_step: int | None,
    at: datetime,
) -> dict[str, Any]:
    """A new response's columns but its survey, request, person and properties (where it is asked from)."""
    return {
        **_NEW_RESPONSE_DEFAULTS,
        "followup_tags": [],
        "project_id": project_id,
        "score": score,
        "category": nps.category_for(score),
        "comment": comment,
        "channel": channel,
        "reference_consent": reference_consent,
        "answered_after_step": answered_after_step,
        "created_at": at,
        "updated_at": at,
    }


@functools.cache
def _mark_answered() -> Update:
    """UPDATE a request to answered unless an earlier answer did, in Core on the table (built once): a
    request an earlier answer marked keeps its first answer's instant. No read, so it runs again as is in a
    retry after a conflict (a rolled-back session)."""
    table = cast(Table, SurveyRequest.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("mark_id"), table.c.responded_at.is_(None))
        .values(status=RequestStatus.RESPONDED, responded_at=bindparam("mark_at"))
    )


def _marked(request_id: int | None, at: datetime) -> dict[str, Any]:
    return {"mark_id": request_id, "mark_at": at}


def _answer_again(
    response: Response, score: int, comment: str | None, reference_consent: bool | None
) -> None:
    """A second answer to the same request: its score, and its comment and consent when sent, win."""
    response.score, response.category = score, nps.category_for(score)
    if comment is not None:
        response.comment = comment
    if reference_consent is not None:
        response.reference_consent = reference_consent
    response.updated_at = clock.now()


def _with_new_person(
    project_id: int, person_data: dict[str, Any], new_response: NewResponse
) -> Response | None:
    """The API's common case, someone new and their answer, in one statement on PostgreSQL (two on SQLite).

    None, and nothing written, when someone has the external id or email of person_data already: the
    caller goes the long way (upsert_person, then the response).
    """
    person_values = new_person_values(project_id, person_data)
    response_values = new_response(None, dict(person_values["properties"]))
    pair = insert_pair_unless_taken(Person, person_values, Response, response_values, "person_id")
    if pair is None:
        return None
    person, response = pair
    set_committed_value(response, "person", person)
    reminders.close_on_answer(response, None)
    return response


def record_first_answer(
    project_id: int, request_id: int, person_id: int, channel: str, score: int, comment: str | None
) -> Response | None:
    """The first answer to a request on screen, in one statement on PostgreSQL, committed; else None.

    `UPDATE survey_requests … RETURNING` (as a CTE) marks the request answered only while it is this
    project's and person's request on this channel, `sent`, unanswered and unexpired, and no part of a
    reminder chain; the response's INSERT takes its survey, person and the person's properties (server-set
    over browser-set, as merged_properties) from that row and the person's. None, with nothing written and
    the transaction still open, when any of that does not hold (off PostgreSQL, a reminder plan in the
    project, a second answer, a closed or foreign request, or a response already there): the caller takes
    record_response's way, which tells which and answers it.
    """
    if db.session.connection().dialect.name != "postgresql" or reminders.has_plans(project_id):
        return None
    at = clock.now()
    # answered_after_step 0: no reminder chain, its first ask.
    values = _response_columns(project_id, score, comment, channel, None, 0, at)
    nulls = nulls_of(Response, values)
    params = binds_of("v", values, nulls)
    params.update(
        r_id=request_id, r_project=project_id, r_person=person_id, r_channel=channel, r_now=at, r_at=at
    )
    try:
        row = db.session.connection().execute(_first_answer(nulls), params).first()
    except IntegrityError:  # a response to the request already, though it was not marked: the long way
        db.session.rollback()
        return None
    if row is None:
        return None
    response_id, survey_id, person, request, properties = row
    written = {**values, "survey_id": survey_id, "person_id": person, "request_id": request}
    response = held_as_loaded(Response, {**written, "properties": properties}, response_id)
    db.session.commit()
    dispatch_response_event(project_id, response.id, "response.created")
    return response


@functools.cache
def _first_answer(nulls: frozenset[str]) -> Any:
    """record_first_answer's statement (built once): `WITH marked AS (UPDATE … RETURNING) INSERT INTO
    responses … SELECT … FROM marked JOIN people`."""
    requests, people = cast(Table, SurveyRequest.__table__), cast(Table, Person.__table__)
    marked = (
        update(requests)
        .where(
            requests.c.id == bindparam("r_id"),
            requests.c.project_id == bindparam("r_project"),
            requests.c.person_id == bindparam("r_person"),
            requests.c.channel == bindparam("r_channel"),
            requests.c.status == RequestStatus.SENT,
            requests.c.responded_at.is_(None),
            or_(requests.c.expires_at.is_(None), requests.c.expires_at > bindparam("r_now")),
            requests.c.reminder_of_id.is_(None),
            requests.c.step == 0,
            requests.c.reminder_plan.is_(None),
        )
        .values(status=RequestStatus.RESPONDED, responded_at=bindparam("r_at"))
        .returning(requests.c.id, requests.c.survey_id, requests.c.person_id)
        .cte("marked")
    )
    # merged_properties in SQL: jsonb || keeps the right side's value of a key both have.
    merged = literal_column(
        "(CASE WHEN jsonb_typeof(people.browser_properties) = 'object' THEN people.browser_properties"
        " ELSE '{}'::jsonb END) || (CASE WHEN jsonb_typeof(people.properties) = 'object'"
        " THEN people.properties ELSE '{}'::jsonb END)",
        JSONType,
    )
    taken = {
        "survey_id": marked.c.survey_id,
        "person_id": marked.c.person_id,
        "request_id": marked.c.id,
        "properties": merged,
    }
    return inserting_from(Response, taken, marked.join(people, people.c.id == marked.c.person_id), nulls)


def get_response(project_id: int, response_id: int) -> Response:
    """The project's response with this id; another project's id and an unknown one are the same 404."""
    response = db.session.get(Response, response_id)
    if response is None or response.project_id != project_id:
        raise ApiError(404, "not_found", "No such response.")
    return response


def list_responses(
    project_id: int,
    *,
    category: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
    theme_id: int | None = None,
) -> tuple[list[Response], str | None]:
    """One page of a project's responses, newest first, and the cursor of the next page."""
    query = select(Response).where(Response.project_id == project_id)
    if theme_id is not None:
        query = query.where(
            Response.id.in_(select(ResponseTheme.response_id).where(ResponseTheme.theme_id == theme_id))
        )
    if category:
        query = query.where(Response.category == category)
    if since:
        query = query.where(Response.created_at >= since)
    if until:
        query = query.where(Response.created_at < until)
    return cursors.page(query, [Response.id], scope=f"responses:{project_id}", limit=limit, cursor=cursor)
