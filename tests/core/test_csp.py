"""One Content-Security-Policy builder: each kind of page keeps the meaning of the policy it had."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from survey_service.core.security import content_security_policy
from tests.support.dashboard import add_user, sign_in

# The three policies the pages sent before there was one builder (nonce spelled N).
BEFORE_PAGE = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
NONCE_PART = "script-src 'self' 'nonce-N'; style-src 'self' 'nonce-N'; connect-src 'self'"
BEFORE_NONCE_PAGE = f"{BEFORE_PAGE}; {NONCE_PART}"
BEFORE_DASHBOARD = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
BEFORE_DEMO = (
    "default-src 'self'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'"
)
FETCH = ("script-src", "style-src", "connect-src", "img-src", "object-src", "font-src", "frame-src")
OTHER = ("base-uri", "form-action", "frame-ancestors")
# Stricter than before: the dashboard's and the demo's policies now also forbid plugins, the demo's <base>
# and forms posting elsewhere (none of these pages uses them).
DASHBOARD_TIGHTER = {"object-src": "'none'"}
DEMO_TIGHTER = {"object-src": "'none'", "base-uri": "'none'", "form-action": "'self'"}


def meaning(policy: str) -> dict[str, str]:
    """What the browser enforces per directive: fetch directives fall back to default-src, the others
    to no restriction ("*"); nonces are all spelled N."""
    given = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        given[name] = re.sub(r"'nonce-[^']+'", "'nonce-N'", value.strip())
    default = given.get("default-src", "*")
    return {
        **{name: given.get(name, default) for name in FETCH},
        **{name: given.get(name, "*") for name in OTHER},
    }


def test_builder_variations_mean_what_the_old_policies_meant() -> None:
    assert meaning(content_security_policy()) == meaning(BEFORE_PAGE)
    assert meaning(content_security_policy(nonce="abc")) == meaning(BEFORE_NONCE_PAGE)
    dashboard = content_security_policy(scripts=False)
    assert meaning(dashboard) == {**meaning(BEFORE_DASHBOARD), **DASHBOARD_TIGHTER}
    assert meaning(content_security_policy()) == {**meaning(BEFORE_DEMO), **DEMO_TIGHTER}


@pytest.fixture
def pages(app: Flask, client: FlaskClient, project: dict[str, Any]) -> dict[str, Any]:
    """One response of each kind of page: a survey page with inline code, a plain page, the dashboard and
    the widget demo."""
    demo = Path(app.instance_path) / "demo_project.json"
    demo.write_text(json.dumps(project))
    try:
        answers = {"survey": client.get("/s/not-a-valid-token"), "demo": client.get("/demo")}
    finally:
        demo.unlink()
    answers["login"] = client.get("/login")
    add_user(app, project["id"], "viewer@acme.test")
    assert sign_in(client, "viewer@acme.test").status_code == 302
    answers["dashboard"] = client.get("/dashboard")
    for name, res in answers.items():
        assert res.mimetype == "text/html" and res.status_code in (200, 404), (name, res.status_code)
    return answers


def test_each_kind_of_page_sends_its_policy(pages: dict[str, Any]) -> None:
    csp = {name: res.headers["Content-Security-Policy"] for name, res in pages.items()}
    nonce = re.search(r"'nonce-([^']+)'", csp["survey"])
    assert nonce and f'nonce="{nonce.group(1)}"' in pages["survey"].get_data(as_text=True)
    assert csp["survey"] == content_security_policy(nonce=nonce.group(1))
    assert meaning(csp["survey"]) == meaning(BEFORE_NONCE_PAGE)
    assert meaning(csp["demo"]) == {**meaning(BEFORE_DEMO), **DEMO_TIGHTER}
    for name in ("login", "dashboard"):
        assert csp[name] == content_security_policy(scripts=False), name
        assert meaning(csp[name]) == {**meaning(BEFORE_DASHBOARD), **DASHBOARD_TIGHTER}
