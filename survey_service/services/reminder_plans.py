"""Reminder plans: their defaults and limits, which plan an ask takes, when each reminder falls due.

Shared by the places that make asks (services/surveying, email_requests, campaigns), the send path
(email_sends), the scheduler (services/reminders), and what ends chains early (suppressions, rules and
enrolments switched off): the one statement that cancels waiting steps (`close_chains`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, null, or_, update
from sqlalchemy.sql.elements import ColumnElement

from survey_service.core import hot_cache
from survey_service.extensions import db
from survey_service.models import WAITING_STATUSES, RequestStatus, SurveyRequest

MAX_COUNT = 3
MIN_DELAY = 3600  # 1 hour
MAX_DELAY = 30 * 86400  # 30 days
MODES = ("email", "in_app_first", "both")
IN_APP_WINDOW_DAYS = (1, 90)  # how recently the widget must have seen a person, in days: the limits
DEFAULT_PLAN: dict[str, Any] = {
    "count": 1,
    "delays_seconds": [3 * 86400],
    "mode": "email",
    "in_app_window_days": 7,
}
# core/hot_cache's cache of "this project has a reminder plan somewhere" (the answer path's shortcut).
PLANS_IN_PROJECT = "reminder_plans"


def plans_changed() -> None:
    """Forget this process's cached "project has reminder plans" answers (a plan was set or cleared)."""
    hot_cache.invalidate(PLANS_IN_PROJECT)


def normalized(plan: dict[str, Any] | None) -> dict[str, Any] | None:
    """A plan with its defaults filled in, or None when it asks for no reminder (absent or count 0)."""
    if plan is None:
        return None
    full = DEFAULT_PLAN | {key: value for key, value in plan.items() if key in DEFAULT_PLAN}
    if not full["delays_seconds"]:
        full["delays_seconds"] = list(DEFAULT_PLAN["delays_seconds"])
    return full if int(full["count"]) > 0 else None


def plan_for(own: dict[str, Any] | None, survey_plan: dict[str, Any] | None) -> dict[str, Any] | None:
    """The plan an email first ask snapshots: its rule's or enrolment's own plan, else its survey's."""
    return normalized(own if own is not None else survey_plan)


def stored(plan: dict[str, Any] | None) -> Any:
    """A plan as a JSON column takes it: SQL NULL for no plan (a bare None would store JSON null)."""
    return null() if plan is None else plan


def plan_fields(plan: dict[str, Any] | None) -> dict[str, Any]:
    """The keyword a new SurveyRequest takes for a resolved plan: none at all without one (SQL NULL)."""
    return {"reminder_plan": plan} if plan is not None else {}


def delay_after(plan: dict[str, Any], step: int) -> timedelta:
    """How long after step `step` (0: the first ask) the next reminder falls due; the last delay repeats."""
    delays: list[int] = plan["delays_seconds"]
    return timedelta(seconds=int(delays[min(step, len(delays) - 1)]))


def values_when_sent(request: SurveyRequest, sent_at: datetime) -> dict[str, object]:
    """What recording a first ask's email as sent also sets: when its first reminder falls due."""
    if request.step != 0 or not request.reminder_plan:
        return {}
    plan = normalized(request.reminder_plan)
    return {"next_reminder_at": sent_at + delay_after(plan, 0)} if plan else {}


def cancel_for_people(project_id: int, person_ids: Any, reason: str) -> None:
    """Cancel the waiting reminder steps of these people (any survey, any channel) and stop their chains.

    `person_ids`: ids or a subquery of them. Runs in the caller's transaction (an unsubscribe, a bounce).
    """
    scope = and_(SurveyRequest.project_id == project_id, SurveyRequest.person_id.in_(person_ids))
    close_chains(scope, reason)


def cancel_for_source(
    project_id: int, *, trigger_id: int | None = None, enrollment_id: int | None = None
) -> None:
    """A rule or enrolment deleted or set to no reminders: its reminders not yet sent are cancelled."""
    if trigger_id is not None:
        source = SurveyRequest.trigger_id == trigger_id
    else:
        source = SurveyRequest.enrollment_id == enrollment_id
    close_chains(and_(SurveyRequest.project_id == project_id, source), "reminders_off")


def close_chains(scope: ColumnElement[bool], reason: str) -> None:
    """Cancel the waiting reminder steps among `scope`'s requests and stop its first asks' chains (one
    UPDATE, in the caller's transaction)."""
    waiting_step = and_(SurveyRequest.step > 0, SurveyRequest.status.in_(WAITING_STATUSES))
    db.session.execute(
        update(SurveyRequest)
        .where(scope, or_(SurveyRequest.next_reminder_at.is_not(None), waiting_step))
        .values(
            next_reminder_at=None,
            status=case((waiting_step, RequestStatus.CANCELLED.value), else_=SurveyRequest.status),
            status_reason=case((waiting_step, reason), else_=SurveyRequest.status_reason),
        )
        .execution_options(synchronize_session=False)
    )
