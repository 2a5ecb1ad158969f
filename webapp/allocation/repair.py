"""Which published seats an admin's edit takes away, so the edit can be kept as an amendment instead of refused.

After an admin changes a session (fewer seats, another day, period, grade range or activity, deleted) or a
teacher (qualifications, availability, weekly load, deleted), some seats of the plan in force may break a hard
rule. `free_broken_seats` works out, inside the caller's transaction and seat lock, the smallest change that
keeps the plan valid, looking only at what the edit touched:

- a teacher who may no longer lead a session (not qualified, not available, inactive, twice in one slot, over
  the weekly maximum) leaves it; an idle teacher who may lead it takes over where one is free;
- a pupil who no longer fits a changed session (its day or period is not in the request, the grade is outside
  the range, another seat in the same slot) loses that seat;
- a session with more pupils than seats, than its teachers can take, or fewer than its minimum, loses pupils
  from the end of the waitlist order (lowest priority weight first, then the term's lottery), so the families
  the queue favours keep their seats.

Only the seat itself is removed, exactly as `service.remove_seat` does; the pupil's day then joins the waitlist
and the freed seats are offered in the term's usual way. Nothing here commits.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import delete, select

from webapp.allocation.lottery import lottery_key
from webapp.extensions import db
from webapp.models import (
    Activity,
    CareRequest,
    OfferState,
    Period,
    Pupil,
    RunAssignment,
    RunStaffing,
    Session,
    Teacher,
    TeacherAvailability,
    Term,
    WaitlistOffer,
)
from webapp.services import effective_weights

Pair = tuple[int, int]
"""(pupil_id or teacher_id, session_id)."""


@dataclass
class Repair:
    """What `free_broken_seats` changed in the run: seats removed, teachers taken off and put on sessions."""

    lost: list[Pair] = field(default_factory=list)
    staff_dropped: list[Pair] = field(default_factory=list)
    staff_added: list[Pair] = field(default_factory=list)


def free_broken_seats(term: Term, run_id: int, *, sessions: Collection[int] = (),
                      teachers: Collection[int] = ()) -> Repair:
    """Remove the seats and staffing of run `run_id` that the edit of `sessions` / `teachers` (ids) broke."""
    db.session.flush()
    rows = {s.id: s for s in db.session.scalars(select(Session).where(Session.term_id == term.id))}
    qualification = dict(db.session.execute(select(Activity.id, Activity.qualification)
                                            .where(Activity.term_id == term.id)).all())
    period_code = dict(db.session.execute(select(Period.id, Period.code).where(Period.term_id == term.id)).all())
    staff_of = {t.id: t for t in db.session.scalars(select(Teacher).where(Teacher.school_id == term.school_id,
                                                                          Teacher.active))}
    available = set(db.session.execute(
        select(TeacherAvailability.teacher_id, TeacherAvailability.day, TeacherAvailability.period_id)
        .where(TeacherAvailability.term_id == term.id)).all())
    seats = set(db.session.execute(select(RunAssignment.pupil_id, RunAssignment.session_id)
                                   .where(RunAssignment.run_id == run_id)).all())
    staffing = set(db.session.execute(select(RunStaffing.teacher_id, RunStaffing.session_id)
                                      .where(RunStaffing.run_id == run_id)).all())
    edited = set(sessions)
    repair = Repair()

    def slot(session_id: int) -> tuple[int, int]:
        return rows[session_id].day, rows[session_id].period_id

    def may_lead(teacher_id: int, session_id: int) -> bool:
        teacher, found = staff_of.get(teacher_id), rows.get(session_id)
        if teacher is None or found is None:
            return False
        needed = qualification.get(found.activity_id)
        return (needed is None or needed in (teacher.qualifications or [])) and \
            (teacher_id, found.day, found.period_id) in available

    # A teacher who may no longer lead a session leaves it (then: one session per slot, the weekly maximum).
    affected = set(edited)
    for teacher_id, session_id in sorted(staffing):
        if (session_id in edited or teacher_id in teachers) and not may_lead(teacher_id, session_id):
            repair.staff_dropped.append((teacher_id, session_id))
            affected.add(session_id)
    kept = staffing - set(repair.staff_dropped)
    for teacher_id in sorted({t for t, s in kept if s in edited or t in teachers}):
        led = sorted((s for t, s in kept if t == teacher_id), key=lambda s: (s in edited, rows[s].code))
        seen: set[tuple[int, int]] = set()
        teacher = staff_of.get(teacher_id)
        limit = teacher.max_sessions if teacher is not None else 0
        for session_id in led:
            if slot(session_id) in seen or len(seen) >= limit:
                repair.staff_dropped.append((teacher_id, session_id))
                affected.add(session_id)
            else:
                seen.add(slot(session_id))
    kept = staffing - set(repair.staff_dropped)

    # A pupil who no longer fits a changed session loses that seat.
    requests = {r.pupil_id: r for r in db.session.scalars(
        select(CareRequest).where(CareRequest.term_id == term.id, CareRequest.status == "active"))}
    pupils = {p.id: p for p in db.session.scalars(select(Pupil).where(Pupil.id.in_({p for p, _ in seats})))}
    for pupil_id, session_id in sorted(seats):
        if session_id not in edited:
            continue
        found, request, pupil = rows.get(session_id), requests.get(pupil_id), pupils.get(pupil_id)
        fits = found is not None and request is not None and pupil is not None \
            and found.day in (request.days or []) and period_code.get(found.period_id) in (request.periods or []) \
            and found.grade_lo <= pupil.grade <= found.grade_hi
        if not fits:
            repair.lost.append((pupil_id, session_id))
    taken = seats - set(repair.lost)
    by_slot: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for pupil_id, session_id in taken:
        by_slot[(pupil_id, *slot(session_id))].append(session_id)
    for (pupil_id, _day, _period), found_in in sorted(by_slot.items()):
        for session_id in sorted(found_in, key=lambda s: (s in edited, rows[s].code))[1:]:
            repair.lost.append((pupil_id, session_id))
    taken = seats - set(repair.lost)

    # Seats, teachers and the minimum of every affected session: the end of the queue leaves first.
    weights = effective_weights(term, pupils.values())
    seed = int(term.lottery_seed or 0)

    def queue_order(pupil_id: int) -> tuple[int, bytes]:
        pupil = pupils[pupil_id]
        return -weights[pupil.id], lottery_key(seed, pupil)

    load = Counter(t for t, _ in kept)
    busy = {(t, *slot(s)) for t, s in kept}
    for held in db.session.scalars(select(WaitlistOffer.teachers).where(  # an open offer's teacher is spoken for
            WaitlistOffer.run_id == run_id, WaitlistOffer.state == OfferState.OPEN.value)):
        for teacher_id, session_id in held or []:
            if session_id in rows:
                load[teacher_id] += 1
                busy.add((teacher_id, *slot(session_id)))
    for session_id in sorted(affected & set(rows), key=lambda s: rows[s].code):
        found = rows[session_id]
        seated = sorted((p for p, s in taken if s == session_id), key=queue_order)
        staff = [t for t, s in kept if s == session_id]
        per_teacher = max(found.pupils_per_teacher, 1)
        seated, gone = seated[:max(found.capacity, 0)], seated[max(found.capacity, 0):]
        missing = math.ceil(len(seated) / per_teacher) - len(staff)
        if missing > 0:
            for teacher in sorted(staff_of.values(), key=lambda t: (load[t.id], t.code)):
                if missing <= 0:
                    break
                if teacher.id in staff or (teacher.id, *slot(session_id)) in busy \
                        or load[teacher.id] >= teacher.max_sessions or not may_lead(teacher.id, session_id):
                    continue
                staff.append(teacher.id)
                repair.staff_added.append((teacher.id, session_id))
                load[teacher.id] += 1
                busy.add((teacher.id, *slot(session_id)))
                missing -= 1
        while seated and math.ceil(len(seated) / per_teacher) > len(staff):
            gone.insert(0, seated.pop())
        if 0 < len(seated) < found.min_pupils:
            seated, gone = [], seated + gone
        repair.lost.extend((pupil_id, session_id) for pupil_id in gone)

    _write(run_id, repair)
    return repair


def _write(run_id: int, repair: Repair) -> None:
    for pupil_id, session_id in repair.lost:
        db.session.execute(delete(RunAssignment).where(RunAssignment.run_id == run_id,
                                                       RunAssignment.pupil_id == pupil_id,
                                                       RunAssignment.session_id == session_id))
    for teacher_id, session_id in repair.staff_dropped:
        db.session.execute(delete(RunStaffing).where(RunStaffing.run_id == run_id,
                                                     RunStaffing.teacher_id == teacher_id,
                                                     RunStaffing.session_id == session_id))
    for teacher_id, session_id in repair.staff_added:
        db.session.add(RunStaffing(run_id=run_id, teacher_id=teacher_id, session_id=session_id))
    db.session.flush()


class Unfit(StrEnum):
    """Why an open offer can no longer hold its seat after an edit (the family's message says it in words)."""

    GONE = "gone"
    """The session was deleted."""
    MOVED = "moved"
    """The session is on another day now, or in a period the family does not ask for or already has a seat in."""
    GRADE = "grade"
    """The session is no longer open to the pupil's grade."""
    FULL = "full"
    """Fewer seats than the pupils seated plus the older offers' holds."""
    TEACHER = "teacher"
    """The teacher the offer holds may no longer lead the session."""


@dataclass(frozen=True)
class UnfitOffer:
    """An open offer an edit leaves unable to hold its seat: the offer, why, and the session concerned."""

    offer: WaitlistOffer
    reason: Unfit
    session_id: int
    session_code: str


def unfit_offers(term: Term, run_id: int, *, sessions: Collection[int] = (), teachers: Collection[int] = (),
                 deleted: Collection[int] = ()) -> list[UnfitOffer]:
    """The open offers of run `run_id` that the edit of `sessions` / `teachers` (ids, as now flushed) breaks.

    The one test of whether an offer still fits: `service.save_session` refuses an unconfirmed edit with these,
    and the confirmed path (`lapse_unfit_offers`) closes them. An offer touching an edited session no longer
    fits when that session is deleted (`deleted`), is on another day than the offer, in a period the family
    does not ask for or already has, outside the pupil's grades, or its seats, counted with the pupils seated
    and the older offers' holds (oldest first), are too few; an offer holding a teacher for an edited session
    or an edited teacher no longer fits when that teacher may no longer lead the session.
    """
    db.session.flush()
    rows = {s.id: s for s in db.session.scalars(select(Session).where(Session.term_id == term.id))}
    period_code = dict(db.session.execute(select(Period.id, Period.code).where(Period.term_id == term.id)).all())
    qualification = dict(db.session.execute(select(Activity.id, Activity.qualification)
                                            .where(Activity.term_id == term.id)).all())
    assigned = set(db.session.execute(select(RunAssignment.pupil_id, RunAssignment.session_id)
                                      .where(RunAssignment.run_id == run_id)).all())
    seated = Counter(session_id for _pupil, session_id in assigned)
    active = {t.id: t for t in db.session.scalars(select(Teacher).where(Teacher.school_id == term.school_id,
                                                                        Teacher.active))}
    available = set(db.session.execute(
        select(TeacherAvailability.teacher_id, TeacherAvailability.day, TeacherAvailability.period_id)
        .where(TeacherAvailability.term_id == term.id)).all())
    edited, gone, unfit = set(sessions) | set(deleted), set(deleted), []
    for offer in db.session.scalars(select(WaitlistOffer).where(
            WaitlistOffer.term_id == term.id, WaitlistOffer.run_id == run_id,
            WaitlistOffer.state == OfferState.OPEN.value).order_by(WaitlistOffer.id)):
        held = list(offer.sessions or [])
        if not edited & set(held) and not any(t in teachers or s in edited for t, s in offer.teachers or []):
            seated.update(held)
            continue
        request = db.session.scalar(select(CareRequest).where(CareRequest.term_id == term.id,
                                                              CareRequest.pupil_id == offer.pupil_id))
        pupil = db.session.get(Pupil, offer.pupil_id)
        wanted = set(request.periods or []) if request is not None else set()
        taken = {period_code.get(rows[s].period_id) for p, s in assigned
                 if p == offer.pupil_id and s in rows and rows[s].day == offer.day}
        held_periods = [period_code.get(rows[s].period_id) for s in held if s in rows]
        found: tuple[Unfit, int] | None = None
        for session_id in held:
            row = rows.get(session_id)
            if row is None or session_id in gone:
                found = (Unfit.GONE, session_id)
            elif session_id not in edited:
                continue
            elif row.day != offer.day or (period := period_code.get(row.period_id)) not in wanted \
                    or period in taken or held_periods.count(period) > 1:
                found = (Unfit.MOVED, session_id)
            elif pupil is None or not row.grade_lo <= pupil.grade <= row.grade_hi:
                found = (Unfit.GRADE, session_id)
            elif seated[session_id] + 1 > row.capacity:
                found = (Unfit.FULL, session_id)
            if found is not None:
                break
        for teacher_id, session_id in offer.teachers or []:
            row, teacher = rows.get(session_id), active.get(teacher_id)
            if found is not None or row is None or (teacher_id not in teachers and session_id not in edited):
                continue
            needed = qualification.get(row.activity_id)
            if teacher is None or (teacher_id, row.day, row.period_id) not in available \
                    or (needed is not None and needed not in (teacher.qualifications or [])):
                found = (Unfit.TEACHER, session_id)
        if found is None:
            seated.update(held)
            continue
        reason, session_id = found
        code = rows[session_id].code if session_id in rows else str(session_id)
        unfit.append(UnfitOffer(offer, reason, session_id, code))
    return unfit


def lapse_unfit_offers(term: Term, run_id: int, *, sessions: Collection[int] = (),
                       teachers: Collection[int] = (), deleted: Collection[int] = ()) -> list[UnfitOffer]:
    """Close the open offers whose held seats the edit took away (`unfit_offers`); return them with the reason.

    The caller tells each family and offers the freed seats afresh.
    """
    unfit = unfit_offers(term, run_id, sessions=sessions, teachers=teachers, deleted=deleted)
    for item in unfit:
        item.offer.state = OfferState.LAPSED.value
    db.session.flush()
    return unfit
