"""The pages a surveyed person sees: the landing page of the email's score links, and unsubscribe."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import TooManyRequests

from survey_service.core import clock, contrast, nps, tokens
from survey_service.core.i18n import Strings, accepted_locales, negotiate
from survey_service.core.ratelimit import limit_blueprint
from survey_service.errors import from_http_exception
from survey_service.extensions import db
from survey_service.models import Person, Project, Survey, SurveyRequest
from survey_service.schemas.common import MAX_COMMENT
from survey_service.services import email_requests, landing, promoters
from survey_service.services.suppressions import add_suppression

log = logging.getLogger(__name__)

bp = Blueprint("survey_pages", __name__)

SCORE_PARAM = re.compile(r"^(10|[0-9])$")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


# Which token each page reads, to key its rate limit by the link rather than by the client's address.
LINK_READERS = {
    "survey_pages.landing_page": ("s", tokens.read_score_link_token),
    "survey_pages.answer": ("s", tokens.read_score_link_token),
    "survey_pages.open_pixel": ("o", tokens.read_open_pixel_token),
    "survey_pages.unsubscribe_confirm": ("u", tokens.read_unsubscribe_token),
    "survey_pages.unsubscribe": ("u", tokens.read_unsubscribe_token),
}


def init_app(app: Flask) -> None:
    """Register the pages and their rate limits: per link for a link that verifies, per address otherwise."""
    app.register_blueprint(bp)
    app.jinja_env.filters["ink_on"] = contrast.ink_on  # the text on a brand colour: >= 4.5:1 whatever it is
    limit_blueprint(app, bp, _link_limit, key_func=_link_limit_key)


def _link_identity() -> str | None:
    """'<page>:<request id>' of the link in this request's path, None when its token does not verify."""
    if "link_identity" not in g:
        identity = None
        page, reader = LINK_READERS.get(request.endpoint or "", (None, None))
        token = (request.view_args or {}).get("token")
        if page is not None and reader is not None and isinstance(token, str):
            try:
                identity = f"{page}:{reader(token)}"
            except tokens.TokenExpired as exc:
                identity = f"{page}:{exc.request_id}"
            except tokens.TokenInvalid:
                pass
        g.link_identity = identity
    return g.link_identity  # type: ignore[no-any-return]


def _link_limit_key() -> str:
    """Count a real link's requests together from every address (an office behind one NAT, a mail scanner
    opening everyone's links, or many addresses hammering one link), and bad tokens per address."""
    identity = _link_identity()
    return f"link:{identity}" if identity else f"addr:{request.remote_addr or 'unknown'}"


def _link_limit() -> str:
    """The limit for this request's key: PUBLIC_LINK_RATE_LIMIT per link, PUBLIC_RATE_LIMIT per address."""
    if _link_identity():
        return str(current_app.config["PUBLIC_LINK_RATE_LIMIT"])
    return str(current_app.config["PUBLIC_RATE_LIMIT"])


def _html(body: str, status: int = 200) -> Response:
    resp = Response(body, status=status, mimetype="text/html")
    resp.headers.update(NO_STORE)
    return resp


def _browser_locales() -> list[str]:
    return accepted_locales(request.headers.get("Accept-Language"))


def _strings_for(person: Person | None, survey: Survey | None) -> Strings:
    return Strings(
        negotiate(
            person.locale if person else None,
            survey.locale if survey else None,
            *_browser_locales(),
        )
    )


def _message_page(t: Strings, title: str, text: str, status: int, color: str = "#4f46e5") -> Response:
    return _html(
        render_template("survey_message.html", t=t, title=title, text=text, brand_color=color), status
    )


def _not_found() -> Response:
    t = Strings(negotiate(*_browser_locales()))
    return _message_page(t, t("not_found_title"), t("not_found_text"), 404)


@bp.app_errorhandler(TooManyRequests)
def _too_many(error: TooManyRequests) -> Response:
    """Answer a rate-limited page in HTML and an API call in the one JSON shape."""
    if request.blueprint != bp.name:
        return from_http_exception(error)
    t = Strings(negotiate(*_browser_locales()))
    resp = _message_page(t, t("rate_limited"), "", 429)
    resp.headers["Retry-After"] = "60"
    return resp


def _resolve(token: str) -> tuple[SurveyRequest, bool] | None:
    """The request a score-link token names and whether it expired; None for a bad token."""
    try:
        request_id, expired = tokens.read_score_link_token(token), False
    except tokens.TokenInvalid:
        return None
    except tokens.TokenExpired as exc:
        # Authentic but expired: only a read by primary key, to say whether the survey is open.
        request_id, expired = exc.request_id, True
    survey_request = db.session.get(SurveyRequest, request_id)
    if survey_request is None:
        return None
    if survey_request.expires_at is not None and survey_request.expires_at <= clock.now():
        expired = True
    return survey_request, expired


def _page_context(survey_request: SurveyRequest, score: int | None, expired: bool) -> dict[str, Any]:
    survey = db.session.get(Survey, survey_request.survey_id)
    person = db.session.get(Person, survey_request.person_id)
    project = db.session.get(Project, survey_request.project_id)
    assert survey is not None and person is not None and project is not None
    t = _strings_for(person, survey)
    existing = landing.current_response(survey_request.id)
    selected = score if score is not None else (existing.score if existing else None)
    followups = {c: t.followup(survey.followups, c) for c in nps.CATEGORIES}
    return {
        "t": t,
        "lang": t.language,
        "survey": survey,
        "project_name": project.name,
        "product": survey.product_name,
        "question": t.question(survey.question, survey.product_name),
        "selected": selected,
        "followups": followups,
        "followup": followups[nps.category_for(selected)] if selected is not None else t("comment_optional"),
        "comment": existing.comment if existing and existing.comment else "",
        "expired": expired,
        "auto": score is not None and not expired and survey.is_open,
        "view_token": tokens.landing_view_token(survey_request.id, score),
        "brand_color": survey.brand_color if COLOR.match(survey.brand_color or "") else "#4f46e5",
        "state": "form",
        "error": None,
        "review": None,
    }


@bp.route("/s/<token>", methods=["GET", "HEAD"])
def landing_page(token: str) -> Response:
    """Show the question with the link's score selected; counts nothing (scanners GET every link)."""
    resolved = _resolve(token)
    if resolved is None:
        return _not_found()
    survey_request, expired = resolved
    raw = request.args.get("score", "")
    score = int(raw) if SCORE_PARAM.match(raw) else None
    ctx = _page_context(survey_request, score, expired)
    if not ctx["survey"].is_open or expired:
        return _closed_page(ctx)
    landing.note_view(survey_request.id, score)
    return _html(render_template("survey_landing.html", **ctx))


def _closed_page(ctx: dict[str, Any]) -> Response:
    """The page of a closed survey or an expired link: it says so and offers no form."""
    t = ctx["t"]
    title = t("expired_title") if ctx["expired"] and ctx["survey"].is_open else t("closed_title")
    return _message_page(t, title, t("closed_text"), 200, ctx["brand_color"])


def _form_error(message: str, status: int = 422, t: Strings | None = None) -> Response:
    if request.accept_mimetypes.best == "application/json":
        code = "validation_error" if status == 422 else "bad_request"
        resp = jsonify({"status": status, "code": code, "message": message, "details": None})
        resp.status_code = status
        return resp
    t = t or Strings(negotiate(*_browser_locales()))
    return _message_page(t, message, "", status)


@bp.post("/s/<token>")
def answer(token: str) -> Response:
    """Record the score when the counting rule holds (see services.landing); JSON for the page's script."""
    resolved = _resolve(token)
    if resolved is None:
        return _not_found()
    survey_request, expired = resolved
    t = _strings_for(
        db.session.get(Person, survey_request.person_id), db.session.get(Survey, survey_request.survey_id)
    )
    form = request.form
    raw_score = form.get("pick") or form.get("score", "")
    if not SCORE_PARAM.match(raw_score):
        return _form_error(t("invalid_score"), 422, t)
    comment = form.get("comment", "")
    if len(comment) > MAX_COMMENT:
        return _form_error(f"The comment is longer than {MAX_COMMENT} characters.", 422, t)
    try:
        view_request, shown, age = tokens.read_landing_view_token(form.get("view", ""))
    except tokens.TokenInvalid:
        return _form_error(t("out_of_date"), 400, t)
    if view_request != survey_request.id:
        return _form_error(t("out_of_date"), 400, t)
    interaction = form.get("mode", "interaction") != "auto"
    outcome = landing.record_landing_answer(
        survey_request,
        int(raw_score),
        comment.strip() or None,
        interaction=interaction,
        shown_score=shown,
        view_age=age,
        expired=expired,
    )
    # The thank-you step (the page's final submit, or any counted post without the script) may offer a
    # promoter the review; services.promoters decides from the stored score, never from the browser.
    finished = form.get("mode") == "submit" or request.accept_mimetypes.best != "application/json"
    review = None
    if outcome.counted and outcome.response is not None and finished:
        review = promoters.review_step(outcome.response, *_browser_locales())
    if request.accept_mimetypes.best == "application/json":
        body: dict[str, Any] = {"counted": outcome.counted, "reason": outcome.reason, "score": int(raw_score)}
        if outcome.response is not None:
            body["category"] = outcome.response.category
        if review is not None:
            body["review"] = review
        resp = jsonify(body)
        resp.headers.update(NO_STORE)
        return resp
    ctx = _page_context(survey_request, int(raw_score), expired)
    ctx["auto"] = False
    if outcome.counted:
        ctx["state"] = "thanks"
        ctx["review"] = review
    elif outcome.reason in ("closed", "expired"):
        return _closed_page(ctx)
    return _html(render_template("survey_landing.html", **ctx))


PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@bp.get("/o/<token>.gif")
def open_pixel(token: str) -> Response:
    """Record the first open of an email (optional, off by default: image proxies prefetch)."""
    try:
        request_id = tokens.read_open_pixel_token(token)
    except tokens.TokenInvalid:
        request_id = None
    if request_id is not None:
        email_requests.record_open(request_id)
    resp = Response(PIXEL_GIF, mimetype="image/gif")
    resp.headers.update(NO_STORE)
    return resp


def _unsubscribe_target(token: str) -> tuple[SurveyRequest, Person, Project] | None:
    try:
        request_id = tokens.read_unsubscribe_token(token)
    except tokens.TokenInvalid:
        return None
    survey_request = db.session.get(SurveyRequest, request_id)
    if survey_request is None:
        return None
    person = db.session.get(Person, survey_request.person_id)
    project = db.session.get(Project, survey_request.project_id)
    if person is None or project is None or not person.email:
        return None
    return survey_request, person, project


@bp.get("/u/<token>")
def unsubscribe_confirm(token: str) -> Response:
    """Ask for confirmation: a GET never unsubscribes (scanners open links too)."""
    target = _unsubscribe_target(token)
    if target is None:
        return _not_found()
    survey_request, person, project = target
    t = _strings_for(person, db.session.get(Survey, survey_request.survey_id))
    return _html(
        render_template(
            "survey_message.html",
            t=t,
            title=t("unsubscribe_title", project=project.name),
            text=t("unsubscribe_confirm", email=person.email),
            form_button=t("unsubscribe_button"),
            brand_color="#4f46e5",
        )
    )


@bp.post("/u/<token>")
def unsubscribe(token: str) -> Response:
    """Unsubscribe the address (RFC 8058 one-click: no cookies, no redirect, 200)."""
    target = _unsubscribe_target(token)
    if target is None:
        return _not_found()
    survey_request, person, project = target
    assert person.email is not None
    add_suppression(project.id, person.email, "unsubscribed", f"request {survey_request.id}")
    log.info("project %s: an address unsubscribed through request %s", project.id, survey_request.id)
    t = _strings_for(person, db.session.get(Survey, survey_request.survey_id))
    return _message_page(t, t("unsubscribed_title"), t("unsubscribed_text", email=person.email), 200)
