"""Pure Net Promoter Score arithmetic: categories, score, shares and margin of error."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PROMOTER = "promoter"
PASSIVE = "passive"
DETRACTOR = "detractor"
CATEGORIES = (PROMOTER, PASSIVE, DETRACTOR)
MIN_SCORE, MAX_SCORE = 0, 10
Z_95 = 1.96


def category_for(score: int) -> str:
    """Return the NPS category of a 0-10 score; anything else is a ValueError."""
    if isinstance(score, bool) or not isinstance(score, int) or not MIN_SCORE <= score <= MAX_SCORE:
        raise ValueError(f"an NPS score is an integer from 0 to 10, not {score!r}")
    if score >= 9:
        return PROMOTER
    if score >= 7:
        return PASSIVE
    return DETRACTOR


def _percent(part: int, whole: int) -> float | None:
    return round(part / whole * 100, 1) if whole else None


@dataclass(frozen=True)
class NpsStats:
    """Counts of one set of responses and everything derived from them."""

    promoters: int
    passives: int
    detractors: int

    @property
    def responses(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float | None:
        """% promoters minus % detractors over all responses, one decimal; None with no responses."""
        n = self.responses
        if not n:
            return None
        return round((self.promoters - self.detractors) / n * 100, 1)

    @property
    def margin_of_error(self) -> float | None:
        """The 95% margin of the NPS in points: 1.96 * sqrt((p + d - (p - d)^2) / n) * 100."""
        n = self.responses
        if not n:
            return None
        p, d = self.promoters / n, self.detractors / n
        variance = max(p + d - (p - d) ** 2, 0.0) / n
        return round(Z_95 * math.sqrt(variance) * 100, 1)

    def __add__(self, other: NpsStats) -> NpsStats:
        return NpsStats(
            self.promoters + other.promoters,
            self.passives + other.passives,
            self.detractors + other.detractors,
        )

    def as_dict(self) -> dict[str, Any]:
        """The Stats object of the public report contract."""
        n = self.responses
        return {
            "nps": self.nps,
            "responses": n,
            "promoters": self.promoters,
            "passives": self.passives,
            "detractors": self.detractors,
            "promoter_percent": _percent(self.promoters, n),
            "passive_percent": _percent(self.passives, n),
            "detractor_percent": _percent(self.detractors, n),
            "margin_of_error": self.margin_of_error,
        }


EMPTY = NpsStats(0, 0, 0)
SIGNIFICANCE_LEVEL = 0.05


def variance(stats: NpsStats) -> float | None:
    """Variance of the NPS as a fraction (-1…1): (p + d - (p - d)^2) / n; None with no responses."""
    n = stats.responses
    if not n:
        return None
    p, d = stats.promoters / n, stats.detractors / n
    return max(p + d - (p - d) ** 2, 0.0) / n


@dataclass(frozen=True)
class Comparison:
    """The change of NPS between two independent samples and whether it is likely real."""

    change: float | None
    z: float | None
    p_value: float | None

    @property
    def significant(self) -> bool | None:
        return None if self.p_value is None else self.p_value < SIGNIFICANCE_LEVEL

    def as_dict(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "z": self.z,
            "p_value": self.p_value,
            "significant": self.significant,
            "test": "two-sample z-test on NPS, variance (p + d - (p - d)^2) / n, two-sided, alpha 0.05",
        }


def compare(current: NpsStats, previous: NpsStats) -> Comparison:
    """Two-sample z-test: z = (NPS1 - NPS2) / sqrt(var1 + var2), two-sided p = erfc(|z| / sqrt 2)."""
    if not current.responses or not previous.responses:
        return Comparison(None, None, None)
    v1, v2 = variance(current), variance(previous)
    assert v1 is not None and v2 is not None
    diff = (current.promoters - current.detractors) / current.responses - (
        previous.promoters - previous.detractors
    ) / previous.responses
    change = round(diff * 100, 1)
    if v1 + v2 == 0:
        # Both samples unanimous: any difference is certain, none is certainly none.
        return Comparison(change, None, 1.0 if diff == 0 else 0.0)
    z = diff / math.sqrt(v1 + v2)
    return Comparison(change, round(z, 3), round(math.erfc(abs(z) / math.sqrt(2)), 4))


def stats_from_scores(scores: list[int]) -> NpsStats:
    """Count a list of scores into NpsStats (for tests and small in-memory sets)."""
    cats = [category_for(s) for s in scores]
    return NpsStats(cats.count(PROMOTER), cats.count(PASSIVE), cats.count(DETRACTOR))


def format_nps(nps: float | None) -> str:
    """Render an NPS the way people read it: "+28", "-5", "0", or an em dash when undefined."""
    if nps is None:
        return "—"
    whole = round(nps)
    return f"+{whole}" if whole > 0 else str(whole)
