"""How pages travel: a favicon where browsers look, HEAD answered like GET, gzip for pages and CSS, and
no compression of a signed-in page for a request another site started (BREACH)."""

from __future__ import annotations

import gzip
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from survey_service.extensions import db
from survey_service.models import DashboardUser
from survey_service.services import email_requests
from survey_service.services.people import upsert_person
from tests.support.dashboard import add_user, sign_in
from tests.support.dashboard_data import seed_responses

GZIP = {"Accept-Encoding": "gzip, deflate, br"}
SAME_ORIGIN = {**GZIP, "Sec-Fetch-Site": "same-origin"}


def survey_paths(app: Flask, project_id: int) -> tuple[str, str]:
    """The landing page (no score chosen) and unsubscribe page of a new email request, as paths."""
    with app.app_context():
        person, _ = upsert_person(project_id, {"email": "ann@example.com"})
        db.session.commit()
        links = email_requests.survey_links(email_requests.create_email_request(project_id, person.id))
    base = app.config["BASE_URL"]
    return links["score_urls"]["3"].removeprefix(base).split("?")[0], links["unsubscribe_url"].removeprefix(
        base
    )


def test_favicon_ico_is_the_svg_icon_not_a_404(client: FlaskClient) -> None:
    res = client.get("/favicon.ico")
    assert res.status_code == 200 and res.mimetype == "image/svg+xml"
    assert res.get_data(as_text=True).startswith("<svg") and "max-age" in res.headers["Cache-Control"]
    res.close()


def test_every_page_links_its_icon(app: Flask, client: FlaskClient, project: dict[str, Any]) -> None:
    landing, unsubscribe = survey_paths(app, project["id"])
    for path in ("/", "/login", "/docs/api", landing, unsubscribe):
        html = client.get(path).get_data(as_text=True)
        assert re.search(r'<link rel="icon" type="image/svg\+xml" href="/static/favicon.svg">', html), path


def test_head_answers_like_get_on_every_page(
    app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    landing, unsubscribe = survey_paths(app, project["id"])
    anonymous = ["/", "/login", "/docs/api", "/forgot-password", "/favicon.ico", landing, unsubscribe]
    add_user(app, project["id"], "admin@acme.test", "admin")
    member = app.test_client()
    assert sign_in(member, "admin@acme.test").status_code == 302
    with app.app_context():
        seed_responses(project["id"], 20, seed=4)
        users = db.session.scalar(select(func.count()).select_from(DashboardUser))
    signed_in = ["/dashboard", "/dashboard/users", "/dashboard/account", "/dashboard?range=30d"]
    for who, paths in ((client, anonymous), (member, signed_in)):
        for path in paths:
            got, head = who.get(path), who.head(path)
            assert (head.status_code, head.mimetype) == (got.status_code, got.mimetype), path
            assert got.status_code == 200 and head.get_data() == b"", path
            got.close()
            head.close()
    with app.app_context():  # HEAD on the team page is a read, never the form's add-a-member
        assert db.session.scalar(select(func.count()).select_from(DashboardUser)) == users


@pytest.mark.parametrize("path", ["/", "/docs/api", "/static/dashboard.css", "/static/site.css"])
def test_public_pages_and_stylesheets_are_gzipped_when_accepted(client: FlaskClient, path: str) -> None:
    plain = client.get(path)
    zipped = client.get(path, headers=GZIP)
    assert "Content-Encoding" not in plain.headers and zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.get_data()) == plain.get_data()
    assert int(zipped.headers["Content-Length"]) == len(zipped.get_data()) < len(plain.get_data()) / 2
    assert "Accept-Encoding" in zipped.headers["Vary"]
    plain.close()
    zipped.close()


def test_landing_page_is_gzipped(app: Flask, client: FlaskClient, project: dict[str, Any]) -> None:
    landing, _ = survey_paths(app, project["id"])
    res = client.get(landing, headers={**GZIP, "Sec-Fetch-Site": "cross-site"})  # from a webmail: public
    assert res.headers["Content-Encoding"] == "gzip"
    assert b"data-score" in gzip.decompress(res.get_data())


def test_stylesheet_revalidates_with_one_weak_etag_for_both_encodings(client: FlaskClient) -> None:
    zipped = client.get("/static/dashboard.css", headers=GZIP)
    etag = zipped.headers["ETag"]
    assert etag.startswith('W/"')
    again = client.get("/static/dashboard.css", headers={**GZIP, "If-None-Match": etag})
    assert again.status_code == 304
    for res in (zipped, again):
        res.close()


@pytest.mark.parametrize(
    ("site", "compressed"),
    [("same-origin", True), ("none", True), ("cross-site", False), ("same-site", False), (None, False)],
)
def test_signed_in_pages_gzipped_only_for_requests_started_on_this_origin(
    app: Flask, project: dict[str, Any], site: str | None, compressed: bool
) -> None:
    """BREACH: a page with a CSRF token and reflected input is never compressed for another site's request."""
    add_user(app, project["id"], "viewer@acme.test")
    member = app.test_client()
    assert sign_in(member, "viewer@acme.test").status_code == 302
    headers = {**GZIP, **({"Sec-Fetch-Site": site} if site else {})}
    for who, path in ((member, "/dashboard?q=csrf_token"), (app.test_client(), "/login")):
        res = who.get(path, headers=headers)
        assert res.status_code == 200
        assert ("Content-Encoding" in res.headers) is compressed, (path, site)
        assert "Sec-Fetch-Site" in res.headers["Vary"]
        body = gzip.decompress(res.get_data()) if compressed else res.get_data()
        assert b'name="csrf_token"' in body


def test_streamed_export_and_widget_script_are_not_compressed_twice(
    app: Flask, project: dict[str, Any], client: FlaskClient
) -> None:
    add_user(app, project["id"], "viewer@acme.test")
    member = app.test_client()
    assert sign_in(member, "viewer@acme.test").status_code == 302
    export = member.get("/dashboard/exports/responses.csv", headers=SAME_ORIGIN)
    assert export.status_code == 200 and "Content-Encoding" not in export.headers
    assert "email" in export.get_data(as_text=True).splitlines()[0]
    script = client.get("/widget.js", headers=GZIP)
    assert script.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(script.get_data()).startswith(b"(function")
