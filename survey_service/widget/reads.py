"""The widget's everyday identify, answered read-only: one statement, no transaction, no write.

Most identifies are the same signed-in user on another page: a known person who sent nothing new and
either is not asked now or sees the survey they were already shown. That answer needs the project,
its widget settings, the person and the decision facts, all read here in one statement outside any
transaction. Anything that must write (a new or changed person, a survey to open or mark as shown)
returns None, and in_app.identify does the whole job in a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import aliased

from survey_service.core import clock, tokens
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
from survey_service.services.people import browser_identity_changes
from survey_service.widget import service as in_app
from survey_service.widget.service import SETTINGS_FIELDS, SHOW_REASONS, SHOWN_OPEN_FOR, WidgetRules


@lru_cache(maxsize=1)
def default_rules() -> WidgetRules:
    """The rules of a project that never changed its widget settings (the columns' defaults)."""
    return WidgetRules.of(in_app.default_settings(0))


@lru_cache(maxsize=1)
def _page_view_statement() -> Any:
    """Project, settings, person (by external id), decision facts and the open request's survey, by key.

    Built once: constructing it costs more than running it.
    """
    open_id, response, asked, dismissed = in_app.facts_columns(Project.id, Person.id)
    shown = aliased(SurveyRequest, name="shown")
    return (
        select(
            Project.id.label("project_id"),
            Project.require_identity_verification,
            Project.quiet_period_days,
            Project.identity_secret_encrypted,
            *(getattr(WidgetSettings, field) for field in SETTINGS_FIELDS),
            WidgetSettings.browser_property_keys,
            Person.id.label("person_id"),
            Person.email.label("person_email"),
            Person.name.label("person_name"),
            Person.locale.label("person_locale"),
            Person.properties.label("person_properties"),
            Person.browser_properties.label("person_browser_properties"),
            Person.created_at.label("person_created_at"),
            open_id.label("open_id"),
            response.label("response"),
            asked.label("asked"),
            dismissed.label("dismissed"),
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
    """Whether in_app.identify would change nothing of this stored person for what the widget user sent
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
    """in_app.identify's answer when it writes nothing, from one read; None when the write path must run.

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
    # Autocommit: one statement is one snapshot, so a transaction would only add BEGIN and COMMIT trips.
    with db.engine.connect() as conn:
        row = (
            conn.execution_options(isolation_level="AUTOCOMMIT")
            .execute(_page_view_statement(), params)
            .first()
        )
    if row is None:
        raise ApiError(401, "unauthorized", "Unknown widget key.")
    verified = in_app.check_identity(
        row.require_identity_verification, row.identity_secret_encrypted, user["id"], user.get("user_hash")
    )
    if row.person_id is None or not person_unchanged(row, user):
        return None
    # Every settings column is NOT NULL: a null one means the project never saved its settings.
    rules = default_rules() if row.recurring_enabled is None else WidgetRules.of(row)
    reason = in_app.decision_reason(
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
            return None  # a forced show looks for an earlier ask to show again (in_app.forced_request)
        # The reason tells whether someone answered lately: only for a verified identity.
        return {"show": False, "reason": reason if verified else None}
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
        return {"show": False, "reason": "survey_closed" if verified else None}
    token = tokens.widget_answer_token(row.project_id, row.person_id, row.open_id)
    locale = row.person_locale or lang
    return {**in_app.shown_payload(row, token, rules.position, locale), "reason": reason}
