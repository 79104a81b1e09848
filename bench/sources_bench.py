"""Event sources against the server API: lifecycle events delivered through a source's URL (signed as the
provider signs them) vs the same events posted to `POST /api/v1/events`, alternating on one gunicorn.

    .venv/bin/python -m bench.sources_bench [--seconds 20] [--rounds 5] [--concurrency 8] [--workers N]

Both sides record one new person and one event of the same type with one email rule (delay 0), so each
accepted event is a committed send request plus an RQ job. The source side also verifies the signature
(Segment: HMAC-SHA1; Stripe: HMAC-SHA256 over `t.body`) and writes its delivery log line in the same
transaction. The figure is source events/s ÷ API events/s (goal ≥ 0.8), on PostgreSQL with a throw-away
Redis, in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import secrets
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from flask_migrate import upgrade

from bench import loadgen
from bench.lifecycle import redis_server
from bench.pg import temporary_database
from bench.servers import gunicorn, kill
from survey_service import create_app
from survey_service.extensions import db
from survey_service.services.projects import create_project

EVENT_TYPE = "bench_event"


@dataclass(frozen=True)
class Sizes:
    seconds: float = 20.0  # per side, split in `rounds` slices
    rounds: int = 5
    concurrency: int = 8


def _api_factory(port: int, secret_key: str) -> loadgen.RequestFactory:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret_key}"}

    def make(i: int) -> bytes:
        body = {"id": f"api-{i}", "type": EVENT_TYPE, "person": {"email": f"api-{i}@example.com"}}
        return loadgen.http_request(
            "127.0.0.1", port, "POST", "/api/v1/events", json.dumps(body).encode(), headers
        )

    return make


def _segment_factory(port: int, path: str, secret: str) -> loadgen.RequestFactory:
    def make(i: int) -> bytes:
        message = {
            "type": "track",
            "event": "Bench Event",
            "messageId": f"seg-{i}",
            "userId": f"seg-user-{i}",
            "context": {"traits": {"email": f"seg-{i}@example.com"}},
            "properties": {"plan": "pro"},
            "timestamp": "2026-01-05T10:00:00Z",
        }
        body = json.dumps(message).encode()
        signature = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
        headers = {"Content-Type": "application/json", "X-Signature": signature}
        return loadgen.http_request("127.0.0.1", port, "POST", path, body, headers)

    return make


def _stripe_factory(port: int, path: str, secret: str) -> loadgen.RequestFactory:
    def make(i: int) -> bytes:
        event = {
            "id": f"evt_bench_{i}",
            "object": "event",
            "type": "customer.subscription.created",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": f"sub_{i}",
                    "object": "subscription",
                    "customer": {"id": f"cus_{i}", "object": "customer", "email": f"stripe-{i}@example.com"},
                    "status": "active",
                    "plan": {"id": "price_pro", "amount": 2900},
                }
            },
        }
        body = json.dumps(event).encode()
        stamp = str(int(time.time()))
        signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "Stripe-Signature": f"t={stamp},v1={signature}"}
        return loadgen.http_request("127.0.0.1", port, "POST", path, body, headers)

    return make


def _setup(app: Any) -> dict[str, Any]:
    """A project with one email rule (delay 0) for EVENT_TYPE, a Segment and a Stripe source."""
    with app.app_context():
        key = create_project("Bench sources").secret_key
    client, auth = app.test_client(), {"Authorization": f"Bearer {key}"}
    for event_type in (EVENT_TYPE, "signed_up"):
        rule = {"event_type": event_type, "channel": "email", "delay_seconds": 0}
        assert client.post("/api/v1/triggers", json=rule, headers=auth).status_code == 201
    found: dict[str, Any] = {"key": key}
    for kind, body in (
        ("segment", {"kind": "segment", "mapping": {"events": {"Bench Event": EVENT_TYPE}}}),
        ("stripe", {"kind": "stripe", "signing_secret": "whsec_" + secrets.token_urlsafe(24)}),
    ):
        created = client.post("/api/v1/sources", json=body, headers=auth).get_json()
        found[kind] = ("/sources/" + created["url"].rsplit("/", 1)[1], created["signing_secret"])
    return found


def run(sizes: Sizes, workers: int) -> dict[str, Any]:
    """Alternate closed-loop slices: API events, Segment deliveries, Stripe deliveries."""
    app_secret = secrets.token_urlsafe(32)
    with (
        tempfile.TemporaryDirectory(prefix="bench-instance-") as instance,
        temporary_database() as url,
        redis_server() as redis_url,
    ):
        base = {"SECRET_KEY": app_secret, "INSTANCE_PATH": instance}
        app = create_app({**base, "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url})
        with app.app_context():
            upgrade()
        setup = _setup(app)
        with app.app_context():
            db.engine.dispose()
        env = {**base, "DATABASE_URL": url, "REDIS_URL": redis_url, "SOURCE_RATE_LIMIT": "0"}
        with gunicorn("wsgi:app", env, workers) as (port, proc):
            sides = {
                "api": _api_factory(port, setup["key"]),
                "segment": _segment_factory(port, *setup["segment"]),
                "stripe": _stripe_factory(port, *setup["stripe"]),
            }
            counters = {name: itertools.count() for name in sides}
            results = {name: loadgen.LoadResult() for name in sides}
            for name, factory in sides.items():  # warm-up
                loadgen.closed_loop("127.0.0.1", port, factory, counters[name], sizes.concurrency, 0.3)
            for _ in range(sizes.rounds):
                for name, factory in sides.items():
                    results[name].add(
                        loadgen.closed_loop(
                            "127.0.0.1",
                            port,
                            factory,
                            counters[name],
                            sizes.concurrency,
                            sizes.seconds / sizes.rounds,
                        )
                    )
            kill(proc)
    api = results["api"].throughput
    figures: dict[str, Any] = {"api_events_rps": api, "workers": workers, "concurrency": sizes.concurrency}
    for name in ("segment", "stripe"):
        figures[f"{name}_rps"] = results[name].throughput
        figures[f"{name}_ratio"] = results[name].throughput / api
        figures[f"{name}_non_200"] = sum(n for s, n in results[name].statuses.items() if s != 200)
    figures["api_non_202"] = sum(n for s, n in results["api"].statuses.items() if s != 202)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=Sizes.seconds)
    parser.add_argument("--rounds", type=int, default=Sizes.rounds)
    parser.add_argument("--concurrency", type=int, default=Sizes.concurrency)
    parser.add_argument("--workers", type=int, default=5)
    args = parser.parse_args()
    figures = run(Sizes(args.seconds, args.rounds, args.concurrency), args.workers)
    print(json.dumps(figures, indent=2))
    for name in ("segment", "stripe"):
        print(
            f"{name}: {figures[f'{name}_rps']:.0f} events/s through a source vs "
            f"{figures['api_events_rps']:.0f}/s on /api/v1/events: "
            f"ratio {figures[f'{name}_ratio']:.2f} (goal >= 0.8)"
        )


if __name__ == "__main__":
    main()
