"""Emailed password reset for dashboard users: a signed, expiring, one-use link, sent only with SMTP.

The request answers the same whether or not the email has an account: the web request only counts
it against the limits and enqueues a job; the job looks the email up and sends (or not). A link
names the user and a fingerprint of their password hash and session version, so it stops working
once used (the password changes), after a sign-out, and after RESET_MAX_AGE.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select

from survey_service.core import clock, ratelimit, tokens
from survey_service.extensions import db, queues
from survey_service.mail.smtp import DeliveryError, deliver, parse_smtp_url
from survey_service.models import DashboardUser, Project
from survey_service.services.users import change_password, normalise_email

log = logging.getLogger(__name__)

RESET_MAX_AGE = timedelta(hours=1)
# Per email and per client network, per hour: enough for a typo and a retry, too few to spam someone.
PER_EMAIL, PER_NETWORK, WINDOW = 3, 20, 3600


def enabled() -> bool:
    """Reset links are emailed only when SMTP is configured."""
    return bool(current_app.config.get("SMTP_URL"))


def _fingerprint(user: DashboardUser) -> str:
    digest = hashlib.sha256(f"{user.password_hash}:{user.session_version}".encode())
    return digest.hexdigest()[:32]


def request_reset(email: str, network: str) -> int | None:
    """Count a reset request and enqueue its email; seconds to wait when over a limit, else None.

    The same work whether or not the email has an account (the job finds out).
    """
    email = normalise_email(email)[:320]
    wait = ratelimit.request_wait("password-reset-network", network, PER_NETWORK, WINDOW)
    wait = wait or ratelimit.request_wait("password-reset-email", email, PER_EMAIL, WINDOW)
    if wait:
        return wait
    if "@" in email:
        try:
            queues().queue().enqueue(
                send_reset_email, email, job_timeout=60, description="password reset email"
            )
        except RedisError:
            log.warning("Redis unavailable: a password reset email was not queued")
    return None


def send_reset_email(email: str) -> str:
    """The RQ job (app context): email reset links to the email's accounts; sent, no_account or failed."""
    accounts = db.session.execute(
        select(DashboardUser, Project.name)
        .join(Project, Project.id == DashboardUser.project_id)
        .where(DashboardUser.email == normalise_email(email))
        .order_by(Project.name)
    ).all()
    if not accounts or not enabled():
        return "no_account"
    expires = clock.now() + RESET_MAX_AGE
    base = current_app.config["BASE_URL"]
    lines = [
        "Someone (hopefully you) asked to reset your NPS dashboard password.",
        "",
        *(
            f"{name}: {base}/r/{tokens.password_reset_token(user.id, _fingerprint(user), expires)}"
            for user, name in accounts
        ),
        "",
        f"The link works once, until {expires.strftime('%Y-%m-%d %H:%M UTC')}.",
        "If you did not ask, ignore this email: your password stays as it is.",
    ]
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = accounts[0][0].email
    message["Subject"] = "Reset your NPS dashboard password"
    message["Message-ID"] = make_msgid()
    message.set_content("\n".join(lines))
    try:
        deliver(message, parse_smtp_url(current_app.config["SMTP_URL"]))
    except (DeliveryError, ValueError) as err:
        log.warning("password reset email not sent: %s", type(err).__name__)
        return "failed"
    return "sent"


def user_for_token(token: str) -> DashboardUser | None:
    """The user a valid, unused, unexpired reset token names, else None."""
    try:
        user_id, fingerprint = tokens.read_password_reset_token(token)
    except tokens.TokenInvalid:
        return None
    user = db.session.get(DashboardUser, user_id)
    if user is None or not hmac.compare_digest(_fingerprint(user), fingerprint):
        return None
    return user


def reset_password(token: str, password: str) -> DashboardUser | None:
    """Set the new password of the token's user (ending their sessions); None when the token is not valid.

    ApiError (422) on a weak password, the token left unused.
    """
    user = user_for_token(token)
    if user is None:
        return None
    change_password(user.id, password)
    return user
