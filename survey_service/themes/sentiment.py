"""Sentiment of a comment (positive / neutral / negative) from the lexicons in lexicons.py.

Each lexicon word counts as typed and, when stemming only strips an inflection, by its stem too.
A comment's score is the sum of its words' polarities, where a negator ("not", "nicht", "pas",
"no") flips the next three words and an intensifier ("very", "sehr", "très", "muy") scales the
next word by 1.5; the sum is squashed into -1..1 as VADER does (x / sqrt(x² + 15)). At ±0.3 and
beyond a comment is
positive/negative. Comments in an unsupported language are neutral (score 0): we do not guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from survey_service.themes import text
from survey_service.themes.lexicons import INTENSIFIERS, NEGATORS, SENTIMENT

THRESHOLD = 0.3
NEGATION_SPAN = 3
INTENSITY = 1.5
ALPHA = 15.0


@dataclass(frozen=True)
class Sentiment:
    label: str  # positive | neutral | negative
    score: float  # -1..1


@cache
def _lexicon(language: str) -> tuple[dict[str, int], dict[str, int]]:
    """(exact folded words, stems): a stem stands for its word only when stemming stripped an
    inflection (at most two letters), not a derivation ("useful" -> "use" would make "use" positive)."""
    words = {text.fold(word): value for word, value in SENTIMENT[language].items()}
    stems: dict[str, int] = {}
    for word, value in SENTIMENT[language].items():
        stem = text.stem(word, language)
        if len(text.fold(word)) - len(stem) <= 2:
            stems.setdefault(stem, value)
    return words, stems


def sentiment(words: list[str], stems: list[str], language: text.Language) -> Sentiment:
    """The sentiment of a comment from its lower-case words and their stems."""
    if not language.supported or language.code not in SENTIMENT:
        return Sentiment("neutral", 0.0)
    exact, by_stem = _lexicon(language.code)
    negators, intensifiers = NEGATORS[language.code], INTENSIFIERS[language.code]
    total, negated, boost = 0.0, 0, 1.0
    for word, stem in zip(words, stems, strict=True):
        if word in negators:
            negated = NEGATION_SPAN
            continue
        if word in intensifiers:
            boost = INTENSITY
            continue
        value = exact.get(text.fold(word), by_stem.get(stem))
        if value is not None:
            total += value * boost * (-1 if negated else 1)
        boost = 1.0
        negated = max(0, negated - 1)
    score = total / math.sqrt(total * total + ALPHA) if total else 0.0
    label = "positive" if score >= THRESHOLD else "negative" if score <= -THRESHOLD else "neutral"
    return Sentiment(label, round(score, 4))
