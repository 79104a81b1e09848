"""Bulk sends: batch claims under concurrency, the pooled SMTP session's reconnects, send-rate limits,
and templates rendered once with each person's own links (real database, Redis and aiosmtpd)."""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections import Counter
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from rq.job import Job
from sqlalchemy import select

from survey_service.config import ConfigError, parse_domain_rates, parse_rate
from survey_service.core import clock, tokens
from survey_service.core.send_rate import SendRateLimiter
from survey_service.extensions import db, queues
from survey_service.jobs import send_survey_email
from survey_service.mail.compose import Templates
from survey_service.mail.smtp import parse_smtp_url, pooled_session
from survey_service.models import Person, SurveyRequest
from survey_service.services import email_requests, outbox
from survey_service.services.email_sends import claim_batch, release, send_batch
from survey_service.services.people import upsert_person
from survey_service.services.suppressions import add_suppression
from tests.support.concurrency import at_once
from tests.support.dashboard import add_user, sign_in
from tests.support.mail import flush_redis, run_worker_burst, smtp_server


@pytest.fixture
def bulk_app(app: Flask, redis_url: str) -> Flask:
    """The app on an empty Redis database, with retries that do not wait."""
    app.config["EMAIL_RETRY_INTERVALS"] = [0, 0]
    flush_redis(app)
    return app


def make_requests(app: Flask, project_id: int, people: list[dict[str, Any]]) -> list[int]:
    """One pending email request per person (created, not enqueued); their ids in order."""
    ids = []
    with app.app_context():
        for data in people:
            person, _ = upsert_person(project_id, data)
            db.session.commit()
            ids.append(email_requests.create_email_request(project_id, person.id).id)
    return ids


def statuses(app: Flask, ids: list[int]) -> dict[int, str]:
    with app.app_context():
        rows = db.session.execute(
            select(SurveyRequest.id, SurveyRequest.status).where(SurveyRequest.id.in_(ids))
        )
        return {row.id: row.status for row in rows}


def part(message: EmailMessage, kind: str) -> str:
    """The decoded plain or html part of a message."""
    body = message.get_body(preferencelist=(kind,))
    assert body is not None
    return str(body.get_content())


def recipients(sink: Any) -> Counter[str]:
    return Counter(rcpt for _, rcpts in sink.envelopes for rcpt in rcpts)


# --- batch claims -------------------------------------------------------------------------------


def test_claim_batch_concurrent_claimers_never_share_a_request(
    bulk_app: Flask, project: dict[str, Any]
) -> None:
    people = [{"email": f"p{i}@example.com"} for i in range(240)]
    ids = make_requests(bulk_app, project["id"], people)

    def claimer(_: int) -> list[int]:
        claimed: list[int] = []
        while batch := claim_batch(clock.now(), 7):
            claimed += batch
        return claimed

    claims = at_once(claimer, 4, bulk_app)  # each thread its own session and database connection
    every = [i for claim in claims for i in claim]
    assert Counter(every).most_common(1)[0][1] == 1  # no request claimed twice
    assert sorted(every) == sorted(ids)  # and none left behind
    assert sum(1 for claim in claims if claim) >= 2, [len(c) for c in claims]  # they really overlapped
    assert set(statuses(bulk_app, ids).values()) == {"sending"}


def test_claim_batch_takes_only_due_waiting_email_requests(bulk_app: Flask, project: dict[str, Any]) -> None:
    ids = make_requests(bulk_app, project["id"], [{"email": f"d{i}@example.com"} for i in range(4)])
    with bulk_app.app_context():
        later, cancelled, link = (db.session.get(SurveyRequest, i) for i in ids[1:])
        assert later and cancelled and link
        later.scheduled_at = clock.now().replace(year=clock.now().year + 1)
        cancelled.status = "cancelled"
        link.channel = "link"
        db.session.commit()
        assert claim_batch(clock.now(), 50) == [ids[0]]
        # The job's own request is claimed whatever its due time (its job runs when it is due).
        assert claim_batch(clock.now(), 1, own_id=ids[1]) == [ids[1]]
        assert claim_batch(clock.now(), 50, own_id=ids[1]) == []  # already claimed: nothing


def test_send_survey_email_one_job_sends_the_due_batch_and_the_other_jobs_find_it_sent(
    bulk_app: Flask, project: dict[str, Any]
) -> None:
    ids = make_requests(bulk_app, project["id"], [{"email": f"b{i}@example.com"} for i in range(25)])
    bulk_app.config["SEND_BATCH_SIZE"] = 10
    with smtp_server() as (sink, url):
        bulk_app.config["SMTP_URL"] = url
        with bulk_app.app_context():
            assert send_survey_email(ids[3]) == "sent"
            assert send_survey_email(ids[0]) == "skipped_sent"
            session = pooled_session(parse_smtp_url(url))
            assert session.connections == 1  # 25 messages, three batches, one connection
    assert recipients(sink) == Counter(f"b{i}@example.com" for i in range(25))
    assert set(statuses(bulk_app, ids).values()) == {"sent"}


def test_claim_drops_the_claimed_requests_queued_jobs_and_a_released_one_is_enqueued_again(
    bulk_app: Flask, project: dict[str, Any]
) -> None:
    ids = make_requests(bulk_app, project["id"], [{"email": f"q{i}@example.com"} for i in range(6)])
    with bulk_app.app_context():
        rows = db.session.scalars(select(SurveyRequest).where(SurveyRequest.id.in_(ids))).all()
        assert outbox.enqueue_requests(rows) == 6
        queue = queues().queue()
        assert set(queue.job_ids) == {outbox.job_id(i) for i in ids}
        # The job of ids[0] runs (taken off the queue by its worker) and claims the whole batch.
        queue.remove(outbox.job_id(ids[0]))
        claimed = claim_batch(clock.now(), 4, own_id=ids[0])
        assert len(claimed) == 4
        # The three other claimed requests' jobs are gone, hashes included; the unclaimed two stay.
        assert set(queue.job_ids) == {outbox.job_id(i) for i in ids if i not in claimed}
        assert not any(queues().redis.exists(Job.key_for(outbox.job_id(i))) for i in claimed[1:])
        # Released untried (e.g. the server was down), a claimed request is enqueued again by the relay.
        release(claimed[1:2])
        assert outbox.relay() == 1
        assert outbox.job_id(claimed[1]) in queue.job_ids
    with smtp_server() as (sink, url):
        bulk_app.config["SMTP_URL"] = url
        with bulk_app.app_context():
            send_batch([i for i in claimed if i != claimed[1]])
        run_worker_burst(bulk_app)  # the remaining jobs find their requests sent, or send them
    assert recipients(sink) == Counter(f"q{i}@example.com" for i in range(6))  # each exactly once
    assert set(statuses(bulk_app, ids).values()) == {"sent"}


# --- the pooled SMTP session --------------------------------------------------------------------


def test_send_batch_connection_lost_before_acceptance_reconnects_and_sends_each_once(
    bulk_app: Flask, project: dict[str, Any]
) -> None:
    ids = make_requests(bulk_app, project["id"], [{"email": f"r{i}@example.com"} for i in range(12)])
    with smtp_server() as (sink, url):
        sink.drop_at_rcpt = {4, 9}  # the server goes away twice mid-batch, before those messages' DATA
        bulk_app.config["SMTP_URL"] = url
        with bulk_app.app_context():
            result = send_batch(claim_batch(clock.now(), 50))
            assert pooled_session(parse_smtp_url(url)).connections == 3
    assert set(result.outcomes.values()) == {"sent"}
    assert recipients(sink) == Counter(f"r{i}@example.com" for i in range(12))  # each exactly once
    assert set(statuses(bulk_app, ids).values()) == {"sent"}


def test_send_batch_connection_lost_after_the_message_is_never_sent_again(
    bulk_app: Flask, project: dict[str, Any]
) -> None:
    ids = make_requests(bulk_app, project["id"], [{"email": f"m{i}@example.com"} for i in range(6)])
    with smtp_server() as (sink, url):
        sink.drop_after_data = {3}  # the third message is kept, but its "250" never reaches us
        bulk_app.config["SMTP_URL"] = url
        with bulk_app.app_context():
            result = send_batch(claim_batch(clock.now(), 50))
            # The batch stops at the broken connection; the next one picks up the rest.
            assert Counter(result.outcomes.values()) == {"sent": 2, "sent_unconfirmed": 1}
            assert set(send_batch(claim_batch(clock.now(), 50)).outcomes.values()) == {"sent"}
    assert recipients(sink) == Counter(f"m{i}@example.com" for i in range(6))  # never twice
    with bulk_app.app_context():
        third = db.session.get(SurveyRequest, ids[2])
        assert third is not None and third.status == "sent" and third.delivered_at is None
        assert "confirmed" in (third.email_error or "")


def test_send_batch_server_restarted_between_batches_reconnects(
    bulk_app: Flask, project: dict[str, Any]
) -> None:
    first = make_requests(bulk_app, project["id"], [{"email": f"s{i}@example.com"} for i in range(3)])
    with smtp_server() as (sink, url):
        bulk_app.config["SMTP_URL"] = url
        with bulk_app.app_context():
            send_batch(claim_batch(clock.now(), 50))
            session = pooled_session(parse_smtp_url(url))
            assert session.client is not None
            # The connection breaks while idle between batches (a server restart, an idle timeout).
            session.client.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
            second = make_requests(
                bulk_app, project["id"], [{"email": f"t{i}@example.com"} for i in range(3)]
            )
            assert set(send_batch(claim_batch(clock.now(), 50)).outcomes.values()) == {"sent"}
            assert session.connections == 2
    assert len(sink.messages) == 6 and len(recipients(sink)) == 6
    assert set(statuses(bulk_app, first + second).values()) == {"sent"}


def test_send_batch_unreachable_server_releases_the_batch_for_later(
    bulk_app: Flask, project: dict[str, Any]
) -> None:
    ids = make_requests(bulk_app, project["id"], [{"email": f"u{i}@example.com"} for i in range(5)])
    bulk_app.config["SMTP_URL"] = "smtp://127.0.0.1:1"
    with bulk_app.app_context():
        result = send_batch(claim_batch(clock.now(), 50))
    assert result.server_trouble
    after = statuses(bulk_app, ids)
    assert list(after.values()).count("pending") == 5  # the first one retried later, the rest untried
    with bulk_app.app_context():
        rows = db.session.scalars(select(SurveyRequest).where(SurveyRequest.id.in_(ids))).all()
        assert sorted(r.send_attempts for r in rows) == [0, 0, 0, 0, 1]
        assert all(r.enqueued_at is None for r in rows)  # the relay enqueues them again


# --- send-rate limits ---------------------------------------------------------------------------


def limiter(app: Flask, **rates: Any) -> SendRateLimiter:
    with app.app_context():
        return SendRateLimiter(queues().redis, prefix=f"test-send-rate:{uuid.uuid4().hex}:", **rates)


def test_send_rate_limiter_global_rate_lets_through_that_many_per_simulated_second(
    bulk_app: Flask,
) -> None:
    two_workers = [limiter(bulk_app, global_rate=20.0)]
    two_workers.append(SendRateLimiter(two_workers[0].redis, global_rate=20.0, prefix=two_workers[0].prefix))
    start = 1_900_000_000.0
    allowed = 0
    for step in range(2000):  # 10 simulated seconds, a try every 5 ms, alternating workers
        now = start + step * 0.005
        if two_workers[step % 2].reserve("example.com", now) == 0.0:
            allowed += 1
    assert allowed == 200


def test_send_rate_limiter_domain_rates_hold_within_the_global_one(bulk_app: Flask) -> None:
    rates = limiter(bulk_app, global_rate=10.0, domain_rate=5.0, domain_rates={"gmail.com": 2.0})
    start, sent = 1_900_000_000.0, Counter[str]()
    for ms in range(5000):  # 5 simulated seconds: every millisecond, a try to each of three domains
        for domain in ("gmail.com", "yahoo.com", "example.org"):
            if rates.reserve(domain, start + ms / 1000) == 0.0:
                sent[domain] += 1
    assert sent["gmail.com"] == 10  # its own 2/s
    assert sum(sent.values()) == 50  # the global 10/s
    assert sent["yahoo.com"] <= 25 and sent["example.org"] <= 25  # the default 5/s per domain


def test_send_rate_limiter_refused_send_is_not_counted_and_says_how_long_to_wait(bulk_app: Flask) -> None:
    rates = limiter(bulk_app, domain_rates={"slow.test": 1 / 60})
    now = 1_900_000_000.0
    assert rates.reserve("slow.test", now) == 0.0
    assert rates.reserve("slow.test", now + 1) == pytest.approx(59.0, abs=0.01)
    assert rates.reserve("fast.test", now + 1) == 0.0  # no rate for it: never waits
    assert rates.reserve("slow.test", now + 60) == 0.0


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("14/s", 14.0), ("100 per second", 100.0), ("600/m", 10.0), ("7200/h", 2.0), ("0", None), ("", None)],
)
def test_parse_rate_reads_the_operators_notation(text: str, per_second: float | None) -> None:
    assert parse_rate("SEND_RATE_LIMIT", text) == per_second


@pytest.mark.parametrize("text", ["fast", "14", "-1/s", "14/fortnight", "gmail.com"])
def test_parse_rate_refuses_what_is_not_a_rate(text: str) -> None:
    with pytest.raises(ConfigError, match="SEND_RATE_LIMIT"):
        parse_rate("SEND_RATE_LIMIT", text)
    with pytest.raises(ConfigError):
        parse_domain_rates("SEND_DOMAIN_RATE_LIMITS", text)


def test_parse_domain_rates_reads_pairs() -> None:
    assert parse_domain_rates("X", "Gmail.com=20/s, outlook.com = 600/m") == {
        "gmail.com": 20.0,
        "outlook.com": 10.0,
    }


def test_send_batch_throttled_domain_waits_for_a_later_batch_while_others_go(
    bulk_app: Flask, project: dict[str, Any]
) -> None:
    people = [{"email": f"x{i}@slow.test"} for i in range(3)] + [
        {"email": f"y{i}@fast.test"} for i in range(3)
    ]
    ids = make_requests(bulk_app, project["id"], people)
    bulk_app.config["SEND_DOMAIN_RATE_LIMITS"] = {"slow.test": 1 / 3600}
    bulk_app.config["SEND_CLAIM_TIMEOUT"] = 3
    flush_redis(bulk_app)
    with smtp_server() as (sink, url):
        bulk_app.config["SMTP_URL"] = url
        with bulk_app.app_context():
            send_batch(claim_batch(clock.now(), 50))
    got = recipients(sink)
    assert sum(n for r, n in got.items() if r.endswith("@slow.test")) == 1
    assert sum(n for r, n in got.items() if r.endswith("@fast.test")) == 3
    assert Counter(statuses(bulk_app, ids).values()) == {"sent": 4, "pending": 2}


# --- render once, per person ------------------------------------------------------------------


def test_send_batch_renders_once_per_survey_and_language_and_each_person_gets_their_own_links(
    bulk_app: Flask, project: dict[str, Any]
) -> None:
    people = [
        {"email": "ann@example.com", "name": "Ann"},
        {"email": "bob@example.com", "name": "Bob <b>&amp; Co"},
        {"email": "cy@example.com"},
        {"email": "dora@example.de", "name": "Dörte", "locale": "de"},
        {"email": "emil@example.de", "name": "Emil", "locale": "de-AT"},
        {"email": "zz@example.com", "name": "ZZ0123456789abGREETINGZZ"},
    ]
    ids = make_requests(bulk_app, project["id"], people)
    templates = Templates()
    with smtp_server() as (sink, url):
        bulk_app.config["SMTP_URL"] = url
        with bulk_app.app_context():
            send_batch(claim_batch(clock.now(), 50), templates=templates)
            request_of = {
                email: rid
                for rid, email in db.session.execute(
                    select(SurveyRequest.id, Person.email).join(Person).where(SurveyRequest.id.in_(ids))
                )
            }
            assert templates.rendered == 2  # English and German, whatever the number of people
            by_address = {m["To"].addresses[0].addr_spec: m for m in sink.messages}
            assert set(by_address) == set(request_of)
            for address, message in by_address.items():
                text = part(message, "plain")
                html = part(message, "html")
                own = request_of[address]
                score_tokens = set(re.findall(r"/s/([^?\"\s]+)\?score=\d+", html + text))
                assert [tokens.read_score_link_token(t) for t in score_tokens] == [own]
                assert len(re.findall(r"\?score=\d+", html)) == 11
                [unsubscribe] = re.findall(r"/u/([A-Za-z0-9_\-.]+)", message["List-Unsubscribe"])
                assert tokens.read_unsubscribe_token(unsubscribe) == own
                assert f"/u/{unsubscribe}" in html and f"/u/{unsubscribe}" in text
                assert message["Message-ID"].startswith(f"<survey-{own}.")
    bob = by_address["bob@example.com"]
    assert "Hi Bob <b>&amp; Co," in part(bob, "plain")
    assert "Hi Bob &lt;b&gt;&amp;amp; Co," in part(bob, "html")
    assert part(by_address["cy@example.com"], "plain").splitlines()[0] == "Hi,"
    dora = by_address["dora@example.de"]
    assert dora["To"].addresses[0].display_name == "Dörte"
    assert "Hallo Dörte," in part(dora, "html")
    assert dora["Content-Language"] == "de" and by_address["emil@example.de"]["Content-Language"] == "de"
    # A name that looks like a placeholder is text like any other.
    assert "Hi ZZ0123456789abGREETINGZZ," in part(by_address["zz@example.com"], "plain")


# --- campaigns --------------------------------------------------------------------------------


def test_send_campaign_asks_everyone_once_and_its_progress_shows_in_cli_and_dashboard(
    bulk_app: Flask, runner: FlaskCliRunner, client: FlaskClient, project: dict[str, Any]
) -> None:
    with bulk_app.app_context():
        for i in range(30):
            upsert_person(project["id"], {"email": f"c{i}@example.com", "name": f"C {i}"})
        upsert_person(project["id"], {"external_id": "no-address"})
        db.session.commit()
        add_suppression(project["id"], "c7@example.com", "unsubscribed")
    result = runner.invoke(args=["send-campaign", "Q4 relationship", "--project", str(project["id"])])
    assert result.exit_code == 0, result.output
    queued = json.loads(result.output.strip().splitlines()[-1])
    assert (queued["queued_now"], queued["queued"], queued["requests"]) == (30, 30, 30)
    again = runner.invoke(args=["send-campaign", "Q4 relationship", "--project", str(project["id"])])
    assert json.loads(again.output.strip().splitlines()[-1])["queued_now"] == 0  # nobody asked twice
    with smtp_server() as (sink, url):
        bulk_app.config["SMTP_URL"] = url
        run_worker_burst(bulk_app)
    status = runner.invoke(
        args=["campaign-status", "Q4 relationship", "--project", str(project["id"]), "--watch"]
    )
    assert status.exit_code == 0, status.output
    counts = json.loads(status.output.strip().splitlines()[-1])
    assert {k: counts[k] for k in ("queued", "sending", "sent", "skipped", "failed")} == {
        "queued": 0,
        "sending": 0,
        "sent": 29,
        "skipped": 1,
        "failed": 0,
    }
    assert counts["done"] == 1.0 and len(recipients(sink)) == 29 and "c7@example.com" not in recipients(sink)
    add_user(bulk_app, project["id"], "cs@example.com")
    sign_in(client, "cs@example.com")
    page = client.get("/dashboard").get_data(as_text=True)
    row = re.search(r'<tr data-campaign="Q4 relationship">(.*?)</tr>', page, re.S)
    assert row is not None and 'value="30"' in row.group(1) and "100%" in row.group(1)
    assert re.findall(r'<td class="num">(\d+)</td>', row.group(1)) == ["0", "29", "0", "1", "0"]


def test_send_campaign_unknown_campaign_status_is_a_clear_error(
    bulk_app: Flask, runner: FlaskCliRunner, project: dict[str, Any]
) -> None:
    result = runner.invoke(args=["campaign-status", "nope", "--project", str(project["id"])])
    assert result.exit_code != 0 and "No campaign 'nope'" in result.output
