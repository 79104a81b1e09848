"""Localised strings of the survey email and pages, chosen by the person's locale (en, de, fr)."""

from __future__ import annotations

from typing import Any

# A new project's survey texts (services/projects.py); shown translated while left unchanged.
DEFAULT_QUESTION = "How likely are you to recommend {product} to a friend or colleague?"
DEFAULT_FOLLOWUPS = {
    "detractor": "What was missing or disappointing in your experience with us?",
    "passive": "What is the one thing we could do to make you happier?",
    "promoter": "What do you like most about us?",
}

DEFAULT_LANGUAGE = "en"

CATALOG: dict[str, dict[str, str]] = {
    "en": {
        "question": DEFAULT_QUESTION,
        "followup.detractor": DEFAULT_FOLLOWUPS["detractor"],
        "followup.passive": DEFAULT_FOLLOWUPS["passive"],
        "followup.promoter": DEFAULT_FOLLOWUPS["promoter"],
        "not_likely": "Not likely",
        "extremely_likely": "Extremely likely",
        "subject": "Quick question about {product}",
        "greeting": "Hi {name},",
        "greeting_anonymous": "Hi,",
        "intro": "One click is all it takes: choose a number below.",
        "scale_hint": "0 = not likely, 10 = extremely likely",
        "unsubscribe_text": "Don't want survey emails from {project}?",
        "unsubscribe_link": "Unsubscribe",
        "sent_by": "Sent by {project}.",
        "page_title": "Your feedback for {product}",
        "your_score": "Your score",
        "choose_score": "Choose a score from 0 to 10",
        "comment_optional": "Optional: anything else you'd like to tell us?",
        "send": "Send feedback",
        "saved": "Thanks! Your score of {score} is saved. You can change it or add a comment.",
        "thanks": "Thank you for your feedback!",
        "thanks_detail": "Your answer has been saved. You can close this page.",
        "expired_title": "This link has expired",
        "expired_open": "The link in your email is too old to save an answer with one click, "
        "but the survey is still open: choose a score and press the button.",
        "closed_title": "This survey has closed",
        "closed_text": "Thank you for your interest. This survey no longer accepts answers.",
        "not_found_title": "Page not found",
        "not_found_text": "This link is not valid. Please check that you copied the whole link.",
        "unsubscribe_title": "Unsubscribe from {project} surveys",
        "unsubscribe_confirm": "Press the button to stop receiving survey emails at {email}.",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed_title": "You are unsubscribed",
        "unsubscribed_text": "We won't send survey emails to {email} again.",
        "rate_limited": "Too many requests. Please wait a minute and try again.",
        "invalid_score": "Please choose a score from 0 to 10.",
        "confirm": "To save your answer, press your score or the button below.",
        "out_of_date": "This page is out of date. Please open the link in your email again.",
    },
    "de": {
        "question": "Wie wahrscheinlich ist es, dass Sie {product} einem Freund oder Kollegen "
        "weiterempfehlen?",
        "followup.detractor": "Was hat Ihnen gefehlt oder Sie enttäuscht?",
        "followup.passive": "Was könnten wir tun, damit Sie zufriedener sind?",
        "followup.promoter": "Was gefällt Ihnen am besten?",
        "not_likely": "Unwahrscheinlich",
        "extremely_likely": "Äußerst wahrscheinlich",
        "subject": "Eine kurze Frage zu {product}",
        "greeting": "Hallo {name},",
        "greeting_anonymous": "Hallo,",
        "intro": "Ein Klick genügt: Wählen Sie unten eine Zahl.",
        "scale_hint": "0 = unwahrscheinlich, 10 = äußerst wahrscheinlich",
        "unsubscribe_text": "Sie möchten keine Umfragen von {project} mehr erhalten?",
        "unsubscribe_link": "Abmelden",
        "sent_by": "Gesendet von {project}.",
        "page_title": "Ihr Feedback zu {product}",
        "your_score": "Ihre Bewertung",
        "choose_score": "Wählen Sie eine Bewertung von 0 bis 10",
        "comment_optional": "Optional: Möchten Sie uns noch etwas sagen?",
        "send": "Feedback senden",
        "saved": "Danke! Ihre Bewertung {score} ist gespeichert. Sie können sie ändern oder "
        "einen Kommentar hinzufügen.",
        "thanks": "Vielen Dank für Ihr Feedback!",
        "thanks_detail": "Ihre Antwort ist gespeichert. Sie können diese Seite schließen.",
        "expired_title": "Dieser Link ist abgelaufen",
        "expired_open": "Der Link in Ihrer E-Mail ist zu alt für eine Antwort mit einem Klick, "
        "aber die Umfrage läuft noch: Wählen Sie eine Bewertung und drücken Sie die Schaltfläche.",
        "closed_title": "Diese Umfrage ist beendet",
        "closed_text": "Vielen Dank für Ihr Interesse. Diese Umfrage nimmt keine Antworten mehr an.",
        "not_found_title": "Seite nicht gefunden",
        "not_found_text": "Dieser Link ist ungültig. Bitte prüfen Sie, ob Sie ihn vollständig kopiert haben.",
        "unsubscribe_title": "Umfragen von {project} abbestellen",
        "unsubscribe_confirm": "Drücken Sie die Schaltfläche, um an {email} keine Umfragen mehr zu erhalten.",
        "unsubscribe_button": "Abmelden",
        "unsubscribed_title": "Sie sind abgemeldet",
        "unsubscribed_text": "Wir senden keine Umfrage-E-Mails mehr an {email}.",
        "rate_limited": "Zu viele Anfragen. Bitte warten Sie eine Minute.",
        "invalid_score": "Bitte wählen Sie eine Bewertung von 0 bis 10.",
        "confirm": "Um Ihre Antwort zu speichern, drücken Sie Ihre Bewertung oder die Schaltfläche unten.",
        "out_of_date": "Diese Seite ist veraltet. Bitte öffnen Sie den Link in Ihrer E-Mail erneut.",
    },
    "fr": {
        "question": "Quelle est la probabilité que vous recommandiez {product} à un ami ou un collègue ?",
        "followup.detractor": "Qu'est-ce qui vous a manqué ou déçu ?",
        "followup.passive": "Que pourrions-nous faire pour que vous soyez plus satisfait ?",
        "followup.promoter": "Qu'appréciez-vous le plus ?",
        "not_likely": "Peu probable",
        "extremely_likely": "Très probable",
        "subject": "Une question rapide sur {product}",
        "greeting": "Bonjour {name},",
        "greeting_anonymous": "Bonjour,",
        "intro": "Un seul clic suffit : choisissez un chiffre ci-dessous.",
        "scale_hint": "0 = peu probable, 10 = très probable",
        "unsubscribe_text": "Vous ne souhaitez plus recevoir les enquêtes de {project} ?",
        "unsubscribe_link": "Se désabonner",
        "sent_by": "Envoyé par {project}.",
        "page_title": "Votre avis sur {product}",
        "your_score": "Votre note",
        "choose_score": "Choisissez une note de 0 à 10",
        "comment_optional": "Facultatif : souhaitez-vous nous dire autre chose ?",
        "send": "Envoyer",
        "saved": "Merci ! Votre note de {score} est enregistrée. Vous pouvez la modifier ou "
        "ajouter un commentaire.",
        "thanks": "Merci pour votre avis !",
        "thanks_detail": "Votre réponse est enregistrée. Vous pouvez fermer cette page.",
        "expired_title": "Ce lien a expiré",
        "expired_open": "Le lien de votre e-mail est trop ancien pour répondre en un clic, mais "
        "l'enquête est toujours ouverte : choisissez une note et appuyez sur le bouton.",
        "closed_title": "Cette enquête est terminée",
        "closed_text": "Merci de votre intérêt. Cette enquête n'accepte plus de réponses.",
        "not_found_title": "Page introuvable",
        "not_found_text": "Ce lien n'est pas valide. Vérifiez que vous avez copié le lien en entier.",
        "unsubscribe_title": "Se désabonner des enquêtes de {project}",
        "unsubscribe_confirm": "Appuyez sur le bouton pour ne plus recevoir d'enquêtes à {email}.",
        "unsubscribe_button": "Se désabonner",
        "unsubscribed_title": "Vous êtes désabonné",
        "unsubscribed_text": "Nous n'enverrons plus d'enquêtes à {email}.",
        "rate_limited": "Trop de requêtes. Veuillez patienter une minute.",
        "invalid_score": "Veuillez choisir une note de 0 à 10.",
        "confirm": "Pour enregistrer votre réponse, appuyez sur votre note ou sur le bouton ci-dessous.",
        "out_of_date": "Cette page n'est plus à jour. Veuillez rouvrir le lien de votre e-mail.",
    },
}


def language_for(*locales: str | None) -> str:
    """The first supported language among the given locales ("de-AT" → "de"), else English."""
    for locale in locales:
        if locale:
            language = locale.replace("_", "-").split("-")[0].lower()
            if language in CATALOG:
                return language
    return DEFAULT_LANGUAGE


class Strings:
    """The strings of one language; a missing key falls back to English."""

    def __init__(self, language: str) -> None:
        self.language = language if language in CATALOG else DEFAULT_LANGUAGE
        self._table = CATALOG[self.language]

    def __call__(self, key: str, **values: Any) -> str:
        text = self._table.get(key) or CATALOG[DEFAULT_LANGUAGE][key]
        return text.format(**values) if values else text

    def question(self, custom: str, product: str) -> str:
        """The survey question: the translated standard one, or the project's own wording."""
        template = self("question") if custom == DEFAULT_QUESTION else custom
        return template.replace("{product}", product)

    def followup(self, custom: dict[str, str] | None, category: str) -> str:
        """The follow-up question for a category: translated default or the project's own."""
        own = (custom or {}).get(category)
        if own and own != DEFAULT_FOLLOWUPS.get(category):
            return own
        return self(f"followup.{category}")
