"""The links of a survey request: its landing page (with a score preselected), unsubscribe, open pixel.

The survey email carries them and the email request API returns them; each holds a signed token.
"""

from __future__ import annotations

from flask import current_app

from survey_service.core import tokens
from survey_service.models import SurveyRequest


def landing_url(request: SurveyRequest, score: int | None = None) -> str:
    """The landing page URL of a request, with a score preselected when given."""
    assert request.expires_at is not None
    url = f"{current_app.config['BASE_URL']}/s/{tokens.score_link_token(request.id, request.expires_at)}"
    return url if score is None else f"{url}?score={score}"


def unsubscribe_url(request: SurveyRequest) -> str:
    """The one-click unsubscribe URL of a request (RFC 8058)."""
    return f"{current_app.config['BASE_URL']}/u/{tokens.unsubscribe_token(request.id)}"


def open_pixel_url(request: SurveyRequest) -> str:
    """The URL of the request's open-tracking pixel (only put in emails when EMAIL_OPEN_TRACKING is on)."""
    return f"{current_app.config['BASE_URL']}/o/{tokens.open_pixel_token(request.id)}.gif"
