"""SMTP delivery from SMTP_URL (smtp://, smtp+starttls://, smtps://), with failures sorted for retry."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class DeliveryError(Exception):
    """Delivery failed; permanent failures are not retried, bounce says the recipient was refused."""

    def __init__(self, message: str, *, permanent: bool, bounce: bool = False) -> None:
        super().__init__(message)
        self.permanent, self.bounce = permanent, bounce


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
        return DeliveryError(f"recipient refused: {codes}", permanent=permanent, bounce=permanent)
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
