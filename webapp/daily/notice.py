"""The service notice and safety agreement (告家长书): one versioned notice per term, signed per pupil.

The school admin publishes a version (title, content, service hours, safety arrangements); the highest version
of the term is in force and supersedes every earlier one. A guardian signs the version in force for one child;
a signature names its version, so a new version has to be signed again. While a term has a notice in force,
a request for care is refused until the child's notice is signed (`unsigned_notice`, the one check that the
parents' form and the API call). A term without any notice asks for no signature.

`signature_report(term)` lists the placed pupils (a seat in the term's published run) and whether a guardian
signed the version in force; `signed_share(term)` gives the bureau its counts. Each write is one transaction
with its audit row (`notice.publish`, `notice.sign`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import has_request_context, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from webapp.allocation.service import N_
from webapp.audit import AuditAction, record
from webapp.daily.service import DailyError
from webapp.extensions import db
from webapp.models import NoticeSignature, Pupil, RunAssignment, ServiceNotice, Term, User

TITLE_MAX = 100
HOURS_MAX = 200
TEXT_MAX = 20000


def notice_in_force(term_id: int) -> ServiceNotice | None:
    """The term's newest published version, else None."""
    return db.session.scalar(select(ServiceNotice).where(ServiceNotice.term_id == term_id)
                             .order_by(ServiceNotice.version.desc()).limit(1))


def notice_versions(term_id: int) -> list[ServiceNotice]:
    return list(db.session.scalars(select(ServiceNotice).where(ServiceNotice.term_id == term_id)
                                   .order_by(ServiceNotice.version.desc())))


def signature_of(notice: ServiceNotice, pupil_id: int) -> NoticeSignature | None:
    return db.session.scalar(select(NoticeSignature).where(NoticeSignature.notice_id == notice.id,
                                                           NoticeSignature.pupil_id == pupil_id))


@dataclass(frozen=True)
class NoticeDue:
    """The notice in force that no guardian of the pupil has signed yet."""

    notice: ServiceNotice
    pupil_id: int

    @property
    def message(self) -> str:
        return _("Before requesting care, read and sign the school's service notice and safety agreement "
                 "(version %(version)d).", version=self.notice.version)

    @property
    def url(self) -> str:
        """The page where a guardian signs it (absolute, for the API's clients); empty outside a request."""
        if not has_request_context():
            return ""
        return url_for("daily.notice_sign", pupil_id=self.pupil_id, _external=True)


def unsigned_notice(pupil: Pupil, term: Term) -> NoticeDue | None:
    """None when a request for care may go ahead; else the notice to sign first. The one check, called by
    `webapp.parents.service.store_request` (so by the parents' form and the API alike) and by the child's page."""
    notice = notice_in_force(term.id)
    if notice is None or signature_of(notice, pupil.id) is not None:
        return None
    return NoticeDue(notice, pupil.id)


def publish_notice(user: User, term: Term, title: str, content: str, hours: str, safety: str) -> ServiceNotice:
    """Add the next version for `term` (it supersedes the one in force); commit it with its audit row."""
    current = notice_in_force(term.id)
    version = (current.version if current is not None else 0) + 1
    notice = ServiceNotice(term_id=term.id, version=version, title=title, content=content, hours=hours,
                           safety=safety, published_by=user.id)
    db.session.add(notice)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise DailyError(N_("Another version was published at the same moment. Reload the page and try again."),
                         code="conflict") from None
    record(AuditAction.NOTICE_PUBLISH, f"term:{term.id}", {"version": version, "notice_id": notice.id},
           user_id=user.id, school_id=term.school_id)
    db.session.commit()
    return notice


def sign_notice(user: User, pupil: Pupil, notice_id: int) -> tuple[NoticeSignature, bool]:
    """Sign version `notice_id` for the pupil (already checked to be the user's child): (signature, created).

    Only the version in force of the pupil's term can be signed; signing it twice is one row.
    """
    notice = db.session.get(ServiceNotice, notice_id)
    current = notice_in_force(notice.term_id) if notice is not None else None
    term = db.session.get(Term, notice.term_id) if notice is not None and current is not None else None
    if notice is None or current is None or term is None or term.school_id != pupil.school_id:
        raise DailyError(N_("This notice does not exist."), code="not_found", status=404)
    if current.id != notice.id:
        raise DailyError(N_("A newer version of the notice is in force. Read it and sign again."),
                         code="superseded")
    existing = signature_of(notice, pupil.id)
    if existing is not None:
        return existing, False
    signature = NoticeSignature(notice_id=notice.id, pupil_id=pupil.id, signed_by=user.id)
    db.session.add(signature)
    try:
        db.session.flush()
    except IntegrityError:  # another guardian (or a double tap) signed at the same moment
        db.session.rollback()
        existing = signature_of(notice, pupil.id)
        if existing is None:
            raise DailyError(N_("The signature could not be saved. Please try again.")) from None
        return existing, False
    record(AuditAction.NOTICE_SIGN, f"pupil:{pupil.id}", {"notice_id": notice.id, "version": notice.version},
           user_id=user.id, school_id=pupil.school_id)
    db.session.commit()
    return signature, True


def placed_pupil_ids(term: Term) -> list[int]:
    """Pupils with a seat in the term's published run."""
    run = term.published_run if term.published_run is not None and term.published_run.is_published else None
    if run is None:
        return []
    return list(db.session.scalars(select(RunAssignment.pupil_id).where(RunAssignment.run_id == run.id)
                                   .distinct()))


@dataclass(frozen=True)
class ReportRow:
    pupil: Pupil
    signature: NoticeSignature | None


@dataclass(frozen=True)
class SignatureReport:
    notice: ServiceNotice | None
    rows: list[ReportRow]
    """Unsigned first, then by class and name."""

    @property
    def signed(self) -> int:
        return sum(1 for r in self.rows if r.signature is not None)

    @property
    def unsigned(self) -> list[ReportRow]:
        return [r for r in self.rows if r.signature is None]


def signature_report(term: Term) -> SignatureReport:
    """Every placed pupil of the term and the guardian's signature of the version in force (or none)."""
    notice = notice_in_force(term.id)
    ids = placed_pupil_ids(term)
    pupils = db.session.scalars(select(Pupil).where(Pupil.id.in_(ids))).all() if ids else []
    signed = {}
    if notice is not None and ids:
        signed = {s.pupil_id: s for s in db.session.scalars(select(NoticeSignature).where(
            NoticeSignature.notice_id == notice.id, NoticeSignature.pupil_id.in_(ids)))}
    rows = [ReportRow(p, signed.get(p.id)) for p in pupils]
    rows.sort(key=lambda r: (r.signature is not None, r.pupil.class_name, r.pupil.name, r.pupil.number))
    return SignatureReport(notice, rows)


def signed_share(term: Term) -> tuple[int, int]:
    """(placed pupils whose guardian signed the version in force, placed pupils): counts only."""
    ids = placed_pupil_ids(term)
    notice = notice_in_force(term.id)
    if notice is None or not ids:
        return 0, len(ids)
    signed = db.session.scalar(select(func.count()).select_from(NoticeSignature).where(
        NoticeSignature.notice_id == notice.id, NoticeSignature.pupil_id.in_(ids))) or 0
    return int(signed), len(ids)
