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

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from webapp import audit, run_summary
from webapp.allocation import plan, repair, seats
from webapp.allocation.lottery import ensure_lottery_seed, new_seed
from webapp.allocation.waitlist import positions
from webapp.extensions import db
from webapp.labels import IMPORT_REASONS
from webapp.models import (
    AllocationRun,
    AmendmentKind,
    CareRequest,
    ChangeRequest,
    Notification,
    OfferState,
    Period,
    Pin,
    PlanAmendment,
    Pupil,
    RunAssignment,
    RunStaffing,
    RunUnserved,
    Session,
    Teacher,
    TeacherAvailability,
    Term,
    User,
    WaitlistOffer,
    clock,
    utcnow,
)
from webapp.notifications import NotificationEvent, notify

UNSET: Any = object()
SESSION_FIELDS = ("code", "activity_id", "day", "period_id", "room", "capacity", "grade_lo", "grade_hi",
                  "pupils_per_teacher", "min_pupils")

# What the plan rests on, per kind of row an admin edits or imports. An edit or a file that changes none of these
# (nor a teacher's availability) is simply saved under a published plan: no preview, no amendment, no version,
# no seat offered and no family told, because nothing a family holds or waits for has changed.

PUPIL_PLAN_FIELDS = ("grade", "active")
"""What the plan rests on of a pupil: the grade decides which sessions may seat them (a hard rule), and only an
active pupil holds seats or waits for one. The name, class and family code, the priority level and the priority
groups (group, evidence, expiry) move no seat. The family code (the siblings' shared lottery draw) and the
priority only order the waitlist, and that order is read when the next seat is offered (`waitlist`), just as
after a tag added on the pupil's page (`priority_groups.tag_pupil`, saved without an amendment): the places
families see are renumbered with the next seat offered or answered. A new pupil has asked for nothing yet."""

SESSION_PLAN_FIELDS = ("activity_id", "day", "period_id", "capacity", "grade_lo", "grade_hi", "pupils_per_teacher",
                       "min_pupils")
"""What the plan rests on of a session: its seats (capacity), who may take them (grades), the day and period a
family asks for, who may lead it and how many must (the activity's qualification, pupils per teacher) and whether
it may run at all (minimum pupils). The code names the row; the room moves no seat, so a new room is saved as the
session form saves it (`save_session`). A new session adds seats, which the waitlist is offered."""

TEACHER_PLAN_FIELDS = ("qualifications", "max_sessions", "active")
"""What the plan rests on of a teacher, with the term's availability: the sessions they may lead and how many.
A teacher's name, phone, e-mail, message language and the class they are class teacher of are no part of
the plan. A new teacher may staff sessions nobody could."""


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


@dataclass(frozen=True)
class SeatChange:
    """What a change did to the published plan: the pupil-days promoted from the waitlist into freed seats."""

    published: bool
    promoted: list[dict[str, Any]] = field(default_factory=list)
    lost: list[tuple[int, int]] = field(default_factory=list)
    """(pupil_id, session_id) seats an admin's confirmed edit took away."""


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
             data_changed: bool = True, left: frozenset[int] = frozenset()) -> PlanAmendment | None:
        if self.run is None:
            return None
        _lapse_offers(self.term)
        try:
            return plan.amend(self.term, self.run, kind=kind, actor_id=_actor_id(actor), reason=reason,
                              before=self.before, before_state=self.state, data_changed=data_changed, left=left)
        except plan.RuleBroken as exc:
            raise RuleBroken(RULE_BROKEN, exc.problems) from None


def _lapse_offers(term: Term) -> None:
    """Close open offers the family no longer asks for (a withdrawn request, a dropped day or period).

    An offer holds the seats that complete its day for the request it was made for; once the request asks for
    other periods (another pickup time), those seats are no longer the day the family wants, so the offer
    lapses and the day waits for an offer that fits.
    """
    open_now = seats.open_offers(term.id)
    if not open_now:
        return
    period_of = {session_id: code for session_id, code in db.session.execute(
        select(Session.id, Period.code).join(Period, Period.id == Session.period_id).where(Session.term_id == term.id))}
    for offer in open_now:
        request = db.session.scalar(select(CareRequest).where(CareRequest.term_id == term.id,
                                                              CareRequest.pupil_id == offer.pupil_id))
        wanted = request is not None and request.status == "active" and offer.day in (request.days or [])
        if wanted and request is not None:
            needed = set(request.periods or [])
            offered = {period_of.get(session_id) for session_id in offer.sessions}
            seated = {period_of.get(session_id) for session_id in db.session.scalars(
                select(RunAssignment.session_id).join(Session, Session.id == RunAssignment.session_id)
                .where(RunAssignment.run_id == offer.run_id, RunAssignment.pupil_id == offer.pupil_id,
                       Session.day == offer.day))}
            wanted = offered <= needed and needed <= offered | seated
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


def _tell_withdrawn(term: Term | None, unfit: list[repair.UnfitOffer]) -> None:
    """Tell each family whose open offer an edit made unfit why it was withdrawn, with its waitlist place.

    Called after the freed seats were offered again and the waitlist renumbered, so the place is the one the
    family holds now (none when the day has been offered afresh or no longer waits).
    """
    if term is None or not unfit:
        return
    db.session.flush()
    for item in unfit:
        offer = item.offer
        position = db.session.scalar(select(RunUnserved.waitlist_position).where(
            RunUnserved.run_id == offer.run_id, RunUnserved.pupil_id == offer.pupil_id,
            RunUnserved.day == offer.day))
        audit.record("offer.withdraw", f"offer:{offer.id}", {"term_id": term.id, "pupil_id": offer.pupil_id,
                                                             "day": offer.day, "reason": item.reason.value,
                                                             "session": item.session_code},
                     school_id=term.school_id)
        notify(NotificationEvent.OFFER_WITHDRAWN, pupil_id=offer.pupil_id, term_id=term.id,
               params={"offer": offer.id, "day": offer.day, "reason": item.reason.value,
                       "session": item.session_code, "position": position})


# ------------------------------------------------------------------------------------------ confirming an admin's edit


class ConfirmationNeeded(AllocationError):
    """The edit would move published seats: nothing was written; `preview` says exactly what it would do.

    `stale` is True when the admin confirmed a preview that no longer matches (the plan changed meanwhile).
    """

    def __init__(self, message: str, preview: EditPreview, *, stale: bool = False) -> None:
        super().__init__(message)
        self.preview = preview
        self.stale = stale


CONFIRM_FIRST = N_("This change moves seats of the published plan. Check who gains and who loses, give a reason "
                   "and confirm.")
PLAN_CHANGED = N_("The plan changed since you looked at it. Here is what your change would do now.")
REASON_NEEDED = N_("Give a reason for this change: families and the history of the plan show it.")


@dataclass(frozen=True)
class Confirm:
    """An admin's edit on a screen that confirms seat moves: the reason and the token of the preview confirmed.

    `token` None means nothing was confirmed yet: an edit that moves no seat is saved, any other is previewed.
    """

    reason: str = ""
    token: str | None = None


@dataclass(frozen=True)
class SeatMove:
    """One pupil's seat gained or lost, or an offer made or withdrawn, as the confirmation page lists it."""

    pupil_id: int
    number: str
    name: str
    day: int
    sessions: tuple[str, ...]


@dataclass(frozen=True)
class EditPreview:
    """What an admin's edit would do to the plan in force (`version`), worked out and rolled back."""

    version: int
    gained: list[SeatMove]
    lost: list[SeatMove]
    offered: list[SeatMove]
    withdrawn: list[SeatMove]
    """Open offers the edit closes (their seats are gone)."""
    staffing: list[tuple[str, str, bool]]
    """(teacher name, session code, True when the teacher takes it over / False when they leave it)."""
    families: int
    notifications: int
    token: str
    leaving: list[SeatMove] = field(default_factory=list)
    """Pupils the edit records as having left the school (`day` 0, `sessions` the seats they give up)."""

    @property
    def moves_seats(self) -> bool:
        """Whether the admin must confirm it: seats move, offers close, or pupils leave the school."""
        return bool(self.gained or self.lost or self.withdrawn or self.leaving)

    @property
    def days_gained(self) -> int:
        return len({(m.pupil_id, m.day) for m in self.gained})

    @property
    def days_lost(self) -> int:
        return len({(m.pupil_id, m.day) for m in self.lost})


class _Gate:
    """Inside an edit's transaction: take away what the edit breaks, then let it through only as confirmed."""

    def __init__(self, term: Term | None, change: _Amendment | None, confirm: Confirm | None, *,
                 subject: str = "") -> None:
        self.term, self.change, self.confirm = term, change, confirm
        self.subject = subject
        """What else the token must bind (an import's file digest), so a confirmation fits only that input."""
        self.active = confirm is not None and term is not None and change is not None and change.run is not None
        self.lost: list[tuple[int, int]] = []
        self.fixed: repair.Repair = repair.Repair()
        self.withdrawn: list[WaitlistOffer] = []
        self.unfit: list[repair.UnfitOffer] = []
        self.left: Left = Left()
        if self.active:
            assert term is not None
            self.version = int(term.plan_version or 0)
            self.last_message = int(db.session.scalar(select(func.max(Notification.id))) or 0)

    def repair(self, *, sessions: set[int] | None = None, teachers: set[int] | None = None,
               deleted: set[int] | None = None) -> None:
        assert self.term is not None and self.change is not None and self.change.run is not None
        run_id = self.change.run.id
        self.fixed = repair.free_broken_seats(self.term, run_id, sessions=(sessions or set()) | (deleted or set()),
                                              teachers=teachers or ())
        self.lost = list(self.fixed.lost)
        if self.lost:
            run_summary.mark_changed(db.session, run_id)
        self.unfit = repair.lapse_unfit_offers(self.term, run_id, sessions=sessions or (),
                                               teachers=teachers or (), deleted=deleted or ())
        self.withdrawn = [item.offer for item in self.unfit]
        for offer in self.withdrawn:
            offer.decided_at = clock()

    def reason(self, default: str) -> str:
        given = (self.confirm.reason if self.confirm is not None else "").strip()
        return given or default

    def check(self, amendment: PlanAmendment | None, promoted: list[dict[str, Any]]) -> None:
        """Tell the families whose offers lapsed, then raise `ConfirmationNeeded` (the caller's transaction rolls
        back, messages included) unless this is what was confirmed."""
        if not self.active or self.confirm is None:
            return
        _tell_withdrawn(self.term, self.unfit)
        preview = self._preview(amendment, promoted)
        if not preview.moves_seats:
            return
        if self.confirm.token != preview.token:
            stale = self.confirm.token is not None
            raise ConfirmationNeeded(PLAN_CHANGED if stale else CONFIRM_FIRST, preview, stale=stale)
        if not self.confirm.reason.strip():
            raise ConfirmationNeeded(REASON_NEEDED, preview)

    def _preview(self, amendment: PlanAmendment | None, promoted: list[dict[str, Any]]) -> EditPreview:
        assert self.term is not None
        db.session.flush()
        codes = dict(db.session.execute(select(Session.id, Session.code).where(Session.term_id == self.term.id)).all())
        changes = list(amendment.changes) if amendment is not None else []
        wanted = {c.pupil_id for c in changes} | {int(p["pupil_id"]) for p in promoted} | \
            {o.pupil_id for o in self.withdrawn} | set(self.left.pupils)
        pupils = {p.id: p for p in db.session.scalars(select(Pupil).where(Pupil.id.in_(wanted)))} if wanted else {}

        def moves(items: list[tuple[int, int, list[int]]]) -> list[SeatMove]:
            grouped: dict[tuple[int, int], list[str]] = {}
            for pupil_id, day, sessions in items:
                grouped.setdefault((pupil_id, day), []).extend(codes.get(s, "–") for s in sessions)
            return sorted((SeatMove(p, pupils[p].number, pupils[p].name, d, tuple(sorted(c)))
                           for (p, d), c in grouped.items()), key=lambda m: (m.number, m.day))

        gained = moves([(c.pupil_id, c.day, [c.session_id or 0]) for c in changes if c.gained])
        lost = moves([(c.pupil_id, c.day, [c.session_id or 0]) for c in changes if not c.gained])
        offered = moves([(int(p["pupil_id"]), int(p["day"]), list(p["sessions"])) for p in promoted if "offer" in p])
        withdrawn = moves([(o.pupil_id, o.day, list(o.sessions or [])) for o in self.withdrawn])
        leaving = sorted((SeatMove(p, pupils[p].number, pupils[p].name, 0,
                                   tuple(sorted(codes.get(s, "–") for s in self.left.seats.get(p, ()))))
                          for p in self.left.pupils), key=lambda m: m.number)
        names = dict(db.session.execute(select(Teacher.id, Teacher.name)
                                        .where(Teacher.school_id == self.term.school_id)).all())
        staffing = sorted([(names.get(t, "–"), codes.get(s, "–"), True) for t, s in self.fixed.staff_added] +
                          [(names.get(t, "–"), codes.get(s, "–"), False) for t, s in self.fixed.staff_dropped])
        touched = {m.pupil_id for m in gained + lost + offered + withdrawn + leaving}
        families = len({pupils[p].family_code or f"pupil:{p}" for p in touched})
        notifications = int(db.session.scalar(select(func.count()).select_from(Notification).where(
            Notification.id > self.last_message, Notification.term_id == self.term.id)) or 0)
        digest = hashlib.sha256(json.dumps(
            [self.version, [(m.pupil_id, m.day, m.sessions) for m in gained], [(m.pupil_id, m.day, m.sessions)
             for m in lost], [(m.pupil_id, m.day, m.sessions) for m in offered],
             [(m.pupil_id, m.day, m.sessions) for m in withdrawn], staffing, self.subject,
             [(m.pupil_id, m.sessions) for m in leaving]],
            ensure_ascii=False).encode()
        ).hexdigest()[:20]
        return EditPreview(self.version, gained, lost, offered, withdrawn, staffing, families, notifications,
                           f"{self.version}.{digest}", leaving)


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


def save_session(term: Term, session_id: int | None, values: dict[str, Any], *, actor: User,
                 confirm: Confirm | None = None) -> tuple[Session, SeatChange]:
    """Create (`session_id` None) or update a session of `term`, in one transaction.

    `values` holds the form's fields (`SESSION_FIELDS`). After publication the edit is an amendment: when a
    session gains seats the waitlist is offered them, and an edit that would break a hard rule for pupils
    already seated (fewer seats than pupils, another day, a grade they are not in), or for families holding an
    open offer of its seats (`_held_problems`), raises `RuleBroken`. With `confirm` (the admin's edit screens)
    such an edit instead takes those seats away (`repair`), closes the offers it no longer honours, and offers
    what it frees, once the admin has confirmed exactly that change (`ConfirmationNeeded`).
    """
    with _transaction():
        fresh = _lock_seats(term.id)
        found = db.session.get(Session, session_id) if session_id is not None else None
        if session_id is not None and (found is None or found.term_id != fresh.id):
            raise AllocationError(N_("This session no longer exists."))
        change = _Amendment(fresh)
        gate = _Gate(fresh, change, confirm)
        old_capacity = found.capacity if found is not None else None
        old_slot = (found.day, found.period_id) if found is not None else None
        if found is None:
            found = Session(term_id=fresh.id)
            db.session.add(found)
        reshaped = False  # a change that can free or open seats (`SESSION_PLAN_FIELDS`)
        for name in SESSION_FIELDS:
            if name in values:
                reshaped = reshaped or (name in SESSION_PLAN_FIELDS and getattr(found, name) != values[name])
                setattr(found, name, values[name])
        db.session.flush()
        if old_slot is not None and not gate.active:  # the confirmed path lapses unfit offers (`repair`)
            held = _held_problems(fresh, sessions={found.id})
            if held:
                raise RuleBroken(RULE_BROKEN, held)
        audit.record("session.save", f"session:{found.id}", {"code": found.code, "capacity": found.capacity},
                     user_id=actor.id, school_id=fresh.school_id)
        promoted: list[dict[str, Any]] = []
        if gate.active and reshaped:
            gate.repair(sessions={found.id})
            promoted = _refill(fresh, actor)
        elif old_capacity is not None and found.capacity > old_capacity:
            promoted = _refill(fresh, actor)
        if change.run is not None:
            amendment = change.done(AmendmentKind.SESSION_EDIT, actor, gate.reason(f"session {found.code} edited"))
            gate.check(amendment, promoted)
    return found, SeatChange(fresh.published_run_id is not None, promoted, gate.lost)


def delete_session(term: Term, session_id: int, *, actor: User, confirm: Confirm) -> SeatChange:
    """Delete a session of `term` in one transaction; after publication its seats go first, as an amendment.

    The pupils seated there lose those seats (and join the waitlist), the seats the deletion frees elsewhere
    are offered, and the admin confirms exactly that change first (`ConfirmationNeeded`).
    """
    with _transaction():
        fresh = _lock_seats(term.id)
        found = db.session.get(Session, session_id)
        if found is None or found.term_id != fresh.id:
            raise AllocationError(N_("This session no longer exists."))
        change = _Amendment(fresh)
        gate = _Gate(fresh, change, confirm)
        code = found.code
        promoted: list[dict[str, Any]] = []
        if change.run is not None:
            found.capacity = 0  # nobody may be offered a seat in it on the way out
            gate.repair(deleted={found.id})
            promoted = _refill(fresh, actor)
            amendment = change.done(AmendmentKind.SESSION_EDIT, actor, gate.reason(f"session {code} deleted"))
            gate.check(amendment, promoted)
        audit.record("session.delete", f"session:{found.id}", {"code": code}, user_id=actor.id,
                     school_id=fresh.school_id)
        db.session.delete(found)
    return SeatChange(fresh.published_run_id is not None, promoted, gate.lost)


def _held_problems(term: Term, *, sessions: set[int] | frozenset[int] = frozenset(),
                   teachers: set[int] | frozenset[int] = frozenset()) -> list[str]:
    """Open offers that the edited `sessions` / `teachers` no longer fit (English, for admins).

    A held seat counts as taken (`webapp.allocation.seats`): the test is `repair.unfit_offers`, the one the
    confirmed path uses to close such offers, so an edit without a confirming screen is refused instead.
    """
    run = _published(term)
    if run is None:
        return []
    problems = []
    for item in repair.unfit_offers(term, run.id, sessions=sessions, teachers=teachers):
        pupil = db.session.get(Pupil, item.offer.pupil_id)
        problems.append(f"session {item.session_code}: {pupil.number if pupil else item.offer.pupil_id} holds an "
                        f"open waitlist offer of a seat here on day {item.offer.day}, which this edit would no "
                        f"longer fit ({UNFIT_TEXT[item.reason]})")
    return problems


UNFIT_TEXT = {
    repair.Unfit.GONE: "the session is deleted",
    repair.Unfit.MOVED: "another day or period than the family asks for",
    repair.Unfit.GRADE: "outside the pupil's grade",
    repair.Unfit.FULL: "fewer seats than pupils seated plus seats on offer",
    repair.Unfit.TEACHER: "the held teacher may no longer lead it",
}
"""Why an offer no longer fits, for the admin's refusal (English, like the validator's problems)."""


def save_teacher(term: Term | None, teacher_id: int | None, apply: Any, *, actor: User,
                 confirm: Confirm | None = None) -> int:
    """Create or update a teacher (and the term's availability) through `apply(teacher)`, in one transaction.

    `apply` sets the fields on the row it is given. After publication an edit of what the plan rests on
    (`TEACHER_PLAN_FIELDS`, availability) is checked against the plan in force (any other is simply saved):
    a teacher who leads a published session, or is held for one by an open offer, may not lose the
    qualification, the slot or the activeness it needs (`RuleBroken`, nothing written). With `confirm` (the
    admin's edit screens) the teacher instead leaves those sessions, an idle teacher takes over where one may,
    the seats nobody can staff are taken away (their offers withdrawn), and the admin confirms exactly that
    change first (`ConfirmationNeeded`). Returns the teacher's id.
    """

    with _transaction():
        fresh = _lock_seats(term.id) if term is not None else None
        change = _Amendment(fresh) if fresh is not None else None
        gate = _Gate(fresh, change, confirm)
        teacher = db.session.get(Teacher, teacher_id) if teacher_id is not None else None
        before = _plan_part(teacher, fresh) if teacher is not None and fresh is not None else None
        teacher = apply(teacher)
        db.session.flush()
        if fresh is not None and change is not None and change.run is not None and (
                before is None or _plan_part(teacher, fresh) != before):
            if gate.active:
                gate.repair(teachers={teacher.id})
            elif held := _held_problems(fresh, teachers={teacher.id}):
                raise RuleBroken(RULE_BROKEN, held)
            promoted = _refill(fresh, actor)
            amendment = change.done(AmendmentKind.TEACHER_EDIT, actor, gate.reason(
                f"teacher {teacher.code} edited" + (" (freed seats placed)" if promoted else "")))
            gate.check(amendment, promoted)
    return int(teacher.id)


def _plan_part(teacher: Teacher, term: Term) -> tuple[Any, ...]:
    """What the plan rests on of `teacher` in `term`: `TEACHER_PLAN_FIELDS` and the term's availability."""
    slots = frozenset(db.session.execute(select(TeacherAvailability.day, TeacherAvailability.period_id).where(
        TeacherAvailability.teacher_id == teacher.id, TeacherAvailability.term_id == term.id)).all())
    values = (json.dumps(getattr(teacher, name)) for name in TEACHER_PLAN_FIELDS)  # a copy: `apply` may mutate
    return (*values, slots)


def delete_teacher(term: Term | None, teacher_id: int, *, actor: User, confirm: Confirm) -> None:
    """Delete a teacher in one transaction; after publication the sessions they lead are handed over first.

    An idle teacher who may lead a session takes it over; where nobody can, its pupils lose the seats nobody
    can staff. The admin confirms exactly that change first (`ConfirmationNeeded`).
    """
    with _transaction():
        fresh = _lock_seats(term.id) if term is not None else None
        change = _Amendment(fresh) if fresh is not None else None
        gate = _Gate(fresh, change, confirm)
        teacher = db.session.get(Teacher, teacher_id)
        if teacher is None:
            raise AllocationError(N_("This teacher no longer exists."))
        code = teacher.code
        elsewhere = select(RunStaffing.run_id).join(AllocationRun, AllocationRun.id == RunStaffing.run_id).where(
            RunStaffing.teacher_id == teacher.id, AllocationRun.is_published.is_(True),
            AllocationRun.term_id != (fresh.id if fresh is not None else -1))
        if db.session.scalar(elsewhere.limit(1)) is not None:
            raise AllocationError(N_("This teacher leads sessions in another term's published plan and cannot be "
                                     "deleted. Mark the teacher inactive instead."))
        if fresh is not None and change is not None and change.run is not None:
            teacher.active = False  # leads nothing from here on
            gate.repair(teachers={teacher.id})
            promoted = _refill(fresh, actor)
            amendment = change.done(AmendmentKind.TEACHER_EDIT, actor, gate.reason(f"teacher {code} deleted"))
            gate.check(amendment, promoted)
        audit.record("teacher.delete", f"teacher:{teacher.id}", {"code": code}, user_id=actor.id,
                     school_id=teacher.school_id)
        db.session.delete(teacher)


# ------------------------------------------------------------------------------------------ a pupil leaves


@dataclass(frozen=True)
class Left:
    """What recording pupils as having left the school took from the term's published plan."""

    pupils: tuple[int, ...] = ()
    seats: dict[int, tuple[int, ...]] = field(default_factory=dict)
    """Per pupil, the sessions whose seats were withdrawn."""
    offers: tuple[WaitlistOffer, ...] = ()
    """Their open offers, closed."""


def _leave(term: Term | None, run: AllocationRun | None, pupil_ids: frozenset[int], *,
           actor: User | int | None) -> Left:
    """Inside the seat lock, once `pupil_ids` are inactive: withdraw what they hold in `term`'s published `run`.

    Their care requests are withdrawn and pending change requests superseded (so their waitlist days hold no
    place), their seats are removed and their open offers closed, and each family that held anything is told
    why (`PUPIL_LEFT`). The caller then offers the freed seats (`_refill`) and records the amendment with
    `left=` these pupils. Without a published plan nothing but the audit row is written: the next run leaves
    inactive pupils out (`services.term_to_instance`).
    """
    if not pupil_ids:
        return Left()
    ids = sorted(pupil_ids)
    school_of = dict(db.session.execute(select(Pupil.id, Pupil.school_id).where(Pupil.id.in_(ids))).all())
    if term is None or run is None:
        for pupil_id in ids:
            audit.record("pupil.leave", f"pupil:{pupil_id}", {"term_id": term.id if term else None,
                                                               "freed_seats": 0}, user_id=_actor_id(actor),
                         school_id=school_of.get(pupil_id))
        return Left(tuple(ids))
    at = clock()
    requested = set()
    for row in db.session.scalars(select(CareRequest).where(
            CareRequest.term_id == term.id, CareRequest.pupil_id.in_(ids), CareRequest.status == "active")):
        row.status, row.updated_at = "withdrawn", at
        requested.add(row.pupil_id)
    for change in db.session.scalars(select(ChangeRequest).where(
            ChangeRequest.term_id == term.id, ChangeRequest.pupil_id.in_(ids), ChangeRequest.state == "pending")):
        change.state = "superseded"
    held: dict[int, list[int]] = {}
    for pupil_id, session_id in db.session.execute(select(RunAssignment.pupil_id, RunAssignment.session_id).where(
            RunAssignment.run_id == run.id, RunAssignment.pupil_id.in_(ids)).order_by(RunAssignment.session_id)):
        held.setdefault(pupil_id, []).append(session_id)
    if held:
        db.session.execute(delete(RunAssignment).where(RunAssignment.run_id == run.id,
                                                       RunAssignment.pupil_id.in_(ids)))
        run_summary.mark_changed(db.session, run.id)
    offers = tuple(offer for offer in seats.open_offers(term.id) if offer.pupil_id in pupil_ids)
    for offer in offers:
        offer.state, offer.decided_at = OfferState.LAPSED.value, at
    db.session.flush()
    for pupil_id in ids:
        freed = len(held.get(pupil_id, ()))
        closed = [offer.id for offer in offers if offer.pupil_id == pupil_id]
        audit.record("pupil.leave", f"pupil:{pupil_id}", {"term_id": term.id, "freed_seats": freed,
                                                           "request_withdrawn": pupil_id in requested,
                                                           "offers_closed": closed},
                     user_id=_actor_id(actor), school_id=term.school_id)
        if freed or closed or pupil_id in requested:
            notify(NotificationEvent.PUPIL_LEFT, pupil_id=pupil_id, term_id=term.id,
                   params={"seats": freed, "offers": closed})
    return Left(tuple(ids), {p: tuple(s) for p, s in held.items()}, offers)


class AlreadyLeft(AllocationError):
    """The pupil is already recorded as having left (or as being on the roll, for a return); nothing written."""


def _roll_change(term: Term | None, pupil_id: int, *, active: bool) -> tuple[Term | None, Pupil]:
    """Take the seat lock (with a term) and read the pupil again, who must be `active` now (else `AlreadyLeft`)."""
    fresh = _lock_seats(term.id) if term is not None else None
    row = db.session.get(Pupil, pupil_id)
    if row is None or (fresh is not None and row.school_id != fresh.school_id):
        raise AllocationError(N_("This pupil no longer exists."))
    if row.active != active:
        raise AlreadyLeft(N_("This pupil is already recorded as having left the school.") if active
                          else N_("This pupil is on the school's roll."))
    return fresh, row


def pupil_leaves(term: Term | None, pupil: Pupil, *, actor: User, reason: str = "") -> SeatChange:
    """Record that `pupil` left the school, in one transaction: the pupil page's 办理离校.

    The pupil becomes inactive; under a published plan their seats, request and open offers are withdrawn
    (`_leave`, the step a pupil file's 离校 rows take in `import_rows`), the freed seats are offered to the
    waitlist, and the plan gets a new version with `reason` (default `IMPORT_REASONS["left"]`, as stored). Raises
    `AlreadyLeft` when the pupil is already inactive.
    """
    pupil_id = pupil.id
    with _transaction():
        fresh, row = _roll_change(term, pupil_id, active=True)
        change = _Amendment(fresh) if fresh is not None else None  # before: the plan with the pupil still in it
        row.active = False
        db.session.flush()
        run = change.run if change is not None else None
        left = _leave(fresh, run, frozenset({pupil_id}), actor=actor)
        promoted: list[dict[str, Any]] = []
        if change is not None and run is not None and fresh is not None:
            promoted = _refill(fresh, actor)
            change.done(AmendmentKind.SEAT_REMOVAL, actor, reason.strip() or IMPORT_REASONS["left"].stored,
                        left=frozenset({pupil_id}))
    return SeatChange(run is not None, promoted, [(pupil_id, s) for s in left.seats.get(pupil_id, ())])


def pupil_returns(term: Term | None, pupil: Pupil, *, actor: User) -> None:
    """Put a pupil recorded as having left back on the school's roll, in one transaction.

    Nothing they gave up comes back: seats withdrawn went to the waitlist and a withdrawn request stays
    withdrawn (the family asks again, or the school places the pupil by hand). Raises `AlreadyLeft` when the
    pupil is active.
    """
    pupil_id = pupil.id
    with _transaction():
        fresh, row = _roll_change(term, pupil_id, active=False)
        row.active = True
        audit.record("pupil.return", f"pupil:{pupil_id}", {"term_id": fresh.id if fresh else None},
                     user_id=actor.id, school_id=row.school_id)
        if fresh is not None and _published(fresh) is not None:
            db.session.flush()
            positions(fresh)


@dataclass(frozen=True)
class Imported:
    """What a spreadsheet import wrote that the plan in force rests on: the ids of rows that existed before whose
    `SESSION_PLAN_FIELDS`, `TEACHER_PLAN_FIELDS` (or availability) or `PUPIL_PLAN_FIELDS` changed."""

    sessions: frozenset[int] = frozenset()
    teachers: frozenset[int] = frozenset()
    pupils: frozenset[int] = frozenset()
    added: bool = False
    """The file added sessions or teachers: seats the waitlist may be offered, staff the plan may use."""
    left: frozenset[int] = frozenset()
    """Pupils the file records as having left the school (active until now)."""

    @property
    def saves_only(self) -> bool:
        """The file changed nothing the plan rests on: its rows are saved, the plan is not amended."""
        return not (self.sessions or self.teachers or self.pupils or self.added or self.left)


def import_rows(term: Term | None, kind: str, write: Callable[[], Imported], *, actor: User | None,
                confirm: Confirm | None = None, digest: str = "") -> SeatChange:
    """Write a whole spreadsheet (`write()` adds its rows, never commits) and amend the plan, in one transaction.

    Before publication, and when the file changes nothing the plan rests on (`Imported.saves_only`: no field of
    `PUPIL_PLAN_FIELDS`, `SESSION_PLAN_FIELDS`, `TEACHER_PLAN_FIELDS`, no availability, no new session or teacher),
    the rows are simply written. Otherwise the import is an edit like `save_session` /
    `save_teacher` of every row at once: with `confirm` (the import screen) the seats the file breaks are taken
    away, the open offers it no longer fits are withdrawn (their families told why), freed seats are offered,
    and the admin confirms exactly that change first (`ConfirmationNeeded`, nothing written). The token binds
    `digest` (the file's SHA-256), so a confirmation applies only the file that was previewed. Without
    `confirm` an import that would break a hard rule of the plan, or an open offer, is refused (`RuleBroken`).
    """
    with _transaction():
        fresh = _lock_seats(term.id) if term is not None else None
        change = _Amendment(fresh) if fresh is not None else None
        gate = _Gate(fresh, change, confirm, subject=f"{kind}:{digest}")
        touched = write()
        db.session.flush()
        left = _leave(fresh, change.run if change is not None else None, touched.left, actor=actor)
        if fresh is None or change is None or change.run is None:
            return SeatChange(False)
        if touched.saves_only:
            return SeatChange(True)
        promoted: list[dict[str, Any]] = []
        sessions = set(touched.sessions) | _seats_of(change.run.id, touched.pupils - touched.left)
        if gate.active:
            gate.repair(sessions=sessions, teachers=set(touched.teachers))
            gate.withdrawn += list(left.offers)
            gate.left = left
        elif held := _held_problems(fresh, sessions=sessions, teachers=touched.teachers):
            raise RuleBroken(RULE_BROKEN, held)
        promoted = _refill(fresh, actor)
        amendment = change.done(AmendmentKind.IMPORT, actor,
                                gate.reason(IMPORT_REASONS["left" if touched.left else kind].stored),
                                left=touched.left)
        gate.check(amendment, promoted)
    lost = gate.lost + [(pupil, session) for pupil, held in left.seats.items() for session in held]
    return SeatChange(True, promoted, lost)


def _seats_of(run_id: int, pupils: frozenset[int]) -> set[int]:
    """The sessions where `pupils` hold seats of run `run_id` or open offers: where their changed data may break
    a seat (a grade a session no longer takes)."""
    if not pupils:
        return set()
    found = set(db.session.scalars(select(RunAssignment.session_id).where(
        RunAssignment.run_id == run_id, RunAssignment.pupil_id.in_(pupils))))
    run = db.session.get(AllocationRun, run_id)
    for offer in seats.open_offers(run.term_id if run is not None else -1, run_id):
        if offer.pupil_id in pupils:
            found.update(offer.sessions or [])
    return found


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
