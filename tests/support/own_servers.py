"""Servers a test owns and may stop: a redis-server and a PostgreSQL cluster on free ports.

The shared PostgreSQL and Redis of the machine are never stopped; tests that restart a store
start one of these instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis

from tests.support.env import free_port, unavailable

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


class RedisServer:
    """A redis-server of our own that keeps nothing on disk, so a restart loses every job."""

    def __init__(self, port: int, password: str | None = None) -> None:
        self.port, self.password = port, password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, password=self.password)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


class PostgresCluster:
    """A throw-away PostgreSQL cluster (initdb into a temp dir) on a free port, stoppable at will.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` system user.
    fsync is off: the tests restart the server cleanly (`pg_ctl stop -m fast`), never the machine.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="survey-pg-"))
        if self.user:
            shutil.chown(self.dir, self.user)
        self.data = self.dir / "data"

    def _run(self, *args: str) -> None:
        subprocess.run([str(PG_BIN / args[0]), *args[1:]], check=True, capture_output=True, user=self.user)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        """Stop the server; open sessions are cut (a fast shutdown, as a restart during a deploy)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str) -> str:
        """Create a database; return its SQLAlchemy URL."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def destroy(self) -> None:
        if self.running():
            subprocess.run(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                user=self.user,
            )
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def running_redis(password: str | None = None) -> Iterator[RedisServer]:
    """A redis-server the caller may kill and restart (conftest's own_redis fixture)."""
    if shutil.which("redis-server") is None:
        unavailable("the redis-server binary", FileNotFoundError("redis-server"))
    server = RedisServer(free_port(), password)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@contextmanager
def running_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster the caller may stop and start (conftest's own_postgres fixture)."""
    if not (PG_BIN / "initdb").exists():
        unavailable(f"PostgreSQL server binaries in {PG_BIN} (set PG_BIN)", FileNotFoundError("initdb"))
    cluster = PostgresCluster()
    try:
        cluster.init()
        cluster.start()
    except subprocess.CalledProcessError as exc:
        cluster.destroy()
        unavailable("a PostgreSQL cluster of our own", RuntimeError(exc.stderr.decode(errors="replace")))
    try:
        yield cluster
    finally:
        cluster.destroy()
