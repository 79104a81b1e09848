"""Signed tokens (itsdangerous): one key ring, one salt per purpose, explicit expiry, key rotation.

The key ring is SECRET_KEY plus SECRET_KEY_FALLBACKS: tokens are signed with SECRET_KEY and verify with
any key of the ring, so links and widget tokens issued before a rotation keep working. Tokens carry
opaque ids only (a survey request id and an expiry), never personal data. Link tokens are deterministic:
the same request always gets the same link, which keeps repeat clicks idempotent; the widget's answer
tokens are timestamped (itsdangerous) and expire after WIDGET_ANSWER_MAX_AGE. The widget's verdicts
carry an opaque digest (of key, user id and traits), an instant and a decision reason.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode

from survey_service.core import clock

SCORE_LINK = "survey.score-link.v1"
UNSUBSCRIBE = "survey.unsubscribe.v1"
LANDING_VIEW = "survey.landing-view.v1"
OPEN_PIXEL = "survey.open-pixel.v1"
PASSWORD_RESET = "dashboard.password-reset.v1"
PAGING_CURSOR = "api.paging-cursor.v1"
# The salt widget answer tokens were always signed with: tokens already shown stay valid.
WIDGET_ANSWER = "in-app-widget-answer"
WIDGET_ANSWER_MAX_AGE = 2 * 24 * 3600
WIDGET_VERDICT = "widget.verdict.v1"
# The promoter loop: the consent button's token and each review link's redirect token (timestamped).
REVIEW_CONSENT = "promoter.review-consent.v1"
REVIEW_LINK = "promoter.review-link.v1"
REVIEW_MAX_AGE = 7 * 24 * 3600
MAX_TOKEN_LENGTH = 200


class TokenInvalid(Exception):
    """The token is malformed, tampered with, re-signed with another key, or for another purpose."""


class TokenExpired(Exception):
    """The token is authentic but past its expiry; request_id says which request it named."""

    def __init__(self, request_id: int) -> None:
        super().__init__("token expired")
        self.request_id = request_id


def key_ring() -> tuple[str, ...]:
    """The signing keys, oldest first: itsdangerous signs with the last one and verifies with all."""
    cfg = current_app.config
    return (*reversed(cfg.get("SECRET_KEY_FALLBACKS") or []), cfg["SECRET_KEY"])


def _serializer(salt: str) -> URLSafeSerializer:
    return _serializer_for(key_ring(), salt)


def timed_serializer(salt: str) -> URLSafeTimedSerializer:
    """The serializer of a purpose whose tokens carry their signing time (loads(max_age=…) checks it)."""
    return _timed_serializer_for(key_ring(), salt)


# Keyed by the key ring itself, so a changed SECRET_KEY (or fallback list) gets its own serializer.
@lru_cache(maxsize=16)
def _serializer_for(ring: tuple[str, ...], salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(list(ring), salt=salt)


@lru_cache(maxsize=8)
def _timed_serializer_for(ring: tuple[str, ...], salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(list(ring), salt=salt)


def _canonical(token: str) -> bool:
    """Whether each base64 part of the token is spelled the one way the signer writes it.

    The decoder ignores the unused low bits of a part's last character, so without this check a
    few one-character changes of a signature would still verify (the same bytes, so no forgery,
    but a changed link must never be accepted as the original).
    """
    for part in token.lstrip(".").split("."):  # a leading "." marks a compressed payload
        try:
            if base64_encode(base64_decode(part)).decode() != part:
                return False
        except BadData:
            return False
    return True


def _load(token: str, salt: str) -> Any:
    return _checked_load(token, _serializer(salt))


def _checked_load(token: str, serializer: URLSafeSerializer | URLSafeTimedSerializer, **loads: Any) -> Any:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid("bad length")
    if not _canonical(token):
        raise TokenInvalid("not canonical")
    try:
        return serializer.loads(token, **loads)
    except (BadData, ValueError, TypeError, UnicodeError) as exc:  # SignatureExpired is BadData too
        raise TokenInvalid(type(exc).__name__) from None


def _positive_ints(payload: Any, count: int) -> list[int]:
    ok = (
        isinstance(payload, list)
        and len(payload) == count
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**53 for v in payload)
    )
    if not ok:
        raise TokenInvalid("bad payload")
    return list(payload)


def score_link_token(request_id: int, expires_at: datetime) -> str:
    """The token of a request's landing/score links, valid until expires_at."""
    return str(_serializer(SCORE_LINK).dumps([request_id, int(expires_at.timestamp())]))


def read_score_link_token(token: str, now: datetime | None = None) -> int:
    """The request id of a score-link token; raises TokenInvalid or TokenExpired."""
    request_id, expires = _positive_ints(_load(token, SCORE_LINK), 2)
    if (now or clock.now()).timestamp() >= expires:
        raise TokenExpired(request_id)
    return request_id


def unsubscribe_token(request_id: int) -> str:
    """The token of a request's unsubscribe link; it does not expire (RFC 8058 links must keep working)."""
    return str(_serializer(UNSUBSCRIBE).dumps([request_id]))


def read_unsubscribe_token(token: str) -> int:
    """The request id of an unsubscribe token; raises TokenInvalid."""
    return _positive_ints(_load(token, UNSUBSCRIBE), 1)[0]


def open_pixel_token(request_id: int) -> str:
    """The token of a request's open-tracking pixel."""
    return str(_serializer(OPEN_PIXEL).dumps([request_id]))


def read_open_pixel_token(token: str) -> int:
    """The request id of an open-pixel token; raises TokenInvalid."""
    return _positive_ints(_load(token, OPEN_PIXEL), 1)[0]


def landing_view_token(request_id: int, score: int | None) -> str:
    """A token the landing page carries: which request and score was shown, and when (ms)."""
    shown = -1 if score is None else score
    return str(_serializer(LANDING_VIEW).dumps([request_id, shown, int(clock.real_now().timestamp() * 1000)]))


def read_landing_view_token(token: str, max_age_seconds: int = 86400) -> tuple[int, int | None, float]:
    """(request id, score shown or None, age in seconds) of a landing view token; raises TokenInvalid."""
    payload = _load(token, LANDING_VIEW)
    if not (isinstance(payload, list) and len(payload) == 3 and all(type(v) is int for v in payload)):
        raise TokenInvalid("bad payload")
    request_id, shown, issued_ms = payload
    age = clock.real_now().timestamp() - issued_ms / 1000
    if request_id <= 0 or not -1 <= shown <= 10 or age < -5 or age > max_age_seconds:
        raise TokenInvalid("bad view")
    return request_id, (None if shown < 0 else shown), age


def widget_answer_token(project_id: int, person_id: int, request_id: int) -> str:
    """The token the widget sends back with the answer or dismissal of the request it was shown."""
    return str(timed_serializer(WIDGET_ANSWER).dumps([project_id, person_id, request_id]))


def read_widget_answer_token(token: str) -> tuple[int, int, int]:
    """(project id, person id, request id) of a widget answer token; raises TokenInvalid (also when older
    than WIDGET_ANSWER_MAX_AGE)."""
    payload = _checked_load(token, timed_serializer(WIDGET_ANSWER), max_age=WIDGET_ANSWER_MAX_AGE)
    project_id, person_id, request_id = _positive_ints(payload, 3)
    return project_id, person_id, request_id


def widget_verdict(binding: str, until: datetime, reason: str | None) -> str:
    """The widget's signed "not shown before `until`" for one user of one project with the same traits.

    binding is an opaque digest of the public key, the user id and the traits (widget.verdicts.binding).
    """
    return str(_serializer(WIDGET_VERDICT).dumps([binding, int(until.timestamp()), reason]))


def read_widget_verdict(token: str, binding: str, now: datetime | None = None) -> tuple[datetime, str | None]:
    """(until, reason) of a verdict issued for this binding; TokenInvalid when forged, malformed, issued for
    another user, project or traits, or past its instant."""
    payload = _load(token, WIDGET_VERDICT)
    ok = (
        isinstance(payload, list)
        and len(payload) == 3
        and isinstance(payload[0], str)
        and type(payload[1]) is int
        and (payload[2] is None or (isinstance(payload[2], str) and len(payload[2]) <= 32))
    )
    if not ok:
        raise TokenInvalid("bad payload")
    if not hmac.compare_digest(payload[0].encode(), binding.encode()):
        raise TokenInvalid("another user")
    if (now or clock.now()).timestamp() >= payload[1]:
        raise TokenInvalid("expired")
    return datetime.fromtimestamp(payload[1], UTC), payload[2]


def password_reset_token(user_id: int, fingerprint: str, expires_at: datetime) -> str:
    """A dashboard user's password reset token, valid until expires_at and while fingerprint holds."""
    return str(_serializer(PASSWORD_RESET).dumps([user_id, fingerprint, int(expires_at.timestamp())]))


def read_password_reset_token(token: str) -> tuple[int, str]:
    """(user id, fingerprint) of a reset token; TokenInvalid when forged, malformed or expired."""
    payload = _load(token, PASSWORD_RESET)
    if not (isinstance(payload, list) and len(payload) == 3 and isinstance(payload[1], str)):
        raise TokenInvalid("bad payload")
    user_id, expires = _positive_ints([payload[0], payload[2]], 2)
    if clock.now().timestamp() >= expires:
        raise TokenInvalid("expired")
    return user_id, payload[1]


def paging_cursor(scope: str, key: list[int | str]) -> str:
    """An /api/v1 list's cursor: the sort key of a page's last row, bound to its list (`scope`)."""
    return str(_serializer(PAGING_CURSOR).dumps([scope, key]))


def read_paging_cursor(token: str, scope: str) -> list[Any]:
    """The sort key a cursor of list `scope` names; TokenInvalid if forged, malformed or another list's."""
    payload = _load(token, PAGING_CURSOR)
    if not (isinstance(payload, list) and len(payload) == 2 and payload[0] == scope):
        raise TokenInvalid("another list")
    key = payload[1]
    if not isinstance(key, list):
        raise TokenInvalid("bad payload")
    return key


def review_consent_token(response_id: int) -> str:
    """The token of a promoter's "happy to leave a review" button: it names their response only."""
    return str(timed_serializer(REVIEW_CONSENT).dumps([response_id]))


def read_review_consent_token(token: str) -> int:
    """The response id of a consent token; TokenInvalid if forged, malformed or older than REVIEW_MAX_AGE."""
    payload = _checked_load(token, timed_serializer(REVIEW_CONSENT), max_age=REVIEW_MAX_AGE)
    return _positive_ints(payload, 1)[0]


def review_link_token(response_id: int, index: int, url_digest: str) -> str:
    """The token of one review link: the response, the target's place in the allow-list and its URL's digest.

    The URL itself never travels in the token: the redirect goes to the configured URL, and only when the
    digest still matches it (a target changed or removed since the link was shown is refused).
    """
    return str(timed_serializer(REVIEW_LINK).dumps([response_id, index, url_digest]))


def read_review_link_token(token: str) -> tuple[int, int, str]:
    """(response id, target index, URL digest) of a review link token; raises TokenInvalid."""
    payload = _checked_load(token, timed_serializer(REVIEW_LINK), max_age=REVIEW_MAX_AGE)
    if not (isinstance(payload, list) and len(payload) == 3 and isinstance(payload[2], str)):
        raise TokenInvalid("bad payload")
    response_id = _positive_ints([payload[0]], 1)[0]
    index = payload[1]
    if type(index) is not int or not 0 <= index < 100 or not 0 < len(payload[2]) <= 64:
        raise TokenInvalid("bad payload")
    return response_id, index, payload[2]
