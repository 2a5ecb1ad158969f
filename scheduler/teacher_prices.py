"""Level 1's bound where each teacher's week binds on its own: every teacher's weekly cap priced (Dantzig–Wolfe).

On a school of 400–900 pupils the week's linear relaxation is the days' own best added up: no teacher's week binds
it, so the rows of `scheduler.day_cuts` (one price for every teacher) cannot cut it. Yet the days' best plans cannot
all be had in one week: each wants whole teachers, and some teachers more often than their caps allow. Give each
teacher `t` a price `π_t >= 0` for a session; for every plan of the week,

    coverage  <=  sum over days d of  max over plans of day d alone of (coverage_d - sum_t π_t sessions_td)
                  + sum_t π_t cap_t

(the Lagrangian bound; a day's proven search bound is enough). The prices come from a master linear program over
the day plans found so far (columns: a day's coverage and each teacher's sessions that day; rows: one plan a day,
each teacher's cap), whose duals price the next round's day searches, smoothed towards the prices of the best
bound so far (Wentges' smoothing), until the bound meets the master's value. Every plan a day's search found on the
way (SCIP keeps them, up to `POOL_PLANS`) joins the master, not only its best, and the master is kept from round
to round: on ten city schools that took the rounds to convergence from 222 to 187 and their CPU-seconds from 61.5
to 48.6, with the same bounds (`docs/benchmarks.md`).

It runs on a thread of its own (`start`, then `result`), on the second core while the week's search runs on the
first: SCIP releases Python's lock while it solves. On the city's unproven schools of 250–840 pupils it brought the
bound from the days' own best to within 1 of the master's value in 2–68 CPU-s; see `docs/benchmarks.md`.

Once the prices settle, the thread's second core would idle while the week's search goes on, unable to learn the
bound (SCIP takes no bound from outside, and a search it stopped cannot go on). Given `then_search`, the thread
searches a copy of the week (taken as the prices start) capped at the bound: it ends as soon as it finds a plan
worth the bound, or proves the optimum below it, and `found` then holds that plan; level 1's search, which asks for
it (`scheduler.coverage`), stops there. On KM-0065 of the city benchmark (60 s, two workers) the level ended proven
after 11 s instead of 32 s, and the levels after it were all proven in the time that freed.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ortools.linear_solver import linear_solver_pb2, pywraplp

from scheduler.day_cuts import DAY_SEARCH_PARAMETERS
from scheduler.day_prices import SolvesOnAThread
from scheduler.deadline import Deadline, OutOfTime
from scheduler.lexicographic import MIN_LEVEL_SECONDS, limit_time, solver_from_proto, trustworthy, tune_scip
from scheduler.model import AllocationModel, total

SMOOTHING = 0.5
"""The next prices are this share of the best bound's prices plus the rest of the master's (Wentges): the master's
own prices jump from one extreme to another while it has few plans."""

DAY_SECONDS = 1.0
"""At most this long for one day's search at a price: its bound counts, so a search cut short still helps."""

MARGIN = 0.01
"""Added before the bound is rounded down: a backend's tolerance never costs a pupil-day."""

POOL_PLANS = 10
"""Besides its best, at most this many of the other plans a day's search found join the master (SCIP keeps up to
100; reading each costs a pass over the day's teachers in Python)."""


@dataclass(frozen=True)
class Column:
    """One plan of one day: its coverage and how many sessions each teacher leads in it.

    A teacher's sessions may be a fraction: the teachers' flow is continuous in the model (whole where the
    search's vertex is), and a plan found on the way may share a session between teachers. Rounded, such a plan
    would claim less of a teacher's week than it uses, and the master could promise more than any bound proves."""

    coverage: int
    sessions: tuple[tuple[str, float], ...]


@dataclass
class TeacherPricesResult:
    bound: int | None
    """The best Lagrangian bound, rounded down (None: no complete round in time)."""
    master: float | None
    """The master's last value: no prices can bring the bound below it."""
    rounds: int
    searches: int
    seconds: float
    plans: int = 0
    """Day plans in the master at the end (every day's, each counted once)."""
    plan_found: bool = False
    """The search after the prices settled proved the week's best plan (worth the bound, or less)."""
    plan_seconds: float = 0.0
    """That search's seconds (until it found one, or was stopped)."""


SESSION_DIGITS = 6
"""A teacher's sessions in a column are kept to this many decimals: the same plan found twice is one column."""


def _as_column(coverage: float, sessions: dict[str, float]) -> Column:
    return Column(round(coverage), tuple(sorted((t, round(count, SESSION_DIGITS)) for t, count in sessions.items()
                                                if count > 10 ** -SESSION_DIGITS)))


EMPTY = Column(0, ())
"""A day on which no one leads anything: in the master beside the plans found, so that it always has a plan."""


class _Day:
    """One day's own model, searched at the teachers' prices."""

    def __init__(self, week: AllocationModel, day: int, deadline: Deadline) -> None:
        self.model = AllocationModel(week.instance, [c for c in week.classes if c.day == day], deadline=deadline)
        self.coverage = self.model.coverage_level()
        self.leads = self.model.load
        """Each teacher's `leads` variables in the day's model."""
        self.start: list[float] | None = None


class _Master:
    """The master linear program, kept from round to round: one plan a day (each day's row starts with the plan
    that leads nothing, so the master always has one), each teacher's sessions within their cap."""

    def __init__(self, days: Iterable[int], caps: dict[str, int]) -> None:
        solver = pywraplp.Solver.CreateSolver("GLOP")
        assert solver is not None, "GLOP is part of OR-Tools"
        self.solver = solver
        self.caps = caps
        self.one_a_day = {day: solver.Constraint(1, 1) for day in days}
        self.teacher_rows: dict[str, pywraplp.Constraint] = {}
        solver.Objective().SetMaximization()
        for day in self.one_a_day:
            self.add(day, EMPTY)

    def add(self, day: int, column: Column) -> None:
        var = self.solver.NumVar(0, 1, "")
        self.one_a_day[day].SetCoefficient(var, 1)
        self.solver.Objective().SetCoefficient(var, column.coverage)
        for teacher_id, count in column.sessions:
            row = self.teacher_rows.get(teacher_id)
            if row is None:
                row = self.teacher_rows[teacher_id] = self.solver.Constraint(-self.solver.infinity(),
                                                                             self.caps.get(teacher_id, 0))
            row.SetCoefficient(var, count)

    def solve(self) -> tuple[float, dict[str, float]] | None:
        """The master's value and each teacher's price (its dual); None when GLOP does not end optimal."""
        if self.solver.Solve() != pywraplp.Solver.OPTIMAL:
            return None
        return (self.solver.Objective().Value(),
                {t: max(0.0, row.dual_value()) for t, row in self.teacher_rows.items()})


class TeacherPrices(SolvesOnAThread):
    """The bound of a week model (`week`, level 1, no hired teachers) with every teacher's weekly cap priced."""

    THREAD_NAME = "teacher-prices"

    def __init__(self, week: AllocationModel, deadline: Deadline, *, seed: int = 0,
                 plan: Sequence[float] | None = None, then_search: bool = False) -> None:
        if week.hire_sessions:
            raise ValueError("the prices are for the school's own teachers, not a model that hires")
        super().__init__()
        self.week = week
        self.deadline = deadline
        self.seed = seed
        self.start_plan = None if plan is None else list(plan)
        self.week_copy: linear_solver_pb2.MPModelProto | None = None
        """The week's model as the prices start, for the search after they settle (`then_search`)."""
        self.coverage_terms: dict[int, float] = {}
        if then_search:
            self.week_copy = linear_solver_pb2.MPModelProto()
            week.solver.ExportModelToProto(self.week_copy)
            self.coverage_terms = {var.index(): coefficient
                                   for var, coefficient in week.coverage_level().GetCoeffs().items()}
        self.found: tuple[int, list[float]] | None = None
        """The week's best plan and its coverage (by the week's variable index, whole), once the search after the
        prices proved one (read by other threads)."""
        self.caps = {teacher_id: int(row.ub()) for teacher_id, row in week.week_caps.items()}
        self.columns: dict[int, dict[Column, None]] = {day: {} for day in sorted({c.day for c in week.classes})}
        """Each day's plans in the master, in the order found (each once)."""
        self.master_lp = _Master(self.columns, self.caps)
        if plan is not None:
            self._add_week_plan(plan)
        self.best = math.inf
        self.master: float | None = None
        self.rounds = self.searches = 0
        self.began = time.monotonic()
        self.seconds = 0.0
        """The rounds' seconds, until the prices settle."""
        self.plan_seconds = 0.0
        """The search's seconds after they settle."""

    def _add_week_plan(self, plan: Sequence[float]) -> None:
        """The days of a plan of the week are plans of the days: with them the master has a plan from the start."""
        weights = self.week.instance.priority_weights
        coverage: dict[int, float] = dict.fromkeys(self.columns, 0.0)
        sessions: dict[int, dict[str, float]] = {day: defaultdict(float) for day in self.columns}
        for (k, _, level), var in self.week.covered.items():
            coverage[self.week.classes[k].day] += weights[level] * plan[var.index()]
        for (teacher_id, group), var in self.week.leads.items():
            if group[0] in sessions:
                sessions[group[0]][teacher_id] += plan[var.index()]
        for day in self.columns:
            self._add(day, _as_column(coverage[day], sessions[day]))

    def _add(self, day: int, column: Column) -> None:
        if column not in self.columns[day]:
            self.columns[day][column] = None
            self.master_lp.add(day, column)

    def run(self) -> None:
        """Rounds of the master and the days' searches at its prices, until the bound meets the master's value
        (then, given `then_search`, a search of the week capped at it), the deadline, or `cancel`."""
        try:
            days = {day: _Day(self.week, day, self.deadline) for day in self.columns}
            prices: dict[str, float] = {}
            centre: dict[str, float] = {}
            while not self.cancelled:
                bound = self._round(days, prices)
                if bound is None:
                    return
                self.rounds += 1
                if bound < self.best:
                    self.best, centre = bound, prices
                master = self.master_lp.solve()
                if master is None:
                    return
                self.master, duals = master
                if math.floor(self.best + MARGIN) <= math.floor(self.master + MARGIN):
                    days.clear()  # the days' backends' memory goes before the week's search
                    self._best_plan_within(math.floor(self.best + MARGIN))
                    return
                prices = {t: SMOOTHING * centre.get(t, 0.0) + (1 - SMOOTHING) * duals.get(t, 0.0) for t in self.caps}
                prices = {t: price for t, price in prices.items() if price > 1e-9}
        except OutOfTime:  # the day models were not built in time: no bound
            return
        finally:
            self.seconds = time.monotonic() - self.began - self.plan_seconds

    def _round(self, days: dict[int, _Day], prices: dict[str, float]) -> float | None:
        """Every day searched at `prices`; the Lagrangian bound they give (None: a day ended without one)."""
        bound = sum(price * self.caps[t] for t, price in prices.items())
        for i, (day, searched) in enumerate(days.items()):
            seconds = min(DAY_SECONDS, self.deadline.left() / (len(days) - i))
            found = self._search(searched, prices, seconds)
            if found is None:
                return None
            value, columns = found
            bound += value
            for column in columns:
                self._add(day, column)
        return bound

    def _search(self, day: _Day, prices: dict[str, float], seconds: float) -> tuple[float, list[Column]] | None:
        """The day's search at `prices`: its proven bound, and every plan it found, the best first."""
        if seconds < MIN_LEVEL_SECONDS:
            return None
        solver = day.model.solver
        solver.Maximize(day.coverage - total([price * var for t, price in prices.items()
                                              for var in day.leads.get(t, [])]))
        tune_scip(solver, self.seed, DAY_SEARCH_PARAMETERS)
        if day.start is not None:
            day.model.hint(day.model.variables(), day.start)
        limit_time(solver, seconds)
        code = self.solve(solver)
        if code is None:
            return None
        self.searches += 1
        if self.cancelled or code not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            return None
        value = solver.Objective().BestBound()
        if not math.isfinite(value):
            return None
        day.start = [var.solution_value() for var in day.model.variables()]
        columns = [self._found(day)]
        while len(columns) <= POOL_PLANS and solver.NextSolution():  # other plans SCIP kept, each a plan of the day
            columns.append(self._found(day))
        return value, columns

    def _best_plan_within(self, bound: int) -> None:
        """The rest of the thread's time searches the week's copy for its best plan, capped at `bound`: it ends as
        soon as it finds a plan worth the bound, or proves a lower optimum (on some schools the bound is one above
        it). Either plan ends level 1. The week's own search goes on meanwhile on the first core, its tree kept (a
        search SCIP stopped cannot go on), and whichever proves a plan first ends the level."""
        if self.week_copy is None or self.cancelled or self.deadline.left() < MIN_LEVEL_SECONDS:
            return
        began = time.monotonic()
        try:
            self._search_week(bound)
        finally:
            self.plan_seconds = time.monotonic() - began

    def _search_week(self, bound: int) -> None:
        solver = solver_from_proto(self.week_copy, "SCIP")
        if solver is None:
            return
        variables = solver.variables()
        objective = solver.Objective()
        objective.Clear()
        capped = solver.Constraint(-solver.infinity(), bound)
        for index, coefficient in self.coverage_terms.items():
            capped.SetCoefficient(variables[index], coefficient)
            objective.SetCoefficient(variables[index], coefficient)
        objective.SetMaximization()
        # Another seed than the week's own search: the two should not walk the same tree.
        tune_scip(solver, self.seed + 1)
        if self.start_plan is not None:
            solver.SetHint(variables, self.start_plan)
        limit_time(solver, self.deadline.left())
        code = self.solve(solver)
        if self.cancelled or code != pywraplp.Solver.OPTIMAL or not trustworthy(solver, variables):
            return
        self.found = (round(solver.Objective().Value()),
                      self.week.whole_counts([var.solution_value() for var in variables]))

    @staticmethod
    def _found(day: _Day) -> Column:
        """The plan the day's solver holds now, as a column."""
        return _as_column(day.coverage.solution_value(),
                          {t: sum(var.solution_value() for var in leads) for t, leads in day.leads.items()})

    def result(self) -> TeacherPricesResult:
        """The bound so far (the thread is stopped first)."""
        self.cancel()
        bound = None if math.isinf(self.best) else math.floor(self.best + MARGIN)
        return TeacherPricesResult(bound, self.master, self.rounds, self.searches, round(self.seconds, 3),
                                   sum(len(found) for found in self.columns.values()), self.found is not None,
                                   round(self.plan_seconds, 3))
