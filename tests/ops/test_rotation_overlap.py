"""Rotating a project's secret key or identity secret with an overlap: the old one works until it ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from survey_service.core import keys
from tests.support.dashboard import add_user, csrf_from, sign_in

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _api(client: FlaskClient, key: str) -> int:
    return client.get("/api/v1/responses", headers={"Authorization": f"Bearer {key}"}).status_code


def _identify(client: FlaskClient, project: dict[str, Any], secret: str, user_id: str) -> Any:
    body = {
        "key": project["public_key"],
        "user": {"id": user_id, "user_hash": keys.user_hash(secret, user_id)},
    }
    return client.post("/api/widget/identify", data=json.dumps(body), content_type="text/plain")


def _rotate(runner: FlaskCliRunner, command: str, project: dict[str, Any], *extra: str) -> dict[str, Any]:
    result = runner.invoke(args=[command, "--project", str(project["id"]), *extra])
    assert result.exit_code == 0, result.output
    printed: dict[str, Any] = json.loads(result.output.strip().splitlines()[-1])
    return printed


def test_rotate_key_old_key_works_during_the_overlap_and_is_refused_after(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["FROZEN_NOW"] = NOW
    printed = _rotate(runner, "rotate-key", project, "--overlap-hours", "2")
    new = printed["secret_key"]
    assert printed["old_valid_until"] == (NOW + timedelta(hours=2)).isoformat()
    assert _api(client, new) == 200 and _api(client, project["secret_key"]) == 200
    app.config["FROZEN_NOW"] = NOW + timedelta(hours=2) - timedelta(seconds=1)
    assert _api(client, project["secret_key"]) == 200
    app.config["FROZEN_NOW"] = NOW + timedelta(hours=2)
    assert _api(client, project["secret_key"]) == 401 and _api(client, new) == 200

    # Another rotation: only the key it replaces keeps working, never the one before.
    app.config["FROZEN_NOW"] = NOW
    newer = _rotate(runner, "rotate-key", project)["secret_key"]  # the default overlap: 24 hours
    assert _api(client, newer) == 200 and _api(client, new) == 200
    assert _api(client, project["secret_key"]) == 401
    app.config["FROZEN_NOW"] = NOW + timedelta(hours=24)
    assert _api(client, new) == 401 and _api(client, newer) == 200


def test_rotate_key_without_overlap_kills_the_old_key_and_a_pending_one(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["FROZEN_NOW"] = NOW
    first = _rotate(runner, "rotate-key", project, "--overlap-hours", "5")["secret_key"]
    printed = _rotate(runner, "rotate-key", project, "--overlap-hours", "0")
    assert printed["old_valid_until"] is None
    assert _api(client, printed["secret_key"]) == 200
    assert _api(client, first) == 401 and _api(client, project["secret_key"]) == 401
    bad = runner.invoke(args=["rotate-key", "--project", str(project["id"]), "--overlap-hours", "-1"])
    assert bad.exit_code != 0


def test_rotate_identity_secret_old_user_hash_verifies_during_the_overlap_only(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["FROZEN_NOW"] = NOW
    old = project["identity_secret"]
    assert _identify(client, project, old, "u-1").status_code == 200
    printed = _rotate(runner, "rotate-identity-secret", project, "--overlap-hours", "3")
    new = printed["identity_secret"]
    assert new != old and printed["old_valid_until"] == (NOW + timedelta(hours=3)).isoformat()
    # A known person (the page-view path) and a new one (the full path), with either secret.
    for user_id in ("u-1", "u-2"):
        assert _identify(client, project, new, user_id).status_code == 200
        assert _identify(client, project, old, user_id).status_code == 200
    app.config["FROZEN_NOW"] = NOW + timedelta(hours=3)
    for user_id in ("u-1", "u-3"):
        refused = _identify(client, project, old, user_id)
        assert refused.status_code == 403 and refused.get_json()["code"] == "identity_refused"
        assert _identify(client, project, new, user_id).status_code == 200
    missing = runner.invoke(args=["rotate-identity-secret", "--project", str(project["id"] + 1000)])
    assert missing.exit_code != 0 and "No project" in missing.output


def test_rotate_identity_secret_without_overlap_refuses_the_old_one_at_once(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient, project: dict[str, Any]
) -> None:
    new = _rotate(runner, "rotate-identity-secret", project, "--overlap-hours", "0")["identity_secret"]
    assert _identify(client, project, project["identity_secret"], "u-1").status_code == 403
    assert _identify(client, project, new, "u-1").status_code == 200


def test_rotate_secrets_re_encrypts_the_previous_identity_secret_too(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["FROZEN_NOW"] = NOW
    _rotate(runner, "rotate-identity-secret", project, "--overlap-hours", "3")
    old_key = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"], app.config["SECRET_KEY_FALLBACKS"] = "a brand new server key " * 2, [old_key]
    result = runner.invoke(args=["rotate-secrets"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["rotated"] == 2
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert _identify(client, project, project["identity_secret"], "u-9").status_code == 200


def test_dashboard_admin_rotates_both_shown_once_viewer_403(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    app.config["FROZEN_NOW"] = NOW
    add_user(app, project["id"], "admin@acme.test", "admin")
    add_user(app, project["id"], "viewer@acme.test")
    viewer = app.test_client()
    sign_in(viewer, "viewer@acme.test")
    token = csrf_from(viewer, "/dashboard")
    for path in ("/dashboard/keys/secret-key", "/dashboard/keys/identity-secret"):
        assert viewer.post(path, data={"csrf_token": token}).status_code == 403
    assert _api(client, project["secret_key"]) == 200

    admin = app.test_client()
    sign_in(admin, "admin@acme.test")
    token = csrf_from(admin, "/dashboard/users")
    assert admin.post("/dashboard/keys/secret-key", data={"overlap_hours": "1"}).status_code == 400
    page = admin.post("/dashboard/keys/secret-key", data={"overlap_hours": "1", "csrf_token": token})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "2026-06-01 13:00 UTC" in html
    new_key = html.split('<code class="secret">', 1)[1].split("<", 1)[0]
    assert new_key.startswith("sk_") and _api(client, new_key) == 200
    assert _api(client, project["secret_key"]) == 200
    assert new_key not in admin.get("/dashboard/users").get_data(as_text=True)  # shown once
    app.config["FROZEN_NOW"] = NOW + timedelta(hours=1)
    assert _api(client, project["secret_key"]) == 401

    page = admin.post("/dashboard/keys/identity-secret", data={"overlap_hours": "0", "csrf_token": token})
    html = page.get_data(as_text=True)
    secret = html.split('<code class="secret">', 1)[1].split("<", 1)[0]
    assert page.status_code == 200 and "stopped working now" in html
    assert _identify(client, project, secret, "u-1").status_code == 200
    assert _identify(client, project, project["identity_secret"], "u-2").status_code == 403
