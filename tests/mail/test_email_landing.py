"""The landing and unsubscribe pages over HTTP: GETs never count, the counting rule, bad tokens, limits."""

from __future__ import annotations

import re
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select, update

from survey_service import create_app
from survey_service.core import clock, tokens
from survey_service.extensions import db
from survey_service.jobs import send_survey_email
from survey_service.models import Response, Survey, SurveyRequest
from survey_service.services import email_requests
from survey_service.services.people import upsert_person
from tests.support.mail import flush_redis, smtp_server
from tests.support.servers import live_server


@pytest.fixture
def page_app(app: Flask, redis_url: str) -> Flask:
    """The app on an empty Redis, with its own rate-limit keys."""
    app.config["RATELIMIT_KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    flush_redis(app)
    return app


def make_request(app: Flask, project_id: int, channel: str = "email", **person: Any) -> int:
    with app.app_context():
        found, _ = upsert_person(project_id, {"email": "ann@example.com", **person})
        db.session.commit()
        request = email_requests.create_email_request(project_id, found.id)
        if channel != "email":
            request.channel = channel
            db.session.commit()
        return request.id


def links(app: Flask, request_id: int) -> dict[str, Any]:
    with app.app_context():
        request = db.session.get(SurveyRequest, request_id)
        assert request is not None
        return email_requests.survey_links(request)


def path_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def count_responses(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Response)) or 0)


def only_response(app: Flask) -> Response:
    with app.app_context():
        rows = list(db.session.scalars(select(Response)))
        assert len(rows) == 1
        db.session.expunge(rows[0])
        return rows[0]


def view_token(page: str) -> str:
    found = re.search(r'name="view" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def post_answer(client: FlaskClient, url: str, view: str, score: int, mode: str, comment: str = "") -> Any:
    return client.post(
        path_of(url).split("?")[0],
        data={"score": str(score), "view": view, "mode": mode, "comment": comment},
        headers={"Accept": "application/json"},
    )


def test_landing_page_plain_http_client_fetching_every_link_counts_nothing(
    page_app: Flask, project: dict[str, Any]
) -> None:
    request_id = make_request(page_app, project["id"])
    with live_server(page_app):
        urls = links(page_app, request_id)["score_urls"]
        for score, url in urls.items():
            for method in ("GET", "HEAD"):
                with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as res:
                    assert res.status == 200
                    page = res.read().decode()
                    if method == "GET":
                        assert f'data-score="{score}" aria-pressed="true"' in page
    assert count_responses(page_app) == 0
    with page_app.app_context():
        request = db.session.get(SurveyRequest, request_id)
        assert request is not None and request.clicked_at is None and request.responded_at is None


def test_landing_page_has_contract_elements_and_followup(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    url = links(page_app, make_request(page_app, project["id"]))["score_urls"]["3"]
    res = client.get(path_of(url))
    page = res.get_data(as_text=True)
    assert res.status_code == 200 and res.headers["Cache-Control"] == "no-store"
    assert len(re.findall(r'<button type="submit" name="pick" value="\d+" data-score="\d+"', page)) == 11
    assert re.findall(r'data-score="(\d+)" aria-pressed="true"', page) == ["3"]
    assert '<textarea id="comment" name="comment"' in page and '<label for="comment"' in page
    assert 'class="submit"' in page and "What was missing or disappointing" in page


def test_landing_auto_post_after_a_moment_counts_and_second_click_updates_same_response(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    page_app.config["LANDING_MIN_VISIBLE_SECONDS"] = 0
    urls = links(page_app, make_request(page_app, project["id"]))["score_urls"]
    view = view_token(client.get(path_of(urls["9"])).get_data(as_text=True))
    res = post_answer(client, urls["9"], view, 9, "auto")
    assert res.get_json() == {"counted": True, "reason": "auto", "score": 9, "category": "promoter"}
    first = only_response(page_app)
    assert first.score == 9 and first.channel == "email"
    view = view_token(client.get(path_of(urls["7"])).get_data(as_text=True))
    assert post_answer(client, urls["7"], view, 7, "auto").get_json()["counted"] is True
    second = only_response(page_app)
    assert (second.id, second.score, second.category) == (first.id, 7, "passive")


def test_landing_auto_post_too_soon_or_for_another_score_counts_nothing(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    urls = links(page_app, make_request(page_app, project["id"]))["score_urls"]
    view = view_token(client.get(path_of(urls["9"])).get_data(as_text=True))
    assert post_answer(client, urls["9"], view, 9, "auto").get_json()["reason"] == "too_soon"
    page_app.config["LANDING_MIN_VISIBLE_SECONDS"] = 0
    assert post_answer(client, urls["9"], view, 4, "auto").get_json()["reason"] == "not_the_linked_score"
    assert count_responses(page_app) == 0


def test_landing_burst_of_all_links_withdraws_auto_count_but_keeps_interaction(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    page_app.config["LANDING_MIN_VISIBLE_SECONDS"] = 0
    urls = links(page_app, make_request(page_app, project["id"]))["score_urls"]
    views = {}
    # A scanner opening links one after another: the first auto post still looks like a person...
    views[0] = view_token(client.get(path_of(urls["0"])).get_data(as_text=True))
    assert post_answer(client, urls["0"], views[0], 0, "auto").get_json()["counted"] is True
    for score in range(1, 11):
        views[score] = view_token(client.get(path_of(urls[str(score)])).get_data(as_text=True))
    # ...until the burst shows: then auto posts are refused and the unconfirmed score withdrawn.
    res = post_answer(client, urls["10"], views[10], 10, "auto").get_json()
    assert res == {"counted": False, "reason": "burst", "score": 10}
    assert count_responses(page_app) == 0
    # A person's interaction still counts, even within the burst window.
    assert post_answer(client, urls["8"], views[8], 8, "interaction").get_json()["counted"] is True
    assert post_answer(client, urls["6"], views[6], 6, "auto").get_json()["reason"] == "burst"
    assert only_response(page_app).score == 8


def test_landing_comment_with_html_is_stored_as_text_and_escaped(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    urls = links(page_app, make_request(page_app, project["id"]))["score_urls"]
    view = view_token(client.get(path_of(urls["5"])).get_data(as_text=True))
    evil = '</textarea><script>alert("x")</script><img src=x onerror=alert(1)>'
    assert post_answer(client, urls["5"], view, 5, "interaction", evil).get_json()["counted"] is True
    assert only_response(page_app).comment == evil
    page = client.get(path_of(urls["5"])).get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;/textarea&gt;&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_landing_form_post_without_script_counts_and_thanks(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    urls = links(page_app, make_request(page_app, project["id"]))["score_urls"]
    view = view_token(client.get(path_of(urls["2"])).get_data(as_text=True))
    res = client.post(path_of(urls["2"]).split("?")[0], data={"pick": "10", "score": "2", "view": view})
    assert res.status_code == 200 and "Thank you for your feedback!" in res.get_data(as_text=True)
    assert only_response(page_app).score == 10


@pytest.mark.parametrize(
    "form",
    [
        {"score": "11"},
        {"score": "-1"},
        {"score": "9.5"},
        {"score": ""},
        {"score": "9", "view": "tampered"},
        {"score": "9", "comment": "x" * 5001},
    ],
)
def test_landing_post_bad_input_is_4xx_and_counts_nothing(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], form: dict[str, str]
) -> None:
    urls = links(page_app, make_request(page_app, project["id"]))["score_urls"]
    view = view_token(client.get(path_of(urls["9"])).get_data(as_text=True))
    res = client.post(
        path_of(urls["9"]).split("?")[0], data={"view": view, **form}, headers={"Accept": "application/json"}
    )
    assert res.status_code in (400, 422) and res.get_json()["status"] == res.status_code
    assert count_responses(page_app) == 0


def test_landing_view_token_of_another_request_is_refused(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    first = links(page_app, make_request(page_app, project["id"]))["score_urls"]
    second = links(page_app, make_request(page_app, project["id"], email="bob@example.com"))["score_urls"]
    view = view_token(client.get(path_of(first["9"])).get_data(as_text=True))
    assert post_answer(client, second["9"], view, 9, "interaction").status_code == 400
    assert count_responses(page_app) == 0


def _forged(app: Flask, make: str, token: str) -> str:
    with app.app_context():
        key = app.config["SECRET_KEY"]
        if make == "truncated":
            return token[:-2]
        if make == "tampered":
            return token[:-4] + ("abcd" if not token.endswith("abcd") else "efgh")
        if make == "wrong-salt":
            return URLSafeSerializer(key, salt=tokens.UNSUBSCRIBE).dumps([1, 2**40])
        if make == "re-signed":
            return URLSafeSerializer("attacker", salt=tokens.SCORE_LINK).dumps([1, 2**40])
        if make == "unknown-request":
            return tokens.score_link_token(999999, datetime.now(UTC) + timedelta(days=1))
        return "%C3%A9%00" + token


@pytest.mark.parametrize(
    "make", ["truncated", "tampered", "wrong-salt", "re-signed", "unknown-request", "junk"]
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_landing_bad_token_is_plain_404_page(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], make: str, method: str
) -> None:
    url = links(page_app, make_request(page_app, project["id"]))["url"]
    token = _forged(page_app, make, url.rsplit("/", 1)[1])
    res = client.open(f"/s/{token}?score=9", method=method, data={"score": "9", "view": "x"})
    assert res.status_code == 404 and res.mimetype == "text/html"
    assert "Page not found" in res.get_data(as_text=True)
    assert client.get(f"/u/{token}").status_code == 404
    assert count_responses(page_app) == 0


def test_landing_expired_link_shows_closed_page_and_records_nothing(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    page_app.config["LANDING_MIN_VISIBLE_SECONDS"] = 0
    request_id = make_request(page_app, project["id"])
    urls = links(page_app, request_id)["score_urls"]
    # A view token from while the link was valid: the page was opened, then the link expired.
    view = view_token(client.get(path_of(urls["9"])).get_data(as_text=True))
    with page_app.app_context():
        past = datetime.now(UTC) - timedelta(minutes=1)
        db.session.execute(
            update(SurveyRequest).where(SurveyRequest.id == request_id).values(expires_at=past)
        )
        db.session.commit()
    res = client.get(path_of(urls["9"]))
    page = res.get_data(as_text=True)
    assert res.status_code == 200 and "This link has expired" in page and "no longer accepts answers" in page
    assert 'name="view"' not in page and "data-score" not in page
    for mode in ("auto", "interaction"):
        body = post_answer(client, urls["9"], view, 9, mode).get_json()
        assert body["counted"] is False and body["reason"] == "expired"
    html = client.post(path_of(urls["9"]).split("?")[0], data={"score": "9", "view": view})
    assert html.status_code == 200 and "no longer accepts answers" in html.get_data(as_text=True)
    assert count_responses(page_app) == 0


def test_landing_closed_survey_says_so_and_counts_nothing(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    request_id = make_request(page_app, project["id"])
    urls = links(page_app, request_id)["score_urls"]
    view = view_token(client.get(path_of(urls["9"])).get_data(as_text=True))
    with page_app.app_context():
        db.session.execute(update(Survey).values(is_open=False))
        db.session.commit()
    assert "This survey has closed" in client.get(path_of(urls["9"])).get_data(as_text=True)
    assert post_answer(client, urls["9"], view, 9, "interaction").get_json()["reason"] == "closed"
    assert count_responses(page_app) == 0


def test_landing_page_in_person_locale(page_app: Flask, client: FlaskClient, project: dict[str, Any]) -> None:
    urls = links(page_app, make_request(page_app, project["id"], locale="de"))["score_urls"]
    page = client.get(path_of(urls["10"])).get_data(as_text=True)
    assert '<html lang="de">' in page and "Was gefällt Ihnen am besten?" in page


def test_unsubscribe_get_confirms_and_post_stops_future_emails(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    request_id = make_request(page_app, project["id"])
    unsubscribe = path_of(links(page_app, request_id)["unsubscribe_url"])
    res = client.get(unsubscribe)
    assert res.status_code == 200 and '<form method="post">' in res.get_data(as_text=True)
    assert client.get("/api/v1/unsubscribes", headers=auth).get_json()["data"] == []
    res = client.post(
        unsubscribe, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert res.status_code == 200 and "Set-Cookie" not in res.headers and "Location" not in res.headers
    assert "You are unsubscribed" in res.get_data(as_text=True)
    assert client.post(unsubscribe).status_code == 200  # twice is fine
    listed = client.get("/api/v1/unsubscribes", headers=auth).get_json()["data"]
    assert [row["email"] for row in listed] == ["ann@example.com"]
    with smtp_server() as (sink, url):
        page_app.config["SMTP_URL"] = url
        with page_app.app_context():
            # The unsubscribe cancelled the waiting email; a new ask is refused as suppressed.
            assert send_survey_email(request_id) == "skipped_cancelled"
            again = make_request(page_app, project["id"])
            assert send_survey_email(again) == "suppressed"
    assert sink.messages == []


def test_survey_links_api_returns_eleven_signed_urls(
    page_app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    res = client.post("/api/v1/survey_links", json={"person": {"email": "c1@example.com"}}, headers=auth)
    assert res.status_code == 201
    body = res.get_json()
    assert sorted(body["score_urls"], key=int) == [str(n) for n in range(11)]
    assert body["expires_at"].endswith("Z") and body["url"].startswith("http://survey.test/s/")
    for score, url in body["score_urls"].items():
        assert url == f"{body['url']}?score={score}"
    page = client.get(path_of(body["score_urls"]["6"]))
    assert page.status_code == 200 and 'data-score="6" aria-pressed="true"' in page.get_data(as_text=True)
    with page_app.app_context():
        request = db.session.get(SurveyRequest, body["id"])
        assert request is not None and request.channel == "link" and request.sent_at is not None
    assert client.post("/api/v1/survey_links", json={"person": {}}, headers=auth).status_code == 422
    assert client.post("/api/v1/survey_links", json={"person": {"email": "a@b.co"}}).status_code == 401


def test_funnel_report_counts_each_step_per_channel(
    page_app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    page_app.config["LANDING_MIN_VISIBLE_SECONDS"] = 0
    sent = make_request(page_app, project["id"])
    later = make_request(page_app, project["id"], email="other@example.com")
    with page_app.app_context():  # due tomorrow: the batch that sends the first one leaves it waiting
        db.session.execute(
            update(SurveyRequest)
            .where(SurveyRequest.id == later)
            .values(scheduled_at=clock.now() + timedelta(days=1))
        )
        db.session.commit()
    with smtp_server() as (_, url):
        page_app.config["SMTP_URL"] = url
        with page_app.app_context():
            assert send_survey_email(sent) == "sent"
    urls = links(page_app, sent)["score_urls"]
    view = view_token(client.get(path_of(urls["9"])).get_data(as_text=True))
    post_answer(client, urls["9"], view, 9, "auto")
    body = client.get("/api/v1/reports/funnel", headers=auth).get_json()
    assert body["channels"] == [
        {
            "channel": "email",
            "requests": 2,
            "sent": 1,
            "delivered": 1,
            "opened": 0,
            "clicked": 1,
            "responded": 1,
            "bounced": 0,
            "response_rate": 100.0,
        }
    ]


def test_public_pages_rate_limited_answer_429_page(
    page_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    page_app.config["PUBLIC_RATE_LIMIT"] = "3 per minute"
    limited = create_app(dict(page_app.config.items()))
    with limited.test_client() as other:
        for _ in range(3):
            assert other.get("/s/not-a-token").status_code == 404
        res = other.get("/s/not-a-token")
    with limited.app_context():
        db.engine.dispose()
    assert res.status_code == 429 and res.mimetype == "text/html" and res.headers["Retry-After"]


def test_public_pages_with_redis_down_still_serve_and_count_interactions(
    page_app: Flask, project: dict[str, Any]
) -> None:
    config = dict(page_app.config.items())
    config.pop("RATELIMIT_STORAGE_URI", None)
    config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    config["LANDING_MIN_VISIBLE_SECONDS"] = 0
    down = create_app(config)
    urls = links(down, make_request(down, project["id"]))["score_urls"]
    with down.test_client() as client:
        res = client.get(path_of(urls["9"]))
        assert res.status_code == 200
        view = view_token(res.get_data(as_text=True))
        assert post_answer(client, urls["9"], view, 9, "auto").get_json()["reason"] == "unverified"
        assert post_answer(client, urls["9"], view, 9, "interaction").get_json()["counted"] is True
    assert only_response(down).score == 9
    with down.app_context():
        db.engine.dispose()
