"""Start and stop gunicorn the same way for the service and for the ceiling app."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# gunicorn's own advice for sync workers: (2 x cores) + 1, as a production deployment would run.
DEFAULT_WORKERS = 2 * (os.cpu_count() or 1) + 1


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gunicorn_command(
    target: str, port: int, workers: int, worker_class: str = "sync", threads: int = 1, root: Path = ROOT
) -> list[str]:
    """The one gunicorn configuration every server of a comparison shares: same workers and backlog."""
    return [
        sys.executable, "-m", "gunicorn",
        "--workers", str(workers),
        "--worker-class", worker_class,
        "--threads", str(threads),
        "--bind", f"127.0.0.1:{port}",
        "--backlog", "2048",
        "--chdir", str(root),
        "--log-level", "warning",
        target,
    ]  # fmt: skip


def _wait_answering(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until a worker answers HTTP (the master accepts connections before its workers boot)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode} before answering on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                if sock.recv(5) == b"HTTP/":
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer on {port} within {timeout}s")


@contextmanager
def gunicorn(
    target: str,
    env: dict[str, str],
    workers: int,
    worker_class: str = "sync",
    threads: int = 1,
    root: Path = ROOT,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Run `gunicorn target` (from the checkout `root`) in its own process group; yield its port; kill
    the group at the end."""
    port = free_port()
    proc = subprocess.Popen(
        gunicorn_command(target, port, workers, worker_class, threads, root),
        # The service's per-project API limits would cap the load generator: off unless env sets them.
        env={
            **os.environ,
            "API_RATE_LIMIT": "0",
            "API_EXPORT_RATE_LIMIT": "0",
            **env,
            "PYTHONPATH": str(root),
        },
        cwd=root,
        start_new_session=True,
        # gunicorn.conf.py (picked up from ROOT for every server alike) writes an access log line
        # per request to stdout: still formatted and written, but not into the bench's output.
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_answering(port, proc)
        yield port, proc
    finally:
        kill(proc)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL gunicorn's process group (master and workers): no graceful flush to hide behind."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
