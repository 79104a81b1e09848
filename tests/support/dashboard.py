"""Dashboard helpers shared by test modules: a user with a known password, CSRF, signing in."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from survey_service.services.users import create_user

PASSWORD = "correct horse battery"


def add_user(app: Flask, project_id: int, email: str, role: str = "viewer") -> None:
    with app.app_context():
        create_user(project_id, email, PASSWORD, role)


def csrf_from(client: FlaskClient, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    token = csrf_from(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})
