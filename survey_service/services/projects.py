"""Projects (tenants): creation with keys shown once, lookup by key, the default survey."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from flask import current_app
from sqlalchemy import select

from survey_service.core import clock, hot_cache, i18n, keys
from survey_service.extensions import db
from survey_service.models import Project, Survey

# The standard texts are the English ones of the translation catalog, which translates them.
DEFAULT_QUESTION = i18n.DEFAULT_QUESTION
DEFAULT_FOLLOWUPS = i18n.DEFAULT_FOLLOWUPS


@dataclass(frozen=True)
class NewProject:
    """A freshly created project with its plain secrets: the only time they are visible."""

    project: Project
    secret_key: str
    identity_secret: str

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.project.id,
            "name": self.project.name,
            "secret_key": self.secret_key,
            "public_key": self.project.public_key,
            "identity_secret": self.identity_secret,
        }


def create_project(name: str, product_name: str | None = None) -> NewProject:
    """Create a project with fresh keys and its default NPS survey."""
    secret_key, identity_secret = keys.new_secret_key(), keys.new_identity_secret()
    project = Project(
        name=name,
        secret_key_hash=keys.hash_key(secret_key),
        secret_key_hint=secret_key[:7],
        public_key=keys.new_public_key(),
        identity_secret_encrypted=keys.encrypt_secret(
            identity_secret, current_app.config["SECRET_KEY"], purpose=keys.IDENTITY_SECRET
        ),
    )
    db.session.add(project)
    db.session.flush()
    db.session.add(
        Survey(
            project_id=project.id,
            kind="nps",
            name="NPS",
            product_name=product_name or name,
            question=DEFAULT_QUESTION,
            followups=dict(DEFAULT_FOLLOWUPS),
            is_default=True,
        )
    )
    db.session.commit()
    return NewProject(project, secret_key, identity_secret)


SETTINGS = ("quiet_period_days", "allow_custom_events")


def update_settings(project: Project, data: dict[str, Any]) -> Project:
    """Change a project's settings (the quiet period, whether custom event types are accepted); commits."""
    for name in SETTINGS:
        if name in data:
            setattr(project, name, data[name])
    db.session.commit()
    hot_cache.invalidate(PROJECTS_BY_KEY)  # allow_custom_events is in the cached ProjectRef
    return project


# core/hot_cache's cache of ProjectRef by secret key hash.
PROJECTS_BY_KEY = "projects_by_key"


@dataclass(frozen=True)
class ProjectRef:
    """What a request authenticated by a secret key needs of its project, kept per process a few seconds."""

    id: int
    public_key: str
    allow_custom_events: bool
    # The end of the overlap when the key is the project's previous one; None for its current key.
    key_expires_at: datetime | None


def project_ref_for_secret_key(secret_key: str) -> ProjectRef | None:
    """The project of a server key as a ProjectRef, from this process's cache when it is recent enough.

    The cache (HOT_CACHE_SECONDS) is cleared in this process by a rotation or a settings change; another
    process's rotation is seen within HOT_CACHE_SECONDS. A previous key's overlap end is checked on every
    call, so an overlap never lasts longer for being cached. Unknown keys are not cached.
    """
    if not secret_key.startswith("sk_") or len(secret_key) > 128:
        return None
    digest = keys.hash_key(secret_key)
    ref = hot_cache.cached(PROJECTS_BY_KEY, digest, lambda: _project_ref(secret_key, digest))
    if ref is None or (ref.key_expires_at is not None and clock.now() >= ref.key_expires_at):
        return None
    return ref


def _project_ref(secret_key: str, digest: str) -> ProjectRef | None:
    project = project_for_secret_key(secret_key)
    if project is None:
        return None
    previous = not hmac.compare_digest(project.secret_key_hash, digest)
    return ProjectRef(
        id=project.id,
        public_key=project.public_key,
        allow_custom_events=project.allow_custom_events,
        key_expires_at=project.previous_secret_key_expires_at if previous else None,
    )


def project_for_secret_key(secret_key: str) -> Project | None:
    """The project whose server key this is (or was, until its rotation's overlap ends), or None."""
    if not secret_key.startswith("sk_") or len(secret_key) > 128:
        return None
    digest = keys.hash_key(secret_key)
    project = db.session.scalar(select(Project).where(Project.secret_key_hash == digest))
    # The lookup is by hash, so timing reveals nothing of the key; compare anyway as a second gate.
    if project is not None and hmac.compare_digest(project.secret_key_hash, digest):
        return project
    previous = db.session.scalar(select(Project).where(Project.previous_secret_key_hash == digest))
    if (
        previous is not None
        and previous.previous_secret_key_hash is not None
        and hmac.compare_digest(previous.previous_secret_key_hash, digest)
        and previous.previous_secret_key_expires_at is not None
        and clock.now() < previous.previous_secret_key_expires_at
    ):
        return previous
    return None


def _project(project_id: int) -> Project:
    project = db.session.get(Project, project_id, with_for_update=True)
    if project is None:
        raise LookupError(f"no project {project_id}")
    return project


def new_server_key(project_id: int, overlap: timedelta = timedelta(0)) -> str:
    """Give a project a new server API key, returned (shown once); the old one works for `overlap` more.

    With no overlap the old key stops at once. A key still in an earlier overlap is dropped: only the
    key being replaced keeps working.
    """
    project = _project(project_id)
    secret_key = keys.new_secret_key()
    if overlap > timedelta(0):
        project.previous_secret_key_hash = project.secret_key_hash
        project.previous_secret_key_expires_at = clock.now() + overlap
    else:
        project.previous_secret_key_hash = project.previous_secret_key_expires_at = None
    project.secret_key_hash, project.secret_key_hint = keys.hash_key(secret_key), secret_key[:7]
    db.session.commit()
    hot_cache.invalidate(PROJECTS_BY_KEY)
    return secret_key


def new_identity_secret(project_id: int, overlap: timedelta = timedelta(0)) -> str:
    """Give a project a new widget identity secret, returned (shown once); user_hashes signed with the
    old one verify for `overlap` more (none: they stop at once)."""
    project = _project(project_id)
    secret = keys.new_identity_secret()
    if overlap > timedelta(0):
        project.previous_identity_secret_encrypted = project.identity_secret_encrypted
        project.previous_identity_secret_expires_at = clock.now() + overlap
    else:
        project.previous_identity_secret_encrypted = project.previous_identity_secret_expires_at = None
    project.identity_secret_encrypted = keys.encrypt_secret(
        secret, current_app.config["SECRET_KEY"], purpose=keys.IDENTITY_SECRET
    )
    db.session.commit()
    return secret


def demo_identity_secret(public_key: str) -> str | None:
    """The identity secret of the project with this public key (the demo page signs its user ids with it)."""
    encrypted = db.session.scalar(
        select(Project.identity_secret_encrypted).where(Project.public_key == public_key)
    )
    return None if encrypted is None else decrypt_identity_secret(encrypted)


def identity_secret(project: Project) -> str:
    """Decrypt the project's widget identity secret."""
    return decrypt_identity_secret(project.identity_secret_encrypted)


def decrypt_identity_secret(encrypted: str) -> str:
    """Decrypt a stored identity secret with SECRET_KEY or a fallback, remembered per ciphertext and key ring.

    Keyed by the ciphertext itself, a new or rotated secret is a new entry: nothing here can go stale.
    """
    cfg = current_app.config
    return _decrypt(encrypted, cfg["SECRET_KEY"], tuple(cfg["SECRET_KEY_FALLBACKS"]))


@lru_cache(maxsize=1024)
def _decrypt(encrypted: str, secret_key: str, fallbacks: tuple[str, ...]) -> str:
    return keys.decrypt_secret(encrypted, secret_key, list(fallbacks), purpose=keys.IDENTITY_SECRET)


def default_survey_id(project_id: int, kind: str = "nps") -> int:
    """The id of the project's default survey of a kind, cached per app (defaults never change)."""
    cache: dict[tuple[int, str], int] = current_app.extensions.setdefault("default_survey_ids", {})
    survey_id = cache.get((project_id, kind))
    if survey_id is None:
        survey_id = cache[(project_id, kind)] = default_survey(project_id, kind).id
    return survey_id


def default_survey(project_id: int, kind: str = "nps") -> Survey:
    """The project's default survey of a kind (created with the project)."""
    survey = db.session.scalar(
        select(Survey)
        .where(Survey.project_id == project_id, Survey.kind == kind, Survey.is_default.is_(True))
        .order_by(Survey.id)
        .limit(1)
    )
    if survey is None:
        raise LookupError(f"project {project_id} has no default {kind} survey")
    return survey
