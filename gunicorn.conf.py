"""Production defaults for `gunicorn wsgi:app`; every value can be overridden by GUNICORN_* env vars."""

import multiprocessing
import os

from survey_service.core.log_redaction import install_log_redaction

# Survey, unsubscribe and open-pixel links carry their token in the path (/s/<token>, /u/<token>,
# /o/<token>.gif): every log record of this process, the access log included, has it replaced by [redacted].
install_log_redaction()

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# One threaded worker per CPU (at least 2), not gunicorn's `2 x CPUs + 1` for sync workers: the threads
# give the concurrency, and on 2 CPUs 2 x 8 served the hot paths at 0.51-0.56 of the raw-insert ceiling
# with a p99 of 81-82 ms where 5 x 8 gave 0.48-0.51 and 118-138 ms (bench/README.md, "Fifth pass").
workers = int(os.environ.get("GUNICORN_WORKERS", max(2, multiprocessing.cpu_count())))
# Threaded workers, not sync: a sync worker reading a request that arrives a byte at a time serves nobody
# else until its timeout kills it, so a few slow sockets took /healthz down. Here an idle connection
# waits in the worker's poller and a slow one holds one thread of `threads`; clients that are slow on
# purpose, in numbers, are what the buffering proxy in front (nginx in docker-compose.yml) absorbs.
# Measured against sync workers (5 and 8) and other worker x thread counts at 32 connections (bench/README.md,
# "The worker model"): no model gave more throughput beyond the run-to-run spread, so this one stays.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# A worker takes no more connections at once than it has threads: the others wait in the kernel's accept
# queue for whichever worker is free, as with sync workers, instead of queueing in a worker's thread pool
# while another worker idles. Measured with 32 clients on 2 CPUs (bench/README.md, "Hot paths"): the same
# throughput, p99 85 instead of 110-150 ms. It leaves no slot to keep an idle connection open in, so
# keep-alive is off unless GUNICORN_WORKER_CONNECTIONS makes room (the proxy in front keeps the
# clients' connections open; it reaches gunicorn without keep-alive anyway).
_worker_connections = os.environ.get("GUNICORN_WORKER_CONNECTIONS", "").strip()
keepalive = 5


max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
errorlog = "-"
# Never log query strings (signed tokens travel in them); the path's tokens are redacted (see above).
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Build the app once in the master and fork workers from it: a worker restarted by max_requests starts in
# milliseconds instead of importing and building the app again (about 1 s of CPU per restart, taken from the
# requests being served; at 200 requests/s, 5 workers restart every 25 s on average). create_app opens no
# connection and starts no thread, so nothing is shared across the fork. The price: new code needs a restart
# of gunicorn, not a HUP.
preload_app = True


def when_ready(server):
    """Freeze what the master has built before any fork: a worker's garbage collector then never walks the
    app's objects, and leaves their memory pages shared with the master instead of copying them."""
    import gc

    gc.collect()
    gc.freeze()


def on_starting(server):
    """Cap each worker's connections at its threads (however threads was set: env, file or --threads)."""
    connections = int(_worker_connections) if _worker_connections else server.cfg.threads
    server.cfg.set("worker_connections", connections)
    if connections <= server.cfg.threads:
        server.cfg.set("keepalive", 0)
