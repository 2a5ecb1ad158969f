"""What schools do today, for comparison with the solver: a lottery and first-come-first-served.

Both walk the pupils in one order and give each, day by day, a seat in every requested period (ranked
activities first, then any session of the right grade with room). A day is seated whole or not at all.
Sessions that end below `min_pupils` close; then teachers are handed out greedily, biggest session first, and
a session that cannot be staffed closes too. A pupil who loses a seat loses the whole day, which frees seats
but never refills them: that is how a paper lottery works.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from scheduler import validation
from scheduler.domain import (
    Assignment,
    Instance,
    Objective,
    Pupil,
    Request,
    Session,
    Slot,
    Solution,
    Staffing,
    Status,
    Teacher,
)
from scheduler.explain import explain_unserved
from scheduler.fixed import check_fixed
from scheduler.groups import lottery_order, lottery_seed


def lottery(instance: Instance, seed: int = 0, *, explain: bool = True) -> Solution:
    """The draw's order within priority tiers, highest weight first; siblings draw together.

    The draw is the solver's (`scheduler.groups.lottery_order`): the instance's `lottery_seed`, else `seed`.
    Without `explain`, the plan says nothing of the pupils it leaves out (`unserved` is empty): the solver's
    fallback wants only the seats.
    """
    started = time.monotonic()
    requests = lottery_order(instance, seed)
    requests.sort(key=lambda r: -instance.weight(instance.pupil_by_id[r.pupil]))
    return _allocate(instance, requests, {"method": "lottery", "seed": lottery_seed(instance, seed)}, started,
                     explain=explain)


def first_come_first_served(instance: Instance) -> Solution:
    """Requests in submission order (the order of `instance.requests`), priority ignored."""
    started = time.monotonic()
    return _allocate(instance, instance.requests, {"method": "first_come_first_served"}, started)


def _allocate(instance: Instance, order: Sequence[Request], stats: dict[str, object],
              started: float, *, explain: bool = True) -> Solution:
    broken = check_fixed(instance)
    if broken:
        stats.update(infeasible_fixed=broken, seconds=round(time.monotonic() - started, 3))
        return Solution(instance.school.id, Status.INFEASIBLE, (), (), Objective(0, 0, 0, 0, 0), (), stats)
    greedy = _Greedy(instance)
    greedy.seat_fixed()
    for request in order:
        greedy.seat_request(request)
    greedy.close_short_sessions()
    greedy.staff_sessions()
    if greedy.failed_fixed:
        stats.update(reason="pinned pairs sit in sessions this method had to close",
                     failed_fixed=sorted(greedy.failed_fixed), seconds=round(time.monotonic() - started, 3))
        return Solution(instance.school.id, Status.UNKNOWN, (), (), Objective(0, 0, 0, 0, 0), (), stats)
    assignments = greedy.assignments()
    staffing = greedy.staffing()
    solution = Solution(
        school=instance.school.id,
        status=Status.FEASIBLE,
        assignments=assignments,
        staffing=staffing,
        objective=Objective(0, instance.demand(), 0, 0, 0),
        unserved=explain_unserved(instance, assignments, staffing) if explain else (),
        stats=stats,
    )
    stats["seconds"] = round(time.monotonic() - started, 3)
    return replace(solution, objective=validation.recompute_objective(instance, solution))


class _Greedy:
    """Seats and teachers handed out one at a time; dicts (not sets) keep every run in the same order."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.index = {s.id: i for i, s in enumerate(instance.sessions)}
        self.enrolled: dict[str, dict[str, None]] = {s.id: {} for s in instance.sessions}
        self.seat: dict[tuple[str, int, str], str] = {}
        self.pinned = {(a.pupil, a.session) for a in instance.fixed}
        self.failed_fixed: set[tuple[str, str]] = set()
        self.closed: set[str] = set()
        self.staff: dict[str, list[str]] = defaultdict(list)
        self.busy: set[tuple[str, int, str]] = set()
        self.load: dict[str, int] = {t.id: 0 for t in instance.teachers}
        self.eligible: dict[tuple[int, str, int], list[Session]] = defaultdict(list)
        for session in instance.sessions:
            for grade in range(session.grades[0], session.grades[1] + 1):
                self.eligible[(session.day, session.period, grade)].append(session)

    # ------------------------------------------------------------ pupils

    def _place(self, pupil: str, session: Session) -> None:
        self.enrolled[session.id][pupil] = None
        self.seat[(pupil, session.day, session.period)] = session.id

    def seat_fixed(self) -> None:
        """Pinned pairs go in before anyone else (check_fixed has made sure they fit)."""
        sessions = self.instance.session_by_id
        for pair in self.instance.fixed:
            self._place(pair.pupil, sessions[pair.session])

    def seat_request(self, request: Request) -> None:
        pupil = self.instance.pupil_by_id[request.pupil]
        for day in request.days:
            chosen: list[Session] = []
            for period in request.periods:
                if (pupil.id, day, period) in self.seat:
                    continue
                session = self._pick(pupil, request, day, period)
                if session is None:
                    chosen = []
                    break
                chosen.append(session)
            for session in chosen:
                self._place(pupil.id, session)

    def _pick(self, pupil: Pupil, request: Request, day: int, period: str) -> Session | None:
        """A ranked activity if one has room, else the fullest open session, else the first empty one."""
        free = [s for s in self.eligible.get((day, period, pupil.grade), ())
                if len(self.enrolled[s.id]) < s.capacity]
        if not free:
            return None
        free.sort(key=lambda s: (not self.enrolled[s.id], self.index[s.id]))
        for activity in request.preferences:
            for session in free:
                if session.activity == activity:
                    return session
        return free[0]

    def _drop_day(self, pupil: str, day: int) -> list[str]:
        """Take away the pupil's unpinned seats that day; returns the sessions that lost a pupil."""
        request = self.instance.request_by_pupil[pupil]
        touched = []
        for period in request.periods:
            session_id = self.seat.get((pupil, day, period))
            if session_id is None or (pupil, session_id) in self.pinned:
                continue
            del self.seat[(pupil, day, period)]
            del self.enrolled[session_id][pupil]
            touched.append(session_id)
        return touched

    def _close(self, session: Session) -> None:
        """Close a session: its pupils lose the day, its teachers are free again."""
        self.closed.add(session.id)
        for pupil in list(self.enrolled[session.id]):
            if (pupil, session.id) in self.pinned:
                self.failed_fixed.add((pupil, session.id))
            else:
                self._drop_day(pupil, session.day)
        self._release(session, len(self.staff[session.id]))

    def close_short_sessions(self) -> None:
        """Sessions below `min_pupils` close, which can take others below theirs in turn."""
        changed = True
        while changed:
            changed = False
            for session in self.instance.sessions:
                enrolment = len(self.enrolled[session.id])
                if 0 < enrolment < session.min_pupils and session.id not in self.closed:
                    self._close(session)
                    changed = True

    # ------------------------------------------------------------ teachers

    def _release(self, session: Session, count: int) -> None:
        for _ in range(min(count, len(self.staff[session.id]))):
            teacher = self.staff[session.id].pop()
            self.busy.discard((teacher, session.day, session.period))
            self.load[teacher] -= 1

    def _free_teachers(self, session: Session) -> list[Teacher]:
        activity = self.instance.activity_by_id[session.activity]
        slot: Slot = session.slot
        free = [t for t in self.instance.teachers
                if t.can_lead(activity) and slot in t.available and (t.id, *slot) not in self.busy
                and self.load[t.id] < t.max_sessions]
        free.sort(key=lambda t: (self.load[t.id], len(t.qualifications)))
        return free

    def staff_sessions(self) -> None:
        """Biggest sessions first, least-loaded generalists first; an unstaffable session closes."""
        sessions = self.instance.sessions
        pinned_sessions = {session for _, session in self.pinned}
        queue = sorted((s for s in sessions if self.enrolled[s.id]), key=lambda s: (
            s.id not in pinned_sessions, -len(self.enrolled[s.id]), self.index[s.id]))
        for session in queue:
            enrolment = len(self.enrolled[session.id])
            if enrolment == 0:
                continue
            need = math.ceil(enrolment / session.pupils_per_teacher)
            free = self._free_teachers(session)
            if len(free) < need:
                self._close(session)
                self.close_short_sessions()
                continue
            for teacher in free[:need]:
                self.staff[session.id].append(teacher.id)
                self.busy.add((teacher.id, session.day, session.period))
                self.load[teacher.id] += 1
        self.close_short_sessions()
        for session in sessions:
            need = math.ceil(len(self.enrolled[session.id]) / session.pupils_per_teacher)
            self._release(session, len(self.staff[session.id]) - need)

    # ------------------------------------------------------------ result

    def assignments(self) -> tuple[Assignment, ...]:
        return tuple(Assignment(pupil, session)
                     for session, pupils in self.enrolled.items() for pupil in pupils)

    def staffing(self) -> tuple[Staffing, ...]:
        return tuple(Staffing(teacher, session)
                     for session, teachers in self.staff.items() for teacher in teachers)
