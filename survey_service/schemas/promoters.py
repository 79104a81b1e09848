"""Marshmallow In/Out schemas of the promoter loop's settings: review or referral targets."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate

from survey_service.schemas.common import MAX_ID, NO_CONTROL_CHARACTERS

MAX_TARGETS = 5
MAX_TARGET_URL = 2000
MAX_TARGET_LABEL = 60


def check_target_url(url: str) -> str:
    """A review target must be an absolute https URL to a named host: no credentials, no odd characters.

    Refused: any other scheme (javascript:, data:, http:), user:password@, whitespace or control
    characters, backslashes (browsers read them as slashes), a bare IP address or a host without a dot.
    """
    if len(url) > MAX_TARGET_URL:
        raise ValidationError(f"At most {MAX_TARGET_URL} characters.")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise ValidationError("Whitespace, control characters and backslashes are not allowed.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("Not a valid URL.") from None
    if parts.scheme != "https":
        raise ValidationError("Only https:// URLs are allowed.")
    host = parts.hostname or ""
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError("The URL must not carry a user name or password.")
    if port is not None and port != 443:
        raise ValidationError("Only the default https port is allowed.")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        raise ValidationError("Use the site's host name, not an IP address.")
    if "." not in host or host.startswith(".") or host.endswith(".") or ".." in host:
        raise ValidationError("The URL needs a public host name (like www.g2.com).")
    return url


class TargetUrl(fields.String):
    """An allowed review target URL (check_target_url)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return check_target_url(super()._deserialize(value, attr, data, **kwargs))


class ReviewTarget(Schema):
    label = fields.String(
        required=True,
        validate=[validate.Length(1, MAX_TARGET_LABEL), NO_CONTROL_CHARACTERS],
        metadata={"description": 'what the person sees on the button, e.g. "G2" or "Trustpilot"'},
    )
    url = TargetUrl(required=True, metadata={"description": "https only; the redirect allows no other URL"})


class PromoterLoopQuery(Schema):
    """GET /api/v1/promoter_loop: which survey (none: the project's default)."""

    survey_id = fields.Integer(validate=validate.Range(1, MAX_ID))


class PromoterLoopSurveyQuery(Schema):
    """DELETE /api/v1/promoter_loop: the survey whose own settings go."""

    survey_id = fields.Integer(required=True, validate=validate.Range(1, MAX_ID))


class PromoterLoopIn(Schema):
    """PUT /api/v1/promoter_loop: the project's default, or with survey_id that survey's own."""

    survey_id = fields.Integer(strict=True, validate=validate.Range(1, MAX_ID), allow_none=True)
    enabled = fields.Boolean(required=True, truthy={True}, falsy={False})  # JSON true/false only
    targets = fields.List(
        fields.Nested(ReviewTarget),
        required=True,
        validate=validate.Length(0, MAX_TARGETS),
        metadata={"description": f"at most {MAX_TARGETS} review or referral links"},
    )


class PromoterLoopOut(Schema):
    survey_id = fields.Integer(allow_none=True)
    enabled = fields.Boolean()
    targets = fields.List(fields.Nested(ReviewTarget))
    source = fields.String(
        metadata={"description": "survey (its own) | project (inherited) | default (nothing configured: off)"}
    )
