"""A hand-built follow-through: email first asks, their reminder steps and answers, inserted directly.

The rows are what services/reminders.py and the answer paths write (models.py: a reminder is a request
pointing at its first ask, `step` 1..3; an answer carries `answered_after_step`), written here without
them so a report test does not depend on the sending side. The figures each test expects are counted
by hand in the test itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from survey_service.core.nps import category_for
from survey_service.extensions import db
from survey_service.models import Person, Response, SurveyRequest
from survey_service.services.projects import default_survey

SENT = datetime.fromisoformat("2026-01-10T09:00:00+00:00")
BEFORE = datetime.fromisoformat("2025-12-10T09:00:00+00:00")  # outside January's range
JANUARY = "since=2026-01-01&until=2026-01-31"


@dataclass(frozen=True)
class Step:
    """One reminder row of a first ask: its step, channel, status, and whether it was sent (or shown)."""

    step: int
    channel: str = "email"
    status: str = "sent"
    sent: bool = True


@dataclass(frozen=True)
class Ask:
    """A person's email first ask, its reminders, and their answer: (score, after step, through which
    request: "first" for the first ask's links, else the (step, channel) of the reminder row answered)."""

    who: str
    steps: tuple[Step, ...] = ()
    score: int | None = None
    after_step: int | None = None
    through: tuple[int, str] | None = None
    first_status: str = "sent"
    sent_at: datetime = SENT
    channel: str = "email"
    campaign: str | None = None


def _request(
    project_id: int, survey_id: int, person_id: int, channel: str, status: str, sent: bool, at: datetime
) -> SurveyRequest:
    return SurveyRequest(
        project_id=project_id,
        survey_id=survey_id,
        person_id=person_id,
        channel=channel,
        status=status,
        sent_at=at if sent else None,
        created_at=at,
    )


def seed_asks(project_id: int, asks: list[Ask]) -> dict[str, int]:
    """Insert the asks (inside an app context) and commit; returns each person's first ask id."""
    survey_id = default_survey(project_id).id
    first_ids: dict[str, int] = {}
    for ask in asks:
        person = Person(project_id=project_id, external_id=f"ft-{ask.who}", email=f"{ask.who}@example.com")
        db.session.add(person)
        db.session.flush()
        first = _request(project_id, survey_id, person.id, ask.channel, ask.first_status, True, ask.sent_at)
        first.campaign = ask.campaign
        db.session.add(first)
        db.session.flush()
        rows: dict[tuple[int, str], SurveyRequest] = {}
        for s in ask.steps:
            at = ask.sent_at + timedelta(days=3 * s.step)
            row = _request(project_id, survey_id, person.id, s.channel, s.status, s.sent, at)
            row.reminder_of_id, row.step = first.id, s.step
            db.session.add(row)
            rows[(s.step, s.channel)] = row
        db.session.flush()
        if ask.score is not None:
            answered = first if ask.through is None else rows[ask.through]
            add_answer(project_id, person.id, answered.id, ask.score, ask.after_step, ask.channel)
        first_ids[ask.who] = first.id
    db.session.commit()
    return first_ids


def add_answer(
    project_id: int, person_id: int, request_id: int | None, score: int, after_step: int | None, channel: str
) -> None:
    """An answer as the answer paths store it (category from the score, the step it came after)."""
    db.session.add(
        Response(
            project_id=project_id,
            survey_id=default_survey(project_id).id,
            person_id=person_id,
            request_id=request_id,
            score=score,
            category=category_for(score),
            channel=channel,
            answered_after_step=after_step,
            created_at=SENT + timedelta(days=1 + 3 * (after_step or 0)),
        )
    )


# The hand-built case of tests/reporting/test_follow_through.py and the dashboard's browser test.
CASE: list[Ask] = [
    # Four answer the first ask (scores 10, 9, 7, 3).
    Ask("p0", score=10, after_step=0, campaign="q1"),
    Ask("p1", score=9, after_step=0, campaign="q1"),
    Ask("p2", score=7, after_step=0, campaign="q1"),
    Ask("p3", score=3, after_step=0, campaign="q1"),
    # Six are reminded by email; two answer through the first ask's links after reminder 1 (6, 2).
    Ask("p4", steps=(Step(1),), score=6, after_step=1, campaign="q1"),
    Ask("p5", steps=(Step(1),), score=2, after_step=1),
    # Reminder 2 as the in-app fallback, answered in the widget (9).
    Ask("p6", steps=(Step(1), Step(2, "in_app")), score=9, after_step=2, through=(2, "in_app")),
    # Reminder 2 both ways ("both"), answered through the email link (8).
    Ask("p7", steps=(Step(1), Step(2), Step(2, "in_app")), score=8, after_step=2),
    # Reminder 2 failed: it never reached the person.
    Ask("p8", steps=(Step(1), Step(2, status="failed"))),
    # Reminder 2 reached, reminder 3 bounced; no answer.
    Ask("p9", steps=(Step(1), Step(2), Step(3, status="bounced"))),
    # The first ask bounced: never reached.
    Ask("p10", first_status="bounced"),
    # The first ask reached and expired unanswered; its reminder 1 was cancelled before it went out.
    Ask("p11", steps=(Step(1, "email", "cancelled", sent=False),), first_status="expired"),
]
# Counted outside January, or not an email first ask: never part of the January figures.
NOISE: list[Ask] = [
    Ask("old", steps=(Step(1),), score=0, after_step=1, sent_at=BEFORE),
    Ask("widget", channel="in_app", score=10, after_step=0),
]
