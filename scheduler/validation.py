"""An independent check of a solution against PROBLEM.md: the 7 hard rules and the 4 objectives.

It never imports the solver, so a bug in the model cannot hide itself here. Every function tolerates
unknown ids (rule 1 reports them) and skips them when counting.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from scheduler.domain import Assignment, Instance, Objective, Slot, Solution, Staffing

RULES = {
    1: "every id refers to something in the instance",
    2: "pupils sit only in requested slots of their grade",
    3: "a pupil sits in at most one session per (day, period)",
    4: "enrolment never exceeds capacity",
    5: "open sessions reach min_pupils and are staffed; empty sessions have no teachers",
    6: "teachers lead only sessions they are qualified and available for, one per slot, within max_sessions",
    7: "every fixed pair is assigned",
}


@dataclass(frozen=True)
class Violation:
    rule: int
    message: str


@dataclass(frozen=True)
class Report:
    violations: tuple[Violation, ...]
    objective: Objective
    """Recomputed from the assignments; `coverage_bound` is copied from the solution."""
    total_staffing: int
    covered: frozenset[tuple[str, int]]
    objective_mismatches: tuple[str, ...] = ()
    """Objective values the solution reports that differ from the recomputed ones."""
    unserved_mismatches: tuple[str, ...] = ()
    """Where the solution's `unserved` list disagrees with what its assignments cover."""

    @property
    def ok(self) -> bool:
        """No hard rule is broken."""
        return not self.violations

    @property
    def consistent(self) -> bool:
        """No hard rule is broken and the solution's own numbers and unserved list are right."""
        return self.ok and not self.objective_mismatches and not self.unserved_mismatches

    def rules_broken(self) -> set[int]:
        return {v.rule for v in self.violations}


# ---------------------------------------------------------------- objectives


def _known(instance: Instance, assignments: Iterable[Assignment]) -> set[Assignment]:
    pupils, sessions = instance.pupil_by_id, instance.session_by_id
    return {a for a in assignments if a.pupil in pupils and a.session in sessions}


def covered_pupil_days(instance: Instance, assignments: Iterable[Assignment]) -> set[tuple[str, int]]:
    """(pupil, day) pairs where the pupil sits in a session in every requested period that day."""
    sessions = instance.session_by_id
    seated: dict[str, set[Slot]] = defaultdict(set)
    for a in assignments:
        session = sessions.get(a.session)
        if session is not None:
            seated[a.pupil].add(session.slot)
    covered: set[tuple[str, int]] = set()
    for request in instance.requests:
        slots = seated.get(request.pupil)
        if not slots or not request.periods:
            continue
        for day in request.days:
            if all((day, period) in slots for period in request.periods):
                covered.add((request.pupil, day))
    return covered


def coverage(instance: Instance, assignments: Iterable[Assignment]) -> int:
    """Objective 1: covered pupil-days, each weighted by the pupil's priority weight."""
    return weighted_days(instance, covered_pupil_days(instance, assignments))


def weighted_days(instance: Instance, covered: set[tuple[str, int]]) -> int:
    """Objective 1 of the covered pupil-days `covered` (`covered_pupil_days`)."""
    pupils = instance.pupil_by_id
    return sum(instance.weight(pupils[p]) for p, _ in covered if p in pupils)


def stability(instance: Instance, assignments: Iterable[Assignment]) -> int:
    """Objective 2: how many of the previous allocation's pairs are kept."""
    kept = set(assignments)
    return sum(1 for pair in set(instance.previous) if pair in kept)


def preference(instance: Instance, assignments: Iterable[Assignment]) -> int:
    """Objective 3: sum of `rank_points[i]` over assigned pairs (activity ranked i-th by the pupil, 0-based);
    0 when the activity is not listed or i is beyond the points."""
    requests, sessions = instance.request_by_pupil, instance.session_by_id
    total = 0
    for a in _known(instance, assignments):
        request = requests.get(a.pupil)
        if request is not None:
            total += request.preference_score(sessions[a.session].activity, instance.rank_points)
    return total


def teacher_loads(instance: Instance, staffing: Iterable[Staffing]) -> dict[str, int]:
    """Sessions led per teacher, for every teacher of the instance (0 when idle)."""
    loads = {t.id: 0 for t in instance.teachers}
    for pair in set(staffing):
        if pair.teacher in loads and pair.session in instance.session_by_id:
            loads[pair.teacher] += 1
    return loads


def recompute_objective(instance: Instance, solution: Solution) -> Objective:
    loads = teacher_loads(instance, solution.staffing)
    return Objective(
        coverage=coverage(instance, solution.assignments),
        coverage_bound=solution.objective.coverage_bound,
        stability=stability(instance, solution.assignments),
        preference=preference(instance, solution.assignments),
        max_teacher_load=max(loads.values(), default=0),
    )


# ---------------------------------------------------------------- rules


class _Checker:
    def __init__(self, instance: Instance, solution: Solution) -> None:
        self.instance = instance
        self.solution = solution
        self.violations: list[Violation] = []

    def flag(self, rule: int, message: str) -> None:
        self.violations.append(Violation(rule, f"rule {rule}: {message}"))

    def run(self) -> tuple[list[Assignment], list[Staffing]]:
        assignments, staffing = self._rule_1_ids()
        self._rule_2_requested_slot_and_grade(assignments)
        self._rule_3_one_session_per_slot(assignments)
        enrolment = Counter(a.session for a in assignments)
        self._rule_4_capacity(enrolment)
        self._rule_5_min_pupils_and_staffing(enrolment, staffing)
        self._rule_6_teachers(staffing)
        self._rule_7_fixed(assignments)
        return assignments, staffing

    def _rule_1_ids(self) -> tuple[list[Assignment], list[Staffing]]:
        """Every id refers to something in the instance; only pairs that pass are checked further."""
        inst, sol = self.instance, self.solution
        if sol.school != inst.school.id:
            self.flag(1, f"solution is for school {sol.school}, the instance is school {inst.school.id}")
        pupils, sessions, teachers = inst.pupil_by_id, inst.session_by_id, inst.teacher_by_id
        assignments: list[Assignment] = []
        seen_assignments: set[Assignment] = set()
        for a in sol.assignments:
            bad = [f"unknown pupil {a.pupil}"] * (a.pupil not in pupils)
            bad += [f"unknown session {a.session}"] * (a.session not in sessions)
            if bad:
                self.flag(1, f"assignment ({a.pupil}, {a.session}): {', '.join(bad)}")
            elif a in seen_assignments:
                self.flag(3, f"pupil {a.pupil} is assigned to session {a.session} twice")
            else:
                seen_assignments.add(a)
                assignments.append(a)
        staffing: list[Staffing] = []
        seen_staffing: set[Staffing] = set()
        for s in sol.staffing:
            bad = [f"unknown teacher {s.teacher}"] * (s.teacher not in teachers)
            bad += [f"unknown session {s.session}"] * (s.session not in sessions)
            if bad:
                self.flag(1, f"staffing ({s.teacher}, {s.session}): {', '.join(bad)}")
            elif s in seen_staffing:
                self.flag(6, f"teacher {s.teacher} is staffed on session {s.session} twice")
            else:
                seen_staffing.add(s)
                staffing.append(s)
        for u in sol.unserved:
            if u.pupil not in pupils:
                self.flag(1, f"unserved entry names unknown pupil {u.pupil}")
        return assignments, staffing

    def _rule_2_requested_slot_and_grade(self, assignments: list[Assignment]) -> None:
        """A pupil sits only in sessions on a requested day and period, and only within the grade range."""
        inst = self.instance
        for a in assignments:
            pupil, session = inst.pupil_by_id[a.pupil], inst.session_by_id[a.session]
            request = inst.request_by_pupil.get(a.pupil)
            if request is None:
                self.flag(2, f"pupil {a.pupil} has no request but sits in session {a.session}")
            elif session.day not in request.days or session.period not in request.periods:
                self.flag(2, f"pupil {a.pupil} sits in session {a.session} on day {session.day} "
                             f"{session.period}, a slot the request does not list")
            if not session.admits_grade(pupil.grade):
                self.flag(2, f"pupil {a.pupil} (grade {pupil.grade}) sits in session {a.session} "
                             f"for grades {session.grades[0]}-{session.grades[1]}")

    def _rule_3_one_session_per_slot(self, assignments: list[Assignment]) -> None:
        """A pupil sits in at most one session per (day, period)."""
        by_slot: dict[tuple[str, Slot], list[str]] = defaultdict(list)
        for a in assignments:
            by_slot[(a.pupil, self.instance.session_by_id[a.session].slot)].append(a.session)
        for (pupil, (day, period)), sessions in by_slot.items():
            if len(sessions) > 1:
                self.flag(3, f"pupil {pupil} sits in {len(sessions)} sessions on day {day} {period}: "
                             f"{', '.join(sorted(sessions))}")

    def _rule_4_capacity(self, enrolment: Counter[str]) -> None:
        """A session's enrolment never exceeds its capacity."""
        for session in self.instance.sessions:
            n = enrolment.get(session.id, 0)
            if n > session.capacity:
                self.flag(4, f"session {session.id} has {n} pupils, capacity {session.capacity}")

    def _rule_5_min_pupils_and_staffing(self, enrolment: Counter[str], staffing: list[Staffing]) -> None:
        """An open session reaches min_pupils and has ceil(n / pupils_per_teacher) teachers; empty, none."""
        teachers = Counter(s.session for s in staffing)
        for session in self.instance.sessions:
            n, t = enrolment.get(session.id, 0), teachers.get(session.id, 0)
            if n == 0:
                if t:
                    self.flag(5, f"session {session.id} has no pupils but {t} teacher(s)")
                continue
            if n < session.min_pupils:
                self.flag(5, f"session {session.id} has {n} pupils, "
                             f"fewer than min_pupils {session.min_pupils}")
            needed = -(-n // session.pupils_per_teacher)
            if t < needed:
                self.flag(5, f"session {session.id} has {n} pupils and {t} teacher(s), needs {needed} "
                             f"(one per {session.pupils_per_teacher})")

    def _rule_6_teachers(self, staffing: list[Staffing]) -> None:
        """A teacher leads only what they may and can: qualified, available, one per slot, within max."""
        inst = self.instance
        by_teacher: dict[str, list[str]] = defaultdict(list)
        for s in staffing:
            teacher, session = inst.teacher_by_id[s.teacher], inst.session_by_id[s.session]
            activity = inst.activity_by_id[session.activity]
            if not teacher.can_lead(activity):
                self.flag(6, f"teacher {s.teacher} lacks qualification '{activity.qualification}' "
                             f"for session {s.session} ({activity.id})")
            if session.slot not in teacher.available:
                self.flag(6, f"teacher {s.teacher} is not available on day {session.day} {session.period} "
                             f"for session {s.session}")
            by_teacher[s.teacher].append(s.session)
        for teacher_id, session_ids in by_teacher.items():
            by_slot: dict[Slot, list[str]] = defaultdict(list)
            for session_id in session_ids:
                by_slot[inst.session_by_id[session_id].slot].append(session_id)
            for (day, period), same_slot in by_slot.items():
                if len(same_slot) > 1:
                    self.flag(6, f"teacher {teacher_id} leads {len(same_slot)} sessions on day {day} "
                                 f"{period}: {', '.join(sorted(same_slot))}")
            limit = inst.teacher_by_id[teacher_id].max_sessions
            if len(session_ids) > limit:
                self.flag(6, f"teacher {teacher_id} leads {len(session_ids)} sessions, max_sessions {limit}")

    def _rule_7_fixed(self, assignments: list[Assignment]) -> None:
        """Every fixed pair is assigned (a solution without an allocation has nothing to check)."""
        if not self.solution.has_allocation:
            return
        present = set(assignments)
        for pair in self.instance.fixed:
            if pair not in present:
                self.flag(7, f"fixed pair ({pair.pupil}, {pair.session}) is not assigned")


def _objective_mismatches(reported: Objective, recomputed: Objective) -> list[str]:
    problems = [f"objective.{name} is {getattr(reported, name)}, recomputed {getattr(recomputed, name)}"
                for name in ("coverage", "stability", "preference", "max_teacher_load")
                if getattr(reported, name) != getattr(recomputed, name)]
    if reported.coverage_bound < recomputed.coverage:
        problems.append(f"objective.coverage_bound {reported.coverage_bound} is below the achieved coverage "
                        f"{recomputed.coverage}")
    return problems


def _unserved_mismatches(instance: Instance, solution: Solution, covered: set[tuple[str, int]]) -> list[str]:
    if not solution.has_allocation:
        return []
    requested = {(r.pupil, d) for r in instance.requests if r.periods for d in r.days}
    listed = Counter((u.pupil, u.day) for u in solution.unserved)
    problems = []
    for (pupil, day), times in sorted(listed.items()):
        if times > 1:
            problems.append(f"unserved lists pupil {pupil} day {day} {times} times")
        if (pupil, day) in covered:
            problems.append(f"unserved lists pupil {pupil} day {day}, which the assignments cover")
        elif (pupil, day) not in requested:
            problems.append(f"unserved lists pupil {pupil} day {day}, which was not requested")
    for pupil, day in sorted(requested - covered - set(listed)):
        problems.append(f"pupil {pupil} day {day} is not covered but missing from unserved")
    return problems


def validate(instance: Instance, solution: Solution) -> Report:
    """Check every hard rule, recompute the objective and compare it with what the solution reports."""
    checker = _Checker(instance, solution)
    assignments, staffing = checker.run()
    objective = recompute_objective(instance, solution)
    covered = covered_pupil_days(instance, assignments)
    return Report(
        violations=tuple(checker.violations),
        objective=objective,
        total_staffing=len(staffing),
        covered=frozenset(covered),
        objective_mismatches=tuple(_objective_mismatches(solution.objective, objective)),
        unserved_mismatches=tuple(_unserved_mismatches(instance, solution, covered)),
    )
