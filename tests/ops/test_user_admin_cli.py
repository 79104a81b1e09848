"""The operator's user commands: set-password, remove-user, set-role (a project keeps an admin)."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner

from survey_service.extensions import db
from survey_service.models import DashboardUser
from tests.support.dashboard import PASSWORD, add_user, sign_in

NEW = "a brand new password"


def _role(app: Flask, project_id: int, email: str) -> str | None:
    with app.app_context():
        user = db.session.scalar(
            db.select(DashboardUser).where(
                DashboardUser.project_id == project_id, DashboardUser.email == email
            )
        )
        return None if user is None else user.role


def test_set_password_new_one_signs_in_old_one_and_old_sessions_refused(
    app: Flask, runner: FlaskCliRunner, project: dict[str, Any]
) -> None:
    add_user(app, project["id"], "ann@acme.test", "admin")
    signed_in = app.test_client()
    sign_in(signed_in, "ann@acme.test")
    assert signed_in.get("/dashboard").status_code == 200
    result = runner.invoke(
        args=["set-password", "Ann@Acme.test", "--project", str(project["id"])], input=NEW + "\n"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["email"] == "ann@acme.test"
    assert signed_in.get("/dashboard").status_code == 302  # the old session ended
    assert sign_in(app.test_client(), "ann@acme.test", PASSWORD).status_code == 401
    assert sign_in(app.test_client(), "ann@acme.test", NEW).status_code == 302


def test_set_password_weak_or_unknown_user_is_a_clear_error(
    app: Flask, runner: FlaskCliRunner, project: dict[str, Any]
) -> None:
    add_user(app, project["id"], "ann@acme.test", "admin")
    weak = runner.invoke(
        args=["set-password", "ann@acme.test", "--project", str(project["id"])], input="short\n"
    )
    assert weak.exit_code != 0 and "at least 10 characters" in weak.output
    missing = runner.invoke(
        args=["set-password", "bob@acme.test", "--project", str(project["id"])], input=NEW + "\n"
    )
    assert missing.exit_code != 0 and "No user bob@acme.test" in missing.output


def test_set_role_and_remove_user_never_leave_a_project_without_an_admin(
    app: Flask, runner: FlaskCliRunner, project: dict[str, Any]
) -> None:
    pid = str(project["id"])
    add_user(app, project["id"], "ann@acme.test", "admin")
    add_user(app, project["id"], "bob@acme.test", "viewer")
    demote = runner.invoke(args=["set-role", "ann@acme.test", "--project", pid, "--role", "viewer"])
    assert demote.exit_code != 0 and "last admin" in demote.output
    remove = runner.invoke(args=["remove-user", "ann@acme.test", "--project", pid])
    assert remove.exit_code != 0 and "last admin" in remove.output
    assert _role(app, project["id"], "ann@acme.test") == "admin"

    promote = runner.invoke(args=["set-role", "bob@acme.test", "--project", pid, "--role", "admin"])
    assert promote.exit_code == 0, promote.output
    assert _role(app, project["id"], "bob@acme.test") == "admin"
    demote = runner.invoke(args=["set-role", "ann@acme.test", "--project", pid, "--role", "viewer"])
    assert demote.exit_code == 0, demote.output
    assert _role(app, project["id"], "ann@acme.test") == "viewer"

    signed_in = app.test_client()
    sign_in(signed_in, "ann@acme.test")
    removed = runner.invoke(args=["remove-user", "ann@acme.test", "--project", pid])
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.output)["removed"] is True
    assert _role(app, project["id"], "ann@acme.test") is None
    assert signed_in.get("/dashboard").status_code == 302
    again = runner.invoke(args=["remove-user", "ann@acme.test", "--project", pid])
    assert again.exit_code != 0 and "No user" in again.output
