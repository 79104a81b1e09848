"""Survey request statuses: one enum in the code, the same list as a CHECK constraint in the database."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from survey_service.extensions import db
from survey_service.models import RequestStatus, SurveyRequest
from survey_service.services.people import upsert_person
from survey_service.services.projects import default_survey


def _request(project_id: int) -> int:
    person, _ = upsert_person(project_id, {"email": "status@acme.test"})
    row = SurveyRequest(
        project_id=project_id,
        survey_id=default_survey(project_id).id,
        person_id=person.id,
        channel="email",
    )
    db.session.add(row)
    db.session.commit()
    return row.id


def test_every_status_of_the_enum_is_accepted_by_the_database(app: Flask, project: dict[str, Any]) -> None:
    with app.app_context():
        request_id = _request(project["id"])
        assert (
            db.session.scalar(select(SurveyRequest.status).where(SurveyRequest.id == request_id)) == "pending"
        )
        for status in RequestStatus:
            db.session.execute(
                update(SurveyRequest).where(SurveyRequest.id == request_id).values(status=status)
            )
            db.session.commit()
            stored = db.session.scalar(select(SurveyRequest.status).where(SurveyRequest.id == request_id))
            assert stored == status.value


@pytest.mark.parametrize("status", ["queued", "SENT", "", "unknown"])
def test_a_status_outside_the_enum_is_refused_by_the_database(
    app: Flask, project: dict[str, Any], status: str
) -> None:
    with app.app_context():
        request_id = _request(project["id"])
        # Plain SQL, past any Python-side validation: the database itself refuses the value.
        with pytest.raises(IntegrityError):
            db.session.execute(
                text("UPDATE survey_requests SET status = :status WHERE id = :id"),
                {"status": status, "id": request_id},
            )
            db.session.commit()
        db.session.rollback()
        assert (
            db.session.scalar(select(SurveyRequest.status).where(SurveyRequest.id == request_id)) == "pending"
        )
