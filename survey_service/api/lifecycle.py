"""Lifecycle endpoints: events, trigger rules, survey requests, recurring enrolments, surveys' reminder
plans, settings."""

from __future__ import annotations

from typing import Any

from flask import Response as FlaskResponse

from survey_service.api import api_blueprint, current_project, current_project_id, current_project_ref
from survey_service.models import Enrollment, Survey, TriggerRule
from survey_service.schemas.common import PageQuery
from survey_service.schemas.lifecycle import (
    CancelledOut,
    EnrollmentIn,
    EnrollmentList,
    EnrollmentOut,
    EventAccepted,
    EventIn,
    SurveyList,
    SurveyOut,
    SurveyPatch,
    SurveyRequestList,
    SurveyRequestQuery,
    TemplateList,
    TriggerIn,
    TriggerList,
    TriggerOut,
    TriggerPatch,
)
from survey_service.schemas.projects import FailedJobList, ProjectOut, ProjectSettings
from survey_service.services import enrollments, events, failed_jobs, projects, surveying, triggers

bp = api_blueprint("lifecycle", __name__, "Lifecycle events, trigger rules and scheduled survey requests")


@bp.post("/events")
@bp.arguments(EventIn)
@bp.response(202, EventAccepted)
def post_event(data: dict[str, Any]) -> dict[str, Any]:
    """Accept a lifecycle event; the same id twice is acknowledged as a duplicate and sends nothing."""
    outcome = events.record_event(
        current_project_ref(),
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


@bp.post("/triggers")
@bp.arguments(TriggerIn)
@bp.response(201, TriggerOut)
def create_trigger(data: dict[str, Any]) -> TriggerRule:
    """Create a trigger rule; a built-in event type without a delay gets the recommended one."""
    return triggers.create_rule(current_project(), data)


@bp.get("/triggers")
@bp.arguments(PageQuery, location="query")
@bp.response(200, TriggerList)
def list_triggers(query: dict[str, Any]) -> dict[str, Any]:
    """List the project's trigger rules, oldest first, with cursor paging."""
    rows, next_cursor = triggers.list_rules(current_project_id(), **query)
    return {"data": rows, "next_cursor": next_cursor}


@bp.get("/triggers/<int:rule_id>")
@bp.response(200, TriggerOut)
def get_trigger(rule_id: int) -> TriggerRule:
    """Fetch one trigger rule."""
    return triggers.project_rule(current_project_id(), rule_id)


@bp.patch("/triggers/<int:rule_id>")
@bp.arguments(TriggerPatch)
@bp.response(200, TriggerOut)
def patch_trigger(data: dict[str, Any], rule_id: int) -> TriggerRule:
    """Change some fields of a trigger rule."""
    return triggers.update_rule(current_project_id(), rule_id, data)


@bp.delete("/triggers/<int:rule_id>")
@bp.response(204)
def delete_trigger(rule_id: int) -> FlaskResponse:
    """Delete a trigger rule (its scheduled requests stay scheduled; reminders not yet sent are cancelled)."""
    triggers.delete_rule(current_project_id(), rule_id)
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
    rows, next_cursor = surveying.list_requests(
        current_project_id(),
        person_id=query.get("person_id"),
        status=query.get("status"),
        limit=query["limit"],
        cursor=query.get("cursor"),
    )
    return {"data": rows, "next_cursor": next_cursor}


@bp.delete("/people/<int:person_id>/survey_requests/pending")
@bp.response(200, CancelledOut)
def delete_pending_requests(person_id: int) -> dict[str, int]:
    """Cancel every queued survey request of a person."""
    return {"cancelled": surveying.cancel_pending_of_person(current_project_id(), person_id, reason="api")}


@bp.post("/recurring")
@bp.arguments(EnrollmentIn)
@bp.response(201, EnrollmentOut)
def create_enrollment(data: dict[str, Any]) -> Enrollment:
    """Enrol a person in recurring relationship NPS (e.g. every 90 days)."""
    return enrollments.enroll(current_project_id(), data)


@bp.get("/recurring")
@bp.arguments(PageQuery, location="query")
@bp.response(200, EnrollmentList)
def list_enrollments(query: dict[str, Any]) -> dict[str, Any]:
    """List active recurring enrolments, oldest first, with cursor paging."""
    rows, next_cursor = enrollments.active_enrollments(current_project_id(), **query)
    return {"data": rows, "next_cursor": next_cursor}


@bp.delete("/recurring/<int:enrollment_id>")
@bp.response(204)
def delete_enrollment(enrollment_id: int) -> FlaskResponse:
    """Stop a recurring enrolment."""
    enrollments.unenroll(current_project_id(), enrollment_id)
    return FlaskResponse(status=204)


@bp.get("/surveys")
@bp.response(200, SurveyList)
def list_surveys() -> dict[str, Any]:
    """List the project's surveys with their reminder plans."""
    return {"data": surveying.list_surveys(current_project_id())}


@bp.get("/surveys/<int:survey_id>")
@bp.response(200, SurveyOut)
def get_survey(survey_id: int) -> Survey:
    """Fetch one survey of this project with its reminder plan."""
    return surveying.project_survey(current_project_id(), survey_id)


@bp.patch("/surveys/<int:survey_id>")
@bp.arguments(SurveyPatch)
@bp.response(200, SurveyOut)
def patch_survey(data: dict[str, Any], survey_id: int) -> Survey:
    """Set a survey's reminder plan (null: no reminders); email asks made from now on take it."""
    return surveying.update_survey(current_project_id(), survey_id, data)


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
    return projects.update_settings(current_project(), data)


@bp.get("/jobs/failed")
@bp.response(200, FailedJobList)
def list_failed_jobs() -> dict[str, Any]:
    """Send jobs of this project that failed after all retries (RQ's failed-job registry)."""
    return {"data": failed_jobs.failed_jobs(project_id=current_project_id())}
