"""The event-source settings API (/api/v1/sources): secrets shown once, rotation, mapping, tenants."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from survey_service.core import keys
from survey_service.extensions import db
from survey_service.models import EventSource
from tests.support.db import make_project
from tests.support.sources import KINDS, create_source, path_of

ISSUED_BY_PROVIDER = ("stripe", "zendesk", "intercom", "hubspot")


@pytest.mark.parametrize("kind", KINDS)
def test_create_source_any_kind_is_201_with_url_and_secret_shown_once(
    app: Flask, client: FlaskClient, auth: dict[str, str], kind: str
) -> None:
    created = create_source(client, auth, kind, name=f"{kind} prod")
    assert {"id", "kind", "url", "signing_secret"} <= set(created)
    assert created["kind"] == kind and created["name"] == f"{kind} prod"
    assert created["url"].startswith(app.config["BASE_URL"].rstrip("/") + "/sources/")
    assert len(created["url"].rsplit("/", 1)[1]) >= 40  # unguessable: 256 random bits
    shown = client.get(f"/api/v1/sources/{created['id']}", headers=auth).get_json()
    listed = client.get("/api/v1/sources", headers=auth).get_json()["data"]
    assert "signing_secret" not in shown and all("signing_secret" not in s for s in listed)
    assert shown["url"] == created["url"] and [s["id"] for s in listed] == [created["id"]]


@pytest.mark.parametrize("kind", ISSUED_BY_PROVIDER)
def test_create_source_provider_issued_kind_without_secret_refuses_deliveries_until_given(
    app: Flask, client: FlaskClient, auth: dict[str, str], kind: str
) -> None:
    """Stripe and Zendesk show the secret only once the URL is saved there: create first, give it after."""
    res = client.post("/api/v1/sources", json={"kind": kind}, headers=auth)
    created = res.get_json()
    assert res.status_code == 201 and created["signing_secret"] is None
    refused = client.post(path_of(created), data=b"{}", content_type="application/json")
    assert refused.status_code == 401 and "no signing secret yet" in refused.get_json()["details"]["reason"]
    rotate = f"/api/v1/sources/{created['id']}/rotate_secret"
    assert client.post(rotate, json={}, headers=auth).status_code == 422  # we cannot make it up
    given = client.post(rotate, json={"signing_secret": "whsec_from_provider"}, headers=auth).get_json()
    assert given["signing_secret"] == "whsec_from_provider" and given["previous_secret_expires_at"] is None


@pytest.mark.parametrize("kind", ("segment", "freshdesk", "chargebee"))
def test_create_source_own_secret_kind_without_secret_generates_one(
    client: FlaskClient, auth: dict[str, str], kind: str
) -> None:
    res = client.post("/api/v1/sources", json={"kind": kind}, headers=auth)
    assert res.status_code == 201 and len(res.get_json()["signing_secret"]) >= 40


def test_create_source_secret_stored_encrypted_never_plain(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    created = create_source(client, auth, "stripe", signing_secret="whsec_plain_text_marker")
    with app.app_context():
        row = db.session.scalar(select(EventSource).where(EventSource.id == created["id"]))
        assert row is not None and "whsec_plain_text_marker" not in row.secret_encrypted


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "paypal"},
        {"kind": "segment", "mapping": {"events": {"Signed Up": "Not A Type"}}},
        {"kind": "segment", "mapping": {"identify_by": "phone"}},
        {"kind": "segment", "mapping": {"unknown": 1}},
        {"kind": "segment", "signing_secret": "short"},
        {"kind": "segment", "extra": True},
    ],
)
def test_create_source_invalid_body_is_422_in_the_one_shape(
    client: FlaskClient, auth: dict[str, str], body: dict[str, Any]
) -> None:
    res = client.post("/api/v1/sources", json=body, headers=auth)
    assert res.status_code == 422 and {"status", "code", "message", "details"} <= set(res.get_json())


def test_patch_source_mapping_and_name_are_kept(client: FlaskClient, auth: dict[str, str]) -> None:
    created = create_source(client, auth, "segment")
    mapping = {"events": {"Onboarding Completed": "go_live", "Page Viewed": None}, "identify_by": "email"}
    res = client.patch(
        f"/api/v1/sources/{created['id']}", json={"mapping": mapping, "name": "web"}, headers=auth
    )
    assert res.status_code == 200
    shown = client.get(f"/api/v1/sources/{created['id']}", headers=auth).get_json()
    assert shown["mapping"] == mapping and shown["name"] == "web"


def test_rotate_secret_returns_new_secret_and_grace_end(client: FlaskClient, auth: dict[str, str]) -> None:
    created = create_source(client, auth, "segment")
    res = client.post(f"/api/v1/sources/{created['id']}/rotate_secret", json={"grace_hours": 2}, headers=auth)
    rotated = res.get_json()
    assert res.status_code == 200 and rotated["signing_secret"] != created["signing_secret"]
    assert rotated["previous_secret_expires_at"] is not None and rotated["url"] == created["url"]


def test_delete_source_its_url_answers_404(client: FlaskClient, auth: dict[str, str]) -> None:
    created = create_source(client, auth, "segment")
    assert client.delete(f"/api/v1/sources/{created['id']}", headers=auth).status_code == 204
    res = client.post(path_of(created), json={"type": "track"})
    assert res.status_code == 404 and res.get_json()["code"] == "not_found"
    assert client.get(f"/api/v1/sources/{created['id']}", headers=auth).status_code == 404


def test_sources_of_another_project_are_404_and_unlisted(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    other = make_project(app, "Other")
    other_auth = {"Authorization": f"Bearer {other['secret_key']}"}
    theirs = create_source(client, other_auth, "stripe")
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/api/v1/sources/{theirs['id']}", {}),
        ("PATCH", f"/api/v1/sources/{theirs['id']}", {"json": {"enabled": False}}),
        ("DELETE", f"/api/v1/sources/{theirs['id']}", {}),
        ("POST", f"/api/v1/sources/{theirs['id']}/rotate_secret", {"json": {"signing_secret": "x" * 20}}),
    ]
    for method, path, kwargs in calls:
        assert client.open(path, method=method, headers=auth, **kwargs).status_code == 404, (method, path)
    assert client.get("/api/v1/sources", headers=auth).get_json()["data"] == []
    assert client.get(f"/api/v1/sources/{theirs['id']}", headers=other_auth).get_json()["enabled"] is True


def test_rotate_secrets_command_reencrypts_source_secrets_and_deliveries_still_verify(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    created = create_source(client, auth, "segment")
    client.post(f"/api/v1/sources/{created['id']}/rotate_secret", json={"grace_hours": 1}, headers=auth)
    old = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"], app.config["SECRET_KEY_FALLBACKS"] = "the-new-key-for-sources", [old]
    try:
        result = app.test_cli_runner().invoke(args=["rotate-secrets"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output.strip().splitlines()[-1])["rotated"] >= 2  # current and previous
        app.config["SECRET_KEY_FALLBACKS"] = []
        with app.app_context():
            row = db.session.get(EventSource, created["id"])
            assert row is not None and row.previous_secret_encrypted is not None
            plain = keys.decrypt_secret(
                row.previous_secret_encrypted, "the-new-key-for-sources", purpose=keys.SOURCE_SECRET
            )
            assert plain == created["signing_secret"]
    finally:
        app.config["SECRET_KEY"], app.config["SECRET_KEY_FALLBACKS"] = old, []
