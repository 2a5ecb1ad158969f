"""Password recovery for parents: a one-time reset code, printed by the school or sent by text message.

- **Printed slip.** A school admin opens a linked parent on the pupil's page and prints a reset slip, as
  enrolment codes are printed (`admin.codes`). The code (10 characters from the enrolment-code alphabet) is
  good for `SLIP_VALID_HOURS` (config `PASSWORD_RESET_SLIP_HOURS`).
- **Text message.** When a real SMS provider is configured (`SMS_PROVIDER=aliyun`), a parent may ask for a
  6-digit code sent to the account's phone, good for `SMS_VALID_MINUTES`.

Either way only a keyed hash of the code is stored (`webapp.family.keyed_code_hash`, its own purpose prefix),
a code works once, a new code of the same kind ends the older ones, and `MAX_ATTEMPTS` wrong codes end every
live code of the account. The pages answer the same whether or not a phone number has an account; the routes
add per-address and per-number rate limits. Each function here owns its transaction.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import force_locale, gettext
from sqlalchemy import select, update

from webapp.audit import record
from webapp.extensions import db
from webapp.family import CODE_ALPHABET, keyed_code_hash
from webapp.hardening import account_key, end_all_sessions
from webapp.models import PasswordResetCode, ResetCodeKind, User, utcnow
from webapp.notifications.channels import DeliveryError, OutgoingMessage, channels
from webapp.notifications.outbox import settings
from webapp.security import PHONE_RE, hash_password, normalise_phone

logger = logging.getLogger(__name__)

SLIP_CODE_LENGTH = 10
SMS_CODE_LENGTH = 6
SLIP_VALID_HOURS = 72
SMS_VALID_MINUTES = 15
MAX_ATTEMPTS = 5
_PURPOSE = "password-reset:"


def _hash(code: str) -> str:
    return keyed_code_hash(code, _PURPOSE)


def show_slip_code(code: str) -> str:
    """"ABCDE-FGHJK": easier to copy; the dash is ignored when typed back."""
    return f"{code[:5]}-{code[5:]}"


def sms_recovery_available() -> bool:
    """Whether text-message codes can reach a phone: a real provider, not the development log."""
    config = settings()
    return config.sms_enabled and config.sms_provider != "logging"


def _new_code(user: User, kind: ResetCodeKind, code: str, lifetime: timedelta, issued_by: int | None) -> None:
    now = utcnow()
    db.session.execute(update(PasswordResetCode).where(
        PasswordResetCode.user_id == user.id, PasswordResetCode.kind == kind.value,
        PasswordResetCode.used_at.is_(None)).values(expires_at=now))
    db.session.add(PasswordResetCode(user_id=user.id, kind=kind.value, code_hash=_hash(code), created_at=now,
                                     expires_at=now + lifetime, failed_attempts=0, issued_by=issued_by))


def issue_slip_code(parent: User, admin: User, school_id: int) -> str:
    """A new printed reset code for `parent` (older slips stop working); returns it in plain text, once."""
    if parent.role != "parent":
        raise ValueError("reset slips are for parent accounts")
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(SLIP_CODE_LENGTH))
    hours = int(current_app.config.get("PASSWORD_RESET_SLIP_HOURS", SLIP_VALID_HOURS))
    _new_code(parent, ResetCodeKind.SLIP, code, timedelta(hours=hours), admin.id)
    record("auth.reset_code_issue", f"user:{parent.id}", {"kind": "slip", "hours": hours}, user_id=admin.id,
           school_id=school_id)
    db.session.commit()
    return code


def send_sms_code(phone: str) -> None:
    """Text a reset code to `phone` if it is an active parent account's number; otherwise do nothing.

    The caller answers alike either way. The attempt is audited under a keyed hash of the number.
    """
    number = normalise_phone(phone.strip())
    user = db.session.scalar(select(User).where(User.phone == number)) if PHONE_RE.match(number) else None
    known = user is not None and user.active and user.role == "parent" and sms_recovery_available()
    record("auth.reset_sms", account_key(phone), {"known_account": known},
           user_id=user.id if known and user is not None else None)
    if not known or user is None:
        db.session.commit()
        return
    code = "".join(secrets.choice("0123456789") for _ in range(SMS_CODE_LENGTH))
    _new_code(user, ResetCodeKind.SMS, code, timedelta(minutes=SMS_VALID_MINUTES), None)
    db.session.commit()
    locale = user.locale or "zh"
    with force_locale(locale):
        title = gettext("Password reset code")
        body = gettext("Your after-school care password reset code is %(code)s. It is valid for %(minutes)d "
                       "minutes. If you did not ask for it, ignore this message.", code=code,
                       minutes=SMS_VALID_MINUTES)
    message = OutgoingMessage(delivery_id=0, message_id=f"<reset-{secrets.token_hex(8)}.sms@{settings().mail_domain}>",
                              to=number, title=title, body=body, locale=locale,
                              template_params={"title": title, "body": body})
    try:
        channels(settings())["sms"].send(message)
    except DeliveryError as error:
        logger.warning("password reset SMS not accepted: %s", error)


def reset_password(phone: str, code: str, new_password: str) -> bool:
    """Set a new password when `code` is a live reset code of the parent with `phone`; True on success.

    Success uses the code up (with every other live code), ends every session and API token and is audited;
    a wrong code counts against every live code of the account, and is audited under a keyed hash.
    """
    number = normalise_phone(phone.strip())
    user = db.session.scalar(select(User).where(User.phone == number)) if PHONE_RE.match(number) else None
    given = _hash(code)
    now = utcnow()
    live = [] if user is None else list(db.session.scalars(select(PasswordResetCode).where(
        PasswordResetCode.user_id == user.id, PasswordResetCode.used_at.is_(None),
        PasswordResetCode.expires_at > now, PasswordResetCode.failed_attempts < MAX_ATTEMPTS)))
    match = next((row for row in live if hmac.compare_digest(row.code_hash, given)), None)
    if user is None or match is None or not user.active or user.role != "parent":
        for row in live:
            row.failed_attempts += 1
        record("auth.password_reset_failed", account_key(phone), {"known_account": user is not None},
               user_id=user.id if user is not None else None)
        db.session.commit()
        return False
    # Single use under concurrency: only the request whose conditional UPDATE takes the code goes on.
    taken = db.session.execute(update(PasswordResetCode).where(
        PasswordResetCode.id == match.id, PasswordResetCode.used_at.is_(None)).values(used_at=now))
    if int(getattr(taken, "rowcount", 0) or 0) != 1:
        db.session.rollback()
        return False
    db.session.execute(update(PasswordResetCode).where(
        PasswordResetCode.user_id == user.id, PasswordResetCode.used_at.is_(None)).values(used_at=now))
    user.password_hash = hash_password(new_password)
    end_all_sessions(user)
    record("auth.password_reset", f"user:{user.id}", {"kind": match.kind}, user_id=user.id)
    db.session.commit()
    return True
