"""The widget's verdicts: a signed "not shown before T" for one user of one project with the same traits.

identify hands one out with every answer that shows nothing; the script keeps it for the tab's session
and asks again only when it expires, the user or traits change, or show({force: true}) is called. It lets
the browser skip asking, never showing: the server decides every show. A verdict lasts until the earliest
known instant the answer may change (eligibility.next_change), and never longer than WIDGET_VERDICT_TTL,
which bounds how late a change the server cannot foresee (a new in-app request, new settings) is seen.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous.encoding import base64_encode

from survey_service.core import tokens


def binding(public_key: str, user: dict[str, Any]) -> str:
    """An opaque digest of the project's public key, the user id and every trait identify reads of the user.

    The user as the schema loaded it (normalised, unknown fields dropped), user_hash included: a verdict
    is never moved to another project or user, nor kept across a change of what the host page says.
    """
    canonical = json.dumps(
        [public_key, user], sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return base64_encode(hashlib.sha256(canonical.encode()).digest()[:16]).decode()


def ttl_limit() -> timedelta:
    """WIDGET_VERDICT_TTL: the longest a verdict lasts (0: no verdicts, every page view asks)."""
    return timedelta(seconds=current_app.config["WIDGET_VERDICT_TTL"])


def issue(
    public_key: str, user: dict[str, Any], reason: str | None, now: datetime, recheck_at: datetime | None
) -> dict[str, Any]:
    """The verdict fields of an answer that shows nothing: until recheck_at, at most WIDGET_VERDICT_TTL.

    reason is what the answer itself says (None for an unverified identity). {} when verdicts are off.
    """
    until = now + ttl_limit()
    if recheck_at is not None:
        until = min(until, recheck_at)
    seconds = math.floor((until - now).total_seconds())
    if seconds < 1:
        return {}
    token = tokens.widget_verdict(binding(public_key, user), now + timedelta(seconds=seconds), reason)
    return {"verdict": token, "verdict_ttl": seconds}


def still_valid(
    public_key: str, user: dict[str, Any], token: str | None, now: datetime
) -> tuple[datetime, str | None] | None:
    """(until, reason) of a verdict this server signed for this key and user with these traits, not yet
    expired; None for anything else (forged, another user's or project's, other traits, expired, absent)."""
    if not token or ttl_limit() <= timedelta(0):
        return None
    try:
        return tokens.read_widget_verdict(token, binding(public_key, user), now)
    except tokens.TokenInvalid:
        return None
