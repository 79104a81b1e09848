"""Identify a widget user: check the user_hash, upsert the person, decide, and show the survey (or not)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, and_, bindparam, select, text
from sqlalchemy.orm import aliased

from survey_service.core import clock, i18n, keys, tokens
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import (
    Person,
    Project,
    RequestStatus,
    Survey,
    SurveyRequest,
    WidgetSettings,
)
from survey_service.services import projects, widget_presence
from survey_service.services.people import browser_identity_changes, identify_browser_person
from survey_service.services.tx import commit_with_retry
from survey_service.widget import verdicts
from survey_service.widget.eligibility import (
    CHANNEL,
    SHOW_REASONS,
    SHOWN_OPEN_FOR,
    Decision,
    decide,
    decision_reason,
    facts_columns,
    next_change,
)
from survey_service.widget.settings import (
    SETTINGS_FIELDS,
    WidgetRules,
    default_settings,
    settings_for,
    widget_project,
)


def verify_identity(project: Project | Row[Any], user_id: str, given: str | None) -> bool:
    """Check the user_hash of a widget user; refuse a wrong one, and a missing one when required.

    `project`: the Project, or a row of the read-only paths holding its identity columns by the same names.
    """
    return check_identity(
        project.require_identity_verification,
        project.identity_secret_encrypted,
        user_id,
        given,
        project.previous_identity_secret_encrypted,
        project.previous_identity_secret_expires_at,
    )


def check_identity(
    required: bool,
    secret_encrypted: str,
    user_id: str,
    given: str | None,
    previous_encrypted: str | None = None,
    previous_until: datetime | None = None,
) -> bool:
    """verify_identity on the project's columns: True when verified, False when unverified but allowed.

    After a rotation with an overlap, a user_hash signed with the previous secret verifies until
    previous_until; the current secret is always tried first.
    """
    if given:
        secret = projects.decrypt_identity_secret(secret_encrypted)
        if keys.verify_user_hash(secret, user_id, given):
            return True
        if previous_encrypted and previous_until is not None and clock.now() < previous_until:
            old = projects.decrypt_identity_secret(previous_encrypted)
            if keys.verify_user_hash(old, user_id, given):
                return True
        raise ApiError(403, "identity_refused", "The user_hash does not match this user id.")
    if required:
        raise ApiError(403, "identity_required", "This project requires a user_hash with every user id.")
    return False


def _read_by_key(statement: Any, params: dict[str, Any]) -> Row[Any]:
    """The one row a read-only path's statement finds by widget key; 401 when the key is unknown.

    Autocommit: one statement is one snapshot, so a transaction would only add BEGIN and COMMIT trips.
    """
    with db.engine.connect() as conn:
        row = conn.execution_options(isolation_level="AUTOCOMMIT").execute(statement, params).first()
    if row is None:
        raise ApiError(401, "unauthorized", "Unknown widget key.")
    return row


def _lock_person(person_id: int) -> None:
    """Hold the person's row until commit: a no-op UPDATE locks the row on PostgreSQL and takes the write
    lock on SQLite (SELECT … FOR UPDATE would do nothing there)."""
    db.session.execute(text("UPDATE people SET id = id WHERE id = :id"), {"id": person_id})


def _show(project: Project, person: Person, decision: Decision, now: datetime) -> SurveyRequest:
    """Mark the open request as shown (or an earlier one shown again), or open one for the recurring rule
    or a forced show."""
    request = decision.request
    reopen_until = now + SHOWN_OPEN_FOR
    if request is not None and decision.reused and (request.expires_at or reopen_until) < reopen_until:
        # Shown again by a forced show: answerable for a day more, its answer still the one response.
        request.expires_at = reopen_until
    if request is None:
        request = SurveyRequest(
            project_id=project.id,
            survey_id=projects.default_survey(project.id).id,
            person_id=person.id,
            channel=CHANNEL,
            status=RequestStatus.SENT,
            scheduled_at=now,
            # Open (offered again on later pages, and "one open survey" for the schedulers) for a day.
            expires_at=now + SHOWN_OPEN_FOR,
        )
        db.session.add(request)
    if request.responded_at is None:
        request.status = RequestStatus.SENT
    request.sent_at = request.sent_at or now
    db.session.flush()
    return request


def _payload(
    request: SurveyRequest, person: Person, settings: WidgetSettings, lang: str | None
) -> dict[str, Any]:
    survey = db.session.get(Survey, request.survey_id)
    assert survey is not None
    token = tokens.widget_answer_token(request.project_id, request.person_id, request.id)
    return shown_payload(survey, token, settings.position, person.locale or lang)


def shown_payload(survey: Any, token: str, position: str, locale: str | None) -> dict[str, Any]:
    """What the widget needs to show a survey: its token, colour, position and words in the person's language.

    survey is a Survey or a row with its question, followups, product_name, locale and brand_color.
    """
    followups = survey.followups or {}
    if survey.question == i18n.DEFAULT_QUESTION and followups == i18n.DEFAULT_FOLLOWUPS:
        # The standard texts: in the person's (else the browser's, else the survey's) language.
        text = i18n.widget_text(i18n.negotiate(locale, survey.locale), survey.product_name)
    else:
        # The project's own wording stays as written, with the rest in the survey's language.
        text = i18n.widget_text(
            i18n.negotiate(survey.locale), survey.product_name, survey.question, followups
        )
    return {"show": True, "token": token, "color": survey.brand_color, "position": position, "text": text}


def not_shown(
    public_key: str,
    user: dict[str, Any],
    reason: str,
    verified: bool,
    now: datetime,
    recheck_at: datetime | None = None,
) -> dict[str, Any]:
    """identify's answer when nothing shows, with its verdict (verdicts.issue) for the script to keep."""
    # The reason tells whether someone answered lately: only for a verified identity.
    said = reason if verified else None
    return {"show": False, "reason": said, **verdicts.issue(public_key, user, said, now, recheck_at)}


def identify(
    project: Project,
    user: dict[str, Any],
    force: bool = False,
    lang: str | None = None,
    settings: WidgetSettings | None = None,
) -> dict[str, Any]:
    """Verify the user, upsert them as a person, and say whether (and what) the widget shows.

    lang is the browser's language: used for the words when the person has no locale, never stored.
    """
    verified = verify_identity(project, user["id"], user.get("user_hash"))
    settings = settings or settings_for(project.id)
    allowed = settings.browser_property_keys

    def work() -> dict[str, Any]:
        now = clock.now()
        # The browser's door: it proves who (user_hash) and writes only what identify_browser_person allows.
        person, _ = identify_browser_person(project.id, user, allowed)
        if verified:
            widget_presence.note_seen(person, now)
        decision = decide(project, person, settings, now, force)
        if decision.show and decision.request is None:
            # About to open an ask: two identifies at once must not both open one (two countable answers).
            # The second waits here for the first's commit, then decides again and sees its request.
            _lock_person(person.id)
            decision = decide(project, person, settings, now, force)
        if not decision.show:
            return not_shown(project.public_key, user, decision.reason, verified, now, decision.recheck_at)
        survey_id = decision.request.survey_id if decision.request else projects.default_survey(project.id).id
        survey = db.session.get(Survey, survey_id)
        if survey is None or not survey.is_open:
            return not_shown(project.public_key, user, "survey_closed", verified, now)
        request = _show(project, person, decision, now)
        return {**_payload(request, person, settings, lang), "reason": decision.reason}

    return commit_with_retry(work)


# The everyday identify, answered read-only: one statement, no transaction, no write.
#
# Most identifies are the same signed-in user on another page: a known person who sent nothing new and
# either is not asked now or sees the survey they were already shown. That answer needs the project,
# its widget settings, the person and the decision facts, all read in one statement outside any
# transaction. Anything that must write (a new or changed person, a survey to open or mark as shown)
# returns None, and identify does the whole job in a transaction.


@lru_cache(maxsize=1)
def default_rules() -> WidgetRules:
    """The rules of a project that never changed its widget settings (the columns' defaults)."""
    return WidgetRules.of(default_settings(0))


@lru_cache(maxsize=1)
def _page_view_statement() -> Any:
    """Project, settings, person (by external id), decision facts and the open request's survey, by key.

    Built once: constructing it costs more than running it.
    """
    open_id, open_step, response, asked, dismissed, next_due = facts_columns(Project.id, Person.id)
    shown = aliased(SurveyRequest, name="shown")
    return (
        select(
            Project.id.label("project_id"),
            Project.require_identity_verification,
            Project.quiet_period_days,
            Project.identity_secret_encrypted,
            Project.previous_identity_secret_encrypted,
            Project.previous_identity_secret_expires_at,
            *(getattr(WidgetSettings, field) for field in SETTINGS_FIELDS),
            WidgetSettings.browser_property_keys,
            Person.id.label("person_id"),
            Person.email.label("person_email"),
            Person.name.label("person_name"),
            Person.locale.label("person_locale"),
            Person.properties.label("person_properties"),
            Person.browser_properties.label("person_browser_properties"),
            Person.created_at.label("person_created_at"),
            Person.widget_seen_at.label("person_widget_seen_at"),
            open_id.label("open_id"),
            open_step.label("open_step"),
            response.label("response"),
            asked.label("asked"),
            dismissed.label("dismissed"),
            next_due.label("next_due"),
            shown.status.label("open_status"),
            shown.sent_at.label("open_sent_at"),
            Survey.question,
            Survey.followups,
            Survey.product_name,
            Survey.locale,
            Survey.brand_color,
            Survey.is_open,
        )
        .select_from(Project)
        .outerjoin(WidgetSettings, WidgetSettings.project_id == Project.id)
        .outerjoin(
            Person, and_(Person.project_id == Project.id, Person.external_id == bindparam("external_id"))
        )
        .outerjoin(shown, shown.id == open_id)
        .outerjoin(Survey, and_(Survey.id == shown.survey_id, Survey.project_id == Project.id))
        .where(Project.public_key == bindparam("public_key"))
    )


@dataclass(frozen=True)
class _StoredPerson:
    """The person's columns people.browser_identity_changes reads, from the page-view row."""

    email: str | None
    name: str | None
    locale: str | None
    properties: dict[str, Any] | None
    browser_properties: dict[str, Any] | None


def person_unchanged(row: Any, user: dict[str, Any]) -> bool:
    """Whether identify would change nothing of this stored person for what the widget user sent
    (the same rule: people.browser_identity_changes)."""
    stored = _StoredPerson(
        row.person_email,
        row.person_name,
        row.person_locale,
        row.person_properties,
        row.person_browser_properties,
    )
    return not browser_identity_changes(stored, user, row.browser_property_keys)


def identify_without_writes(
    public_key: str | None, user: dict[str, Any], *, force: bool = False, lang: str | None = None
) -> dict[str, Any] | None:
    """identify's answer when it writes nothing, from one read; None when the write path must run.

    Nothing, that is, but the person's last sight (widget_presence.note_seen_by_id) when it is an hour old.

    Raises the same errors as the write path: 401 for an unknown key, 403 for a refused identity.
    """
    if not public_key or not public_key.startswith("pk_") or len(public_key) > 64:
        raise ApiError(401, "unauthorized", "Unknown widget key.")
    now = clock.now()
    params = {
        "public_key": public_key,
        "external_id": user["id"],
        "now": now,
        "shown_since": now - SHOWN_OPEN_FOR,
    }
    row = _read_by_key(_page_view_statement(), params)
    verified = verify_identity(row, user["id"], user.get("user_hash"))
    if row.person_id is None or not person_unchanged(row, user):
        return None
    if verified and widget_presence.seen_is_stale(row.person_widget_seen_at, now):
        # This path's one write, at most hourly per person: the sight the reminders' in-app fallback reads.
        with db.engine.connect() as conn:
            widget_presence.note_seen_by_id(
                conn.execution_options(isolation_level="AUTOCOMMIT"), row.person_id, now
            )
    # Every settings column is NOT NULL: a null one means the project never saved its settings.
    rules = default_rules() if row.recurring_enabled is None else WidgetRules.of(row)
    reason = decision_reason(
        row,
        project_id=row.project_id,
        quiet_period_days=row.quiet_period_days,
        person_id=row.person_id,
        person_created_at=row.person_created_at,
        rules=rules,
        now=now,
        force=False,
    )
    if reason not in SHOW_REASONS:
        if force:
            return None  # a forced show looks for an earlier ask to show again (eligibility.forced_request)
        recheck_at = next_change(
            row,
            quiet_period_days=row.quiet_period_days,
            person_created_at=row.person_created_at,
            rules=rules,
            now=now,
        )
        return not_shown(public_key, user, reason, verified, now, recheck_at)
    if force:
        reason = "forced"
    if (
        row.open_id is None
        or row.open_status != RequestStatus.SENT
        or row.open_sent_at is None
        or row.question is None
    ):
        return None  # a survey to open, or a request to mark as shown: the write path
    if not row.is_open:
        return not_shown(public_key, user, "survey_closed", verified, now)
    token = tokens.widget_answer_token(row.project_id, row.person_id, row.open_id)
    locale = row.person_locale or lang
    return {**shown_payload(row, token, rules.position, locale), "reason": reason}


@lru_cache(maxsize=1)
def _identity_statement() -> Any:
    """A project's identity columns by widget key: all a kept verdict needs checked again."""
    return select(
        Project.require_identity_verification,
        Project.identity_secret_encrypted,
        Project.previous_identity_secret_encrypted,
        Project.previous_identity_secret_expires_at,
    ).where(Project.public_key == bindparam("public_key"))


def answer_from_verdict(public_key: str, user: dict[str, Any], token: str) -> dict[str, Any] | None:
    """identify's answer from a still-valid verdict it signed for this key, user and traits; None without one.

    The key and the user_hash are checked again (a removed key is a 401, a wrong or rotated-out hash a 403,
    at once); the person, the decision and any write are skipped: nothing they read can have changed in a
    way the verdict does not already bound (its instant is at most WIDGET_VERDICT_TTL after it was signed).
    """
    now = clock.now()
    kept = verdicts.still_valid(public_key, user, token, now)
    if kept is None:
        return None
    row = _read_by_key(_identity_statement(), {"public_key": public_key})
    verified = verify_identity(row, user["id"], user.get("user_hash"))
    until, reason = kept
    return {
        "show": False,
        "reason": reason if verified else None,
        "verdict": token,
        "verdict_ttl": math.floor((until - now).total_seconds()),
    }


def identify_visitor(
    public_key: str | None,
    user: dict[str, Any],
    *,
    force: bool = False,
    lang: str | None = None,
    verdict: str | None = None,
) -> dict[str, Any]:
    """What POST /api/widget/identify answers: from the verdict the browser kept when it is still valid (and
    show is not forced), else from one read when nothing changes, else through identify."""
    if verdict and not force and public_key and public_key.startswith("pk_") and len(public_key) <= 64:
        kept = answer_from_verdict(public_key, user, verdict)
        if kept is not None:
            return kept
    answer = identify_without_writes(public_key, user, force=force, lang=lang)
    if answer is not None:
        return answer
    project, settings = widget_project(public_key)
    return identify(project, user, force=force, lang=lang, settings=settings)
