"""In-process profile of POST /api/v1/responses on PostgreSQL: CPU ms and SQL statements per request.

`python -m bench.profile_recording [N] [--cprofile [tottime]] [--endpoint=events|widget_answer]
[--pstats=FILE]` (CPU time by `time.process_time`, not wall time, so other jobs on the machine do not move
it much). `widget_answer` posts POST /api/widget/answer, one prepared shown in-app request per answer, as
bench.hot_paths does.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import secrets
import sys
import tempfile
import time
from typing import Any

from flask_migrate import upgrade
from sqlalchemy import event

from bench.hot_paths import prepare_widget_requests, widget_answer_body
from bench.pg import temporary_database
from survey_service import create_app
from survey_service.extensions import db
from survey_service.services.projects import create_project


def _project(widget_requests: int) -> tuple[str, str, tuple[str, ...]]:
    """Migrate, create the profiled project with its shown widget requests; its keys and answer tokens."""
    upgrade()
    made = create_project("Profile")
    answer_tokens = prepare_widget_requests(made.project.id, widget_requests) if widget_requests else ()
    db.session.remove()
    return made.secret_key, made.project.public_key, answer_tokens


def main(argv: list[str]) -> int:
    """Post N responses (new people) through the Flask test client and print CPU ms and statements."""
    n = int(argv[0]) if argv and argv[0].isdigit() else 500
    with tempfile.TemporaryDirectory() as instance, temporary_database() as url:
        config = {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secrets.token_urlsafe(32)}
        # The profile posts far faster than an integration may: the API rate limit off (0).
        # Events enqueue an RQ job: on BENCH_REDIS_URL / TEST_REDIS_URL when set, else the embedded Redis.
        redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("TEST_REDIS_URL")
        # The widget's limit is counted in Redis as in production, never reached.
        app = create_app(
            {**config, "INSTANCE_PATH": instance, "API_RATE_LIMIT": 0, "REDIS_URL": redis_url}
            | {"WIDGET_RATE_LIMIT": f"{10**9} per minute"}
        )
        endpoint = next((a.split("=", 1)[1] for a in argv if a.startswith("--endpoint=")), "responses")
        with app.app_context():
            # One widget request each for the warm-up (50), the measured n and the one listed.
            key, public_key, answer_tokens = _project(n + 51 if endpoint == "widget_answer" else 0)
            statements: list[str] = []
            event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        if endpoint == "events":
            rule = {"event_type": "profile_event", "channel": "email", "delay_seconds": 0}
            assert client.post("/api/v1/triggers", json=rule, headers=headers).status_code == 201

        def post_event(i: int) -> None:
            body = {
                "id": f"e-{i}",
                "type": "profile_event",
                "person": {"external_id": f"e-{i}", "email": f"e-{i}@example.com"},
            }
            r = client.post("/api/v1/events", json=body, headers=headers)
            assert r.status_code == 202, r.get_data(as_text=True)

        def post_response(i: int) -> None:
            body: dict[str, Any] = {
                "person": {
                    "external_id": f"p-{i}",
                    "email": f"p-{i}@example.com",
                    "properties": {"plan": "pro", "region": "eu", "mrr": i % 50},
                },
                "score": i % 11,
                "comment": "Fast." if i % 3 == 0 else None,
            }
            r = client.post("/api/v1/responses", data=json.dumps(body), headers=headers,
                            content_type="application/json")  # fmt: skip
            assert r.status_code == 201, r.get_data(as_text=True)

        def post_widget_answer(i: int) -> None:
            # As widget.js sends it: text/plain (no CORS preflight). The warm-up's i < 0 take the last tokens.
            body = widget_answer_body(public_key, answer_tokens[i], i)
            r = client.post("/api/widget/answer", data=json.dumps(body), content_type="text/plain")
            assert r.status_code == 200, r.get_data(as_text=True)

        posts = {"events": post_event, "responses": post_response, "widget_answer": post_widget_answer}
        post = posts[endpoint]
        for i in range(50):
            post(-i - 1)
        statements.clear()
        # CPU time, not wall time: waiting on PostgreSQL (or for a CPU on a busy machine) is not counted.
        profiler = cProfile.Profile(time.process_time) if "--cprofile" in argv else None
        cpu = time.process_time()
        if profiler:
            profiler.enable()
        for i in range(n):
            post(i)
        if profiler:
            profiler.disable()
        cpu = time.process_time() - cpu
        per_request = len(statements) / n
        print(f"{n} requests: {cpu / n * 1000:.2f} CPU ms/request, {per_request:.1f} statements/request")
        statements.clear()
        post(n)  # one more, to list its statements
        for s in statements:
            print("   ", " ".join(s.split())[:150])
        if profiler:
            dump = next((a.split("=", 1)[1] for a in argv if a.startswith("--pstats=")), None)
            if dump:
                profiler.dump_stats(dump)
            order = "tottime" if "tottime" in argv else "cumulative"
            pstats.Stats(profiler).sort_stats(order).print_stats(45)
        with app.app_context():
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
