"""A family's changes after publication: change requests with an effective date, not edits of the request.

Dropping days or periods, or withdrawing, frees the seats outside what the family now asks for from the
effective date; added days join the waitlist (their uncovered rows are made with the new version). A change
dated today takes effect at once; one dated later waits (`pending`) until `apply_due_changes` runs on that
day (the `flask expire-offers` command sweeps both). Each function owns one transaction under the seat lock.

Dates are calendar days; "today" is the day of `service.clock()`.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete, select

from webapp import audit, run_summary
from webapp.allocation.service import (
    N_,
    AllocationError,
    _Amendment,
    _lapse_offers,
    _lock_seats,
    _refill,
    _transaction,
)
from webapp.extensions import db
from webapp.models import (
    AmendmentKind,
    CareRequest,
    ChangeRequest,
    Period,
    RunAssignment,
    Session,
    Term,
    User,
    clock,
)
from webapp.notifications import NotificationEvent, notify


class ChangeError(AllocationError):
    """The change cannot be accepted (its date); nothing was written."""


def request_change(request: CareRequest, *, actor: User, effective_on: date, withdraw: bool = False,
                   days: list[int] | None = None, pickup_time: str = "", periods: list[str] | None = None,
                   preferences: list[str] | None = None) -> ChangeRequest:
    """Record a change to a published request (values already checked by the caller); apply it if due today."""
    today = clock().date()
    term = request.term
    if effective_on < today:
        raise ChangeError(N_("A change cannot take effect on a date that has passed."))
    if term.ends_on is not None and effective_on > term.ends_on:
        raise ChangeError(N_("This date is after the end of the term."))
    request_id = request.id
    with _transaction():
        fresh = _lock_seats(term.id)
        row = db.session.get(CareRequest, request_id)
        if row is None or row.status != "active":
            raise ChangeError(N_("There is no active request to change."))
        for earlier in db.session.scalars(select(ChangeRequest).where(
                ChangeRequest.term_id == fresh.id, ChangeRequest.pupil_id == row.pupil_id,
                ChangeRequest.state == "pending", ChangeRequest.effective_on >= effective_on)):
            earlier.state = "superseded"
        change = ChangeRequest(term_id=fresh.id, pupil_id=row.pupil_id, requested_by=actor.id,
                               effective_on=effective_on, withdraw=withdraw, days=sorted(days or []),
                               pickup_time=pickup_time, periods=list(periods or []),
                               preferences=list(preferences or []), state="pending")
        db.session.add(change)
        db.session.flush()
        audit.record("request.change", f"pupil:{row.pupil_id}",
                     {"term_id": fresh.id, "effective_on": effective_on.isoformat(), "withdraw": withdraw,
                      "days": change.days}, user_id=actor.id, school_id=fresh.school_id)
        if effective_on <= today:
            _apply(fresh, row, change, actor)
    return change


def _apply(term: Term, row: CareRequest, change: ChangeRequest, actor: User | None) -> None:
    """Make the request what the change says and free the seats beyond it, as one plan version."""
    amendment = _Amendment(term)
    if change.withdraw:
        row.status = "withdrawn"
    else:
        row.days, row.periods = list(change.days), list(change.periods)
        row.pickup_time, row.preferences = change.pickup_time, list(change.preferences)
    row.updated_at = clock()
    if amendment.run is not None:
        keep = set(row.days) if row.status == "active" else set()
        allowed = set(db.session.scalars(
            select(Session.id).join(Period, Period.id == Session.period_id)
            .where(Session.term_id == term.id, Session.day.in_(keep), Period.code.in_(list(row.periods or []))))
        ) if keep else set()
        db.session.execute(delete(RunAssignment).where(
            RunAssignment.run_id == amendment.run.id, RunAssignment.pupil_id == row.pupil_id,
            RunAssignment.session_id.not_in(allowed)))
        run_summary.mark_changed(db.session, amendment.run.id)
        db.session.flush()
        _lapse_offers(term)
        _refill(term, actor)
    done = amendment.done(AmendmentKind.CHANGE_REQUEST, actor, f"change request {change.id} applied")
    change.state, change.applied_at = "applied", clock()
    change.amendment_id = done.id if done is not None else None
    notify(NotificationEvent.CHANGE_APPLIED, pupil_id=row.pupil_id, term_id=term.id,
           params={"change": change.id, "effective_on": change.effective_on.isoformat(),
                   "version": term.plan_version, "withdraw": change.withdraw, "days": list(row.days)})


def apply_due_changes(today: date | None = None) -> int:
    """Apply every pending change whose date has come, one transaction each; return how many."""
    today = today or clock().date()
    due = list(db.session.scalars(select(ChangeRequest.id).where(
        ChangeRequest.state == "pending", ChangeRequest.effective_on <= today).order_by(ChangeRequest.id)))
    db.session.commit()
    applied = 0
    for change_id in due:
        with _transaction():
            change = db.session.get(ChangeRequest, change_id)
            if change is None:
                continue
            term = _lock_seats(change.term_id)
            db.session.refresh(change)
            row = db.session.scalar(select(CareRequest).where(CareRequest.term_id == term.id,
                                                              CareRequest.pupil_id == change.pupil_id))
            if change.state != "pending" or row is None or row.status != "active":
                if change.state == "pending":
                    change.state = "superseded"
                continue
            requester = db.session.get(User, change.requested_by) if change.requested_by else None
            _apply(term, row, change, requester)
            applied += 1
    return applied
