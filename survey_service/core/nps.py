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
# Pseudo-responses added before the interval is computed: promoters, passives, detractors.
PSEUDO_COUNTS = (0.75, 1.5, 0.75)
MIN_MARGIN = 0.1


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

    def _adjusted(self) -> tuple[float, float] | None:
        """The adjusted-Wald NPS and its standard error, as fractions; None with no responses.

        Three pseudo-responses with an NPS of 0 are added (3/4 promoter, 3/2 passive, 3/4 detractor:
        Rocks 2016, "Interval estimation for the Net Promoter Score", The American Statistician), so
        no sample looks certain: n' = n + 3, p' = (promoters + 3/4) / n', d' = (detractors + 3/4) / n',
        NPS' = p' - d', SE' = sqrt((p' + d' - NPS'^2) / n'). As n grows this is the plain Wald interval.
        """
        n = self.responses
        if not n:
            return None
        total = n + sum(PSEUDO_COUNTS)
        p = (self.promoters + PSEUDO_COUNTS[0]) / total
        d = (self.detractors + PSEUDO_COUNTS[2]) / total
        return p - d, math.sqrt((p + d - (p - d) ** 2) / total)

    @property
    def margin_of_error(self) -> float | None:
        """Half the width of the 95% interval in NPS points: 1.96 * SE' * 100 (see `_adjusted`).

        Never 0 with responses (at least 0.1, the precision it is given in), at most 98 (n' >= 4 and
        the variance of a -1/0/+1 score is at most 1), 73.5 for one answer, and within a fraction of a
        point of 1.96 * sqrt((p + d - (p - d)^2) / n) * 100 from a few hundred responses on.
        """
        adjusted = self._adjusted()
        if adjusted is None:
            return None
        return max(round(Z_95 * adjusted[1] * 100, 1), MIN_MARGIN)

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% interval of the NPS in points, NPS' -/+ 1.96 * SE', clipped to -100…100, one decimal.

        Centred on the adjusted NPS (pulled towards 0 by n / (n + 3)), not on the observed one: that
        centre is what keeps the coverage near 95% for small samples (docs/reports.md has the table).
        It always contains the observed NPS.
        """
        adjusted = self._adjusted()
        if adjusted is None:
            return None
        centre, se = adjusted
        low, high = (centre - Z_95 * se) * 100, (centre + Z_95 * se) * 100
        # Only a lone promoter (or detractor) ends below +100 (above -100): widen it to what was seen.
        observed = (self.promoters - self.detractors) / self.responses * 100
        low, high = min(low, observed), max(high, observed)
        return round(max(low, -100.0), 1), round(min(high, 100.0), 1)

    def __add__(self, other: NpsStats) -> NpsStats:
        return NpsStats(
            self.promoters + other.promoters,
            self.passives + other.passives,
            self.detractors + other.detractors,
        )

    def as_dict(self) -> dict[str, Any]:
        """The Stats object of the public report contract."""
        n = self.responses
        interval = self.interval
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
            "nps_low": interval[0] if interval else None,
            "nps_high": interval[1] if interval else None,
        }


EMPTY = NpsStats(0, 0, 0)
SIGNIFICANCE_LEVEL = 0.05


def variance(stats: NpsStats) -> float | None:
    """Variance of the NPS as a fraction (-1…1), adjusted like the margin: SE'^2; None with no responses.

    Never 0, so two unanimous samples of one answer each are not "certainly different"; from a few
    hundred responses on it is the plain (p + d - (p - d)^2) / n.
    """
    adjusted = stats._adjusted()
    return None if adjusted is None else adjusted[1] ** 2


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
            "test": "two-sample z-test on the adjusted-Wald NPS (+3/4 promoter, +3/2 passive, "
            "+3/4 detractor), two-sided, alpha 0.05",
        }


def compare(current: NpsStats, previous: NpsStats) -> Comparison:
    """Two-sample z-test: z = (NPS1' - NPS2') / sqrt(var1 + var2), two-sided p = erfc(|z| / sqrt 2).

    NPS' and var are the adjusted ones (`NpsStats._adjusted`, `variance`), as Agresti and Caffo adjust
    the two-proportion test; `change` is the observed difference.
    """
    a, b = current._adjusted(), previous._adjusted()
    if a is None or b is None:
        return Comparison(None, None, None)
    diff = (current.promoters - current.detractors) / current.responses - (
        previous.promoters - previous.detractors
    ) / previous.responses
    z = (a[0] - b[0]) / math.sqrt(a[1] ** 2 + b[1] ** 2)
    return Comparison(round(diff * 100, 1), round(z, 3), round(math.erfc(abs(z) / math.sqrt(2)), 4))


def wilson_interval(successes: int, trials: int) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion (a response rate), as fractions; None with no trials.

    Centre (p + z²/2n) / (1 + z²/n), half-width z·√(p(1 − p)/n + z²/4n²) / (1 + z²/n), z = 1.96: unlike
    p ± z·√(p(1 − p)/n) it stays inside 0…1 and is not zero-wide at 0 or n successes, which small steps
    (a third reminder reaching a handful of people) hit often. Wilson 1927; Agresti & Coull 1998.
    """
    if trials <= 0:
        return None
    p = min(max(successes / trials, 0.0), 1.0)
    z2 = Z_95 * Z_95
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = Z_95 * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return max(centre - half, 0.0), min(centre + half, 1.0)


def stats_from_scores(scores: list[int]) -> NpsStats:
    """Count a list of scores into NpsStats (for tests and small in-memory sets)."""
    cats = [category_for(s) for s in scores]
    return NpsStats(cats.count(PROMOTER), cats.count(PASSIVE), cats.count(DETRACTOR))


def format_margin(margin: float | None) -> str:
    """Render a margin of error in points: "74", "3", under one point "0.4" (never a bare "0")."""
    if margin is None:
        return "—"
    return f"{margin:.0f}" if margin >= 1 else f"{margin:.1f}"


def format_nps(nps: float | None) -> str:
    """Render an NPS the way people read it: "+28", "-5", "0", or an em dash when undefined."""
    if nps is None:
        return "—"
    whole = round(nps)
    return f"+{whole}" if whole > 0 else str(whole)


def impact(overall: NpsStats, part: NpsStats) -> tuple[float | None, float | None]:
    """How many NPS points `part` (a theme's responses, inside `overall`) moves the score, and the 95%
    margin of that figure: NPS(overall) - NPS(overall without part), in points, one decimal.

    Negative: the part pulls the score down (removing it would raise it). The margin is the delta
    method on the multinomial of six cells (in/out of the part x promoter/passive/detractor, shares
    pi over the n responses): with x = +1/0/-1, S = sum x pi over the cells outside the part and m
    their share, the gradient of f = NPS_all - S/m is x for a cell inside and x - x/m + S/m^2 for a
    cell outside, and var f = (sum pi g^2 - (sum pi g)^2) / n. (None, None) when nothing remains
    outside the part or there are no responses; (0.0, None) for an empty part.
    """
    rest = NpsStats(
        overall.promoters - part.promoters,
        overall.passives - part.passives,
        overall.detractors - part.detractors,
    )
    n = overall.responses
    if not n or not rest.responses or min(rest.promoters, rest.passives, rest.detractors) < 0:
        return None, None
    if not part.responses:
        return 0.0, None
    inside = ((1, part.promoters), (0, part.passives), (-1, part.detractors))
    outside = ((1, rest.promoters), (0, rest.passives), (-1, rest.detractors))
    m = rest.responses / n
    s = (rest.promoters - rest.detractors) / n
    value = (overall.promoters - overall.detractors) / n - s / m
    cells = [(c / n, x) for x, c in inside] + [(c / n, x - x / m + s / m**2) for x, c in outside]
    mean = sum(pi * g for pi, g in cells)
    var = max(0.0, (sum(pi * g * g for pi, g in cells) - mean * mean) / n)
    return round(value * 100, 1), round(Z_95 * math.sqrt(var) * 100, 1)
