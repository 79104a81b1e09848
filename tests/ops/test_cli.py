"""The operator's commands: db upgrade, create-project, worker."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from rq import Queue
from rq.job import Job

from survey_service.cli import demo_banner, demo_project
from survey_service.core import keys
from survey_service.extensions import db
from survey_service.models import AlertRule, Project
from survey_service.services.projects import identity_secret, project_for_secret_key
from tests.support.db import make_project


def test_create_project_prints_keys_once_and_stores_only_hashes(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["create-project", "Acme Inc"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    assert set(printed) >= {"id", "name", "secret_key", "public_key", "identity_secret"}
    assert printed["secret_key"].startswith("sk_") and printed["public_key"].startswith("pk_")
    with app.app_context():
        project = db.session.get(Project, printed["id"])
        assert project is not None
        assert printed["secret_key"] not in (project.secret_key_hash, project.identity_secret_encrypted)
        assert printed["identity_secret"] not in project.identity_secret_encrypted
        assert project.secret_key_hash == keys.hash_key(printed["secret_key"])
        assert identity_secret(project) == printed["identity_secret"]
        assert project_for_secret_key(printed["secret_key"]) == project
        assert project_for_secret_key(printed["secret_key"] + "x") is None


def test_identity_secret_survives_secret_key_rotation(app: Flask, project: dict[str, Any]) -> None:
    with app.app_context():
        stored = db.session.get(Project, project["id"])
        assert stored is not None
        app.config["SECRET_KEY_FALLBACKS"] = [app.config["SECRET_KEY"]]
        app.config["SECRET_KEY"] = "a-new-secret"
        assert identity_secret(stored) == project["identity_secret"]
        app.config["SECRET_KEY_FALLBACKS"] = []
        try:
            identity_secret(stored)
        except ValueError:
            pass
        else:
            raise AssertionError("an old ciphertext decrypted without its key")


def test_worker_runs_jobs_in_app_context_on_real_redis(
    app: Flask, runner: FlaskCliRunner, redis_url: str, project: dict[str, Any]
) -> None:
    client = app.test_client()
    auth = {"Authorization": f"Bearer {project['secret_key']}"}
    for score in (9, 3):
        client.post("/api/v1/responses", json={"person": {"email": "w@x.co"}, "score": score}, headers=auth)
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    job = Queue("default", connection=connection).enqueue("tests.support.jobs.count_responses", project["id"])
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert Job.fetch(job.id, connection=connection).return_value() == 2


@pytest.mark.process
def test_console_script_db_upgrade_and_create_project_on_fresh_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    env.pop("SECRET_KEY", None)
    exe = Path(sys.executable).parent / "survey-service"
    upgrade = subprocess.run([exe, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert upgrade.returncode == 0, upgrade.stderr
    created = subprocess.run(
        [exe, "create-project", "Fresh"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout.strip().splitlines()[-1])["name"] == "Fresh"
    # The development secret key was generated once into the instance folder, readable only by us.
    key_file = tmp_path / "secret_key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"


@pytest.mark.process
def test_production_without_secret_key_fails_fast(tmp_path: Path) -> None:
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path), "SURVEY_ENV": "production"}
    env.pop("SECRET_KEY", None)
    exe = Path(sys.executable).parent / "survey-service"
    result = subprocess.run([exe, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


# --- sec-low: dashboard emails unique per project ---


def test_create_user_command_same_email_in_two_projects_succeeds_twice_in_one_refused(
    app: Flask, runner: FlaskCliRunner
) -> None:
    from tests.support.db import make_project

    first, second = make_project(app, "First"), make_project(app, "Second")
    args = ["create-user", "ops@acme.test", "--role", "admin", "--project"]
    for project in (first, second):
        result = runner.invoke(args=[*args, str(project["id"])], input="a long password 1\n")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["project_id"] == project["id"]
    again = runner.invoke(args=[*args, str(first["id"])], input="a long password 1\n")
    assert again.exit_code != 0 and "already exists" in again.output


@pytest.mark.process
def test_production_weak_secret_key_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path), "SURVEY_ENV": "production", "SECRET_KEY": "x"}
    exe = Path(sys.executable).parent / "survey-service"
    result = subprocess.run([exe, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0
    assert "SECRET_KEY is too weak for SURVEY_ENV=production" in result.stderr


def test_db_check_models_and_migrations_agree(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    assert result.exception is None


# ---- sec-crypto: per-purpose keys at rest, rotation -----------------------------------------------


def _legacy_ciphertext(plain: str, app_secret: str) -> str:
    """A secret as the service stored it before per-purpose keys: one SHA-256 of SECRET_KEY for all."""
    digest = hashlib.sha256(b"survey-service identity secret\x00" + app_secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest)).encrypt(plain.encode()).decode()


def test_encrypt_secret_each_purpose_uses_its_own_hkdf_key() -> None:
    token = keys.encrypt_secret("s3cret", "app-key", purpose=keys.IDENTITY_SECRET)
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"identity-secret").derive(
        b"app-key"
    )
    assert Fernet(base64.urlsafe_b64encode(expected)).decrypt(token.encode()) == b"s3cret"
    assert keys.decrypt_secret(token, "app-key", purpose=keys.IDENTITY_SECRET) == "s3cret"
    with pytest.raises(ValueError):
        keys.decrypt_secret(token, "app-key", purpose=keys.WEBHOOK_SECRET)
    with pytest.raises(ValueError):
        _legacy_fernet_decrypt(token, "app-key")


def _legacy_fernet_decrypt(token: str, app_secret: str) -> str:
    digest = hashlib.sha256(b"survey-service identity secret\x00" + app_secret.encode()).digest()
    try:
        return Fernet(base64.urlsafe_b64encode(digest)).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("not a legacy ciphertext") from exc


@pytest.mark.parametrize("purpose", [keys.IDENTITY_SECRET, keys.WEBHOOK_SECRET])
def test_decrypt_secret_legacy_ciphertext_of_current_or_fallback_key_still_decrypts(purpose: str) -> None:
    assert keys.decrypt_secret(_legacy_ciphertext("x", "now"), "now", purpose=purpose) == "x"
    assert keys.decrypt_secret(_legacy_ciphertext("y", "old"), "now", ["old"], purpose=purpose) == "y"
    fallback_token = keys.encrypt_secret("z", "old", purpose=purpose)
    assert keys.decrypt_secret(fallback_token, "now", ["old"], purpose=purpose) == "z"
    with pytest.raises(ValueError):
        keys.decrypt_secret(fallback_token, "now", purpose=purpose)


def test_rotate_secrets_legacy_and_fallback_ciphertexts_decrypt_under_new_key_alone(
    app: Flask, runner: FlaskCliRunner, project: dict[str, Any]
) -> None:
    old = app.config["SECRET_KEY"]
    with app.app_context():
        stored = db.session.get(Project, project["id"])
        assert stored is not None
        stored.identity_secret_encrypted = _legacy_ciphertext(project["identity_secret"], old)
        rule = AlertRule(
            project_id=project["id"],
            name="hook",
            target_url="https://hooks.example.com/x",
            secret_encrypted=keys.encrypt_secret("whsec_abc", old, purpose=keys.WEBHOOK_SECRET),
        )
        db.session.add(rule)
        db.session.commit()
        rule_id = rule.id
    app.config["SECRET_KEY"], app.config["SECRET_KEY_FALLBACKS"] = "the-new-key", [old]
    result = runner.invoke(args=["rotate-secrets"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {
        "secrets": 2,
        "rotated": 2,
        "undecryptable": 0,
    }
    app.config["SECRET_KEY_FALLBACKS"] = []
    with app.app_context():
        stored = db.session.get(Project, project["id"])
        rule_row = db.session.get(AlertRule, rule_id)
        assert stored is not None and rule_row is not None
        assert identity_secret(stored) == project["identity_secret"]
        assert keys.decrypt_secret(rule_row.secret_encrypted, "the-new-key", purpose=keys.WEBHOOK_SECRET) == (
            "whsec_abc"
        )
    again = runner.invoke(args=["rotate-secrets"])
    assert json.loads(again.output.strip().splitlines()[-1]) == {
        "secrets": 2,
        "rotated": 0,
        "undecryptable": 0,
    }


def test_rotate_secrets_undecryptable_secret_is_reported_and_the_rest_rotated(
    app: Flask, runner: FlaskCliRunner
) -> None:
    lost, kept = make_project(app, "Lost"), make_project(app, "Kept")
    with app.app_context():
        stored = db.session.get(Project, lost["id"])
        assert stored is not None
        stored.identity_secret_encrypted = keys.encrypt_secret("x", "forgotten", purpose=keys.IDENTITY_SECRET)
        db.session.commit()
    app.config["SECRET_KEY_FALLBACKS"] = [app.config["SECRET_KEY"]]
    app.config["SECRET_KEY"] = "the-new-key"
    result = runner.invoke(args=["rotate-secrets"])
    assert result.exit_code == 1
    assert '"undecryptable": 1' in result.output and '"rotated": 1' in result.output
    app.config["SECRET_KEY_FALLBACKS"] = []
    with app.app_context():
        kept_row = db.session.get(Project, kept["id"])
        assert kept_row is not None and identity_secret(kept_row) == kept["identity_secret"]


# ---- sec-crypto: the demo project's keys are printed once, never stored in instance/ ----------------


def test_demo_project_first_start_prints_secrets_once_and_file_keeps_only_public_fields(app: Flask) -> None:
    path = Path(app.instance_path) / "demo_project.json"
    path.unlink(missing_ok=True)
    try:
        with app.app_context():
            demo, shown = demo_project(app)
            stored = db.session.get(Project, demo["id"])
            assert stored is not None and stored.public_key == demo["public_key"]
            assert (
                shown["secret_key"].startswith("sk_")
                and project_for_secret_key(shown["secret_key"]) == stored
            )
            assert identity_secret(stored) == shown["identity_secret"]
            first = "\n".join(demo_banner("http://x.test", demo, shown))
            on_disk = json.loads(path.read_text())
            mode = path.stat().st_mode & 0o777
            again, shown_again = demo_project(app)
            later = "\n".join(demo_banner("http://x.test", again, shown_again))
    finally:
        path.unlink(missing_ok=True)
    assert on_disk == {"id": demo["id"], "project_id": demo["id"], "public_key": demo["public_key"]}
    assert mode == 0o600
    assert shown["secret_key"] in first and shown["identity_secret"] in first and demo["public_key"] in first
    assert again == demo and shown_again == {}
    assert "sk_" not in later and shown["identity_secret"] not in later and demo["public_key"] in later
    assert f"survey-service rotate-key --project {demo['id']}" in later


def test_demo_project_old_file_with_secrets_is_rewritten_without_them(
    app: Flask, project: dict[str, Any]
) -> None:
    path = Path(app.instance_path) / "demo_project.json"
    path.write_text(json.dumps(project))  # as older versions wrote it
    path.chmod(0o644)
    try:
        with app.app_context():
            demo, shown = demo_project(app)
        on_disk, mode = json.loads(path.read_text()), path.stat().st_mode & 0o777
    finally:
        path.unlink(missing_ok=True)
    assert shown == {"secret_key": project["secret_key"], "identity_secret": project["identity_secret"]}
    assert on_disk == {"id": project["id"], "project_id": project["id"], "public_key": project["public_key"]}
    assert demo == on_disk and mode == 0o600


def test_demo_page_signs_user_ids_with_the_identity_secret_from_the_database(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    path = Path(app.instance_path) / "demo_project.json"
    public = {"id": project["id"], "project_id": project["id"], "public_key": project["public_key"]}
    path.write_text(json.dumps(public))
    try:
        res = client.get("/demo?user=alice")
        path.write_text(json.dumps({**public, "public_key": "pk_of_no_project"}))
        stale = client.get("/demo?user=alice")
    finally:
        path.unlink(missing_ok=True)
    assert res.status_code == 200
    page = res.get_data(as_text=True)
    # The page signs a fresh id of its own (?user= is ignored), with the secret kept in the database.
    found = re.search(r'data-user="(demo-[0-9a-f]+)" data-hash="([0-9a-f]{64})"', page)
    assert found is not None and found[1] != "alice"
    assert found[2] == keys.user_hash(project["identity_secret"], found[1])
    assert stale.status_code == 404 and stale.get_json()["code"] == "not_found"


def test_rotate_key_prints_a_new_secret_key_and_the_old_one_stops_working(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient, project: dict[str, Any]
) -> None:
    result = runner.invoke(args=["rotate-key", "--project", str(project["id"]), "--overlap-hours", "0"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    assert printed["id"] == project["id"] and printed["secret_key"].startswith("sk_")
    old = client.get("/api/v1/responses", headers={"Authorization": f"Bearer {project['secret_key']}"})
    new = client.get("/api/v1/responses", headers={"Authorization": f"Bearer {printed['secret_key']}"})
    assert old.status_code == 401 and new.status_code == 200
    missing = runner.invoke(args=["rotate-key", "--project", str(project["id"] + 1000)])
    assert missing.exit_code != 0 and "No project" in missing.output


def test_port_setting_moves_start_and_an_unset_base_url_with_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from survey_service.cli import serving_address
    from survey_service.config import ConfigError, load_config

    def configured(**env: str) -> Flask:
        for name in ("PORT", "BASE_URL"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        app = Flask(__name__)
        app.config.update(load_config({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"}))
        return app

    assert serving_address(configured(), None) == ("127.0.0.1", 5000, "http://127.0.0.1:5000")
    assert serving_address(configured(PORT="5123"), None) == ("127.0.0.1", 5123, "http://127.0.0.1:5123")
    assert serving_address(configured(PORT="5123"), 6000) == ("127.0.0.1", 6000, "http://127.0.0.1:6000")
    # A BASE_URL that is set is the public origin (maybe a proxy): kept, only where start listens moves.
    explicit = configured(BASE_URL="http://localhost:8080/", PORT="5123")
    assert explicit.config["BASE_URL"] == "http://localhost:8080"
    assert serving_address(explicit, None) == ("localhost", 5123, "http://localhost:8080")
    assert serving_address(configured(BASE_URL="http://localhost:8080"), None)[1] == 8080
    for bad in ("0", "65536", "abc", "-1", "50 00"):
        with pytest.raises(ConfigError, match="PORT takes a TCP port"):
            configured(PORT=bad)
