"""In-process profile of POST /api/widget/identify on PostgreSQL: CPU ms and SQL statements per identify.

`python -m bench.profile_identify [N] [--cprofile [tottime]] [--changed]`

Seeds the widget benchmark's project (people in every eligibility state), then identifies N random
known users through the Flask test client, the same user ids again and again as page views do.
CPU is `time.process_time` of this process (the web tier's share; PostgreSQL's is not in it), so other
jobs on the machine move it far less than wall time. `--changed` sends a new property value every
time (the write path) instead of the usual unchanged identify. The rate limiter counts in Redis, as in
production, when BENCH_REDIS_URL or TEST_REDIS_URL names one (under a key prefix of its own, removed
afterwards); otherwise in memory.
"""

from __future__ import annotations

import cProfile
import itertools
import json
import os
import pstats
import random
import secrets
import sys
import tempfile
import time
from collections import Counter

import redis
from sqlalchemy import event

from bench.pg import temporary_database
from bench.widget_bench import seed
from survey_service import create_app
from survey_service.core import keys
from survey_service.extensions import db


def main(argv: list[str]) -> int:
    """Identify N known users through the Flask test client; print CPU ms and statements per identify."""
    n = int(argv[0]) if argv and argv[0].isdigit() else 2000
    changed = "--changed" in argv
    random.seed(5)
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("TEST_REDIS_URL")
    prefix = f"profile-identify-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory() as instance, temporary_database() as url:
        config = {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secrets.token_urlsafe(32),
                  "REDIS_URL": redis_url, "RATELIMIT_KEY_PREFIX": prefix}  # fmt: skip
        app = create_app({**config, "INSTANCE_PATH": instance, "WIDGET_RATE_LIMIT": "1000000 per minute"})
        project, ids = seed(app, 4000)
        with app.app_context():
            statements: list[str] = []
            event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        client = app.test_client()
        secret = project["identity_secret"]
        users = random.sample(ids, 1000)
        hashes = {uid: keys.user_hash(secret, uid) for uid in users}
        statuses: Counter[int] = Counter()
        reasons: Counter[str] = Counter()
        views = itertools.count()

        def identify(i: int) -> None:
            uid = users[i % len(users)]
            user: dict[str, object] = {"id": uid, "user_hash": hashes[uid]}
            if changed:
                user["properties"] = {"seen": next(views)}
            body = json.dumps({"key": project["public_key"], "user": user})
            r = client.post("/api/widget/identify", data=body, content_type="text/plain")
            statuses[r.status_code] += 1
            reasons[str((r.get_json() or {}).get("reason"))] += 1

        for i in range(len(users)):  # every user once: shown surveys are marked, caches warm
            identify(i)
        statements.clear()
        statuses.clear()
        reasons.clear()
        profiler = cProfile.Profile(time.process_time) if "--cprofile" in argv else None
        cpu = time.process_time()
        if profiler:
            profiler.enable()
        for i in range(n):
            identify(i)
        if profiler:
            profiler.disable()
        cpu = time.process_time() - cpu
        per = f"{cpu / n * 1000:.3f} CPU ms/identify, {len(statements) / n:.2f} statements/identify"
        per += f", limiter in {'Redis' if redis_url else 'memory'}"
        print(f"{n} identifies: {per}, statuses {dict(statuses)}, reasons {dict(reasons)}")
        for s, c in Counter(" ".join(s.split())[:110] for s in statements).most_common(8):
            print(f"   {c / n:5.2f}x  {s}")
        if profiler:
            order = "tottime" if "tottime" in argv else "cumulative"
            pstats.Stats(profiler).sort_stats(order).print_stats(40)
        with app.app_context():
            db.engine.dispose()
        if redis_url:
            conn = redis.Redis.from_url(redis_url)
            for key in conn.scan_iter(f"{prefix}*"):
                conn.delete(key)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
