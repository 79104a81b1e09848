"""The one translation catalog: complete in every language, one language choice, same words everywhere."""

from __future__ import annotations

import html
import json
import string
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from survey_service.core import i18n, keys
from survey_service.extensions import db
from survey_service.mail.compose import compose_survey_email
from survey_service.models import Person, Project, Survey, SurveyRequest
from survey_service.services import email_requests
from survey_service.services.people import upsert_person
from tests.support.mail import flush_redis

WIDGET_KEYS = {
    "locale",
    "question",
    "followups",
    "title",
    "low",
    "high",
    "send",
    "thanks",
    "close",
    "picked",
    "yours",
}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_language_has_every_key_and_no_empty_text(language: str) -> None:
    every_key = set().union(*(set(table) for table in i18n.CATALOG.values()))
    assert set(i18n.CATALOG[language]) == every_key
    assert all(text.strip() for text in i18n.CATALOG[language].values())


@pytest.mark.parametrize("language", [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT_LANGUAGE])
def test_placeholders_are_the_same_in_every_language(language: str) -> None:
    english = i18n.CATALOG[i18n.DEFAULT_LANGUAGE]
    differ = {
        key: placeholders(text)
        for key, text in i18n.CATALOG[language].items()
        if placeholders(text) != placeholders(english[key])
    }
    assert differ == {}


def test_languages_of_both_former_catalogs_are_kept() -> None:
    assert set(i18n.LANGUAGES) == {"en", "de", "fr", "es"}


@pytest.mark.parametrize(
    ("locales", "language"),
    [
        (("de-AT",), "de"),
        (("de_AT",), "de"),
        (("DE-at-1996",), "de"),
        (("fr-CA",), "fr"),
        (("es-419",), "es"),
        (("xx-YY", "fr"), "fr"),
        (("", None, "de"), "de"),
        (("xx",), "en"),
        ((), "en"),
    ],
)
def test_negotiate_falls_back_region_then_next_locale_then_english(
    locales: tuple[str | None, ...], language: str
) -> None:
    assert i18n.negotiate(*locales) == language


@pytest.mark.parametrize(
    ("header", "locales"),
    [
        ("de-AT,de;q=0.9,en;q=0.8", ["de-AT", "de", "en"]),
        ("en;q=0.2, fr", ["fr", "en"]),
        ("es;q=0, *;q=0.5, it", ["it"]),
        ("de;q=nonsense, fr;q=0.5", ["fr"]),
        ("", []),
        (None, []),
    ],
)
def test_accepted_locales_orders_by_quality(header: str | None, locales: list[str]) -> None:
    assert i18n.accepted_locales(header) == locales


def test_browser_locale_negotiates_through_its_list() -> None:
    assert i18n.negotiate(None, *i18n.accepted_locales("it, de-CH;q=0.8, en;q=0.5")) == "de"


def test_strings_format_values_and_keep_custom_wording() -> None:
    german = i18n.Strings("de-AT")
    assert german.language == "de"
    assert german("subject", product="Acme") == "Eine kurze Frage zu Acme"
    assert german.question(i18n.DEFAULT_QUESTION, "Acme") == i18n.CATALOG["de"]["question"].replace(
        "{product}", "Acme"
    )
    assert german.question("Rate {product}", "Acme") == "Rate Acme"
    assert german.followup(i18n.DEFAULT_FOLLOWUPS, "passive") == i18n.CATALOG["de"]["followup.passive"]
    assert german.followup({"passive": "Own"}, "passive") == "Own"
    assert i18n.Strings("xx").language == "en"


def test_widget_text_shape_and_words_come_from_the_catalog() -> None:
    text = i18n.widget_text("fr", "Acme")
    assert set(text) == WIDGET_KEYS and list(text["followups"]) == list(i18n.CATEGORIES)
    t = i18n.Strings("fr")
    assert text["question"] == t.question(i18n.DEFAULT_QUESTION, "Acme")
    assert text["followups"]["detractor"] == t("followup.detractor")
    assert (text["low"], text["high"], text["thanks"]) == (
        t("not_likely"),
        t("extremely_likely"),
        t("thanks"),
    )
    # The widget's short button and the landing page's longer one are both kept.
    assert (text["send"], t("send")) == ("Envoyer", "Envoyer")
    assert (i18n.widget_text("en", "Acme")["send"], i18n.Strings("en")("send")) == ("Send", "Send feedback")


def test_widget_text_keeps_custom_wording_and_fills_missing_followups() -> None:
    text = i18n.widget_text("de", "Acme", "Would you buy {product}?", {"promoter": "Why?"})
    assert text["question"] == "Would you buy Acme?"
    assert text["followups"] == {
        "detractor": i18n.CATALOG["de"]["followup.detractor"],
        "passive": i18n.CATALOG["de"]["followup.passive"],
        "promoter": "Why?",
    }


# --- the same person in the email, the landing page and the widget -------------------------------


@pytest.fixture
def fresh_app(app: Flask, redis_url: str) -> Flask:
    app.config["RATELIMIT_KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    flush_redis(app)
    return app


def test_email_landing_and_widget_show_the_same_german_words(
    fresh_app: Flask, client: FlaskClient, project: dict[str, Any]
) -> None:
    with fresh_app.app_context():
        person, _ = upsert_person(
            project["id"], {"external_id": "u1", "email": "ann@example.com", "locale": "de-AT"}
        )
        db.session.commit()
        request = email_requests.create_email_request(project["id"], person.id)
        found = db.session.get(Person, person.id)
        survey = db.session.get(Survey, request.survey_id)
        owner = db.session.get(Project, project["id"])
        assert found is not None and survey is not None and owner is not None
        message = compose_survey_email(request, found, survey, owner)
        stored = db.session.get(SurveyRequest, request.id)
        assert stored is not None
        score_url = email_requests.survey_links(stored)["score_urls"]["10"]
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    email_text, email_html = text_part.get_content(), html.unescape(html_part.get_content())

    body = {
        "key": project["public_key"],
        "force": True,
        "lang": "fr",  # the person's own locale wins over the browser's
        "user": {"id": "u1", "user_hash": keys.user_hash(project["identity_secret"], "u1")},
    }
    res = client.post("/api/widget/identify", data=json.dumps(body), content_type="text/plain")
    assert res.status_code == 200, res.get_data(as_text=True)
    widget = res.get_json()["text"]
    assert widget["locale"] == "de"

    german = i18n.CATALOG["de"]
    assert widget["question"] == german["question"].replace("{product}", "Acme")
    assert widget["question"] in email_text and widget["question"] in email_html
    assert widget["low"] == german["not_likely"] and widget["low"] in email_html
    assert widget["high"] == german["extremely_likely"] and widget["high"] in email_html

    page = html.unescape(
        client.get("/" + score_url.split("://", 1)[1].split("/", 1)[1]).get_data(as_text=True)
    )
    assert '<html lang="de">' in page
    assert (
        widget["followups"]["promoter"] == german["followup.promoter"]
        and widget["followups"]["promoter"] in page
    )
    assert widget["low"] in page and widget["high"] in page


def test_page_without_a_person_follows_the_browsers_language_list(
    fresh_app: Flask, client: FlaskClient
) -> None:
    res = client.get("/s/not-a-token", headers={"Accept-Language": "it, de-CH;q=0.8, en;q=0.5"})
    assert res.status_code == 404
    page = html.unescape(res.get_data(as_text=True))
    assert '<html lang="de">' in page and i18n.CATALOG["de"]["not_found_title"] in page
