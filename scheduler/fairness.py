"""How fairly a plan treats the pupils who asked: who is served, who waits behind whom, what stays empty.

Pure functions of an instance and a solution (and, for churn, the plan before it), so the solver, the baselines
and any imported plan are measured alike. `fairness()` gathers every metric in one `FairnessReport`; each metric
is also a function of its own. Unknown ids in a solution are skipped, as in `scheduler.validation`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from scheduler.domain import Assignment, Instance, Pupil, Session, Slot, Solution
from scheduler.validation import covered_pupil_days

TOP_CHOICES = 3
"""A placement counts as a top choice when the activity stands among the first three the pupil ranked."""


@dataclass(frozen=True)
class Served:
    """Requesting pupils by how many of their requested days are covered."""

    fully: int
    """Covered on every requested day."""
    partly: int
    """Covered on some requested days, not all."""
    not_at_all: int
    """Covered on none of their requested days."""

    @property
    def pupils(self) -> int:
        return self.fully + self.partly + self.not_at_all


@dataclass(frozen=True)
class Families:
    """Requesting families (siblings share one family; a pupil without one is a family alone) by what they got."""

    requesting: int
    with_nothing: int
    """No pupil of the family is covered on any day asked for: what the `spread` seat policy keeps smallest."""


@dataclass(frozen=True)
class Choices:
    """Placed pupil-sessions of pupils who ranked at least one activity, by where the activity stands."""

    placed: int
    first: float
    """Share in the activity the pupil ranked first."""
    top: float
    """Share in an activity ranked among the first `TOP_CHOICES`."""
    none: float
    """Share in an activity the pupil did not rank at all."""


@dataclass(frozen=True)
class Envy:
    """`pupil` is left out on `day` while `holder`, of lower priority, sits that day in `sessions` (one per
    requested period, in the request's order) that `pupil` could take."""

    pupil: str
    day: int
    holder: str
    sessions: tuple[str, ...]


@dataclass(frozen=True)
class IdleSeats:
    """Seats left empty in sessions that run while a pupil who could use them waits."""

    seats: int
    sessions: tuple[str, ...]


@dataclass(frozen=True)
class Churn:
    """Pupil-session pairs against the plan before: kept, lost (only in the old plan), new (only in this one)."""

    kept: int
    lost: int
    new: int


@dataclass(frozen=True)
class WorstServed:
    pupil: str
    priority: int
    requested_days: int
    covered_days: int


@dataclass(frozen=True)
class FairnessReport:
    served: Served
    served_by_priority: dict[int, Served]
    served_by_grade: dict[int, Served]
    choices: Choices
    justified_envy: int
    """Left-out pupil-days with a lower-priority holder they could replace (see `justified_envy`)."""
    envy_examples: tuple[Envy, ...]
    idle_seats: IdleSeats
    split_families: tuple[str, ...]
    churn: Churn | None
    worst_served: tuple[WorstServed, ...]
    families: Families | None = None
    """Families left with nothing (always set by `fairness()`; `served.fully` counts pupils served every day)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: dict keys become strings, tuples lists."""
        data = asdict(self)
        for key in ("served_by_priority", "served_by_grade"):
            data[key] = {str(level): counts for level, counts in data[key].items()}
        data["justified_envy"] = {"count": self.justified_envy,
                                  "examples": [asdict(example) for example in self.envy_examples]}
        del data["envy_examples"]
        plain: dict[str, Any] = _jsonable(data)
        return plain


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def fairness(instance: Instance, solution: Solution, previous: Solution | None = None, *,
             examples: int = 5, worst: int = 10) -> FairnessReport:
    """Every metric of this module for one plan; `examples` envy cases and the `worst` worst-served pupils."""
    plan = _Plan(instance, solution.assignments)  # built once: covered pupil-days are most of the cost
    days = _days(instance, plan.covered)
    envy = justified_envy(instance, solution, plan)
    return FairnessReport(
        served=_count(list(days.values())),
        served_by_priority=_split(instance, days, lambda pupil: pupil.priority),
        served_by_grade=_split(instance, days, lambda pupil: pupil.grade),
        choices=choices(instance, solution),
        justified_envy=len(envy),
        envy_examples=tuple(envy[:examples]),
        idle_seats=idle_seats(instance, solution, plan),
        split_families=split_families(instance, solution, plan.covered),
        churn=churn(previous, solution) if previous is not None else None,
        worst_served=_worst(instance, days, worst),
        families=_families(instance, days),
    )


class _Plan:
    """Who sits where, by pupil and slot, and which pupil-days are covered."""

    def __init__(self, instance: Instance, assignments: tuple[Assignment, ...]) -> None:
        sessions, pupils = instance.session_by_id, instance.pupil_by_id
        self.pairs = [(a.pupil, sessions[a.session]) for a in assignments
                      if a.pupil in pupils and a.session in sessions]
        self.seat: dict[tuple[str, Slot], Session] = {(p, s.slot): s for p, s in self.pairs}
        self.enrolment: dict[str, int] = defaultdict(int)
        for _, session in self.pairs:
            self.enrolment[session.id] += 1
        self.covered = covered_pupil_days(instance, assignments)
        self.pinned = {(a.pupil, sessions[a.session].day) for a in instance.fixed if a.session in sessions}


def _requests(instance: Instance) -> list[tuple[Pupil, tuple[int, ...], tuple[str, ...]]]:
    """(pupil, days, periods) of every request that asks for care on some day."""
    pupils = instance.pupil_by_id
    return [(pupils[r.pupil], tuple(sorted(set(r.days))), r.periods) for r in instance.requests
            if r.periods and r.days and r.pupil in pupils]


def _covered_days(instance: Instance, solution: Solution) -> dict[str, tuple[int, int]]:
    """(covered, requested) days per requesting pupil."""
    return _days(instance, covered_pupil_days(instance, solution.assignments))


def _days(instance: Instance, covered: set[tuple[str, int]]) -> dict[str, tuple[int, int]]:
    return {pupil.id: (sum((pupil.id, day) in covered for day in days), len(days))
            for pupil, days, _ in _requests(instance)}


def _count(days: list[tuple[int, int]]) -> Served:
    return Served(fully=sum(c == r for c, r in days), partly=sum(0 < c < r for c, r in days),
                  not_at_all=sum(c == 0 for c, _ in days))


def served(instance: Instance, solution: Solution) -> Served:
    """Requesting pupils covered on all, some, or none of the days they asked for."""
    return _count(list(_covered_days(instance, solution).values()))


def families(instance: Instance, solution: Solution) -> Families:
    """Requesting families, and those of them with no pupil covered on any requested day."""
    return _families(instance, _covered_days(instance, solution))


def families_and_served(instance: Instance, solution: Solution) -> tuple[Families, Served]:
    """`families` and `served` of one plan, its covered pupil-days counted once."""
    days = _covered_days(instance, solution)
    return _families(instance, days), _count(list(days.values()))


def _families(instance: Instance, days: dict[str, tuple[int, int]]) -> Families:
    got: dict[str, bool] = {}
    for pupil_id, (covered, _) in days.items():
        key = family_key(instance.pupil_by_id[pupil_id])
        got[key] = got.get(key, False) or covered > 0
    return Families(requesting=len(got), with_nothing=sum(not any_day for any_day in got.values()))


def family_key(pupil: Pupil) -> str:
    """The family a pupil counts in: siblings share their `family`; a pupil without one is a family alone."""
    return f"family:{pupil.family}" if pupil.family else f"pupil:{pupil.id}"


def served_by(instance: Instance, solution: Solution, key: Callable[[Pupil], int]) -> dict[int, Served]:
    """`served`, split by `key(pupil)` (the priority level or the grade)."""
    return _split(instance, _covered_days(instance, solution), key)


def _split(instance: Instance, days: dict[str, tuple[int, int]], key: Callable[[Pupil], int]) -> dict[int, Served]:
    split: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for pupil_id, counts in days.items():
        split[key(instance.pupil_by_id[pupil_id])].append(counts)
    return {level: _count(split[level]) for level in sorted(split)}


def choices(instance: Instance, solution: Solution) -> Choices:
    """Among placed pupil-sessions of pupils who ranked something, the shares in their first choice, in a top
    choice, and in an activity they did not rank."""
    requests, sessions = instance.request_by_pupil, instance.session_by_id
    ranks: list[int | None] = []
    for pair in set(solution.assignments):
        request = requests.get(pair.pupil)
        session = sessions.get(pair.session)
        if request is None or session is None or not request.preferences:
            continue
        ranks.append(request.preferences.index(session.activity)
                     if session.activity in request.preferences else None)
    if not ranks:
        return Choices(0, 0.0, 0.0, 0.0)

    def share(count: int) -> float:
        return round(count / len(ranks), 4)

    return Choices(placed=len(ranks), first=share(sum(rank == 0 for rank in ranks)),
                   top=share(sum(rank is not None and rank < TOP_CHOICES for rank in ranks)),
                   none=share(sum(rank is None for rank in ranks)))


def justified_envy(instance: Instance, solution: Solution, plan: _Plan | None = None) -> list[Envy]:
    """Pupil-days left out while a covered pupil of lower priority weight, asking for the same periods, sits
    that day in sessions that all admit the left-out pupil's grade; one case per pupil-day, naming the holder
    first by id. Pupil-days touched by a pin are left out on both sides (an admin decided them)."""
    plan = plan or _Plan(instance, solution.assignments)
    requests = _requests(instance)
    # Holders of one (day, periods) differ only by weight and by the grades all their seats admit.
    holders: dict[tuple[int, tuple[str, ...]], dict[tuple[int, int, int], list[str]]] = defaultdict(
        lambda: defaultdict(list))
    for pupil, days, periods in sorted(requests, key=lambda item: item[0].id):
        for day in days:
            if (pupil.id, day) not in plan.covered or (pupil.id, day) in plan.pinned:
                continue
            seats = [plan.seat[(pupil.id, (day, period))] for period in periods]
            grades = (max(s.grades[0] for s in seats), min(s.grades[1] for s in seats))
            holders[(day, tuple(sorted(periods)))][(instance.weight(pupil), *grades)].append(pupil.id)
    cases: list[Envy] = []
    for pupil, days, periods in sorted(requests, key=lambda item: item[0].id):
        weight = instance.weight(pupil)
        for day in days:
            if (pupil.id, day) in plan.covered or (pupil.id, day) in plan.pinned:
                continue
            buckets = holders.get((day, tuple(sorted(periods))), {})
            envied = [ids[0] for (w, lo, hi), ids in buckets.items() if w < weight and lo <= pupil.grade <= hi]
            if envied:
                holder = min(envied)
                sessions = tuple(plan.seat[(holder, (day, period))].id for period in periods)
                cases.append(Envy(pupil.id, day, holder, sessions))
    return cases


def idle_seats(instance: Instance, solution: Solution, plan: _Plan | None = None) -> IdleSeats:
    """Empty seats (capacity minus enrolment) of running sessions for which some requested pupil-day left
    uncovered is eligible (right slot and grade, no seat in that slot yet)."""
    plan = plan or _Plan(instance, solution.assignments)
    waiting: dict[Slot, list[Pupil]] = defaultdict(list)
    for pupil, days, periods in _requests(instance):
        for day in days:
            if (pupil.id, day) in plan.covered:
                continue
            for period in periods:
                if (pupil.id, (day, period)) not in plan.seat:
                    waiting[(day, period)].append(pupil)
    seats, sessions = 0, []
    for session in instance.sessions:
        enrolment = plan.enrolment.get(session.id, 0)
        if 0 < enrolment < session.capacity and any(
                session.admits_grade(pupil.grade) for pupil in waiting.get(session.slot, [])):
            seats += session.capacity - enrolment
            sessions.append(session.id)
    return IdleSeats(seats, tuple(sessions))


def split_families(instance: Instance, solution: Solution,
                   covered: set[tuple[str, int]] | None = None) -> tuple[str, ...]:
    """Families with two or more requesting pupils where, on some day, one is covered and another who asked
    for that day is not (`covered`: the plan's covered pupil-days, when already counted)."""
    if covered is None:
        covered = covered_pupil_days(instance, solution.assignments)
    members: dict[str, list[tuple[str, tuple[int, ...]]]] = defaultdict(list)
    for pupil, days, _ in _requests(instance):
        if pupil.family:
            members[pupil.family].append((pupil.id, days))
    split = []
    for family, kids in sorted(members.items()):
        if len(kids) < 2:
            continue
        asked_days = {day for _, asked in kids for day in asked}
        if any(len({(pupil, day) in covered for pupil, asked in kids if day in asked}) > 1 for day in asked_days):
            split.append(family)
    return tuple(split)


def churn(previous: Solution, solution: Solution) -> Churn:
    """Pupil-session pairs of the previous plan kept in this one, lost from it, and new in it."""
    before, after = set(previous.assignments), set(solution.assignments)
    return Churn(kept=len(before & after), lost=len(before - after), new=len(after - before))


def worst_served(instance: Instance, solution: Solution, top: int = 10) -> tuple[WorstServed, ...]:
    """The `top` requesting pupils with the smallest share of their requested days covered; ties go to higher
    priority weight first, then to more days asked, then by pupil id."""
    return _worst(instance, _covered_days(instance, solution), top)


def _worst(instance: Instance, days: dict[str, tuple[int, int]], top: int) -> tuple[WorstServed, ...]:
    pupils = instance.pupil_by_id

    def key(pupil_id: str) -> tuple[Fraction, int, int, str]:
        covered, requested = days[pupil_id]
        return (Fraction(covered, requested), -instance.weight(pupils[pupil_id]), -requested, pupil_id)

    return tuple(WorstServed(pupil_id, pupils[pupil_id].priority, days[pupil_id][1], days[pupil_id][0])
                 for pupil_id in sorted(days, key=key)[:top])
