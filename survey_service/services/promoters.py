"""The promoter loop: a project's review or referral links, offered to promoters who agree to leave one.

The server decides everything a browser could try to force:
- **asked** (`review_asked_at`): the thank-you step after a promoter's (9-10) answer offered the review
  (the landing page's final submit, the widget's comment submit). Detractors and passives are never offered
  it, and no link is shown at this point: only the question and a button.
- **consented** (`review_consented_at`): the person pressed "Happy to leave a review" (a POST with the
  consent token of their own response). Only then are the review links issued.
- **clicked** (`review_link_clicked_at`): the person followed one of those links; the first follow counts.

A review link is a signed redirect (core.tokens) naming the response, the target's index and its URL's
digest; it redirects only to the URL configured now at that index, so no URL from a request is ever
followed (no open redirect).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import CursorResult, delete, or_, select, update

from survey_service.core import clock, hot_cache, nps, tokens
from survey_service.core.i18n import Strings, negotiate
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Person, PromoterLoop, Response, Survey
from survey_service.services.tx import commit_with_retry

PROMOTER = "promoter"
# core/hot_cache's cache of whether a survey's promoters are offered the review, by (project id, survey id).
REVIEW_OFFERED = "promoter_review_offered"


class ReviewUnavailable(Exception):
    """The review step or link does not apply: bad token, not a promoter, no consent, target not allowed."""


@dataclass(frozen=True)
class ReviewLink:
    """One review link as a person sees it: the configured label and the signed redirect's URL."""

    label: str
    url: str


def consent_url(token: str) -> str:
    """Where the "happy to leave a review" button posts (public/promoter_pages.py)."""
    return f"{current_app.config['BASE_URL']}/review/{token}"


def review_link_url(token: str) -> str:
    """The signed redirect of one review link."""
    return f"{current_app.config['BASE_URL']}/review/go/{token}"


def strings_for(response: Response, *browser_locales: str) -> Strings:
    """The person's language for the review step: theirs, the survey's, then the browser's."""
    person = db.session.get(Person, response.person_id)
    survey = db.session.get(Survey, response.survey_id)
    return Strings(
        negotiate(person.locale if person else None, survey.locale if survey else None, *browser_locales)
    )


def url_digest(url: str) -> str:
    """The digest a review link token carries of its target URL (never the URL itself)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


# --- settings: the project's default and a survey's own override -----------------------------------


def _survey_of_project(project_id: int, survey_id: int) -> None:
    survey = db.session.get(Survey, survey_id)
    if survey is None or survey.project_id != project_id:
        raise ApiError(404, "not_found", "No such survey.")


def _row(project_id: int, survey_id: int | None) -> PromoterLoop | None:
    query = select(PromoterLoop).where(PromoterLoop.project_id == project_id)
    query = query.where(
        PromoterLoop.survey_id.is_(None) if survey_id is None else PromoterLoop.survey_id == survey_id
    )
    return db.session.scalar(query)


def loop_settings(project_id: int, survey_id: int | None = None) -> dict[str, Any]:
    """The settings of the project (survey_id None) or of one survey, and where they come from.

    `source` is "survey" (the survey's own), "project" (a survey inheriting the project's) or "default"
    (nothing configured: off).
    """
    if survey_id is not None:
        _survey_of_project(project_id, survey_id)
        own = _row(project_id, survey_id)
        if own is not None:
            return _settings(survey_id, own, "survey")
    project_row = _row(project_id, None)
    if project_row is not None:
        return _settings(survey_id, project_row, "project")
    return {"survey_id": survey_id, "enabled": False, "targets": [], "source": "default"}


def _settings(survey_id: int | None, row: PromoterLoop, source: str) -> dict[str, Any]:
    return {"survey_id": survey_id, "enabled": row.enabled, "targets": row.targets, "source": source}


def save_loop_settings(
    project_id: int, survey_id: int | None, enabled: bool, targets: list[dict[str, str]]
) -> dict[str, Any]:
    """Replace the project's (or one survey's) review targets and switch; returns loop_settings."""
    if survey_id is not None:
        _survey_of_project(project_id, survey_id)
    if enabled and not targets:
        raise ApiError(
            422, "validation_error", "An enabled promoter loop needs at least one target.", {"targets": []}
        )

    def work() -> None:
        row = _row(project_id, survey_id)
        if row is None:
            row = PromoterLoop(project_id=project_id, survey_id=survey_id)
            db.session.add(row)
        row.enabled = enabled
        row.targets = [{"label": t["label"], "url": t["url"]} for t in targets]
        row.updated_at = clock.now()
        db.session.flush()

    commit_with_retry(work)
    hot_cache.invalidate(REVIEW_OFFERED)
    return loop_settings(project_id, survey_id)


def delete_survey_override(project_id: int, survey_id: int) -> None:
    """Drop a survey's own settings: it inherits the project's again (idempotent)."""
    _survey_of_project(project_id, survey_id)
    db.session.execute(
        delete(PromoterLoop).where(PromoterLoop.project_id == project_id, PromoterLoop.survey_id == survey_id)
    )
    db.session.commit()
    hot_cache.invalidate(REVIEW_OFFERED)


def _active_targets(response: Response) -> list[dict[str, str]]:
    """The review targets that apply to a response now (its survey's, else the project's); [] when off."""
    # One SELECT: the survey's own row sorts before the project's (survey_id NULL).
    row = db.session.scalar(
        select(PromoterLoop)
        .where(
            PromoterLoop.project_id == response.project_id,
            or_(PromoterLoop.survey_id == response.survey_id, PromoterLoop.survey_id.is_(None)),
        )
        .order_by(PromoterLoop.survey_id.is_(None))
        .limit(1)
    )
    if row is None or not row.enabled:
        return []
    return list(row.targets or [])


def _review_offered(response: Response) -> bool:
    """Whether the thank-you step offers this response's survey's promoters the review (cached briefly).

    The answer's hot path reads this on every promoter's answer; the settings change a few times a year.
    A change made in another process reaches this one within HOT_CACHE_SECONDS; consenting and following
    a link read the targets again (_active_targets), so an offer made meanwhile issues no link of a loop
    switched off.
    """
    key = (response.project_id, response.survey_id)
    return hot_cache.cached(REVIEW_OFFERED, key, lambda: bool(_active_targets(response)))


def _is_promoter(response: Response) -> bool:
    # The category is stored with a CHECK that it matches the score; the score decides all the same.
    return nps.category_for(response.score) == PROMOTER


# --- the person's steps: offered, consented, followed ------------------------------------------------


def _stamp_once(response_id: int, column: str, now: datetime) -> bool:
    """Set a response's review timestamp if it is still empty (one UPDATE: safe against a double submit)."""
    target = getattr(Response, column)
    result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        update(Response)
        .where(Response.id == response_id, target.is_(None))
        .values({column: now})
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def review_step(response: Response, *browser_locales: str) -> dict[str, str] | None:
    """The thank-you step's review question for a promoter (offer_review), in their language; else None."""
    token = offer_review(response)
    if token is None:
        return None
    t = strings_for(response, *browser_locales)
    return {"url": consent_url(token), "prompt": t("review.prompt"), "consent": t("review.consent")}


def offer_review(response: Response) -> str | None:
    """The consent token of the thank-you step when this answer is a promoter's and the loop is on.

    Records `review_asked_at` the first time; None (and nothing recorded) for a detractor or passive or
    when the project offers no review.
    """
    if not _is_promoter(response) or not _review_offered(response):
        return None
    _stamp_once(response.id, "review_asked_at", clock.now())
    db.session.commit()
    return tokens.review_consent_token(response.id)


def _response_for(response_id: int) -> Response:
    response = db.session.get(Response, response_id)
    if response is None or not _is_promoter(response):
        raise ReviewUnavailable("not a promoter's response")
    return response


def consent_to_review(token: str) -> tuple[Response, list[ReviewLink]]:
    """Record that the promoter agreed to leave a review and issue their review links.

    Refused (ReviewUnavailable) for a bad token, a response that is no longer a promoter's (the score was
    changed) or a loop switched off since.
    """
    try:
        response_id = tokens.read_review_consent_token(token)
    except tokens.TokenInvalid:
        raise ReviewUnavailable("bad consent token") from None
    response = _response_for(response_id)
    targets = _active_targets(response)
    if not targets:
        raise ReviewUnavailable("no review targets")
    now = clock.now()
    _stamp_once(response.id, "review_asked_at", now)
    _stamp_once(response.id, "review_consented_at", now)
    db.session.commit()
    links = [
        ReviewLink(
            target["label"],
            review_link_url(tokens.review_link_token(response.id, i, url_digest(target["url"]))),
        )
        for i, target in enumerate(targets)
    ]
    return response, links


def follow_review_link(token: str) -> str:
    """The configured URL a review link leads to, recording the response's first click.

    Refused (ReviewUnavailable) for a forged or altered token, a response without consent or no longer a
    promoter's, and a target that is not (or no longer) in the allow-list at that place.
    """
    try:
        response_id, index, digest = tokens.read_review_link_token(token)
    except tokens.TokenInvalid:
        raise ReviewUnavailable("bad link token") from None
    response = _response_for(response_id)
    if response.review_consented_at is None:
        raise ReviewUnavailable("no consent")
    targets = _active_targets(response)
    if index >= len(targets) or not hmac.compare_digest(url_digest(targets[index]["url"]), digest):
        raise ReviewUnavailable("target not allowed")
    if _stamp_once(response.id, "review_link_clicked_at", clock.now()):
        db.session.commit()
    else:
        db.session.rollback()
    return targets[index]["url"]
