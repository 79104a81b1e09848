"""The Dockerfile and docker-compose.yml: checked as files, and the exact commands they run, run here.

No Docker engine is needed: the compose file's migrate, web and worker commands and the image's
HEALTHCHECK run as local processes against the test PostgreSQL and Redis, with the compose file's
environment (its variables mapped to the test's services).
"""

from __future__ import annotations

import gc
import http.client
import json
import os
import re
import runpy
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.support.env import PG_ADMIN_URL, ROOT, free_port

# Runs the compose commands: migrations, gunicorn, workers.
pytestmark = [pytest.mark.process, pytest.mark.slow]

BIN = Path(sys.executable).parent


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def dockerfile() -> dict[str, str]:
    """Each Dockerfile instruction's (last) argument text, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return {line.split(None, 1)[0]: line.split(None, 1)[1] for line in lines}


def test_dockerfile_slim_non_root_one_image_with_healthcheck() -> None:
    instructions = dockerfile()
    # The base is a build argument (a local base where no registry answers), the official slim by default.
    assert instructions["FROM"] == "${BASE_IMAGE}"
    (default,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert re.fullmatch(r"python:3\.1\d-slim", default)
    user = instructions["USER"].split(":")[0]
    assert user not in ("root", "0") and int(user) >= 1000
    assert "/healthz" in instructions["HEALTHCHECK"]
    cmd = yaml.safe_load(instructions["CMD"])  # exec (JSON) form: signals reach gunicorn
    assert cmd == compose()["services"]["web"]["command"]
    assert (ROOT / ".dockerignore").read_text().count(".venv") == 1


def test_compose_services_order_migrations_first_and_use_the_one_image() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "web", "worker"} <= set(services)
    for name in ("migrate", "web", "worker"):
        assert services[name]["build"] == "." and services[name]["image"] == "survey-service:local"
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker"]["healthcheck"]["test"][0] == "CMD"  # not the image's HTTP check
    config_source = (ROOT / "survey_service" / "config.py").read_text() + (
        ROOT / "gunicorn.conf.py"
    ).read_text()
    for variable in services["web"]["environment"]:
        assert f'"{variable}"' in config_source, f"{variable} is set in compose but read nowhere"


def test_gunicorn_builds_the_app_once_and_freezes_it_before_forking() -> None:
    """Workers fork from a master that built the app, so one restarted after max_requests does not build it
    again; what the master built is frozen out of the workers' garbage collection."""
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["preload_app"] is True
    assert settings["max_requests"] > 0  # the guard against slow leaks stays: preloading makes it cheap
    frozen = gc.get_freeze_count()
    try:
        settings["when_ready"](None)
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()


@pytest.fixture
def compose_env(redis_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The compose file's app environment, pointed at a fresh database and the test Redis."""
    name = f"survey_compose_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    declared = compose()["services"]["web"]["environment"]
    local = {
        "SECRET_KEY": "compose-test-secret-7f3a9c2e41b8d605",  # production: 32+ characters
        "SECRET_KEY_FALLBACKS": "",
        "DATABASE_URL": f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}",
        "REDIS_URL": redis_url,
        "BASE_URL": "http://127.0.0.1",
        "SMTP_URL": "",
        "MAIL_FROM": "surveys@localhost",
        "GUNICORN_WORKERS": "1",
        "TRUSTED_PROXY_HOPS": "1",  # compose's proxy is the one hop in front
    }
    try:
        assert set(declared) - {"SURVEY_ENV"} == set(local)
    except AssertionError:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        raise
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "INSTANCE_PATH": str(tmp_path / "instance"),  # the image's ENV
        "SURVEY_ENV": declared["SURVEY_ENV"],
        **local,
    }
    yield env
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def wait_for(predicate: Any, what: str, seconds: float = 90) -> None:
    """Poll until predicate() is true (a start-up wait, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen")


def stop(proc: subprocess.Popen[Any]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def test_compose_commands_migrate_then_serve_healthy_and_work(compose_env: dict[str, str]) -> None:
    services = compose()["services"]
    migrate = subprocess.run(
        services["migrate"]["command"], cwd=ROOT, env=compose_env, capture_output=True, text=True, timeout=180
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]

    port = free_port()
    web_env = {**compose_env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    with (
        subprocess.Popen(services["web"]["command"], cwd=ROOT, env=web_env, stdout=subprocess.DEVNULL) as web,
        subprocess.Popen(
            services["worker"]["command"],
            cwd=ROOT,
            env=compose_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as worker,
    ):
        codes = run_web_and_worker(web, worker, web_env, port, services)
    assert codes == (0, 0)  # SIGTERM: both shut down cleanly (the worker warm)


def run_web_and_worker(
    web: subprocess.Popen[bytes],
    worker: subprocess.Popen[str],
    web_env: dict[str, str],
    port: int,
    services: Any,
) -> tuple[int, int]:
    """Wait for both to serve, run their health checks, stop them; their exit codes."""
    compose_env = {k: v for k, v in web_env.items() if k != "GUNICORN_BIND"}
    try:

        def healthy() -> bool:
            assert web.poll() is None, "gunicorn exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as res:
                    return bool(res.status == 200)
            except OSError:
                return False

        wait_for(healthy, "GET /healthz answering 200")
        # The image's own HEALTHCHECK command, aimed at this port.
        check = (
            dockerfile()["HEALTHCHECK"].split(" CMD ", 1)[1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        )
        assert subprocess.run(shlex.split(check), env=web_env, timeout=30).returncode == 0

        assert worker.stdout is not None
        first_line = worker.stdout.readline()
        assert "worker listening on default" in first_line, first_line
        worker_check = services["worker"]["healthcheck"]["test"][1:]
        assert subprocess.run(worker_check, env=compose_env, timeout=30).returncode == 0
    finally:
        codes = stop(web), stop(worker)
    return codes


# --- Slow clients (sec-outbound): the web server as the image runs it keeps answering ---


class SlowClients:
    """Sockets that send a request line, then one header byte at a time, and never finish the request."""

    def __init__(self, port: int, count: int, every: float = 0.3) -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
        for sock in self.socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        self.dripped = [0] * count
        self.broken: set[int] = set()
        self.stop = threading.Event()
        self.every = every
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()

    def _drip(self) -> None:
        while not self.stop.wait(self.every):
            for i, sock in enumerate(self.socks):
                try:
                    sock.sendall(b"a")
                    self.dripped[i] += 1
                except OSError:
                    self.broken.add(i)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for sock in self.socks:
            sock.close()


def test_gunicorn_as_the_image_runs_it_answers_healthz_while_slow_clients_drip(
    compose_env: dict[str, str],
) -> None:
    workers = 2
    port = free_port()
    web_env = {**compose_env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
    command = compose()["services"]["web"]["command"]  # the image's CMD too
    with subprocess.Popen(
        command, cwd=ROOT, env=web_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as web:
        try:

            def healthz() -> int:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as res:
                    return int(res.status)

            def up() -> bool:
                assert web.poll() is None, "gunicorn exited"
                try:
                    return healthz() == 200
                except OSError:
                    return False

            wait_for(up, "GET /healthz answering 200")
            # Two slow sockets per worker: with sync workers, /healthz then waited for the worker timeout.
            slow = SlowClients(port, count=2 * workers)
            try:
                wait_for(lambda: min(slow.dripped) >= 5, "the slow clients dripping", seconds=60)
                assert healthz() == 200
                assert healthz() == 200
                dripped = list(slow.dripped)
                wait_for(
                    lambda: all(now > then for now, then in zip(slow.dripped, dripped, strict=True)),
                    "the slow clients still dripping",
                    seconds=30,
                )
                assert not slow.broken  # they were still connected, still holding what they held
            finally:
                slow.close()
        finally:
            stop(web)


@pytest.mark.parametrize(
    ("connections", "keeps_alive"), [(None, False), ("16", True)], ids=["default", "room"]
)
def test_gunicorn_takes_no_more_connections_than_threads_and_keeps_alive_only_with_room(
    compose_env: dict[str, str], connections: str | None, keeps_alive: bool
) -> None:
    """gunicorn.conf.py's on_starting caps a worker's connections at its threads (the tail-latency choice
    of bench/README.md), which leaves no slot for keep-alive: off, unless GUNICORN_WORKER_CONNECTIONS
    makes room."""
    port = free_port()
    web_env = {**compose_env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1"}
    if connections:
        web_env["GUNICORN_WORKER_CONNECTIONS"] = connections
    command = compose()["services"]["web"]["command"]  # the image's CMD too
    with subprocess.Popen(
        command, cwd=ROOT, env=web_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as web:
        try:

            def healthz_connection_header() -> str:
                # http.client asks for keep-alive (HTTP/1.1); urllib would ask to close.
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    connection.request("GET", "/healthz")
                    res = connection.getresponse()
                    res.read()
                    assert res.status == 200
                    return str(res.getheader("Connection", "")).lower()
                finally:
                    connection.close()

            def up() -> bool:
                assert web.poll() is None, "gunicorn exited"
                try:
                    healthz_connection_header()
                    return True
                except OSError:
                    return False

            wait_for(up, "GET /healthz answering 200")
            assert (healthz_connection_header() != "close") is keeps_alive
        finally:
            stop(web)
        assert web.stderr is not None
        assert "No keepalived connections" not in web.stderr.read()  # no warning at every start


def test_compose_puts_a_buffering_proxy_in_front_and_runs_webhooks_on_their_own_worker() -> None:
    services = compose()["services"]
    assert "ports" not in services["web"]  # gunicorn is reached through the proxy only
    proxy = services["proxy"]
    assert proxy["ports"] == ["8000:8080"] and proxy["build"] == "./deploy/nginx"
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    conf = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    for directive in (
        "listen 8080;",
        "server web:8000;",
        "client_header_timeout 10s;",  # the whole request head
        "client_body_timeout 10s;",
        "send_timeout 30s;",
        "proxy_request_buffering on;",  # gunicorn gets whole requests only
        "proxy_buffering on;",
        "proxy_set_header X-Forwarded-For $remote_addr;",  # replaced: a client cannot forge a hop
        "access_log off;",  # query strings carry signed tokens
    ):
        assert directive in conf, directive
    image = (ROOT / "deploy" / "nginx" / "Dockerfile").read_text()
    assert "apt-get install -y --no-install-recommends nginx" in image and "USER www-data" in image
    assert services["worker"]["command"] == ["survey-service", "worker", "--queue", "default"]
    assert services["webhook-worker"]["command"] == ["survey-service", "worker", "--queue", "webhooks"]
    assert services["webhook-worker"]["healthcheck"] == services["worker"]["healthcheck"]


# Run from an installed wheel only: the checkout is not on sys.path (cwd is elsewhere, PYTHONPATH is the
# install target), so the widget script and the migrations must come from inside the package.
FROM_THE_WHEEL = """
import json, sys
from pathlib import Path
import flask_migrate
from sqlalchemy import text
import survey_service
from survey_service import create_app
from survey_service.extensions import MIGRATIONS_DIR, db
from survey_service.widget import views

app = create_app({"TESTING": True, "SECRET_KEY": "k" * 40, "SQLALCHEMY_DATABASE_URI": sys.argv[1]})
client = app.test_client()
res = client.get("/widget.js")
with app.app_context():
    flask_migrate.upgrade()
    version = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
print(json.dumps({
    "package": survey_service.__file__,
    "widget_dir": str(views.WIDGET_DIR),
    "migrations_dir": MIGRATIONS_DIR,
    "status": res.status_code,
    "content_type": res.headers["Content-Type"],
    "body": res.get_data(as_text=True),
    "expected": views.minify(Path(views.PACKAGED_DIR, "widget.js").read_bytes()).decode(),
    "version": version,
}))
"""


def test_a_wheel_carries_the_widget_script_and_migrations_and_serves_them_installed(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: the build's build/ and egg-info stay out of the checkout
    for name in ("survey_service", "widget", "migrations"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("survey_service-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert (
            archive.read("survey_service/widget/static/widget.js")
            == (ROOT / "widget" / "widget.js").read_bytes()
        )
    assert {"survey_service/widget/static/demo.js", "survey_service/widget/static/demo.css"} <= names
    assert "survey_service/widget/static/build.py" not in names  # the build step is not shipped
    versions = {p.name for p in (ROOT / "migrations" / "versions").glob("*.py")}
    assert {"survey_service/migrations/env.py", "survey_service/migrations/alembic.ini"} <= names
    assert {f"survey_service/migrations/versions/{v}" for v in versions} <= names

    target = tmp_path / "site"
    installed = subprocess.run(
        [*pip, "install", "--no-deps", "--no-compile", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FLASK_APP")}
    env["PYTHONPATH"] = str(target)
    env["INSTANCE_PATH"] = str(tmp_path / "instance")
    run = subprocess.run(
        [sys.executable, "-c", FROM_THE_WHEEL, f"sqlite:///{tmp_path / 'wheel.db'}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(seen["package"]).is_relative_to(target)
    assert Path(seen["widget_dir"]) == target / "survey_service" / "widget" / "static"
    assert Path(seen["migrations_dir"]) == target / "survey_service" / "migrations"
    assert seen["status"] == 200 and seen["content_type"].startswith("application/javascript")
    assert seen["body"] == seen["expected"] and len(seen["body"]) > 1000
    revisions = {
        match.group(1)
        for path in (ROOT / "migrations" / "versions").glob("*.py")
        for match in re.finditer(r"^revision\b[^=]*= *[\"']([^\"']+)", path.read_text(), re.M)
    }
    assert seen["version"] in revisions  # upgraded by the migrations inside the installed package


def test_the_image_installs_the_package_normally_and_runs_without_its_sources() -> None:
    run = dockerfile()["RUN"]
    assert "pip install ." in run and "pip install -e" not in run
    assert "rm -rf survey_service widget migrations" in run
