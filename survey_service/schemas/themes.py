"""Marshmallow In/Out schemas of themes, their report, suggestions and sentiment contradictions."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from survey_service.schemas.common import THEME_KEY, Instant, PropertyName
from survey_service.schemas.reports import ReportQuery, Stats

MAX_KEYWORDS = 200
MAX_KEYWORD_CHARS = 60
MAX_KEYWORD_WORDS = 5
KEYWORD_PUNCTUATION = frozenset(" -'’.&+")


class Keyword(fields.String):
    """A word or short phrase matched on stems: letters, digits, spaces and - ' . & + only (no patterns)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        keyword = " ".join(super()._deserialize(value, attr, data, **kwargs).split())
        if not 1 <= len(keyword) <= MAX_KEYWORD_CHARS:
            raise ValidationError(f"A keyword has 1 to {MAX_KEYWORD_CHARS} characters.")
        if len(keyword.split()) > MAX_KEYWORD_WORDS:
            raise ValidationError(f"A keyword has at most {MAX_KEYWORD_WORDS} words.")
        if not any(ch.isalnum() for ch in keyword) or any(
            not (ch.isalnum() or ch in KEYWORD_PUNCTUATION) for ch in keyword
        ):
            raise ValidationError(
                "Letters, digits, spaces and - ' . & + only: keywords are words, not patterns."
            )
        return keyword


class Label(fields.String):
    """A theme's label: 1-80 printable characters."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        label = " ".join(super()._deserialize(value, attr, data, **kwargs).split())
        if not 1 <= len(label) <= 80 or not label.isprintable():
            raise ValidationError("A label has 1 to 80 printable characters.")
        return label


def _keywords(required: bool) -> fields.List[Any]:
    return fields.List(
        Keyword(),
        required=required,
        validate=validate.Length(1, MAX_KEYWORDS),
        metadata={"description": "words or phrases (at most 5 words), matched on word stems in en/de/fr/es"},
    )


class ThemeIn(Schema):
    """POST /api/v1/themes."""

    key = fields.String(validate=THEME_KEY, metadata={"description": "default: from the label"})
    label = Label(required=True)
    keywords = _keywords(True)
    enabled = fields.Boolean(load_default=True)


class ThemePatch(Schema):
    """PATCH /api/v1/themes/<id>: rename, change keywords, switch on or off."""

    label = Label()
    keywords = _keywords(False)
    enabled = fields.Boolean()

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give label, keywords or enabled.")


class ThemeMerge(Schema):
    """POST /api/v1/themes/<id>/merge."""

    into = fields.Integer(required=True, validate=validate.Range(1, 2**31 - 1))


class ThemeOut(Schema):
    id = fields.Integer()
    key = fields.String()
    label = fields.String()
    keywords = fields.List(fields.String())
    enabled = fields.Boolean()
    builtin = fields.Boolean()
    created_at = Instant()
    updated_at = Instant()


class ThemeList(Schema):
    data = fields.List(fields.Nested(ThemeOut))


class ThemeReportQuery(ReportQuery):
    """GET /api/v1/reports/themes: the NPS report's filters, plus the trend and examples."""

    class Meta:
        exclude = ("mode", "compare", "rolling_days")

    group_by = PropertyName(metadata={"description": "also each theme's Stats per value of this property"})
    trend = fields.Boolean(load_default=False, metadata={"description": "each theme's Stats per `interval`"})
    examples = fields.Integer(load_default=3, validate=validate.Range(0, 10))
    with_languages = fields.Boolean(
        load_default=False,
        data_key="languages",
        metadata={"description": "also count the analysed comments per language (a scan of them)"},
    )


class Example(Schema):
    response_id = fields.Integer()
    score = fields.Integer()
    comment = fields.String()
    created_at = Instant()


class ThemeGroup(Stats):
    key = fields.String(allow_none=True)


class ThemePeriod(Stats):
    period = fields.String()


class ThemeStats(Stats):
    id = fields.Integer()
    key = fields.String()
    label = fields.String()
    share_of_comments = fields.Float(allow_none=True, metadata={"description": "% of commented responses"})
    impact = fields.Float(
        allow_none=True,
        metadata={
            "description": "NPS points: the filtered NPS minus the NPS without this theme's responses "
            "(negative: the theme pulls the score down)"
        },
    )
    impact_margin = fields.Float(
        allow_none=True, metadata={"description": "95% margin of `impact` (delta method)"}
    )
    examples = fields.List(fields.Nested(Example))
    series = fields.List(fields.Nested(ThemePeriod))
    groups = fields.List(fields.Nested(ThemeGroup))


class LanguageCount(Schema):
    language = fields.String()
    supported = fields.Boolean()
    comments = fields.Integer()
    detected = fields.Integer()
    locale = fields.Integer()
    fallback = fields.Integer()


class OverallStats(Stats):
    pass


class ThemeReport(Schema):
    overall = fields.Nested(OverallStats)
    themes = fields.List(fields.Nested(ThemeStats))
    unthemed = fields.Integer(metadata={"description": "analysed comments carrying no theme"})
    unthemed_stats = fields.Nested(Stats)
    min_responses = fields.Integer()
    languages = fields.List(fields.Nested(LanguageCount), allow_none=True)


class SuggestionQuery(Schema):
    """GET /api/v1/themes/suggestions."""

    since = Instant()
    until = Instant(end_of_day=True)
    limit = fields.Integer(load_default=10, validate=validate.Range(1, 50))


class SuggestionExample(Schema):
    response_id = fields.Integer()
    comment = fields.String()


class Suggestion(Schema):
    phrase = fields.String()
    stems = fields.List(fields.String())
    side = fields.String(metadata={"description": "detractor | promoter: who uses the phrase more"})
    z = fields.Float(metadata={"description": "log-odds ratio / its standard error (Monroe et al. 2008)"})
    log_odds = fields.Float()
    detractors = fields.Integer(metadata={"description": "detractor comments with the phrase"})
    promoters = fields.Integer(metadata={"description": "promoter comments with the phrase"})
    significant = fields.Boolean(metadata={"description": "|z| >= 1.96"})
    examples = fields.List(fields.Nested(SuggestionExample))


class Suggestions(Schema):
    comments = fields.Integer()
    detractor_phrases = fields.List(fields.Nested(Suggestion))
    promoter_phrases = fields.List(fields.Nested(Suggestion))


class SuggestionIn(Schema):
    """POST /api/v1/themes/suggestions: turn a phrase into a theme."""

    phrase = Keyword(required=True)
    label = Label()


class ContradictionQuery(Schema):
    """GET /api/v1/reports/sentiment."""

    since = Instant()
    until = Instant(end_of_day=True)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))


class Contradiction(Schema):
    response_id = fields.Integer()
    score = fields.Integer()
    category = fields.String()
    comment = fields.String()
    created_at = Instant()
    sentiment = fields.String()
    sentiment_score = fields.Float()
    language = fields.String()


class SentimentCounts(Schema):
    positive = fields.Integer()
    neutral = fields.Integer()
    negative = fields.Integer()


class SentimentReport(Schema):
    sentiment = fields.Nested(SentimentCounts)
    data = fields.List(
        fields.Nested(Contradiction),
        metadata={"description": "promoters with a negative comment, detractors with a positive one"},
    )
