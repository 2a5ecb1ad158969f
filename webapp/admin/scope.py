"""What a school admin may touch: their own school (`g.school`) and the term they are working on.

Every lookup by id goes through these helpers, so an id from another school is a 404, never a leak.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, flash, g, redirect, session, url_for
from flask_babel import gettext as _
from sqlalchemy import exists, select

from webapp.extensions import db
from webapp.labels import from_local, to_local
from webapp.models import Activity, AllocationRun, Pupil, RunAssignment, RunStaffing, Session, Teacher, Term
from webapp.security import school_admin_required

F = TypeVar("F", bound=Callable[..., Any])
Owned = TypeVar("Owned", Term, Activity, Session, Teacher, Pupil)
TERM_KEY = "admin_term_id"


def known_qualifications(school_id: int) -> list[str]:
    """The qualification tags a teacher of the school can usefully hold: those its activities require."""
    return sorted(set(db.session.scalars(
        select(Activity.qualification).join(Term, Term.id == Activity.term_id)
        .where(Term.school_id == school_id, Activity.qualification.is_not(None), Activity.qualification != "")
        .distinct())))


def unknown_qualification_message(tags: list[str], known: list[str]) -> str | None:
    """The sentence refusing `tags` that no activity requires (None when every tag is known)."""
    unknown = [tag for tag in tags if tag not in known]
    if not unknown:
        return None
    named = "、".join(f"“{tag}”" for tag in unknown)
    if not known:
        return _("%(tags)s: no activity of this school asks for a qualification yet. Leave the qualifications "
                 "empty, or set the activity's qualification first.", tags=named)
    return _("%(tags)s: no activity asks for this qualification. Known tags: %(known)s.", tags=named,
             known="、".join(known))


def current_term() -> Term | None:
    """The term chosen on the dashboard, else the school's newest term."""
    chosen = session.get(TERM_KEY)
    if isinstance(chosen, int):
        term = db.session.get(Term, chosen)
        if term is not None and term.school_id == g.school.id:
            return term
    return newest_term()


def newest_term() -> Term | None:
    """The admin's school's newest term (None before the first one)."""
    return cast(Term | None, db.session.scalar(
        select(Term).where(Term.school_id == g.school.id).order_by(Term.id.desc()).limit(1)))


def admin_view(view: F) -> F:
    """school_admin_required, plus `g.term` (possibly None)."""

    @wraps(view)
    @school_admin_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        g.term = current_term()
        return view(*args, **kwargs)

    return cast(F, wrapped)


def term_view(view: F) -> F:
    """Like `admin_view`, but a school without a term is sent to the dashboard with an explanation."""

    @wraps(view)
    @admin_view
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.term is None:
            flash(_("This school has no term yet."), "warning")
            return redirect(url_for("admin.dashboard"))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def _own(model: type[Owned], row_id: int, school_of: Callable[[Owned], int]) -> Owned:
    """The row, if it belongs to the admin's school; otherwise 404 (never a hint that it exists)."""
    row = db.session.get(model, row_id)
    if row is None or school_of(row) != g.school.id:
        abort(404)
    return row


def school_term(term_id: int) -> Term:
    return _own(Term, term_id, lambda term: term.school_id)


def own_activity(activity_id: int) -> Activity:
    return _own(Activity, activity_id, lambda activity: activity.term.school_id)


def own_session(session_id: int) -> Session:
    return _own(Session, session_id, lambda found: found.term.school_id)


def own_teacher(teacher_id: int) -> Teacher:
    return _own(Teacher, teacher_id, lambda teacher: teacher.school_id)


def own_pupil(pupil_id: int) -> Pupil:
    return _own(Pupil, pupil_id, lambda pupil: pupil.school_id)


def in_published_run(session_id: int | None = None, teacher_id: int | None = None) -> bool:
    """Whether a published run seats pupils in this session, or has this teacher on duty."""
    published = (AllocationRun.is_published.is_(True)) | AllocationRun.id.in_(
        select(Term.published_run_id).where(Term.published_run_id.is_not(None)))
    if session_id is not None:
        query = exists().where(RunAssignment.session_id == session_id,
                               RunAssignment.run_id == AllocationRun.id, published)
    else:
        query = exists().where(RunStaffing.teacher_id == teacher_id,
                               RunStaffing.run_id == AllocationRun.id, published)
    return bool(db.session.scalar(select(query)))


def to_china(moment: datetime | None) -> datetime | None:
    """Naive UTC from the database -> naive local time (the configured `TIMEZONE`) for form fields."""
    return to_local(moment)


def from_china(moment: datetime | None) -> datetime | None:
    return from_local(moment)


def mask_phone(phone: str | None) -> str:
    """138****1234: enough for a school to recognise a parent, not enough to call a stranger's number."""
    if not phone:
        return ""
    if len(phone) < 7:
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[-4:]}"


def mask_email(email: str | None) -> str:
    """l***@school.example: enough to recognise an address on file, not to copy it."""
    if not email or "@" not in email:
        return ""
    name, _at, domain = email.partition("@")
    return f"{name[:1]}***@{domain}"
