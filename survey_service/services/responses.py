"""Responses: recording a score with the person's properties frozen, and listing them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from survey_service.core import clock, cursors, nps
from survey_service.core.inserts import insert_loaded
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Person, RequestStatus, Response, ResponseTheme, SurveyRequest
from survey_service.services import projects, reminders
from survey_service.services.alerts import dispatch_response_event
from survey_service.services.people import merged_properties, upsert_person
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
    on_recorded: Callable[[Response], None] | None = None,
    person: Person | None = None,
) -> tuple[Response, bool]:
    """Record a score for a person; a second answer to the same request updates the first.

    Returns the response and whether it was created. The person's properties, after merging
    what came with this answer, are frozen on the response. on_recorded(response) runs in the same
    transaction, before its one commit (a door's own bookkeeping, e.g. the request marked answered).
    A door that already holds the person (a request's own) passes it as `person`: nothing of the
    person is then upserted or changed, and person_data is not read.
    """
    category = nps.category_for(score)
    request_id = request.id if request is not None else None
    survey_id = request.survey_id if request is not None else None

    def work() -> tuple[Response, bool]:
        response, created = write()
        if on_recorded is not None:
            on_recorded(response)
        return response, created

    known_person_id = person.id if person is not None else None
    # A request never answered has no response to update: its first answer goes straight to the INSERT
    # (one round trip less). If another answer won the race, the unique request_id makes the INSERT fail,
    # commit_with_retry runs the work again, and that run looks the response up.
    maybe_answered = request is not None and (
        request.responded_at is not None or request.status == RequestStatus.RESPONDED
    )
    runs: list[int] = []

    def write() -> tuple[Response, bool]:
        if known_person_id is not None:
            # Read again inside the unit of work (identity map: no query unless a retry rolled back).
            person = db.session.get(Person, known_person_id)
            if person is None:
                raise ApiError(404, "not_found", "No such person.")
        else:
            person, _ = upsert_person(project_id, person_data)
        existing = None
        runs.append(1)
        if request_id is not None and (maybe_answered or len(runs) > 1):
            existing = db.session.scalar(select(Response).where(Response.request_id == request_id))
        if existing is not None:
            existing.score, existing.category = score, category
            if comment is not None:
                existing.comment = comment
            if reference_consent is not None:
                existing.reference_consent = reference_consent
            existing.updated_at = clock.now()
            return existing, False
        at = created_at or clock.now()
        response = _insert(
            person,  # already loaded: the response's dump needs no second SELECT
            project_id=project_id,
            survey_id=survey_id or projects.default_survey_id(project_id),
            person_id=person.id,
            request_id=request_id,
            score=score,
            category=category,
            comment=comment,
            channel=channel,
            properties=merged_properties(person),
            reference_consent=reference_consent,
            answered_after_step=reminders.answered_step(request),
            created_at=at,
            updated_at=at,
        )
        # An answer on any channel ends the person's reminders of this survey, in this transaction.
        reminders.close_on_answer(response, request)
        return response, True

    response, created = commit_with_retry(work)
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


def _insert(person: Person, **values: Any) -> Response:
    """INSERT one new response in one Core statement (built once) and return it as a loaded Response."""
    response = insert_loaded(Response, {**_NEW_RESPONSE_DEFAULTS, "followup_tags": [], **values})
    set_committed_value(response, "person", person)
    return response


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
