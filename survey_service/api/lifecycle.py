"""Lifecycle endpoints: events, trigger rules, survey requests, recurring enrolments, settings."""

from __future__ import annotations

from typing import Any

from flask import Response as FlaskResponse
from sqlalchemy import select

from survey_service.api import api_blueprint, current_project
from survey_service.core import cursors
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Enrollment, Person, SurveyRequest, TriggerRule
from survey_service.schemas.common import PageQuery
from survey_service.schemas.lifecycle import (
    CancelledOut,
    EnrollmentIn,
    EnrollmentList,
    EnrollmentOut,
    EventAccepted,
    EventIn,
    SurveyRequestList,
    SurveyRequestQuery,
    TemplateList,
    TriggerIn,
    TriggerList,
    TriggerOut,
    TriggerPatch,
)
from survey_service.schemas.projects import FailedJobList, ProjectOut, ProjectSettings
from survey_service.services import enrollments, events, failed_jobs, triggers
from survey_service.services.surveying import cancel_pending

bp = api_blueprint("lifecycle", __name__, "Lifecycle events, trigger rules and scheduled survey requests")


@bp.post("/events")
@bp.arguments(EventIn)
@bp.response(202, EventAccepted)
def post_event(data: dict[str, Any]) -> dict[str, Any]:
    """Accept a lifecycle event; the same id twice is acknowledged as a duplicate and sends nothing."""
    outcome = events.record_event(
        current_project(),
        data["id"],
        data["type"],
        data["person"],
        occurred_at=data.get("occurred_at"),
        properties=data.get("properties"),
    )
    return {
        "id": data["id"],
        "duplicate": outcome.duplicate,
        "scheduled": outcome.requests,
        "skipped": outcome.skipped,
    }


def _rule_or_404(rule_id: int) -> TriggerRule:
    rule = db.session.get(TriggerRule, rule_id)
    if rule is None or rule.project_id != current_project().id:
        raise ApiError(404, "not_found", "No such trigger.")
    return rule


def _apply_rule_fields(rule: TriggerRule, data: dict[str, Any]) -> None:
    project_id = current_project().id
    if "survey_id" in data:
        rule.survey_id = triggers.resolve_survey_id(project_id, data["survey_id"])
    for name in ("channel", "delay_seconds", "relative_to", "conditions", "sample_percent", "enabled"):
        if name in data:
            setattr(rule, name, data[name])
    if "send_window" in data:
        window = data["send_window"] or {}
        rule.send_window_start, rule.send_window_end = window.get("start_hour"), window.get("end_hour")
    if rule.delay_seconds < 0 and not rule.relative_to:
        raise ApiError(
            422,
            "validation_error",
            "A negative delay needs relative_to (an event date property such as renewal_date).",
            {"delay_seconds": ["Must be >= 0 without relative_to."]},
        )


@bp.post("/triggers")
@bp.arguments(TriggerIn)
@bp.response(201, TriggerOut)
def create_trigger(data: dict[str, Any]) -> TriggerRule:
    """Create a trigger rule; a built-in event type without a delay gets the recommended one."""
    project = current_project()
    if data["event_type"] not in triggers.BUILTIN_EVENT_TYPES and not project.allow_custom_events:
        raise ApiError(422, "unknown_event_type", "Custom event types are not enabled for this project.")
    fields: dict[str, Any] = {
        "survey_id": None,
        "delay_seconds": 0,
        "conditions": [],
        "sample_percent": 100,
        "enabled": True,
    }
    if data["event_type"] in triggers.TEMPLATES:
        fields |= triggers.rule_from_template(project.id, data["event_type"], data["channel"])
    rule = TriggerRule(project_id=project.id, event_type=data["event_type"])
    _apply_rule_fields(rule, fields | data)
    db.session.add(rule)
    db.session.commit()
    return rule


@bp.get("/triggers")
@bp.arguments(PageQuery, location="query")
@bp.response(200, TriggerList)
def list_triggers(query: dict[str, Any]) -> dict[str, Any]:
    """List the project's trigger rules, oldest first, with cursor paging."""
    project_id = current_project().id
    stmt = select(TriggerRule).where(TriggerRule.project_id == project_id)
    rows, next_cursor = cursors.page(
        stmt, [TriggerRule.id], scope=f"triggers:{project_id}", descending=False, **query
    )
    return {"data": rows, "next_cursor": next_cursor}


@bp.get("/triggers/<int:rule_id>")
@bp.response(200, TriggerOut)
def get_trigger(rule_id: int) -> TriggerRule:
    """Fetch one trigger rule."""
    return _rule_or_404(rule_id)


@bp.patch("/triggers/<int:rule_id>")
@bp.arguments(TriggerPatch)
@bp.response(200, TriggerOut)
def patch_trigger(data: dict[str, Any], rule_id: int) -> TriggerRule:
    """Change some fields of a trigger rule."""
    rule = _rule_or_404(rule_id)
    _apply_rule_fields(rule, data)
    db.session.commit()
    return rule


@bp.delete("/triggers/<int:rule_id>")
@bp.response(204)
def delete_trigger(rule_id: int) -> FlaskResponse:
    """Delete a trigger rule (requests it already scheduled stay scheduled)."""
    db.session.delete(_rule_or_404(rule_id))
    db.session.commit()
    return FlaskResponse(status=204)


@bp.get("/trigger_templates")
@bp.response(200, TemplateList)
def list_templates() -> dict[str, Any]:
    """The built-in event types and their recommended delays."""
    return {"data": list(triggers.TEMPLATES.values())}


@bp.get("/survey_requests")
@bp.arguments(SurveyRequestQuery, location="query")
@bp.response(200, SurveyRequestList)
def list_survey_requests(query: dict[str, Any]) -> dict[str, Any]:
    """List survey requests, newest first, by person and status, with cursor paging."""
    project_id = current_project().id
    stmt = select(SurveyRequest).where(SurveyRequest.project_id == project_id)
    if "person_id" in query:
        stmt = stmt.where(SurveyRequest.person_id == query["person_id"])
    if "status" in query:
        stmt = stmt.where(SurveyRequest.status == query["status"])
    rows, next_cursor = cursors.page(
        stmt,
        [SurveyRequest.id],
        scope=f"survey_requests:{project_id}",
        limit=query["limit"],
        cursor=query.get("cursor"),
    )
    return {"data": rows, "next_cursor": next_cursor}


@bp.delete("/people/<int:person_id>/survey_requests/pending")
@bp.response(200, CancelledOut)
def delete_pending_requests(person_id: int) -> dict[str, int]:
    """Cancel every queued survey request of a person."""
    person = db.session.get(Person, person_id)
    if person is None or person.project_id != current_project().id:
        raise ApiError(404, "not_found", "No such person.")
    count = cancel_pending(person.project_id, person.id, reason="api")
    db.session.commit()
    return {"cancelled": count}


@bp.post("/recurring")
@bp.arguments(EnrollmentIn)
@bp.response(201, EnrollmentOut)
def create_enrollment(data: dict[str, Any]) -> Enrollment:
    """Enrol a person in recurring relationship NPS (e.g. every 90 days)."""
    return enrollments.enroll(current_project().id, data)


@bp.get("/recurring")
@bp.arguments(PageQuery, location="query")
@bp.response(200, EnrollmentList)
def list_enrollments(query: dict[str, Any]) -> dict[str, Any]:
    """List active recurring enrolments, oldest first, with cursor paging."""
    project_id = current_project().id
    stmt = select(Enrollment).where(Enrollment.project_id == project_id, Enrollment.active.is_(True))
    rows, next_cursor = cursors.page(
        stmt, [Enrollment.id], scope=f"recurring:{project_id}", descending=False, **query
    )
    return {"data": rows, "next_cursor": next_cursor}


@bp.delete("/recurring/<int:enrollment_id>")
@bp.response(204)
def delete_enrollment(enrollment_id: int) -> FlaskResponse:
    """Stop a recurring enrolment."""
    enrollments.unenroll(current_project().id, enrollment_id)
    return FlaskResponse(status=204)


@bp.get("/project")
@bp.response(200, ProjectOut)
def get_project() -> Any:
    """This project's settings."""
    return current_project()


@bp.patch("/project")
@bp.arguments(ProjectSettings)
@bp.response(200, ProjectOut)
def patch_project(data: dict[str, Any]) -> Any:
    """Change the quiet period or whether custom event types are accepted."""
    project = current_project()
    for name, value in data.items():
        setattr(project, name, value)
    db.session.commit()
    return project


@bp.get("/jobs/failed")
@bp.response(200, FailedJobList)
def list_failed_jobs() -> dict[str, Any]:
    """Send jobs of this project that failed after all retries (RQ's failed-job registry)."""
    return {"data": failed_jobs.failed_jobs(project_id=current_project().id)}
