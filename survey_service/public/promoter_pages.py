"""The promoter loop's pages: the "happy to leave a review" button's target and the review links' redirect.

Both are reached from the thank-you step of the landing page or the widget (services/promoters.py says
who sees it). The consent answers JSON to the page's script and the widget (any origin, no cookies: the
signed token is the only credential) and a page of links otherwise; the redirect follows only configured
targets and answers anything else with a friendly page (or the one error shape to a JSON client).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, render_template, request
from werkzeug.wrappers import Response as WerkzeugResponse

from survey_service.core.i18n import Strings, accepted_locales, negotiate
from survey_service.core.ratelimit import limit_blueprint
from survey_service.errors import error_response
from survey_service.services import promoters

log = logging.getLogger(__name__)

bp = Blueprint("promoter_pages", __name__)

NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def init_app(app: Flask) -> None:
    """Register the pages, rate-limited per client address (PUBLIC_RATE_LIMIT)."""
    app.register_blueprint(bp)
    limit_blueprint(app, bp, lambda: str(current_app.config["PUBLIC_RATE_LIMIT"]))


@bp.after_request
def _headers(response: Response) -> Response:
    """No caching; and the widget (another origin) may read the consent's answer, without cookies."""
    response.headers.update(NO_STORE)
    if request.endpoint == "promoter_pages.consent":
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _browser_locales() -> list[str]:
    return accepted_locales(request.headers.get("Accept-Language"))


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _unavailable() -> Response:
    """The one refusal: a 404 that tells a person kindly and a script in the one error shape."""
    if _wants_json():
        return error_response(404, "not_found", "This review link is not available.")
    t = Strings(negotiate(*_browser_locales()))
    body = render_template(
        "survey_message.html",
        t=t,
        title=t("review.gone_title"),
        text=t("review.gone_text"),
        brand_color="#4f46e5",
    )
    return Response(body, status=404, mimetype="text/html")


@bp.post("/review/<token>")
def consent(token: str) -> Response:
    """Record that the promoter agreed to leave a review and give them the review links."""
    try:
        response, links = promoters.consent_to_review(token)
    except promoters.ReviewUnavailable as exc:
        log.info("review consent refused: %s", exc)
        return _unavailable()
    t = promoters.strings_for(response, *_browser_locales())
    if _wants_json():
        shown = [{"label": link.label, "url": link.url} for link in links]
        return jsonify({"intro": t("review.links"), "links": shown})
    body = render_template("survey_review.html", t=t, links=links, brand_color="#4f46e5")
    return Response(body, mimetype="text/html")


@bp.get("/review/go/<token>")
def follow(token: str) -> WerkzeugResponse:
    """Send the person on to the review site a signed link names, recording the first click."""
    try:
        url = promoters.follow_review_link(token)
    except promoters.ReviewUnavailable as exc:
        log.info("review link refused: %s", exc)
        return _unavailable()
    return redirect(url, code=303)
