"""Streamed exports: CSV and JSON lines columns, filters, formula-injection safety, tenant isolation."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from survey_service.core.nps import category_for
from survey_service.extensions import db
from survey_service.models import Person, Response
from survey_service.reporting import exports
from survey_service.reporting.exports import safe_cell
from survey_service.services.projects import default_survey
from tests.support.db import make_project


def post(client: FlaskClient, auth: dict[str, str], email: str, score: int, **extra: Any) -> None:
    person = {"email": email, **extra.pop("person", {})}
    res = client.post("/api/v1/responses", json={"person": person, "score": score, **extra}, headers=auth)
    assert res.status_code == 201, res.get_json()


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.fixture
def sample(client: FlaskClient, auth: dict[str, str]) -> None:
    post(
        client,
        auth,
        "ann@example.com",
        10,
        comment="Love it",
        person={"name": "Ann", "properties": {"plan": "pro", "seats": 12}},
        created_at="2026-01-05T10:00:00Z",
        reference_consent=True,
    )
    post(
        client,
        auth,
        "bob@example.com",
        3,
        comment="Too slow",
        person={"properties": {"plan": "free"}},
        created_at="2026-01-06T10:00:00Z",
    )
    post(
        client,
        auth,
        "cy@example.com",
        8,
        person={"properties": {"plan": "pro", "region": "eu"}},
        created_at="2026-02-01T10:00:00Z",
    )
    post(
        client,
        auth,
        "dee@example.com",
        9,
        comment="Solid",
        person={"properties": {"plan": "free"}},
        created_at="2026-02-02T10:00:00Z",
        reference_consent=False,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("plain = text", "plain = text"),
        ("", ""),
        (None, ""),
        (7, 7),
        (-3, -3),
        (2.5, 2.5),
        (True, "true"),
    ],
)
def test_safe_cell_formula_starts_are_quoted_numbers_stay_numeric(value: Any, expected: Any) -> None:
    assert safe_cell(value) == expected


def test_export_csv_header_rows_and_property_columns(
    client: FlaskClient, auth: dict[str, str], sample: None
) -> None:
    res = client.get("/api/v1/exports/responses.csv", headers=auth)
    assert res.status_code == 200
    assert res.mimetype == "text/csv"
    assert "attachment" in res.headers["Content-Disposition"]
    text = res.get_data(as_text=True)
    header = next(csv.reader(io.StringIO(text)))
    assert header[:5] == ["email", "name", "score", "comment", "created_at"]
    assert header[-3:] == ["plan", "region", "seats"]
    rows = read_csv(text)
    assert [r["email"] for r in rows] == [
        "ann@example.com",
        "bob@example.com",
        "cy@example.com",
        "dee@example.com",
    ]
    assert rows[0]["name"] == "Ann" and rows[0]["score"] == "10" and rows[0]["seats"] == "12"
    assert rows[0]["created_at"] == "2026-01-05T10:00:00Z" and rows[0]["category"] == "promoter"
    assert rows[2]["region"] == "eu" and rows[1]["region"] == ""


def test_export_csv_filters_category_dates_and_property(
    client: FlaskClient, auth: dict[str, str], sample: None
) -> None:
    def emails(query: str) -> list[str]:
        res = client.get(f"/api/v1/exports/responses.csv?{query}", headers=auth)
        assert res.status_code == 200
        return [r["email"] for r in read_csv(res.get_data(as_text=True))]

    assert emails("category=detractor") == ["bob@example.com"]
    assert emails("since=2026-02-01&until=2026-02-01") == ["cy@example.com"]
    assert emails("where=plan:pro") == ["ann@example.com", "cy@example.com"]
    assert emails("where=plan:pro&where=region:eu") == ["cy@example.com"]
    assert emails("where=plan:enterprise") == []


@pytest.mark.parametrize(
    "query",
    ["since=yesterday", "category=fan", "where=plan", "where=bad/key:1", "since=2026-02-02&until=2026-02-01"],
)
def test_export_csv_bad_query_is_422(client: FlaskClient, auth: dict[str, str], query: str) -> None:
    res = client.get(f"/api/v1/exports/responses.csv?{query}", headers=auth)
    assert res.status_code == 422
    assert res.get_json()["code"] == "validation_error"


def test_export_csv_without_key_is_401(client: FlaskClient) -> None:
    assert client.get("/api/v1/exports/responses.csv").status_code == 401


def test_export_csv_injection_in_comment_name_and_properties_is_neutralised(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    post(
        client,
        auth,
        "eve@example.com",
        2,
        comment="=cmd|' /C calc'!A0",
        person={
            "name": "@evil",
            "properties": {
                "note": "+SUM(1)",
                "tab": "\tx",
                "cr": "\rx",
                "level": -4,
                "ratio": 2.5,
                "flag": True,
            },
        },
    )
    rows = read_csv(client.get("/api/v1/exports/responses.csv", headers=auth).get_data(as_text=True))
    assert rows[0]["comment"] == "'=cmd|' /C calc'!A0"
    assert rows[0]["name"] == "'@evil"
    assert rows[0]["note"] == "'+SUM(1)" and rows[0]["tab"] == "'\tx"
    assert rows[0]["level"] == "-4" and rows[0]["score"] == "2"
    assert rows[0]["cr"] == "'\rx" and rows[0]["ratio"] == "2.5" and rows[0]["flag"] == "true"


def test_export_promoters_only_with_consent_column(
    client: FlaskClient, auth: dict[str, str], sample: None
) -> None:
    res = client.get("/api/v1/exports/promoters.csv?where=plan:free", headers=auth)
    assert res.status_code == 200
    rows = read_csv(res.get_data(as_text=True))
    assert [(r["email"], r["reference_consent"], r["comment"]) for r in rows] == [
        ("dee@example.com", "false", "Solid")
    ]
    rows = read_csv(client.get("/api/v1/exports/promoters.csv", headers=auth).get_data(as_text=True))
    assert [(r["email"], r["reference_consent"]) for r in rows] == [
        ("ann@example.com", "true"),
        ("dee@example.com", "false"),
    ]


def test_export_jsonl_one_typed_object_per_line(
    client: FlaskClient, auth: dict[str, str], sample: None
) -> None:
    res = client.get("/api/v1/exports/responses.jsonl?category=promoter", headers=auth)
    assert res.status_code == 200 and res.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in res.get_data(as_text=True).splitlines()]
    assert [obj["email"] for obj in lines] == ["ann@example.com", "dee@example.com"]
    assert lines[0]["score"] == 10 and lines[0]["properties"] == {"plan": "pro", "seats": 12}
    assert lines[0]["reference_consent"] is True


def test_export_other_project_sees_nothing(app: Flask, client: FlaskClient, sample: None) -> None:
    other = make_project(app, "Other")
    res = client.get(
        "/api/v1/exports/responses.csv", headers={"Authorization": f"Bearer {other['secret_key']}"}
    )
    assert res.status_code == 200
    assert read_csv(res.get_data(as_text=True)) == []


def test_export_csv_large_is_streamed_in_chunks(
    app: Flask, client: FlaskClient, project: dict[str, Any], auth: dict[str, str]
) -> None:
    total = exports.CHUNK_ROWS * 2 + 7
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with app.app_context():
        person = Person(project_id=project["id"], email="bulk@example.com", properties={})
        db.session.add(person)
        db.session.flush()
        survey_id = default_survey(project["id"]).id
        db.session.add_all(
            Response(
                project_id=project["id"],
                survey_id=survey_id,
                person_id=person.id,
                score=i % 11,
                category=category_for(i % 11),
                properties={"i": i},
                created_at=start + timedelta(seconds=i),
            )
            for i in range(total)
        )
        db.session.commit()
    res = client.get("/api/v1/exports/responses.csv", headers=auth, buffered=False)
    assert res.is_streamed
    chunks = list(res.response)
    # The header, then several bounded chunks: never the whole file as one string.
    assert len(chunks) >= 4
    assert max(c.count(b"\n" if isinstance(c, bytes) else "\n") for c in chunks) <= exports.CHUNK_ROWS
    rows = read_csv(b"".join(c if isinstance(c, bytes) else str(c).encode() for c in chunks).decode())
    assert len(rows) == total and rows[-1]["i"] == str(total - 1)
    res.close()


def test_property_keys_sample_looks_at_newest_responses_only(app: Flask, sample: None) -> None:
    from survey_service.models import Project
    from survey_service.reporting.filters import ResponseFilter

    with app.app_context():
        project_id = db.session.scalar(db.select(Project.id))
        flt = ResponseFilter(project_id)
        assert exports.property_keys(flt) == ["plan", "region", "seats"]
        assert exports.property_keys(flt, sample=1) == ["plan"]  # dee, the newest, has only a plan
        assert exports.property_keys(flt, sample=2) == ["plan", "region"]


# Text JSON must escape, and values of every type: the PostgreSQL COPY path builds these lines in SQL.
TRICKY = [
    # (email, name, score, comment, channel, properties, consent, day of March 2026)
    (
        "q@example.com",
        'Quote "Q" \\ back',
        10,
        'Says "hi"\nnew line\ttab \x01 é 🙂 =1+1',
        "api",
        {"plan": "pro", "n": 1.5, "nested": {"a": [1, "x", None]}, "flag": True, "nul": None},
        True,
        3,
    ),
    (None, None, 9, None, "email", {}, None, 4),
    ("z@example.com", "Zed", 2, "", "in_app", {"plan": "free", "big": 12345678901234}, False, 5),
    ("p@example.com", "Pat", 9, "late", "link", {"plan": "pro", "é": "ü"}, None, 6),
    ("m@example.com", "Mo", 7, "mid", "api", {"plan": "pro"}, None, 7),
]


def _expected_line(row: tuple[Any, ...], response_id: int, external_id: str) -> dict[str, Any]:
    email, name, score, comment, channel, properties, consent, day = row
    return {
        "email": email,
        "name": name,
        "score": score,
        "comment": comment,
        "created_at": f"2026-03-{day:02d}T10:00:00Z",
        "category": category_for(score),
        "channel": channel,
        "external_id": external_id,
        "response_id": response_id,
        "reference_consent": consent,
        "review_asked_at": None,
        "review_consented_at": None,
        "review_link_clicked_at": None,
        "themes": "",
        "answered_after_step": None,
        "properties": properties,
    }


@pytest.fixture
def tricky(app: Flask, project: dict[str, Any]) -> list[dict[str, Any]]:
    """The TRICKY responses, stored as is (no API validation in the way), and the lines they should give."""
    expected = []
    with app.app_context():
        survey_id = default_survey(project["id"]).id
        for i, row in enumerate(TRICKY):
            email, name, score, comment, channel, properties, consent, day = row
            person = Person(project_id=project["id"], external_id=f"ext-{i}", email=email, name=name)
            db.session.add(person)
            db.session.flush()
            response = Response(
                project_id=project["id"],
                survey_id=survey_id,
                person_id=person.id,
                score=score,
                category=category_for(score),
                comment=comment,
                channel=channel,
                properties=properties,
                reference_consent=consent,
                created_at=datetime(2026, 3, day, 10, tzinfo=UTC),
            )
            db.session.add(response)
            db.session.flush()
            expected.append(_expected_line(row, response.id, f"ext-{i}"))
        db.session.commit()
    return expected


@pytest.mark.parametrize(
    ("query", "picked"),
    [
        ("", [0, 1, 2, 3, 4]),
        ("?category=promoter", [0, 1, 3]),
        ("?since=2026-03-04&until=2026-03-06", [1, 2, 3]),
        ("?where=plan:pro", [0, 3, 4]),
        ("?channel=api", [0, 4]),
    ],
)
def test_export_jsonl_rows_types_order_and_filters_are_exact(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    tricky: list[dict[str, Any]],
    query: str,
    picked: list[int],
) -> None:
    res = client.get(f"/api/v1/exports/responses.jsonl{query}", headers=auth)
    assert res.status_code == 200
    text = res.get_data(as_text=True)
    assert text.endswith("\n") and "\r" not in text
    lines = [json.loads(line) for line in text.split("\n")[:-1]]
    assert lines == [tricky[i] for i in picked]
    # Key order too: the same as the row-by-row path's.
    assert [list(line) for line in lines] == [list(tricky[i]) for i in picked]


def test_export_jsonl_equals_the_row_by_row_path(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    tricky: list[dict[str, Any]],
) -> None:
    """On PostgreSQL the lines come from COPY; they parse to what the Python path builds."""
    from survey_service.reporting.filters import ResponseFilter

    res = client.get("/api/v1/exports/responses.jsonl?since=2026-03-01", headers=auth)
    with app.app_context():
        flt = ResponseFilter(project["id"], since=datetime(2026, 3, 1, tzinfo=UTC))
        reference = b"".join(exports.python_jsonl(flt)).decode()
    assert [json.loads(line) for line in res.get_data(as_text=True).splitlines()] == [
        json.loads(line) for line in reference.splitlines()
    ]
    assert len(reference.splitlines()) == len(tricky)


def test_export_runs_with_its_own_work_mem_in_its_transaction_only(app: Flask) -> None:
    """EXPORT_WORK_MEM is set for the export's transaction (SET LOCAL): the COPY sees it, later ones don't."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the COPY path and work_mem are PostgreSQL's")
    from sqlalchemy import func, select

    setting = select(func.current_setting("work_mem"))
    with app.app_context():
        default = db.session.scalar(setting)
        db.session.rollback()
        app.config["EXPORT_WORK_MEM"] = "64MB"
        assert b"".join(exports._copy(setting, "FORMAT csv")) == b"64MB\n"
        db.session.rollback()
        assert db.session.scalar(setting) == default != "64MB"
        db.session.rollback()
        app.config["EXPORT_WORK_MEM"] = None  # 0 in the environment: the server's own setting
        assert b"".join(exports._copy(setting, "FORMAT csv")) == f"{default}\n".encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, "256MB"), ("1GB", "1GB"), ("512kB", "512kB"), ("0", None), ("lots", "error"), ("256mb", "error")],
)
def test_export_work_mem_setting(
    raw: str | None, expected: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from survey_service.config import ConfigError, load_config

    if raw is None:
        monkeypatch.delenv("EXPORT_WORK_MEM", raising=False)
    else:
        monkeypatch.setenv("EXPORT_WORK_MEM", raw)
    if expected == "error":
        with pytest.raises(ConfigError, match="EXPORT_WORK_MEM"):
            load_config({"SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path)})
    else:
        assert load_config({"SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path)})["EXPORT_WORK_MEM"] == expected
