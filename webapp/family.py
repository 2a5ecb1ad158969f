"""Linking a parent's account to a child with the enrolment code the school hands the family.

Codes are 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L). They are stored as
HMAC-SHA256 under the app's secret (`ENROLMENT_CODE_KEY`, else `SECRET_KEY`): fast enough to issue 3,000 at
once, useless to whoever steals the database without the key. Rotating the key invalidates unused codes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app
from sqlalchemy import delete, func, select

from webapp.audit import record
from webapp.extensions import db
from webapp.models import Guardianship, Notification, Pupil, School, User, utcnow

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


def make_enrolment_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    """What a parent types, as the school printed it: case, spaces and dashes do not matter."""
    return "".join(code.split()).replace("-", "").upper()


def keyed_code_hash(code: str, purpose: str = "") -> str:
    """HMAC-SHA256 of the normalised code under the app's code key; `purpose` keeps kinds of code apart."""
    key = current_app.config.get("ENROLMENT_CODE_KEY") or current_app.config["SECRET_KEY"]
    return hmac.new(str(key).encode(), (purpose + normalise_code(code)).encode(), hashlib.sha256).hexdigest()


def hash_enrolment_code(code: str) -> str:
    return keyed_code_hash(code)


def issue_enrolment_code(pupil: Pupil) -> str:
    """Give `pupil` a new code (the old one stops working) and return it in plain text, once."""
    code = make_enrolment_code()
    pupil.enrolment_code_hash = hash_enrolment_code(code)
    return code


def enrolment_code_matches(pupil: Pupil, code: str) -> bool:
    if not pupil.enrolment_code_hash:
        return False
    return hmac.compare_digest(pupil.enrolment_code_hash, hash_enrolment_code(code))


class ConsentMissing(Exception):
    """The parent has not recorded a guardian's consent yet: the consent step comes before any link."""


def has_consent(user: User) -> bool:
    return bool(user.consent_policy_version and user.consent_at)


def record_consent(user: User) -> None:
    """The parent agrees to the current data policy (version and time are kept); the caller commits."""

    user.consent_policy_version = current_app.config["CONSENT_POLICY_VERSION"]
    user.consent_at = utcnow()
    record("family.consent", f"user:{user.id}", {"policy_version": user.consent_policy_version}, user_id=user.id)


def link_child(user: User, school_code: str, pupil_number: str, enrolment_code: str,
               relation: str = "") -> Pupil | None:
    """Link `user` to the pupil when school, number and code all match; None otherwise (say nothing more).

    Linking twice is harmless. The guardianship records the consent the parent gave; a parent without one
    gets `ConsentMissing` before any code is looked at.
    """
    if not has_consent(user):
        raise ConsentMissing
    school = db.session.scalar(select(School).where(func.upper(School.code) == school_code.strip().upper()))
    if school is None:
        hash_enrolment_code(enrolment_code)  # the same work on every path
        return None
    pupil = db.session.scalar(
        select(Pupil).where(Pupil.school_id == school.id, Pupil.number == pupil_number.strip(), Pupil.active)
    )
    if pupil is None or not enrolment_code_matches(pupil, enrolment_code):
        return None
    existing = db.session.scalar(
        select(Guardianship).where(Guardianship.user_id == user.id, Guardianship.pupil_id == pupil.id)
    )
    if existing is None:
        db.session.add(Guardianship(
            user_id=user.id, pupil_id=pupil.id, relation=relation,
            consent_policy_version=user.consent_policy_version, consent_at=utcnow(),
        ))

        record("family.link_child", f"pupil:{pupil.id}", user_id=user.id, school_id=school.id)
        db.session.commit()
    return pupil


def unlink_child(user: User, pupil: Pupil) -> bool:
    """End `user`'s guardianship of `pupil` (one transaction, audited); False when there was none.

    The child's care request stays with the school: it is the child's request, and another guardian, or the
    school, may still rely on it (a parent who wants the seats given up withdraws the request first). What
    the account was told about this child (its inbox rows) goes with the link.
    """
    link = db.session.scalar(
        select(Guardianship).where(Guardianship.user_id == user.id, Guardianship.pupil_id == pupil.id))
    if link is None:
        return False
    db.session.delete(link)
    db.session.execute(delete(Notification).where(Notification.user_id == user.id,
                                                  Notification.pupil_id == pupil.id))
    record("family.unlink_child", f"pupil:{pupil.id}", user_id=user.id, school_id=pupil.school_id)
    db.session.commit()
    return True

