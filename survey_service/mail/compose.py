"""Compose the survey email: a plain-text and an HTML part with the 11 score links, RFC 8058 headers."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from urllib.parse import urlsplit

from flask import current_app, render_template

from survey_service.core import clock
from survey_service.core.i18n import Strings, negotiate
from survey_service.mail.headers import header_safe
from survey_service.mail.links import landing_url, open_pixel_url, unsubscribe_url
from survey_service.models import Person, Project, Survey, SurveyRequest


def _message_id_domain() -> str:
    base_url: str = current_app.config["BASE_URL"]
    host = urlsplit(base_url).hostname
    if host and "." in host:
        return host
    sender: str = current_app.config["MAIL_FROM"]
    return sender.rpartition("@")[2] or "localhost"


def email_context(
    request: SurveyRequest, person: Person, survey: Survey, project: Project
) -> dict[str, object]:
    """Everything the HTML and text parts show, localised by the person's (else survey's) locale."""
    t = Strings(negotiate(person.locale, survey.locale))
    return {
        "t": t,
        "lang": t.language,
        "project_name": project.name,
        "product": survey.product_name,
        "question": t.question(survey.question, survey.product_name),
        "greeting": t("greeting", name=person.name) if person.name else t("greeting_anonymous"),
        "score_urls": [(n, landing_url(request, n)) for n in range(11)],
        "unsubscribe_url": unsubscribe_url(request),
        "brand_color": survey.brand_color or "#4f46e5",
        "subject": t("subject", product=survey.product_name),
        "open_pixel_url": open_pixel_url(request) if current_app.config.get("EMAIL_OPEN_TRACKING") else None,
    }


def text_part(ctx: dict[str, object]) -> str:
    """The plain-text part: the same question, the same 11 links, the unsubscribe link."""
    t: Strings = ctx["t"]  # type: ignore[assignment]
    lines = [str(ctx["greeting"]), "", str(ctx["question"]), "", t("intro"), t("scale_hint"), ""]
    lines += [f"{n:>2}  {url}" for n, url in ctx["score_urls"]]  # type: ignore[attr-defined]
    lines += [
        "",
        "--",
        t("sent_by", project=ctx["project_name"]),
        t("unsubscribe_text", project=ctx["project_name"]),
        f"{t('unsubscribe_link')}: {ctx['unsubscribe_url']}",
        "",
    ]
    return "\n".join(lines)


def compose_survey_email(
    request: SurveyRequest, person: Person, survey: Survey, project: Project
) -> EmailMessage:
    """The complete message for one request, ready for SMTP."""
    ctx = email_context(request, person, survey, project)
    msg = EmailMessage()
    # Names come from API callers, widgets and imports: a line break in one must not stop the send.
    msg["Subject"] = header_safe(str(ctx["subject"]))
    msg["From"] = formataddr((header_safe(project.name), current_app.config["MAIL_FROM"]))
    msg["To"] = formataddr((header_safe(person.name or ""), person.email or ""))
    msg["Date"] = format_datetime(clock.now())
    # Deterministic per request: if a crash makes us send twice, mail systems see one message.
    msg["Message-ID"] = f"<survey-{request.id}.{request.project_id}@{_message_id_domain()}>"
    msg["List-Unsubscribe"] = f"<{ctx['unsubscribe_url']}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Content-Language"] = str(ctx["lang"])
    msg.set_content(text_part(ctx))
    msg.add_alternative(render_template("survey_email.html", **ctx), subtype="html")
    return msg
