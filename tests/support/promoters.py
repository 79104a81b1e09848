"""Test helpers of the promoter loop: configure review targets, ask a person by email, read the stamps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask

from survey_service.extensions import db
from survey_service.models import Response, SurveyRequest
from survey_service.services import email_requests, promoters
from survey_service.services.people import upsert_person

G2 = {"label": "G2", "url": "https://www.g2.com/products/acme/take_survey"}
TRUSTPILOT = {"label": "Trustpilot", "url": "https://www.trustpilot.com/evaluate/acme.example"}


def enable_loop(app: Flask, project_id: int, *targets: dict[str, str], survey_id: int | None = None) -> None:
    """Switch the promoter loop on for the project (or one survey) with these targets (G2 by default)."""
    with app.app_context():
        promoters.save_loop_settings(project_id, survey_id, True, list(targets or (G2,)))


def score_urls(app: Flask, project_id: int, email: str) -> tuple[int, dict[str, str]]:
    """A new email survey request for a person: its id and its signed score URLs ("0"…"10")."""
    with app.app_context():
        person, _ = upsert_person(project_id, {"email": email})
        db.session.commit()
        request = email_requests.create_email_request(project_id, person.id)
        request_id = request.id
        return request_id, email_requests.survey_links(request)["score_urls"]


def review_stamps(app: Flask, request_id: int) -> dict[str, datetime | None]:
    """The promoter loop's timestamps of the response answering a request, read afresh."""
    with app.app_context():
        response = db.session.query(Response).filter(Response.request_id == request_id).one()
        return {
            "asked": response.review_asked_at,
            "consented": response.review_consented_at,
            "clicked": response.review_link_clicked_at,
        }


def request_of(app: Flask, request_id: int) -> Any:
    with app.app_context():
        return db.session.get(SurveyRequest, request_id)
