"""Signed link tokens: one salt per purpose, expiry, key rotation; bad tokens are refused, never crash."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from itsdangerous import TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

from survey_service import create_app
from survey_service.core import tokens

FUTURE = datetime.now(UTC) + timedelta(days=30)


@pytest.fixture
def token_app(tmp_path: Path) -> Iterator[Flask]:
    """An app context with a known key and one fallback key (no database needed)."""
    app = create_app(
        {
            "SECRET_KEY": "current-key",
            "SECRET_KEY_FALLBACKS": ["old-key"],
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "INSTANCE_PATH": str(tmp_path),
        }
    )
    with app.app_context():
        yield app


def test_score_link_token_round_trip_is_short_and_opaque(token_app: Flask) -> None:
    token = tokens.score_link_token(12345, FUTURE)
    assert tokens.read_score_link_token(token) == 12345
    assert len(token) < 64
    assert tokens.score_link_token(12345, FUTURE) == token  # deterministic: repeat links are the same


def test_score_link_token_past_expiry_raises_expired_with_request_id(token_app: Flask) -> None:
    token = tokens.score_link_token(7, datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(tokens.TokenExpired) as info:
        tokens.read_score_link_token(token)
    assert info.value.request_id == 7


def test_token_signed_with_fallback_key_is_accepted(token_app: Flask) -> None:
    token_app.config["SECRET_KEY"], old = "old-key", token_app.config["SECRET_KEY"]
    token = tokens.score_link_token(5, FUTURE)
    token_app.config["SECRET_KEY"] = old
    assert tokens.read_score_link_token(token) == 5
    token_app.config["SECRET_KEY_FALLBACKS"] = []
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_score_link_token(token)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: t[:-1], id="truncated"),
        pytest.param(lambda t: t[:-3] + ("AAA" if t[-3:] != "AAA" else "BBB"), id="bad-signature"),
        pytest.param(lambda t: "x" + t, id="garbage-prefix"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "a" * 500, id="too-long"),
        pytest.param(lambda t: "...", id="dots"),
        pytest.param(lambda t: "%00%ff", id="percent"),
        pytest.param(lambda t: "\u00e9\u00e9.\u00e9", id="non-ascii"),
        pytest.param(
            lambda t: URLSafeSerializer("another-key", salt=tokens.SCORE_LINK).dumps([1, 2**40]),
            id="re-signed-other-key",
        ),
        pytest.param(
            lambda t: URLSafeSerializer("current-key", salt=tokens.UNSUBSCRIBE).dumps([1, 2**40]),
            id="wrong-salt",
        ),
        pytest.param(
            lambda t: URLSafeSerializer("current-key", salt=tokens.SCORE_LINK).dumps({"id": 1}),
            id="wrong-shape",
        ),
        pytest.param(
            lambda t: URLSafeSerializer("current-key", salt=tokens.SCORE_LINK).dumps([True, 2**40]),
            id="bool-id",
        ),
        pytest.param(
            lambda t: URLSafeSerializer("current-key", salt=tokens.SCORE_LINK).dumps([-1, 2**40]),
            id="negative-id",
        ),
    ],
)
def test_read_score_link_token_bad_token_is_invalid(token_app: Flask, make: object) -> None:
    token = make(tokens.score_link_token(42, FUTURE))  # type: ignore[operator]
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_score_link_token(token)


def test_unsubscribe_token_is_not_a_score_link_token(token_app: Flask) -> None:
    unsubscribe = tokens.unsubscribe_token(9)
    assert tokens.read_unsubscribe_token(unsubscribe) == 9
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_score_link_token(unsubscribe)
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_unsubscribe_token(tokens.score_link_token(9, FUTURE))


def test_landing_view_token_carries_request_score_and_age(token_app: Flask) -> None:
    request_id, score, age = tokens.read_landing_view_token(tokens.landing_view_token(3, 9))
    assert (request_id, score) == (3, 9) and 0 <= age < 60
    assert tokens.read_landing_view_token(tokens.landing_view_token(3, None))[1] is None
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_landing_view_token(tokens.unsubscribe_token(3))


def test_widget_answer_token_shares_the_key_ring_and_keeps_its_salt(token_app: Flask) -> None:
    token = tokens.widget_answer_token(1, 2, 3)
    assert tokens.read_widget_answer_token(token) == (1, 2, 3)
    # The salt is unchanged, so tokens the widget holds from before this module signed them still verify.
    assert URLSafeTimedSerializer("current-key", salt="in-app-widget-answer").loads(token) == [1, 2, 3]
    token_app.config["SECRET_KEY"], old = "old-key", token_app.config["SECRET_KEY"]
    rotated = tokens.widget_answer_token(1, 2, 3)  # signed before the rotation
    token_app.config["SECRET_KEY"] = old
    assert tokens.read_widget_answer_token(rotated) == (1, 2, 3)
    token_app.config["SECRET_KEY_FALLBACKS"] = []
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_widget_answer_token(rotated)


def test_widget_answer_token_is_no_other_purposes_token_and_expires(token_app: Flask) -> None:
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_widget_answer_token(tokens.unsubscribe_token(3))
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_unsubscribe_token(tokens.widget_answer_token(1, 2, 3))
    expired_at = int(datetime.now(UTC).timestamp()) - tokens.WIDGET_ANSWER_MAX_AGE - 60

    class SignedLongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return expired_at

    old = URLSafeTimedSerializer("current-key", salt=tokens.WIDGET_ANSWER, signer=SignedLongAgo)
    expired = old.dumps([1, 2, 3])
    assert old.loads(expired) == [1, 2, 3]  # authentic…
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_widget_answer_token(expired)  # …but too old
    fresh = URLSafeTimedSerializer("current-key", salt=tokens.WIDGET_ANSWER)
    for bad in ([0, 2, 3], [1, 2], {"a": 1}, [1, 2, True]):
        with pytest.raises(tokens.TokenInvalid):
            tokens.read_widget_answer_token(fresh.dumps(bad))
