"""Localised strings: every language has every key, locales map to languages, custom wording is kept."""

from __future__ import annotations

import pytest

from survey_service.core.i18n import CATALOG, DEFAULT_QUESTION, Strings, negotiate


@pytest.mark.parametrize("language", sorted(CATALOG))
def test_catalog_language_has_every_english_key(language: str) -> None:
    assert set(CATALOG[language]) == set(CATALOG["en"])
    assert all(value.strip() for value in CATALOG[language].values())


@pytest.mark.parametrize(
    ("locales", "language"),
    [(("de-AT",), "de"), (("fr_CA",), "fr"), (("xx", "de"), "de"), ((None, None), "en"), (("EN-gb",), "en")],
)
def test_language_for_locale_picks_first_supported(locales: tuple[str | None, ...], language: str) -> None:
    assert negotiate(*locales) == language


def test_strings_question_translates_default_and_keeps_custom_wording() -> None:
    german = Strings("de")
    assert german.question(DEFAULT_QUESTION, "Acme").startswith("Wie wahrscheinlich")
    assert german.question("Would you buy {product} again?", "Acme") == "Would you buy Acme again?"
    assert german.followup({"promoter": "Own words"}, "promoter") == "Own words"
    assert german.followup({}, "detractor") == CATALOG["de"]["followup.detractor"]
