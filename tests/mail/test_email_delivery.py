"""Email delivery through a real in-process SMTP server and a real RQ worker on the real Redis."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from survey_service.extensions import db
from survey_service.jobs import send_survey_email
from survey_service.models import EmailSuppression, Person, SurveyRequest
from survey_service.services import email_requests
from survey_service.services.people import upsert_person
from survey_service.services.suppressions import add_suppression, is_suppressed
from tests.support.concurrency import at_once
from tests.support.mail import flush_redis, run_worker_burst, smtp_server


@pytest.fixture
def mail_app(app: Flask, redis_url: str) -> Flask:
    """The app on an empty Redis database, with retries that do not wait."""
    app.config["EMAIL_RETRY_INTERVALS"] = [0, 0]
    flush_redis(app)
    return app


def new_person(app: Flask, project_id: int, **data: Any) -> int:
    with app.app_context():
        person, _ = upsert_person(project_id, {"email": "ann@example.com", "name": "Ann", **data})
        db.session.commit()
        return person.id


def fresh_request(app: Flask, request_id: int) -> SurveyRequest:
    with app.app_context():
        request = db.session.get(SurveyRequest, request_id)
        assert request is not None
        db.session.expunge(request)
        return request


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_send_survey_email_via_worker_arrives_with_both_parts_and_headers(
    mail_app: Flask, project: dict[str, Any]
) -> None:
    person_id = new_person(mail_app, project["id"])
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            request = email_requests.create_email_request(project["id"], person_id)
            request_id = request.id
            email_requests.enqueue_survey_email(request_id)
        run_worker_burst(mail_app)
    assert len(sink.messages) == 1
    msg = sink.messages[0]
    assert msg["To"] == "Ann <ann@example.com>"
    assert msg["From"] == "Acme <surveys@localhost>"
    assert re.fullmatch(r"<survey\d+\.[^@]+@survey\.test>|<.+@survey\.test>", msg["Message-ID"])
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.fullmatch(r"<(http://survey\.test/u/[A-Za-z0-9_\-.]+)>", msg["List-Unsubscribe"])
    assert unsubscribe is not None
    assert "Acme" in msg["Subject"]
    text, html = parts(msg)
    links = re.findall(r'<a href="(http://survey\.test/s/[^"?]+\?score=(\d+))"[^>]*>(\d+)</a>', html)
    assert [int(n) for _, n, _ in links] == list(range(11))
    assert all(score == visible for _, score, visible in links)  # each link's text is the bare number
    assert len({url.split("?")[0] for url, _, _ in links}) == 1
    assert "Not likely" in html and "Extremely likely" in html
    assert not any("likely" in visible for _, _, visible in links)
    assert unsubscribe.group(1) in html and unsubscribe.group(1) in text
    for url, _, _ in links:
        assert url in text
    assert "How likely are you to recommend Acme" in text and "How likely are you to recommend Acme" in html
    row = fresh_request(mail_app, request_id)
    assert row.status == "sent" and row.sent_at is not None and row.delivered_at is not None
    assert row.email_message_id == msg["Message-ID"]


def test_send_survey_email_german_locale_is_localised(mail_app: Flask, project: dict[str, Any]) -> None:
    person_id = new_person(mail_app, project["id"], locale="de-AT")
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            request = email_requests.create_email_request(project["id"], person_id)
            assert send_survey_email(request.id) == "sent"
    msg = sink.messages[0]
    text, html = parts(msg)
    assert msg["Subject"] == "Eine kurze Frage zu Acme"
    assert "Wie wahrscheinlich ist es, dass Sie Acme" in html
    assert "Unwahrscheinlich" in html and "Äußerst wahrscheinlich" in html
    assert "Abmelden" in text and '<html lang="de"' in html


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_send_survey_email_over_tls_verifies_the_certificate_and_arrives(
    mail_app: Flask, project: dict[str, Any], tmp_path: Path, mode: str
) -> None:
    person_id = new_person(mail_app, project["id"])
    with smtp_server(mode, tmp_path) as (sink, url):
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            request = email_requests.create_email_request(project["id"], person_id)
            assert send_survey_email(request.id) == "sent"
    assert len(sink.messages) == 1 and sink.envelopes[0][1] == ["ann@example.com"]


def test_send_survey_email_untrusted_certificate_is_not_sent(
    mail_app: Flask, project: dict[str, Any], tmp_path: Path
) -> None:
    person_id = new_person(mail_app, project["id"])
    with smtp_server("smtps", tmp_path) as (sink, url):
        mail_app.config["SMTP_URL"] = url.split("?")[0]  # no cafile: the self-signed cert is untrusted
        with mail_app.app_context():
            request_id = email_requests.create_email_request(project["id"], person_id).id
            with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
                send_survey_email(request_id)
    assert sink.messages == []
    assert fresh_request(mail_app, request_id).status == "pending"


def test_send_survey_email_twice_sends_one_email(mail_app: Flask, project: dict[str, Any]) -> None:
    person_id = new_person(mail_app, project["id"])
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            request_id = email_requests.create_email_request(project["id"], person_id).id
            email_requests.enqueue_survey_email(request_id)
            email_requests.enqueue_survey_email(request_id)
        run_worker_burst(mail_app)
        with mail_app.app_context():
            assert send_survey_email(request_id) == "skipped_sent"
    assert len(sink.messages) == 1


def test_send_survey_email_suppressed_address_is_never_sent(mail_app: Flask, project: dict[str, Any]) -> None:
    person_id = new_person(mail_app, project["id"])
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            add_suppression(project["id"], "ANN@example.com", "unsubscribed")
            request_id = email_requests.create_email_request(project["id"], person_id).id
            assert send_survey_email(request_id) == "suppressed"
    assert sink.messages == []
    assert fresh_request(mail_app, request_id).status == "suppressed"


def test_send_survey_email_permanent_rcpt_refusal_marks_bounced(
    mail_app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    person_id = new_person(mail_app, project["id"])
    with smtp_server() as (sink, url):
        sink.rcpt_replies = ["550 5.1.1 <ann@example.com>: no such user"]
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            request_id = email_requests.create_email_request(project["id"], person_id).id
            email_requests.enqueue_survey_email(request_id)
        run_worker_burst(mail_app)
    assert sink.messages == []
    assert fresh_request(mail_app, request_id).status == "bounced"
    with mail_app.app_context():
        assert is_suppressed(project["id"], "ann@example.com")
    body = client.get("/api/v1/bounces", headers=auth).get_json()
    assert [row["email"] for row in body["data"]] == ["ann@example.com"]
    assert body["data"][0]["bounced_at"].endswith("Z")


def test_send_survey_email_temporary_failure_is_retried_then_delivered(
    mail_app: Flask, project: dict[str, Any]
) -> None:
    person_id = new_person(mail_app, project["id"])
    with smtp_server() as (sink, url):
        sink.rcpt_replies = ["451 4.7.1 greylisted, try again later"]
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            request_id = email_requests.create_email_request(project["id"], person_id).id
            email_requests.enqueue_survey_email(request_id)
        run_worker_burst(mail_app)
    assert len(sink.messages) == 1
    row = fresh_request(mail_app, request_id)
    assert row.status == "sent" and row.delivered_at is not None


def test_send_survey_email_unreachable_server_fails_after_retries(
    mail_app: Flask, project: dict[str, Any]
) -> None:
    person_id = new_person(mail_app, project["id"])
    mail_app.config["SMTP_URL"] = "smtp://127.0.0.1:1"
    with mail_app.app_context():
        request_id = email_requests.create_email_request(project["id"], person_id).id
        email_requests.enqueue_survey_email(request_id)
    run_worker_burst(mail_app)
    row = fresh_request(mail_app, request_id)
    assert row.status == "failed" and row.sent_at is None and "ConnectionRefused" in (row.email_error or "")
    with mail_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(EmailSuppression)) == 0


def _kept_files(app: Flask, request_id: int, caplog: pytest.LogCaptureFixture) -> tuple[Path, Path]:
    """The .eml and .txt the log-only sender kept for a request (as its one log line says)."""
    lines = [r.getMessage() for r in caplog.records if "SMTP_URL is unset" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    found = re.findall(r"(/\S+-request-(\d+)\.(?:eml|txt))", lines[0])
    assert [int(i) for _, i in found] == [request_id, request_id]
    eml, txt = Path(found[0][0]), Path(found[1][0])
    assert eml.suffix == ".eml" and txt == eml.with_suffix(".txt")
    assert eml.parent == Path(app.config["INSTANCE_PATH"]) / "outbox"
    return eml, txt


def test_send_survey_email_without_smtp_url_keeps_an_eml_and_logs_one_line(
    mail_app: Flask, project: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    from email import message_from_bytes, policy

    person_id = new_person(mail_app, project["id"])
    mail_app.config["SMTP_URL"] = None
    with mail_app.app_context():
        request = email_requests.create_email_request(project["id"], person_id)
        links = email_requests.survey_links(request)
        with caplog.at_level("INFO", logger="survey_service.services.email_sends"):
            assert send_survey_email(request.id) == "logged"
    # One line: where the files are, the recipient and the subject.
    eml, txt = _kept_files(mail_app, request.id, caplog)
    assert "ann@example.com" in caplog.text
    # The .eml is the whole message as SMTP would have carried it.
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_body(preferencelist=("html",)) is not None
    # The .txt holds every score link whole, one per line, ready to click.
    text = txt.read_text()
    for score, url in links["score_urls"].items():
        assert f"{int(score):>2}  {url}\n" in text
    assert links["unsubscribe_url"] in text
    # Both are the service user's only: they hold live links.
    assert (eml.stat().st_mode & 0o777, txt.stat().st_mode & 0o777) == (0o600, 0o600)
    assert fresh_request(mail_app, request.id).status == "sent"


def test_send_survey_email_without_smtp_url_honours_instance_path(
    mail_app: Flask, project: dict[str, Any], tmp_path: Path
) -> None:
    person_id = new_person(mail_app, project["id"])
    mail_app.config["SMTP_URL"] = None
    instance = mail_app.instance_path
    mail_app.instance_path = str(tmp_path / "elsewhere")
    try:
        with mail_app.app_context():
            request_id = email_requests.create_email_request(project["id"], person_id).id
            assert send_survey_email(request_id) == "logged"
    finally:
        mail_app.instance_path = instance
    assert len(list((tmp_path / "elsewhere" / "outbox").glob(f"*-request-{request_id}.eml"))) == 1


# --- sec-auth: the log-only sender (SMTP_URL unset) logs who and what, never a live link ---


def test_send_survey_email_without_smtp_url_logs_recipient_and_subject_without_live_links(
    mail_app: Flask, project: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    person_id = new_person(mail_app, project["id"])
    mail_app.config["SMTP_URL"] = None
    with mail_app.app_context():
        request = email_requests.create_email_request(project["id"], person_id)
        links = email_requests.survey_links(request)
        subject = compose_subject(mail_app, request.id)
        with caplog.at_level("INFO"):
            assert send_survey_email(request.id) == "logged"
    logged = caplog.text
    assert "ann@example.com" in logged and subject in logged
    tokens = {url.split("?")[0].rsplit("/", 1)[1] for url in [links["url"], links["unsubscribe_url"]]}
    assert len(tokens) == 2 and all(len(token) > 20 for token in tokens)
    for token in tokens:  # nor any piece of one, which a quoted-printable line break could leave
        assert token not in logged and token[:16] not in logged and token[-16:] not in logged
    _, txt = _kept_files(mail_app, request.id, caplog)
    assert all(token in txt.read_text() for token in tokens)  # the links live in the 0600 file only


def compose_subject(app: Flask, request_id: int) -> str:
    from survey_service.mail.compose import compose_survey_email
    from survey_service.models import Project, Survey

    request = db.session.get(SurveyRequest, request_id)
    assert request is not None
    person, survey = db.session.get(Person, request.person_id), db.session.get(Survey, request.survey_id)
    project = db.session.get(Project, request.project_id)
    assert person is not None and survey is not None and project is not None
    return str(compose_survey_email(request, person, survey, project)["Subject"])


def test_survey_requests_api_email_arrives_at_smtp_server(
    mail_app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        res = client.post(
            "/api/v1/survey_requests",
            json={"person": {"email": "Bob@Example.com", "name": "Bob", "locale": "fr"}, "channel": "email"},
            headers=auth,
        )
        assert res.status_code == 201, res.get_json()
        body = res.get_json()
        assert body["channel"] == "email" and body["status"] == "pending"
        run_worker_burst(mail_app)
    assert len(sink.messages) == 1 and sink.envelopes[0][1] == ["bob@example.com"]
    assert sink.messages[0]["Subject"] == "Une question rapide sur Acme"
    after = client.get(f"/api/v1/survey_requests/{body['id']}", headers=auth).get_json()
    assert after["status"] == "sent" and after["delivered_at"] and after["sent_at"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"person": {"external_id": "no-email"}, "channel": "email"}, 422),
        ({"person": {"email": "a@b.co"}, "channel": "sms"}, 422),
        ({"person": {"email": "not-an-email"}}, 422),
        ({"person": {"email": "a@b.co"}, "survey_id": 999999}, 404),
        ({"channel": "email"}, 422),
    ],
)
def test_survey_requests_api_bad_input_is_4xx_in_error_shape(
    mail_app: Flask, client: FlaskClient, auth: dict[str, str], body: dict[str, Any], status: int
) -> None:
    res = client.post("/api/v1/survey_requests", json=body, headers=auth)
    assert res.status_code == status
    assert res.get_json()["status"] == status and res.get_json()["code"]
    with mail_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SurveyRequest)) == 0


def test_survey_requests_api_suppressed_address_is_409(
    mail_app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    assert client.post("/api/v1/unsubscribes", json={"email": "c@d.co"}, headers=auth).status_code == 201
    res = client.post("/api/v1/survey_requests", json={"person": {"email": "c@d.co"}}, headers=auth)
    assert res.status_code == 409 and res.get_json()["code"] == "email_suppressed"
    listed = client.get("/api/v1/unsubscribes", headers=auth).get_json()["data"]
    assert [row["email"] for row in listed] == ["c@d.co"] and listed[0]["unsubscribed_at"]


def test_survey_request_of_another_project_is_404(
    mail_app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    from tests.support.db import make_project

    other = make_project(mail_app, "Other")
    person_id = new_person(mail_app, other["id"])
    with mail_app.app_context():
        request_id = email_requests.create_email_request(other["id"], person_id).id
        assert db.session.get(Person, person_id) is not None
    assert client.get(f"/api/v1/survey_requests/{request_id}", headers=auth).status_code == 404


@pytest.mark.parametrize("status", ["cancelled", "responded", "sending", "sent", "bounced", "expired"])
def test_send_survey_email_request_not_pending_is_skipped(
    mail_app: Flask, project: dict[str, Any], status: str
) -> None:
    person_id = new_person(mail_app, project["id"])
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            request = email_requests.create_email_request(project["id"], person_id)
            request.status = status
            db.session.commit()
            assert send_survey_email(request.id) == f"skipped_{status}"
    assert sink.messages == []


def test_send_survey_email_already_answered_request_is_skipped(
    mail_app: Flask, project: dict[str, Any]
) -> None:
    from survey_service.core import clock

    person_id = new_person(mail_app, project["id"])
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            request = email_requests.create_email_request(project["id"], person_id)
            request.responded_at = clock.now()
            db.session.commit()
            assert send_survey_email(request.id) == "skipped_answered"
            assert send_survey_email(987654) == "missing"
    assert sink.messages == []


def test_send_email_survey_enqueues_after_commit_with_deterministic_job_id(
    mail_app: Flask, project: dict[str, Any]
) -> None:
    from rq.job import Job

    from survey_service.extensions import queues

    person_id = new_person(mail_app, project["id"])
    with mail_app.app_context():
        request = email_requests.send_email_survey(project["id"], person_id)
        job = Job.fetch(f"send-email-{request.id}", connection=queues().redis)
        assert job.args == (request.id,) and job.retries_left == 2
        assert db.session.get(SurveyRequest, request.id) is not None


def test_survey_requests_api_delay_schedules_the_job(
    mail_app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    from survey_service.extensions import queues, scheduled_jobs

    res = client.post(
        "/api/v1/survey_requests", json={"person": {"email": "d@e.co"}, "delay_seconds": 3600}, headers=auth
    )
    assert res.status_code == 201 and res.get_json()["scheduled_at"]
    with mail_app.app_context():
        registry = scheduled_jobs(queues().queue())
        assert registry.get_job_ids() == [f"send-email-{res.get_json()['id']}"]


def test_open_pixel_is_off_by_default_and_records_first_open_when_on(
    mail_app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    person_id = new_person(mail_app, project["id"])
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            first = email_requests.create_email_request(project["id"], person_id).id
            assert send_survey_email(first) == "sent"
            mail_app.config["EMAIL_OPEN_TRACKING"] = True
            request_id = email_requests.create_email_request(project["id"], person_id).id
            assert send_survey_email(request_id) == "sent"
    assert "/o/" not in parts(sink.messages[0])[1]
    pixel = re.search(r'<img src="http://survey\.test(/o/[^"]+\.gif)"', parts(sink.messages[1])[1])
    assert pixel is not None
    res = client.get(pixel.group(1))
    assert res.status_code == 200 and res.mimetype == "image/gif" and res.data.startswith(b"GIF89a")
    assert fresh_request(mail_app, request_id).opened_at is not None
    assert client.get("/o/forged.gif").status_code == 200
    funnel = client.get("/api/v1/reports/funnel", headers=auth).get_json()["channels"][0]
    assert (funnel["sent"], funnel["delivered"], funnel["opened"]) == (2, 2, 1)


def test_send_survey_email_two_runs_at_once_send_one_email(mail_app: Flask, project: dict[str, Any]) -> None:

    person_id = new_person(mail_app, project["id"])
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            request_id = email_requests.create_email_request(project["id"], person_id).id
        results = at_once(lambda _: send_survey_email(request_id), 4, mail_app)
    assert len(sink.messages) == 1
    assert results.count("sent") == 1 and len(results) == 4, results


def test_send_survey_email_a_moment_early_waits_for_its_due_time(
    mail_app: Flask, project: dict[str, Any]
) -> None:
    # RQ's scheduler moves a job to the queue up to a second before its due time (whole seconds).
    person_id = new_person(mail_app, project["id"])
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            request = email_requests.create_email_request(project["id"], person_id)
            due = datetime.now(UTC) + timedelta(milliseconds=800)
            db.session.get(SurveyRequest, request.id).scheduled_at = due  # type: ignore[union-attr]
            db.session.commit()
            assert send_survey_email(request.id) == "sent"
            arrived = datetime.now(UTC)
    row = fresh_request(mail_app, request.id)
    assert len(sink.messages) == 1 and row.sent_at is not None
    assert row.sent_at >= due and arrived >= due


# --- Sends that used to crash forever (sec-outbound): names with line breaks, unbuildable messages ---


@pytest.mark.parametrize("path", ["/api/v1/people", "/api/v1/responses"])
@pytest.mark.parametrize("name", ["Ann\r\nBcc: spy@evil.test", "Ann\n", "Ann\u2028Smith"])
def test_person_name_with_line_break_is_422(
    client: FlaskClient, auth: dict[str, str], path: str, name: str
) -> None:
    person = {"email": "ann@example.com", "name": name}
    body = person if path.endswith("people") else {"person": person, "score": 5}
    res = client.post(path, json=body, headers=auth)
    assert res.status_code == 422 and res.get_json()["code"] == "validation_error", res.get_json()


def test_send_survey_email_stored_name_with_line_break_is_sent_once(
    mail_app: Flask, project: dict[str, Any]
) -> None:
    # A name that reached the database through another door (a widget, an import, an older version).
    person_id = new_person(mail_app, project["id"], name="Ann\r\nBcc: spy@evil.test")
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            request_id = email_requests.create_email_request(project["id"], person_id).id
            email_requests.enqueue_survey_email(request_id)
        run_worker_burst(mail_app)
    [message] = sink.messages
    assert message["Bcc"] is None and sink.envelopes[0][1] == ["ann@example.com"]
    assert " ".join(message["To"].split()) == '"Ann Bcc: spy@evil.test" <ann@example.com>'
    assert fresh_request(mail_app, request_id).status == "sent"


def test_send_survey_email_that_cannot_be_composed_fails_instead_of_staying_claimed(
    mail_app: Flask, project: dict[str, Any]
) -> None:
    person_id = new_person(mail_app, project["id"])
    with mail_app.app_context():
        request_id = email_requests.create_email_request(project["id"], person_id).id
        # No expiry: its signed links cannot be made, on this try or any other.
        db.session.execute(
            update(SurveyRequest).where(SurveyRequest.id == request_id).values(expires_at=None)
        )
        db.session.commit()
    with smtp_server() as (sink, url):
        mail_app.config["SMTP_URL"] = url
        with mail_app.app_context():
            assert send_survey_email(request_id) == "failed"
            assert send_survey_email(request_id) == "skipped_failed"  # final: nothing left to retry
    assert sink.messages == []
    row = fresh_request(mail_app, request_id)
    assert (row.status, row.email_error) == ("failed", "the email could not be composed")
