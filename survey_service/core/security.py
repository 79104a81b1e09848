"""Security headers: CSP on pages (nonce for inline code), no framing, no sniffing, referrer policy, HSTS."""

from __future__ import annotations

import secrets

from flask import Flask, g
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from werkzeug.wrappers import Response

SELF, NONE = "'self'", "'none'"


def content_security_policy(*, nonce: str | None = None, scripts: bool = True) -> str:
    """The one Content-Security-Policy builder: this origin's files only, no plugins, no <base>, forms post
    here, never framed. Every HTML page gets one of its variations:

    nonce: inline <script> and <style> carrying it run too (survey pages).
    scripts=False: no script at all (the dashboard).
    """
    own = SELF if nonce is None else f"{SELF} 'nonce-{nonce}'"
    directives = {
        "default-src": SELF,
        "img-src": f"{SELF} data:",
        "object-src": NONE,
        "base-uri": NONE,
        "form-action": SELF,
        "frame-ancestors": NONE,
        "script-src": own if scripts else NONE,
        "style-src": own,
        "connect-src": SELF,
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def csp_nonce() -> str:
    """The nonce of this response's inline <script> and <style> (templates call it)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    nonce: str = g.csp_nonce
    return nonce


def page_policy() -> str:
    """The CSP of a page: the nonce's when the page used one."""
    return content_security_policy(nonce=g.get("csp_nonce"))


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its signing serializer built once per set of keys.

    Flask builds it on every request, cookie or not (an API call paid for it on each recording); the
    keys are read on each request still, so a changed SECRET_KEY or fallback list takes effect at once.
    """

    def __init__(self) -> None:
        self._serializers: dict[tuple[object, ...], URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        if keys not in self._serializers:
            if len(self._serializers) > 8:  # only a test changes the keys of a running app
                self._serializers.clear()
            self._serializers[keys] = super().get_signing_serializer(app)
        return self._serializers[keys]


def init_app(app: Flask) -> None:
    """Make csp_nonce() available to templates, add the headers to every response, sign sessions."""
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.session_interface = SessionInterface()

    @app.after_request
    def security_headers(response: Response) -> Response:
        # Views that set their own variation (the dashboard's, without script) keep it.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Set (by config) in production and for an https BASE_URL: browsers then refuse plain HTTP.
        if hsts := app.config.get("STRICT_TRANSPORT_SECURITY"):
            response.headers.setdefault("Strict-Transport-Security", hsts)
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", page_policy())
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response
