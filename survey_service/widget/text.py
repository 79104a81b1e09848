"""The in-app widget's words in each supported language (pure data, no Flask)."""

from __future__ import annotations

from typing import Any

DEFAULT_LOCALE = "en"

# The question, follow-ups and end labels use the same words as the survey email (mail/strings.py on
# main) for en/de/fr; es is widget-only for now. They translate services.projects' defaults; a survey
# whose text was customised keeps its own words and its own locale.
TEXT: dict[str, dict[str, Any]] = {
    "en": {
        "question": "How likely are you to recommend {product} to a friend or colleague?",
        "followups": {
            "detractor": "What was missing or disappointing in your experience with us?",
            "passive": "What is the one thing we could do to make you happier?",
            "promoter": "What do you like most about us?",
        },
        "title": "Feedback survey",
        "low": "Not likely",
        "high": "Extremely likely",
        "send": "Send",
        "thanks": "Thank you for your feedback!",
        "close": "Close",
        "picked": "You chose {score}.",
        "yours": "Your comment:",
    },
    "de": {
        "question": "Wie wahrscheinlich ist es, dass Sie {product} einem Freund oder Kollegen "
        "weiterempfehlen?",
        "followups": {
            "detractor": "Was hat Ihnen gefehlt oder Sie enttäuscht?",
            "passive": "Was könnten wir tun, damit Sie zufriedener sind?",
            "promoter": "Was gefällt Ihnen am besten?",
        },
        "title": "Feedback-Umfrage",
        "low": "Unwahrscheinlich",
        "high": "Äußerst wahrscheinlich",
        "send": "Senden",
        "thanks": "Vielen Dank für Ihr Feedback!",
        "close": "Schließen",
        "picked": "Sie haben {score} gewählt.",
        "yours": "Ihr Kommentar:",
    },
    "fr": {
        "question": "Quelle est la probabilité que vous recommandiez {product} à un ami ou un collègue ?",
        "followups": {
            "detractor": "Qu'est-ce qui vous a manqué ou déçu ?",
            "passive": "Que pourrions-nous faire pour que vous soyez plus satisfait ?",
            "promoter": "Qu'appréciez-vous le plus ?",
        },
        "title": "Enquête de satisfaction",
        "low": "Peu probable",
        "high": "Très probable",
        "send": "Envoyer",
        "thanks": "Merci pour votre avis !",
        "close": "Fermer",
        "picked": "Vous avez choisi {score}.",
        "yours": "Votre commentaire :",
    },
    "es": {
        "question": "¿Qué probabilidad hay de que recomiende {product} a un amigo o colega?",
        "followups": {
            "detractor": "¿Qué le faltó o le decepcionó de su experiencia con nosotros?",
            "passive": "¿Qué es lo único que podríamos hacer para que esté más satisfecho?",
            "promoter": "¿Qué es lo que más le gusta de nosotros?",
        },
        "title": "Encuesta de opinión",
        "low": "Nada probable",
        "high": "Muy probable",
        "send": "Enviar",
        "thanks": "¡Gracias por su opinión!",
        "close": "Cerrar",
        "picked": "Ha elegido {score}.",
        "yours": "Su comentario:",
    },
}


def supported(locale: str | None) -> str | None:
    """The supported language of a locale tag ("de-AT" → "de"), or None."""
    if not locale:
        return None
    language = locale.replace("_", "-").split("-")[0].lower()
    return language if language in TEXT else None


def widget_text(
    *,
    question: str,
    followups: dict[str, str],
    product: str,
    survey_locale: str,
    person_locale: str | None,
    is_default_text: bool,
) -> dict[str, Any]:
    """The words the widget shows: translated to the person's language when the survey text is the default."""
    locale = supported(survey_locale) or DEFAULT_LOCALE
    if is_default_text:
        locale = supported(person_locale) or locale
        words = TEXT[locale]
        question, followups = words["question"], dict(words["followups"])
    words = TEXT[locale]
    chrome = {k: v for k, v in words.items() if k not in ("question", "followups")}
    return {
        "locale": locale,
        "question": question.replace("{product}", product),
        "followups": {k: followups.get(k) or words["followups"][k] for k in words["followups"]},
        **chrome,
    }
