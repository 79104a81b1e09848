"""SMTP delivery from SMTP_URL (smtp://, smtp+starttls://, smtps://), with failures sorted for retry.

`deliver` sends one message on a connection of its own (alerts, password resets); survey sends go
through `pooled_session`: one connection per worker process, kept open across messages.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class DeliveryError(Exception):
    """Delivery failed; permanent failures are not retried, bounce says the recipient was refused.

    recipient: the server refused this recipient only (the next message may go through).
    maybe_accepted: the connection broke after the whole message was handed over, so the server may
    have taken it (sending it again could deliver it twice).
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        bounce: bool = False,
        recipient: bool = False,
        maybe_accepted: bool = False,
    ) -> None:
        super().__init__(message)
        self.permanent, self.bounce = permanent, bounce
        self.recipient, self.maybe_accepted = recipient, maybe_accepted


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to connect, parsed from SMTP_URL."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    cafile: str | None
    verify: bool
    timeout: float

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying TLS context (system CAs, or ?cafile=); ?verify=false turns verification off."""
        context = ssl.create_default_context(cafile=self.cafile)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def parse_smtp_url(url: str) -> SmtpSettings:
    """Parse smtp[s|+starttls]://user:pass@host:port?cafile=…&verify=false&timeout=…"""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://, smtp+starttls:// or smtps://user:pass@host:port")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return SmtpSettings(
        scheme=scheme,
        host=parts.hostname,
        port=parts.port or SCHEMES[scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        cafile=query.get("cafile"),
        verify=query.get("verify", "true").lower() not in ("0", "false", "no"),
        timeout=float(query.get("timeout", "30")),
    )


def _classify(exc: Exception) -> DeliveryError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        permanent = bool(codes) and all(code >= 500 for code in codes)
        return DeliveryError(
            f"recipient refused: {codes}", permanent=permanent, bounce=permanent, recipient=True
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        # Our sender address is refused: a configuration problem, not the recipient's bounce.
        return DeliveryError(f"sender refused: {exc.smtp_code}", permanent=exc.smtp_code >= 500)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(f"authentication failed: {exc.smtp_code}", permanent=False)
    if isinstance(exc, smtplib.SMTPResponseException):
        permanent = exc.smtp_code >= 500
        return DeliveryError(f"SMTP error {exc.smtp_code}", permanent=permanent, bounce=permanent)
    return DeliveryError(f"{type(exc).__name__}: {exc}"[:300], permanent=False)


def deliver(message: EmailMessage, settings: SmtpSettings) -> None:
    """Send one message; raises DeliveryError (permanent or temporary) when the server does not accept it."""
    try:
        client: smtplib.SMTP
        if settings.scheme == "smtps":
            client = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=settings.ssl_context()
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            client.ehlo()
            if settings.scheme == "smtp+starttls":
                client.starttls(context=settings.ssl_context())
                client.ehlo()
            if settings.username:
                client.login(settings.username, settings.password or "")
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise _classify(exc) from exc


class _NotAccepted(Exception):
    """The connection failed before the end of the message reached the server: safe to send again."""


class _MaybeAccepted(Exception):
    """The connection failed after the whole message was written: the server may have accepted it."""


def _open(settings: SmtpSettings) -> smtplib.SMTP:
    """A connected, greeted (and, as SMTP_URL says, encrypted and authenticated) SMTP client."""
    client: smtplib.SMTP
    if settings.scheme == "smtps":
        client = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=settings.ssl_context()
        )
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        client.ehlo()
        if settings.scheme == "smtp+starttls":
            client.starttls(context=settings.ssl_context())
            client.ehlo()
        if settings.username:
            client.login(settings.username, settings.password or "")
    except BaseException:
        client.close()
        raise
    return client


_LEADING_DOT = re.compile(rb"(?m)^\.")
# The server closes the connection with 421 (too many messages on it, shutting down): a new one may work.
SERVICE_CLOSING = 421


class SmtpSession:
    """One SMTP connection kept open across messages, reopened after a failure.

    A message is sent again on a fresh connection (once) only when the old one failed before the
    end of the message reached the server, or when the server answered 421: then it cannot have
    accepted it. A connection lost while waiting for the final reply is reported (`maybe_accepted`)
    and never resent here: the server may have accepted that message.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.client: smtplib.SMTP | None = None
        self.connections = 0  # opened so far (tests and the bench read it)

    def close(self) -> None:
        """Say QUIT when the connection still works; drop it either way."""
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()

    def send(self, sender: str, recipient: str, data: bytes) -> None:
        """Send one message (CRLF line ends); raises DeliveryError when the server did not take it."""
        for attempt in (1, 2):
            try:
                if self.client is None:
                    self.client = _open(self.settings)
                    self.connections += 1
                self._transaction(self.client, sender, recipient, data)
                return
            except _MaybeAccepted as exc:
                self._drop()
                raise DeliveryError(
                    f"connection lost before the server confirmed the message ({exc})"[:300],
                    permanent=False,
                    maybe_accepted=True,
                ) from exc
            except _NotAccepted as exc:
                self._drop()
                if attempt == 2:
                    cause = exc.__cause__
                    raise _classify(cause if isinstance(cause, Exception) else exc) from exc
            except smtplib.SMTPRecipientsRefused as exc:
                self._reset()
                raise _classify(exc) from exc
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code == SERVICE_CLOSING:
                    self._drop()
                    if attempt == 1:
                        continue
                else:
                    self._reset()
                raise _classify(exc) from exc
            except (smtplib.SMTPException, OSError) as exc:  # connecting, TLS, authentication
                self._drop()
                if attempt == 2 or isinstance(exc, smtplib.SMTPAuthenticationError | ssl.SSLError):
                    raise _classify(exc) from exc

    def _drop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()

    def _reset(self) -> None:
        """RSET after a refused command, so the next message starts a clean transaction."""
        if self.client is None:
            return
        try:
            self.client.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    @staticmethod
    def _transaction(client: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
        options: list[str] = []
        if not (sender.isascii() and recipient.isascii()):
            if not client.has_extn("smtputf8"):
                raise ValueError("the address needs SMTPUTF8, which the server does not offer")
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        try:
            code, reply = client.mail(sender, options)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            code, reply = client.rcpt(recipient)
            if code not in (250, 251):
                if code == SERVICE_CLOSING:
                    raise smtplib.SMTPResponseException(code, reply)
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
            code, reply = client.docmd("data")
            if code != 354:
                raise smtplib.SMTPDataError(code, reply)
            body = _LEADING_DOT.sub(b"..", data)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            client.send(body + b".\r\n")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            if isinstance(exc, smtplib.SMTPException) and not isinstance(exc, smtplib.SMTPServerDisconnected):
                raise  # the server answered: a refusal, not a broken connection
            raise _NotAccepted(type(exc).__name__) from exc
        try:
            code, reply = client.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _MaybeAccepted(type(exc).__name__) from exc
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)


# One session per worker thread (a worker runs one job at a time: one per process in practice).
_sessions: dict[tuple[int, int], SmtpSession] = {}
_sessions_lock = threading.Lock()


def pooled_session(settings: SmtpSettings) -> SmtpSession:
    """This worker's open SMTP session (one per process and thread; new settings replace it).

    A forked child never uses its parent's connection (nor closes it: the socket is the parent's).
    """
    key = (os.getpid(), threading.get_ident())
    with _sessions_lock:
        for stale in [k for k in _sessions if k[0] != key[0]]:
            del _sessions[stale]
        session = _sessions.get(key)
        if session is not None and session.settings != settings:
            session.close()
            session = None
        if session is None:
            session = _sessions[key] = SmtpSession(settings)
        return session


def close_sessions() -> None:
    """QUIT this process's pooled sessions (a worker shutting down)."""
    with _sessions_lock:
        mine = [k for k in _sessions if k[0] == os.getpid()]
        sessions = [_sessions.pop(k) for k in mine]
    for session in sessions:
        session.close()
