"""The operator's commands: db upgrade, create-project, worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskCliRunner
from rq import Queue
from rq.job import Job

from survey_service import keys
from survey_service.extensions import db
from survey_service.models import Project
from survey_service.services.projects import identity_secret, project_for_secret_key

ROOT = Path(__file__).resolve().parent.parent


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
    job = Queue("default", connection=connection).enqueue(
        "tests.jobs_for_tests.count_responses", project["id"]
    )
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert Job.fetch(job.id, connection=connection).return_value() == 2


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
    from tests.conftest import make_project

    first, second = make_project(app, "First"), make_project(app, "Second")
    args = ["create-user", "ops@acme.test", "--role", "admin", "--project"]
    for project in (first, second):
        result = runner.invoke(args=[*args, str(project["id"])], input="a long password 1\n")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["project_id"] == project["id"]
    again = runner.invoke(args=[*args, str(first["id"])], input="a long password 1\n")
    assert again.exit_code != 0 and "already exists" in again.output


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
