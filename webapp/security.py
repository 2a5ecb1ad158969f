"""Passwords, sessions and who may see what.

Passwords are hashed with argon2id at the OWASP minimum (19 MiB, 2 passes, 1 lane) and rehashed on login
when these parameters change. A user's `session_version` and random `session_secret` are copied into the
session at login and both must match at every request: bumping the version logs out every other session, and
the secret means a cookie can never sign in as another account that happens to get the same id.

Bureau scope is closed by default: a city-wide account sees every school, a district account its district's,
and an account with neither (its district was deleted) sees nothing and is told why.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from functools import lru_cache, wraps
from pathlib import Path
from typing import Any, TypeVar, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import abort, g, render_template, session
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user
from sqlalchemy import ColumnElement, false, select, true

from webapp.extensions import db, login_manager
from webapp.models import Guardianship, School, User, utcnow

F = TypeVar("F", bound=Callable[..., Any])

PASSWORD_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
PASSWORD_MIN = 8
PASSWORD_MAX = 128
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
SESSION_VERSION_KEY = "_sv"
SESSION_SECRET_KEY = "_ss"
_DUMMY_HASH = PASSWORD_HASHER.hash("timing-equaliser-not-a-password")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    path = Path(__file__).with_name("common_passwords.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def password_problem(password: str) -> LazyString | None:
    """Why a new password is refused, as a sentence for the user; None when it is acceptable."""
    if len(password) < PASSWORD_MIN:
        return _l("Password must be at least %(n)d characters.", n=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        return _l("Password must be at most %(n)d characters.", n=PASSWORD_MAX)
    if password.lower() in common_passwords() or len(set(password)) == 1:
        return _l("This password is too common. Please choose another.")
    return None


def hash_password(password: str) -> str:
    return PASSWORD_HASHER.hash(password)


def verify_password(user: User | None, password: str) -> bool:
    """Check a password (in constant-ish time even for unknown users) and upgrade an outdated hash."""
    if user is None:
        try:
            PASSWORD_HASHER.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return False
    try:
        PASSWORD_HASHER.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if PASSWORD_HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = PASSWORD_HASHER.hash(password)
    return True


def normalise_phone(text: str) -> str:
    """Strip spaces, dashes and a +86 / 0086 prefix from a mainland mobile number."""
    digits = re.sub(r"[\s\-()]", "", text)
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix):]
    return digits


def find_user_for_login(login: str) -> User | None:
    """Parents sign in with their phone number, admins and bureau staff with a username."""
    login = login.strip()
    phone = normalise_phone(login)
    if PHONE_RE.match(phone):
        user = db.session.scalar(select(User).where(User.phone == phone))
        if user is not None:
            return user
    return db.session.scalar(select(User).where(User.username == login))


def start_session(user: User) -> None:
    """A fresh session for a freshly authenticated user: nothing from before login survives."""
    session.clear()
    login_user(user, fresh=True)
    session[SESSION_VERSION_KEY] = user.session_version
    session[SESSION_SECRET_KEY] = user.session_secret
    user.last_login_at = utcnow()
    db.session.commit()


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        user = db.session.get(User, int(user_id))
    except ValueError:
        return None
    if user is None or not user.active or session.get(SESSION_VERSION_KEY) != user.session_version:
        return None
    if not hmac.compare_digest(str(session.get(SESSION_SECRET_KEY, "")), user.session_secret or "-"):
        return None
    return user


def role_required(*roles: str) -> Callable[[F], F]:
    """Anonymous users go to the login page; signed-in users of another role get 403."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator


def school_admin_required(view: F) -> F:
    """A school admin's own school, loaded into `g.school`; an admin without a school is refused."""

    @wraps(view)
    @role_required("school_admin")
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        school = db.session.get(School, current_user.school_id) if current_user.school_id else None
        if school is None:
            abort(403)
        g.school = school
        return view(*args, **kwargs)

    return cast(F, wrapped)


parent_required = role_required("parent")
def has_bureau_scope(user: User) -> bool:
    """Whether a bureau account still has a scope: the whole city, or a district that exists."""
    return user.role == "bureau" and (bool(user.city_wide) or user.district_id is not None)


def bureau_required(view: F) -> F:
    """Bureau accounts with a valid scope; one whose district is gone gets a page saying so, never the city."""

    @wraps(view)
    @role_required("bureau")
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not has_bureau_scope(current_user):
            return render_template("errors/403.html", reason="no_scope"), 403
        return view(*args, **kwargs)

    return cast(F, wrapped)


def parent_owns_pupil(user: User, pupil_id: int) -> bool:
    if not user.is_authenticated or user.role != "parent":
        return False
    link = db.session.scalar(
        select(Guardianship.id).where(Guardianship.user_id == user.id, Guardianship.pupil_id == pupil_id)
    )
    return link is not None


def bureau_scope(user: User) -> ColumnElement[bool]:
    """A filter on `School` rows this bureau user may see: the city, their district, or nothing at all."""
    if user.role != "bureau":
        return false()
    if user.city_wide:
        return true()
    if user.district_id is None:
        return false()
    return School.district_id == user.district_id
