"""One comment's analysis, without the database: its language, themes and sentiment."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from survey_service.themes import matching, sentiment, text


@dataclass(frozen=True)
class Analysis:
    language: text.Language
    theme_ids: frozenset[int]
    sentiment: sentiment.Sentiment
    comment_hash: str


def comment_hash(comment: str) -> str:
    """A short fingerprint of a comment: an edit is analysed again, the same text is not."""
    return hashlib.blake2b(comment.encode(), digest_size=8).hexdigest()


def analyse(comment: str, locale: str | None, matcher: matching.Matcher) -> Analysis:
    """Detect the language, stem once, then match the themes and score the sentiment on those stems."""
    words = text.tokens(comment)
    language = text.detect(words, locale)
    stems = matching.stems_for(words, language)
    return Analysis(
        language=language,
        theme_ids=frozenset(matcher.themes(stems, matching.matching_language(language))),
        sentiment=sentiment.sentiment(words, stems, language),
        comment_hash=comment_hash(comment),
    )
