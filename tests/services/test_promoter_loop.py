"""The promoter loop over HTTP: its settings API, who is offered the review, the consent, the signed redirect,
and the stamps in the response API, the exports and the dashboard's counts."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from survey_service.core import keys, tokens
from survey_service.core.log_redaction import redact_tokens
from survey_service.extensions import db
from survey_service.models import Person, Response, Survey, SurveyRequest
from survey_service.reporting.dashboard import dashboard_page
from survey_service.services import promoters
from survey_service.services.projects import default_survey_id
from survey_service.services.promoters import url_digest
from survey_service.services.users import create_user
from tests.support.db import make_project
from tests.support.mail import flush_redis
from tests.support.promoters import G2, TRUSTPILOT, enable_loop, review_stamps, score_urls

JSON = {"Accept": "application/json"}


@pytest.fixture
def page_app(app: Flask, redis_url: str) -> Flask:
    """The app on an empty Redis, with its own rate-limit keys."""
    app.config["RATELIMIT_KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    flush_redis(app)
    return app


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def answer_on_landing(
    client: FlaskClient, url: str, score: int, *, mode: str = "submit", accept_json: bool = True
) -> Any:
    """Open a score link and press send, as the page's script does (mode "submit") or without it."""
    page = client.get(path_of(url)).get_data(as_text=True)
    found = re.search(r'name="view" value="([^"]+)"', page)
    assert found is not None
    data = {"score": str(score), "view": found.group(1), "comment": "Great"}
    if accept_json:
        data["mode"] = mode
    return client.post(path_of(url).split("?")[0], data=data, headers=JSON if accept_json else {})


def promoter_with_consent(
    app: Flask, client: FlaskClient, project_id: int
) -> tuple[int, list[dict[str, str]]]:
    """A promoter who answered 10 on the landing page and pressed "happy to leave a review"."""
    request_id, urls = score_urls(app, project_id, f"pat-{uuid.uuid4().hex[:6]}@example.com")
    review = answer_on_landing(client, urls["10"], 10).get_json()["review"]
    res = client.post(path_of(review["url"]), headers=JSON)
    assert res.status_code == 200, res.get_data(as_text=True)
    return request_id, res.get_json()["links"]


def read_csv(client: FlaskClient, path: str, auth: dict[str, str]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(client.get(path, headers=auth).get_data(as_text=True))))


def put_loop(client: FlaskClient, auth: dict[str, str], **body: Any) -> Any:
    return client.put("/api/v1/promoter_loop", json=body, headers=auth)


# --- settings ---------------------------------------------------------------------------------------


def test_promoter_loop_settings_default_off_saved_and_survey_override_inherits_after_delete(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    assert client.get("/api/v1/promoter_loop", headers=auth).get_json() == {
        "survey_id": None,
        "enabled": False,
        "targets": [],
        "source": "default",
    }
    res = put_loop(client, auth, enabled=True, targets=[G2, TRUSTPILOT])
    assert res.status_code == 200, res.get_json()
    assert res.get_json() == {
        "survey_id": None,
        "enabled": True,
        "targets": [G2, TRUSTPILOT],
        "source": "project",
    }
    with app.app_context():
        survey_id = default_survey_id(project["id"])
    inherited = client.get(f"/api/v1/promoter_loop?survey_id={survey_id}", headers=auth).get_json()
    assert inherited["source"] == "project" and inherited["targets"] == [G2, TRUSTPILOT]
    own = put_loop(client, auth, survey_id=survey_id, enabled=True, targets=[TRUSTPILOT]).get_json()
    assert own == {"survey_id": survey_id, "enabled": True, "targets": [TRUSTPILOT], "source": "survey"}
    assert client.get("/api/v1/promoter_loop", headers=auth).get_json()["targets"] == [G2, TRUSTPILOT]
    res = client.delete(f"/api/v1/promoter_loop?survey_id={survey_id}", headers=auth)
    assert res.status_code == 204
    again = client.get(f"/api/v1/promoter_loop?survey_id={survey_id}", headers=auth).get_json()
    assert again["source"] == "project" and again["targets"] == [G2, TRUSTPILOT]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "http://www.g2.com/products/acme",
        "//www.g2.com/products/acme",
        "/relative/path",
        "ftp://www.g2.com/x",
        "https://user:secret@www.g2.com/x",
        "https://www.g2.com@evil.example/x",
        "https://127.0.0.1/x",
        "https://[::1]/x",
        "https://localhost/x",
        "https://www.g2.com:8443/x",
        "https://www.g2.com/a b",
        "https://www.g2.com/\nSet-Cookie:x",
        "https://www.g2.com\\@evil.example/",
        "https://",
        "https://" + "a" * 2000 + ".com/",
    ],
)
def test_promoter_loop_settings_bad_target_url_is_refused(
    client: FlaskClient, auth: dict[str, str], url: str
) -> None:
    res = put_loop(client, auth, enabled=True, targets=[{"label": "Bad", "url": url}])
    body = res.get_json()
    assert res.status_code == 422, body
    assert body["code"] == "validation_error" and "targets" in body["details"]
    assert client.get("/api/v1/promoter_loop", headers=auth).get_json()["source"] == "default"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"enabled": True, "targets": [G2] * 6}, 422),  # more than the small allow-list holds
        ({"enabled": True, "targets": []}, 422),  # on, with nowhere to send anyone
        ({"enabled": True, "targets": [{"label": "", "url": G2["url"]}]}, 422),
        ({"enabled": True, "targets": [{"label": "G2\nx", "url": G2["url"]}]}, 422),
        ({"enabled": True, "targets": [{"url": G2["url"]}]}, 422),
        ({"enabled": "yes", "targets": [G2]}, 422),
        ({"targets": [G2]}, 422),
        ({"enabled": True, "targets": [G2], "survey_id": "1"}, 422),
        ({"enabled": True, "targets": [G2], "survey_id": 2**31 - 1}, 404),
        ({"enabled": False, "targets": []}, 200),  # off and empty is a valid way to switch it off
    ],
)
def test_promoter_loop_settings_shape_is_validated(
    client: FlaskClient, auth: dict[str, str], body: dict[str, Any], status: int
) -> None:
    res = put_loop(client, auth, **body)
    assert res.status_code == status, res.get_json()
    if status != 200:
        assert set(res.get_json()) == {"status", "code", "message", "details"}


def test_promoter_loop_settings_another_projects_survey_is_404(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    other = make_project(app, "Other")
    with app.app_context():
        their_survey = default_survey_id(other["id"])
    assert put_loop(client, auth, survey_id=their_survey, enabled=True, targets=[G2]).status_code == 404
    assert client.get(f"/api/v1/promoter_loop?survey_id={their_survey}", headers=auth).status_code == 404
    assert client.delete(f"/api/v1/promoter_loop?survey_id={their_survey}", headers=auth).status_code == 404


# --- who is offered the review ------------------------------------------------------------------------


@pytest.mark.parametrize("score", [0, 6, 7, 8])
def test_landing_detractor_or_passive_is_never_offered_the_review(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], score: int
) -> None:
    enable_loop(page_app, project["id"])
    request_id, urls = score_urls(page_app, project["id"], "dee@example.com")
    body = answer_on_landing(client, urls[str(score)], score).get_json()
    assert body["counted"] is True and "review" not in body
    html = answer_on_landing(client, urls[str(score)], score, accept_json=False).get_data(as_text=True)
    assert "/review/" not in html and "Happy to leave a review" not in html
    assert review_stamps(page_app, request_id) == {"asked": None, "consented": None, "clicked": None}


def test_landing_promoter_is_offered_the_review_on_submit_only_without_links(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    enable_loop(page_app, project["id"])
    request_id, urls = score_urls(page_app, project["id"], "pat@example.com")
    # The score click (mode "interaction") records the score; the thank-you step comes with the submit.
    assert "review" not in answer_on_landing(client, urls["9"], 9, mode="interaction").get_json()
    assert review_stamps(page_app, request_id)["asked"] is None
    review = answer_on_landing(client, urls["9"], 9).get_json()["review"]
    assert review["prompt"] and review["consent"] == "Happy to leave a review"
    assert path_of(review["url"]).startswith("/review/")
    assert G2["url"] not in json.dumps(review)  # no target before the person agrees
    stamps = review_stamps(page_app, request_id)
    assert stamps["asked"] is not None and stamps["consented"] is None


def test_landing_promoter_without_script_gets_the_consent_form_and_a_page_of_links(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    enable_loop(page_app, project["id"], G2, TRUSTPILOT)
    request_id, urls = score_urls(page_app, project["id"], "pat@example.com")
    html = answer_on_landing(client, urls["10"], 10, accept_json=False).get_data(as_text=True)
    action = re.search(r'<form id="review-form" method="post" action="([^"]+)"', html)
    assert action is not None and "Happy to leave a review" in html and G2["url"] not in html
    page = client.post(path_of(action.group(1)))
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert ">G2</a>" in text and ">Trustpilot</a>" in text and G2["url"] not in text
    assert review_stamps(page_app, request_id)["consented"] is not None


def test_landing_loop_off_or_not_configured_offers_nothing(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    _, urls = score_urls(page_app, project["id"], "pat@example.com")
    assert "review" not in answer_on_landing(client, urls["10"], 10).get_json()
    assert put_loop(client, auth, enabled=False, targets=[G2]).status_code == 200
    assert "review" not in answer_on_landing(client, urls["10"], 10).get_json()


def test_landing_survey_override_off_wins_over_project_on(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    enable_loop(page_app, project["id"])
    with page_app.app_context():
        survey_id = default_survey_id(project["id"])
    assert put_loop(client, auth, survey_id=survey_id, enabled=False, targets=[]).status_code == 200
    _, urls = score_urls(page_app, project["id"], "pat@example.com")
    assert "review" not in answer_on_landing(client, urls["10"], 10).get_json()


def offered(app: Flask, client: FlaskClient, project_id: int) -> dict[str, str] | None:
    """The review step a new promoter's landing answer gets (None when the review is not offered)."""
    _, urls = score_urls(app, project_id, f"pat-{uuid.uuid4().hex[:6]}@example.com")
    review: dict[str, str] | None = answer_on_landing(client, urls["10"], 10).get_json().get("review")
    return review


def test_review_offer_follows_each_settings_change_of_this_process_at_once_though_cached(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    page_app.config["HOT_CACHE_SECONDS"] = 3600
    assert offered(page_app, client, project["id"]) is None  # "not offered" cached
    assert put_loop(client, auth, enabled=True, targets=[G2]).status_code == 200
    assert offered(page_app, client, project["id"]) is not None
    with page_app.app_context():
        survey_id = default_survey_id(project["id"])
    assert put_loop(client, auth, survey_id=survey_id, enabled=False, targets=[]).status_code == 200
    assert offered(page_app, client, project["id"]) is None
    assert client.delete(f"/api/v1/promoter_loop?survey_id={survey_id}", headers=auth).status_code == 204
    assert offered(page_app, client, project["id"]) is not None


def test_review_consent_after_the_loop_was_switched_off_elsewhere_is_refused_though_the_offer_is_cached(
    page_app: Flask, fresh_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    page_app.config["HOT_CACHE_SECONDS"] = 3600
    enable_loop(page_app, project["id"])
    assert offered(page_app, client, project["id"]) is not None  # "offered" cached
    with fresh_app.app_context():  # another process: its change clears only its own cache
        promoters.save_loop_settings(project["id"], None, False, [G2])
    review = offered(page_app, client, project["id"])
    assert review is not None  # within HOT_CACHE_SECONDS the offer may still be made...
    res = client.post(path_of(review["url"]), headers=JSON)
    assert res.status_code == 404 and res.get_json()["code"] == "not_found"  # ...but issues no link


def test_widget_promoter_is_offered_the_review_with_the_comment_submit_detractor_never(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    enable_loop(app, project["id"])

    def token_for(user_id: str) -> str:
        user = {"id": user_id, "user_hash": keys.user_hash(project["identity_secret"], user_id)}
        body = {"key": project["public_key"], "user": user, "force": True}
        res = client.post("/api/widget/identify", data=json.dumps(body), content_type="text/plain")
        token: str = res.get_json()["token"]
        return token

    def answer(token: str, score: int, **extra: Any) -> Any:
        body = {"key": project["public_key"], "token": token, "score": score, **extra}
        return client.post("/api/widget/answer", data=json.dumps(body), content_type="text/plain").get_json()

    promoter = token_for("w-promoter")
    assert "review" not in answer(promoter, 10)  # the score click: not yet the thank-you card
    offered = answer(promoter, 10, comment="")
    assert offered["category"] == "promoter" and offered["review"]["consent"] == "Happy to leave a review"
    detractor = token_for("w-detractor")
    assert "review" not in answer(detractor, 3, comment="meh")
    with app.app_context():
        asked = {
            p.external_id: r.review_asked_at
            for r, p in db.session.query(Response, Person).join(Person, Person.id == Response.person_id)
        }
    assert asked["w-promoter"] is not None and asked["w-detractor"] is None


# --- consent and the signed redirect ------------------------------------------------------------------


def test_review_redirect_valid_link_redirects_to_target_and_records_one_click(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    enable_loop(page_app, project["id"], G2, TRUSTPILOT)
    request_id, links = promoter_with_consent(page_app, client, project["id"])
    assert [link["label"] for link in links] == ["G2", "Trustpilot"]
    assert all(path_of(link["url"]).startswith("/review/go/") for link in links)
    res = client.get(path_of(links[1]["url"]))
    assert res.status_code == 303 and res.headers["Location"] == TRUSTPILOT["url"]
    first = review_stamps(page_app, request_id)
    assert first["asked"] and first["consented"] and first["clicked"]
    # A replay (or the other link) redirects again but never records a second click.
    for link in (links[1], links[0], links[1]):
        assert client.get(path_of(link["url"])).status_code == 303
    assert review_stamps(page_app, request_id) == first
    listed = client.get("/api/v1/responses", headers=auth).get_json()["data"]
    assert listed[0]["review_link_clicked_at"] == first["clicked"].isoformat().replace("+00:00", "Z")
    assert listed[0]["review_consented_at"] and listed[0]["review_asked_at"]


def test_review_consent_twice_keeps_the_first_instant(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    enable_loop(page_app, project["id"])
    request_id, urls = score_urls(page_app, project["id"], "pat@example.com")
    review = answer_on_landing(client, urls["10"], 10).get_json()["review"]
    assert client.post(path_of(review["url"]), headers=JSON).status_code == 200
    first = review_stamps(page_app, request_id)
    assert client.post(path_of(review["url"]), headers=JSON).status_code == 200
    assert review_stamps(page_app, request_id) == first


def _tampered(token: str) -> str:
    """The token with one character of its payload changed (the signature no longer matches)."""
    i = 3
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


@pytest.mark.parametrize("accept_json", [True, False])
def test_review_redirect_tampered_or_forged_token_is_refused_and_records_nothing(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], accept_json: bool
) -> None:
    enable_loop(page_app, project["id"])
    request_id, links = promoter_with_consent(page_app, client, project["id"])
    token = path_of(links[0]["url"]).rsplit("/", 1)[1]
    with page_app.app_context():
        response_id = db.session.query(Response.id).filter(Response.request_id == request_id).scalar()
        # A link of another purpose's salt, and one naming a target place that does not exist.
        other_salt = tokens.review_consent_token(response_id)
        beyond = tokens.review_link_token(response_id, 7, "0" * 32)
    headers = JSON if accept_json else {}
    for bad in (_tampered(token), other_salt, beyond, "forged", "x" * 300):
        res = client.get(f"/review/go/{bad}", headers=headers)
        assert res.status_code == 404 and "Location" not in res.headers, bad
        if accept_json:
            assert res.get_json()["code"] == "not_found"
        else:
            assert "no longer available" in res.get_data(as_text=True)
    assert review_stamps(page_app, request_id)["clicked"] is None


def test_review_redirect_target_removed_from_allow_list_is_refused(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    enable_loop(page_app, project["id"], G2)
    request_id, links = promoter_with_consent(page_app, client, project["id"])
    # The same place in the list now holds another URL: the old link must not lead there (or anywhere).
    evil = {"label": "G2", "url": "https://evil.example/phish"}
    assert put_loop(client, auth, enabled=True, targets=[evil]).status_code == 200
    res = client.get(path_of(links[0]["url"]))
    assert res.status_code == 404 and "Location" not in res.headers
    assert put_loop(client, auth, enabled=False, targets=[G2]).status_code == 200
    assert client.get(path_of(links[0]["url"])).status_code == 404
    assert review_stamps(page_app, request_id)["clicked"] is None


def test_review_redirect_without_consent_or_after_score_became_detractor_is_refused(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    enable_loop(page_app, project["id"])
    request_id, urls = score_urls(page_app, project["id"], "pat@example.com")
    review = answer_on_landing(client, urls["10"], 10).get_json()["review"]
    with page_app.app_context():
        response_id = db.session.query(Response.id).filter(Response.request_id == request_id).scalar()
        unconsented = tokens.review_link_token(response_id, 0, url_digest(G2["url"]))
    assert client.get(f"/review/go/{unconsented}").status_code == 404
    # The person changes their answer to a 4: the consent they could have given no longer applies.
    answer_on_landing(client, urls["4"], 4)
    res = client.post(path_of(review["url"]), headers=JSON)
    assert res.status_code == 404 and res.get_json()["code"] == "not_found"
    stamps = review_stamps(page_app, request_id)
    assert stamps["asked"] is not None and stamps["consented"] is None and stamps["clicked"] is None


def test_review_consent_forged_token_is_refused_in_the_one_error_shape(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    enable_loop(page_app, project["id"])
    res = client.post("/review/not-a-token", headers=JSON)
    assert res.status_code == 404
    assert set(res.get_json()) == {"status", "code", "message", "details"}
    assert res.headers["Access-Control-Allow-Origin"] == "*"
    page = client.post("/review/not-a-token")
    assert page.status_code == 404 and "no longer available" in page.get_data(as_text=True)


# --- exports, API and dashboard -----------------------------------------------------------------------


def test_exports_carry_review_stamps(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    enable_loop(page_app, project["id"])
    request_id, links = promoter_with_consent(page_app, client, project["id"])
    client.get(path_of(links[0]["url"]))
    stamps = review_stamps(page_app, request_id)
    clicked = stamps["clicked"]
    assert clicked is not None
    text = clicked.strftime("%Y-%m-%dT%H:%M:%SZ")

    promoters = list(
        csv.DictReader(
            io.StringIO(client.get("/api/v1/exports/promoters.csv", headers=auth).get_data(as_text=True))
        )
    )
    assert len(promoters) == 1
    assert promoters[0]["review_link_clicked_at"] == text
    assert promoters[0]["review_asked_at"] and promoters[0]["review_consented_at"]
    everyone = list(
        csv.DictReader(
            io.StringIO(client.get("/api/v1/exports/responses.csv", headers=auth).get_data(as_text=True))
        )
    )
    assert everyone[0]["review_link_clicked_at"] == text
    lines = client.get("/api/v1/exports/responses.jsonl", headers=auth).get_data(as_text=True).splitlines()
    assert json.loads(lines[0])["review_link_clicked_at"] == text
    one = client.get(f"/api/v1/responses/{promoters[0]['response_id']}", headers=auth).get_json()
    assert one["review_link_clicked_at"] is not None


def test_dashboard_counts_promoters_asked_consented_clicked(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    enable_loop(page_app, project["id"])
    # Clicked (1), consented only (1), asked only (1), a promoter never asked (answered by API), a detractor.
    _, links = promoter_with_consent(page_app, client, project["id"])
    client.get(path_of(links[0]["url"]))
    promoter_with_consent(page_app, client, project["id"])
    _, urls = score_urls(page_app, project["id"], "asked-only@example.com")
    answer_on_landing(client, urls["9"], 9)
    _, urls = score_urls(page_app, project["id"], "detractor@example.com")
    answer_on_landing(client, urls["2"], 2)
    auth = {"Authorization": f"Bearer {project['secret_key']}"}
    client.post("/api/v1/responses", json={"person": {"email": "api@example.com"}, "score": 10}, headers=auth)
    with page_app.app_context():
        counts = dashboard_page(project["id"], {"range": "all"}, []).promoter_loop
        create_user(project["id"], "cs@example.com", "correct horse battery staple", "viewer")
    assert counts == {"promoters": 4, "asked": 3, "consented": 2, "clicked": 1}

    dashboard = page_app.test_client()
    login = dashboard.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert csrf is not None
    form = {
        "email": "cs@example.com",
        "password": "correct horse battery staple",
        "csrf_token": csrf.group(1),
    }
    assert dashboard.post("/login", data=form).status_code == 302
    html = dashboard.get("/dashboard?range=all").get_data(as_text=True)
    for testid, value in (("review-asked", 3), ("review-consented", 2), ("review-clicked", 1)):
        assert re.search(rf'data-testid="{testid}">{value}<', html), testid


def test_erasing_a_promoter_leaves_no_review_stamps(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    enable_loop(page_app, project["id"])
    request_id, _ = promoter_with_consent(page_app, client, project["id"])
    with page_app.app_context():
        request = db.session.get(SurveyRequest, request_id)
        assert request is not None
        person_id = request.person_id
    assert client.delete(f"/api/v1/people/{person_id}", headers=auth).status_code in (200, 204)
    with page_app.app_context():
        assert db.session.query(Response).count() == 0
        assert db.session.query(Survey).filter(Survey.project_id == project["id"]).count() == 1


@pytest.mark.parametrize(
    ("line", "logged"),
    [
        ('"POST /review/abc.def-1 HTTP/1.1" 200', '"POST /review/[redacted] HTTP/1.1" 200'),
        ('"GET /review/go/abc.def-1 HTTP/1.1" 303', '"GET /review/go/[redacted] HTTP/1.1" 303'),
        ("https://survey.example/review/go/abc?x=1", "https://survey.example/review/go/[redacted]?x=1"),
    ],
)
def test_review_tokens_never_reach_a_log_line(line: str, logged: str) -> None:
    assert redact_tokens(line) == logged
