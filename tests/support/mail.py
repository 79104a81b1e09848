"""Test helpers of the email channel: an in-process SMTP server, a TLS cert, empty Redis, worker burst."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask

from survey_service.cli import AppWorker
from survey_service.extensions import queues
from survey_service.mail.smtp import close_sessions
from survey_service.services import outbox
from tests.support.env import free_port


@dataclass
class SmtpSink:
    """An aiosmtpd handler that keeps every accepted message and can refuse recipients."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    rcpt_replies: list[str] = field(default_factory=list)  # consumed one per RCPT, then 250
    # Break the connection (as a crashing or restarting server does) at these RCPT commands, counted
    # from 1 over the sink's life: before any message could be accepted.
    drop_at_rcpt: set[int] = field(default_factory=set)
    # Keep the message, then break the connection before answering, at these DATA commands: the
    # client cannot know the message was accepted.
    drop_after_data: set[int] = field(default_factory=set)
    rcpts: int = 0
    datas: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.rcpts += 1
        if self.rcpts in self.drop_at_rcpt:
            server.transport.close()
            return "421 4.3.0 going away"
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.datas += 1
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        if self.datas in self.drop_after_data:
            server.transport.close()
        return "250 Message accepted for delivery"


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost/127.0.0.1 and its key, generated now (cryptography)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = getattr(auth_data, "login", None) == b"mailer" and getattr(auth_data, "password", None) == b"s3cret"
    return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(mode: str = "plain", cert_dir: Path | None = None) -> Iterator[tuple[SmtpSink, str]]:
    """Run a real SMTP server in this process; yields the sink and the SMTP_URL to reach it."""
    sink = SmtpSink()
    port = free_port()
    kwargs: dict[str, Any] = {}
    url = f"smtp://127.0.0.1:{port}"
    if mode in ("starttls", "smtps"):
        assert cert_dir is not None
        cert, key = self_signed_cert(cert_dir)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        if mode == "starttls":
            kwargs = {"tls_context": context, "require_starttls": True, "authenticator": _authenticator}
            kwargs["auth_required"] = True
            url = f"smtp+starttls://mailer:s3cret@127.0.0.1:{port}?cafile={cert}"
        else:
            kwargs = {"ssl_context": context}
            url = f"smtps://127.0.0.1:{port}?cafile={cert}"
    controller = Controller(sink, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield sink, url
    finally:
        close_sessions()  # this process's pooled SMTP connection (sends in the test process) first
        controller.stop()


def flush_redis(app: Flask) -> None:
    """Empty this run's Redis database (the number given by TEST_REDIS_URL)."""
    with app.app_context():
        connection: redis.Redis = queues().redis
        connection.flushdb()


def run_worker_burst(app: Flask) -> None:
    """Run the app's RQ worker (AppWorker: jobs run in this process; scheduler on) until the queue empties.

    First the wake-ups of due emails the test's requests handed this process's thread are made."""
    assert outbox.settle_wakes()
    with app.app_context():
        handle = queues()
        worker = AppWorker([handle.queue()], connection=handle.redis)
        worker.app = app
        worker.work(burst=True, with_scheduler=True)
