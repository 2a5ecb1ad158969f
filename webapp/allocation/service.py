"""Every change to a term's published plan, and the writes that lead to one; each function is one transaction.

Each public function here begins, commits and (on any error) rolls back its own transaction, so a caller never
sees half of a change: a seat removed but not offered, a publish without its waitlist numbers. Callers (views,
the parents' service, the API, the demo) parse their input, call one function, then report.

Concurrency. Whatever frees or fills seats first takes the term's seat lock (`_lock_seats`): on SQLite the
database write lock (BEGIN IMMEDIATE), on PostgreSQL SELECT ... FOR UPDATE on the term's session rows in id
order and then on the term row, so two callers cannot over-fill a session or deadlock. It then reads everything
again, so it decides on what the previous holder committed. Publishing compares the term's published run with
the one the admin saw (`expected`) in a conditional UPDATE that is its first write (on PostgreSQL after locking
the term row): of two admins publishing at once one wins, the other gets `PublishConflict` and nothing of theirs
is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import delete, func, select, update

from webapp import audit, run_summary
from webapp.allocation import plan, seats
from webapp.allocation.lottery import ensure_lottery_seed, new_seed
from webapp.allocation.waitlist import positions
from webapp.extensions import db
from webapp.models import (
    AllocationRun,
    AmendmentKind,
    CareRequest,
    OfferState,
    Pin,
    PlanAmendment,
    Pupil,
    RunAssignment,
    Session,
    Teacher,
    Term,
    User,
    utcnow,
)
from webapp.notifications import NotificationEvent, notify

UNSET: Any = object()
SESSION_FIELDS = ("code", "activity_id", "day", "period_id", "room", "capacity", "grade_lo", "grade_hi",
                  "pupils_per_teacher", "min_pupils")


def N_(message: str) -> str:
    """Marks a msgid for extraction; the caller translates it when it shows the error."""
    return message


class AllocationError(Exception):
    """The change cannot be made; the message is an English msgid the caller translates. Nothing was written."""


class PublishError(AllocationError):
    """The run cannot be published."""


class PublishConflict(PublishError):
    """Someone else published this term after the admin loaded the page."""


class SeatNotFound(AllocationError, LookupError):
    """No such seat in a finished run (callers answer 404)."""


class NotWithdrawable(AllocationError):
    """The request is not active (any more): there is nothing to withdraw."""


class RuleBroken(AllocationError):
    """The change would break a hard rule of the published plan; `problems` lists them (for the admin)."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


RULE_BROKEN = N_("This change would break a hard rule of the published plan, so nothing was changed.")


def clock() -> datetime:
    """Now as naive UTC, or the app's frozen `NOW` (a datetime or a callable) in tests."""
    frozen = current_app.config.get("NOW") if has_app_context() else None
    if frozen is None:
        return utcnow()
    return frozen() if callable(frozen) else frozen  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SeatChange:
    """What a change did to the published plan: the pupil-days promoted from the waitlist into freed seats."""

    published: bool
    promoted: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ transactions


@contextmanager
def _transaction() -> Iterator[None]:
    """Commit when the block ends normally; roll back everything on any error and re-raise it."""
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def _rowcount(result: Any) -> int:
    """Rows matched by an UPDATE or DELETE (ORM `execute` types its result without `rowcount`)."""
    return int(result.rowcount)


def _lock_seats(term_id: int) -> Term:
    """Take the term's seat lock for the rest of the transaction and return the term as now committed."""
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        db.session.execute(
            select(Session.id).where(Session.term_id == term_id).order_by(Session.id).with_for_update()
        ).all()
        db.session.execute(select(Term.id).where(Term.id == term_id).with_for_update()).all()
    db.session.expire_all()
    term = db.session.get(Term, term_id)
    if term is None:
        raise AllocationError(N_("This term no longer exists."))
    return term


def _actor_id(actor: User | int | None) -> int | None:
    return actor if actor is None or isinstance(actor, int) else int(actor.id)


def _refill(term: Term, actor: User | int | None) -> list[dict[str, Any]]:
    """Offer (or give) the published run's free seats to the waitlist and renumber it (inside the seat lock)."""
    at = clock()
    _expire_due(term, at)
    promoted = seats.promote(term, actor=_actor_id(actor), at=at)
    db.session.flush()
    positions(term)
    return promoted


def _published(term: Term) -> AllocationRun | None:
    run = term.published_run
    return run if run is not None and run.is_published else None


class _Amendment:
    """The seats and rule problems before a change, so the change can be recorded and checked as a version."""

    def __init__(self, term: Term) -> None:
        self.term = term
        self.run = _published(term)
        self.before = plan.snapshot(self.run.id if self.run else None)
        self.state = plan.state(term, self.run) if self.run else None

    def done(self, kind: AmendmentKind, actor: User | int | None, reason: str, *,
             data_changed: bool = True) -> PlanAmendment | None:
        if self.run is None:
            return None
        _lapse_offers(self.term)
        try:
            return plan.amend(self.term, self.run, kind=kind, actor_id=_actor_id(actor), reason=reason,
                              before=self.before, before_state=self.state, data_changed=data_changed)
        except plan.RuleBroken as exc:
            raise RuleBroken(RULE_BROKEN, exc.problems) from None


def _lapse_offers(term: Term) -> None:
    """Close open offers the family no longer asks for (a withdrawn request, a dropped day or period)."""
    for offer in seats.open_offers(term.id):
        request = db.session.scalar(select(CareRequest).where(CareRequest.term_id == term.id,
                                                              CareRequest.pupil_id == offer.pupil_id))
        wanted = request is not None and request.status == "active" and offer.day in (request.days or [])
        if wanted and offer.run_id == term.published_run_id:
            continue
        offer.state = OfferState.LAPSED.value
        offer.decided_at = clock()


def _expire_due(term: Term, at: datetime) -> int:
    """Expire the term's open offers whose time is up (inside the seat lock); tell each family."""
    expired = 0
    for offer in seats.open_offers(term.id):
        if offer.expires_at > at:
            continue
        offer.state = OfferState.EXPIRED.value
        offer.decided_at = at
        expired += 1
        audit.record("offer.expire", f"offer:{offer.id}", {"term_id": term.id, "pupil_id": offer.pupil_id,
                                                           "day": offer.day}, school_id=term.school_id)
        notify(NotificationEvent.OFFER_EXPIRED, pupil_id=offer.pupil_id, term_id=term.id,
               params={"offer": offer.id, "day": offer.day})
    if expired:
        db.session.flush()
    return expired


# ------------------------------------------------------------------------------------------ lottery and publish


def draw_lottery_seed(term: Term) -> int:
    """Draw the term's lottery seed unless it has one, in one transaction; the first draw wins any race.

    Called before a term's first run starts, so the solver's lottery among equals and the waitlist use one draw.
    """
    with _transaction():
        db.session.execute(
            update(Term).where(Term.id == term.id, (Term.lottery_seed == 0) | Term.lottery_seed.is_(None))
            .values(lottery_seed=new_seed()).execution_options(synchronize_session=False)
        )
    db.session.refresh(term)
    return int(term.lottery_seed)


def publish_problem(run: AllocationRun, term: Term) -> str | None:
    """Why `run` cannot be published now (an English msgid), or None; `publish_run` refuses with it."""
    if term.requests_close_at is None or clock() < term.requests_close_at:
        return N_("Close the request window before publishing: families could still change "
                  "their requests after the plan is fixed.")
    if run.state != "done" or run.status not in ("OPTIMAL", "FEASIBLE"):
        return N_("Only a finished run with an allocation can be published.")
    if term.published_run_id == run.id:
        return N_("This run is already the published version.")
    if run.version is not None:
        return N_("This run was published before. Start a new run to publish a new version.")
    return None


def publish_run(run: AllocationRun, user: User | None, *, expected: int | None = UNSET) -> AllocationRun:
    """Publish `run` for its term with its waitlist numbered and audited, in one transaction; return it.

    Raises `PublishError` having written nothing. `expected` is the term's published run id the admin saw (None
    when nothing was published); left out, the value read now is used. `user` is None only for the command line.
    """
    session = db.session
    with _transaction():
        term = session.get(Term, run.term_id)
        if term is None:
            raise PublishError(N_("This run does not belong to a term."))
        problem = publish_problem(run, term)
        if problem is not None:
            raise PublishError(problem)
        if expected is UNSET:
            expected = term.published_run_id

        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(Term.id).where(Term.id == term.id).with_for_update())
        same = Term.published_run_id.is_(None) if expected is None else Term.published_run_id == expected
        won = _rowcount(session.execute(
            update(Term).where(Term.id == term.id, same).values(published_run_id=run.id)
            .execution_options(synchronize_session=False)
        ))
        if not won:
            raise PublishConflict(N_("Another administrator published a version meanwhile. Please reload and check."))
        previous = session.get(AllocationRun, expected) if expected is not None else None
        before = plan.snapshot(expected if previous is not None and previous.is_published else None)

        session.refresh(term)
        session.refresh(run)
        if run.state != "done" or run.term_id != term.id:
            raise PublishError(N_("Only a finished run with an allocation can be published."))
        latest = session.scalar(select(func.max(AllocationRun.version)).where(AllocationRun.term_id == term.id))
        run.version = (latest or 0) + 1
        run.is_published = True
        run.published_at = utcnow()
        ensure_lottery_seed(term)
        placed = positions(term)
        kind = AmendmentKind.REPUBLISH if before or expected is not None else AmendmentKind.PUBLISH
        try:
            plan.amend(term, run, kind=kind, actor_id=user.id if user is not None else None,
                       reason=f"run {run.id} published as run version {run.version}", before=before)
        except plan.RuleBroken as exc:
            raise PublishError(N_("This run no longer fits the families' current requests or the school's "
                                  "sessions and teachers. Start a new run and publish that.")) from exc
        _lapse_offers(term)
        placed = positions(term)

        audit.record("run.publish", f"run:{run.id}",
                     {"term": term.name, "version": run.version, "previous_run": expected,
                      "waitlist": len(placed), "coverage": run.coverage, "demand": run.demand},
                     user_id=user.id if user is not None else None, school_id=term.school_id)
    return run


# ------------------------------------------------------------------------------------------ seats


def fill_freed_seats(term: Term, *, actor: User | int | None = None) -> list[dict[str, Any]]:
    """Offer the published run's free seats to waitlisted pupil-days in queue order, in one transaction.

    A pupil-day is promoted only where nobody already placed is disturbed (`webapp.allocation.seats`). Safe to
    call at any time and from many threads at once; returns the promotions (empty when there is nothing to do).
    """
    with _transaction():
        fresh = _lock_seats(term.id)
        change = _Amendment(fresh)
        promoted = _refill(fresh, actor)
        change.done(AmendmentKind.PROMOTION, actor, "freed seats placed from the waitlist", data_changed=False)
    return promoted


UNPLACEABLE = {
    "not_waiting": N_("This pupil is not on the waitlist for that day."),
    "offered": N_("This pupil already has an open offer for that day; wait for the family's answer."),
    "ineligible": N_("No session that day and period is open to this pupil (grade, day or period), so the "
                     "pupil cannot be placed."),
    "no_seat": N_("No seat is free for this pupil that day: every eligible session is full or has no teacher "
                  "to spare. Nobody was moved."),
}


class NotPlaceable(AllocationError):
    """A waitlisted pupil-day cannot be placed by hand; the message says why (nothing was written)."""


def place_from_waitlist(term: Term, pupil_id: int, day: int, *, actor: User, reason: str) -> list[int]:
    """Seat a waitlisted pupil-day in free seats now, as a new plan version, in one transaction.

    The school decides ahead of the queue (a hardship case, say); `reason` is kept with the version and in the
    audit log, and the family is told. Nobody already placed is moved, and the validator's hard rules must hold
    (capacity, eligibility, one seat per period, staffing), else `RuleBroken`. Raises `NotPlaceable` when the
    pupil is not waiting that day, has an open offer, is not eligible, or no seat is free. Returns the
    sessions given.
    """
    if not reason.strip():
        raise NotPlaceable(N_("Give a reason for placing this pupil ahead of the waitlist."))
    with _transaction():
        fresh = _lock_seats(term.id)
        if _published(fresh) is None:
            raise NotPlaceable(N_("There is no published allocation yet."))
        _expire_due(fresh, clock())
        change = _Amendment(fresh)
        try:
            placement = seats.place(fresh, pupil_id, day, actor=_actor_id(actor))
        except seats.Unplaceable as exc:
            raise NotPlaceable(UNPLACEABLE[exc.reason]) from None
        positions(fresh)
        change.done(AmendmentKind.PROMOTION, actor, f"placed by the school from the waitlist: {reason.strip()}")
    return list(placement["sessions"])


def remove_seat(run: AllocationRun, pupil_id: int, session_id: int, *, actor: User) -> SeatChange:
    """Take a pupil out of one session of a finished run and recount the run, in one transaction.

    In the published run the freed seat goes to the waitlist in the same transaction, so the seat is never seen
    free while someone waits for it. The pupil's day, now uncovered, joins the waitlist after that offer (so
    the seat is not handed straight back). Raises `SeatNotFound` (nothing written) when there is no such seat.
    """
    run_id = run.id
    with _transaction():
        term = _lock_seats(run.term_id)
        fresh = db.session.get(AllocationRun, run_id)
        if fresh is None or fresh.state != "done":
            raise SeatNotFound(N_("There is no such seat."))
        published = term.published_run_id == run_id
        change = _Amendment(term) if published else None
        removed = _rowcount(db.session.execute(delete(RunAssignment).where(
            RunAssignment.run_id == run_id, RunAssignment.pupil_id == pupil_id,
            RunAssignment.session_id == session_id)))
        if not removed:
            raise SeatNotFound(N_("There is no such seat."))
        run_summary.mark_changed(db.session, run_id)
        pupil, session = db.session.get(Pupil, pupil_id), db.session.get(Session, session_id)
        audit.record("run.remove_assignment", f"run:{run_id}",
                     {"pupil": pupil.number if pupil else pupil_id,
                      "session": session.code if session else session_id, "published": published},
                     user_id=actor.id, school_id=term.school_id)
        promoted: list[dict[str, Any]] = []
        if change is not None:
            promoted = _refill(term, actor)  # before the pupil's own day joins the waitlist: no straight hand-back
            change.done(AmendmentKind.SEAT_REMOVAL, actor,
                        f"seat of {pupil.number if pupil else pupil_id} in {session.code if session else session_id}"
                        " removed")
        else:
            plan.drop_idle_staff(run_id)
            plan.refresh_reasons(term, fresh)
    return SeatChange(published, promoted)


def withdraw_request(request: CareRequest, *, actor: User, at: datetime) -> int:
    """Withdraw a care request in one transaction; return how many seats that freed.

    After publication the child's seats are freed and offered to the waitlist as a new plan version (the
    family's offers lapse), and the waitlist is renumbered (a withdrawn request holds no place). Raises
    `NotWithdrawable` when the request is no longer active.
    """
    request_id = request.id
    with _transaction():
        term = _lock_seats(request.term_id)
        row = db.session.get(CareRequest, request_id)
        if row is None or row.status != "active":
            raise NotWithdrawable(N_("There is no active request to withdraw."))
        change = _Amendment(term)
        row.status = "withdrawn"
        row.updated_at = at
        freed = 0
        if change.run is not None:
            freed = _rowcount(db.session.execute(delete(RunAssignment).where(
                RunAssignment.run_id == change.run.id, RunAssignment.pupil_id == row.pupil_id)))
            run_summary.mark_changed(db.session, change.run.id)
        audit.record("request.withdraw", f"pupil:{row.pupil_id}", {"term_id": term.id, "freed_seats": freed},
                     user_id=actor.id, school_id=term.school_id)
        if change.run is not None:
            db.session.flush()
            _lapse_offers(term)
            _refill(term, actor)
            change.done(AmendmentKind.WITHDRAWAL, actor, "the family withdrew its request")
        elif term.published_run_id is not None:
            positions(term)
    return freed


def save_session(term: Term, session_id: int | None, values: dict[str, Any], *, actor: User) -> tuple[Session,
                                                                                                         SeatChange]:
    """Create (`session_id` None) or update a session of `term`, in one transaction.

    `values` holds the form's fields (`SESSION_FIELDS`). After publication the edit is an amendment: when a
    session gains seats the waitlist is offered them, and an edit that would break a hard rule for pupils
    already seated (fewer seats than pupils, another day, a grade they are not in) raises `RuleBroken`.
    """
    with _transaction():
        fresh = _lock_seats(term.id)
        found = db.session.get(Session, session_id) if session_id is not None else None
        if session_id is not None and (found is None or found.term_id != fresh.id):
            raise AllocationError(N_("This session no longer exists."))
        change = _Amendment(fresh)
        old_capacity = found.capacity if found is not None else None
        if found is None:
            found = Session(term_id=fresh.id)
            db.session.add(found)
        for name in SESSION_FIELDS:
            if name in values:
                setattr(found, name, values[name])
        db.session.flush()
        audit.record("session.save", f"session:{found.id}", {"code": found.code, "capacity": found.capacity},
                     user_id=actor.id, school_id=fresh.school_id)
        promoted: list[dict[str, Any]] = []
        if old_capacity is not None and found.capacity > old_capacity:
            promoted = _refill(fresh, actor)
        if change.run is not None:
            change.done(AmendmentKind.SESSION_EDIT, actor, f"session {found.code} edited")
    return found, SeatChange(fresh.published_run_id is not None, promoted)


def save_teacher(term: Term | None, teacher_id: int | None, apply: Any, *, actor: User) -> int:
    """Create or update a teacher (and the term's availability) through `apply(teacher)`, in one transaction.

    `apply` sets the fields on the row it is given. After publication the edit is checked against the plan in
    force: a teacher who leads a published session may not lose the qualification, the slot or the
    activeness it needs (`RuleBroken`, nothing written). Returns the teacher's id.
    """

    with _transaction():
        fresh = _lock_seats(term.id) if term is not None else None
        change = _Amendment(fresh) if fresh is not None else None
        teacher = db.session.get(Teacher, teacher_id) if teacher_id is not None else None
        teacher = apply(teacher)
        db.session.flush()
        if change is not None and change.run is not None:
            promoted = _refill(fresh, actor)  # type: ignore[arg-type]
            change.done(AmendmentKind.TEACHER_EDIT, actor,
                        f"teacher {teacher.code} edited" + (" (freed seats placed)" if promoted else ""))
    return int(teacher.id)


# ------------------------------------------------------------------------------------------ pins


def add_pin(term: Term, pupil: Pupil, session: Session, *, actor: User) -> Pin:
    """Pin `pupil` to `session` for the term's next runs, in one transaction (the published plan is untouched)."""
    with _transaction():
        pin = Pin(term_id=term.id, pupil_id=pupil.id, session_id=session.id, created_by=actor.id)
        db.session.add(pin)
        audit.record("pin.add", f"term:{term.id}", {"pupil": pupil.number, "session": session.code},
                     user_id=actor.id, school_id=term.school_id)
    return pin


def remove_pin(pin: Pin, *, actor: User) -> None:
    """Remove a pin, in one transaction; the next run may move the pupil again."""
    with _transaction():
        term = pin.term
        audit.record("pin.remove", f"term:{term.id}", {"pupil": pin.pupil.number, "session": pin.session.code},
                     user_id=actor.id, school_id=term.school_id)
        db.session.delete(pin)
