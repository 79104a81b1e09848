"""Event-source test helpers: provider sample payloads and each provider's signature, made as it documents.

Stripe's is made by the official `stripe` library (WebhookSignature.generate_signature_header); the others
by the recipe of the provider's documentation, written out here independently of survey_service.sources.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import stripe
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.env import ROOT

SAMPLES = ROOT / "tests" / "data" / "sources"
KINDS = ("segment", "stripe", "zendesk", "intercom", "freshdesk", "hubspot", "chargebee")
SAMPLE_OF = {
    "segment": "segment_track.json",
    "stripe": "stripe_invoice_upcoming.json",
    "zendesk": "zendesk_trigger_ticket_solved.json",
    "intercom": "intercom_conversation_admin_closed.json",
    "freshdesk": "freshdesk_ticket_resolved.json",
    "hubspot": "hubspot_contact_lifecycle.json",
    "chargebee": "chargebee_renewal_reminder.json",
}
# What the sample of each kind becomes (event type, person found by).
EXPECTED = {
    "segment": ("onboarding_completed", {"external_id": "97980cfea0067", "email": "peter@example.com"}),
    "stripe": ("renewal_upcoming", {"external_id": "cus_NffrFeUfNV2Hib", "email": "jenny.rosen@example.com"}),
    "zendesk": ("ticket_closed", {"email": "ana.lima@example.com"}),
    "intercom": ("ticket_closed", {"external_id": "70", "email": "joe.bloggs@example.com"}),
    "freshdesk": ("ticket_closed", {"external_id": "user-8841", "email": "rachel.doe@example.com"}),
    "hubspot": ("lifecyclestage_customer", {"external_id": "hubspot:123"}),
    "chargebee": ("renewal_upcoming", {"external_id": "16CRpYTwv1YYb63b", "email": "kim.lee@example.com"}),
}


def sample(name: str) -> Any:
    """A sample payload from tests/data/sources, parsed."""
    return json.loads((SAMPLES / name).read_text())


def signed_headers(
    kind: str, body: bytes, secret: str, now: datetime, url: str = "", method: str = "POST"
) -> dict[str, str]:
    """The headers a provider of this kind sends with body, signed with secret at the instant now."""
    unix = int(now.timestamp())
    if kind == "stripe":
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=unix)
        return {"Stripe-Signature": header}
    if kind == "segment":
        return {"X-Signature": hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}
    if kind == "zendesk":
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
        return {
            "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        }
    if kind == "intercom":
        return {"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}
    if kind == "freshdesk":
        return {"X-Source-Secret": secret}
    if kind == "hubspot":
        stamp = str(unix * 1000)
        source = (method + url).encode() + body + stamp.encode()
        digest = hmac.new(secret.encode(), source, hashlib.sha256).digest()
        return {
            "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
            "X-HubSpot-Request-Timestamp": stamp,
        }
    if kind == "chargebee":
        return {"Authorization": "Basic " + base64.b64encode(f"chargebee:{secret}".encode()).decode()}
    raise ValueError(kind)


def create_source(client: FlaskClient, auth: dict[str, str], kind: str, **body: Any) -> dict[str, Any]:
    """Create a source through the API (with a secret for the kinds whose provider issues it)."""
    body.setdefault("signing_secret", f"whsec_test_{kind}_secret")
    res = client.post("/api/v1/sources", json={"kind": kind, **body}, headers=auth)
    assert res.status_code == 201, res.get_json()
    created: dict[str, Any] = res.get_json()
    return created


def deliver(
    client: FlaskClient, source: dict[str, Any], payload: Any, now: datetime, secret: str | None = None
) -> TestResponse:
    """Post payload to the source's URL as its provider would, signed with secret (default: its own)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    path = path_of(source)
    headers = signed_headers(source["kind"], body, secret or source["signing_secret"], now, source["url"])
    return client.post(path, data=body, headers={**headers, "Content-Type": "application/json"})


def path_of(source: dict[str, Any]) -> str:
    """The path part of a source's URL."""
    return "/" + str(source["url"]).split("/", 3)[3]
