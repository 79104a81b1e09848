"""One survey lookup: "this project's survey, or the default" answers the same 404 at every door.

Survey requests and links used to answer 404, triggers and recurring enrolments 422, and scheduling
raised a bare LookupError; all now go through `surveying.project_survey`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Enrollment, Survey, SurveyRequest, TriggerRule
from survey_service.services import surveying
from survey_service.services.people import upsert_person
from survey_service.services.projects import default_survey_id
from tests.support.db import make_project

UNKNOWN_ID = 987654


def _second_survey(app: Flask, project_id: int) -> int:
    """A project's own survey other than its default one."""
    with app.app_context():
        survey = Survey(
            project_id=project_id, kind="nps", name="Onboarding", product_name="Acme", question="Q?"
        )
        db.session.add(survey)
        db.session.commit()
        return survey.id


def _rule(client: FlaskClient, auth: dict[str, str]) -> int:
    res = client.post(
        "/api/v1/triggers",
        json={"event_type": "signup", "channel": "email", "delay_seconds": 60},
        headers=auth,
    )
    assert res.status_code == 201, res.get_json()
    return int(res.get_json()["id"])


PERSON = {"email": "lookup@acme.test"}
# Each door that takes a survey id: (method, path, body) for a survey id; {rule} is a trigger of the project.
DOORS: dict[str, Callable[[int], tuple[str, str, dict[str, Any]]]] = {
    "survey_requests": lambda sid: ("POST", "/api/v1/survey_requests", {"person": PERSON, "survey_id": sid}),
    "survey_links": lambda sid: ("POST", "/api/v1/survey_links", {"person": PERSON, "survey_id": sid}),
    "create_trigger": lambda sid: (
        "POST",
        "/api/v1/triggers",
        {"event_type": "signup", "channel": "email", "delay_seconds": 0, "survey_id": sid},
    ),
    "patch_trigger": lambda sid: ("PATCH", "/api/v1/triggers/{rule}", {"survey_id": sid}),
    "recurring": lambda sid: (
        "POST",
        "/api/v1/recurring",
        {"person": PERSON, "interval_days": 90, "survey_id": sid},
    ),
}


def _rows(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {
            model.__tablename__: int(db.session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (SurveyRequest, TriggerRule, Enrollment)
        }


@pytest.mark.parametrize("door", sorted(DOORS))
def test_a_survey_id_that_is_not_the_projects_is_the_same_404_at_every_door(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    redis_url: str,
    door: str,
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    rule_id = _rule(client, auth)
    other = make_project(app, "Other")
    with app.app_context():
        others_survey = default_survey_id(other["id"])
    before = _rows(app)
    for survey_id in (others_survey, UNKNOWN_ID):
        method, path, body = DOORS[door](survey_id)
        res = client.open(path.format(rule=rule_id), method=method, json=body, headers=auth)
        assert res.status_code == 404, res.get_json()
        assert res.get_json() == {
            "status": 404,
            "code": "not_found",
            "message": "No such survey in this project.",
            "details": {"survey_id": survey_id},
        }
        assert _rows(app) == before  # nothing half-made
    with app.app_context():
        rule = db.session.get(TriggerRule, rule_id)
        assert rule is not None and rule.survey_id == default_survey_id(project["id"])

    # The project's own survey, default or not, is taken at the same door.
    own = _second_survey(app, project["id"])
    method, path, body = DOORS[door](own)
    res = client.open(path.format(rule=rule_id), method=method, json=body, headers=auth)
    assert res.status_code in (200, 201), res.get_json()


def test_scheduling_with_another_projects_survey_raises_the_same_error(
    app: Flask, project: dict[str, Any]
) -> None:
    other = make_project(app, "Other")
    with app.app_context():
        person, _ = upsert_person(project["id"], PERSON)
        db.session.commit()
        for survey_id in (default_survey_id(other["id"]), UNKNOWN_ID):
            with pytest.raises(ApiError) as raised:
                surveying.schedule_survey(project["id"], person.id, survey_id=survey_id)
            error = raised.value
            assert (error.status, error.code, error.details) == (404, "not_found", {"survey_id": survey_id})
            db.session.rollback()
        assert surveying.project_survey(project["id"], None).id == default_survey_id(project["id"])
        outcome = surveying.schedule_survey(project["id"], person.id)
        assert outcome.request is not None and outcome.request.survey_id == default_survey_id(project["id"])
