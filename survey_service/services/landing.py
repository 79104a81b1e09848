"""The landing page's rule for counting a score: a person, not a mail scanner, must be behind it.

A GET or HEAD of a score link never counts (it only notes the view in Redis); an expired link counts
nothing at all. A score counts on a
POST from the page: either after the page's script saw it visible for a moment ("auto", the score
of the link) or on any interaction (a click, typing, a submit). Auto posts are refused when the same
request's links were opened for several different scores in a short window (a scanner's burst), and
an auto-counted score that no person ever interacted with is withdrawn when such a burst shows up.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app
from redis import RedisError
from sqlalchemy import CursorResult, delete, exists, select, update

from survey_service.core import clock
from survey_service.extensions import db, queues
from survey_service.models import Person, Response, Survey, SurveyRequest
from survey_service.services.reminder_plans import values_when_sent
from survey_service.services.responses import record_response

log = logging.getLogger(__name__)

MIN_VISIBLE_SECONDS = 1.5
BURST_WINDOW_SECONDS = 120
BURST_DISTINCT_SCORES = 3
VIEWS_TTL_SECONDS = 600


@dataclass(frozen=True)
class Outcome:
    """What a POST from the landing page achieved."""

    counted: bool
    reason: str
    response: Response | None = None


def _views_key(request_id: int) -> str:
    return f"survey:link-views:{request_id}"


def note_view(request_id: int, score: int | None) -> None:
    """Remember that a score link was opened (GET/HEAD); never touches the database."""
    if score is None:
        return
    now = time.time()
    key = _views_key(request_id)
    try:
        pipe = queues().redis.pipeline()
        pipe.zadd(key, {str(score): now})
        pipe.zremrangebyscore(key, 0, now - BURST_WINDOW_SECONDS)
        pipe.expire(key, VIEWS_TTL_SECONDS)
        pipe.execute()
    except (RedisError, OSError):
        log.warning("could not note a link view in Redis; auto-counting is off until it answers")


def forget_views(request_ids: list[int]) -> None:
    """Drop the noted link views of these requests (an erased person's); they expire anyway."""
    if not request_ids:
        return
    try:
        queues().redis.delete(*(_views_key(i) for i in request_ids))
    except (RedisError, OSError):
        log.warning("Redis unavailable: link views of %d erased request(s) left to expire", len(request_ids))


def distinct_scores_viewed(request_id: int) -> int | None:
    """How many different scores of this request were opened in the burst window; None if unknown."""
    try:
        found: Any = queues().redis.zcount(_views_key(request_id), time.time() - BURST_WINDOW_SECONDS, "+inf")
        return int(found)
    except (RedisError, OSError):
        return None


def withdraw_unconfirmed(request_id: int) -> bool:
    """Delete an auto-counted response no person interacted with (a scanner's); True if one went."""
    request = db.session.get(SurveyRequest, request_id)
    if request is None or request.email_interacted_at is not None:
        return False
    result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        delete(Response).where(Response.request_id == request_id)
    )
    gone = result.rowcount
    # The scanner's count had ended the request's reminders: a person who never answered gets them back
    # (only before any reminder was made; the first one falls due as if nothing had been counted).
    rearm: dict[str, object] = {}
    sent = request.delivered_at or request.sent_at
    if gone and request.reminder_plan and sent is not None:
        made = db.session.scalar(select(exists().where(SurveyRequest.reminder_of_id == request_id)))
        rearm = {} if made else values_when_sent(request, sent)
    db.session.execute(
        update(SurveyRequest)
        .where(SurveyRequest.id == request_id)
        .values(responded_at=None, clicked_at=None, **rearm)
    )
    db.session.commit()
    if gone:
        log.info("request %s: withdrew an auto-counted score after a burst of link opens", request_id)
    return bool(gone)


def _person_ref(person: Person) -> dict[str, str]:
    ref = {"external_id": person.external_id, "email": person.email}
    return {k: v for k, v in ref.items() if v}


def record_landing_answer(
    request: SurveyRequest,
    score: int,
    comment: str | None,
    *,
    interaction: bool,
    shown_score: int | None,
    view_age: float,
    expired: bool,
) -> Outcome:
    """Apply the counting rule to one POST from the landing page and record the score if it holds."""
    survey = db.session.get(Survey, request.survey_id)
    if survey is None or not survey.is_open:
        return Outcome(False, "closed")
    if expired:
        # The link's lifetime is the request's: past it nothing counts, not even a deliberate press
        # (a forwarded or leaked old email must not answer for the person).
        return Outcome(False, "expired")
    if not interaction:
        if shown_score != score:
            return Outcome(False, "not_the_linked_score")
        min_visible = current_app.config.get("LANDING_MIN_VISIBLE_SECONDS", MIN_VISIBLE_SECONDS)
        if view_age < min_visible:
            return Outcome(False, "too_soon")
        seen = distinct_scores_viewed(request.id)
        if seen is None:
            return Outcome(False, "unverified")
        if seen >= BURST_DISTINCT_SCORES:
            withdraw_unconfirmed(request.id)
            return Outcome(False, "burst")
    person = db.session.get(Person, request.person_id)
    assert person is not None
    channel = "link" if request.channel == "link" else "email"
    response, _ = record_response(
        request.project_id, _person_ref(person), score, comment or None, channel=channel, request=request
    )
    now = clock.now()
    values: dict[str, object] = {}
    if request.clicked_at is None:
        values["clicked_at"] = now
    if request.responded_at is None:
        values["responded_at"] = now
    if interaction and request.email_interacted_at is None:
        values["email_interacted_at"] = now
    if values:
        db.session.execute(update(SurveyRequest).where(SurveyRequest.id == request.id).values(**values))
        db.session.commit()
    return Outcome(True, "interaction" if interaction else "auto", response)


def current_response(request_id: int) -> Response | None:
    """The response already recorded for a request, if any."""
    return db.session.scalar(select(Response).where(Response.request_id == request_id))
