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
The loop ends at the first day search its share of the time cuts short (`CutShort`): on the tight schools of
400–500 pupils such searches ran the rows to their deadline without lowering the bound, and the week's search had
a second and a half less to find plans.

Those searches also leave plans of each day. With the rows the relaxation is often the best plan's value already,
and what is left is to find a plan that reaches it; SCIP's own search then spends a second or more on it on a
school of 150–250 pupils. `DayRows.join` looks among the days' plans first: a week whose every day is staffed as
one of them (the same sessions run, with as many teachers) and that covers as much as the bound, a small search
in a copy of the week's model. When there is one, level 1 is proven without the week's search.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ortools.linear_solver import linear_solver_pb2, pywraplp

from scheduler.daywise import relaxation_point
from scheduler.deadline import Deadline, OutOfTime
from scheduler.lexicographic import (
    MIN_LEVEL_SECONDS,
    limit_time,
    solver_from_proto,
    trustworthy,
    tune_scip,
    value_at,
)
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


Staffing = tuple[tuple[int, int], ...]
"""A day plan's staffing: (teachers, runs) of each of the day's sessions, in `DayPlans.sessions` order."""


@dataclass
class DayPlans:
    """The staffings of one day's plans found by the rows' searches, and of the best plan of the week known."""

    sessions: list[str]
    plans: list[Staffing] = field(default_factory=list)

    def keep(self, model: AllocationModel, values: Sequence[float]) -> None:
        """Keep the staffing of `values` (a point of `model`, by variable index), once."""
        staffing = _staffing(model, values, self.sessions)
        if staffing not in self.plans:
            self.plans.append(staffing)


def _staffing(model: AllocationModel, values: Sequence[float], sessions: list[str]) -> Staffing:
    return tuple((round(values[model.teachers[s].index()]) if s in model.teachers else 0,
                  round(values[model.runs[s].index()]) if s in model.runs else 0) for s in sessions)


JOIN_SHARE = 0.25
JOIN_SECONDS = 0.5
"""`DayRows.join` gets this share of the week's search time left after the rows, and never more than
`JOIN_SECONDS`. On 68 small city schools with rows (three seeds each, a batch's 6 s), 69 of 179 joins reached the
bound, all within 0.5 s; most joins that cannot reach it find so in under 0.1 s (`docs/benchmarks.md`)."""


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
    plans: list[DayPlans] = field(default_factory=list)
    """Each day's plans, for `join`."""
    joined: int | None = None
    """The coverage of the plan `join` found (None: not joined, or no plan found)."""
    join_seconds: float = 0.0

    def join(self, week: AllocationModel, deadline: Deadline, *, at_least: int, seed: int = 0) -> list[float] | None:
        """A plan of `week` covering `at_least` (a bound: so the best plan there is) whose every day is staffed as
        one of that day's plans, searched within `deadline` in a copy of the model (`week` itself is left as it
        is). Returns its values by the week's variable index, whole (`AllocationModel.whole_counts`), or None:
        there is no such plan, or none was found in time."""
        began = time.monotonic()
        try:
            return self._join(week, deadline, at_least, seed)
        finally:
            self.join_seconds = time.monotonic() - began

    def _join(self, week: AllocationModel, deadline: Deadline, at_least: int, seed: int) -> list[float] | None:
        if not self.plans or deadline.left() < MIN_LEVEL_SECONDS:
            return None
        objective = week.coverage_level()
        proto = linear_solver_pb2.MPModelProto()
        week.solver.ExportModelToProto(proto)
        solver = solver_from_proto(proto, week.backend)
        if solver is None:
            return None
        variables = solver.variables()
        enough = solver.Constraint(at_least - 0.5, solver.infinity())
        for var, coefficient in objective.GetCoeffs().items():
            enough.SetCoefficient(variables[var.index()], coefficient)
        solver.Objective().Clear()  # any plan that covers enough will do
        for day in self.plans:
            choose = [solver.BoolVar(f"day_plan_{day.sessions[0] if day.sessions else ''}_{j}")
                      for j in range(len(day.plans))]
            one = solver.Constraint(1, 1)
            for var in choose:
                one.SetCoefficient(var, 1)
            for i, session_id in enumerate(day.sessions):
                for part, by_session in enumerate((week.teachers, week.runs)):
                    if session_id not in by_session:
                        continue
                    same = solver.Constraint(0, 0)
                    same.SetCoefficient(variables[by_session[session_id].index()], 1)
                    for var, plan in zip(choose, day.plans, strict=True):
                        if plan[i][part]:
                            same.SetCoefficient(var, -plan[i][part])
        if week.backend == "SCIP":
            tune_scip(solver, seed)
        limit_time(solver, deadline.left())
        if solver.Solve() not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE) or not trustworthy(solver):
            return None
        values = week.whole_counts([var.solution_value() for var in variables])
        self.joined = round(value_at(objective, values))
        return values


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
        self.plans = DayPlans([s for s in week.teachers if instance.session_by_id[s].day == day])
        self.week_teachers: list[Var] = [week.teachers[s] for s in self.plans.sessions]
        self.found: dict[int, int] = {0: 0}
        """The most coverage a plan found so far reaches with that many teachers (no teacher covers no one)."""
        self.prices: set[float] = set()
        self.alone = math.inf
        """The day's best alone (its bound at the price 0)."""
        self.start: list[float] | None = None
        self.cut_short = False
        """The last search ended before it proved its plan the day's best at its price."""

    def row(self, price: float, deadline: Deadline) -> float | None:
        """`φ(price)`: the day's best `coverage - price * teachers`, bounded by its search within `deadline`;
        None when the search ended without a plan."""
        self.prices.add(price)
        solver = self.model.solver
        solver.Maximize(self.coverage - price * self.teachers)
        if self.backend == "SCIP":
            tune_scip(solver, self.seed, DAY_SEARCH_PARAMETERS)
        if self.start is not None:
            self.model.hint(self.model.variables(), self.start)
        limit_time(solver, deadline.left())
        code = solver.Solve()
        self.cut_short = code != pywraplp.Solver.OPTIMAL
        if code not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            return None
        bound = float(solver.Objective().BestBound())
        if not math.isfinite(bound):
            return None
        self.start = [var.solution_value() for var in self.model.variables()]
        self.plans.keep(self.model, self.start)
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


class CutShort(Exception):
    """A day's search ended before it proved its plan the best at its price: its row holds (its bound is valid),
    but the rows end there. Where the days cannot be priced within their share of the time, the rows went on to
    their deadline without lowering the week's bound on most such schools, and the week's search, left with less
    time, found worse plans (`docs/benchmarks.md`)."""


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
        if day.cut_short:  # the days are too hard to price in the time: the week's search gets the rest
            raise CutShort(f"day {day.day}'s search at the price {price} was cut short")

    reached = None if plan is None else round(value_at(objective, plan))
    try:
        for day in sorted({c.day for c in week.classes}):
            day_value = _Day(week, day, backend, seed, deadline)
            if plan is not None:
                teachers = round(sum(plan[var.index()] for var in day_value.week_teachers))
                coverage = round(sum(weight * plan[var.index()] for var, weight in day_value.week_coverage))
                day_value.found[teachers] = max(day_value.found.get(teachers, 0), coverage)
                day_value.plans.keep(week, plan)
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
    except (OutOfTime, CutShort):  # the rows added so far hold, and so does the last bound (rows only lower it)
        pass
    return DayRows(rows, bound, first_bound, searches, time.monotonic() - began, [day.plans for day in days])
