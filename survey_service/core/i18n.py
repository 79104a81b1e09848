"""The one translation catalog: every text a person reads (email, survey pages, widget), per language.

Pure (standard library only). One table of messages per language, one way to choose the language
(negotiate: the first supported of the given locales, "de-AT" → "de", else English). Project-specific
wording (a custom question or follow-up) is the caller's: it passes plain text in, and the catalog only
translates its own standard texts.

Where the email pages and the widget had different words for one thing, both are kept under their own
key: the landing page's "send" ("Send feedback") and the widget's shorter "widget.send" ("Send").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULT_LANGUAGE = "en"
CATEGORIES = ("detractor", "passive", "promoter")

CATALOG: dict[str, dict[str, str]] = {
    "en": {
        "question": "How likely are you to recommend {product} to a friend or colleague?",
        "followup.detractor": "What was missing or disappointing in your experience with us?",
        "followup.passive": "What is the one thing we could do to make you happier?",
        "followup.promoter": "What do you like most about us?",
        "not_likely": "Not likely",
        "extremely_likely": "Extremely likely",
        "subject": "Quick question about {product}",
        "greeting": "Hi {name},",
        "greeting_anonymous": "Hi,",
        "intro": "One click is all it takes: choose a number below.",
        "reminder_subject": "Reminder: quick question about {product}",
        "reminder_intro": "We haven't heard from you yet, and your answer still counts. "
        "One click is all it takes: choose a number below.",
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
        "review.prompt": "Glad you like us! Would you share that in a short review?",
        "review.consent": "Happy to leave a review",
        "review.links": "Thank you! Choose where to leave it (it opens in a new tab):",
        "review.gone_title": "This review link is no longer available",
        "review.gone_text": "Thank you for wanting to share your experience all the same!",
        "widget.title": "Feedback survey",
        "widget.send": "Send",
        "widget.close": "Close",
        "widget.picked": "You chose {score}.",
        "widget.yours": "Your comment:",
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
        "reminder_subject": "Erinnerung: eine kurze Frage zu {product}",
        "reminder_intro": "Wir haben noch nichts von Ihnen gehört, und Ihre Antwort zählt weiterhin. "
        "Ein Klick genügt: Wählen Sie unten eine Zahl.",
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
        "review.prompt": "Schön, dass Sie zufrieden sind! Würden Sie das in einer kurzen Bewertung teilen?",
        "review.consent": "Gerne bewerte ich",
        "review.links": "Danke! Wählen Sie, wo Sie bewerten möchten (öffnet sich in einem neuen Tab):",
        "review.gone_title": "Dieser Bewertungslink ist nicht mehr verfügbar",
        "review.gone_text": "Trotzdem vielen Dank, dass Sie Ihre Erfahrung teilen möchten!",
        "widget.title": "Feedback-Umfrage",
        "widget.send": "Senden",
        "widget.close": "Schließen",
        "widget.picked": "Sie haben {score} gewählt.",
        "widget.yours": "Ihr Kommentar:",
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
        "reminder_subject": "Rappel : une question rapide sur {product}",
        "reminder_intro": "Nous n'avons pas encore reçu votre réponse, et elle compte toujours. "
        "Un seul clic suffit : choisissez un chiffre ci-dessous.",
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
        "review.prompt": "Ravis que vous nous appréciiez ! Accepteriez-vous de le dire dans un court avis ?",
        "review.consent": "Volontiers, je laisse un avis",
        "review.links": "Merci ! Choisissez où le laisser (s'ouvre dans un nouvel onglet) :",
        "review.gone_title": "Ce lien d'avis n'est plus disponible",
        "review.gone_text": "Merci quand même de vouloir partager votre expérience !",
        "widget.title": "Enquête de satisfaction",
        "widget.send": "Envoyer",
        "widget.close": "Fermer",
        "widget.picked": "Vous avez choisi {score}.",
        "widget.yours": "Votre commentaire :",
    },
    "es": {
        "question": "¿Qué probabilidad hay de que recomiende {product} a un amigo o colega?",
        "followup.detractor": "¿Qué le faltó o le decepcionó de su experiencia con nosotros?",
        "followup.passive": "¿Qué es lo único que podríamos hacer para que esté más satisfecho?",
        "followup.promoter": "¿Qué es lo que más le gusta de nosotros?",
        "not_likely": "Nada probable",
        "extremely_likely": "Muy probable",
        "subject": "Una pregunta rápida sobre {product}",
        "greeting": "Hola, {name}:",
        "greeting_anonymous": "Hola:",
        "intro": "Basta con un clic: elija un número a continuación.",
        "reminder_subject": "Recordatorio: una pregunta rápida sobre {product}",
        "reminder_intro": "Aún no hemos recibido su respuesta, y sigue contando. "
        "Basta con un clic: elija un número a continuación.",
        "scale_hint": "0 = nada probable, 10 = muy probable",
        "unsubscribe_text": "¿No desea recibir más encuestas de {project}?",
        "unsubscribe_link": "Darse de baja",
        "sent_by": "Enviado por {project}.",
        "page_title": "Su opinión sobre {product}",
        "your_score": "Su puntuación",
        "choose_score": "Elija una puntuación de 0 a 10",
        "comment_optional": "Opcional: ¿desea contarnos algo más?",
        "send": "Enviar opinión",
        "saved": "¡Gracias! Su puntuación de {score} se ha guardado. Puede cambiarla o añadir un comentario.",
        "thanks": "¡Gracias por su opinión!",
        "thanks_detail": "Su respuesta se ha guardado. Puede cerrar esta página.",
        "expired_title": "Este enlace ha caducado",
        "expired_open": "El enlace de su correo es demasiado antiguo para responder con un clic, pero "
        "la encuesta sigue abierta: elija una puntuación y pulse el botón.",
        "closed_title": "Esta encuesta ha finalizado",
        "closed_text": "Gracias por su interés. Esta encuesta ya no acepta respuestas.",
        "not_found_title": "Página no encontrada",
        "not_found_text": "Este enlace no es válido. Compruebe que ha copiado el enlace completo.",
        "unsubscribe_title": "Darse de baja de las encuestas de {project}",
        "unsubscribe_confirm": "Pulse el botón para dejar de recibir encuestas en {email}.",
        "unsubscribe_button": "Darse de baja",
        "unsubscribed_title": "Se ha dado de baja",
        "unsubscribed_text": "No volveremos a enviar encuestas a {email}.",
        "rate_limited": "Demasiadas solicitudes. Espere un minuto e inténtelo de nuevo.",
        "invalid_score": "Elija una puntuación de 0 a 10.",
        "confirm": "Para guardar su respuesta, pulse su puntuación o el botón de abajo.",
        "out_of_date": "Esta página está desactualizada. Vuelva a abrir el enlace de su correo.",
        "review.prompt": "¡Nos alegra que le guste! ¿Lo compartiría en una breve reseña?",
        "review.consent": "Con gusto dejo una reseña",
        "review.links": "¡Gracias! Elija dónde dejarla (se abre en una pestaña nueva):",
        "review.gone_title": "Este enlace de reseña ya no está disponible",
        "review.gone_text": "¡Gracias de todos modos por querer compartir su experiencia!",
        "widget.title": "Encuesta de opinión",
        "widget.send": "Enviar",
        "widget.close": "Cerrar",
        "widget.picked": "Ha elegido {score}.",
        "widget.yours": "Su comentario:",
    },
}

LANGUAGES = tuple(CATALOG)

# The standard survey texts a new project starts with (services.projects), in English.
DEFAULT_QUESTION = CATALOG[DEFAULT_LANGUAGE]["question"]
DEFAULT_FOLLOWUPS = {category: CATALOG[DEFAULT_LANGUAGE][f"followup.{category}"] for category in CATEGORIES}


def _fallbacks(locale: str) -> list[str]:
    """A locale tag and its shorter forms: "de-AT" → ["de-at", "de"] (also "de_AT")."""
    parts = locale.strip().replace("_", "-").lower().split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def accepted_locales(header: str | None) -> list[str]:
    """The locales of an Accept-Language header, best first (q=0 and "*" left out)."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate(*locales: str | None) -> str:
    """The first supported language among the locales, in the order given; else English.

    Each locale falls back to its shorter forms before the next one is tried: "de-AT" → "de".
    Callers pass the person's locale, the browser's (accepted_locales) and the project's default in
    the order that door uses.
    """
    for locale in locales:
        for candidate in _fallbacks(locale) if locale else ():
            if candidate in CATALOG:
                return candidate
    return DEFAULT_LANGUAGE


class Strings:
    """The messages of one language: t("key", name=...) formats one."""

    def __init__(self, language: str) -> None:
        self.language = negotiate(language)
        self._table = CATALOG[self.language]

    def __call__(self, key: str, **values: Any) -> str:
        text = self._table[key]
        return text.format(**values) if values else text

    def question(self, text: str, product: str) -> str:
        """The survey question: the standard one translated, any other wording kept as it is."""
        template = self("question") if text == DEFAULT_QUESTION else text
        return template.replace("{product}", product)

    def followup(self, own: Mapping[str, str] | None, category: str) -> str:
        """A category's follow-up question: the standard one translated, the project's own wording kept."""
        text = (own or {}).get(category)
        if text and text != DEFAULT_FOLLOWUPS.get(category):
            return text
        return self(f"followup.{category}")


def widget_text(
    language: str,
    product: str,
    question: str | None = None,
    followups: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The words the widget shows (sent to the browser in the identify answer), in one language.

    question/followups are the survey's own wording, used as they are; None (or a missing category)
    takes the catalog's standard text in this language.
    """
    t = Strings(language)
    own = followups or {}
    return {
        "locale": t.language,
        "question": (question or t("question")).replace("{product}", product),
        "followups": {category: own.get(category) or t(f"followup.{category}") for category in CATEGORIES},
        "title": t("widget.title"),
        "low": t("not_likely"),
        "high": t("extremely_likely"),
        "send": t("widget.send"),
        "thanks": t("thanks"),
        "close": t("widget.close"),
        "picked": t("widget.picked"),
        "yours": t("widget.yours"),
    }
