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
    assert nps.EMPTY.margin_of_error is None and nps.EMPTY.interval is None
    assert nps.EMPTY.as_dict()["promoter_percent"] is None
    assert nps.format_nps(None) == "—"


# Margin of error: the adjusted Wald interval (Rocks 2016). Add 3/4 promoter, 3/2 passive, 3/4 detractor:
# n' = n + 3, p' = (P + 3/4) / n', d' = (D + 3/4) / n', NPS' = p' - d', SE' = sqrt((p' + d' - NPS'^2) / n'),
# margin = 1.96 * SE' * 100, interval = NPS' -/+ margin, clipped to -100…100 and holding the observed NPS.
@pytest.mark.parametrize(
    ("counts", "margin", "interval"),
    [
        # n = 1, a promoter: p' = 1.75/4, d' = 0.75/4, NPS' = 0.25, SE' = sqrt((0.625 - 0.0625) / 4) = 0.375
        # → 73.5; 25 -/+ 73.5 = -48.5 … 98.5, widened to the observed +100 (was ±0.0).
        ((1, 0, 0), 73.5, (-48.5, 100.0)),
        ((0, 0, 1), 73.5, (-100.0, 48.5)),
        # n = 1, a passive: p' = d' = 0.1875, SE' = sqrt(0.375 / 4) = 0.306186 → 60.0.
        ((0, 1, 0), 60.0, (-60.0, 60.0)),
        # n = 2, one of each extreme: p' = d' = 1.75/5 = 0.35, SE' = sqrt(0.7 / 5) = 0.374166 → 73.3
        # (the plain formula gave ±139).
        ((1, 0, 1), 73.3, (-73.3, 73.3)),
        # n = 10, 5/3/2: NPS' = 3/13 = 0.230769, SE' = sqrt((8.5/13 - 0.053254) / 13) = 0.214940 → 42.13;
        # 23.08 -/+ 42.13 = -19.05 … 65.21.
        ((5, 3, 2), 42.1, (-19.1, 65.2)),
        # n = 100, 50/30/20: NPS' = 30/103 = 0.291262, SE' = sqrt((71.5/103 - 0.084834) / 103) = 0.076915
        # → 15.08 (the plain formula gives 15.3); 29.13 -/+ 15.08 = 14.05 … 44.20.
        ((50, 30, 20), 15.1, (14.1, 44.2)),
        # n = 1000, 500/300/200: NPS' = 300/1003 = 0.299103, SE' = sqrt((701.5/1003 - 0.089463) / 1003)
        # = 0.024660 → 4.83, as the plain 1.96 * sqrt((0.7 - 0.09) / 1000) * 100 = 4.84.
        ((500, 300, 200), 4.8, (25.1, 34.7)),
        # n = 1000, all promoters: NPS' = 1000/1003, SE' = sqrt((1001.5/1003 - 0.994027) / 1003)
        # = 0.002113 → 0.41.
        ((1000, 0, 0), 0.4, (99.3, 100.0)),
    ],
)
def test_margin_of_error_hand_computed_adjusted_wald(
    counts: tuple[int, int, int], margin: float, interval: tuple[float, float]
) -> None:
    stats = nps.NpsStats(*counts)
    assert stats.margin_of_error == margin
    assert stats.interval == interval
    shown = stats.as_dict()
    assert (shown["margin_of_error"], shown["nps_low"], shown["nps_high"]) == (margin, *interval)


def test_margin_of_error_large_sample_is_the_plain_formula() -> None:
    stats = nps.NpsStats(promoters=5000, passives=3000, detractors=2000)
    p, d, n = 0.5, 0.2, 10_000
    assert stats.margin_of_error == round(1.96 * math.sqrt((p + d - (p - d) ** 2) / n) * 100, 1) == 1.5


def test_margin_of_error_one_answer_is_never_zero_and_at_most_98() -> None:
    for counts in [(1, 0, 0), (0, 1, 0), (0, 0, 1), (10, 0, 0), (300_000, 0, 0)]:
        margin = nps.NpsStats(*counts).margin_of_error
        assert margin is not None and 0.1 <= margin <= 98
    # Even a huge unanimous sample keeps a margin of at least the precision it is given in.
    assert nps.NpsStats(300_000, 0, 0).margin_of_error == 0.1


def test_margin_of_error_shrinks_as_the_same_mix_grows() -> None:
    margins = [nps.NpsStats(k * 5, k * 3, k * 2).margin_of_error or 0.0 for k in (1, 2, 5, 10, 100)]
    assert margins == sorted(margins, reverse=True) and len(set(margins)) == len(margins)
    # n = 20, 10/6/4: NPS' = 6/23, SE' = sqrt((15.5/23 - 0.068053) / 23) = 0.162302 → 31.8; n = 1000 as above.
    assert (margins[0], margins[1], margins[-1]) == (42.1, 31.8, 4.8)


@pytest.mark.parametrize(
    ("margin", "text"), [(None, "—"), (73.5, "74"), (1.0, "1"), (0.4, "0.4"), (0.1, "0.1")]
)
def test_format_margin_never_a_bare_zero(margin: float | None, text: str) -> None:
    assert nps.format_margin(margin) == text


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


# Published Wilson 95% intervals (Newcombe 1998, table I, "score method"; z = 1.96), as fractions.
@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0),
    ],
)
def test_wilson_interval_matches_published_values(
    successes: int, trials: int, low: float, high: float
) -> None:
    found = nps.wilson_interval(successes, trials)
    assert found is not None
    assert found[0] == pytest.approx(low, abs=5e-5) and found[1] == pytest.approx(high, abs=5e-5)


def test_wilson_interval_no_trials_is_none_and_bounds_stay_in_0_1() -> None:
    assert nps.wilson_interval(0, 0) is None
    for n in (1, 2, 7, 50):
        for x in range(n + 1):
            interval = nps.wilson_interval(x, n)
            assert interval is not None
            low, high = interval
            assert 0.0 <= low <= x / n <= high <= 1.0 and high - low > 0
