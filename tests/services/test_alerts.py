"""Alert rules: matching, signed webhooks through a real RQ worker and Redis, retries, SSRF refusals."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq.job import Job
from sqlalchemy import select

from survey_service.core import keys
from survey_service.extensions import db, queues, scheduled_jobs
from survey_service.models import AlertRule, WebhookDelivery
from survey_service.services import alerts
from tests.support.db import make_project
from tests.support.webhooks import Receiver, create_rule, run_jobs


def test_alert_webhook_is_signed_and_delivered_by_worker(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    res = create_rule(client, auth, target_url=receiver.url, max_score=6, require_comment=True)
    assert res.status_code == 201, res.get_json()
    rule = res.get_json()
    assert rule["secret"].startswith("whsec_")
    for score, comment in [(3, "Slow exports"), (3, None), (9, "Great")]:
        posted = client.post(
            "/api/v1/responses",
            json={"person": {"email": "a@b.co"}, "score": score, "comment": comment},
            headers=auth,
        )
        assert posted.status_code == 201
    run_jobs(private_ok)
    assert len(receiver.requests) == 1  # only the detractor with a comment matches
    headers, body = receiver.requests[0]
    timestamp, _, given = headers["X-Survey-Signature"].partition(",v1=")
    timestamp = timestamp.removeprefix("t=")
    expected = hmac.new(rule["secret"].encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(given, expected)
    assert headers["X-Survey-Event"] == "response.created"
    data = json.loads(body)
    assert data["response"]["score"] == 3 and data["response"]["comment"] == "Slow exports"
    assert data["response"]["person"]["email"] == "a@b.co" and data["rule"]["id"] == rule["id"]
    deliveries = client.get(f"/api/v1/alert_rules/{rule['id']}/deliveries", headers=auth).get_json()["data"]
    assert [(d["status"], d["attempts"], d["last_status_code"]) for d in deliveries] == [
        ("delivered", 1, 200)
    ]


def test_alert_webhook_failure_is_retried_with_backoff_then_delivered(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    rule = create_rule(client, auth, target_url=receiver.url, categories=["detractor", "passive"]).get_json()
    receiver.status = 500
    client.post("/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": 7}, headers=auth)
    run_jobs(private_ok)
    with private_ok.app_context():
        delivery = db.session.scalar(select(WebhookDelivery))
        assert delivery is not None
        assert (delivery.status, delivery.attempts, delivery.last_error) == ("retrying", 1, "HTTP 500")
        handle = queues()
        job_id = f"webhook-delivery-{delivery.id}"
        assert job_id in scheduled_jobs(handle.queue("webhooks")).get_job_ids()
        assert Job.fetch(job_id, connection=handle.redis).retries_left == alerts.MAX_ATTEMPTS - 2
        receiver.status = 204
        assert alerts.deliver_webhook(delivery.id) == "delivered"
        assert alerts.deliver_webhook(delivery.id) == "skipped"  # safe to run twice
    assert len(receiver.requests) == 2
    deliveries = client.get(f"/api/v1/alert_rules/{rule['id']}/deliveries", headers=auth).get_json()["data"]
    assert (deliveries[0]["status"], deliveries[0]["attempts"]) == ("delivered", 2)


def test_alert_webhook_gives_up_after_max_attempts(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    create_rule(client, auth, target_url=receiver.url)
    receiver.status = 503
    client.post("/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": 1}, headers=auth)
    with private_ok.app_context():
        delivery_id = db.session.scalar(select(WebhookDelivery.id))
        assert delivery_id is not None
        for _ in range(alerts.MAX_ATTEMPTS - 1):
            with pytest.raises(alerts.DeliveryFailed):
                alerts.deliver_webhook(delivery_id)
        assert alerts.deliver_webhook(delivery_id) == "failed"
        row = db.session.get(WebhookDelivery, delivery_id)
        assert row is not None and (row.status, row.attempts) == ("failed", alerts.MAX_ATTEMPTS)


def test_alert_updated_event_fires_on_followup_change(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    create_rule(client, auth, target_url=receiver.url, events=["response.updated"])
    rid = client.post(
        "/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": 2}, headers=auth
    ).get_json()["id"]
    client.patch(f"/api/v1/responses/{rid}", json={"followup_status": "contacted"}, headers=auth)
    run_jobs(private_ok)
    assert [json.loads(b)["event"] for _, b in receiver.requests] == ["response.updated"]
    assert json.loads(receiver.requests[0][1])["response"]["followup_status"] == "contacted"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "http://user:pass@8.8.8.8/hook",
        "http://no-such-host.invalid/hook",
    ],
)
def test_alert_rule_private_or_bad_targets_are_422(
    client: FlaskClient, auth: dict[str, str], url: str
) -> None:
    res = create_rule(client, auth, target_url=url)
    assert res.status_code == 422 and res.get_json()["code"] == "validation_error"


def test_alert_delivery_to_private_target_is_blocked_when_not_allowed(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    create_rule(client, auth, target_url=receiver.url)
    private_ok.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = False  # e.g. DNS now points inside
    client.post("/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": 1}, headers=auth)
    run_jobs(private_ok)
    assert receiver.requests == []
    with private_ok.app_context():
        row = db.session.scalar(select(WebhookDelivery))
        assert row is not None and row.status == "failed" and "non-public" in (row.last_error or "")


def test_alert_rules_are_per_project(
    app: Flask, private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    rule = create_rule(client, auth, target_url=receiver.url).get_json()
    other = {"Authorization": f"Bearer {make_project(app, 'Other')['secret_key']}"}
    assert client.get("/api/v1/alert_rules", headers=other).get_json()["data"] == []
    assert client.delete(f"/api/v1/alert_rules/{rule['id']}", headers=other).status_code == 404
    assert client.get(f"/api/v1/alert_rules/{rule['id']}/deliveries", headers=other).status_code == 404
    client.post("/api/v1/responses", json={"person": {"email": "z@o.co"}, "score": 0}, headers=other)
    run_jobs(private_ok)
    assert receiver.requests == []
    listed = client.get("/api/v1/alert_rules", headers=auth).get_json()["data"]
    assert [r["id"] for r in listed] == [rule["id"]] and "secret" not in listed[0]
    assert client.delete(f"/api/v1/alert_rules/{rule['id']}", headers=auth).status_code == 204


@pytest.mark.parametrize(
    "body",
    [
        {"target_url": "https://8.8.8.8/x", "max_score": 11},
        {"target_url": "https://8.8.8.8/x", "categories": ["fan"]},
        {"target_url": "https://8.8.8.8/x", "events": ["response.deleted"]},
        {"name": ""},
    ],
)
def test_alert_rule_bad_body_is_422(client: FlaskClient, auth: dict[str, str], body: dict[str, Any]) -> None:
    res = client.post("/api/v1/alert_rules", json={"name": "x", **body}, headers=auth)
    assert res.status_code == 422


def test_alert_slack_format_sends_escaped_slack_message(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    res = create_rule(client, auth, target_url=receiver.url, format="slack", categories=["detractor"])
    assert res.status_code == 201 and res.get_json()["format"] == "slack"
    client.post(
        "/api/v1/responses",
        json={
            "person": {"email": "a@b.co", "name": "Ann <admin>"},
            "score": 4,
            "comment": "Slow & <b>buggy</b>",
        },
        headers=auth,
    )
    run_jobs(private_ok)
    message = json.loads(receiver.requests[0][1])
    assert (
        message["text"]
        == "Ann &lt;admin&gt; answered: *4* (detractor)\n> Slow &amp; &lt;b&gt;buggy&lt;/b&gt;"
    )
    assert message["blocks"][0]["text"]["text"] == message["text"]


def test_alert_delighted_format_keeps_existing_receivers_working(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    res = create_rule(
        client,
        auth,
        target_url=receiver.url,
        format="delighted",
        events=["response.created", "response.updated"],
    )
    assert res.status_code == 201, res.get_json()
    rule = res.get_json()
    posted = client.post(
        "/api/v1/responses",
        json={
            "person": {"email": "d@e.co", "properties": {"plan": "pro"}},
            "score": 10,
            "comment": "Love it",
        },
        headers=auth,
    )
    run_jobs(private_ok)
    headers, body = receiver.requests[0]
    # A Delighted receiver checks sha256=<HMAC of the raw body> with its secret.
    expected = "sha256=" + hmac.new(rule["secret"].encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Delighted-Webhook-Signature"], expected)
    event = json.loads(body)
    assert event["event_type"] == "survey_response.created"
    data = event["event_data"]
    assert data["id"] == str(posted.get_json()["id"]) and data["score"] == 10 and data["comment"] == "Love it"
    assert data["person"]["email"] == "d@e.co" and data["person_properties"] == {"plan": "pro"}
    assert isinstance(data["created_at"], int)


def test_alert_delivery_recorded_while_redis_was_down_is_sent_by_the_relay(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver, redis_url: str
) -> None:
    from datetime import timedelta

    from survey_service.core import clock

    assert create_rule(client, auth, target_url=receiver.url).status_code == 201
    with private_ok.app_context():
        handle = queues()
        handle.app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
        handle._redis = None
    posted = client.post("/api/v1/responses", json={"person": {"email": "r@d.co"}, "score": 2}, headers=auth)
    assert posted.status_code == 201  # the response is recorded; the webhook waits in the database
    with private_ok.app_context():
        handle.app.config["REDIS_URL"] = redis_url
        handle._redis = None
        assert alerts.relay_pending() == 0  # too fresh: its enqueue may still be on the way
        assert alerts.relay_pending(now=clock.now() + timedelta(minutes=2)) == 1
        assert alerts.relay_pending(now=clock.now() + timedelta(minutes=2)) == 0  # its job is alive now
    run_jobs(private_ok)
    assert len(receiver.requests) == 1
    with private_ok.app_context():
        statuses = db.session.scalars(select(WebhookDelivery.status)).all()
    assert statuses == ["delivered"]


def test_alert_email_goes_to_the_customers_owner_over_smtp(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    from tests.support.mail import smtp_server

    res = create_rule(client, auth, target_url="mailto:owner", format="email", max_score=6)
    assert res.status_code == 201, res.get_json()
    bad = create_rule(client, auth, target_url="mailto:not an address", format="email")
    assert bad.status_code == 422
    people = [
        {"email": "ann@customer.co", "name": "Ann", "properties": {"csm": "sam@vendor.io"}},
        {"email": "bob@customer.co", "name": "Bob"},  # nobody owns Bob's account
    ]
    for person in people:
        body = {"person": person, "score": 3, "comment": "Exports <b>time out</b>"}
        assert client.post("/api/v1/responses", json=body, headers=auth).status_code == 201
    with smtp_server() as (sink, url):
        private_ok.config["SMTP_URL"] = url
        run_jobs(private_ok)
    [message] = sink.messages
    assert message["To"] == "sam@vendor.io" and "Ann answered 3 (detractor)" in message["Subject"]
    assert "Exports <b>time out</b>" in message.get_content()  # plain text: nothing to execute
    with private_ok.app_context():
        rows = db.session.execute(select(WebhookDelivery.status, WebhookDelivery.last_error)).all()
    assert sorted(rows) == [("delivered", None), ("failed", "no owner email on the response or the person")]


def test_alert_rule_is_edited_in_place_and_keeps_its_secret(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    rule = create_rule(client, auth, target_url=receiver.url, max_score=6).get_json()
    url = f"/api/v1/alert_rules/{rule['id']}"
    res = client.patch(url, json={"enabled": False}, headers=auth)
    assert res.status_code == 200 and res.get_json()["enabled"] is False and "secret" not in res.get_json()
    client.post("/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": 2}, headers=auth)
    run_jobs(private_ok)
    assert receiver.requests == []  # paused
    res = client.patch(
        url, json={"enabled": True, "max_score": None, "categories": ["promoter"]}, headers=auth
    )
    assert res.status_code == 200
    assert (res.get_json()["max_score"], res.get_json()["categories"]) == (None, ["promoter"])
    assert client.get(url, headers=auth).get_json() == res.get_json()
    client.post("/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": 2}, headers=auth)
    client.post("/api/v1/responses", json={"person": {"email": "c@b.co"}, "score": 10}, headers=auth)
    run_jobs(private_ok)
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert json.loads(body)["response"]["score"] == 10
    timestamp, _, given = headers["X-Survey-Signature"].partition(",v1=")
    signed = f"{timestamp.removeprefix('t=')}.".encode() + body
    assert hmac.compare_digest(given, hmac.new(rule["secret"].encode(), signed, hashlib.sha256).hexdigest())


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"target_url": "http://10.0.0.5/hook"},
        {"format": "email"},  # the webhook URL is no mailto: address
        {"events": ["unsubscribe.created"]},  # needs format delighted
        {"max_score": 11},
        {"name": ""},
        {"secret": "whsec_mine"},
    ],
)
def test_alert_rule_bad_edits_are_422_and_change_nothing(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver, body: dict[str, Any]
) -> None:
    rule = create_rule(client, auth, target_url=receiver.url).get_json()
    private_ok.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = False
    url = f"/api/v1/alert_rules/{rule['id']}"
    res = client.patch(url, json=body, headers=auth)
    assert res.status_code == 422 and res.get_json()["code"] == "validation_error", res.get_json()
    after = client.get(url, headers=auth).get_json()
    assert after == {k: v for k, v in rule.items() if k != "secret"}
    assert (
        client.patch("/api/v1/alert_rules/999999", json={"enabled": False}, headers=auth).status_code == 404
    )


# --- Outbound safety (sec-outbound): SSRF spellings, ports, tarpits, queues, rule caps, email targets ---


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64 of the cloud metadata address
        "http://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
        "http://[64:ff9b:1::7f00:1]/hook",  # the local-use NAT64 prefix
        "http://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::]/hook",  # 6to4 of 169.254.169.254
        "http://[2002:c0a8:101::1]/hook",  # 6to4 of 192.168.1.1
        "http://[::7f00:1]/hook",  # IPv4-compatible ::127.0.0.1
        "http://[::a9fe:a9fe]/hook",  # IPv4-compatible metadata address
        "http://[::808:808]/hook",  # IPv4-compatible is deprecated, even to a public address
        "http://[::ffff:a9fe:a9fe]/hook",  # IPv4-mapped
        "http://[::ffff:0:7f00:1]/hook",  # IPv4-translated (SIIT)
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo
        "http://[fd00::1]/hook",  # unique local
        "http://[fe80::1]/hook",  # link-local
        "http://[ff02::1]/hook",  # multicast
        "http://224.0.0.1/hook",  # IPv4 multicast
        "http://8.8.8.8:25/hook",  # SMTP
        "http://8.8.8.8:6379/hook",  # Redis
        "https://8.8.8.8:8443/hook",
        "https://[2606:4700:4700::1111]:22/hook",
    ],
)
def test_alert_rule_ssrf_spellings_and_other_ports_are_422(
    client: FlaskClient, auth: dict[str, str], url: str
) -> None:
    res = create_rule(client, auth, target_url=url)
    assert res.status_code == 422, res.get_json()
    assert res.get_json()["code"] == "validation_error" and "target_url" in res.get_json()["details"]


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/hook",
        "http://8.8.8.8:80/hook",
        "https://[2606:4700:4700::1111]/hook",
        "http://[64:ff9b::808:808]/hook",  # NAT64 of a public address: what DNS64 networks resolve to
        "https://[2002:808:808::1]/hook",  # 6to4 of a public address
    ],
)
def test_alert_rule_public_targets_on_default_ports_are_accepted(
    client: FlaskClient, auth: dict[str, str], url: str
) -> None:
    assert create_rule(client, auth, target_url=url).status_code == 201


def test_alert_rule_port_allowed_by_config_is_accepted(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    app.config["WEBHOOK_ALLOWED_PORTS"] = frozenset({443, 8443})
    assert create_rule(client, auth, target_url="https://8.8.8.8:8443/hook").status_code == 201
    assert create_rule(client, auth, target_url="http://8.8.8.8/hook").status_code == 422


def test_alert_delivery_to_a_port_no_longer_allowed_is_blocked(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    assert create_rule(client, auth, target_url=receiver.url).status_code == 201
    private_ok.config["WEBHOOK_ALLOWED_PORTS"] = frozenset({80, 443})  # e.g. a rule from before the upgrade
    client.post("/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": 1}, headers=auth)
    run_jobs(private_ok)
    assert receiver.requests == []
    with private_ok.app_context():
        row = db.session.scalar(select(WebhookDelivery))
        assert row is not None and row.status == "failed" and "Port" in (row.last_error or "")


@pytest.mark.parametrize(
    ("value", "ports"),
    [("", frozenset({80, 443})), ("443, 8443", frozenset({443, 8443})), ("any", None), ("*", None)],
)
def test_config_webhook_allowed_ports_reads_a_list_or_any(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, value: str, ports: frozenset[int] | None
) -> None:
    from survey_service.config import load_config

    monkeypatch.setenv("WEBHOOK_ALLOWED_PORTS", value)
    assert load_config({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})["WEBHOOK_ALLOWED_PORTS"] == ports


@pytest.mark.parametrize(
    ("name", "value"),
    [("WEBHOOK_ALLOWED_PORTS", "http"), ("WEBHOOK_ALLOWED_PORTS", "0"), ("WEBHOOK_DEADLINE_SECONDS", "-1")],
)
def test_config_bad_webhook_setting_fails_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, name: str, value: str
) -> None:
    from survey_service.config import ConfigError, load_config

    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_config({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})


class Tarpit:
    """A receiver that takes the request, then drips its answer a byte at a time and never finishes it."""

    PREFIX = {
        "status": b"HTTP/1.1 200 ",  # the status line's reason phrase never ends
        "headers": b"HTTP/1.1 200 OK\r\nX-Slow: ",  # nor does this header
        "body": b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n",  # nor the body
    }

    def __init__(self, phase: str, drip_every: float = 0.2, gives_up_after: float = 40.0) -> None:
        self.prefix, self.drip_every, self.gives_up_after = self.PREFIX[phase], drip_every, gives_up_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.stop = threading.Event()
        self.dripped = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with self.listener:
            conn, _ = self.listener.accept()
        with conn:
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = conn.recv(65536)
                if not chunk:
                    return  # closed before a whole request: nothing to drip to
                received += chunk
            try:
                conn.sendall(self.prefix)
                ends = time.monotonic() + self.gives_up_after
                while not self.stop.wait(self.drip_every) and time.monotonic() < ends:
                    conn.sendall(b"a")
                    self.dripped += 1
            except OSError:
                return  # the client hung up: what a deadline does

    def close(self) -> None:
        self.stop.set()
        with socket.socket() as poke:  # the server may still wait in accept()
            poke.settimeout(2)
            with contextlib.suppress(OSError):
                poke.connect(self.listener.getsockname())
        self.thread.join(10)


@pytest.mark.parametrize("phase", ["status", "headers", "body"])
@pytest.mark.slow
def test_alert_delivery_to_a_tarpit_gives_up_at_its_deadline(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], phase: str
) -> None:
    deadline = 2.0
    # Each read gets 5 s and the receiver sends a byte every 0.2 s: only a deadline on the whole stops it.
    private_ok.config.update(WEBHOOK_DEADLINE_SECONDS=deadline, WEBHOOK_TIMEOUT=5.0)
    tarpit = Tarpit(phase)
    try:
        assert create_rule(client, auth, target_url=tarpit.url).status_code == 201
        client.post("/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": 1}, headers=auth)
        with private_ok.app_context():
            delivery_id = db.session.scalar(select(WebhookDelivery.id))
            assert delivery_id is not None
            started = time.monotonic()
            with pytest.raises(alerts.DeliveryFailed, match="deadline"):
                alerts.deliver_webhook(delivery_id)
            took = time.monotonic() - started
    finally:
        tarpit.close()
    assert tarpit.dripped > 0  # it really was dripping while we waited
    # Generous slack for a loaded machine; the old bound was RQ's 180 s job timeout, per attempt.
    assert took < deadline + 15
    with private_ok.app_context():
        row = db.session.get(WebhookDelivery, delivery_id)
        assert row is not None and (row.status, row.attempts) == ("retrying", 1)
        assert "deadline" in (row.last_error or "")


def test_alert_delivery_is_queued_apart_from_emails_with_a_bounded_job_timeout(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    assert create_rule(client, auth, target_url=receiver.url).status_code == 201
    client.post("/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": 1}, headers=auth)
    with private_ok.app_context():
        handle = queues()
        assert handle.queue("default").job_ids == []  # the queue that sends every tenant's emails
        [job_id] = handle.queue("webhooks").job_ids
        timeout = Job.fetch(job_id, connection=handle.redis).timeout
        assert timeout == alerts.job_timeout() < 180  # RQ's default, which bounded a tarpit before
    assert "webhooks" in private_ok.config["RQ_QUEUES"]  # `survey-service worker` listens to it
    run_jobs(private_ok)
    assert len(receiver.requests) == 1


def test_worker_command_by_default_listens_on_emails_then_webhooks(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    assert create_rule(client, auth, target_url=receiver.url).status_code == 201
    client.post("/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": 1}, headers=auth)
    result = private_ok.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert "worker listening on default, webhooks" in result.output
    assert len(receiver.requests) == 1


def test_alert_rules_beyond_max_alert_rules_are_409(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    app.config["MAX_ALERT_RULES"] = 2
    ids = [create_rule(client, auth, target_url="https://8.8.8.8/hook").get_json()["id"] for _ in range(2)]
    res = create_rule(client, auth, target_url="https://8.8.8.8/hook")
    assert res.status_code == 409, res.get_json()
    assert (res.get_json()["code"], res.get_json()["details"]) == ("limit_reached", {"limit": 2})
    other = {"Authorization": f"Bearer {make_project(app, 'Other')['secret_key']}"}
    assert create_rule(client, other, target_url="https://8.8.8.8/hook").status_code == 201  # per project
    assert client.delete(f"/api/v1/alert_rules/{ids[0]}", headers=auth).status_code == 204
    assert create_rule(client, auth, target_url="https://8.8.8.8/hook").status_code == 201


@pytest.mark.parametrize(
    "target",
    [
        "mailto:a@evil.test,second",
        "mailto:a@evil.test,b@evil.test",
        "mailto:a@evil.test, b@evil.test",
        "mailto:a@evil.test;b@evil.test",
        "mailto:Ann <a@evil.test>",
        "mailto:a@evil.test b@evil.test",
        'mailto:"a,b"@evil.test',
        "mailto:a@evil.test\r\nBcc: b@evil.test",
        "mailto:a@evil.test?cc=b@evil.test",
    ],
)
def test_alert_email_target_that_is_not_exactly_one_address_is_422(
    client: FlaskClient, auth: dict[str, str], target: str
) -> None:
    res = create_rule(client, auth, target_url=target, format="email")
    assert res.status_code == 422 and "target_url" in res.get_json()["details"], res.get_json()


@pytest.mark.parametrize("target", ["mailto:cs@example.com", "mailto:first.last+nps@mail.example.co.uk"])
def test_alert_email_target_with_one_address_is_accepted(
    client: FlaskClient, auth: dict[str, str], target: str
) -> None:
    assert create_rule(client, auth, target_url=target, format="email").status_code == 201


def test_alert_email_rule_stored_with_two_addresses_fails_without_sending(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    from tests.support.mail import smtp_server

    rule = create_rule(client, auth, target_url="mailto:cs@example.com", format="email").get_json()
    with private_ok.app_context():  # a rule stored before targets were checked this strictly
        stored = db.session.get(AlertRule, rule["id"])
        assert stored is not None
        stored.target_url = "mailto:cs@example.com,spy@evil.test"
        db.session.commit()
    client.post("/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": 1}, headers=auth)
    with smtp_server() as (sink, url):
        private_ok.config["SMTP_URL"] = url
        run_jobs(private_ok)
    assert sink.messages == []
    with private_ok.app_context():
        row = db.session.scalar(select(WebhookDelivery))
        assert row is not None and row.status == "failed"


@pytest.mark.parametrize("name", ["Detractors\r\nBcc: spy@evil.test", "Detractors\n", "a\x00b"])
def test_alert_rule_name_with_line_break_or_control_character_is_422(
    client: FlaskClient, auth: dict[str, str], name: str
) -> None:
    res = create_rule(client, auth, target_url="https://8.8.8.8/hook", name=name)
    assert res.status_code == 422 and "name" in res.get_json()["details"], res.get_json()
    rule = create_rule(client, auth, target_url="https://8.8.8.8/hook").get_json()
    patched = client.patch(f"/api/v1/alert_rules/{rule['id']}", json={"name": name}, headers=auth)
    assert patched.status_code == 422


def test_alert_email_with_line_breaks_in_stored_names_is_sent_once(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any]
) -> None:
    from survey_service.services.people import upsert_person
    from tests.support.mail import smtp_server

    rule = create_rule(client, auth, target_url="mailto:cs@example.com", format="email").get_json()
    with private_ok.app_context():
        # Names that reached the database through another door (a widget, an import, an older version).
        stored = db.session.get(AlertRule, rule["id"])
        assert stored is not None
        stored.name = "Detractors\r\nBcc: spy@evil.test"
        upsert_person(project["id"], {"email": "ann@customer.co", "name": "Ann\nBcc: spy@evil.test"})
        db.session.commit()
    posted = client.post(
        "/api/v1/responses", json={"person": {"email": "ann@customer.co"}, "score": 2}, headers=auth
    )
    assert posted.status_code == 201
    with smtp_server() as (sink, url):
        private_ok.config["SMTP_URL"] = url
        run_jobs(private_ok)
    [message] = sink.messages
    subject = " ".join(message["Subject"].split())  # unfolded
    assert subject == "Detractors Bcc: spy@evil.test: Ann Bcc: spy@evil.test answered 2 (detractor)"
    assert message["Bcc"] is None and sink.envelopes[0][1] == ["cs@example.com"]
    with private_ok.app_context():
        assert db.session.scalars(select(WebhookDelivery.status)).all() == ["delivered"]


# --- sec-widget: routing reads only server-set data --------------------------------------------------


def widget_answer(client: FlaskClient, project: dict[str, Any], user: dict[str, Any], score: int) -> None:
    """Identify a widget user (as a browser would, with a valid user_hash), force the survey, answer it."""
    user = {**user, "user_hash": keys.user_hash(project["identity_secret"], user["id"])}
    body = {"key": project["public_key"], "user": user, "force": True}
    shown = client.post("/api/widget/identify", data=json.dumps(body), content_type="text/plain").get_json()
    answer = {"key": project["public_key"], "token": shown["token"], "score": score, "comment": "call me"}
    answered = client.post("/api/widget/answer", data=json.dumps(answer), content_type="text/plain")
    assert answered.status_code == 200


def test_alert_email_owner_from_browser_properties_is_never_mailed(
    private_ok: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    from tests.support.mail import smtp_server

    assert create_rule(client, auth, target_url="mailto:owner", format="email").status_code == 201
    browser = {"id": "u1", "name": "Mallory", "properties": {"owner": "victim@elsewhere.test"}}
    widget_answer(client, project, browser, 2)
    with smtp_server() as (sink, url):
        private_ok.config["SMTP_URL"] = url
        run_jobs(private_ok)
    assert sink.messages == []
    with private_ok.app_context():
        rows = db.session.execute(select(WebhookDelivery.status, WebhookDelivery.last_error)).all()
    assert rows == [("failed", "no owner email on the response or the person")]


def test_alert_email_owner_set_by_server_wins_over_browser_owner(
    private_ok: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    from tests.support.mail import smtp_server

    assert create_rule(client, auth, target_url="mailto:owner", format="email").status_code == 201
    server = {"external_id": "u1", "properties": {"csm": "sam@vendor.io"}}
    assert client.post("/api/v1/people", json=server, headers=auth).status_code in (200, 201)
    browser = {"id": "u1", "properties": {"owner": "victim@elsewhere.test", "csm": "victim@elsewhere.test"}}
    widget_answer(client, project, browser, 3)
    with smtp_server() as (sink, url):
        private_ok.config["SMTP_URL"] = url
        run_jobs(private_ok)
    assert [m["To"] for m in sink.messages] == ["sam@vendor.io"]


def test_alert_email_without_smtp_url_is_kept_and_marked_logged_not_delivered(
    private_ok: Flask, client: FlaskClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    from pathlib import Path

    rule = create_rule(client, auth, target_url="mailto:cs@example.com", format="email").get_json()
    client.post("/api/v1/responses", json={"person": {"email": "a@b.co"}, "score": 1}, headers=auth)
    private_ok.config["SMTP_URL"] = None
    with caplog.at_level("INFO", logger="survey_service.services.alerts"):
        run_jobs(private_ok)
    with private_ok.app_context():
        row = db.session.scalar(select(WebhookDelivery))
        assert row is not None and (row.status, row.delivered_at, row.attempts) == ("logged", None, 1)
        # A logged alert is finished: running its job again neither sends nor keeps another copy.
        assert alerts.deliver_webhook(row.id) == "skipped"
    lines = [r.getMessage() for r in caplog.records if "SMTP_URL is unset" in r.getMessage()]
    assert len(lines) == 1, lines
    kept = Path(lines[0].split(" kept in ")[1].split(";")[0])
    assert kept.name.endswith(f"-alert-{row.id}.eml") and "cs@example.com" in kept.read_text()
    assert kept.parent == Path(private_ok.config["INSTANCE_PATH"]) / "outbox"
    listed = client.get(f"/api/v1/alert_rules/{rule['id']}/deliveries", headers=auth).get_json()
    assert [d["status"] for d in listed["data"]] == ["logged"]
