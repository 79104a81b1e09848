"""A theme's impact on NPS and its margin, against figures worked out by hand."""

from __future__ import annotations

import math

import pytest

from survey_service.core import nps


def test_impact_hand_computed_case() -> None:
    # 10 responses: the theme has 1 promoter, 0 passives, 2 detractors; the rest 4 / 2 / 1.
    # NPS all = (5 - 3) / 10 = +20; without the theme (4 - 1) / 7 = +42.857 -> impact -22.857 -> -22.9.
    # Delta method, shares pi: theme (+) .1, (0) 0, (-) .2; rest (+) .4, (0) .2, (-) .1; m = .7, S = .3.
    # Gradient: theme cells x; rest cells x - x/.7 + .3/.49 = -.428571 x + .612245
    #   -> .183673, .612245, 1.040816.
    # sum pi g = .1 - .2 + .073469 + .122449 + .104082 = .2
    # sum pi g^2 = .1 + .2 + .4*.033736 + .2*.374844 + .1*1.083299 = .496793
    # var = (.496793 - .04) / 10 = .0456793; margin = 1.96 * sqrt(.0456793) * 100 = 41.89 -> 41.9.
    impact, margin = nps.impact(nps.NpsStats(5, 2, 3), nps.NpsStats(1, 0, 2))
    assert (impact, margin) == (-22.9, 41.9)


def test_impact_promoter_theme_is_positive() -> None:
    # 200 responses: 100 promoters, 60 passives, 40 detractors (NPS +30); the theme: 50 promoters only.
    # Without it: (50 - 40) / 150 = +6.667 -> impact +23.3.
    impact, margin = nps.impact(nps.NpsStats(100, 60, 40), nps.NpsStats(50, 0, 0))
    assert impact == 23.3
    assert margin is not None and 0 < margin < 20


def test_impact_margin_agrees_with_a_numerical_delta_method() -> None:
    overall, part = nps.NpsStats(420, 310, 270), nps.NpsStats(35, 20, 95)
    n = overall.responses
    cells = [
        part.promoters / n,
        part.passives / n,
        part.detractors / n,
        (overall.promoters - part.promoters) / n,
        (overall.passives - part.passives) / n,
        (overall.detractors - part.detractors) / n,
    ]

    def f(pi: list[float]) -> float:
        rest = pi[3] + pi[4] + pi[5]
        return (pi[0] - pi[2] + pi[3] - pi[5]) - (pi[3] - pi[5]) / rest

    h = 1e-6
    grad = [(f([c + h if j == i else c for j, c in enumerate(cells)]) - f(cells)) / h for i in range(6)]
    mean = sum(p * g for p, g in zip(cells, grad, strict=True))
    var = (sum(p * g * g for p, g in zip(cells, grad, strict=True)) - mean**2) / n
    impact, margin = nps.impact(overall, part)
    assert impact == round(f(cells) * 100, 1)
    assert margin == pytest.approx(1.96 * math.sqrt(var) * 100, abs=0.1)


@pytest.mark.parametrize(
    ("overall", "part", "expected"),
    [
        (nps.NpsStats(0, 0, 0), nps.NpsStats(0, 0, 0), (None, None)),
        (nps.NpsStats(3, 1, 1), nps.NpsStats(3, 1, 1), (None, None)),  # nothing left without the theme
        (nps.NpsStats(3, 1, 1), nps.NpsStats(0, 0, 0), (0.0, None)),
    ],
)
def test_impact_edges(overall: nps.NpsStats, part: nps.NpsStats, expected: tuple[object, object]) -> None:
    assert nps.impact(overall, part) == expected
