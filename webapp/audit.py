"""The audit trail: one row per action that changes data or grants access.

Action names read `area.verb` (`request.submit`, `run.publish`); `AuditAction` lists every one, and `record`
refuses a name it does not list, so the trail keeps one vocabulary.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from flask import has_request_context
from flask_login import current_user

from webapp.extensions import db
from webapp.models import AuditLog


class AuditAction(StrEnum):
    """Every action the audit trail records."""

    AUTH_LOGIN = "auth.login"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    AUTH_LOGOUT = "auth.logout"
    AUTH_LOGOUT_OTHERS = "auth.logout_others"
    AUTH_REGISTER = "auth.register"
    AUTH_REGISTER_EXISTING = "auth.register_existing"
    AUTH_PASSWORD_CHANGE = "auth.password_change"
    AUTH_PASSWORD_CHANGE_FAILED = "auth.password_change_failed"
    AUTH_RESET_CODE_ISSUE = "auth.reset_code_issue"
    AUTH_RESET_SMS = "auth.reset_sms"
    AUTH_PASSWORD_RESET = "auth.password_reset"
    AUTH_PASSWORD_RESET_FAILED = "auth.password_reset_failed"
    ACCOUNT_DELETE = "account.delete"
    ACCOUNT_ENABLE = "account.enable"
    ACCOUNT_DISABLE = "account.disable"
    ACCOUNT_EMAIL_CHANGE = "account.email_change"
    API_TOKEN_REVOKE = "api.token_revoke"
    FAMILY_EXPORT = "family.export"
    FAMILY_CONSENT = "family.consent"
    FAMILY_LINK_CHILD = "family.link_child"
    FAMILY_UNLINK_CHILD = "family.unlink_child"
    REQUEST_SUBMIT = "request.submit"
    REQUEST_UPDATE = "request.update"
    REQUEST_WITHDRAW = "request.withdraw"
    PUPILS_IMPORT = "pupils.import"
    TEACHERS_IMPORT = "teachers.import"
    SESSIONS_IMPORT = "sessions.import"
    ACTIVITY_SAVE = "activity.save"
    SCHOOL_CONTACT = "school.contact"
    ACTIVITY_DELETE = "activity.delete"
    SESSION_SAVE = "session.save"
    SESSION_DELETE = "session.delete"
    TEACHER_SAVE = "teacher.save"
    TEACHER_DELETE = "teacher.delete"
    WINDOW_SET = "window.set"
    WINDOW_OPEN = "window.open"
    WINDOW_CLOSE = "window.close"
    CODES_ISSUE = "codes.issue"
    ROSTER_EXPORT = "roster.export"
    WAITLIST_PROMOTE = "waitlist.promote"
    WAITLIST_PLACE = "waitlist.place"
    PLAN_AMEND = "plan.amend"
    OFFER_MAKE = "offer.make"
    OFFER_ACCEPT = "offer.accept"
    OFFER_DECLINE = "offer.decline"
    OFFER_EXPIRE = "offer.expire"
    OFFER_WITHDRAW = "offer.withdraw"
    REQUEST_CHANGE = "request.change"
    TERM_PLACEMENT = "term.placement"
    PRIVACY_PURGE = "privacy.purge"
    RUN_START = "run.start"
    RUN_CANCEL = "run.cancel"
    RUN_PUBLISH = "run.publish"
    RUN_REMOVE_ASSIGNMENT = "run.remove_assignment"
    PIN_ADD = "pin.add"
    PIN_REMOVE = "pin.remove"
    ADVICE_START = "advice.start"
    BATCH_START = "batch.start"
    NOTIFICATION_SEND_AGAIN = "notification.send_again"
    ABSENCE_REPORT = "absence.report"
    ABSENCE_CANCEL = "absence.cancel"
    ABSENCE_REFUSE = "absence.refuse"
    PICKUP_ADD = "pickup.add"
    PICKUP_REMOVE = "pickup.remove"
    DELEGATE_CREATE = "delegate.create"
    ROLLCALL_MARK = "rollcall.mark"
    ROLLCALL_CORRECT = "rollcall.correct"
    ROLLCALL_REFUSE = "rollcall.refuse"
    HANDOVER_RECORD = "handover.record"
    HANDOVER_REFUSE = "handover.refuse"
    CALENDAR_IMPORT = "calendar.import"
    CALENDAR_CHANGE = "calendar.change"
    BUREAU_CALENDAR_CHANGE = "calendar.bureau_change"
    BUREAU_CALENDAR_PUBLISH = "calendar.publish"
    PRIORITY_GROUP_SAVE = "group.save"
    PRIORITY_TAG_ADD = "group.tag"
    PRIORITY_TAG_REMOVE = "group.untag"
    NOTICE_PUBLISH = "notice.publish"
    NOTICE_SIGN = "notice.sign"
    CLASS_TEACHER_SET = "classteacher.set"
    ABSENCE_ALERT = "absence.alert"
    ABSENCE_ARRIVED = "absence.arrived"
    PUPIL_LEAVE = "pupil.leave"
    PUPIL_RETURN = "pupil.return"


_SECRET_KEYS = ("phone", "password", "mobile", "secret", "token", "enrolment_code", "code_plain")


def _scrub(detail: dict[str, Any]) -> dict[str, Any]:
    """Drop keys that could carry a phone number, password or secret, however deeply nested."""
    clean: dict[str, Any] = {}
    for key, value in detail.items():
        if any(word in key.lower() for word in _SECRET_KEYS):
            continue
        clean[key] = _scrub(value) if isinstance(value, dict) else value
    return clean


def record(action: AuditAction | str, target: str = "", detail: dict[str, Any] | None = None, *,
           user_id: int | None = None, school_id: int | None = None, commit: bool = False) -> AuditLog:
    """Add an audit row for the current user (or `user_id`); the caller's transaction commits it."""
    action = AuditAction(action)  # an unlisted name is a programming error, not a new kind of row
    if user_id is None and has_request_context() and current_user.is_authenticated:
        user_id = current_user.id
        if school_id is None:
            school_id = current_user.school_id
    entry = AuditLog(user_id=user_id, school_id=school_id, action=action.value, target=target,
                     detail=_scrub(detail) if detail else None)
    db.session.add(entry)
    if commit:
        db.session.commit()
    return entry
