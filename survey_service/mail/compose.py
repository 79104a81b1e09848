"""Compose the survey email: a plain-text and an HTML part with the 11 score links, RFC 8058 headers.

Rendered once per survey, project and language (`SurveyEmailTemplate`): the templates run with
placeholders where each person's values go (greeting, signed links), and `message_for` fills them in
one pass per person and builds the MIME bytes directly. `compose_survey_email` is the same message as
an EmailMessage (one person, for the log-only sender and for callers that want an object).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from urllib.parse import urlsplit

from flask import current_app, render_template
from markupsafe import escape

from survey_service.core import clock
from survey_service.core.i18n import Strings, negotiate
from survey_service.mail.headers import header_safe
from survey_service.mail.links import landing_url, open_pixel_url, unsubscribe_url
from survey_service.models import Person, Project, Survey, SurveyRequest

# Longest line SMTP allows (RFC 5321: 1000 octets with CRLF); longer parts are sent base64-encoded.
MAX_LINE = 998
# A display name longer than this is cut in the To header (it stays whole in the greeting).
MAX_HEADER_NAME = 200
PER_PERSON = ("GREETING", "LANDING", "UNSUBSCRIBE", "PIXEL")


def _message_id_domain() -> str:
    base_url: str = current_app.config["BASE_URL"]
    host = urlsplit(base_url).hostname
    if host and "." in host:
        return host
    sender: str = current_app.config["MAIL_FROM"]
    return sender.rpartition("@")[2] or "localhost"


def text_part(ctx: dict[str, object]) -> str:
    """The plain-text part: the same question, the same 11 links, the unsubscribe link."""
    t: Strings = ctx["t"]  # type: ignore[assignment]
    lines = [str(ctx["greeting"]), "", str(ctx["question"]), "", str(ctx["intro"]), t("scale_hint"), ""]
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


def _header(name: str, value: str) -> bytes:
    """One header line (CRLF-ended): as is when plain ASCII, else encoded and folded by the email package."""
    line = f"{name}: {value}"
    if value.isascii() and len(line) <= 78:
        return f"{line}\r\n".encode("ascii")
    return str(policy.SMTP.fold(name, value)).encode("ascii")


def _address(name: str | None, address: str) -> str:
    return formataddr((header_safe(name or "")[:MAX_HEADER_NAME], address))


def _to_header(name: str | None, address: str) -> bytes:
    if not address.isascii():  # an internationalised address: SMTPUTF8 carries the header as UTF-8
        return str(policy.SMTPUTF8.fold("To", _address(name, address))).encode("utf-8")
    return _header("To", _address(name, address))


def _part(subtype: str, text: str) -> bytes:
    """One MIME text part: 7bit when it is short-lined ASCII, else base64 (no server needs 8BITMIME)."""
    lines = text.splitlines()
    if text.isascii() and all(len(line) <= MAX_LINE for line in lines):
        encoding, body = "7bit", "\r\n".join(lines).encode("ascii") + b"\r\n"
    else:
        encoding = "base64"
        body = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'
    return head.encode("ascii") + body


@dataclass(frozen=True)
class OutgoingMessage:
    """One person's message as SMTP carries it."""

    sender: str
    recipient: str
    message_id: str
    data: bytes


class SurveyEmailTemplate:
    """A survey email rendered once for a survey, project and language; `message_for` makes each person's.

    Placeholders carry a random tag, so no survey text or person's value can be mistaken for one,
    and values are filled in one pass (a value that looks like a placeholder stays as it is).
    """

    def __init__(self, survey: Survey, project: Project, language: str, *, reminder: bool = False) -> None:
        tag = secrets.token_hex(6)
        marks = {key: f"ZZ{tag}{key}ZZ" for key in PER_PERSON}
        self._pattern = re.compile(f"ZZ{tag}({'|'.join(PER_PERSON)})ZZ")
        self.t = Strings(language)
        tracking = bool(current_app.config.get("EMAIL_OPEN_TRACKING"))
        ctx: dict[str, object] = {
            "t": self.t,
            "lang": self.t.language,
            "project_name": project.name,
            "product": survey.product_name,
            "question": self.t.question(survey.question, survey.product_name),
            "greeting": marks["GREETING"],
            "score_urls": [(n, f"{marks['LANDING']}?score={n}") for n in range(11)],
            "unsubscribe_url": marks["UNSUBSCRIBE"],
            "brand_color": survey.brand_color or "#4f46e5",
            # A reminder (services/reminders) says so in its subject and first line.
            "subject": self.t("reminder_subject" if reminder else "subject", product=survey.product_name),
            "intro": self.t("reminder_intro" if reminder else "intro"),
            "open_pixel_url": marks["PIXEL"] if tracking else None,
        }
        self.tracking = tracking
        self.text = text_part(ctx)
        self.html = render_template("survey_email.html", **ctx)
        self.sender = str(current_app.config["MAIL_FROM"])
        self.domain = _message_id_domain()
        self.boundary = f"=={secrets.token_hex(16)}=="
        self._from = _header("From", formataddr((header_safe(project.name), self.sender)))
        self._fixed = b"".join(
            [
                _header("Subject", header_safe(str(ctx["subject"]))),
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                _header("Content-Language", self.t.language),
                b"MIME-Version: 1.0\r\n",
                f'Content-Type: multipart/alternative; boundary="{self.boundary}"\r\n'.encode("ascii"),
            ]
        )

    def _fill(self, template: str, values: dict[str, str], quote: Callable[[str], str]) -> str:
        return self._pattern.sub(lambda m: quote(values[m.group(1)]), template)

    def message_for(
        self, request: SurveyRequest, person: Person, links_of: SurveyRequest | None = None
    ) -> OutgoingMessage:
        """This person's message: their greeting and signed links in both parts, their headers.

        `links_of`: the request whose links the message carries (a reminder carries its first ask's, so
        one response per request, expiry and unsubscribe hold); the Message-ID is always `request`'s own.
        """
        linked = links_of or request
        landing = landing_url(linked)
        values = {
            "GREETING": self.t("greeting", name=person.name) if person.name else self.t("greeting_anonymous"),
            "LANDING": landing,
            "UNSUBSCRIBE": unsubscribe_url(linked),
            "PIXEL": open_pixel_url(request) if self.tracking else "",
        }
        text = self._fill(self.text, values, str)
        html = self._fill(self.html, values, lambda v: str(escape(v)))
        address = person.email or ""
        mid = f"<survey-{request.id}.{request.project_id}@{self.domain}>"
        head = b"".join(
            [
                self._from,
                _to_header(person.name, address),
                _header("Date", format_datetime(clock.now())),
                _header("Message-ID", mid),
                _header("List-Unsubscribe", f"<{values['UNSUBSCRIBE']}>"),
                self._fixed,
            ]
        )
        sep = f"--{self.boundary}\r\n".encode("ascii")
        body = b"".join(
            [
                b"\r\n",
                sep,
                _part("plain", text),
                sep,
                _part("html", html),
                f"--{self.boundary}--\r\n".encode(),
            ]
        )
        return OutgoingMessage(self.sender, address, mid, head + body)


class Templates:
    """The templates of one batch of sends: each survey, project and language rendered once."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int, str, bool], SurveyEmailTemplate] = {}
        self.rendered = 0  # how many templates were rendered (tests count them)

    def message_for(
        self,
        request: SurveyRequest,
        person: Person,
        survey: Survey,
        project: Project,
        links_of: SurveyRequest | None = None,
    ) -> OutgoingMessage:
        """The person's message, from the template of their survey, project and language (and whether
        it is a reminder: `links_of`, its first ask, whose links it carries)."""
        language = Strings(negotiate(person.locale, survey.locale)).language
        reminder = request.step > 0
        key = (survey.id, project.id, language, reminder)
        template = self._cache.get(key)
        if template is None:
            template = self._cache[key] = SurveyEmailTemplate(survey, project, language, reminder=reminder)
            self.rendered += 1
        return template.message_for(request, person, links_of)


def as_email(outgoing: OutgoingMessage) -> EmailMessage:
    """The message's bytes parsed back into an EmailMessage (the log-only sender keeps it as a file)."""
    message = message_from_bytes(outgoing.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def compose_survey_email(
    request: SurveyRequest, person: Person, survey: Survey, project: Project
) -> EmailMessage:
    """The complete message for one request, as an EmailMessage (the bytes SMTP would carry, parsed)."""
    return as_email(Templates().message_for(request, person, survey, project))
