"""Level 3's bound on a school whose teachers' weeks bind: each day alone, its teachers' sessions priced.

The week's model is five days' models tied together by a few rows: each teacher's weekly cap, their largest load,
and what a level holds over the whole week. Give each such row `r` a price `y_r`; for every plan `x` of the week,

    points(x)  <=  sum over days d of  max over plans x_d of day d alone of (points_d - sum_r y_r a_rd) x_d
                   + sum_r y_r b_r

where `b_r` is the end of row `r` its price leans on (the upper end for a positive price, the lower for a
negative one; a row whose price leans on an open end is not priced). That is the Lagrangian bound, and any
prices give one. At the prices of the week's linear relaxation the days solved as linear programs add up to the
relaxation's optimum; solved with whole teachers and pupils each day's maximum is lower, and so is the bound. A
day's proven bound (not only its optimum) is enough, and a day not searched counts its linear program.

On the crowded 3,000-pupil school the days took 46 CPU-seconds in all to prove, and brought level 3's bound from
23,290 to 23,276; on `crowded(2000, 1)` 8 CPU-seconds, 16,204 to 16,189 (`docs/benchmarks.md`). A run with two
workers searches them on its second core while the days' plans are searched on the first (`DayPrices.start`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Self

from ortools.linear_solver import linear_solver_pb2, pywraplp

from scheduler.deadline import Deadline
from scheduler.lexicographic import MIN_LEVEL_SECONDS, limit_time, solver_from_proto, tune_scip

OPEN = 1e30
"""A row's end beyond this is open (a backend's infinity)."""

MARGIN = 0.01
"""Added to the days' sum before it is rounded down to a whole bound: a backend's tolerance never costs a point."""

DAY_GAP = 1e-4
"""A day's search ends within this share of its bound (SCIP's default): the bound is what counts. Searched to a gap
of 0, the days of `crowded(3000, 0)` took 50 CPU-seconds instead of 32 (the week's coverage held, not each
day's), for a bound 6 points lower."""

CANCEL_POLL_SECONDS = 0.02


def stop_solving(thread: threading.Thread | None, interrupt: Callable[[], None]) -> None:
    """Interrupt the solve on `thread` until the thread has ended (within a few hundredths of a second): a backend
    forgets an interruption that comes before its solve begins, so it is repeated every `CANCEL_POLL_SECONDS`."""
    while thread is not None and thread.is_alive():
        interrupt()
        thread.join(CANCEL_POLL_SECONDS)


class SolvesOnAThread:
    """Solves run one after another on a thread of its own (`start` runs `run`), all stopped by `cancel`: the
    solve under way is interrupted and none begins after it."""

    THREAD_NAME = "solves"

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.solver: pywraplp.Solver | None = None
        self.cancelled = False
        self.lock = threading.Lock()

    def start(self) -> Self:
        self.thread = threading.Thread(target=self.run, name=self.THREAD_NAME, daemon=True)
        self.thread.start()
        return self

    def run(self) -> None:
        raise NotImplementedError

    def solve(self, solver: pywraplp.Solver, parameters: pywraplp.MPSolverParameters | None = None) -> int | None:
        """`solver.Solve`, interruptible by `cancel`; None when cancelled before it began."""
        with self.lock:
            if self.cancelled:
                return None
            self.solver = solver
        code = solver.Solve() if parameters is None else solver.Solve(parameters)
        with self.lock:
            self.solver = None
        return int(code)

    def cancel(self) -> None:
        """Stop the thread, and wait until it has."""
        with self.lock:
            self.cancelled = True
        stop_solving(self.thread, self._interrupt)

    def _interrupt(self) -> None:
        with self.lock:
            if self.solver is not None:
                self.solver.InterruptSolve()


@dataclass
class PricedDays:
    """The week's model cut into its days' own models, their objectives priced."""

    constant: float
    """The priced rows' ends times their prices, and the week's own variables at their best end."""
    days: dict[int, linear_solver_pb2.MPModelProto]
    """Each day's variables and rows, every variable continuous (whole ones listed in `integers`)."""
    integers: dict[int, list[int]]
    """Each day's whole variables, by index in its own model."""


def priced_days(model: linear_solver_pb2.MPModelProto, integers: Sequence[int], days_of: Sequence[int | None],
                prices: Sequence[float]) -> PricedDays | None:
    """Cut `model` (maximised; `days_of` its variables' days, None for the week's own, `integers` its whole
    variables) into days, pricing every row that spans days at `prices` (one per row). None when a variable of
    the week's own has an open end its price leans on (no bound)."""
    if not model.maximize:
        raise ValueError("the days are priced for a maximised level")
    objective = [variable.objective_coefficient for variable in model.variable]
    constant = model.objective_offset
    own: dict[int, list[int]] = {}
    for r, row in enumerate(model.constraint):
        spanned = {days_of[i] for i in row.var_index}
        if not spanned:
            continue
        if len(spanned) == 1 and None not in spanned:
            own.setdefault(next(iter(spanned)), []).append(r)
            continue
        price = prices[r]
        end = row.upper_bound if price > 0 else row.lower_bound
        if price == 0 or abs(end) >= OPEN:
            continue  # not priced: the row is dropped, which only loosens the bound
        constant += price * end
        for i, coefficient in zip(row.var_index, row.coefficient, strict=True):
            objective[i] -= price * coefficient
    whole = set(integers)
    days: dict[int, linear_solver_pb2.MPModelProto] = {}
    day_integers: dict[int, list[int]] = {}
    index: list[int] = [-1] * len(model.variable)
    for i, day in enumerate(days_of):
        variable = model.variable[i]
        if day is None:
            if objective[i]:
                ends = (variable.lower_bound, variable.upper_bound)
                if any(abs(end) >= OPEN for end in ends):
                    return None
                constant += max(objective[i] * end for end in ends)
            continue
        if day not in days:
            days[day] = linear_solver_pb2.MPModelProto(maximize=True)
            day_integers[day] = []
        sub = days[day]
        index[i] = len(sub.variable)
        if i in whole:
            day_integers[day].append(index[i])
        sub.variable.add(lower_bound=variable.lower_bound, upper_bound=variable.upper_bound,
                         objective_coefficient=objective[i], branching_priority=variable.branching_priority)
    for day, rows in own.items():
        sub = days[day]
        for r in rows:
            row = model.constraint[r]
            sub.constraint.add(lower_bound=row.lower_bound, upper_bound=row.upper_bound,
                               var_index=[index[i] for i in row.var_index], coefficient=row.coefficient)
    return PricedDays(constant, days, day_integers)


class DayPrices(SolvesOnAThread):
    """The Lagrangian bound of the `PricedDays` that `cut` makes, computed on a thread of its own (`start`, then
    `bound`): the week cut into days (in Python, so the thread holds the interpreter's lock for that part only),
    each day's linear program (a bound at once), then each day with whole variables, in even shares of the time
    left."""

    THREAD_NAME = "day-prices"

    def __init__(self, cut: Callable[[], PricedDays | None], deadline: Deadline, seed: int = 0) -> None:
        super().__init__()
        self.cut = cut
        self.priced: PricedDays | None = None
        self.deadline = deadline
        self.seed = seed
        self.linear: dict[int, float] = {}
        self.whole: dict[int, float] = {}
        """Each day's proven bound with whole variables, where its search gave one."""
        self.searched = 0

    def run(self) -> None:
        priced = self.priced = self.cut()
        if priced is None:
            return
        days = sorted(priced.days)
        for day in days:
            value = self._solve(priced.days[day], "GLOP", self.deadline.left())
            if value is None:
                return
            self.linear[day] = value
        for i, day in enumerate(days):
            model = priced.days[day]
            for index in priced.integers[day]:
                model.variable[index].is_integer = True
            value = self._solve(model, "SCIP", self.deadline.left() / (len(days) - i))
            if value is not None:
                self.whole[day] = value
            self.searched += 1

    def _solve(self, model: linear_solver_pb2.MPModelProto, backend: str, seconds: float) -> float | None:
        """A day's maximum (its proven bound when the search ends early); None when there is none in time."""
        if seconds < MIN_LEVEL_SECONDS:
            return None
        solver = solver_from_proto(model, backend)
        if solver is None:
            return None
        if backend == "SCIP":
            tune_scip(solver, self.seed)
        limit_time(solver, seconds)
        parameters = pywraplp.MPSolverParameters()
        parameters.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, DAY_GAP)
        code = self.solve(solver, parameters)
        if code is None:
            return None
        if backend == "GLOP":
            return solver.Objective().Value() if code == pywraplp.Solver.OPTIMAL else None
        if code not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            return None
        bound = solver.Objective().BestBound()
        return bound if math.isfinite(bound) else None

    def bound(self) -> int | None:
        """The bound so far, rounded down (the thread is stopped first); None until every day's linear program
        is solved."""
        self.cancel()
        if self.priced is None or len(self.linear) < len(self.priced.days):
            return None
        total = self.priced.constant + sum(min(linear, self.whole.get(day, linear))
                                           for day, linear in self.linear.items())
        return math.floor(total + MARGIN)
