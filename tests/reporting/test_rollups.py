"""Per-day rollups (PostgreSQL): reports read them and stay exactly equal to a full scan.

The oracle is the same report with rollups switched off (the scan path, itself checked against
hand-computed cases in the other report tests), plus one hand count.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select, text

from survey_service.extensions import db
from survey_service.models import Person, Response, RollupDay, Survey
from survey_service.reporting import rollups
from survey_service.services.responses import record_response
from tests.support.db import make_project
from tests.support.reports import report
from tests.support.sql import sql_log

TODAY = datetime.now(UTC).date()
LATE_DETRACTOR = (
    "INSERT INTO responses (project_id, survey_id, person_id, score, category, channel, properties,"
    " followup_status, followup_tags, created_at, updated_at)"
    " VALUES (%s, %s, %s, 0, 'detractor', 'api', '{}', 'new', '[]', %s, now())"
)
PLANS = ["free", "pro", "enterprise", None, "null", 5]


def at(days_ago: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), time(hour, minute), tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def answer(app: Flask, project_id: int, who: str, score: int, when: datetime, **extra: Any) -> int:
    with app.app_context():
        response, _ = record_response(
            project_id,
            {"external_id": who, "properties": extra.pop("properties", {})},
            score,
            extra.pop("comment", None),
            created_at=when,
            **extra,
        )
        return response.id


@pytest.fixture
def pg_app(app: Flask) -> Flask:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("rollups exist on PostgreSQL only (see test_sqlite_has_no_rollups)")
    return app


def fill(app: Flask, project_id: int, n: int = 260, seed: int = 7) -> int:
    """n answers over the last 45 days (today and yesterday included), a second survey, 3 channels."""
    rng = random.Random(seed)
    with app.app_context():
        survey = Survey(project_id=project_id, name="Onboarding", product_name="Acme", question="How likely?")
        db.session.add(survey)
        db.session.commit()
        second = survey.id
    ids = []
    for i in range(n):
        plan = rng.choice(PLANS)
        props: dict[str, Any] = {"region": rng.choice(["eu", "us"])}
        if plan == "null":
            props["plan"] = None
        elif plan is not None:
            props["plan"] = plan
        when = at(rng.randrange(0, 45), rng.choice([0, 9, 23]), rng.choice([0, 10, 59]))
        comment = rng.choice([None, "", "slow exports", "love it"])
        channel = rng.choice(["api", "email", "link"])
        ids.append(
            answer(
                app,
                project_id,
                f"u{i % 90}",
                rng.randrange(11),
                when,
                properties=props,
                comment=comment,
                channel=channel,
            )
        )
    with app.app_context():
        moved = ids[::4]
        db.session.execute(
            text("UPDATE responses SET survey_id = :s WHERE id = ANY(:ids)"), {"s": second, "ids": moved}
        )
        db.session.commit()
    return second


@contextmanager
def scan_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with monkeypatch.context() as patch:
        patch.setattr(rollups, "enabled", lambda: False)
        yield


def build(app: Flask, project_id: int | None = None) -> int:
    with app.app_context():
        return rollups.refresh(limit=None, project_id=project_id)


def day_row(app: Flask, project_id: int, day: date) -> RollupDay | None:
    with app.app_context():
        row = db.session.get(RollupDay, (project_id, day))
        if row is not None:
            db.session.expunge(row)
        return row


def queries(second_survey: int) -> list[str]:
    since_midnight = iso(at(30, 0))
    return [
        "",
        "group_by=plan&interval=day",
        f"group_by=plan&interval=week&since={since_midnight}",
        "group_by=region&interval=quarter",
        "group_by=plan&where=plan:pro",
        "where=plan:pro&interval=day",
        "where=plan:5",
        f"survey_id={second_survey}&group_by=plan",
        "channel=email&group_by=region&interval=week",
        f"since={iso(at(20, 13, 45))}&until={iso(at(5, 6))}&group_by=plan&interval=day",
        f"since={iso(at(14, 0))}&until={iso(at(2, 6))}&compare=previous&group_by=plan",
        f"since={iso(at(21, 0))}&interval=week&rolling_days=7",
        "group_by=plan&mode=last_per_person",
        "group_by=plan&where=region:eu",
        "group_by=nothing_like_this",
    ]


def test_reports_from_rollups_equal_the_full_scan(
    pg_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = make_project(pg_app, "Other")
    fill(pg_app, other["id"], n=80, seed=3)  # another tenant's days and values must never count
    second = fill(pg_app, project["id"])
    expected = {}
    with scan_only(monkeypatch):
        for query in queries(second):
            expected[query] = report(client, auth, query)
    built = build(pg_app)
    assert built >= 43 + 40  # every closed day of both projects (empty ones too)
    with sql_log(pg_app) as seen:
        for query in queries(second):
            assert report(client, auth, query) == expected[query], query
    assert sum("FROM response_rollups" in s for s in seen) >= 10
    # Closed days came from the rollups: the scan asked only for the days after the last sealed one.
    overall = expected[""]["overall"]
    assert overall["responses"] == 260


def test_report_reads_the_rollups_and_a_later_write_makes_the_day_scanned_again(
    pg_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any]
) -> None:
    pid = project["id"]
    answer(pg_app, pid, "a", 10, at(10))
    answer(pg_app, pid, "b", 3, at(10, 23, 59))
    build(pg_app)
    assert report(client, auth, "")["overall"]["promoters"] == 1
    with pg_app.app_context():  # tamper with the stored counts (no trigger on the rollup table)
        db.session.execute(
            text(
                "UPDATE response_rollups SET promoters = promoters + 100"
                " WHERE project_id = :p AND prop_key = ''"
            ),
            {"p": pid},
        )
        db.session.commit()
    assert report(client, auth, "")["overall"]["promoters"] == 101  # proof the report reads them
    answer(pg_app, pid, "c", 8, at(10, 1))  # a late import into that day
    row = day_row(pg_app, pid, TODAY - timedelta(days=10))
    assert row is not None and row.built_version != row.version
    body = report(client, auth, "")["overall"]
    assert (body["promoters"], body["passives"], body["detractors"]) == (1, 1, 1)  # scanned, exact
    assert build(pg_app) == 1
    assert report(client, auth, "")["overall"]["promoters"] == 1


def test_every_kind_of_write_to_a_closed_day_keeps_reports_exact(
    pg_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = project["id"]
    fill(pg_app, pid, n=120, seed=11)
    victim = answer(pg_app, pid, "victim", 2, at(12), comment="call me", properties={"plan": "pro"})
    build(pg_app)
    query = "group_by=plan&interval=day"

    def exact() -> None:
        got = report(client, auth, query)
        with scan_only(monkeypatch):
            assert got == report(client, auth, query)

    exact()
    # A new score for an old request / a changed comment (the landing page's "why?" the next day).
    res = client.patch(f"/api/v1/responses/{victim}", json={"followup_status": "contacted"}, headers=auth)
    assert res.status_code == 200
    exact()
    with pg_app.app_context():
        response = db.session.get(Response, victim)
        assert response is not None
        response.comment, response.score, response.category = "", 9, "promoter"
        db.session.commit()
    exact()
    # Retention blanks old comments in one statement.
    with pg_app.app_context():
        from survey_service.services.privacy import anonymise_old_comments

        assert anonymise_old_comments(20, pid) > 0
    exact()
    # Erasing a person deletes their responses through the foreign key's cascade.
    with pg_app.app_context():
        person_id = db.session.scalar(select(Person.id).where(Person.external_id == "victim"))
    assert client.delete(f"/api/v1/people/{person_id}", headers=auth).status_code in (200, 202, 204)
    exact()
    stale = build(pg_app)
    assert stale >= 3
    with pg_app.app_context():
        assert rollups.pending(pid) == []
    exact()


def test_writes_of_today_touch_no_day_row(pg_app: Flask, project: dict[str, Any]) -> None:
    pid = project["id"]
    answer(pg_app, pid, "now", 9, datetime.now(UTC))
    assert day_row(pg_app, pid, TODAY) is None
    answer(pg_app, pid, "late", 9, at(1))
    row = day_row(pg_app, pid, TODAY - timedelta(days=1))
    assert row is not None and row.built_version is None
    with pg_app.app_context():
        assert rollups.pending(pid) == []  # yesterday is not closed long enough to be built


def late_writer(
    app: Flask, migrated: dict[str, Any], pid: int
) -> tuple[psycopg.Connection[Any], tuple[Any, ...]]:
    """One answer 6 days ago, and a second connection with the parameters of a late detractor that day."""
    answer(app, pid, "a", 10, at(6))
    with app.app_context():
        survey_id, person_id = db.session.execute(
            text("SELECT survey_id, person_id FROM responses WHERE project_id = :p"), {"p": pid}
        ).one()
    url = migrated["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(url), (pid, survey_id, person_id, at(6, 8))


@pytest.mark.parametrize(
    "commit_first", [False, True], ids=["write-open-while-counting", "write-committed-before-count"]
)
def test_a_write_racing_a_build_is_never_lost(
    pg_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    migrated: dict[str, Any],
    commit_first: bool,
) -> None:
    """A late answer lands on a day after the build read its version and before it counted."""
    pid = project["id"]
    day = TODAY - timedelta(days=6)
    writer, late = late_writer(pg_app, migrated, pid)
    with pg_app.app_context():
        engine = db.engine
    wrote = threading.Event()

    def write_before_count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if (
            statement
            == rollups.TOTALS_SQL.replace(":pid", "%(pid)s")
            .replace(":start", "%(start)s")
            .replace(":end", "%(end)s")
            and not wrote.is_set()
        ):
            writer.execute(
                LATE_DETRACTOR,
                late,
            )
            if commit_first:
                writer.commit()
            wrote.set()

    result: list[bool] = []

    def run() -> None:
        with pg_app.app_context():
            result.append(rollups.build_day(pid, day))

    event.listen(engine, "before_cursor_execute", write_before_count)
    try:
        builder = threading.Thread(target=run)
        builder.start()
        assert wrote.wait(timeout=30)
        if not commit_first:
            builder.join(timeout=1)
            assert builder.is_alive()  # its store waits for the writer's lock on the day
            writer.commit()
        builder.join(timeout=30)
        assert result == [False]  # counted without the answer: stored nothing
    finally:
        event.remove(engine, "before_cursor_execute", write_before_count)
        writer.close()
    row = day_row(pg_app, pid, day)
    assert row is not None and row.built_version != row.version
    body = report(client, auth, "")["overall"]
    assert (body["promoters"], body["detractors"]) == (1, 1)
    assert build(pg_app) == 5  # that day again, and the closed days after it
    body = report(client, auth, "")["overall"]
    assert (body["promoters"], body["detractors"]) == (1, 1)


def test_a_build_waits_for_a_write_already_open_and_counts_it(
    pg_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    migrated: dict[str, Any],
) -> None:
    pid = project["id"]
    writer, late = late_writer(pg_app, migrated, pid)
    with writer:
        writer.execute(
            LATE_DETRACTOR,
            late,
        )
        result: list[bool] = []

        def run() -> None:
            with pg_app.app_context():
                result.append(rollups.build_day(pid, TODAY - timedelta(days=6)))

        builder = threading.Thread(target=run)
        builder.start()
        builder.join(timeout=1)
        assert builder.is_alive()
        writer.commit()
        builder.join(timeout=30)
    assert result == [True]
    with pg_app.app_context():
        counts = db.session.execute(
            text(
                "SELECT promoters, detractors FROM response_rollups WHERE project_id = :p AND prop_key = ''"
            ),
            {"p": pid},
        ).one()
    assert tuple(counts) == (1, 1)


def test_a_property_with_too_many_values_is_scanned_on_its_days(
    pg_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = project["id"]
    for i in range(6):
        answer(pg_app, pid, f"p{i}", i + 4, at(8, i), properties={"user": f"u{i}", "plan": "pro"})
    answer(pg_app, pid, "q", 10, at(9), properties={"user": "u0", "plan": "free"})
    monkeypatch.setattr(rollups, "MAX_VALUES_PER_DAY", 3)
    build(pg_app)
    row = day_row(pg_app, pid, TODAY - timedelta(days=8))
    assert row is not None and row.wide_keys == ["user"]
    assert day_row(pg_app, pid, TODAY - timedelta(days=9)).wide_keys == []  # type: ignore[union-attr]
    body = report(client, auth, "group_by=user")
    assert [(g["key"], g["responses"]) for g in body["groups"]] == [
        ("u0", 2),
        ("u1", 1),
        ("u2", 1),
        ("u3", 1),
        ("u4", 1),
        ("u5", 1),
    ]
    with scan_only(monkeypatch):
        assert report(client, auth, "group_by=user") == body


def test_pending_days_run_from_the_first_answer_and_fill_holes(
    pg_app: Flask, project: dict[str, Any]
) -> None:
    pid = project["id"]
    answer(pg_app, pid, "a", 10, at(10))
    answer(pg_app, pid, "b", 10, at(3))
    with pg_app.app_context():
        todo = rollups.pending(pid)
    # The two written days first (their rows exist, out of date), then the days between.
    assert todo[:2] == [(pid, TODAY - timedelta(days=10)), (pid, TODAY - timedelta(days=3))]
    assert sorted(todo) == [(pid, TODAY - timedelta(days=d)) for d in range(10, 1, -1)]
    assert build(pg_app) == 9
    answer(pg_app, pid, "c", 5, at(30))  # an import of older answers
    with pg_app.app_context():
        todo = rollups.pending(pid)
    assert todo[0] == (pid, TODAY - timedelta(days=30))  # its own day (written, so out of date) first
    assert sorted(todo) == [(pid, TODAY - timedelta(days=d)) for d in range(30, 10, -1)]
    assert build(pg_app) == 20
    with pg_app.app_context():
        assert rollups.pending(pid) == []
        valid = db.session.scalar(
            text(
                "SELECT count(*) FROM response_rollup_days WHERE project_id = :p AND built_version = version"
            ),
            {"p": pid},
        )
    assert valid == 29


def test_hand_counted_day_and_null_groups(
    pg_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any]
) -> None:
    pid = project["id"]
    answer(pg_app, pid, "a", 10, at(40), properties={"plan": "pro"}, comment="great")
    answer(pg_app, pid, "b", 8, at(40), properties={"plan": None})
    answer(pg_app, pid, "c", 1, at(39), comment="")
    answer(pg_app, pid, "d", 9, at(39), properties={"plan": "pro"})
    answer(pg_app, pid, "e", 6, datetime.now(UTC), properties={"plan": "free"}, comment="meh")
    build(pg_app)
    body = report(client, auth, f"group_by=plan&interval=day&since={iso(at(40, 0))}")
    assert [
        (g["key"], g["promoters"], g["passives"], g["detractors"], g["comments"]) for g in body["groups"]
    ] == [
        ("pro", 2, 0, 0, 1),
        (None, 0, 1, 1, 0),
        ("free", 0, 0, 1, 1),
    ]
    series = {s["period"]: (s["promoters"], s["passives"], s["detractors"]) for s in body["series"]}
    assert series[(TODAY - timedelta(days=40)).isoformat()] == (1, 1, 0)
    assert series[(TODAY - timedelta(days=39)).isoformat()] == (1, 0, 1)
    assert series[TODAY.isoformat()] == (0, 0, 1)
    assert body["overall"]["nps"] == 0.0


def test_the_background_pass_and_the_command_build_days(
    pg_app: Flask, project: dict[str, Any], redis_url: str
) -> None:
    from survey_service.services.relay import relay_once

    pid = project["id"]
    answer(pg_app, pid, "a", 10, at(40))
    monkey_idle = rollups._idle_until
    try:
        rollups._idle_until = 0.0
        relay_once(pg_app)
        with pg_app.app_context():
            assert len(rollups.pending(pid)) == 39 - rollups.DAYS_PER_PASS
    finally:
        rollups._idle_until = monkey_idle
    result = pg_app.test_cli_runner().invoke(args=["build-rollups"])
    assert result.exit_code == 0, result.output
    assert '"built": 25' in result.output
    with pg_app.app_context():
        assert rollups.pending(pid) == []


def test_deleting_a_project_with_rollups_works(pg_app: Flask, project: dict[str, Any]) -> None:
    pid = project["id"]
    answer(pg_app, pid, "a", 10, at(5))
    build(pg_app)
    with pg_app.app_context():
        db.session.execute(text("DELETE FROM projects WHERE id = :p"), {"p": pid})
        db.session.commit()
        assert db.session.scalar(text("SELECT count(*) FROM response_rollup_days")) == 0
        assert db.session.scalar(text("SELECT count(*) FROM response_rollups")) == 0


def test_sqlite_has_no_rollups(
    app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any]
) -> None:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the SQLite half")
    answer(app, project["id"], "a", 10, at(10))
    with app.app_context():
        assert rollups.refresh(limit=None) == 0
    assert report(client, auth, "")["overall"]["promoters"] == 1
    result = app.test_cli_runner().invoke(args=["build-rollups"])
    assert result.exit_code == 0 and "PostgreSQL only" in result.output


def test_export_columns_from_rollups_equal_the_full_scan(
    pg_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = project["id"]
    second = fill(pg_app, pid, n=150, seed=5)
    # Names only some answers carry: a detractor-only one, one of today, one of a single channel.
    answer(pg_app, pid, "x1", 2, at(9), properties={"churn_risk": "high"})
    answer(pg_app, pid, "x2", 10, datetime.now(UTC), properties={"fresh": "yes"})
    answer(pg_app, pid, "x3", 9, at(20), properties={"beta": True}, channel="link")
    paths = [
        "/api/v1/exports/promoters.csv",
        "/api/v1/exports/responses.csv",
        f"/api/v1/exports/responses.csv?survey_id={second}",
        "/api/v1/exports/responses.csv?channel=email",
        f"/api/v1/exports/promoters.csv?since={iso(at(25, 7))}&until={iso(at(3, 0))}",
    ]
    expected = {}
    with scan_only(monkeypatch):
        for path in paths:
            expected[path] = client.get(path, headers=auth).get_data(as_text=True)
    build(pg_app)
    for path in paths:
        assert client.get(path, headers=auth).get_data(as_text=True) == expected[path], path
    header = expected["/api/v1/exports/promoters.csv"].splitlines()[0]
    assert "churn_risk" not in header and "fresh" in header and "beta" in header
    assert "churn_risk" in expected["/api/v1/exports/responses.csv"].splitlines()[0]


def test_erasing_a_person_removes_their_days_counts_at_once(
    pg_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = project["id"]
    answer(pg_app, pid, "keep", 9, at(7), properties={"company": "Stays Ltd"})
    answer(pg_app, pid, "gone", 2, at(7), properties={"company": "Gone & Sons"})
    answer(pg_app, pid, "gone", 3, at(4), properties={"company": "Gone & Sons"})
    build(pg_app)

    def values() -> set[str]:
        with pg_app.app_context():
            return set(
                db.session.scalars(
                    text("SELECT prop_value FROM response_rollups WHERE prop_value IS NOT NULL")
                )
            )

    assert "Gone & Sons" in values()
    with pg_app.app_context():
        person_id = db.session.scalar(select(Person.id).where(Person.external_id == "gone"))
    assert client.delete(f"/api/v1/people/{person_id}", headers=auth).status_code == 200
    assert "Gone & Sons" not in values()  # not even until the worker counts the days again
    got = report(client, auth, "group_by=company")
    with scan_only(monkeypatch):
        assert report(client, auth, "group_by=company") == got
    assert [g["key"] for g in got["groups"]] == ["Stays Ltd"]
    build(pg_app)
    assert values() == {"Stays Ltd"}


# ---- sec-input: a poisoned day stays one project's problem --------------------------------------


def test_rollups_day_before_the_bounds_left_by_an_erased_person_does_not_stop_other_projects(
    pg_app: Flask, client: FlaskClient, auth: dict[str, str], project: dict[str, Any]
) -> None:
    # A response stored before the API bounded instants (the service layer takes any datetime):
    # its day row (0001-01-01) outlives the person's erasure, and pending() used to overflow on it.
    poisoned = project["id"]
    other = make_project(pg_app, "Other")["id"]
    answer(pg_app, poisoned, "old", 3, datetime(1, 1, 1, 12, tzinfo=UTC))
    answer(pg_app, poisoned, "keep", 9, at(6))
    answer(pg_app, other, "b", 10, at(5))
    with pg_app.app_context():
        person_id = db.session.scalar(select(Person.id).where(Person.external_id == "old"))
    assert client.delete(f"/api/v1/people/{person_id}", headers=auth).status_code == 200
    assert day_row(pg_app, poisoned, date(1, 1, 1)) is not None  # the erasure-surviving row
    assert build(pg_app) > 0
    for pid, days_ago in ((other, 5), (poisoned, 6)):
        row = day_row(pg_app, pid, TODAY - timedelta(days=days_ago))
        assert row is not None and row.built_version == row.version
    with pg_app.app_context():
        assert rollups.pending() == []
    assert report(client, auth, "interval=day")["overall"]["responses"] == 1


def test_rollups_projects_take_turns_so_a_long_backfill_does_not_hold_others_back(
    pg_app: Flask, project: dict[str, Any]
) -> None:
    backlog = project["id"]
    other = make_project(pg_app, "Other")["id"]
    answer(pg_app, backlog, "a", 10, at(300))
    answer(pg_app, backlog, "a", 9, at(299))
    answer(pg_app, other, "b", 10, at(5))
    with pg_app.app_context():
        assert rollups.refresh(limit=2) == 2
    row = day_row(pg_app, other, TODAY - timedelta(days=5))
    assert row is not None and row.built_version == row.version


def test_export_columns_on_days_with_a_too_wide_property_come_from_the_rollups(
    pg_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    project: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = project["id"]
    # Day 8: `seats` too wide (4 values > 3), carried by promoters; day 9: `ticket` too wide, detractors only.
    for i in range(4):
        answer(pg_app, pid, f"p{i}", 9 + i % 2, at(8, i), properties={"seats": i, "plan": "pro"})
        answer(pg_app, pid, f"d{i}", 2, at(9, i), properties={"ticket": f"t{i}"}, channel="email")
    answer(pg_app, pid, "today", 10, datetime.now(UTC), properties={"fresh": "yes"})
    monkeypatch.setattr(rollups, "MAX_VALUES_PER_DAY", 3)
    paths = [
        "/api/v1/exports/promoters.csv",
        "/api/v1/exports/responses.csv",
        "/api/v1/exports/responses.csv?channel=api",
        "/api/v1/exports/responses.csv?channel=email",
    ]
    with scan_only(monkeypatch):
        expected = {path: client.get(path, headers=auth).get_data(as_text=True) for path in paths}
    build(pg_app)
    assert day_row(pg_app, pid, TODAY - timedelta(days=8)).wide_keys == ["seats"]  # type: ignore[union-attr]
    scanned_around: list[frozenset[date]] = []
    outside = rollups.outside

    def spy(days: frozenset[date], *args: Any) -> Any:
        scanned_around.append(days)
        return outside(days, *args)

    monkeypatch.setattr(rollups, "outside", spy)
    for path in paths:
        scanned_around.clear()
        assert client.get(path, headers=auth).get_data(as_text=True) == expected[path], path
        # The names of the wide days came from the rollups: the listing of keys scans around them.
        assert scanned_around and {at(8).date(), at(9).date()} <= scanned_around[0], path
    promoters = expected["/api/v1/exports/promoters.csv"].splitlines()[0].split(",")
    assert "seats" in promoters and "ticket" not in promoters and "fresh" in promoters
    assert "ticket" in expected["/api/v1/exports/responses.csv?channel=email"].splitlines()[0]
    assert "ticket" not in expected["/api/v1/exports/responses.csv?channel=api"].splitlines()[0]
