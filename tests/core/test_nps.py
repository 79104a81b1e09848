"""The pure NPS arithmetic against DOMAIN.md's definitions and worked example."""

from __future__ import annotations

import math

import pytest

from survey_service.core import nps


@pytest.mark.parametrize(
    ("score", "category"),
    [(0, "detractor"), (6, "detractor"), (7, "passive"), (8, "passive"), (9, "promoter"), (10, "promoter")],
)
def test_category_for_edges_match_standard_bands(score: int, category: str) -> None:
    assert nps.category_for(score) == category


@pytest.mark.parametrize("bad", [11, -1, 10.5, "9", True, None])
def test_category_for_out_of_range_or_wrong_type_raises(bad: object) -> None:
    with pytest.raises(ValueError):
        nps.category_for(bad)  # type: ignore[arg-type]


def test_stats_guides_example_is_plus_28_not_67() -> None:
    stats = nps.NpsStats(promoters=173, passives=286, detractors=34)
    assert stats.responses == 493
    assert stats.nps == 28.2
    assert nps.format_nps(stats.nps) == "+28"
    assert stats.as_dict()["promoter_percent"] == 35.1
    assert stats.as_dict()["passive_percent"] == 58.0
    assert stats.as_dict()["detractor_percent"] == 6.9


def test_stats_no_responses_is_null_not_zero() -> None:
    assert nps.EMPTY.nps is None
    assert nps.EMPTY.margin_of_error is None
    assert nps.EMPTY.as_dict()["promoter_percent"] is None
    assert nps.format_nps(None) == "—"


def test_margin_of_error_matches_domain_formula() -> None:
    stats = nps.NpsStats(promoters=50, passives=30, detractors=20)
    p, d, n = 0.5, 0.2, 100
    expected = 1.96 * math.sqrt((p + d - (p - d) ** 2) / n) * 100
    assert stats.margin_of_error == round(expected, 1) == 15.3


def test_margin_of_error_unanimous_sample_is_zero() -> None:
    assert nps.NpsStats(10, 0, 0).margin_of_error == 0.0


def test_stats_add_sums_counts() -> None:
    total = nps.NpsStats(1, 2, 3) + nps.NpsStats(4, 5, 6)
    assert (total.promoters, total.passives, total.detractors) == (5, 7, 9)


def test_stats_from_scores_counts_every_band() -> None:
    stats = nps.stats_from_scores([0, 6, 7, 8, 9, 10, 10])
    assert (stats.promoters, stats.passives, stats.detractors) == (3, 2, 2)
    assert stats.nps == round((3 - 2) / 7 * 100, 1)


@pytest.mark.parametrize(("value", "text"), [(28.19, "+28"), (-5.4, "-5"), (0.0, "0"), (100.0, "+100")])
def test_format_nps_signs_and_never_percent(value: float, text: str) -> None:
    assert nps.format_nps(value) == text
