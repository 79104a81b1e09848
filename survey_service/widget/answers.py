"""The widget's answers and dismissals: the request a token names, the score and comment, dismissing."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import Select, and_, bindparam, func, select, update

from survey_service.core import clock, cursors, tokens
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import (
    ANSWERABLE_STATUSES,
    Person,
    RequestStatus,
    Response,
    SurveyRequest,
    WidgetDismissal,
)
from survey_service.services.reminder_plans import close_chains
from survey_service.services.responses import record_first_answer, record_response
from survey_service.services.tx import commit_with_retry
from survey_service.widget.eligibility import CHANNEL

# status_reason of the reminder steps a dismissal cancelled.
DISMISSED_REASON = "dismissed_in_app"


def _serializer() -> URLSafeTimedSerializer:
    """The serializer of widget answer tokens (core.tokens signs and reads them; tests peek inside)."""
    return tokens.timed_serializer(tokens.WIDGET_ANSWER)


def answerable(request: SurveyRequest, now: datetime) -> bool:
    """Whether a widget token may still answer its request: shown or answered, and not expired."""
    return request.status in ANSWERABLE_STATUSES and (request.expires_at is None or request.expires_at > now)


@functools.cache
def _request_with_person() -> Select[SurveyRequest, Person]:
    """SELECT a request by id with its person (built once: building it cost a tenth of an answer's CPU)."""
    return (
        select(SurveyRequest, Person)
        .join(Person, Person.id == SurveyRequest.person_id)
        .where(SurveyRequest.id == bindparam("request_id"))
    )


def _read_token(token: str) -> tuple[int, int, int]:
    """The project, person and request a widget answer token names; else 401."""
    try:
        return tokens.read_widget_answer_token(token)
    except tokens.TokenInvalid:
        raise ApiError(401, "invalid_token", "The survey token is not valid or has expired.") from None


def _request_for_token(project_id: int, token: tuple[int, int, int]) -> tuple[SurveyRequest, Person]:
    """The in-app request a widget token names and its person, if it is this project's; else 404."""
    token_project_id, person_id, request_id = token
    # The request with its person in one round trip (the answer needs both). The person is returned, not
    # left to the session: its identity map holds objects weakly, so one nobody holds is read again.
    row = db.session.execute(_request_with_person(), {"request_id": request_id}).first()
    if (
        token_project_id != project_id
        or row is None
        or row[0].project_id != project_id
        or row[0].person_id != person_id
        or row[0].channel != CHANNEL
    ):
        raise ApiError(404, "not_found", "No such survey.")
    return row[0], row[1]


def answered_elsewhere(request: SurveyRequest) -> bool:
    """Whether a reminder step's ask was answered through another of its requests (the email's link, another
    step) while this one was on screen: one ask takes one response. Its own answer may still be changed."""
    if request.reminder_of_id is None or request.responded_at is not None:
        return False
    first = db.session.get(SurveyRequest, request.reminder_of_id)
    return first is not None and first.responded_at is not None


def end_reminders(project_id: int, ask_id: int) -> None:
    """Stop the reminders of an ask (its first ask's id): none falls due any more, and its steps still
    waiting to go out (email or in-app) are cancelled. The ask itself stays answerable.

    A person who dismissed an in-app reminder saw the ask and declined it: reminding them again by email
    would be the nagging reminders must not be. A step an email job already claimed is past recall.

    The ask's row is written first, in a statement of its own: that takes its row lock, so a reminder
    scheduler advancing the same ask (it writes next_reminder_at in the transaction that adds a step)
    commits before the steps are cancelled by the next statement, whose snapshot then holds its new step,
    or waits for this commit and finds none due.
    """
    db.session.execute(
        update(SurveyRequest)
        .where(SurveyRequest.project_id == project_id, SurveyRequest.id == ask_id)
        .values(next_reminder_at=None)
        .execution_options(synchronize_session=False)
    )
    close_chains(
        and_(SurveyRequest.project_id == project_id, SurveyRequest.reminder_of_id == ask_id), DISMISSED_REASON
    )


def answer(project_id: int, token: str, score: int, comment: str | None) -> Response:
    """Record (or change) the in-app answer a widget token stands for, properties frozen.

    The request's state is checked now, not only the token's age: a dismissed, expired or otherwise
    closed request takes no answer (410). The response and the request marked answered are one commit.
    """
    named = _read_token(token)
    comment = (comment or "").strip() or None
    if named[0] == project_id:
        # The common case, the first answer to the request on screen: one statement (PostgreSQL).
        first = record_first_answer(project_id, named[2], named[1], CHANNEL, score, comment)
        if first is not None:
            return first
    request, person = _request_for_token(project_id, named)
    if not answerable(request, clock.now()) or answered_elsewhere(request):
        raise ApiError(410, "survey_closed", "This survey is closed: it was dismissed or has expired.")
    # The request's own person, as is: a browser's answer changes nothing of who the person is.
    response, _ = record_response(
        project_id, {}, score, comment, channel=CHANNEL, request=request, mark_answered=True, person=person
    )
    return response


def dismiss(project_id: int, token: str) -> bool:
    """Record that the person closed the widget without answering; False when they had answered.

    The dismissal ends the ask's reminders (end_reminders), email ones included.
    """
    request, _ = _request_for_token(project_id, _read_token(token))

    def work() -> bool:
        fresh = db.session.get(SurveyRequest, request.id)
        if fresh is None or fresh.responded_at is not None:
            return False
        fresh.status = RequestStatus.DISMISSED
        db.session.add(WidgetDismissal(project_id=project_id, person_id=fresh.person_id, request_id=fresh.id))
        if fresh.reminder_of_id is not None or fresh.reminder_plan is not None:
            # Declining the ask (a reminder step, or a first ask with reminders) ends its reminders.
            end_reminders(project_id, fresh.reminder_of_id or fresh.id)
        return True

    return commit_with_retry(work)


def list_dismissals(
    project_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of the project's widget dismissals, newest first, with the total in the range."""
    where = [WidgetDismissal.project_id == project_id]
    if since:
        where.append(WidgetDismissal.dismissed_at >= since)
    if until:
        where.append(WidgetDismissal.dismissed_at < until)
    total = db.session.scalar(select(func.count()).select_from(WidgetDismissal).where(*where)) or 0
    rows, next_cursor = cursors.page(
        select(WidgetDismissal, Person.external_id, Person.email)
        .join(Person, Person.id == WidgetDismissal.person_id)
        .where(*where),
        [WidgetDismissal.dismissed_at, WidgetDismissal.id],
        scope=f"dismissals:{project_id}",
        limit=limit,
        cursor=cursor,
        scalars=False,
        key_of=lambda row: [row[0].dismissed_at, row[0].id],
    )
    data = [
        {
            "person_id": d.person_id,
            "external_id": external_id,
            "email": email,
            "request_id": d.request_id,
            "dismissed_at": d.dismissed_at,
        }
        for d, external_id, email in rows
    ]
    return {"total": total, "data": data, "next_cursor": next_cursor}
