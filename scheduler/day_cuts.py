"""Level 1's bound on a school whose teachers' weeks bind: what whole teachers are worth to one day.

The week's linear relaxation lets a session take a fraction of a teacher: a homework room whose pupils can only
partly be covered (their later periods are short of seats) takes just the share of a teacher those pupils need,
and the rest of that teacher goes to another day. On a small school short of teachers the search's bound then
stays a few pupil-days above the best plan for as long as it runs: each room's own rows are already its convex
hull, the fraction is in how whole teachers are spread over rooms and days.

A day alone knows what whole teachers are worth to it. For any price `λ >= 0` of one teacher-session,

    coverage of day d - λ * teachers leading on day d  <=  φ_d(λ)

where `φ_d(λ)` is the best the day alone can make of the same (its own model, whole teachers, every rule of the
day and each teacher's weekly cap): a plan of the week restricted to day d is a plan of day d. Every such row is
valid for every plan of the week, whatever `λ`, and a bound of the day's search (not only a proven optimum) is a
valid `φ`. Together the rows of all prices are the concave envelope of "best coverage of day d with T whole
teachers", so the week's relaxation with them leaves only the teachers' weeks fractional: on the city's small
schools that SCIP could not prove in 75 s, it falls to the best plan's value and the search proves it in a
second (`docs/benchmarks.md`).

The prices are chosen where the week's relaxation sits (a cutting-plane loop): each day's plans found so far give
points (teachers, coverage); the slope of their upper hull at the relaxation's teachers on that day is the next
price, whose search finds the day's best plan at that price, a new point on the envelope, and a row touching it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ortools.linear_solver import pywraplp

from scheduler.daywise import relaxation_point
from scheduler.deadline import Deadline, OutOfTime
from scheduler.lexicographic import MIN_LEVEL_SECONDS, SCIP_PARAMETERS, value_at
from scheduler.model import AllocationModel, Var, total

ROUNDS = 8
"""At most this many rounds of the week's relaxation, each adding a row for every day whose price changed."""

MIN_PROGRESS = 0.5
"""Two rounds in a row that lower the week's relaxation by less than this end the loop, and so does a relaxation
within this of the days' own best alone (the teachers' weeks do not bind it: on a crowded school the rows then do
not move it, and the search gets the time back)."""

DAY_SEARCH_PARAMETERS = "separating/maxrounds = 0\nseparating/maxroundsroot = 2\n"
"""A day's search at a price needs its bound, and SCIP's cutting planes cost more than the branching they save on
a day this small: without separation after two root rounds, the rows of six small city schools took 0.6–0.9
CPU-s instead of 0.7–2.7, with the same bounds (`docs/benchmarks.md`)."""

MARGIN = 1e-5
"""Added to a day's bound when its price is not whole: the row never cuts off a plan by a backend's rounding."""


@dataclass
class DayRows:
    rows: int
    """Rows added to the week's model."""
    bound: int | None
    """The week's relaxation with the rows, rounded down: a proven bound on level 1 (None: not solved in time)."""
    first_bound: int | None
    """The week's relaxation with only each day's best alone (price 0) as rows (None: not solved in time)."""
    searches: int
    seconds: float


class _Day:
    """One day's own model, and what its searches at the prices tried so far found."""

    def __init__(self, week: AllocationModel, day: int, backend: str, seed: int, deadline: Deadline) -> None:
        instance = week.instance
        weights = instance.priority_weights
        self.day = day
        self.model = AllocationModel(instance, [c for c in week.classes if c.day == day], backend=backend,
                                     deadline=deadline)
        self.backend = backend
        self.seed = seed
        self.coverage = self.model.coverage_level()
        self.teachers = total(list(self.model.teachers.values()))
        self.week_coverage: list[tuple[Var, float]] = [
            (var, weights[level]) for (k, _, level), var in week.covered.items() if week.classes[k].day == day]
        self.week_teachers: list[Var] = [
            var for session_id, var in week.teachers.items() if instance.session_by_id[session_id].day == day]
        self.found: dict[int, int] = {0: 0}
        """The most coverage a plan found so far reaches with that many teachers (no teacher covers no one)."""
        self.prices: set[float] = set()
        self.alone = math.inf
        """The day's best alone (its bound at the price 0)."""
        self.start: list[float] | None = None

    def row(self, price: float, deadline: Deadline) -> float | None:
        """`φ(price)`: the day's best `coverage - price * teachers`, bounded by its search within `deadline`;
        None when the search ended without a plan."""
        self.prices.add(price)
        solver = self.model.solver
        solver.Maximize(self.coverage - price * self.teachers)
        if self.backend == "SCIP":
            solver.SetSolverSpecificParametersAsString(f"randomization/randomseedshift = {self.seed}\n"
                                                       f"{SCIP_PARAMETERS}{DAY_SEARCH_PARAMETERS}")
        if self.start is not None:
            self.model.hint(solver.variables(), self.start)
        solver.SetTimeLimit(max(1, int(1000 * deadline.left())))
        if solver.Solve() not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            return None
        bound = float(solver.Objective().BestBound())
        if not math.isfinite(bound):
            return None
        self.start = [var.solution_value() for var in solver.variables()]
        teachers = round(sum(var.solution_value() for var in self.model.teachers.values()))
        coverage = round(self.coverage.solution_value())  # the day's coverage in the plan found
        self.found[teachers] = max(self.found.get(teachers, 0), coverage)
        if price == 0:
            self.alone = math.floor(bound + 1e-6)
        return math.floor(bound + 1e-6) if float(price).is_integer() else bound + MARGIN

    def price_at(self, teachers: float) -> float | None:
        """The slope of the upper hull of the plans found, where it passes `teachers` (None: beyond the last)."""
        hull: list[tuple[int, int]] = []
        for point in sorted(self.found.items()):
            while len(hull) >= 2 and ((hull[-1][1] - hull[-2][1]) * (point[0] - hull[-2][0])
                                      <= (point[1] - hull[-2][1]) * (hull[-1][0] - hull[-2][0])):
                hull.pop()
            hull.append(point)
        for (t0, c0), (t1, c1) in zip(hull, hull[1:], strict=False):
            if t0 <= teachers <= t1:
                return round(max(0.0, (c1 - c0) / (t1 - t0)), 4)
        return None


def add_day_value_rows(week: AllocationModel, deadline: Deadline, *, backend: str = "SCIP", seed: int = 0,
                       plan: list[float] | None = None) -> DayRows:
    """Add to `week` (a model without hired teachers) rows `coverage_d - λ teachers_d <= φ_d(λ)` at the prices
    the week's relaxation asks for, until it stops moving, `ROUNDS` rounds, `deadline`, or its bound comes down to
    the coverage of `plan` (the best plan of the week known, by variable index: nothing is left to prove). The
    plan's days are points of their envelopes too: the first prices are taken between them and the days' best."""
    began = time.monotonic()
    rows = searches = 0
    first_bound = bound = None
    if week.hire_sessions:
        raise ValueError("the rows hold for the school's own teachers, not a model that hires")
    days: list[_Day] = []
    objective = week.coverage_level()

    def add(day: _Day, price: float, share: int) -> None:
        """One search of `day` at `price`, in `1/share` of the time left, and its row."""
        nonlocal rows, searches
        if deadline.left() < MIN_LEVEL_SECONDS:
            raise OutOfTime("no time left for a day's search")
        searches += 1
        phi = day.row(price, Deadline.after(deadline.left() / share))
        if phi is not None:
            week.row([(var, weight) for var, weight in day.week_coverage]
                      + [(var, -price) for var in day.week_teachers], None, phi, f"day_value_{day.day}_{rows}")
            rows += 1

    reached = None if plan is None else round(value_at(objective, plan))
    try:
        for day in sorted({c.day for c in week.classes}):
            day_value = _Day(week, day, backend, seed, deadline)
            if plan is not None:
                teachers = round(sum(plan[var.index()] for var in day_value.week_teachers))
                coverage = round(sum(weight * plan[var.index()] for var, weight in day_value.week_coverage))
                day_value.found[teachers] = max(day_value.found.get(teachers, 0), coverage)
            days.append(day_value)
        for i, day_value in enumerate(days):  # the price 0: the day's best alone, the end of its envelope
            add(day_value, 0.0, len(days) - i)
        alone = sum(day_value.alone for day_value in days)
        last, idle = alone, 0
        for _ in range(ROUNDS):
            relaxed = relaxation_point(week, objective, deadline)
            if relaxed is None:
                break
            bound = relaxed.bound
            first_bound = bound if first_bound is None else first_bound
            idle = idle + 1 if relaxed.value > last - MIN_PROGRESS else 0
            if (reached is not None and bound <= reached) or idle == 2 or relaxed.value > alone - MIN_PROGRESS:
                break
            last = relaxed.value
            added = rows
            for i, day_value in enumerate(days):
                teachers = sum(relaxed.values[var.index()] for var in day_value.week_teachers)
                price = day_value.price_at(teachers)
                if price is not None and price not in day_value.prices:
                    add(day_value, price, len(days) - i)
            if rows == added:
                break
        else:
            relaxed = relaxation_point(week, objective, deadline)
            bound = relaxed.bound if relaxed is not None else bound
    except OutOfTime:  # the rows added so far hold, and so does the last bound (rows only lower it)
        pass
    return DayRows(rows, bound, first_bound, searches, time.monotonic() - began)
