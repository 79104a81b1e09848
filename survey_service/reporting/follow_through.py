"""What the follow-through buys: response rates per step of the email first asks (issue 18).

A cohort of email first asks (sent in the filter's range, for its survey, trigger rule, event type and
campaign) is followed through its steps: the first ask (step 0) and its reminders 1..3, each by email
or, as the in-app fallback, in the widget (services/reminders.py writes them; this module only reads).
A step *reached* a person when its request was sent (in-app: shown) and did not fail or bounce; an
answer counts for the step it came after (`responses.answered_after_step`), so each step's figure is
what that step added. Two statements: one GROUP BY per first ask for the steps that reached, one for
the answers; the database counts, Python only does the arithmetic (core/nps.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import aliased

from survey_service.core import nps
from survey_service.extensions import db
from survey_service.models import NEVER_REACHED_STATUSES, Response, SurveyRequest
from survey_service.reporting.filters import ResponseFilter

EMAIL, IN_APP = "email", "in_app"
MAX_STEP = 3
# The rows of the table: the first ask, then each reminder by email and as the in-app fallback.
ROWS: tuple[tuple[int, str], ...] = ((0, EMAIL),) + tuple(
    (step, channel) for step in range(1, MAX_STEP + 1) for channel in (EMAIL, IN_APP)
)
COMPARISON_TEST = "two-sample z-test on the adjusted-Wald NPS (core/nps.py compare), two-sided, alpha 0.05"


def _flag(step: int, channel: str) -> str:
    return f"{channel}_{step}"


def _reached(request: Any) -> Any:
    """A request that reached its person: sent (in-app: shown), neither failed nor bounced."""
    return and_(request.sent_at.is_not(None), request.status.not_in(NEVER_REACHED_STATUSES))


def _first_asks(flt: ResponseFilter) -> list[Any]:
    """The cohort: the filter's email first asks, by when they were sent."""
    conds: list[Any] = [
        *flt.request_conditions(),
        SurveyRequest.channel == EMAIL,
        SurveyRequest.step == 0,
        SurveyRequest.reminder_of_id.is_(None),
        SurveyRequest.sent_at.is_not(None),
    ]
    if flt.survey_id is not None:
        conds.append(SurveyRequest.survey_id == flt.survey_id)
    if flt.since is not None:
        conds.append(SurveyRequest.sent_at >= flt.since)
    if flt.until is not None:
        conds.append(SurveyRequest.sent_at < flt.until)
    return conds


def _per_ask(flt: ResponseFilter) -> Any:
    """One row per first ask of the cohort: 1/0 whether it reached the person, and each step's row did."""
    reminder = aliased(SurveyRequest)
    flags = [
        func.max(
            case((and_(reminder.step == step, reminder.channel == channel, _reached(reminder)), 1), else_=0)
        ).label(_flag(step, channel))
        for step, channel in ROWS[1:]
    ]
    stmt = (
        select(
            SurveyRequest.id.label("id"),
            func.max(case((_reached(SurveyRequest), 1), else_=0)).label(_flag(0, EMAIL)),
            *flags,
        )
        .select_from(SurveyRequest)
        .outerjoin(
            reminder,
            and_(reminder.reminder_of_id == SurveyRequest.id, reminder.project_id == flt.project_id),
        )
        .where(*_first_asks(flt))
        .group_by(SurveyRequest.id)
    )
    return stmt.subquery("per_ask")


def _reached_counts(per_ask: Any) -> tuple[int, dict[tuple[int, str], int]]:
    """How many first asks the cohort holds, and how many each step's row reached."""
    row = db.session.execute(
        select(
            func.count().label("first_asks"),
            *(func.coalesce(func.sum(per_ask.c[_flag(s, c)]), 0).label(_flag(s, c)) for s, c in ROWS),
        )
    ).one()
    return int(row.first_asks), {(s, c): int(getattr(row, _flag(s, c))) for s, c in ROWS}


def _at_step(per_ask: Any, step: Any, channel: str) -> Any:
    """Whether the first ask's reminder `step` (a column) reached the person by `channel`: 1 or 0."""
    return case(
        *((step == s, per_ask.c[_flag(s, channel)]) for s in range(1, MAX_STEP + 1)),
        else_=0,
    )


def _answer_counts(flt: ResponseFilter, per_ask: Any) -> dict[tuple[int, str], nps.NpsStats]:
    """The cohort's answers per step they came after and the channel of that step, as NPS counts.

    An answer after reminder k goes to the in-app row when it came through the in-app ask (or no email
    reminder k reached the person), else to the email row: the email reminder reuses the first ask's
    links, so an email answer names the first ask, not the reminder. An answer without a step (one
    stored before reminders existed) counts for the step of the request it answered.
    """
    answered = aliased(SurveyRequest)
    # Answers stored before reminders existed (reminders_01 added the column, empty) answered the step
    # of the request they name: the first ask, 0.
    step = func.coalesce(Response.answered_after_step, answered.step)
    via_in_app = and_(answered.channel == IN_APP, _at_step(per_ask, step, IN_APP) == 1)
    no_email = _at_step(per_ask, step, EMAIL) == 0
    attributed = case(
        (step == 0, literal(EMAIL)),
        (via_in_app, literal(IN_APP)),
        (no_email, literal(IN_APP)),
        else_=literal(EMAIL),
    )
    answers = (
        select(step.label("step"), attributed.label("channel"), Response.category.label("category"))
        .select_from(Response)
        .join(answered, answered.id == Response.request_id)
        .join(per_ask, per_ask.c.id == func.coalesce(answered.reminder_of_id, answered.id))
        .where(
            Response.project_id == flt.project_id,
            answered.project_id == flt.project_id,
            Response.category.is_not(None),
            step.between(0, MAX_STEP),
            per_ask.c[_flag(0, EMAIL)] == 1,
        )
        .subquery("answers")
    )
    rows = db.session.execute(
        select(
            answers.c.step,
            answers.c.channel,
            func.count().filter(answers.c.category == nps.PROMOTER).label("promoters"),
            func.count().filter(answers.c.category == nps.PASSIVE).label("passives"),
            func.count().filter(answers.c.category == nps.DETRACTOR).label("detractors"),
        ).group_by(answers.c.step, answers.c.channel)
    )
    return {
        (int(r.step), str(r.channel)): nps.NpsStats(int(r.promoters), int(r.passives), int(r.detractors))
        for r in rows
    }


def rate(responses: int, reached: int) -> dict[str, Any]:
    """A response rate in percent (one decimal) with its 95% Wilson interval; nulls when none was reached."""
    interval = nps.wilson_interval(responses, reached)
    return {
        "response_rate": round(responses / reached * 100, 1) if reached else None,
        "rate_low": round(interval[0] * 100, 1) if interval else None,
        "rate_high": round(interval[1] * 100, 1) if interval else None,
    }


def step_label(step: int, channel: str) -> str:
    """How a person reads a step: "First ask", "Reminder 1 (email)", "Reminder 2 (in-app)"."""
    if step == 0:
        return "First ask"
    return f"Reminder {step} ({'in-app' if channel == IN_APP else 'email'})"


def step_response_rates(flt: ResponseFilter) -> dict[str, Any]:
    """Per step of the email first asks: reached, answers it added, rate with interval, cumulative rate;
    and whether answers after a reminder score differently from answers to the first ask.

    Uses the filter's project, range (when the first ask was sent), survey, trigger rule, event type and
    campaign; answers and reminders count whenever they came (the cohort is followed to its end).
    """
    per_ask = _per_ask(flt)
    first_asks, reached = _reached_counts(per_ask)
    answers = _answer_counts(flt, per_ask)
    steps = []
    for step, channel in ROWS:
        added = answers.get((step, channel), nps.EMPTY).responses
        steps.append(
            {
                "step": step,
                "channel": channel,
                "label": step_label(step, channel),
                "reached": reached[(step, channel)],
                "responses": added,
                **rate(added, reached[(step, channel)]),
            }
        )
    base = reached[(0, EMAIL)]
    cumulative = []
    total = 0
    for step in range(MAX_STEP + 1):
        total += sum(stats.responses for (s, _), stats in answers.items() if s == step)
        cumulative.append({"after_step": step, "responses": total, "reached": base, **rate(total, base)})
    first = sum((stats for (s, _), stats in answers.items() if s == 0), nps.EMPTY)
    reminded = sum((stats for (s, _), stats in answers.items() if s > 0), nps.EMPTY)
    comparison = nps.compare(reminded, first)
    return {
        "first_asks": first_asks,
        "steps": steps,
        "cumulative": cumulative,
        "reminded_vs_first_ask": {
            "first_ask": first.as_dict(),
            "reminded": reminded.as_dict(),
            "change": comparison.change,
            "z": comparison.z,
            "p_value": comparison.p_value,
            "significant": comparison.significant,
            "test": COMPARISON_TEST,
        },
    }
