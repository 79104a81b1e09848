"""Property tests (hypothesis): NPS arithmetic, signed-link tampering, CSV export escaping."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from survey_service.core import nps, tokens
from survey_service.core.properties import (
    is_property_name,
    normalize_property_name,
    normalized_columns,
    properties_from_columns,
)
from survey_service.reporting.exports import FORMULA_STARTS, _Line, safe_cell

# No deadline: the machine is shared, and a slow example is not a wrong one.
PURE = settings(deadline=None, max_examples=100)
counts = st.integers(min_value=0, max_value=100_000)
nonempty = st.tuples(counts, counts, counts).filter(lambda c: sum(c) > 0)

# --- NPS arithmetic -------------------------------------------------------------------------


@PURE
@given(st.integers(min_value=0, max_value=10))
def test_category_for_any_score_is_its_standard_band(score: int) -> None:
    expected = nps.PROMOTER if score >= 9 else nps.PASSIVE if score >= 7 else nps.DETRACTOR
    assert nps.category_for(score) == expected


@PURE
@given(st.one_of(st.integers().filter(lambda s: not 0 <= s <= 10), st.floats(), st.booleans(), st.text()))
def test_category_for_anything_but_an_integer_0_to_10_raises(value: Any) -> None:
    with pytest.raises(ValueError):
        nps.category_for(value)


@PURE
@given(nonempty)
def test_nps_any_counts_is_promoter_minus_detractor_share_within_bounds(c: tuple[int, int, int]) -> None:
    stats = nps.NpsStats(*c)
    p, _, d = c
    assert stats.nps is not None
    assert -100 <= stats.nps <= 100
    assert stats.nps == round((p - d) / stats.responses * 100, 1)
    shown = stats.as_dict()
    # The rounded shares agree with the score to rounding, and add up to 100 to rounding.
    assert abs(shown["promoter_percent"] - shown["detractor_percent"] - stats.nps) <= 0.1 + 1e-9
    total = shown["promoter_percent"] + shown["passive_percent"] + shown["detractor_percent"]
    assert abs(total - 100) <= 0.15 + 1e-9
    assert shown["responses"] == sum(c)


def wald_margin(c: tuple[int, int, int]) -> float:
    """The plain margin 1.96 * sqrt((p + d - (p - d)^2) / n) * 100, unrounded."""
    n = sum(c)
    p, d = c[0] / n, c[2] / n
    return 1.96 * math.sqrt(max(p + d - (p - d) ** 2, 0.0) / n) * 100


@PURE
@given(nonempty)
def test_margin_of_error_any_counts_is_bounded_never_zero_within_the_scale(c: tuple[int, int, int]) -> None:
    stats = nps.NpsStats(*c)
    moe, interval = stats.margin_of_error, stats.interval
    assert moe is not None and interval is not None and stats.nps is not None
    # Never 0 (not even unanimous), and the variance of a -1/0/+1 score is at most 1 over n + 3 answers.
    assert 0.1 <= moe <= round(196 / math.sqrt(stats.responses + 3), 1) + 0.05 <= 98.05
    low, high = interval
    assert -100 <= low <= stats.nps <= high <= 100
    # The interval is NPS' -/+ margin, clipped; only a lone promoter or detractor is widened to hold the NPS.
    assert high - low <= 2 * moe + 0.1 + 1e-9 or stats.responses == 1


@PURE
@given(nonempty)
def test_margin_of_error_converges_to_the_plain_formula_as_1_over_n(c: tuple[int, int, int]) -> None:
    # Adding three pseudo-answers (variance 1/2, mean 0) changes SE^2 by at most 15 / (n + 3)^2, so SE by at
    # most sqrt(15) / (n + 3): the margin by 196 * 3.873 / (n + 3) ≤ 760 / (n + 3) points, while the
    # margin itself shrinks only as 1 / sqrt(n). 0.1 more for rounding and the 0.1 floor.
    moe = nps.NpsStats(*c).margin_of_error
    assert moe is not None
    assert abs(moe - wald_margin(c)) <= 760 / (sum(c) + 3) + 0.1


@PURE
@given(nonempty, st.integers(min_value=2, max_value=50))
def test_margin_of_error_more_of_the_same_mix_never_grows(c: tuple[int, int, int], k: int) -> None:
    small, large = nps.NpsStats(*c), nps.NpsStats(*(k * x for x in c))
    assert small.nps == large.nps  # the same mix is the same score
    assert small.margin_of_error is not None and large.margin_of_error is not None
    assert large.margin_of_error <= small.margin_of_error
    # And it shrinks as 1/sqrt(n) once the pseudo-answers no longer matter (within the 1/n bound above).
    n = sum(c)
    expected = wald_margin(c) / math.sqrt(k)
    assert abs(large.margin_of_error - expected) <= 760 / (k * n + 3) + 0.1


@PURE
@given(st.lists(st.integers(min_value=0, max_value=10)), st.lists(st.integers(min_value=0, max_value=10)))
def test_stats_from_scores_any_lists_counts_and_adds_like_concatenation(a: list[int], b: list[int]) -> None:
    left, right = nps.stats_from_scores(a), nps.stats_from_scores(b)
    assert left.responses == len(a)
    assert left + right == nps.stats_from_scores(a + b) == right + left
    if not a:
        assert left.nps is None and left.margin_of_error is None


# --- Signed survey links ----------------------------------------------------------------------

request_ids = st.integers(min_value=1, max_value=2**31 - 1)
URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


@pytest.fixture(scope="module")
def signing_app() -> Flask:
    """A bare app with a key and an old key: tokens need only the config."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="current-key", SECRET_KEY_FALLBACKS=["old-key"])
    return app


def future() -> datetime:
    return datetime.now(UTC) + timedelta(days=30)


@PURE
@given(request_id=request_ids, data=st.data())
def test_score_link_token_any_one_character_changed_is_refused(
    signing_app: Flask, request_id: int, data: st.DataObject
) -> None:
    with signing_app.app_context():
        token = tokens.score_link_token(request_id, future())
        assert tokens.read_score_link_token(token) == request_id
        at = data.draw(st.integers(min_value=0, max_value=len(token) - 1), label="position")
        char = data.draw(st.sampled_from(URL_SAFE).filter(lambda c: c != token[at]), label="new character")
        with pytest.raises(tokens.TokenInvalid):
            tokens.read_score_link_token(token[:at] + char + token[at + 1 :])


@PURE
@given(request_id=request_ids, data=st.data())
def test_score_link_token_any_byte_edit_is_refused(
    signing_app: Flask, request_id: int, data: st.DataObject
) -> None:
    with signing_app.app_context():
        raw = bytearray(tokens.score_link_token(request_id, future()).encode())
        edit = data.draw(st.sampled_from(["flip", "delete", "insert"]), label="edit")
        at = data.draw(st.integers(min_value=0, max_value=len(raw) - 1), label="position")
        if edit == "flip":
            raw[at] ^= data.draw(st.integers(min_value=1, max_value=255), label="mask")
        elif edit == "delete":
            del raw[at]
        else:
            raw.insert(at, data.draw(st.integers(min_value=0, max_value=255), label="byte"))
        tampered = raw.decode("utf-8", errors="surrogateescape")
        with pytest.raises(tokens.TokenInvalid):
            tokens.read_score_link_token(tampered)


@PURE
@given(request_ids)
def test_tokens_of_one_purpose_are_refused_for_every_other(signing_app: Flask, request_id: int) -> None:
    with signing_app.app_context():
        score = tokens.score_link_token(request_id, future())
        unsubscribe = tokens.unsubscribe_token(request_id)
        pixel = tokens.open_pixel_token(request_id)
        for read in (
            tokens.read_unsubscribe_token,
            tokens.read_open_pixel_token,
            tokens.read_landing_view_token,
        ):
            with pytest.raises(tokens.TokenInvalid):
                read(score)
        for other in (unsubscribe, pixel):
            with pytest.raises(tokens.TokenInvalid):
                tokens.read_score_link_token(other)
        with pytest.raises(tokens.TokenInvalid):
            tokens.read_unsubscribe_token(pixel)


@PURE
@given(request_ids, st.text(min_size=1, max_size=40))
def test_score_link_token_signed_with_another_key_is_refused(
    signing_app: Flask, request_id: int, other_key: str
) -> None:
    assume(other_key not in ("current-key", "old-key"))
    foreign = Flask(__name__)
    foreign.config.update(SECRET_KEY=other_key, SECRET_KEY_FALLBACKS=[])
    with foreign.app_context():
        token = tokens.score_link_token(request_id, future())
    with signing_app.app_context(), pytest.raises(tokens.TokenInvalid):
        tokens.read_score_link_token(token)


@PURE
@given(request_ids, st.integers(min_value=0, max_value=10 * 365 * 86400))
def test_score_link_token_at_or_past_expiry_is_refused(
    signing_app: Flask, request_id: int, seconds_late: int
) -> None:
    expires = datetime(2026, 6, 1, tzinfo=UTC)
    with signing_app.app_context():
        token = tokens.score_link_token(request_id, expires)
        assert tokens.read_score_link_token(token, now=expires - timedelta(seconds=1)) == request_id
        with pytest.raises(tokens.TokenExpired) as expired:
            tokens.read_score_link_token(token, now=expires + timedelta(seconds=seconds_late))
        assert expired.value.request_id == request_id


def test_score_link_token_signed_with_a_fallback_key_still_reads(signing_app: Flask) -> None:
    old = Flask(__name__)
    old.config.update(SECRET_KEY="old-key", SECRET_KEY_FALLBACKS=[])
    with old.app_context():
        token = tokens.score_link_token(7, future())
    with signing_app.app_context():
        assert tokens.read_score_link_token(token) == 7


# --- CSV export escaping ----------------------------------------------------------------------

cell_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
formula_text = st.builds(lambda start, rest: start + rest, st.sampled_from(FORMULA_STARTS), cell_text)
numbers = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53), st.floats(allow_nan=False, allow_infinity=False)
)


@PURE
@given(formula_text)
def test_safe_cell_any_text_with_a_formula_start_is_neutralised(text: str) -> None:
    assert safe_cell(text) == "'" + text


@PURE
@given(cell_text)
def test_safe_cell_any_other_text_is_unchanged(text: str) -> None:
    assume(not text.startswith(FORMULA_STARTS))
    assert safe_cell(text) == text


@PURE
@given(numbers)
def test_safe_cell_numbers_stay_numbers_even_negative(value: float) -> None:
    assert safe_cell(value) == value and type(safe_cell(value)) is type(value)


@PURE
@given(
    st.lists(st.one_of(cell_text, formula_text, numbers, st.booleans(), st.none()), min_size=1, max_size=8)
)
def test_csv_row_any_cells_round_trips_through_the_csv_module(cells: list[Any]) -> None:
    line = csv.writer(_Line()).writerow([safe_cell(c) for c in cells])  # the exporter's writer
    (row,) = list(csv.reader(io.StringIO(line, newline="")))
    for value, read in zip(cells, row, strict=True):
        if isinstance(value, bool):
            assert read == ("true" if value else "false")
        elif isinstance(value, int | float):
            assert float(read) == value  # a number, never quoted into text
        elif value is None:
            assert read == ""
        else:
            assert read == safe_cell(value)
            assert not read.startswith(FORMULA_STARTS)


# Through the API on both backends (PostgreSQL writes its CSV with COPY): fewer examples.
stored_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
risky_text = st.one_of(
    stored_text, st.builds(lambda s, r: s + r, st.sampled_from(FORMULA_STARTS), stored_text)
)


def test_csv_export_any_comment_and_property_is_escaped_and_round_trips(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    seen = 0

    @settings(deadline=None, max_examples=15, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(comment=risky_text, plan=risky_text.filter(lambda s: len(s) <= 500), seats=numbers)
    def export_once(comment: str, plan: str, seats: float) -> None:
        nonlocal seen
        seen += 1
        person = {"email": f"p{seen}@example.com", "properties": {"plan": plan, "seats": seats}}
        res = client.post(
            "/api/v1/responses", json={"person": person, "score": 5, "comment": comment}, headers=auth
        )
        assert res.status_code == 201, res.get_json()
        text = client.get("/api/v1/exports/responses.csv", headers=auth).get_data(as_text=True)
        rows = {r["email"]: r for r in csv.DictReader(io.StringIO(text, newline=""))}
        row = rows[f"p{seen}@example.com"]
        assert row["comment"] == safe_cell(comment)
        assert row["plan"] == safe_cell(plan)
        assert float(row["seats"]) == seats and row["score"] == "5"

    export_once()


# --- Property names: one normalisation ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plan", "plan"),
        ("Plan", "plan"),
        (" PLAN\t", "plan"),
        ("Purchase Experience", "purchase_experience"),
        ("Account \t Tier", "account_tier"),
        ("utm.source-v2", "utm.source-v2"),
    ],
)
def test_normalize_property_name_examples(raw: str, expected: str) -> None:
    assert normalize_property_name(raw) == expected


@PURE
@given(st.text(max_size=80))
def test_normalize_property_name_is_idempotent_and_leaves_no_space_or_capital(raw: str) -> None:
    name = normalize_property_name(raw)
    assert normalize_property_name(name) == name
    assert " " not in name and "\t" not in name and name == name.lower()


@PURE
@given(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,20}", fullmatch=True), st.sampled_from(["", " ", "\t"]))
def test_every_spelling_of_a_name_is_one_property(name: str, pad: str) -> None:
    spellings = {name, name.upper(), name.lower(), f"{pad}{name}{pad}"}
    assert len({normalize_property_name(s) for s in spellings}) == 1
    assert is_property_name(normalize_property_name(name))


def test_properties_from_columns_takes_the_first_non_empty_spelling() -> None:
    columns = normalized_columns(["Plan", " plan", "Purchase Experience", "  "])
    assert columns == {"plan": ["Plan", " plan"], "purchase_experience": ["Purchase Experience"]}
    record = {"Plan": "", " plan": "pro", "Purchase Experience": " Mobile ", "  ": "x"}
    assert properties_from_columns(record, columns) == {"plan": "pro", "purchase_experience": "Mobile"}
