"""What-if capacity advice: the fewest teachers to hire and seats to add for every requested pupil-day.

The allocation model is solved once more with two kinds of slack: a new room at every weekday x period open to
every grade (any teacher may lead it), and hired teachers by qualification, each free at every slot and leading
at most `hire_sessions` sessions a week. Levels, in strict order: cover all demand, hire the fewest teachers, of
those the fewest needing a qualification, then add the fewest seats. Each level reports the value found and a
proven bound (`AdviceLevel`); the slots give the bounds and, most often, the plan (`scheduler.whatif_slots`).

What the advice gains is counted in pupil-days, weighted like coverage: a pupil-day is counted once, at its day
and the last period it needs, so the items add up to exactly `coverage_after - coverage_now`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from scheduler.coverage import solve_coverage
from scheduler.deadline import Deadline
from scheduler.domain import Activity, Instance, Session, Slot, Status
from scheduler.groups import build_day_classes
from scheduler.lexicographic import LevelResult, LexicographicSolver, SolverConfig
from scheduler.model import AllocationModel, Expr, total
from scheduler.whatif_prices import priced_bound
from scheduler.whatif_slots import (
    NEW_ROOM_PREFIX,
    fewer_teachers,
    from_week,
    is_new_room,
    join,
    level_expr,
    slot_bound,
)

logger = logging.getLogger(__name__)

EXTRA_ACTIVITY = NEW_ROOM_PREFIX
DEFAULT_PUPILS_PER_TEACHER = 30
LEVELS = ("coverage", "hired", "hired_qualified", "seats")
"""The advice's levels in their strict order: coverage is maximised, the others minimised."""
WEEK_SEARCH_SHARE = 0.75
"""Share of the seats level's time left for the week's search once the slots did not join; the priced bound gets
the rest. On generated schools of 1,000-3,000 pupils the week's LP bound beat the priced one (see
docs/benchmarks.md), so the search gets most of it."""
NOW_SHARE = 0.15
"""Share of the time limit for the allocation possible today (level 1 of the normal model)."""


@dataclass(frozen=True)
class AdviceItem:
    day: int
    period: str
    extra_teachers: dict[str, int]
    """Qualification tag ("" = any teacher) -> teachers to hire who would work this slot."""
    extra_seats: int
    pupil_days_covered: int
    """More pupil-days covered than today, weighted like coverage, each counted at its day and the last period
    it needs (so a pupil-day needing P1 and P2 counts once, at P2)."""


@dataclass(frozen=True)
class AdviceLevel:
    name: str
    value: int
    """What the advice's plan reaches."""
    bound: int
    """What any plan reaches at best: no plan covers more, none hires or adds fewer."""
    status: str
    seconds: float

    @property
    def proven(self) -> bool:
        return self.status == Status.OPTIMAL


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
    levels: tuple[AdviceLevel, ...] = ()
    coverage_now_bound: int = 0
    """The most any plan with today's teachers and rooms covers; `coverage_now` is proven when it is equal."""

    @property
    def extra_teachers(self) -> int:
        return sum(self.hired.values())

    @property
    def extra_seats(self) -> int:
        return sum(item.extra_seats for item in self.items)

    @property
    def gained(self) -> int:
        """Weighted pupil-days covered beyond today; the items' `pupil_days_covered` add up to it."""
        return self.coverage_after - self.coverage_now


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


def advise(instance: Instance, config: SolverConfig | None = None, *, hire_sessions: int = 5) -> Advice:
    """Advice for one school; `config.time_limit` bounds the whole computation."""
    config = config or SolverConfig()
    started = time.monotonic()
    deadline = Deadline(started + config.time_limit)
    today, now_solver, now = _coverage_today(instance, config, Deadline.after(NOW_SHARE * config.time_limit))

    grown = with_new_rooms(instance)
    built = AllocationModel(grown, build_day_classes(grown, by_preference=False, seed=config.seed),
                            hire_sessions=hire_sessions)
    lexi = LexicographicSolver(built, config, started, None)
    if now_solver.have_solution:
        lexi.hint(_today_in_grown(now_solver, today, built))
    levels = _solve_levels(built, lexi, deadline, config)
    if not lexi.have_solution:
        return Advice(instance.demand(), now.value, now.value, {}, (), Status.UNKNOWN,
                      round(time.monotonic() - started, 3), tuple(levels), now.bound)
    coverage_now = now.value if now_solver.have_solution else 0
    covered_now = _covered_by_last_period(now_solver, today) if now_solver.have_solution else {}
    items = _items(instance, built, lexi, covered_now)
    proven = now.status == Status.OPTIMAL and all(level.proven for level in levels)
    return Advice(
        demand=instance.demand(),
        coverage_now=coverage_now,
        coverage_after=levels[0].value,
        hired={tag: lexi.value(var) for tag, var in sorted(built.hired.items()) if lexi.value(var)},
        items=items,
        status=Status.OPTIMAL if proven else Status.FEASIBLE,
        seconds=round(time.monotonic() - started, 3),
        levels=tuple(levels),
        coverage_now_bound=max(now.bound, coverage_now),
    )


def _coverage_today(instance: Instance, config: SolverConfig,
                    deadline: Deadline) -> tuple[AllocationModel, LexicographicSolver, LevelResult]:
    """Level 1 with today's teachers and rooms, solved as the allocation solves it (`scheduler.coverage`)."""
    began = time.monotonic()
    today = AllocationModel(instance, build_day_classes(instance, by_preference=False, seed=config.seed),
                            backend=config.backend)
    solver = LexicographicSolver(today, config, began, None)
    return today, solver, solve_coverage(solver, deadline.left(), deadline.left).result


def _today_in_grown(now: LexicographicSolver, today: AllocationModel, built: AllocationModel) -> list[float]:
    """Today's plan as a start for the model with new rooms and hiring: nobody in a new room, nobody hired."""
    values = [0.0] * built.solver.NumVariables()
    index = {_class_key(c): k for k, c in enumerate(today.classes)}
    for name in ("seats", "seated", "covered"):
        mine = getattr(today, name)
        for key, var in getattr(built, name).items():
            source = mine.get((index.get(_class_key(built.classes[key[0]]), -1), *key[1:]))
            if source is not None:
                values[var.index()] = now.value(source)
    for name in ("teachers", "runs", "leads"):
        mine = getattr(today, name)
        for key, var in getattr(built, name).items():
            if key in mine:
                values[var.index()] = now.value(mine[key])
    values[built.max_load.index()] = now.value(today.max_load)
    return values


def _class_key(day_class: object) -> tuple[object, ...]:
    return tuple(getattr(day_class, f) for f in ("day", "grade", "periods", "fixed", "previous"))


def _solve_levels(built: AllocationModel, lexi: LexicographicSolver, deadline: Deadline,
                  config: SolverConfig) -> list[AdviceLevel]:
    """The four levels in order, each bounded by the slots where the week's search leaves a gap."""
    levels: list[AdviceLevel] = []
    began = time.monotonic()
    coverage = lexi.optimise("coverage", built.coverage_level(), maximise=True, seconds=_share(deadline, 4))
    demand = built.instance.demand()
    if not lexi.have_solution:
        return [AdviceLevel("coverage", 0, demand, Status.UNKNOWN, round(time.monotonic() - began, 3))]
    full = coverage.value >= demand
    levels.append(dataclasses.replace(_level(coverage, min(coverage.bound, demand), maximise=True),
                                      seconds=round(time.monotonic() - began, 3)))
    for i, name in enumerate(LEVELS[1:]):
        began = time.monotonic()
        level_deadline = Deadline.after(_share(deadline, 3 - i))
        result = _minimise(built, lexi, name, levels, level_deadline, config, full=full)
        if result is None:
            break
        levels.append(dataclasses.replace(result, seconds=round(time.monotonic() - began, 3)))
    if len(levels) == len(LEVELS):  # the fewest sessions for the hired teachers: a tidier plan, not a level
        lexi.optimise("hired_leads", level_expr(built, "hired_leads"), maximise=False, seconds=deadline.left())
    return levels


def _minimise(built: AllocationModel, lexi: LexicographicSolver, name: str, levels: list[AdviceLevel],
              deadline: Deadline, config: SolverConfig, *, full: bool) -> AdviceLevel | None:
    """One minimised level: the slots first (their bound, and their plans, which most often join into the week's
    optimum); the week's search from there otherwise."""
    expr = level_expr(built, name)
    caps: dict[str, int] = {}
    if name in ("hired_qualified", "seats"):
        caps["most_hired"] = levels[1].value
    if name == "seats":
        caps["most_qualified"] = levels[2].value
    if name == "seats":
        return _fewest_seats(built, lexi, expr, deadline, config, caps, full=full)
    bound, status, plans = (slot_bound(built, name, Deadline.after(deadline.left() / 4), config, **caps)
                            if full else (0, Status.UNKNOWN, []))
    if plans and status == Status.OPTIMAL:
        # The slots' plans, each with the fewest hires its slot needs, as a plan of the week: it meets the bound
        # (the most any slot needs) whenever the weekly caps let them join.
        hired: dict[str, int] = defaultdict(int)
        for plan in plans:
            for tag, var in plan.model.hired.items():
                hired[tag] = max(hired[tag], plan.value_of(var))
        joined = join(built, plans, hired) or join(
            built, [fewer_teachers(plan, deadline.left() / (8 * len(plans)), config) for plan in plans], hired)
        within = sum(hired.values()) <= caps.get("most_hired", sum(hired.values()))  # the level held before
        if joined is not None and within and _value_at(expr, joined) <= bound:
            return _level(lexi.accept_value(name, expr, joined, bound, 0.0), bound, maximise=False)
        if joined is not None and within:
            lexi.hint(joined)
    result = lexi.optimise(name, expr, maximise=False, seconds=deadline.left())
    if result.status not in (Status.OPTIMAL, Status.FEASIBLE):
        return None
    return _level(result, max(result.bound, bound) if status != Status.UNKNOWN else result.bound, maximise=False)


def _fewest_seats(built: AllocationModel, lexi: LexicographicSolver, expr: Expr, deadline: Deadline,
                  config: SolverConfig, caps: dict[str, int], *, full: bool) -> AdviceLevel | None:
    """Seats: the slots' bound and plans; when those do not join, the week's own search for most of the time left
    (`WEEK_SEARCH_SHARE`), started from the slots re-solved within the teachers the week's plan has there and
    with every slot held to its own fewest seats (a valid cut); its plan re-solved the same way, slot by slot;
    then the bound with the weekly caps priced in."""
    if not full:
        result = lexi.optimise("seats", expr, maximise=False, seconds=deadline.left())
        return _level(result, result.bound, maximise=False) if lexi.have_solution else None
    bound, status, plans = slot_bound(built, "seats", Deadline.after(deadline.left() / 4), config, **caps)
    hired = {tag: lexi.value(var) for tag, var in built.hired.items()}
    joined = join(built, plans, hired) if plans and status == Status.OPTIMAL else None
    if joined is None and plans and status == Status.OPTIMAL:
        fewer = [fewer_teachers(plan, deadline.left() / (8 * len(plans)), config) for plan in plans]
        joined = join(built, fewer, hired)
    if joined is not None:
        return _level(lexi.accept_value("seats", expr, joined, bound, 0.0), bound, maximise=False)
    if status == Status.UNKNOWN:
        bound = 0
    for plan in plans:  # every slot of the week's plan needs at least the slot's own fewest seats: a valid cut
        slot_seats = [var for s, seats in built.enrolment.items()
                      if is_new_room(s) and built.instance.session_by_id[s].slot == plan.slot for var in seats]
        if slot_seats and plan.bound > 0:
            built.solver.Add(total(slot_seats) >= plan.bound, f"slot_seats_{plan.slot[0]}_{plan.slot[1]}")
    turns = from_week(built, lexi.values or [], Deadline.after(deadline.left() / 8), config, hired)
    start = join(built, turns, hired) if turns else None
    if start is not None:
        lexi.hint(start)
    result = lexi.optimise("seats", expr, maximise=False, seconds=WEEK_SEARCH_SHARE * deadline.left())
    found = result.status in (Status.OPTIMAL, Status.FEASIBLE)
    if start is not None and (not found or result.value > _value_at(expr, start)):
        lexi.results.remove(result)
        result = lexi.accept_value("seats", expr, start, max(bound, result.bound), result.seconds)
    if result.status not in (Status.OPTIMAL, Status.FEASIBLE):
        return None
    bound = max(bound, result.bound)
    if bound < result.value:  # each slot of the week's plan at its fewest seats with the teachers it has there
        polished = from_week(built, lexi.values or [], Deadline.after(deadline.left() / 3), config, hired)
        values = join(built, polished, hired) if polished else None
        if values is not None and _value_at(expr, values) < result.value:
            lexi.results.remove(result)
            result = lexi.accept_value("seats", expr, values, bound, result.seconds)
    logger.info("advice seats: slots and week bound %s, plan %s", bound, result.value)
    if bound < result.value:
        bound = max(bound, priced_bound(built, deadline, config, upper=result.value,
                                        most_hired=caps["most_hired"], most_qualified=caps["most_qualified"]))
        logger.info("advice seats: priced bound %s", bound)
    return _level(result, bound, maximise=False)


def _value_at(expr: Expr, values: list[float]) -> int:
    return int(sum(c * values[var.index()] for var, c in expr.GetCoeffs().items() if hasattr(var, "index")) + 0.5)


def _share(deadline: Deadline, parts: int) -> float:
    return deadline.left() / max(1, parts)


def _level(result: LevelResult, bound: int, *, maximise: bool) -> AdviceLevel:
    proven = result.value >= bound if maximise else result.value <= bound
    return AdviceLevel(result.name, result.value, result.value if proven else bound,
                       Status.OPTIMAL if proven else Status.FEASIBLE, result.seconds)


def _covered_by_last_period(lexi: LexicographicSolver, built: AllocationModel) -> dict[Slot, int]:
    """Weighted covered pupil-days by (day, last period the pupil needs that day)."""
    weights = built.instance.priority_weights
    counts: dict[Slot, int] = defaultdict(int)
    for (k, _, level), var in built.covered.items():
        day_class = built.classes[k]
        counts[(day_class.day, day_class.periods[-1])] += weights[level] * lexi.value(var)
    return counts


def _items(instance: Instance, built: AllocationModel, lexi: LexicographicSolver,
           covered_now: dict[Slot, int]) -> tuple[AdviceItem, ...]:
    covered_after = _covered_by_last_period(lexi, built)
    items = []
    for day in instance.weekdays:
        for period in instance.periods:
            slot = (day, period.id)
            merged: dict[str, int] = defaultdict(int)
            for (group, tag), var in built.hired_leads.items():
                if (group[0], group[1]) == slot and lexi.value(var):
                    merged[tag] += lexi.value(var)
            seats = sum(lexi.value(v) for s, vs in built.enrolment.items()
                        if is_new_room(s) and built.instance.session_by_id[s].slot == slot for v in vs)
            gained = covered_after.get(slot, 0) - covered_now.get(slot, 0)
            if merged or seats or gained:
                items.append(AdviceItem(day, period.id, dict(sorted(merged.items())), seats, gained))
    return tuple(items)


def advice_to_json(advice: Advice) -> dict[str, object]:
    return dataclasses.asdict(advice) | {"extra_teachers": advice.extra_teachers, "extra_seats": advice.extra_seats,
                                         "gained": advice.gained}
