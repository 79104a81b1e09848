"""Security headers: CSP on pages (nonce for inline code), no framing, no sniffing, referrer policy, HSTS."""

from __future__ import annotations

import secrets

from flask import Flask, g
from werkzeug.wrappers import Response

# Pages without inline code: only this origin's files, never framed.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def csp_nonce() -> str:
    """The nonce of this response's inline <script> and <style> (templates call it)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    nonce: str = g.csp_nonce
    return nonce


def page_policy() -> str:
    """The CSP of a page: PAGE_POLICY, plus the nonce when the page used one."""
    if "csp_nonce" not in g:
        return PAGE_POLICY
    allow = f"'self' 'nonce-{g.csp_nonce}'"
    return f"{PAGE_POLICY}; script-src {allow}; style-src {allow}; connect-src 'self'"


def init_app(app: Flask) -> None:
    """Make csp_nonce() available to templates and add the headers to every response."""
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def security_headers(response: Response) -> Response:
        # Views that set their own (the dashboard's stricter policy, the widget demo) keep theirs.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Set (by config) in production and for an https BASE_URL: browsers then refuse plain HTTP.
        if hsts := app.config.get("STRICT_TRANSPORT_SECURITY"):
            response.headers.setdefault("Strict-Transport-Security", hsts)
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", page_policy())
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response
