"""Words of a comment: tokens, their stems per language, and the comment's language.

Stemming is Snowball (the `snowballstemmer` package: pure Python, the reference algorithms for
English, German, French and Spanish, no data to download). A stem is computed once per word and
language and cached: a stemmer call costs tens of microseconds, a cached one a dictionary lookup.

The language comes from the text when its function words say so clearly (a vote of stop words, see
lexicons.STOP_WORDS), else from the person's locale, else from a single function word, else English.
Comments in a language none of the stemmers speaks (other Latin-script languages with a stop-word
list, or a non-Latin script) are matched with plain lower-cased words and counted as unsupported;
they never raise.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import snowballstemmer

from survey_service.themes.lexicons import STOP_WORDS

SUPPORTED = ("en", "de", "fr", "es")
FALLBACK = "en"
_STEMMERS = {"en": "english", "de": "german", "fr": "french", "es": "spanish"}
# Letters (any script) and digits, with inner apostrophes/hyphens split off: "don't" -> "don", "t".
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# A clear detection: this many function words at least, and more than any other language's.
MIN_STOP_WORDS = 2
# Each stop word with the languages it belongs to: one lookup per word of a comment.
_STOP_LANGUAGES: dict[str, tuple[str, ...]] = {}
for _code, _words in STOP_WORDS.items():
    for _word in _words:
        _STOP_LANGUAGES[_word] = (*_STOP_LANGUAGES.get(_word, ()), _code)


@dataclass(frozen=True)
class Language:
    """The language a comment is read in, where that came from, and whether we stem it."""

    code: str
    source: str  # detected | locale | fallback
    supported: bool


def tokens(comment: str) -> list[str]:
    """The lower-cased words of a comment (apostrophes split: l'interface -> l, interface)."""
    return _WORD.findall(comment.lower())


@lru_cache(maxsize=200_000)
def fold(word: str) -> str:
    """A word without diacritics (é -> e, ü -> u, ß -> ss), so accents typed or not match alike."""
    decomposed = unicodedata.normalize("NFKD", word.replace("ß", "ss"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=8)
def _stemmer(language: str) -> Any:
    return snowballstemmer.stemmer(_STEMMERS[language])


@lru_cache(maxsize=200_000)
def stem(word: str, language: str) -> str:
    """The folded Snowball stem of one lower-case word (unsupported languages: the folded word)."""
    if language not in _STEMMERS:
        return fold(word)
    return fold(_stemmer(language).stemWord(word))


def stems(words: list[str], language: str) -> list[str]:
    """The stems of a comment's words, in order."""
    return [stem(w, language) for w in words]


def _locale_language(locale: str | None) -> str | None:
    if not locale:
        return None
    code = locale.replace("_", "-").split("-")[0].lower()
    return code or None


def _non_latin(words: list[str]) -> bool:
    """Most letters outside Latin script (Cyrillic, Greek, CJK, Arabic...)."""
    if all(max(w) < "\u0250" for w in words):  # the common case, at C speed
        return False
    letters = [ch for w in words for ch in w if ch.isalpha()]
    if not letters:
        return False
    latin = sum(1 for ch in letters if ch < "\u0250")
    return latin * 2 < len(letters)


def detect(words: list[str], locale: str | None = None) -> Language:
    """The comment's language: its function words, else the person's locale, else English."""
    if _non_latin(words):
        return Language("und", "detected", False)
    votes = dict.fromkeys(STOP_WORDS, 0)
    for word in words:
        for code in _STOP_LANGUAGES.get(word, ()):
            votes[code] += 1
    ranked = sorted(votes.items(), key=lambda item: -item[1])
    (best, hits), (_, runner_up) = ranked[0], ranked[1]
    if hits >= MIN_STOP_WORDS and hits > runner_up:
        return Language(best, "detected", best in SUPPORTED)
    wanted = _locale_language(locale)
    if wanted is not None:
        return Language(wanted, "locale", wanted in SUPPORTED)
    if hits and hits > runner_up:  # one function word is weak evidence, but better than a guess
        return Language(best, "detected", best in SUPPORTED)
    return Language(FALLBACK, "fallback", True)
