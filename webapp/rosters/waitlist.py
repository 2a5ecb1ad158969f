"""The waitlist of the published run, and the hook that hands freed seats to the pupils at its head.

Every requested pupil-day the published run leaves uncovered (a `RunUnserved` row) waits in one queue: higher
priority weight first, then the pupil's lottery number. The lottery number is a hash of the term's
`lottery_seed` (drawn once, when the request window closes) and the pupil id, so the order is fixed, cannot be
influenced by when a parent submitted, and anyone holding the seed can recompute it.

`fill_freed_seats(term)` is called by whoever frees a seat (a withdrawal, a removed assignment, a raised
capacity). It serves waitlisted pupil-days only where that disturbs nobody: free seats, teachers already on
duty or idle qualified teachers, and `min_pupils` still met.
"""

from __future__ import annotations

import math
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from scheduler.groups import lottery_key
from webapp.audit import record
from webapp.extensions import db
from webapp.models import (
    Activity,
    CareRequest,
    Period,
    Pupil,
    RunAssignment,
    RunStaffing,
    RunUnserved,
    Session,
    Teacher,
    TeacherAvailability,
    Term,
    User,
)

SEED_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class WaitlistEntry:
    """One uncovered pupil-day in the queue; `position` counts within its day, `rank` over the whole queue."""

    unserved_id: int
    pupil: Pupil
    day: int
    position: int
    rank: int
    reason: str
    code: str
    weight: int
    lottery: str


def lottery_number(seed: int, pupil_id: int) -> str:
    """The pupil's place in the lottery: a hex digest that only the seed and the pupil id determine (the same
    draw the solver uses to choose among interchangeable pupils)."""
    return lottery_key(seed, str(pupil_id)).hex()


def ensure_lottery_seed(term: Term) -> int:
    """Draw the term's lottery seed if it has none yet (0 means not drawn); the caller commits."""
    if not term.lottery_seed:
        term.lottery_seed = secrets.randbelow(SEED_LIMIT - 1) + 1
    return term.lottery_seed


def waitlist(term: Term) -> list[WaitlistEntry]:
    """The published run's uncovered pupil-days, in the order seats are offered.

    Only days a pupil still asks for count: a withdrawn request, an inactive pupil or a day dropped from the
    request takes the pupil-day off the list without deleting the run's record of it.
    """
    run_id = term.published_run_id
    if run_id is None:
        return []
    rows = db.session.execute(
        select(RunUnserved, Pupil, CareRequest.days)
        .join(Pupil, Pupil.id == RunUnserved.pupil_id)
        .join(CareRequest, (CareRequest.pupil_id == RunUnserved.pupil_id) & (CareRequest.term_id == term.id))
        .where(RunUnserved.run_id == run_id, CareRequest.status == "active", Pupil.active)
    ).all()
    weights = term.priority_weights or {}
    keyed = []
    for unserved, pupil, days in rows:
        if unserved.day not in (days or []):
            continue
        weight = int(weights.get(str(pupil.priority), 1))
        lottery = lottery_number(term.lottery_seed, pupil.id)
        keyed.append(((-weight, lottery, unserved.day, unserved.id), unserved, pupil, weight, lottery))
    keyed.sort(key=lambda item: item[0])
    per_day: Counter[int] = Counter()
    entries = []
    for rank, (_, unserved, pupil, weight, lottery) in enumerate(keyed, start=1):
        per_day[unserved.day] += 1
        entries.append(WaitlistEntry(unserved.id, pupil, unserved.day, per_day[unserved.day], rank,
                                     unserved.reason, unserved.code, weight, lottery))
    return entries


def positions(term: Term) -> dict[int, int]:
    """Write each waitlisted row's position within its day (None for rows off the list); the caller commits.

    Returns the positions by `RunUnserved.id`.
    """
    placed = {entry.unserved_id: entry.position for entry in waitlist(term)}
    if term.published_run_id is None:
        return placed
    for row in db.session.scalars(select(RunUnserved).where(RunUnserved.run_id == term.published_run_id)):
        wanted = placed.get(row.id)
        if row.waitlist_position != wanted:
            row.waitlist_position = wanted
    return placed


# ------------------------------------------------------------------------------------------ seat promotion


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


def lock_term_sessions(term_id: int) -> None:
    """Serialise seat changes for a term until the current transaction ends.

    SQLite: take the database write lock up front (BEGIN IMMEDIATE). PostgreSQL and others: SELECT ... FOR
    UPDATE on the term's session rows, always in id order so two callers cannot deadlock.
    """
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    db.session.execute(
        select(Session.id).where(Session.term_id == term_id).order_by(Session.id).with_for_update()
    ).all()
    db.session.execute(select(Term.id).where(Term.id == term_id).with_for_update()).all()


def fill_freed_seats(term: Term, *, actor: User | int | None = None) -> list[dict[str, Any]]:
    """Offer the published run's free seats to waitlisted pupil-days in queue order and commit.

    A pupil-day is promoted only when every requested period of that day finds an eligible session with a free
    seat whose staffing covers one more pupil (or an idle qualified teacher can be added) and whose
    `min_pupils` is met, so nobody already placed is moved. Runs in one transaction under a lock, so
    concurrent calls never over-fill a session. Each promotion is audited as `waitlist_promoted`.
    """
    term_id = term.id
    actor_id = actor.id if isinstance(actor, User) else actor
    promoted: list[dict[str, Any]] = []
    try:
        lock_term_sessions(term_id)
        db.session.expire_all()
        fresh = db.session.get(Term, term_id)
        if fresh is None or fresh.published_run is None:
            db.session.commit()
            return []
        run = fresh.published_run
        state = _SeatState.load_run(fresh, run.id)
        added_weight = 0
        added_preference = 0
        for entry in waitlist(fresh):
            options = state.plan(entry.pupil, entry.day)
            if options is None:
                continue
            state.apply(entry.pupil.id, options)
            preferences = list(state.requests[entry.pupil.id].preferences or [])
            for option in options:
                db.session.add(RunAssignment(run_id=run.id, pupil_id=entry.pupil.id,
                                             session_id=option.session_id, pinned=False))
                for teacher_id in option.new_teachers:
                    db.session.add(RunStaffing(run_id=run.id, teacher_id=teacher_id,
                                               session_id=option.session_id))
                activity = state.sessions[option.session_id].activity
                if activity in preferences:
                    added_preference += len(preferences) - preferences.index(activity)
            unserved = db.session.get(RunUnserved, entry.unserved_id)
            if unserved is not None:
                db.session.delete(unserved)
            added_weight += entry.weight
            promotion = {
                "run_id": run.id, "pupil_id": entry.pupil.id, "day": entry.day, "rank": entry.rank,
                "sessions": [o.session_id for o in options],
                "teachers_added": [[t, o.session_id] for o in options for t in o.new_teachers],
            }
            promoted.append(promotion)
            record("waitlist.promote", f"run:{run.id}", {"term_id": term_id, **promotion},
                   user_id=actor_id, school_id=fresh.school_id)
        if promoted:
            db.session.flush()
            positions(fresh)
            _update_objective(run, added_weight, added_preference, state)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return promoted


def _update_objective(run: Any, added_weight: int, added_preference: int, state: _SeatState) -> None:
    """Keep the run's recorded coverage, preference and teacher load true to its rows after promotions."""
    run.coverage = (run.coverage or 0) + added_weight
    objective = dict(run.objective or {})
    objective["coverage"] = int(objective.get("coverage", 0)) + added_weight
    objective["preference"] = int(objective.get("preference", 0)) + added_preference
    objective["max_teacher_load"] = max(state.load.values(), default=0)
    run.objective = objective
