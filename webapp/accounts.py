"""Account rules: opening and deleting a parent account, issuing API tokens, ending other sessions and tokens.

The views in `auth/routes.py` and `api/routes.py` only parse, call one of these and answer. Each function here
owns exactly one transaction: it commits its own writes (with their audit row) or rolls back, so a caller never
commits for it and never sees half an account.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from webapp.audit import AuditAction, record
from webapp.extensions import db
from webapp.hardening import account_key
from webapp.models import (
    ApiToken,
    AuditLog,
    Guardianship,
    Notification,
    PasswordResetCode,
    User,
    utcnow,
)
from webapp.security import PHONE_RE, hash_password, normalise_phone, verify_password

TOKEN_DAYS = 30
TOKEN_BYTES = 32


class BadCredentials(Exception):
    """The phone number and password do not name an active parent account."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    row: ApiToken


def register_parent(phone: str, password: str, display_name: str, *, locale: str | None = None) -> None:
    """Open a parent account for `phone` unless it has one; an existing account is never changed.

    One transaction. The password is hashed on both paths and both write one audit row, so a registered number
    takes as long to answer as a new one; the owner of a registered number sees the attempt in their export.
    """
    password_hash = hash_password(password)
    existing = db.session.scalar(select(User.id).where(User.phone == phone))
    if existing is not None:
        record("auth.register_existing", f"user:{existing}", user_id=existing, commit=True)
        return
    user = User(role="parent", phone=phone, password_hash=password_hash, display_name=display_name,
                locale=locale, consent_policy_version=current_app.config["CONSENT_POLICY_VERSION"],
                consent_at=utcnow())
    db.session.add(user)
    try:
        db.session.flush()
        record("auth.register", f"user:{user.id}", user_id=user.id)
        db.session.commit()
    except IntegrityError:  # the same number registered a moment ago by a concurrent request
        db.session.rollback()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def record_failed_login(login: str, user: User | None) -> None:
    """Audit a refused sign-in without the phone number (one transaction): a keyed hash names the account."""
    record("auth.login_failed", account_key(login), {"known_account": user is not None},
           user_id=user.id if user is not None else None,
           school_id=user.school_id if user is not None else None, commit=True)


def issue_token(phone: str, password: str) -> IssuedToken:
    """A new opaque bearer token for the parent signing in with `phone` and `password`; only its hash is stored.

    One transaction: the token, the sign-in time and the audit row are committed together. A refusal is
    audited in its own transaction and raised as BadCredentials.
    """
    number = normalise_phone(phone.strip())
    user = db.session.scalar(select(User).where(User.phone == number)) if PHONE_RE.match(number) else None
    if not verify_password(user, password) or user is None or not user.active or user.role != "parent":
        db.session.rollback()  # an upgraded hash of a refused account is not kept
        record_failed_login(phone, user)
        raise BadCredentials
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    days = int(current_app.config.get("API_TOKEN_DAYS", TOKEN_DAYS))
    row = ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=now,
                   expires_at=now + timedelta(days=days))
    db.session.add(row)
    user.last_login_at = now
    record("auth.login", f"user:{user.id}", {"via": "api"}, user_id=user.id)
    db.session.commit()
    return IssuedToken(token, row)


def revoke_other_tokens(user: User, keep: ApiToken | None = None) -> int:
    """"Log out other devices": every other browser session and every API token of `user` but `keep` ends.

    One transaction (the new session version, the revocations and the audit row); returns how many tokens were
    live. The caller copies the new session version into the current session.
    """
    user.session_version = (user.session_version or 0) + 1
    query = update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))
    if keep is not None:
        query = query.where(ApiToken.id != keep.id)
    result = db.session.execute(query.values(revoked=True))
    revoked = int(getattr(result, "rowcount", 0) or 0)
    record("auth.logout_others", f"user:{user.id}", {"revoked": revoked}, user_id=user.id)
    db.session.commit()
    return revoked


def erase_parent_accounts(account_ids: list[int]) -> dict[str, int]:
    """Delete these parent accounts with their links, API tokens, reset codes and inbox, in the caller's
    transaction. Their audit rows stay, without the account and without the keyed hash of its phone number."""
    if not account_ids:
        return {"api tokens": 0, "parent accounts": 0}
    tokens = db.session.execute(delete(ApiToken).where(ApiToken.user_id.in_(account_ids)))
    db.session.execute(delete(PasswordResetCode).where(PasswordResetCode.user_id.in_(account_ids)))
    db.session.execute(delete(Notification).where(Notification.user_id.in_(account_ids)))
    db.session.execute(delete(Guardianship).where(Guardianship.user_id.in_(account_ids)))
    db.session.execute(update(AuditLog).where(AuditLog.user_id.in_(account_ids), AuditLog.target.like("acct:%"))
                       .values(target=""))
    db.session.execute(update(AuditLog).where(AuditLog.user_id.in_(account_ids)).values(user_id=None))
    accounts = db.session.execute(delete(User).where(User.id.in_(account_ids)))
    db.session.expire_all()
    return {"api tokens": int(getattr(tokens, "rowcount", 0) or 0),
            "parent accounts": int(getattr(accounts, "rowcount", 0) or 0)}


def delete_parent_account(user: User) -> None:
    """Delete a parent's account for good: links, tokens, reset codes, inbox and the account (one transaction).

    The children's care requests stay with their schools, as when a child is unlinked
    (`webapp.family.unlink_child`). The audit trail keeps its rows without the account, and one more row says
    that an account was deleted, with how many children it had and nothing that names anyone.
    """
    if user.role != "parent":
        raise ValueError("only parent accounts are deleted by their owner")
    children = len(user.guardianships)
    erase_parent_accounts([user.id])
    # Not `record`: it would name the signed-in account, which no longer exists.
    db.session.add(AuditLog(user_id=None, school_id=None, action=AuditAction.ACCOUNT_DELETE.value, target="",
                            detail={"children": children}))
    db.session.commit()
