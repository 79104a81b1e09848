"""The Docker image, built and run: migrate, web and worker containers against PostgreSQL and Redis.

Needs a Docker engine. Without Debian's docker.io (no `dockerd`, no engine answering) the test skips,
also under CI=true. With dockerd installed and no engine answering, the test starts one of its own for
the module (root only; `--iptables=false --bridge=none`: it touches no firewall rule and no route, the
containers use the host's network) and stops it afterwards; when that fails, it skips, failing under
CI=true. A build that fails is a failure everywhere.

The base image is built from Debian's packages (deploy/docker/local-base.sh: debootstrap, then
`docker import`) when its tag is missing, so nothing is pulled from a registry; the tag is kept, so
later runs skip that step. SURVEY_DOCKER_BASE names another base (e.g. python:3.11-slim where a registry
answers). pip inside the build gets this machine's index settings (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL,
PIP_TRUSTED_HOST) and CA bundle (PIP_CERT) as build arguments.
The proxy image (deploy/nginx/, compose's `proxy`) is built on the same base and its config checked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from tests.support.env import PG_ADMIN_URL, REDIS_URL, ROOT, free_port, unavailable, wait_for
from tests.support.mail import smtp_server

pytestmark = [pytest.mark.process, pytest.mark.slow]

BASE_IMAGE = os.environ.get("SURVEY_DOCKER_BASE", "survey-base:bookworm")
IMAGE = "survey-service:test"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SECRET_KEY = "docker-test-secret-5b1e8f0c7a9d2e46"  # production: 32+ characters


def run(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def engine_answers(env: dict[str, str]) -> bool:
    try:
        return run(["docker", "info"], env, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def docker_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment for `docker` commands that reach a running engine (ours if none ran)."""
    env = dict(os.environ)
    dockerd = shutil.which("dockerd")
    if shutil.which("docker") is None or (dockerd is None and not engine_answers(env)):
        pytest.skip("no Docker engine: Debian's docker.io is not installed (apt-get install docker.io)")
    if engine_answers(env):
        yield env
        return
    assert dockerd is not None
    if os.geteuid() != 0:
        unavailable("a Docker engine", PermissionError("dockerd is installed but not running, and not root"))
    # Our own engine: no iptables rules, no bridge (containers use --network host), its own socket.
    state = tmp_path_factory.mktemp("dockerd")
    env["DOCKER_HOST"] = f"unix://{state / 'docker.sock'}"
    log = (state / "dockerd.log").open("w")
    daemon = subprocess.Popen(
        [
            dockerd,
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            f"--host={env['DOCKER_HOST']}",
            f"--pidfile={state / 'dockerd.pid'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_for(lambda: daemon.poll() is not None or engine_answers(env), "dockerd answering", 120)
        except AssertionError as exc:
            unavailable("the Docker engine started by this test", exc)
        if daemon.poll() is not None:
            tail = (state / "dockerd.log").read_text()[-1500:]
            unavailable("the Docker engine started by this test", RuntimeError(tail))
        yield env
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=120)
        log.close()


def pip_build_args() -> list[str]:
    """This machine's pip index settings and CA bundle, as build arguments (only those set here)."""
    settings = {name: os.environ.get(name, "") for name in ("PIP_INDEX_URL", "PIP_TRUSTED_HOST")}
    extra = [u for u in os.environ.get("PIP_EXTRA_INDEX_URL", "").split() if not u.startswith("file:")]
    settings["PIP_EXTRA_INDEX_URL"] = " ".join(extra)  # local folders are not in the build
    if Path(CA_BUNDLE).exists() and BASE_IMAGE == "survey-base:bookworm":  # the base carries this bundle
        settings["PIP_CERT"] = CA_BUNDLE
    return [arg for name, value in settings.items() if value for arg in ("--build-arg", f"{name}={value}")]


def require_base(docker_env: dict[str, str]) -> None:
    """The base image on the engine: the local Debian base is built when its tag is missing."""
    if run(["docker", "image", "inspect", BASE_IMAGE], docker_env).returncode != 0:
        if BASE_IMAGE != "survey-base:bookworm":
            pytest.fail(f"SURVEY_DOCKER_BASE={BASE_IMAGE} is not an image on this engine")
        if shutil.which("debootstrap") is None:
            unavailable(
                "debootstrap", FileNotFoundError("debootstrap"), install="apt-get install debootstrap"
            )
        base = run([str(ROOT / "deploy" / "docker" / "local-base.sh"), BASE_IMAGE], docker_env, timeout=1200)
        assert base.returncode == 0, (
            f"building the local base failed:\n{base.stdout[-2000:]}{base.stderr[-3000:]}"
        )


@pytest.fixture(scope="module")
def image(docker_env: dict[str, str]) -> str:
    """The project's image, built from the Dockerfile on the base."""
    require_base(docker_env)
    build = run(
        [
            *("docker", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"),
            *pip_build_args(),
            *("-t", IMAGE, str(ROOT)),
        ],
        docker_env,
        timeout=1200,
    )
    assert build.returncode == 0, f"docker build failed:\n{build.stdout[-3000:]}{build.stderr[-3000:]}"
    return IMAGE


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; its URL as the containers reach it (host network)."""
    name = f"survey_docker_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {PG_ADMIN_URL}", exc)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def clean_redis() -> str:
    """This run's Redis database, emptied (no job of another test reaches the container's worker)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL}", exc)
    return REDIS_URL


class Containers:
    """Containers started on the host's network, removed at the end; their logs for failure messages."""

    def __init__(self, image: str, env: dict[str, str], app_env: dict[str, str]) -> None:
        self.image, self.env, self.names = image, env, list[str]()
        self.app_env = [arg for key, value in app_env.items() for arg in ("-e", f"{key}={value}")]

    def once(self, *command: str) -> subprocess.CompletedProcess[str]:
        return run(
            ["docker", "run", "--rm", "--network", "host", *self.app_env, self.image, *command], self.env
        )

    def start(self, role: str, *command: str, extra: tuple[str, ...] = ()) -> str:
        name = f"survey-test-{role}-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        args = ["docker", "run", "-d", "--name", name, "--network", "host", *self.app_env, *extra]
        started = run([*args, self.image, *command], self.env)
        assert started.returncode == 0, started.stderr
        return name

    def running(self, name: str) -> bool:
        state = run(["docker", "inspect", "-f", "{{.State.Running}}", name], self.env)
        return state.stdout.strip() == "true"

    def logs(self) -> str:
        out = [f"--- {n}\n{run(['docker', 'logs', '--tail', '40', n], self.env).stderr}" for n in self.names]
        return "\n".join(out)

    def remove(self) -> None:
        if self.names:
            run(["docker", "rm", "-f", "-v", *self.names], self.env, timeout=120)


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as res:
            return int(res.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_the_image_migrates_serves_healthz_and_sends_a_survey_email(
    image: str, docker_env: dict[str, str], database: str, clean_redis: str
) -> None:
    port = free_port()
    with smtp_server() as (sink, smtp_url):
        app_env = {
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": database,
            "REDIS_URL": clean_redis,
            "BASE_URL": f"http://127.0.0.1:{port}",
            "SMTP_URL": smtp_url,
            "MAIL_FROM": "surveys@localhost",
            "GUNICORN_WORKERS": "1",
        }
        containers = Containers(image, docker_env, app_env)
        try:
            migrate = containers.once("survey-service", "db", "upgrade")
            assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-3000:]
            created = containers.once("survey-service", "create-project", "Docker")
            assert created.returncode == 0, created.stderr[-3000:]
            project = json.loads(created.stdout.strip().splitlines()[-1])

            web = containers.start("web", extra=("-e", f"GUNICORN_BIND=127.0.0.1:{port}"))  # the image's CMD
            worker = containers.start("worker", "survey-service", "worker", "--queue", "default")

            def healthy() -> bool:
                assert containers.running(web), "the web container stopped:\n" + containers.logs()
                return http_status(f"http://127.0.0.1:{port}/healthz") == 200

            wait_for(healthy, "GET /healthz answering 200 from the web container", seconds=180)

            address = "docker-test@example.com"
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/survey_requests",
                data=json.dumps({"person": {"email": address}}).encode(),
                headers={
                    "Authorization": f"Bearer {project['secret_key']}",
                    "Content-Type": "application/json",
                },
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as res:
                assert res.status == 201

            def delivered() -> bool:
                assert containers.running(worker), "the worker container stopped:\n" + containers.logs()
                return bool(sink.messages)

            try:
                wait_for(delivered, "the survey email reaching the SMTP sink", seconds=180)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{containers.logs()}") from exc
            (message,) = sink.messages
            assert sink.envelopes[0][1] == [address]
            assert message["To"] == address
            assert f"http://127.0.0.1:{port}/" in message.as_string()  # the score links, on BASE_URL
        finally:
            containers.remove()


def test_the_proxy_image_builds_on_the_same_base_and_its_nginx_config_loads(
    docker_env: dict[str, str],
) -> None:
    """deploy/nginx/Dockerfile (compose's proxy) on the same base: Debian's nginx, the config valid."""
    require_base(docker_env)
    tag = "survey-service-proxy:test"
    build = run(
        [
            *("docker", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"),
            *("-t", tag, str(ROOT / "deploy" / "nginx")),
        ],
        docker_env,
        timeout=1200,
    )
    assert build.returncode == 0, f"docker build failed:\n{build.stdout[-3000:]}{build.stderr[-3000:]}"
    # `web` is compose's service name; here it resolves to this host, where nothing needs to listen.
    checked = run(
        ["docker", "run", "--rm", "--network", "host", "--add-host", "web:127.0.0.1", tag, "nginx", "-t"],
        docker_env,
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr
    healthcheck = run(["docker", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", tag], docker_env)
    assert json.loads(healthcheck.stdout)[1].startswith("python3 -c")  # python3: on every base
