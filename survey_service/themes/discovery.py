"""Suggested themes: phrases detractors use far more than promoters, and the other way round.

The statistic is the log-odds ratio with an informative Dirichlet prior of Monroe, Colaresi & Quinn
(2008, "Fightin' Words", Political Analysis 16(4)): for a phrase w counted y_D times among
detractors' comments (n_D phrases in all) and y_P times among promoters' (n_P),
    delta = log((y_D + a_w) / (n_D + a_0 - y_D - a_w)) - log((y_P + a_w) / (n_P + a_0 - y_P - a_w)),
    var(delta) ~ 1 / (y_D + a_w) + 1 / (y_P + a_w),   z = delta / sqrt(var),
where the prior a_w = a_0 * (share of w among all comments' phrases) shrinks rare phrases towards
no difference, so a word said twice is not "infinitely" more frequent. |z| >= 1.96 is significant at
the 5% level (two-sided, one phrase at a time: with many phrases a few pass by chance, so the list
is ranked by z and shows counts). Phrases are stems (unigrams and bigrams, stop words left out),
each counted once per comment, shown as their most frequent wording.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from survey_service.themes import matching, text
from survey_service.themes.lexicons import STOP_WORDS

PRIOR_STRENGTH = 500.0
Z_SIGNIFICANT = 1.96
MIN_COMMENTS = 3
MIN_WORD = 3
EXAMPLES = 3
_ALL_STOP = frozenset().union(*STOP_WORDS.values())


@dataclass(frozen=True)
class Comment:
    response_id: int
    category: str
    comment: str
    language: str


@dataclass
class Phrase:
    key: tuple[str, ...]
    detractors: int = 0
    promoters: int = 0
    wordings: Counter[str] = field(default_factory=Counter)
    examples: list[int] = field(default_factory=list)


def _phrases(comment: Comment) -> dict[tuple[str, ...], str]:
    """The comment's unigram and bigram stems (no stop words, no short words) with their wording."""
    words = text.tokens(comment.comment)
    language = comment.language if comment.language in text.SUPPORTED else matching.UNSUPPORTED
    kept = [(w, text.stem(w, language)) for w in words if w not in _ALL_STOP and len(w) >= MIN_WORD]
    found: dict[tuple[str, ...], str] = {}
    for i, (word, stem) in enumerate(kept):
        found.setdefault((stem,), word)
        if i + 1 < len(kept):
            found.setdefault((stem, kept[i + 1][1]), f"{word} {kept[i + 1][0]}")
    return found


@dataclass(frozen=True)
class Suggestion:
    phrase: str
    stems: tuple[str, ...]
    side: str  # detractor | promoter
    z: float
    log_odds: float
    detractors: int
    promoters: int
    significant: bool
    example_ids: tuple[int, ...]


def suggest(
    comments: Iterable[Comment],
    covered: frozenset[tuple[str, ...]] | set[tuple[str, ...]] = frozenset(),
    limit: int = 10,
) -> dict[str, list[Suggestion]]:
    """The phrases most over-represented among detractors and among promoters, by z-score."""
    table: dict[tuple[str, ...], Phrase] = {}
    for comment in comments:
        if comment.category not in ("detractor", "promoter"):
            continue
        for key, wording in _phrases(comment).items():
            entry = table.setdefault(key, Phrase(key))
            if comment.category == "detractor":
                entry.detractors += 1
            else:
                entry.promoters += 1
            entry.wordings[wording] += 1
            if len(entry.examples) < EXAMPLES:
                entry.examples.append(comment.response_id)
    n_d = sum(p.detractors for p in table.values())
    n_p = sum(p.promoters for p in table.values())
    total = n_d + n_p
    scored: list[Suggestion] = []
    if not n_d or not n_p:
        return {"detractor": [], "promoter": []}
    for entry in table.values():
        if entry.detractors + entry.promoters < MIN_COMMENTS or entry.key in covered:
            continue
        alpha = PRIOR_STRENGTH * (entry.detractors + entry.promoters) / total
        delta = math.log(
            (entry.detractors + alpha) / (n_d + PRIOR_STRENGTH - entry.detractors - alpha)
        ) - math.log((entry.promoters + alpha) / (n_p + PRIOR_STRENGTH - entry.promoters - alpha))
        z = delta / math.sqrt(1 / (entry.detractors + alpha) + 1 / (entry.promoters + alpha))
        scored.append(
            Suggestion(
                phrase=entry.wordings.most_common(1)[0][0],
                stems=entry.key,
                side="detractor" if z > 0 else "promoter",
                z=round(z, 2),
                log_odds=round(delta, 3),
                detractors=entry.detractors,
                promoters=entry.promoters,
                significant=abs(z) >= Z_SIGNIFICANT,
                example_ids=tuple(entry.examples),
            )
        )
    detractor = sorted((s for s in scored if s.z > 0), key=lambda s: (-s.z, s.phrase))[:limit]
    promoter = sorted((s for s in scored if s.z < 0), key=lambda s: (s.z, s.phrase))[:limit]
    return {"detractor": detractor, "promoter": promoter}


def covered_stems(keywords: Iterable[str]) -> set[tuple[str, ...]]:
    """The stem sequences existing themes already match (in every supported language)."""
    found: set[tuple[str, ...]] = set()
    for keyword in keywords:
        words = text.tokens(keyword)
        for language in (*text.SUPPORTED, matching.UNSUPPORTED):
            found.add(tuple(text.stems(words, language)))
    return found
