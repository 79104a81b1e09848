"""Matching on stems in four languages, language detection and its fallback, and the labelled set."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from survey_service.themes import analysis, matching, quality, text

LABELLED = Path(__file__).resolve().parents[1] / "data" / "themes" / "labelled.tsv"
# Nothing here may reach the network (no model or lexicon is downloaded, ever).
pytestmark = pytest.mark.usefixtures("no_network")


def _themes(comment: str, locale: str | None = None) -> set[str]:
    compiled, keys = quality.builtin_matcher()
    return {keys[i] for i in analysis.analyse(comment, locale, compiled).theme_ids}


def test_builtin_themes_labelled_set_macro_f1_at_least_0_8() -> None:
    rows = quality.load(LABELLED)
    assert len(rows) >= 300
    assert {r.language for r in rows} == {"en", "de", "fr", "es"}
    assert sum(1 for r in rows if len(r.themes) > 1) >= 30 and sum(1 for r in rows if not r.themes) >= 30
    scores, macro, _ = quality.evaluate(rows)
    assert macro >= 0.8, [(s.key, round(s.precision, 2), round(s.recall, 2)) for s in scores]
    assert all(s.support >= 25 for s in scores)


@pytest.mark.parametrize(
    ("comment", "theme"),
    [
        ("The price is high", "price"),
        ("Prices went up again", "price"),
        ("Your pricing page is confusing", "price"),
        ("Der Preis stimmt nicht", "price"),
        ("Die Preise sind gestiegen", "price"),
        ("Les tarifs ont augmenté", "price"),
        ("Los precios subieron", "price"),
        ("It crashed twice today", "reliability"),
        ("Ständig Abstürze", "reliability"),
        ("Das Programm stürzt ab", "reliability"),
        ("The integrations are great", "integrations"),
        ("Meilleure intégration avec Slack svp", "integrations"),
    ],
)
def test_match_inflected_forms_in_four_languages_find_the_theme(comment: str, theme: str) -> None:
    assert theme in _themes(comment)


def test_match_accents_typed_or_not_match_alike() -> None:
    assert "integrations" in _themes("La integracion con nuestro CRM no funciona")
    assert "integrations" in _themes("La integración con nuestro CRM no funciona")


def test_match_phrase_needs_its_words_in_order() -> None:
    compiled = matching.Matcher([matching.Rule(1, ("dark mode",))])

    def found(comment: str) -> bool:
        result = analysis.analyse(comment, "en", compiled)
        return 1 in result.theme_ids

    assert found("Please add a dark mode to the editor")
    assert found("Dark modes everywhere!")
    assert not found("The mode is dark")


def test_detect_function_words_decide_the_language() -> None:
    assert (
        text.detect(text.tokens("Die App ist leider sehr langsam und der Support antwortet nicht")).code
        == "de"
    )
    assert text.detect(text.tokens("Le support est très lent et nous ne sommes pas contents")).code == "fr"
    assert text.detect(text.tokens("El soporte es muy lento y no nos responden")).code == "es"
    assert text.detect(text.tokens("The support is slow and they never reply to our tickets")).code == "en"


def test_detect_short_comment_uses_the_locale_then_english() -> None:
    words = text.tokens("Preise!")
    assert text.detect(words, "de-AT") == text.Language("de", "locale", True)
    assert text.detect(words, None) == text.Language("en", "fallback", True)


@pytest.mark.parametrize(
    ("comment", "locale", "code"),
    [
        ("Questo prodotto è molto lento e non funziona con il nostro sistema", None, "it"),
        ("Het is niet erg snel maar wel heel handig voor ons", None, "nl"),
        ("Отличный сервис, но дорого", None, "und"),
        ("価格が高すぎます", None, "und"),
        ("ok", "pt-BR", "pt"),
    ],
)
def test_unsupported_language_falls_back_and_is_flagged(comment: str, locale: str | None, code: str) -> None:
    compiled, _ = quality.builtin_matcher()
    result = analysis.analyse(comment, locale, compiled)
    assert result.language.code == code and not result.language.supported
    assert result.sentiment.label == "neutral"


@pytest.mark.parametrize(
    ("comment", "label"),
    [
        ("I love it, excellent support and very fast", "positive"),
        ("Terrible. It crashes all the time and support is useless", "negative"),
        ("It is not good at all", "negative"),
        ("Hervorragend, sehr zufrieden", "positive"),
        ("Schrecklich langsam und unzuverlässig", "negative"),
        ("Très décevant, lent et instable", "negative"),
        ("Excelente, muy fácil y rápido", "positive"),
        ("We use it for invoices", "neutral"),
    ],
)
def test_sentiment_lexicon_labels_comments(comment: str, label: str) -> None:
    compiled, _ = quality.builtin_matcher()
    assert analysis.analyse(comment, None, compiled).sentiment.label == label


def test_no_network_fixture_refuses_an_outside_connection() -> None:
    with pytest.raises(AssertionError, match="attempted"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with socket.socket() as raw, pytest.raises(AssertionError, match="network access attempted"):
        raw.connect(("192.0.2.1", 80))


def test_analyse_empty_or_odd_text_never_raises() -> None:
    compiled, _ = quality.builtin_matcher()
    for comment in ["", "   ", "!!!", "🙂🙂", "a" * 5000, "\u0000\u200b", "price" * 1000]:
        analysis.analyse(comment, None, compiled)
