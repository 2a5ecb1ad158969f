"""The audit trail: one row per action that changes data or grants access."""

from __future__ import annotations

from typing import Any

from flask import has_request_context
from flask_login import current_user

from webapp.extensions import db
from webapp.models import AuditLog

_SECRET_KEYS = ("phone", "password", "mobile", "secret", "token", "enrolment_code", "code_plain")


def _scrub(detail: dict[str, Any]) -> dict[str, Any]:
    """Drop keys that could carry a phone number, password or secret, however deeply nested."""
    clean: dict[str, Any] = {}
    for key, value in detail.items():
        if any(word in key.lower() for word in _SECRET_KEYS):
            continue
        clean[key] = _scrub(value) if isinstance(value, dict) else value
    return clean


def record(action: str, target: str = "", detail: dict[str, Any] | None = None, *,
           user_id: int | None = None, school_id: int | None = None, commit: bool = False) -> AuditLog:
    """Add an audit row for the current user (or `user_id`); the caller's transaction commits it."""
    if user_id is None and has_request_context() and current_user.is_authenticated:
        user_id = current_user.id
        if school_id is None:
            school_id = current_user.school_id
    entry = AuditLog(user_id=user_id, school_id=school_id, action=action, target=target,
                     detail=_scrub(detail) if detail else None)
    db.session.add(entry)
    if commit:
        db.session.commit()
    return entry
