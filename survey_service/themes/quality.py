"""How well a set of rules matches labelled comments: per-theme precision, recall and F1."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from survey_service.themes import analysis, matching
from survey_service.themes.builtin import BUILTIN_THEMES


@dataclass(frozen=True)
class Labelled:
    language: str
    score: int
    themes: frozenset[str]
    comment: str


@dataclass(frozen=True)
class Scores:
    key: str
    support: int
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.support if self.support else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def load(path: Path) -> list[Labelled]:
    """Read a labelled TSV: language, score, themes (comma-separated keys or -), comment."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            Labelled(
                row[0], int(row[1]), frozenset() if row[2] == "-" else frozenset(row[2].split(",")), row[3]
            )
            for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            if row
        ]


def builtin_matcher() -> tuple[matching.Matcher, dict[int, str]]:
    """The built-in rules compiled with stand-in ids, and those ids' keys."""
    keys = {i: theme.key for i, theme in enumerate(BUILTIN_THEMES, start=1)}
    rules = (matching.Rule(i, theme.keywords) for i, theme in zip(keys, BUILTIN_THEMES, strict=True))
    return matching.Matcher(rules), keys


def evaluate(rows: Iterable[Labelled]) -> tuple[list[Scores], float, float]:
    """Per-theme scores of the built-in rules, their macro-F1, and the language detection accuracy
    (comments analysed without a locale, as the worst case)."""
    compiled, keys = builtin_matcher()
    tallies = {key: [0, 0, 0, 0] for key in keys.values()}  # support, tp, fp, fn
    languages_right = total = 0
    for row in rows:
        found = analysis.analyse(row.comment, None, compiled)
        predicted = {keys[i] for i in found.theme_ids}
        languages_right += found.language.code == row.language
        total += 1
        for key, tally in tallies.items():
            tally[0] += key in row.themes
            tally[1] += key in row.themes and key in predicted
            tally[2] += key not in row.themes and key in predicted
            tally[3] += key in row.themes and key not in predicted
    scores = [Scores(key, *tally) for key, tally in tallies.items()]
    macro = sum(s.f1 for s in scores) / len(scores)
    return scores, macro, languages_right / total if total else 0.0
