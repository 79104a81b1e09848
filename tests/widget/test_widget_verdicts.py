"""The widget's verdicts (SQLite and PostgreSQL): what identify signs, for how long, what cannot forge it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer
from itsdangerous.encoding import base64_decode, base64_encode
from sqlalchemy import select, update

from survey_service.config import ConfigError, load_config
from survey_service.core import keys, tokens
from survey_service.extensions import db
from survey_service.models import Person, Project, Survey, SurveyRequest, WidgetDismissal
from survey_service.widget.verdicts import binding
from tests.support.db import make_project
from tests.support.sql import sql_log

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
TTL = 600


def identify(
    client: FlaskClient,
    project: dict[str, Any],
    user_id: str = "u1",
    *,
    verdict: str | None = None,
    force: bool = False,
    **user: Any,
) -> Any:
    signed = {"id": user_id, "user_hash": keys.user_hash(project["identity_secret"], user_id), **user}
    body: dict[str, Any] = {"key": project["public_key"], "user": signed, "force": force}
    if verdict is not None:
        body["verdict"] = verdict
    res = client.post("/api/widget/identify", data=json.dumps(body), content_type="text/plain")
    return res


def person(app: Flask, project: dict[str, Any], external_id: str, created: datetime) -> int:
    with app.app_context():
        row = Person(project_id=project["id"], external_id=external_id, properties={}, created_at=created)
        db.session.add(row)
        db.session.commit()
        return row.id


def in_app_request(app: Flask, project: dict[str, Any], person_id: int, **fields: Any) -> None:
    """An in-app ask as a lifecycle trigger (or a manual request) makes it: pending, due now by default."""
    with app.app_context():
        survey_id = db.session.scalar(select(Survey.id).where(Survey.project_id == project["id"]))
        values = {"channel": "in_app", "status": "pending", **fields}
        db.session.add(
            SurveyRequest(project_id=project["id"], survey_id=survey_id, person_id=person_id, **values)
        )
        db.session.commit()


def person_of(app: Flask, external_id: str) -> int:
    with app.app_context():
        found = db.session.scalar(select(Person.id).where(Person.external_id == external_id))
    assert found is not None
    return found


@pytest.fixture
def frozen(app: Flask) -> Flask:
    """The app with its clock frozen at T0 (the fixture puts the config back afterwards)."""
    app.config["FROZEN_NOW"] = T0
    return app


def not_now(app: Flask, client: FlaskClient, project: dict[str, Any], user_id: str = "u1") -> dict[str, Any]:
    """A new person's first identify (too new for the recurring rule): its answer, with a verdict."""
    person(app, project, user_id, T0)
    body: dict[str, Any] = identify(client, project, user_id).get_json()
    assert body["show"] is False and body["reason"] == "too_new" and body["verdict"]
    return body


def resign(token: str, secret: str, payload: Any = None) -> str:
    """The token's payload (or another one) signed with another key under the verdicts' salt."""
    if payload is None:
        payload = json.loads(base64_decode(token.split(".")[0]))
    return str(URLSafeSerializer(secret, salt=tokens.WIDGET_VERDICT).dumps(payload))


# --- what identify signs, and for how long ---------------------------------------------------------


def test_verdict_not_shown_answer_carries_verdict_for_the_ttl(
    frozen: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    body = not_now(frozen, client, project)
    assert body["verdict_ttl"] == TTL
    signed = {"id": "u1", "user_hash": keys.user_hash(project["identity_secret"], "u1")}
    with frozen.app_context():
        until, reason = tokens.read_widget_verdict(body["verdict"], binding(project["public_key"], signed))
    assert until == T0 + timedelta(seconds=TTL) and reason == "too_new"


def test_verdict_shown_survey_carries_no_verdict(
    frozen: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    in_app_request(frozen, project, person(frozen, project, "u1", T0))
    body = identify(client, project).get_json()
    assert body["show"] is True and "verdict" not in body


@pytest.mark.parametrize(
    ("setup", "expected_ttl"),
    [
        # The recurring rule's first survey is due in 2 minutes (14 days after the person was first seen).
        ("first_survey", 120),
        # A lifecycle trigger's in-app ask falls due in 90 seconds.
        ("scheduled_request", 90),
        # The dismissal cool-down (30 days) ends in 5 minutes.
        ("dismissal", 300),
        # Nothing is due within WIDGET_VERDICT_TTL: the setting bounds the verdict.
        ("nothing_soon", TTL),
    ],
)
def test_verdict_lasts_until_the_next_known_eligibility_instant(
    frozen: Flask, client: FlaskClient, project: dict[str, Any], setup: str, expected_ttl: int
) -> None:
    if setup == "first_survey":
        person(frozen, project, "u1", T0 - timedelta(days=14) + timedelta(minutes=2))
    elif setup == "scheduled_request":
        person_id = person(frozen, project, "u1", T0)
        in_app_request(
            frozen, project, person_id, status="scheduled", scheduled_at=T0 + timedelta(seconds=90)
        )
    elif setup == "dismissal":
        person_id = person(frozen, project, "u1", T0 - timedelta(days=400))
        with frozen.app_context():
            when = T0 - timedelta(days=30) + timedelta(minutes=5)
            db.session.add(WidgetDismissal(project_id=project["id"], person_id=person_id, dismissed_at=when))
            db.session.commit()
        in_app_request(frozen, project, person_id)
    else:
        person(frozen, project, "u1", T0 - timedelta(days=13))
    body = identify(client, project).get_json()
    assert body["show"] is False and body["verdict_ttl"] == expected_ttl
    # Read-only path and write path agree: the second identify is a known, unchanged person.
    again = identify(client, project).get_json()
    assert again["verdict_ttl"] == expected_ttl


def test_verdict_first_identify_of_a_new_person_carries_the_bound_too(
    frozen: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    frozen.config["WIDGET_VERDICT_TTL"] = 45
    body = identify(client, project, "newcomer").get_json()  # created by this identify: the write path
    assert body["show"] is False and body["verdict_ttl"] == 45


def test_verdict_ttl_zero_turns_verdicts_off(
    frozen: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    frozen.config["WIDGET_VERDICT_TTL"] = 0
    person(frozen, project, "u1", T0)
    body = identify(client, project).get_json()
    assert body == {"show": False, "reason": "too_new"}


def test_verdict_of_unverified_identity_holds_no_reason(
    frozen: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    with frozen.app_context():
        db.session.execute(update(Project).values(require_identity_verification=False))
        db.session.commit()
    body = {"key": project["public_key"], "user": {"id": "anon"}}
    answer = client.post("/api/widget/identify", data=json.dumps(body), content_type="text/plain").get_json()
    assert answer["reason"] is None and answer["verdict"]
    assert json.loads(base64_decode(answer["verdict"].split(".")[0]))[2] is None


# --- a presented verdict ---------------------------------------------------------------------------


def test_verdict_still_valid_is_answered_without_reading_the_person(
    frozen: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    verdict = not_now(frozen, client, project)["verdict"]
    frozen.config["FROZEN_NOW"] = T0 + timedelta(seconds=100)
    with sql_log(frozen) as statements:
        body = identify(client, project, verdict=verdict).get_json()
    assert body == {"show": False, "reason": "too_new", "verdict": verdict, "verdict_ttl": TTL - 100}
    assert len(statements) == 1 and "people" not in statements[0] and "survey_requests" not in statements[0]


def test_verdict_server_side_change_reaches_the_person_once_it_expires(
    frozen: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    verdict = not_now(frozen, client, project)["verdict"]
    person_id = person_of(frozen, "u1")
    in_app_request(frozen, project, person_id)  # a trigger fires for the person
    frozen.config["FROZEN_NOW"] = T0 + timedelta(seconds=TTL - 1)
    assert identify(client, project, verdict=verdict).get_json()["show"] is False  # within the bound
    frozen.config["FROZEN_NOW"] = T0 + timedelta(seconds=TTL)
    body = identify(client, project, verdict=verdict).get_json()
    assert body["show"] is True and body["reason"] == "requested"


def _tampered_signature(token: str) -> str:
    payload, signature = token.rsplit(".", 1)
    raw = bytearray(base64_decode(signature))
    raw[0] ^= 1
    return f"{payload}.{base64_encode(bytes(raw)).decode()}"


def _longer_payload(token: str) -> str:
    """The payload rewritten to last a day longer, under the original signature."""
    payload, signature = token.rsplit(".", 1)
    data = json.loads(base64_decode(payload))
    data[1] += 86400
    return base64_encode(json.dumps(data, separators=(",", ":")).encode()).decode() + "." + signature


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(_tampered_signature, id="tampered-signature"),
        pytest.param(_longer_payload, id="payload-changed"),
        pytest.param(lambda t: resign(t, "another-servers-key"), id="other-key"),
        pytest.param(lambda t: t + "x", id="garbage"),
    ],
)
def test_verdict_forged_is_ignored_and_the_server_decides(
    frozen: Flask, client: FlaskClient, project: dict[str, Any], forge: Any
) -> None:
    verdict = not_now(frozen, client, project)["verdict"]
    person_id = person_of(frozen, "u1")
    in_app_request(frozen, project, person_id)
    body = identify(client, project, verdict=forge(verdict)).get_json()
    assert body["show"] is True and body["reason"] == "requested"
    # The genuine one still skips (the bound the docs give), so the forgeries above were what failed.
    assert identify(client, project, verdict=verdict).get_json()["show"] is False


def test_verdict_traits_changed_is_ignored(
    frozen: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    verdict = not_now(frozen, client, project)["verdict"]
    person_id = person_of(frozen, "u1")
    in_app_request(frozen, project, person_id)
    body = identify(client, project, verdict=verdict, properties={"plan": "enterprise"}).get_json()
    assert body["show"] is True
    with frozen.app_context():
        stored = db.session.scalar(select(Person.browser_properties).where(Person.id == person_id))
    assert stored == {"plan": "enterprise"}  # the new traits were written, as without a verdict


def test_verdict_of_another_user_is_ignored(
    frozen: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    verdict = not_now(frozen, client, project, "u1")["verdict"]
    in_app_request(frozen, project, person(frozen, project, "u2", T0))
    body = identify(client, project, "u2", verdict=verdict).get_json()
    assert body["show"] is True


def test_verdict_of_another_project_is_ignored(
    frozen: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    verdict = not_now(frozen, client, project, "u1")["verdict"]
    other = make_project(frozen, "Other")
    # The same user id (and, for the test, the same user_hash) in another project.
    with frozen.app_context():
        encrypted = db.session.scalar(
            select(Project.identity_secret_encrypted).where(Project.id == project["id"])
        )
        db.session.execute(
            update(Project).where(Project.id == other["id"]).values(identity_secret_encrypted=encrypted)
        )
        db.session.commit()
    in_app_request(frozen, other, person(frozen, other, "u1", T0))
    body = identify(
        client, {**other, "identity_secret": project["identity_secret"]}, verdict=verdict
    ).get_json()
    assert body["show"] is True


def test_verdict_forced_show_is_decided_by_the_server(
    frozen: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    verdict = not_now(frozen, client, project)["verdict"]
    body = identify(client, project, verdict=verdict, force=True).get_json()
    assert body["show"] is True and body["reason"] == "forced" and "verdict" not in body


def test_verdict_never_bypasses_the_key_or_the_user_hash(
    frozen: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    verdict = not_now(frozen, client, project)["verdict"]
    new_secret = keys.new_identity_secret()
    with frozen.app_context():
        encrypted = keys.encrypt_secret(new_secret, frozen.config["SECRET_KEY"], purpose=keys.IDENTITY_SECRET)
        db.session.execute(update(Project).values(identity_secret_encrypted=encrypted))
        db.session.commit()
    res = identify(client, project, verdict=verdict)  # the old user_hash, rotated out
    assert res.status_code == 403 and res.get_json()["code"] == "identity_refused"
    with frozen.app_context():
        db.session.execute(update(Project).values(public_key=keys.new_public_key()))
        db.session.commit()
    assert identify(client, project, verdict=verdict).status_code == 401


def test_verdict_that_is_not_a_string_is_422(client: FlaskClient, project: dict[str, Any]) -> None:
    body = {"key": project["public_key"], "user": {"id": "u1"}, "verdict": {"show": True}}
    res = client.post("/api/widget/identify", data=json.dumps(body), content_type="text/plain")
    assert res.status_code == 422 and set(res.get_json()) == {"status", "code", "message", "details"}


# --- the setting -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [(None, 600), ("0", 0), ("30", 30), ("601", None), ("x", None)])
def test_verdict_ttl_setting_is_bounded_by_ten_minutes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, raw: str | None, expected: int | None
) -> None:
    if raw is None:
        monkeypatch.delenv("WIDGET_VERDICT_TTL", raising=False)
    else:
        monkeypatch.setenv("WIDGET_VERDICT_TTL", raw)
    if expected is None:
        with pytest.raises(ConfigError, match="WIDGET_VERDICT_TTL"):
            load_config({"SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path)})
    else:
        assert (
            load_config({"SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path)})["WIDGET_VERDICT_TTL"] == expected
        )


@pytest.mark.parametrize("claim", ["requested", "forced", "recurring"])
def test_verdict_forged_to_claim_eligible_never_shows_a_survey(
    frozen: Flask, client: FlaskClient, project: dict[str, Any], claim: str
) -> None:
    verdict = not_now(frozen, client, project)["verdict"]
    payload = json.loads(base64_decode(verdict.split(".")[0]))
    payload[2] = claim  # "you may show it": signed with a key the server does not hold
    body = identify(client, project, verdict=resign(verdict, "guessed-key", payload)).get_json()
    assert body["show"] is False and body["reason"] == "too_new"
    with frozen.app_context():
        assert db.session.scalar(select(SurveyRequest.id)) is None  # nothing opened either
