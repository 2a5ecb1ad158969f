"""Children's personal data (PIPL): what a family can download, and what is deleted once a term is long past.

`family_export(user)` returns everything the service holds about a user's account and, for a guardian, the
linked children, their care requests and published results, and each child's daily-service records (absences,
pickup persons, one-off delegates without their codes, roll-call marks, handovers, signed service notices) —
the JSON behind `/account/export`.

`purge(retention_days, dry_run, now)` — `flask --app webapp purge-term` — deletes the personal data of terms
that ended more than `retention_days` ago:

- a term *ends* when the school's next term opens its request window; the school's newest term ends
  `TERM_LENGTH_DAYS` after its results date (or request deadline, or window opening);
- of an expired term: care requests, pins, and every run's assignments, unserved days and staffing (the runs'
  aggregate figures stay for the bureau's statistics; the fairness figures lose the pupils and families they
  name, and the run its record of each pupil's priority group, `webapp.run_metrics.without_names`); the daily
  service's roll-call marks and handovers of its sessions, absences and one-off delegates dated within its
  calendar, and the signatures of its service notices (the notices themselves name nobody and stay);
- pupils no longer in any current term — inactive, or of a school whose terms have all expired — and who
  have no data left in a current term, with their guardianships;
- parent accounts left with no child at all that nobody has signed in to (web or API) within the retention
  period, with their API tokens and the consent recorded on them; their audit rows stay, without the link to
  the account or the keyed hash of its phone number (signed-cookie sessions end because the account is gone);
- the `detail` of audit entries older than the retention period, and API tokens expired that long ago.

Nothing of a term that has not expired is touched, and a school without any term keeps its pupils.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import click
from flask import Flask
from sqlalchemy import ColumnElement, delete, func, or_, select, update

from webapp.accounts import erase_parent_accounts
from webapp.audit import record
from webapp.daily.layers import term_bounds
from webapp.extensions import db
from webapp.models import (
    Absence,
    AbsenceAlert,
    AllocationRun,
    ApiToken,
    AuditLog,
    CareRequest,
    Guardianship,
    Handover,
    NoticeSignature,
    PickupDelegate,
    PickupPerson,
    Pin,
    Pupil,
    RollCallMark,
    RunAssignment,
    RunStaffing,
    RunUnserved,
    School,
    ServiceNotice,
    Session,
    Term,
    User,
    clock,
)
from webapp.parents.service import child_result
from webapp.run_metrics import without_names

DEFAULT_RETENTION_DAYS = 365
TERM_LENGTH_DAYS = 183
"""How long the newest term of a school lasts after its results date, when no later term says otherwise."""



def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


# ------------------------------------------------------------------------------------------ export


def family_export(user: User) -> dict[str, Any]:
    """The user's account, consent, children, requests, published results, API tokens and own audit trail."""
    tokens = db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
    activity = db.session.scalars(select(AuditLog).where(AuditLog.user_id == user.id).order_by(AuditLog.id))
    data: dict[str, Any] = {
        "exported_at": _iso(clock()),
        "account": {
            "role": user.role,
            "phone": user.phone,
            "username": user.username,
            "display_name": user.display_name,
            "locale": user.locale,
            "created_at": _iso(user.created_at),
            "last_login_at": _iso(user.last_login_at),
            "consent": {"policy_version": user.consent_policy_version, "given_at": _iso(user.consent_at)},
            "school": user.school.code if user.school else None,
            "district": user.district.name if user.district else None,
        },
        "children": [_child_export(link) for link in
                     sorted(user.guardianships, key=lambda g: (g.pupil.school_id, g.pupil.number))],
        "api_tokens": [
            {"created_at": _iso(t.created_at), "expires_at": _iso(t.expires_at), "revoked": bool(t.revoked),
             "last_used_at": _iso(t.last_used_at)}
            for t in tokens
        ],
        "activity": [
            {"at": _iso(a.at), "action": a.action, "target": a.target}
            for a in activity
        ],
    }
    return data


def _child_export(link: Guardianship) -> dict[str, Any]:
    pupil = link.pupil
    requests = db.session.execute(
        select(CareRequest, Term).join(Term, Term.id == CareRequest.term_id)
        .where(CareRequest.pupil_id == pupil.id).order_by(Term.requests_open_at, Term.id)
    ).all()
    terms = db.session.scalars(select(Term).where(Term.school_id == pupil.school_id).order_by(Term.id)).all()
    return {
        "school": {"code": pupil.school.code, "name": pupil.school.name},
        "number": pupil.number,
        "name": pupil.name,
        "grade": pupil.grade,
        "class_name": pupil.class_name,
        "priority": pupil.priority,
        "relation": link.relation,
        "consent": {"policy_version": link.consent_policy_version, "given_at": _iso(link.consent_at)},
        "requests": [
            {"term": term.name, "days": list(r.days), "pickup_time": r.pickup_time,
             "periods": list(r.periods), "preferences": list(r.preferences), "status": r.status,
             "submitted_at": _iso(r.submitted_at), "updated_at": _iso(r.updated_at)}
            for r, term in requests
        ],
        "results": [result for term in terms if (result := _result_export(pupil, term)) is not None],
        "daily": _daily_export(pupil),
    }


def _daily_export(pupil: Pupil) -> dict[str, Any]:
    """The child's daily-service records, oldest first; a one-off delegate's code is never stored readably."""
    def rows(model: Any, *order: Any) -> list[Any]:
        return list(db.session.scalars(select(model).where(model.pupil_id == pupil.id).order_by(*order)))

    sessions = {s.id: s.code for s in db.session.scalars(
        select(Session).where(Session.id.in_(select(RollCallMark.session_id).where(
            RollCallMark.pupil_id == pupil.id))))}
    notices = db.session.execute(
        select(NoticeSignature, ServiceNotice, Term).join(ServiceNotice, ServiceNotice.id == NoticeSignature.notice_id)
        .join(Term, Term.id == ServiceNotice.term_id).where(NoticeSignature.pupil_id == pupil.id)
        .order_by(NoticeSignature.signed_at, NoticeSignature.id)).all()
    return {
        "absences": [{"first_day": a.first_day.isoformat(), "last_day": a.last_day.isoformat(), "reason": a.reason,
                      "reported_at": _iso(a.created_at), "cancelled_at": _iso(a.cancelled_at)}
                     for a in rows(Absence, Absence.first_day, Absence.id)],
        "pickup_persons": [{"name": p.name, "relation": p.relation, "phone": p.phone,
                            "added_at": _iso(p.created_at), "removed_at": _iso(p.removed_at)}
                           for p in rows(PickupPerson, PickupPerson.id)],
        "delegates": [{"name": d.name, "valid_on": d.valid_on.isoformat(), "created_at": _iso(d.created_at),
                       "used_at": _iso(d.used_at)} for d in rows(PickupDelegate, PickupDelegate.valid_on,
                                                                 PickupDelegate.id)],
        "roll_call": [{"day": m.day.isoformat(), "session": sessions.get(m.session_id), "status": m.status,
                       "marked_at": _iso(m.marked_at), "correction_reason": m.reason or None}
                      for m in rows(RollCallMark, RollCallMark.day, RollCallMark.id)],
        "absence_alerts": [{"day": a.day.isoformat(), "raised_at": _iso(a.raised_at),
                            "class_teacher_told": a.class_teacher_id is not None and not a.problem,
                            "arrived_at": _iso(a.arrived_at)}
                           for a in rows(AbsenceAlert, AbsenceAlert.day)],
        "handovers": [{"day": h.day.isoformat(), "at": _iso(h.at),
                       "collected_by": (h.pickup_person.name if h.pickup_person is not None
                                        else h.delegate.name if h.delegate is not None else None)}
                      for h in rows(Handover, Handover.day)],
        "service_notices": [{"term": term.name, "version": notice.version, "title": notice.title,
                             "signed_at": _iso(signature.signed_at)} for signature, notice, term in notices],
    }


def _result_export(pupil: Pupil, term: Term) -> dict[str, Any] | None:
    result = child_result(pupil, term)
    if result is None:
        return None
    return {
        "term": term.name,
        "published_at": _iso(result.published_at),
        "timetable": [{**asdict(slot), "teachers": list(slot.teachers)} for slot in result.timetable],
        "uncovered": [asdict(day) for day in result.uncovered],
        "requested_days": list(result.requested_days),
        "covered_days": list(result.covered_days),
    }


# ------------------------------------------------------------------------------------------ purge


@dataclass
class PurgeReport:
    cutoff: datetime
    expired_terms: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def lines(self) -> list[str]:
        head = "would delete" if self.dry_run else "deleted"
        out = [f"retention cutoff {self.cutoff:%Y-%m-%d %H:%M} UTC; expired terms: "
               + (", ".join(self.expired_terms) or "none")]
        out += [f"{head} {count} {name}" for name, count in self.counts.items()]
        return out


def term_end(term: Term, next_term: Term | None) -> datetime | None:
    """When `term` stopped being current: its successor's opening, else a semester after its last date."""
    if next_term is not None and next_term.requests_open_at is not None:
        return next_term.requests_open_at
    last: datetime | None = term.requests_close_at or term.requests_open_at
    if term.results_date is not None:
        last = datetime.combine(term.results_date, time())
    if last is None:
        return None
    return last + timedelta(days=TERM_LENGTH_DAYS)


def expired_terms(cutoff: datetime) -> list[Term]:
    """Terms that ended before `cutoff`; a term with no dates at all never expires."""
    found: list[Term] = []
    for school_id in db.session.scalars(select(School.id)).all():
        terms = db.session.scalars(select(Term).where(Term.school_id == school_id)).all()
        ordered = sorted(terms, key=lambda t: (t.requests_open_at or datetime.min, t.id))
        for index, term in enumerate(ordered):
            later = ordered[index + 1] if index + 1 < len(ordered) else None
            end = term_end(term, later)
            if end is not None and end <= cutoff:
                found.append(term)
    return found


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _purge_daily(expired_ids: list[int], counts: dict[str, int]) -> None:
    """The daily service's records of expired terms: roll-call marks and handovers of their sessions, and
    absences and one-off delegates dated within their calendars, signatures of their service notices (pickup
    persons stay with the child)."""
    session_ids = select(Session.id).where(Session.term_id.in_(expired_ids))
    counts["absence alerts"] = _count(db.session.execute(
        delete(AbsenceAlert).where(AbsenceAlert.session_id.in_(session_ids))))
    counts["roll-call marks"] = _count(db.session.execute(
        delete(RollCallMark).where(RollCallMark.session_id.in_(session_ids))))
    counts["handovers"] = _count(db.session.execute(delete(Handover).where(Handover.session_id.in_(session_ids))))
    counts["notice signatures"] = _count(db.session.execute(delete(NoticeSignature).where(
        NoticeSignature.notice_id.in_(select(ServiceNotice.id).where(ServiceNotice.term_id.in_(expired_ids))))))
    counts["absences"] = counts["delegates"] = 0
    for _term_id, school_id, first, last in db.session.execute(term_bounds().where(Term.id.in_(expired_ids))):
        if first is None or last is None:
            continue
        pupils = select(Pupil.id).where(Pupil.school_id == school_id)
        counts["absences"] += _count(db.session.execute(delete(Absence).where(
            Absence.pupil_id.in_(pupils), Absence.first_day >= first, Absence.last_day <= last)))
        counts["delegates"] += _count(db.session.execute(delete(PickupDelegate).where(
            PickupDelegate.pupil_id.in_(pupils), PickupDelegate.valid_on >= first, PickupDelegate.valid_on <= last)))


def purge(retention_days: int = DEFAULT_RETENTION_DAYS, *, dry_run: bool = False,
          at: datetime | None = None) -> PurgeReport:
    """Delete the personal data of terms that ended more than `retention_days` before `at` (default now).

    One transaction; with `dry_run` the same statements run and are rolled back, so the counts are exact.
    """
    if retention_days < 0:
        raise ValueError("retention_days must not be negative")
    cutoff = (at or clock()) - timedelta(days=retention_days)
    expired = expired_terms(cutoff)
    expired_ids = [t.id for t in expired]
    report = PurgeReport(cutoff, [f"{t.school.code}/{t.name}" for t in expired], dry_run=dry_run)
    counts = report.counts
    try:
        run_ids = list(db.session.scalars(
            select(AllocationRun.id).where(AllocationRun.term_id.in_(expired_ids))))
        counts["care requests"] = _count(db.session.execute(
            delete(CareRequest).where(CareRequest.term_id.in_(expired_ids))))
        counts["pins"] = _count(db.session.execute(delete(Pin).where(Pin.term_id.in_(expired_ids))))
        counts["run assignments"] = _count(db.session.execute(
            delete(RunAssignment).where(RunAssignment.run_id.in_(run_ids))))
        counts["unserved days"] = _count(db.session.execute(
            delete(RunUnserved).where(RunUnserved.run_id.in_(run_ids))))
        counts["staffing rows"] = _count(db.session.execute(
            delete(RunStaffing).where(RunStaffing.run_id.in_(run_ids))))
        named = db.session.scalars(select(AllocationRun).where(AllocationRun.id.in_(run_ids))).all()
        counts["fairness lists"] = 0
        for run in named:
            if run.metrics and ("fairness" in run.metrics or "priority_groups" in run.metrics):
                run.metrics = without_names(run.metrics)
                counts["fairness lists"] += 1
        _purge_daily(expired_ids, counts)

        pupil_ids = list(db.session.scalars(select(Pupil.id).where(_pupil_gone(expired_ids))))
        counts["guardianships"] = _count(db.session.execute(
            delete(Guardianship).where(Guardianship.pupil_id.in_(pupil_ids))))
        counts["pupils"] = _count(db.session.execute(delete(Pupil).where(Pupil.id.in_(pupil_ids))))

        account_ids = list(db.session.scalars(select(User.id).where(_idle_childless_parent(cutoff))))
        counts["api tokens"] = _count(db.session.execute(
            delete(ApiToken).where(ApiToken.expires_at < cutoff)))
        erased = erase_parent_accounts(account_ids)
        counts["api tokens"] += erased["api tokens"]
        counts["parent accounts"] = erased["parent accounts"]

        counts["audit details"] = _count(db.session.execute(
            update(AuditLog).where(AuditLog.at < cutoff, AuditLog.detail.is_not(None)).values(detail=None)))
        if dry_run:
            db.session.rollback()
        else:

            record("privacy.purge", "", {"retention_days": retention_days, "terms": expired_ids, **{
                name.replace(" ", "_"): count for name, count in counts.items()}})
            db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return report


def _pupil_gone(expired_ids: list[int]) -> ColumnElement[bool]:
    """Pupils with no data in a current term and no longer on a current roster (see the module docstring)."""
    current_terms = select(Term.id).where(Term.id.not_in(expired_ids))
    school_has_current = select(Term.id).where(Term.school_id == Pupil.school_id, Term.id.not_in(expired_ids))
    school_has_terms = select(Term.id).where(Term.school_id == Pupil.school_id)
    in_current = or_(
        select(CareRequest.id).where(CareRequest.pupil_id == Pupil.id,
                                     CareRequest.term_id.in_(current_terms)).exists(),
        select(Pin.id).where(Pin.pupil_id == Pupil.id, Pin.term_id.in_(current_terms)).exists(),
        select(RunAssignment.run_id).join(AllocationRun, AllocationRun.id == RunAssignment.run_id)
        .where(RunAssignment.pupil_id == Pupil.id, AllocationRun.term_id.in_(current_terms)).exists(),
        select(RunUnserved.id).join(AllocationRun, AllocationRun.id == RunUnserved.run_id)
        .where(RunUnserved.pupil_id == Pupil.id, AllocationRun.term_id.in_(current_terms)).exists(),
    )
    off_roster = or_(Pupil.active.is_(False),
                     school_has_terms.exists() & ~school_has_current.exists())
    return off_roster & ~in_current


def _idle_childless_parent(cutoff: datetime) -> ColumnElement[bool]:
    """Parents with no guardianship left who have not signed in, nor used or taken an API token, since `cutoff`
    (an account never signed in to counts from its registration)."""
    token_in_use = select(ApiToken.id).where(
        ApiToken.user_id == User.id, func.coalesce(ApiToken.last_used_at, ApiToken.created_at) >= cutoff)
    return (
        (User.role == "parent")
        & ~select(Guardianship.id).where(Guardianship.user_id == User.id).exists()
        & (func.coalesce(User.last_login_at, User.created_at) < cutoff)
        & ~token_in_use.exists()
    )


def init_app(app: Flask) -> None:
    @app.cli.command("purge-term")
    @click.option("--retention-days", type=click.IntRange(min=0), default=DEFAULT_RETENTION_DAYS,
                  show_default=True, help="keep personal data this many days after a term ends")
    @click.option("--dry-run", is_flag=True, help="count what would be deleted, delete nothing")
    def purge_term_command(retention_days: int, dry_run: bool) -> None:
        """Delete children's personal data of terms that ended more than the retention period ago."""
        report = purge(retention_days, dry_run=dry_run)
        for line in report.lines():
            click.echo(line)
