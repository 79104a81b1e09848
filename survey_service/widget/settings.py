"""A widget key's project and its widget settings: the lookup by key, the defaults, their changes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select

from survey_service.core import hot_cache
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import Project, WidgetSettings
from survey_service.services.tx import commit_with_retry

SETTINGS_FIELDS = (
    "recurring_enabled",
    "first_survey_after_days",
    "resurvey_every_days",
    "sample_percent",
    "dismiss_cooldown_days",
    "position",
)
# What the settings API may change: the decision's rules and which person properties a browser may set.
EDITABLE_SETTINGS = (*SETTINGS_FIELDS, "browser_property_keys")


@dataclass(frozen=True)
class WidgetRules:
    """The widget settings a decision reads, as plain values (from a WidgetSettings row or its defaults)."""

    recurring_enabled: bool
    first_survey_after_days: int
    resurvey_every_days: int
    sample_percent: int
    dismiss_cooldown_days: int
    position: str

    @classmethod
    def of(cls, settings: WidgetSettings | Any) -> WidgetRules:
        """The rules of a WidgetSettings (saved or default) or of a row holding its columns."""
        return cls(**{field: getattr(settings, field) for field in SETTINGS_FIELDS})


# core/hot_cache's cache of project ids by public key (a public key never changes; a project may go).
PROJECT_IDS_BY_PUBLIC_KEY = "project_ids_by_public_key"


def project_id_by_public_key(public_key: str | None) -> int:
    """The id of the project of a widget key, from this process's cache when recent; else a 401."""
    found = None
    if public_key and public_key.startswith("pk_") and len(public_key) <= 64:
        found = hot_cache.cached(PROJECT_IDS_BY_PUBLIC_KEY, public_key, lambda: _project_id(public_key))
    if found is None:
        raise ApiError(401, "unauthorized", "Unknown widget key.")
    return found


def _project_id(public_key: str) -> int | None:
    return db.session.scalar(select(Project.id).where(Project.public_key == public_key))


@lru_cache(maxsize=1)
def _widget_project_statement() -> Any:
    """Built once: on the widget's hot path, building a statement costs more than running it."""
    return (
        select(Project, WidgetSettings)
        .outerjoin(WidgetSettings, WidgetSettings.project_id == Project.id)
        .where(Project.public_key == bindparam("public_key"))
    )


def widget_project(public_key: str | None) -> tuple[Project, WidgetSettings]:
    """The project of a widget key with its widget settings, in one query; a 401 when unknown."""
    row = None
    if public_key and public_key.startswith("pk_") and len(public_key) <= 64:
        row = db.session.execute(_widget_project_statement(), {"public_key": public_key}).first()
    if row is None:
        raise ApiError(401, "unauthorized", "Unknown widget key.")
    project, settings = row
    return project, settings if settings is not None else default_settings(project.id)


def settings_for(project_id: int) -> WidgetSettings:
    """The project's widget settings; the defaults (unsaved) when it never changed them."""
    found = db.session.get(WidgetSettings, project_id)
    return found if found is not None else default_settings(project_id)


def default_settings(project_id: int) -> WidgetSettings:
    """The widget settings of a project that never changed them (not added to the session)."""
    defaults = {c.name: c.default.arg for c in WidgetSettings.__table__.columns if c.default is not None}
    defaults.pop("updated_at", None)
    return WidgetSettings(project_id=project_id, **defaults)


def update_settings(project_id: int, changes: dict[str, Any]) -> WidgetSettings:
    """Change some of the project's widget settings and return them all."""

    def work() -> WidgetSettings:
        current = settings_for(project_id)
        if current not in db.session:
            db.session.add(current)
        for field in EDITABLE_SETTINGS:
            if field in changes:
                setattr(current, field, changes[field])
        db.session.flush()
        return current

    return commit_with_retry(work)
