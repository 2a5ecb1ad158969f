"""Who fits a freed seat: waitlisted pupil-days are placed only where that disturbs nobody already placed.

A pupil-day is promoted only when every requested period of that day finds an eligible session (grade, day,
period) with a free seat whose staffing covers one more pupil, or where an idle qualified teacher who is
available and under the weekly maximum can be added, and whose `min_pupils` is met. Nobody is moved, so a
promotion never makes the plan worse for anyone. Half a day is never given: it does not solve a parent's
3:30 problem.

Under `Placement.OFFER` (the default) the seat is not given but offered: a `WaitlistOffer` holds the seats
(and any extra teacher) for the family until it answers or the offer expires. A held seat counts as taken
for every later placement, so one seat is never offered or given twice.

`promote` works inside the caller's transaction and expects the caller to hold the term's seat lock
(`webapp.allocation.service`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from scheduler.domain import rank_score
from webapp.allocation.waitlist import waitlist
from webapp.audit import record
from webapp.extensions import db
from webapp.models import (
    Activity,
    AllocationRun,
    CareRequest,
    OfferState,
    Period,
    Placement,
    Pupil,
    RunAssignment,
    RunStaffing,
    RunUnserved,
    Session,
    Teacher,
    TeacherAvailability,
    Term,
    WaitlistOffer,
    utcnow,
)
from webapp.notifications import NotificationEvent, notify


@dataclass(frozen=True)
class _SessionInfo:
    id: int
    code: str
    activity: str
    day: int
    period_id: int
    capacity: int
    grade_lo: int
    grade_hi: int
    pupils_per_teacher: int
    min_pupils: int
    qualification: str | None


@dataclass(frozen=True)
class _Option:
    session_id: int
    new_teachers: tuple[int, ...]


@dataclass
class _SeatState:
    """Who sits and who teaches where in the run, enough to tell whether one more pupil fits a session."""

    sessions: dict[int, _SessionInfo]
    by_slot: dict[tuple[int, int], list[int]]
    period_by_code: dict[str, int]
    requests: dict[int, CareRequest]
    teachers: dict[int, Teacher]
    available: set[tuple[int, int, int]]
    enrolment: Counter[int] = field(default_factory=Counter)
    staff: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    busy: set[tuple[int, int, int]] = field(default_factory=set)
    load: Counter[int] = field(default_factory=Counter)
    pupil_slots: set[tuple[int, int, int]] = field(default_factory=set)

    @classmethod
    def load_run(cls, term: Term, run_id: int) -> _SeatState:
        periods = db.session.execute(select(Period.code, Period.id).where(Period.term_id == term.id)).all()
        rows = db.session.execute(
            select(Session, Activity.code, Activity.qualification)
            .join(Activity, Activity.id == Session.activity_id).where(Session.term_id == term.id)
        ).all()
        sessions = {
            s.id: _SessionInfo(s.id, s.code, code, s.day, s.period_id, s.capacity, s.grade_lo, s.grade_hi,
                               s.pupils_per_teacher, s.min_pupils, qualification)
            for s, code, qualification in rows
        }
        by_slot: dict[tuple[int, int], list[int]] = defaultdict(list)
        for info in sorted(sessions.values(), key=lambda s: s.code):
            by_slot[(info.day, info.period_id)].append(info.id)
        requests = {r.pupil_id: r for r in db.session.scalars(
            select(CareRequest).where(CareRequest.term_id == term.id, CareRequest.status == "active"))}
        teachers = {t.id: t for t in db.session.scalars(
            select(Teacher).where(Teacher.school_id == term.school_id, Teacher.active))}
        available = {(t, d, p) for t, d, p in db.session.execute(
            select(TeacherAvailability.teacher_id, TeacherAvailability.day, TeacherAvailability.period_id)
            .where(TeacherAvailability.term_id == term.id))}
        period_by_code = {code: period_id for code, period_id in periods}
        state = cls(sessions, dict(by_slot), period_by_code, requests, teachers, available)
        for pupil_id, session_id in db.session.execute(
            select(RunAssignment.pupil_id, RunAssignment.session_id).where(RunAssignment.run_id == run_id)
        ):
            state.enrolment[session_id] += 1
            seated_in = sessions.get(session_id)
            if seated_in is not None:
                state.pupil_slots.add((pupil_id, seated_in.day, seated_in.period_id))
        for teacher_id, session_id in db.session.execute(
            select(RunStaffing.teacher_id, RunStaffing.session_id).where(RunStaffing.run_id == run_id)
        ):
            state.staff[session_id].add(teacher_id)
            state.load[teacher_id] += 1
            led = sessions.get(session_id)
            if led is not None:
                state.busy.add((teacher_id, led.day, led.period_id))
        for offer in open_offers(term.id, run_id):
            state.apply(offer.pupil_id, [_Option(session_id, tuple(t for t, s in offer.teachers if s == session_id))
                                         for session_id in offer.sessions if session_id in sessions])
        return state

    def plan(self, pupil: Pupil, day: int) -> list[_Option] | None:
        """A session for each requested period of `day` the pupil is not yet in, or None if one is missing."""
        request = self.requests.get(pupil.id)
        if request is None or day not in request.days or not request.periods:
            return None
        chosen: list[_Option] = []
        extra_load: Counter[int] = Counter()
        for code in request.periods:
            period_id = self.period_by_code.get(code)
            if period_id is None:
                return None
            if (pupil.id, day, period_id) in self.pupil_slots:
                continue
            option = self._best_option(pupil, request, day, period_id, extra_load)
            if option is None:
                return None
            chosen.append(option)
            extra_load.update(option.new_teachers)
        return chosen

    def eligible(self, pupil: Pupil, day: int) -> bool:
        """Whether every requested period of `day` has a session the pupil may join at all (grade, day,
        period, a teacher with the activity's qualification on the school's staff), seats aside."""
        request = self.requests.get(pupil.id)
        if request is None or day not in request.days:
            return False
        for code in request.periods or []:
            period_id = self.period_by_code.get(code)
            if period_id is None or not any(
                    self.sessions[s].grade_lo <= pupil.grade <= self.sessions[s].grade_hi
                    and self.sessions[s].pupils_per_teacher > 0
                    and any(self.sessions[s].qualification is None
                            or self.sessions[s].qualification in (t.qualifications or [])
                            for t in self.teachers.values())
                    for s in self.by_slot.get((day, period_id), [])):
                return False
        return True

    def _best_option(self, pupil: Pupil, request: CareRequest, day: int, period_id: int,
                     extra_load: Counter[int]) -> _Option | None:
        preferences = list(request.preferences or [])
        best: tuple[tuple[int, int, str], _Option] | None = None
        for session_id in self.by_slot.get((day, period_id), []):
            info = self.sessions[session_id]
            if not info.grade_lo <= pupil.grade <= info.grade_hi or info.pupils_per_teacher <= 0:
                continue
            size = self.enrolment[session_id] + 1
            if size > info.capacity or size < info.min_pupils:
                continue
            missing = math.ceil(size / info.pupils_per_teacher) - len(self.staff[session_id])
            new_teachers = self._free_teachers(info, missing, extra_load) if missing > 0 else ()
            if new_teachers is None:
                continue
            rank = preferences.index(info.activity) if info.activity in preferences else len(preferences)
            key = (rank, len(new_teachers), info.code)
            if best is None or key < best[0]:
                best = (key, _Option(session_id, new_teachers))
        return best[1] if best else None

    def _free_teachers(self, info: _SessionInfo, missing: int,
                       extra_load: Counter[int]) -> tuple[int, ...] | None:
        """`missing` qualified teachers, available and idle in that slot and under their weekly maximum."""
        free = [
            t for t in self.teachers.values()
            if (info.qualification is None or info.qualification in (t.qualifications or []))
            and (t.id, info.day, info.period_id) in self.available
            and (t.id, info.day, info.period_id) not in self.busy
            and self.load[t.id] + extra_load[t.id] < t.max_sessions
        ]
        free.sort(key=lambda t: (self.load[t.id] + extra_load[t.id], t.code))
        if len(free) < missing:
            return None
        return tuple(t.id for t in free[:missing])

    def apply(self, pupil_id: int, options: list[_Option]) -> None:
        for option in options:
            info = self.sessions[option.session_id]
            self.enrolment[info.id] += 1
            self.pupil_slots.add((pupil_id, info.day, info.period_id))
            for teacher_id in option.new_teachers:
                self.staff[info.id].add(teacher_id)
                self.busy.add((teacher_id, info.day, info.period_id))
                self.load[teacher_id] += 1


def open_offers(term_id: int, run_id: int | None = None) -> list[WaitlistOffer]:
    """The term's offers still waiting for an answer (of `run_id` when given), oldest first."""
    query = select(WaitlistOffer).where(WaitlistOffer.term_id == term_id,
                                        WaitlistOffer.state == OfferState.OPEN.value)
    if run_id is not None:
        query = query.where(WaitlistOffer.run_id == run_id)
    return list(db.session.scalars(query.order_by(WaitlistOffer.id)))


def promote(term: Term, *, actor: int | None = None, at: datetime | None = None) -> list[dict[str, Any]]:
    """Give (automatic placement) or offer (offers) the published run's free seats in queue order.

    The caller commits and renumbers the waitlist. Each placement is audited as `waitlist.promote`, each offer
    as `offer.make` with a notification to the family. Returns one dict per pupil-day placed or offered
    (`"offer"` holds the offer id for an offer).
    """
    run = term.published_run
    if run is None:
        return []
    state = _SeatState.load_run(term, run.id)
    offering = term.placement != Placement.AUTOMATIC
    pending = {(o.pupil_id, o.day) for o in open_offers(term.id, run.id)}
    promoted: list[dict[str, Any]] = []
    added_weight = 0
    added_preference = 0
    for entry in waitlist(term):
        if (entry.pupil.id, entry.day) in pending:
            continue
        options = state.plan(entry.pupil, entry.day)
        if options is None:
            continue
        state.apply(entry.pupil.id, options)
        if offering:
            promoted.append(_offer(term, run, entry.pupil.id, entry.day, entry.rank, options, actor, at))
            continue
        added_preference += _seat(run, state, entry.pupil.id, entry.unserved_id, options)
        added_weight += entry.weight
        promotion = {
            "run_id": run.id, "pupil_id": entry.pupil.id, "day": entry.day, "rank": entry.rank,
            "sessions": [o.session_id for o in options],
            "teachers_added": [[t, o.session_id] for o in options for t in o.new_teachers],
        }
        promoted.append(promotion)
        record("waitlist.promote", f"run:{run.id}", {"term_id": term.id, **promotion},
               user_id=actor, school_id=term.school_id)
    if promoted:
        db.session.flush()
        _update_objective(run, added_weight, added_preference, state)
    return promoted


def _seat(run: AllocationRun, state: _SeatState, pupil_id: int, unserved_id: int, options: list[_Option]) -> int:
    """Write a pupil-day's seats (and any teacher they need) and strike it off the waitlist; returns the
    preference score the seats add."""
    preferences = list(state.requests[pupil_id].preferences or [])
    added_preference = 0
    for option in options:
        db.session.add(RunAssignment(run_id=run.id, pupil_id=pupil_id, session_id=option.session_id, pinned=False))
        for teacher_id in option.new_teachers:
            db.session.add(RunStaffing(run_id=run.id, teacher_id=teacher_id, session_id=option.session_id))
        added_preference += rank_score(preferences, state.sessions[option.session_id].activity)
    unserved = db.session.get(RunUnserved, unserved_id)
    if unserved is not None:
        db.session.delete(unserved)
    return added_preference


class Unplaceable(Exception):
    """The waitlisted pupil-day cannot be seated; `reason` is "not_waiting", "offered", "ineligible" or
    "no_seat"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def place(term: Term, pupil_id: int, day: int, *, actor: int | None) -> dict[str, Any]:
    """Seat one waitlisted pupil-day now, ahead of the queue, in seats that are free (nobody is moved).

    The same test as a promotion: every requested period of the day needs an eligible session (day, period,
    grade) with a free seat and enough staff, or an idle qualified teacher who is available and under the weekly
    maximum. Raises `Unplaceable` saying why not. Works inside the caller's transaction and seat lock.
    """
    run = term.published_run
    entry = next((e for e in waitlist(term) if e.pupil.id == pupil_id and e.day == day), None)
    if run is None or entry is None:
        raise Unplaceable("not_waiting")
    if any(o.pupil_id == pupil_id and o.day == day for o in open_offers(term.id, run.id)):
        raise Unplaceable("offered")
    state = _SeatState.load_run(term, run.id)
    options = state.plan(entry.pupil, day)
    if options is None:
        raise Unplaceable("no_seat" if state.eligible(entry.pupil, day) else "ineligible")
    state.apply(pupil_id, options)
    added_preference = _seat(run, state, pupil_id, entry.unserved_id, options)
    placement = {"run_id": run.id, "pupil_id": pupil_id, "day": day, "rank": entry.rank,
                 "sessions": [o.session_id for o in options],
                 "teachers_added": [[t, o.session_id] for o in options for t in o.new_teachers]}
    record("waitlist.place", f"run:{run.id}", {"term_id": term.id, **placement}, user_id=actor,
           school_id=term.school_id)
    db.session.flush()
    _update_objective(run, entry.weight, added_preference, state)
    return placement


def seat_offer(term: Term, offer: WaitlistOffer) -> bool:
    """Give the family of an accepted offer its held seats, staffing each session as hard rule 5 needs.

    The offer must already be marked accepted (so its hold no longer counts). Teachers come first from those
    idle and allowed (the offer's own held teacher among them), then from another open offer's hold on the
    same session (that offer keeps its seat: the teacher now leads it for real). False when a session cannot
    be staffed; the caller then refuses the acceptance.
    """
    run_id = offer.run_id
    for session_id in offer.sessions:
        db.session.add(RunAssignment(run_id=run_id, pupil_id=offer.pupil_id, session_id=session_id, pinned=False))
    db.session.flush()
    state = _SeatState.load_run(term, run_id)
    others = [o for o in open_offers(term.id, run_id) if o.id != offer.id]
    for session_id in offer.sessions:
        info = state.sessions[session_id]
        seated = db.session.scalar(select(func.count()).select_from(RunAssignment).where(
            RunAssignment.run_id == run_id, RunAssignment.session_id == session_id)) or 0
        staffed = set(db.session.scalars(select(RunStaffing.teacher_id).where(
            RunStaffing.run_id == run_id, RunStaffing.session_id == session_id)))
        missing = math.ceil(seated / max(info.pupils_per_teacher, 1)) - len(staffed)
        if missing <= 0:
            continue
        chosen = list(state._free_teachers(info, missing, Counter()) or ())
        for other in others:
            for pair in list(other.teachers):
                if len(chosen) < missing and pair[1] == session_id and pair[0] not in staffed | set(chosen):
                    chosen.append(pair[0])
                    other.teachers = [p for p in other.teachers if p != pair]
        if len(chosen) < missing:
            return False
        for teacher_id in chosen[:missing]:
            db.session.add(RunStaffing(run_id=run_id, teacher_id=teacher_id, session_id=session_id))
            state.staff[session_id].add(teacher_id)
            state.busy.add((teacher_id, info.day, info.period_id))
            state.load[teacher_id] += 1
    db.session.flush()
    return True


def _offer(term: Term, run: AllocationRun, pupil_id: int, day: int, rank: int, options: list[_Option],
           actor: int | None, at: datetime | None) -> dict[str, Any]:
    at = at or utcnow()
    hours = int(term.school.offer_hold_hours or 48)
    offer = WaitlistOffer(term_id=term.id, run_id=run.id, pupil_id=pupil_id, day=day, rank=rank,
                          sessions=[o.session_id for o in options],
                          teachers=[[t, o.session_id] for o in options for t in o.new_teachers],
                          state=OfferState.OPEN.value, offered_at=at, expires_at=at + timedelta(hours=hours))
    db.session.add(offer)
    db.session.flush()
    detail = {"offer": offer.id, "pupil_id": pupil_id, "day": day, "rank": rank, "sessions": offer.sessions,
              "expires_at": offer.expires_at.isoformat()}
    record("offer.make", f"run:{run.id}", {"term_id": term.id, **detail}, user_id=actor, school_id=term.school_id)
    notify(NotificationEvent.OFFER_MADE, pupil_id=pupil_id, term_id=term.id,
           params={"offer": offer.id, "day": day, "expires_at": offer.expires_at.isoformat()})
    return {"run_id": run.id, "pupil_id": pupil_id, "day": day, "rank": rank, "offer": offer.id,
            "sessions": offer.sessions}


def _update_objective(run: AllocationRun, added_weight: int, added_preference: int, state: _SeatState) -> None:
    """Keep the run's recorded coverage, preference and teacher load true to its rows after promotions."""
    run.coverage = (run.coverage or 0) + added_weight
    objective = dict(run.objective or {})
    objective["coverage"] = int(objective.get("coverage", 0)) + added_weight
    objective["preference"] = int(objective.get("preference", 0)) + added_preference
    objective["max_teacher_load"] = max(state.load.values(), default=0)
    run.objective = objective
