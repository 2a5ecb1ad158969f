"""What-if capacity advice: the fewest teachers to hire and seats to add for every requested pupil-day.

The allocation model is solved once more with two kinds of slack: a new room at every weekday x period open to
every grade (any teacher may lead it), and hired teachers by qualification, each free at every slot and leading
at most `hire_sessions` sessions a week. Levels, in order: cover all demand, hire the fewest teachers (and of
those, the fewest needing a qualification), add the fewest seats. What a slot needs is then read off the solution.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from dataclasses import dataclass

from scheduler.domain import Activity, Instance, Session, Status
from scheduler.groups import DayClass, build_day_classes
from scheduler.lexicographic import LexicographicSolver, SolverConfig
from scheduler.model import AllocationModel

EXTRA_ACTIVITY = "__extra__"
DEFAULT_PUPILS_PER_TEACHER = 30


@dataclass(frozen=True)
class AdviceItem:
    day: int
    period: str
    extra_teachers: dict[str, int]
    """Qualification tag ("" = any teacher) -> teachers to hire who would work this slot."""
    extra_seats: int
    pupils_covered: int
    """More pupils who need this slot and would be covered, compared with the allocation possible today."""


@dataclass(frozen=True)
class Advice:
    demand: int
    coverage_now: int
    coverage_after: int
    hired: dict[str, int]
    """Teachers to hire by qualification tag, for the whole week."""
    items: tuple[AdviceItem, ...]
    status: str
    seconds: float

    @property
    def extra_teachers(self) -> int:
        return sum(self.hired.values())

    @property
    def extra_seats(self) -> int:
        return sum(item.extra_seats for item in self.items)


def with_new_rooms(instance: Instance) -> Instance:
    """The instance plus one unlimited room per weekday x period for every grade (the seats the advice may add)."""
    requesting = sum(1 for r in instance.requests if r.periods)
    rooms = []
    for day in instance.weekdays:
        for period in instance.periods:
            at_slot = instance.sessions_by_slot.get((day, period.id), [])
            ratio = max((s.pupils_per_teacher for s in at_slot), default=DEFAULT_PUPILS_PER_TEACHER)
            rooms.append(Session(f"{EXTRA_ACTIVITY}{day}_{period.id}", EXTRA_ACTIVITY, day, period.id, "新增教室",
                                 requesting, (1, 6), ratio, 0))
    activity = Activity(EXTRA_ACTIVITY, "新增场次", "care", None)
    return dataclasses.replace(instance, activities=(*instance.activities, activity),
                               sessions=(*instance.sessions, *rooms))


def _covered_by_slot(lexi: LexicographicSolver, built: AllocationModel) -> dict[tuple[int, str], int]:
    counts: dict[tuple[int, str], int] = defaultdict(int)
    for (k, _, _), var in built.covered.items():
        day_class: DayClass = built.classes[k]
        for period in day_class.periods:
            counts[(day_class.day, period)] += lexi.value(var)
    return counts


def advise(instance: Instance, config: SolverConfig | None = None, *, hire_sessions: int = 5) -> Advice:
    """Advice for one school; `config.time_limit` bounds both solves together."""
    config = config or SolverConfig()
    started = time.monotonic()
    deadline = started + config.time_limit

    today = AllocationModel(instance, build_day_classes(instance, by_preference=False, seed=config.seed))
    now_solver = LexicographicSolver(today, config, started, None)
    now = now_solver.optimise("coverage", today.coverage_level(), maximise=True,
                              seconds=(deadline - time.monotonic()) / 3)
    covered_now = _covered_by_slot(now_solver, today) if now_solver.have_solution else {}

    grown = with_new_rooms(instance)
    built = AllocationModel(grown, build_day_classes(grown, by_preference=False, seed=config.seed),
                            hire_sessions=hire_sessions)
    lexi = LexicographicSolver(built, config, started, None)
    new_rooms = [sum(built.enrolment[s.id]) for s in grown.sessions
                 if s.activity == EXTRA_ACTIVITY and s.id in built.enrolment]
    steps = [
        ("coverage", built.coverage_level(), True),
        ("hired", sum(built.hired.values()), False),
        ("hired_qualified", sum(var for tag, var in built.hired.items() if tag), False),
        ("seats", sum(new_rooms), False),
        ("hired_leads", sum(built.hired_leads.values()), False),
    ]
    for i, (name, expr, maximise) in enumerate(steps):
        lexi.optimise(name, expr, maximise=maximise, seconds=(deadline - time.monotonic()) / (len(steps) - i))
    if not lexi.have_solution:
        return Advice(instance.demand(), now.value, now.value, {}, (), Status.UNKNOWN,
                      round(time.monotonic() - started, 3))

    covered_after = _covered_by_slot(lexi, built)
    items = []
    for day in instance.weekdays:
        for period in instance.periods:
            slot = (day, period.id)
            merged: dict[str, int] = defaultdict(int)
            for (group, tag), var in built.hired_leads.items():
                if (group[0], group[1]) == slot and lexi.value(var):
                    merged[tag] += lexi.value(var)
            room = f"{EXTRA_ACTIVITY}{day}_{period.id}"
            seats = sum(lexi.value(v) for v in built.enrolment.get(room, []))
            gained = covered_after.get(slot, 0) - covered_now.get(slot, 0)
            if merged or seats:
                items.append(AdviceItem(day, period.id, dict(sorted(merged.items())), seats, max(0, gained)))
    proven = all(r.status == Status.OPTIMAL for r in [now, *lexi.results])
    return Advice(
        demand=instance.demand(),
        coverage_now=now.value,
        coverage_after=lexi.results[0].value,
        hired={tag: lexi.value(var) for tag, var in sorted(built.hired.items()) if lexi.value(var)},
        items=tuple(items),
        status=Status.OPTIMAL if proven else Status.FEASIBLE,
        seconds=round(time.monotonic() - started, 3),
    )


def advice_to_json(advice: Advice) -> dict[str, object]:
    return dataclasses.asdict(advice) | {"extra_teachers": advice.extra_teachers, "extra_seats": advice.extra_seats}
