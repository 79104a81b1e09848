"""Dashboard users: creation with a hashed password, sign-in checks, listing per project.

Passwords are hashed with werkzeug.security's default, scrypt (memory-hard, salted, with the
parameters stored in the hash so they can be raised later): werkzeug already ships with Flask,
so no extra dependency is needed for a KDF that is as resistant to GPU cracking as argon2id.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import ApiError
from ..extensions import db
from ..models import DASHBOARD_ROLES, DashboardUser, Project, utcnow

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
# Checked when the email is unknown, so a miss costs the same time as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively."""
    return email.strip().lower()


def create_user(project_id: int, email: str, password: str, role: str = "viewer") -> DashboardUser:
    """Create a dashboard user of a project; ApiError on a bad role, weak password or taken email."""
    email = normalise_email(email)
    if role not in DASHBOARD_ROLES:
        raise ApiError(422, "validation_error", f"role must be one of {', '.join(DASHBOARD_ROLES)}.")
    if "@" not in email or len(email) > 320:
        raise ApiError(422, "validation_error", "Not a valid email address.")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ApiError(422, "validation_error", f"The password needs at least {MIN_PASSWORD} characters.")
    if db.session.get(Project, project_id) is None:
        raise ApiError(404, "not_found", f"No project {project_id}.")
    if db.session.scalar(select(DashboardUser.id).where(DashboardUser.email == email)) is not None:
        raise ApiError(409, "conflict", "A user with this email already exists.")
    user = DashboardUser(
        project_id=project_id, email=email, password_hash=generate_password_hash(password), role=role
    )
    db.session.add(user)
    db.session.commit()
    return user


def authenticate_user(email: str, password: str) -> DashboardUser | None:
    """The user with this email and password, or None (same work either way)."""
    if len(password) > MAX_PASSWORD:
        return None
    user = db.session.scalar(select(DashboardUser).where(DashboardUser.email == normalise_email(email)))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def session_stamp(user: DashboardUser) -> str:
    """A fingerprint of the password hash kept in the session: changing the password ends old sessions."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def project_users(project_id: int) -> list[DashboardUser]:
    """A project's dashboard users, by email."""
    return list(
        db.session.scalars(
            select(DashboardUser).where(DashboardUser.project_id == project_id).order_by(DashboardUser.email)
        )
    )
