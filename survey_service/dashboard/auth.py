"""The dashboard's door: sign-in and sign-out, the session's user, role checks, CSRF and security headers."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import validate_csrf
from werkzeug.wrappers import Response as WerkzeugResponse
from wtforms.validators import ValidationError as CsrfError

from survey_service.core import security
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import DashboardUser
from survey_service.services import login_limits, password_reset
from survey_service.services.users import MultipleAccounts, authenticate_user, end_sessions

Handler = Callable[..., Any]


def current_user() -> DashboardUser | None:
    """The signed-in user of this request, if the session's version is still the user's (not signed out)."""
    if "user" in g:
        user: DashboardUser | None = g.user
        return user
    user = None
    uid = session.get("uid")
    if isinstance(uid, int):
        found = db.session.get(DashboardUser, uid)
        if found is not None and session.get("ver") == found.session_version:
            user = found
    g.user = user
    return user


def login_required(view: Handler) -> Handler:
    """Send anonymous visitors to the sign-in form."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("dashboard.login"))
        return view(*args, **kwargs)

    return wrapped


def admin_required(view: Handler) -> Handler:
    """Only admins; viewers get 403."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None or user.role != "admin":
            return render_template("dashboard_error.html", title="Not allowed", message="Admins only."), 403
        return view(*args, **kwargs)

    return wrapped


def check_csrf() -> Any:
    """Every form post carries the session's CSRF token."""
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except CsrfError:
            message = "The form expired or did not come from this site. Go back, reload and try again."
            return render_template("dashboard_error.html", title="Form expired", message=message), 400
    return None


def security_headers(response: WerkzeugResponse) -> WerkzeugResponse:
    """No framing, no inline script, no caching of team data."""
    response.headers.setdefault("Content-Security-Policy", security.content_security_policy(scripts=False))
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _wait_text(seconds: int) -> str:
    """A wait in words: seconds under two minutes, whole minutes (rounded up) beyond."""
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{-(-seconds // 60)} minutes"


def login() -> Any:
    """Show the sign-in form; sign in with email and password."""
    if request.method in ("GET", "HEAD"):
        if current_user() is not None:
            return redirect(url_for("dashboard.dashboard"))
        return render_template("dashboard_login.html", email="", error=None)
    email = (request.form.get("email") or "").strip()[:320]
    password = request.form.get("password") or ""
    address = request.remote_addr or "unknown"  # the client's, through TRUSTED_PROXY_HOPS proxies
    # Checked before the password: a throttled pair learns nothing, not even whether a guess was right.
    wait = login_limits.retry_after(email, address)
    if wait:
        error = f"Too many failed attempts. Try again in {_wait_text(wait)}."
        retry = {"Retry-After": str(wait)}
        return render_template("dashboard_login.html", email=email, error=error), 429, retry
    try:
        user = authenticate_user(email, password, _chosen_project()) if email and password else None
    except MultipleAccounts as several:
        # The password opened accounts in several projects: ask which (only now, never before).
        return render_template("dashboard_login.html", email=email, error=None, projects=several.projects)
    if user is None:
        login_limits.record_failure(email, address)
        return render_template("dashboard_login.html", email=email, error="Wrong email or password."), 401
    login_limits.clear_failures(email, address)
    session.clear()  # a fresh session on sign-in: nothing planted before survives
    session.permanent = True
    session["uid"], session["ver"] = user.id, user.session_version
    return redirect(url_for("dashboard.dashboard"))


def _chosen_project() -> int | None:
    """The project picked on the sign-in form when one email and password open several."""
    chosen = request.form.get("project") or ""
    return int(chosen) if chosen.isascii() and chosen.isdigit() and len(chosen) < 10 else None


def logout() -> WerkzeugResponse:
    """Sign out, revoking the user's sessions on the server (a copied cookie stops working too)."""
    user = current_user()
    if user is not None:
        end_sessions(user.id)
    session.clear()
    return redirect(url_for("dashboard.login"))


def forgot_password() -> Any:
    """Ask for a reset link by email (only with SMTP); the answer never says whether the email is known."""
    if not password_reset.enabled():
        return render_template("dashboard_forgot.html", enabled=False, sent=False, error=None)
    if request.method in ("GET", "HEAD"):
        return render_template("dashboard_forgot.html", enabled=True, sent=False, error=None)
    email = (request.form.get("email") or "").strip()[:320]
    address = request.remote_addr or "unknown"
    wait = password_reset.request_reset(email, login_limits.client_network(address))
    if wait:
        error = f"Too many reset requests. Try again in {_wait_text(wait)}."
        page = render_template("dashboard_forgot.html", enabled=True, sent=False, error=error)
        return page, 429, {"Retry-After": str(wait)}
    return render_template("dashboard_forgot.html", enabled=True, sent=True, error=None)


def reset_password(token: str) -> Any:
    """The emailed link: choose a new password (the link works once, until it expires)."""
    user = password_reset.user_for_token(token)
    if user is None:
        message = "This reset link is not valid: used, expired or incomplete. Ask for a new one."
        return render_template("dashboard_error.html", title="Link not valid", message=message), 404
    if request.method in ("GET", "HEAD"):
        return render_template("dashboard_reset.html", token=token, error=None)
    password = request.form.get("password") or ""
    if password != (request.form.get("confirm") or ""):
        page = render_template("dashboard_reset.html", token=token, error="The passwords do not match.")
        return page, 422
    try:
        password_reset.reset_password(token, password)
    except ApiError as exc:
        return render_template("dashboard_reset.html", token=token, error=exc.message), exc.status
    session.clear()
    return redirect(url_for("dashboard.login", reset="1"))
