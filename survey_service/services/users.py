"""Dashboard users: creation with a hashed password, sign-in checks, session versions, listing per project.

Passwords are hashed with werkzeug.security's default, scrypt (memory-hard, salted, with the
parameters stored in the hash so they can be raised later): werkzeug already ships with Flask,
so no extra dependency is needed for a KDF that is as resistant to GPU cracking as argon2id.

An email is unique per project only, so one person may have accounts in several projects. Sign-in
takes email and password; the password picks the account. All accounts of one email share one
scrypt salt, so a sign-in derives the key once however many accounts the email has (none: a dummy
derivation of the same cost): its time tells nobody how many projects know the email.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from survey_service.core import clock
from survey_service.errors import ApiError
from survey_service.extensions import db
from survey_service.models import DASHBOARD_ROLES, DashboardUser, Project

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
    # Only this project's users: whether other projects know the email is none of its business.
    taken = select(DashboardUser.id).where(
        DashboardUser.project_id == project_id, DashboardUser.email == email
    )
    if db.session.scalar(taken) is not None:
        raise ApiError(409, "conflict", "A user with this email already exists.")
    user = DashboardUser(
        project_id=project_id, email=email, password_hash=_hash_for_email(email, password), role=role
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # the same email added to this project at the same moment
        db.session.rollback()
        raise ApiError(409, "conflict", "A user with this email already exists.") from None
    return user


class MultipleAccounts(Exception):
    """The email and password open accounts in several projects: the person picks one."""

    def __init__(self, projects: list[Project]) -> None:
        super().__init__("several accounts match")
        self.projects = projects


def _split(password_hash: str) -> tuple[str, str, str]:
    """A werkzeug hash as (method, salt, derived hex)."""
    method, salt, derived = (password_hash.split("$", 2) + ["", ""])[:3]
    return method, salt, derived


def _derive(method: str, salt: str, password: str) -> str | None:
    """The scrypt key of password with a stored method and salt, hex; None for other methods."""
    name, *args = method.split(":")
    if name != "scrypt" or len(args) != 3:
        return None
    n, r, p = map(int, args)
    key = hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p)
    return key.hex()


def _hash_for_email(email: str, password: str) -> str:
    """A password hash sharing the salt of the email's other accounts, so sign-in derives one key."""
    existing = db.session.scalar(
        select(DashboardUser.password_hash)
        .where(DashboardUser.email == email)
        .order_by(DashboardUser.id)
        .limit(1)
    )
    if existing is not None:
        method, salt, _ = _split(existing)
        derived = _derive(method, salt, password)
        if derived is not None:
            return f"{method}${salt}${derived}"
    return generate_password_hash(password)


def matching_users(email: str, password: str) -> list[DashboardUser]:
    """Every account of this email whose password this is: one key derivation per distinct salt."""
    if len(password) > MAX_PASSWORD:
        return []
    accounts = list(
        db.session.scalars(
            select(DashboardUser)
            .where(DashboardUser.email == normalise_email(email))
            .order_by(DashboardUser.id)
        )
    )
    if not accounts:
        check_password_hash(_DUMMY_HASH, password)
        return []
    keys: dict[tuple[str, str], str | None] = {}
    matches = []
    for user in accounts:
        method, salt, derived = _split(user.password_hash)
        if (method, salt) not in keys:
            keys[(method, salt)] = _derive(method, salt, password)
        key = keys[(method, salt)]
        if key is None:  # not scrypt (a hash from elsewhere): werkzeug checks it on its own
            if check_password_hash(user.password_hash, password):
                matches.append(user)
        elif hmac.compare_digest(key, derived):
            matches.append(user)
    return matches


def authenticate_user(email: str, password: str, project_id: int | None = None) -> DashboardUser | None:
    """The user with this email and password (in project_id when given), or None (same work either way).

    Raises MultipleAccounts when the password opens accounts in several projects and none was chosen.
    """
    matches = matching_users(email, password)
    if project_id is not None:
        matches = [user for user in matches if user.project_id == project_id]
    if len(matches) > 1:
        projects = db.session.scalars(
            select(Project).where(Project.id.in_([u.project_id for u in matches])).order_by(Project.name)
        )
        raise MultipleAccounts(list(projects))
    if not matches:
        return None
    user = matches[0]
    user.last_login_at = clock.now()
    db.session.commit()
    return user


def end_sessions(user_id: int) -> None:
    """Bump the user's session version: every session signed in before (on any device) is refused."""
    db.session.execute(
        update(DashboardUser)
        .where(DashboardUser.id == user_id)
        .values(session_version=DashboardUser.session_version + 1)
    )
    db.session.commit()


def change_password(user_id: int, password: str) -> None:
    """Set a user's new password and end their sessions; ApiError on a weak password or unknown user."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ApiError(422, "validation_error", f"The password needs at least {MIN_PASSWORD} characters.")
    user = db.session.get(DashboardUser, user_id)
    if user is None:
        raise ApiError(404, "not_found", f"No user {user_id}.")
    user.password_hash = _hash_for_email(user.email, password)
    user.session_version = DashboardUser.session_version + 1
    db.session.commit()


def project_users(project_id: int) -> list[DashboardUser]:
    """A project's dashboard users, by email."""
    return list(
        db.session.scalars(
            select(DashboardUser).where(DashboardUser.project_id == project_id).order_by(DashboardUser.email)
        )
    )


def project_user(project_id: int, email: str) -> DashboardUser:
    """The project's user with this email; ApiError 404 when there is none."""
    user = db.session.scalar(
        select(DashboardUser).where(
            DashboardUser.project_id == project_id, DashboardUser.email == normalise_email(email)
        )
    )
    if user is None:
        raise ApiError(404, "not_found", f"No user {normalise_email(email)} in project {project_id}.")
    return user


def project_member(project_id: int, user_id: int) -> DashboardUser:
    """The project's user with this id; ApiError 404 for an unknown id or another project's user."""
    user = db.session.get(DashboardUser, user_id)
    if user is None or user.project_id != project_id:
        raise ApiError(404, "not_found", "No such team member.")
    return user


def _admins(project_id: int) -> int:
    return len(
        list(
            db.session.scalars(
                select(DashboardUser.id)
                .where(DashboardUser.project_id == project_id, DashboardUser.role == "admin")
                .with_for_update()
            )
        )
    )


def _refuse_last_admin(user: DashboardUser, action: str) -> None:
    """ApiError 409 when user is the project's only admin: a project always keeps one."""
    if user.role == "admin" and _admins(user.project_id) <= 1:
        db.session.rollback()
        raise ApiError(
            409,
            "conflict",
            f"Cannot {action} {user.email}: the last admin of project {user.project_id}."
            " Make another user admin first.",
        )


def set_role(user: DashboardUser, role: str) -> DashboardUser:
    """Change a user's role; ApiError on an unknown role or when no admin would be left."""
    if role not in DASHBOARD_ROLES:
        raise ApiError(422, "validation_error", f"role must be one of {', '.join(DASHBOARD_ROLES)}.")
    if role != "admin":
        _refuse_last_admin(user, "demote")
    user.role = role
    db.session.commit()
    return user


def remove_user(user: DashboardUser) -> None:
    """Delete a user (their sessions end with them); ApiError 409 for the project's last admin."""
    _refuse_last_admin(user, "remove")
    db.session.delete(user)
    db.session.commit()
