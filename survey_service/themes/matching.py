"""Which themes a comment carries: keywords and phrases compared on stems, in the comment's language.

A Matcher is compiled once per set of rules: every keyword is split into words and stemmed in each
supported language (and folded for the unsupported ones); single words go into a dictionary
stem -> theme ids, phrases into a dictionary of their first stem -> (stems, theme id). Matching a
comment is then one dictionary lookup per word, so cost grows with the comment, not the rules.
Users give words, never patterns: nothing a user types is compiled into a regular expression.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from survey_service.themes import text

UNSUPPORTED = "und"


@dataclass(frozen=True)
class Rule:
    """A theme's id and its keywords as typed."""

    theme_id: int
    keywords: tuple[str, ...]


@dataclass
class _Index:
    words: dict[str, set[int]] = field(default_factory=dict)
    phrases: dict[str, list[tuple[tuple[str, ...], int]]] = field(default_factory=dict)


class Matcher:
    """Compiled rules: `themes(stems, language)` gives the ids of the themes a comment carries."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._by_language: dict[str, _Index] = {}
        rules = tuple(rules)
        for language in (*text.SUPPORTED, UNSUPPORTED):
            index = _Index()
            for rule in rules:
                for keyword in rule.keywords:
                    stems = tuple(text.stems(text.tokens(keyword), language))
                    if len(stems) == 1:
                        index.words.setdefault(stems[0], set()).add(rule.theme_id)
                    elif stems:
                        index.phrases.setdefault(stems[0], []).append((stems, rule.theme_id))
            self._by_language[language] = index

    def themes(self, stems: list[str], language: str) -> set[int]:
        """The theme ids whose keywords occur in these stems (a comment's, in `language`)."""
        index = self._by_language.get(language) or self._by_language[UNSUPPORTED]
        found: set[int] = set()
        for i, stem in enumerate(stems):
            ids = index.words.get(stem)
            if ids:
                found |= ids
            for phrase, theme_id in index.phrases.get(stem, ()):
                if tuple(stems[i : i + len(phrase)]) == phrase:
                    found.add(theme_id)
        return found


def stems_for(words: list[str], language: text.Language) -> list[str]:
    """A comment's stems in its language (plain folded words when the language is unsupported)."""
    return text.stems(words, language.code if language.supported else UNSUPPORTED)


def matching_language(language: text.Language) -> str:
    return language.code if language.supported else UNSUPPORTED
