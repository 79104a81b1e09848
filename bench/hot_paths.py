"""The write hot paths against the durable-write ceiling, in one run, at 32 connections (issue 15).

Three endpoints of the service, each a durable write acknowledged only after its COMMIT:
`POST /api/v1/responses` (a new person per request), `POST /api/v1/events` (a new event id and person
per request, one email trigger rule with delay 0: each event is a committed send request and a send
wake-up) and `POST /api/widget/answer` (a shown in-app survey request per request, token signed as the
widget gets it from identify). The ceiling is `bench/raw_insert_app.py`: parse the JSON, one psycopg
`INSERT ... RETURNING` + `COMMIT`, answer 201 - the least any acknowledged-only-when-committed write needs.

Every server runs under the same gunicorn command (worker class, workers, threads). Closed loops of
`concurrency` clients (a new connection per request) alternate in short slices between the ceiling
and each endpoint, so load from elsewhere on the machine lands on every side; with `baseline` (another
checkout, e.g. /work/main) its service runs the same slices beside this one: before and after in one run.
Each figure is endpoint requests/s / ceiling requests/s, with the endpoint's p99 at that concurrency.
After the slices each gunicorn is killed with SIGKILL and the rows are counted: every acknowledged
write must be there.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from flask import Flask
from sqlalchemy import insert

from bench import loadgen
from bench.lifecycle import redis_server
from bench.pg import libpq_url
from bench.raw_insert_app import CREATE_TABLE, TABLE
from bench.recording import _factory as response_factory
from bench.servers import ROOT, gunicorn, kill
from survey_service import create_app
from survey_service.core import tokens
from survey_service.extensions import db
from survey_service.models import Person, RequestStatus, SurveyRequest
from survey_service.services.projects import create_project, default_survey_id

EVENT_TYPE = "bench_hot_event"
ENDPOINTS = ("responses", "events", "widget_answer")
EXPECTED_STATUS = {"responses": 201, "events": 202, "widget_answer": 200}


@dataclass(frozen=True)
class HotPathSizes:
    """How long each slice runs, how many slices, how hard the closed loop pushes."""

    slice_seconds: float
    rounds: int
    concurrency: int
    widget_requests: int  # shown in-app requests prepared per tree (one answer each)


FULL = HotPathSizes(slice_seconds=4.0, rounds=4, concurrency=32, widget_requests=40_000)
QUICK = HotPathSizes(slice_seconds=0.6, rounds=1, concurrency=8, widget_requests=2_000)


@dataclass
class Tree:
    """One checkout of the service under test: its projects and keys in the bench database."""

    name: str
    root: Path
    response_key: str = ""
    response_project: int = 0
    event_key: str = ""
    event_project: int = 0
    widget_public_key: str = ""
    widget_project: int = 0
    widget_tokens: tuple[str, ...] = ()


def prepare_widget_requests(project_id: int, count: int) -> tuple[str, ...]:
    """Insert count people each with a shown in-app request of the project; their answer tokens, in order.

    The tokens are signed as identify hands them to the widget. Runs in an app context; commits.
    """
    survey_id = default_survey_id(project_id)
    people = db.session.scalars(
        insert(Person).returning(Person.id, sort_by_parameter_order=True),
        [
            {"project_id": project_id, "external_id": f"w-{i}", "properties": {"plan": "pro"}}
            for i in range(count)
        ],
    ).all()
    requests = db.session.scalars(
        insert(SurveyRequest).returning(SurveyRequest.id, sort_by_parameter_order=True),
        [
            {
                "project_id": project_id,
                "survey_id": survey_id,
                "person_id": person_id,
                "channel": "in_app",
                "status": RequestStatus.SENT,
            }
            for person_id in people
        ],
    ).all()
    db.session.commit()
    return tuple(
        tokens.widget_answer_token(project_id, person_id, request_id)
        for person_id, request_id in zip(people, requests, strict=True)
    )


def widget_answer_body(public_key: str, token: str, i: int) -> dict[str, Any]:
    """The i-th prepared answer as widget.js posts it (score i % 11, with the comment's submit)."""
    return {"key": public_key, "token": token, "score": i % 11, "comment": "Nice."}


def _prepare(app: Flask, tree: Tree, widget_requests: int) -> None:
    """Create the tree's three projects: one records responses, one events (one rule), one widget answers."""
    with app.app_context():
        made = create_project(f"Hot responses {tree.name}")
        tree.response_key, tree.response_project = made.secret_key, made.project.id
        made = create_project(f"Hot events {tree.name}")
        tree.event_key, tree.event_project = made.secret_key, made.project.id
        made = create_project(f"Hot widget {tree.name}")
        tree.widget_public_key, tree.widget_project = made.project.public_key, made.project.id
        tree.widget_tokens = prepare_widget_requests(made.project.id, widget_requests)
        db.session.remove()
    client = app.test_client()
    rule = {"event_type": EVENT_TYPE, "channel": "email", "delay_seconds": 0}
    res = client.post("/api/v1/triggers", json=rule, headers={"Authorization": f"Bearer {tree.event_key}"})
    assert res.status_code == 201, res.get_json()


def _event_factory(port: int, secret_key: str, prefix: str) -> loadgen.RequestFactory:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret_key}"}

    def make(i: int) -> bytes:
        body = {
            "id": f"{prefix}-{i}",
            "type": EVENT_TYPE,
            "person": {"external_id": f"{prefix}-{i}", "email": f"{prefix}-{i}@example.com"},
            "properties": {"plan": "pro"},
        }
        return loadgen.http_request(
            "127.0.0.1", port, "POST", "/api/v1/events", json.dumps(body).encode(), headers
        )

    return make


def _answer_factory(port: int, public_key: str, answer_tokens: tuple[str, ...]) -> loadgen.RequestFactory:
    # As widget.js sends it: text/plain (no CORS preflight).
    headers = {"Content-Type": "text/plain"}

    def make(i: int) -> bytes:
        if i >= len(answer_tokens):
            raise RuntimeError("out of prepared widget requests: raise HotPathSizes.widget_requests")
        body = widget_answer_body(public_key, answer_tokens[i], i)
        return loadgen.http_request(
            "127.0.0.1", port, "POST", "/api/widget/answer", json.dumps(body).encode(), headers
        )

    return make


@contextmanager
def _servers(
    trees: list[Tree], env: dict[str, str], raw_env: dict[str, str], model: dict[str, Any]
) -> Iterator[tuple[tuple[int, Any], list[tuple[int, Any]]]]:
    with ExitStack() as stack:
        raw = stack.enter_context(gunicorn("bench.raw_insert_app:app", raw_env, **model))
        services = [stack.enter_context(gunicorn("wsgi:app", env, root=t.root, **model)) for t in trees]
        yield raw, services


def _count(conn: psycopg.Connection[Any], sql: str, *params: Any) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def run(
    url: str,
    app_secret: str,
    instance: str,
    sizes: HotPathSizes,
    workers: int,
    worker_class: str = "gthread",
    threads: int = 4,
    baseline: Path | None = None,
) -> dict[str, Any]:
    """Measure the ceiling and each endpoint of each tree in alternating slices; then SIGKILL and count."""
    trees = [Tree("this", ROOT)] + ([Tree("baseline", baseline)] if baseline else [])
    model = {"workers": workers, "worker_class": worker_class, "threads": threads}
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(CREATE_TABLE)
        raw_before = _count(conn, f"SELECT count(*) FROM {TABLE}")
    with redis_server() as redis_url:
        base = {"SECRET_KEY": app_secret, "INSTANCE_PATH": instance}
        app = create_app({**base, "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url})
        for tree in trees:
            _prepare(app, tree, sizes.widget_requests)
        with app.app_context():
            db.engine.dispose()
        env = {
            **base,
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            # Counted in Redis as in production, never reached: one load generator stands for many clients.
            "API_RATE_LIMIT": str(10**9),
            "WIDGET_RATE_LIMIT": f"{10**9} per minute",
        }
        raw_env = {"RAW_DATABASE_URL": libpq_url(url)}
        c = sizes.concurrency
        counters = {(t.name, e): itertools.count() for t in trees for e in ENDPOINTS}
        raw_ids = itertools.count()
        with _servers(trees, env, raw_env, model) as ((raw_port, raw_proc), services):
            factories: dict[tuple[str, str], tuple[int, loadgen.RequestFactory]] = {}
            for tree, (port, _) in zip(trees, services, strict=True):
                factories[(tree.name, "responses")] = (port, response_factory(port, tree.response_key))
                factories[(tree.name, "events")] = (port, _event_factory(port, tree.event_key, tree.name))
                factories[(tree.name, "widget_answer")] = (
                    port,
                    _answer_factory(port, tree.widget_public_key, tree.widget_tokens),
                )
            raw_factory = response_factory(raw_port, "unused")
            results = {key: loadgen.LoadResult() for key in factories}
            ceiling = loadgen.LoadResult()
            # Warm-up: every worker connects and builds its statements once.
            raw_warm = loadgen.closed_loop("127.0.0.1", raw_port, raw_factory, raw_ids, c, 0.5)
            warm = {
                key: loadgen.closed_loop("127.0.0.1", port, factory, counters[key], c, 0.5)
                for key, (port, factory) in factories.items()
            }
            for _ in range(sizes.rounds):
                for key, (port, factory) in factories.items():
                    ceiling.add(
                        loadgen.closed_loop(
                            "127.0.0.1", raw_port, raw_factory, raw_ids, c, sizes.slice_seconds
                        )
                    )
                    results[key].add(
                        loadgen.closed_loop("127.0.0.1", port, factory, counters[key], c, sizes.slice_seconds)
                    )
            # Durability: SIGKILL every server first, so only what was committed can be counted.
            for _, proc in services:
                kill(proc)
            kill(raw_proc)

    figures: dict[str, Any] = {
        "gunicorn": f"--workers {workers} --worker-class {worker_class} --threads {threads} --backlog 2048",
        "concurrency": c,
        "ceiling_rps": ceiling.throughput,
        "ceiling_p99_ms": ceiling.percentile(99) * 1000,
        "ceiling_non_201": sum(n for s, n in ceiling.statuses.items() if s != 201),
        "trees": {},
    }
    with psycopg.connect(libpq_url(url)) as conn:
        figures["ceiling_rows"] = _count(conn, f"SELECT count(*) FROM {TABLE}") - raw_before
        for tree in trees:
            rows = {
                "responses": _count(
                    conn, "SELECT count(*) FROM responses WHERE project_id = %s", tree.response_project
                ),
                "events": _count(
                    conn, "SELECT count(*) FROM events WHERE project_id = %s", tree.event_project
                ),
                "widget_answer": _count(
                    conn, "SELECT count(*) FROM responses WHERE project_id = %s", tree.widget_project
                ),
            }
            out: dict[str, Any] = {}
            for endpoint in ENDPOINTS:
                result = results[(tree.name, endpoint)]
                ok = result.statuses[EXPECTED_STATUS[endpoint]]
                acknowledged = ok + warm[(tree.name, endpoint)].statuses[EXPECTED_STATUS[endpoint]]
                out[endpoint] = {
                    "rps": result.throughput,
                    "ratio": result.throughput / ceiling.throughput if ceiling.throughput else float("nan"),
                    "p50_ms": result.median * 1000,
                    "p99_ms": result.percentile(99) * 1000,
                    "acknowledged": acknowledged,
                    "failed": sum(n for s, n in result.statuses.items() if s != EXPECTED_STATUS[endpoint]),
                    "rows": rows[endpoint],
                    "durable": rows[endpoint] == acknowledged and acknowledged > 0,
                }
            figures["trees"][tree.name] = {"root": str(tree.root), **out}
    figures["ceiling_acknowledged"] = ceiling.statuses[201] + raw_warm.statuses[201]
    figures["ceiling_durable"] = figures["ceiling_rows"] == figures["ceiling_acknowledged"] > 0
    return figures
