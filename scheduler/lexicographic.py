"""One model, several objectives in strict order: each level is optimised holding the ones before it.

`LexicographicSolver` runs the levels on one `AllocationModel`; `transfer` carries a solution from one model to
another over the same day classes, so a finer or a restricted model starts where the last one stopped.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ortools.linear_solver import linear_solver_pb2, pywraplp

from scheduler.domain import Status
from scheduler.groups import DayClass
from scheduler.model import MAXIMISED, AllocationModel, Expr, Var

logger = logging.getLogger("scheduler.solve")  # the name log settings already route, from before the split

ProgressCallback = Callable[[str, dict[str, Any]], None]
"""Called with a stage name (`coverage`, `stability`, `preference`, `max_load`, `staffing`, `done`) and details."""


class SolveCancelled(Exception):
    """Raised when the caller's `should_stop` asked the solver to give up."""


BACKENDS = ("SCIP", "HIGHS")


@dataclass(frozen=True)
class SolverConfig:
    time_limit: float = 60.0
    """Wall-clock seconds for the whole solve: grouping, building, every level, extraction and reasons (one
    `scheduler.deadline.Deadline`; level 1 alone always gets a short minimum, see `scheduler.solve`)."""
    workers: int = 2
    """Threads the MIP backend may use (SCIP runs single-threaded; HiGHS uses them)."""
    seed: int = 0
    """Drives the MIP's randomisation, and the lottery among interchangeable pupils when the instance names no
    `lottery_seed` of its own."""
    backend: str = "SCIP"
    """The MIP backend, one of `BACKENDS`."""
    coverage_share: float = 0.8
    """Share of the time limit that level 1 may use before the later levels get the rest."""
    later_levels_limit: float | None = None
    """At most this many seconds for the levels after coverage and stability, counted from when those are done
    (None: whatever the time limit leaves). A city batch sets it: the bureau's figures need coverage, and a school
    that finds coverage proven early then finishes early instead of spending its whole limit on preferences."""
    log: bool = False
    """Let the backend write its own log."""
    should_stop: Callable[[], bool] | None = field(default=None, compare=False)


SCIP_PARAMETERS = "branching/relpscost/maxreliable = 1\n"
"""With the staffing branched on first (`scheduler.model.STAFFING_PRIORITY`), a pseudo-cost counts as reliable
after one strong branching instead of SCIP's five, so fewer of a short search's seconds go to strong branching: on
the city's sampled schools (3 CPU-seconds each) 167 of 190 had coverage proven instead of 163 (`docs/benchmarks.md`)."""


def tune_scip(solver: pywraplp.Solver, seed: int, *more: str) -> bool:
    """SCIP's parameters for one search: its randomisation shifted by `seed` (two searches of one model with other
    seeds walk other trees), `SCIP_PARAMETERS`, then `more` (a later line overrides an earlier one). False, with a
    warning in the log, when SCIP refuses them (a name another SCIP build does not know): the search then runs
    with SCIP's own settings, slower but sound, rather than failing a school's run. The tests check that this
    build takes every set the searches use."""
    text = f"randomization/randomseedshift = {seed}\n{SCIP_PARAMETERS}{''.join(more)}"
    if solver.SetSolverSpecificParametersAsString(text):
        return True
    logger.warning("SCIP refused the parameters %r; searching with its own settings", text)
    return False


def limit_time(solver: pywraplp.Solver, seconds: float, at_least_ms: int = 1) -> None:
    """The backend's time limit, in whole milliseconds and never below `at_least_ms`: OR-Tools reads 0 as no
    limit at all."""
    solver.SetTimeLimit(max(at_least_ms, int(1000 * seconds)))


def solver_from_proto(model: linear_solver_pb2.MPModelProto, backend: str) -> pywraplp.Solver | None:
    """A new solver of `backend` holding `model` (a copy exported with `ExportModelToProto`, changed or not), so a
    search can run beside the model's own solver without touching it; None when the backend is missing or refuses
    the model."""
    solver = pywraplp.Solver.CreateSolver(backend)
    if solver is None or solver.LoadModelFromProto(model):
        return None
    return solver


WATCH_SECONDS = 0.05
"""How often a search asks whether it is `enough` (see `LexicographicSolver.optimise`)."""
STOP_POLLS = 5
"""The caller's `should_stop` (a database read in the web app) is asked every this many watches."""

MIN_LEVEL_SECONDS = 0.05
"""A level offered less time than this is not started: it could not even read its model in."""


@dataclass
class LevelResult:
    name: str
    status: str
    value: int
    bound: int
    seconds: float
    skipped: bool = False
    """The deadline left the level no time: it was not solved, and reports the plan's value (see `solve`)."""


class LexicographicSolver:
    """Runs the levels one after another on one model, each holding the ones before it at the value found."""

    def __init__(self, built: AllocationModel, config: SolverConfig, started: float,
                 progress: ProgressCallback | None) -> None:
        self.built, self.config, self.started, self.progress = built, config, started, progress
        self.results: list[LevelResult] = []
        self.values: list[float] | None = None
        solver = built.solver
        if config.backend == "HIGHS":
            solver.SetNumThreads(max(1, config.workers))
        if config.backend == "SCIP":  # SCIP stays single-threaded: its concurrent mode crashes on teardown
            tune_scip(solver, config.seed)
        if config.log:
            solver.EnableOutput()
        self.params = pywraplp.MPSolverParameters()
        self.params.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, 0.0)

    def hint_from(self, source: LexicographicSolver) -> None:
        """Start from another model's solution over the same day classes (grouped alike or not)."""
        if source.values is not None:
            known = transfer(source, source.built, self.built)
            self.built.hint(list(known), list(known.values()))

    def hint(self, values: list[float] | None) -> None:
        """Start from a solution of a model built the same way (same variables in the same order)."""
        if values is not None:
            self.built.hint(self.built.variables(), values)

    @property
    def have_solution(self) -> bool:
        return self.values is not None

    def skip(self, name: str) -> LevelResult:
        """Record a level the deadline left no time for; it holds nothing and counts as not solved."""
        result = LevelResult(name, Status.UNKNOWN, 0, 0, 0.0, skipped=True)
        logger.info("level %s: skipped, the deadline has passed", name)
        self.results.append(result)
        if self.progress is not None:
            self.progress(name, {"value": 0, "bound": 0, "status": result.status, "skipped": True,
                                 "elapsed": round(time.monotonic() - self.started, 2)})
        return result

    def optimise(self, name: str, expr: Expr, *, maximise: bool, seconds: float,
                 enough: Callable[[], bool] | None = None) -> LevelResult:
        """Optimise one level within `seconds`; with less than `MIN_LEVEL_SECONDS` the level is skipped. The
        search is interrupted, and reports the plan and bound it has, once `enough()` is true (asked every
        `WATCH_SECONDS`: a plan found elsewhere is proven the best)."""
        if seconds < MIN_LEVEL_SECONDS:
            return self.skip(name)
        solver = self.built.solver
        if maximise:
            solver.Maximize(expr)
        else:
            solver.Minimize(expr)
        limit_time(solver, seconds, at_least_ms=50)
        began = time.monotonic()
        code = self._solve_watching_for_stop(solver, enough)
        seconds_used = time.monotonic() - began
        if code in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE) and not trustworthy(
                solver, self.built.variables()):
            logger.warning("level %s: the backend's answer breaks the model; treated as no solution", name)
            code = pywraplp.Solver.NOT_SOLVED
        if code in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            variables = self.built.variables()
            self.values = self.built.whole_counts([v.solution_value() for v in variables])
            value = round(value_at(expr, self.values))
            raw_bound = solver.Objective().BestBound()
            # A search stopped before its first bound reports an infinite one: the variables' bounds give one.
            trivial = trivial_bound(expr, maximise)
            raw_bound = min(raw_bound, trivial) if maximise else max(raw_bound, trivial)
            bound = whole_bound(raw_bound, maximise)
            proven = code == pywraplp.Solver.OPTIMAL or (value >= bound if maximise else value <= bound)
            status = Status.OPTIMAL if proven else Status.FEASIBLE
            if proven:
                bound = value
            self.built.hint(variables, self.values)
            if maximise:
                solver.Add(expr >= value - 0.5, hold_row(name))
            else:
                solver.Add(expr <= value + 0.5, hold_row(name))
        else:
            status = Status.INFEASIBLE if code == pywraplp.Solver.INFEASIBLE else Status.UNKNOWN
            value = bound = 0
        result = LevelResult(name, status, value, bound, round(seconds_used, 3))
        logger.info("level %s: %s value=%s bound=%s in %.2fs", name, status, value, bound, seconds_used)
        self.results.append(result)
        if self.progress is not None:
            self.progress(name, {"value": value, "bound": bound, "status": status,
                                 "elapsed": round(time.monotonic() - self.started, 2)})
        return result

    def staffing_of(self, values: list[float] | dict[Var, int]) -> dict[int, int]:
        """A plan's staffing in this model: which sessions run, and with how many teachers (a value by variable
        index of `built.teachers` and `built.runs`). `values` is a point of this model, or a plan by variable
        (`transfer`'s)."""
        variables = [*self.built.teachers.values(), *self.built.runs.values()]
        if isinstance(values, dict):
            by_index = {var.index(): value for var, value in values.items()}
            return {var.index(): round(by_index.get(var.index(), 0)) for var in variables}
        return {var.index(): round(values[var.index()]) for var in variables}

    def within_staffing(self, name: str, staffing: dict[int, int], seconds: float) -> LevelResult:
        """Optimise level `name` with `staffing` held (`staffing_of`): only the seating is left to choose, a
        search far smaller than the whole model's. The result's bound is that of the held search only. The held
        rows are released afterwards; the level's own hold row, which its plan meets in the whole model, stays."""
        built = self.built
        variables = built.variables()
        held = [built.row([(variables[index], 1)], value, value, f"held_{variables[index].name()}")
                for index, value in staffing.items()]
        try:
            return self.optimise(name, built.level(name), maximise=name in MAXIMISED, seconds=seconds)
        finally:
            infinity = built.solver.infinity()
            for row in held:
                row.SetBounds(-infinity, infinity)

    def again_within_staffing(self, result: LevelResult, seconds: float) -> LevelResult:
        """`result`, the level just optimised and not proven, searched again within its plan's staffing (a
        short search of the whole model often ends at its start). `result` takes the better value; its bound
        stays the whole model's."""
        if result.status != Status.FEASIBLE or self.values is None or seconds < MIN_LEVEL_SECONDS:
            return result
        began = time.monotonic()
        again = self.within_staffing(result.name, self.staffing_of(self.values), seconds)
        self.results.remove(again)
        logger.info("level %s within the plan's staffing: %s -> %s", result.name, result.value,
                    max(result.value, again.value))
        result.value = max(result.value, again.value)
        result.seconds = round(result.seconds + time.monotonic() - began, 3)
        if result.value >= result.bound:
            result.status, result.bound = Status.OPTIMAL, result.value
        return result

    def within_staffing_first(self, name: str, staffing: dict[int, int], seconds: float) -> LevelResult:
        """Level `name` searched within `staffing` (the start's), then the whole model from that plan for what
        is left of `seconds`: on a model too big for its time to get past its start, the seating of the start's
        staffing is most of what the level can gain. The result is the whole search's (value and bound); when it
        finds nothing in time, the held search's plan against the level's trivial bound."""
        began = time.monotonic()
        held = self.within_staffing(name, staffing, seconds)
        self.results.remove(held)
        whole = self.optimise(name, self.built.level(name), maximise=name in MAXIMISED,
                              seconds=seconds - (time.monotonic() - began))
        whole.seconds = round(time.monotonic() - began, 3)
        if whole.status in (Status.OPTIMAL, Status.FEASIBLE) or held.status not in (Status.OPTIMAL, Status.FEASIBLE):
            return whole
        bound = self.trivial_bound(name)
        result = LevelResult(name, Status.OPTIMAL if held.value == bound else Status.FEASIBLE, held.value, bound,
                             whole.seconds)
        self.results[self.results.index(whole)] = result
        return result

    def seated_within_staffing(self, result: LevelResult) -> LevelResult:
        """`result`, level 3 just searched and not proven, with its plan's pupils seated again by preference within
        the plan's staffing (`AllocationModel.seating_within_staffing`: a flow, no search) when that scores more:
        a search stopped by its time leaves pupils it could still have moved."""
        if result.name != "preference" or result.status != Status.FEASIBLE or self.values is None:
            return result
        return self.take_better(result, self.built.seating_within_staffing(self.values))

    def take_better(self, result: LevelResult, values: list[float]) -> LevelResult:
        """`values`, a plan of this model found outside the search (a flow), takes the place of `result`'s plan
        when it scores better, or when the search found none; the level is then held at its value. Returns
        `result`, updated."""
        maximise = result.name in MAXIMISED
        expr = self.built.level(result.name)
        value = round(value_at(expr, values))
        found = result.status in (Status.OPTIMAL, Status.FEASIBLE)
        if found and (value <= result.value if maximise else value >= result.value):
            return result
        logger.info("level %s: a plan seated outside the search scores %s (the search: %s)", result.name, value,
                    result.value if found else "none")
        self.values = list(values)
        self.built.hint(self.built.variables(), self.values)
        self.built.solver.Add(expr >= value - 0.5 if maximise else expr <= value + 0.5, hold_row(result.name))
        if not found:  # a search that found nothing, or was skipped: the plan is the level's answer now
            result.bound, result.skipped = self.trivial_bound(result.name), False
        result.value = value
        proven = value >= result.bound if maximise else value <= result.bound
        result.status = Status.OPTIMAL if proven else Status.FEASIBLE
        if proven:
            result.bound = value
        return result

    def trivial_bound(self, name: str) -> int:
        """Level `name`'s bound that needs no search: every variable at whichever of its bounds helps most."""
        maximise = name in MAXIMISED
        return whole_bound(trivial_bound(self.built.level(name), maximise), maximise)

    def accept(self, name: str, values: list[float], bound: int, seconds: float) -> LevelResult:
        """Take a plan found outside this model (`values` by variable index) as the level's answer: hinted,
        held, and proven when it reaches `bound`."""
        return self.accept_value(name, self.built.level(name), values, bound, seconds, maximise=name in MAXIMISED)

    def accept_value(self, name: str, expr: Expr, values: list[float], bound: int, seconds: float, *,
                     maximise: bool = False) -> LevelResult:
        """`accept` for any linear expression `expr` (a level of the caller's own)."""
        solver = self.built.solver
        value = round(value_at(expr, values))
        self.values = list(values)
        self.built.hint(self.built.variables(), self.values)
        solver.Add(expr >= value - 0.5 if maximise else expr <= value + 0.5, hold_row(name))
        proven = value >= bound if maximise else value <= bound
        status = Status.OPTIMAL if proven else Status.FEASIBLE
        result = LevelResult(name, status, value, value if proven else bound, round(seconds, 3))
        logger.info("level %s: %s value=%s bound=%s in %.2fs (a plan found outside the search)", name, status, value,
                    bound, seconds)
        self.results.append(result)
        if self.progress is not None:
            self.progress(name, {"value": value, "bound": result.bound, "status": status,
                                 "elapsed": round(time.monotonic() - self.started, 2)})
        return result

    def _solve_watching_for_stop(self, solver: pywraplp.Solver, enough: Callable[[], bool] | None = None) -> int:
        return solve_watching(solver, self.params, self.config.should_stop, enough)

    def value(self, var: Var) -> int:
        assert self.values is not None, "no level has a solution"
        return int(round(self.values[var.index()]))


def solve_watching(solver: pywraplp.Solver, params: pywraplp.MPSolverParameters,
                   should_stop: Callable[[], bool] | None, enough: Callable[[], bool] | None = None) -> int:
    """`solver.Solve(params)`, interrupted once `enough()` is true (asked every `WATCH_SECONDS`; the backend then
    reports what it has), or when the caller's `should_stop()` (asked every `STOP_POLLS` watches) is: that raises
    `SolveCancelled`."""
    if should_stop is None and enough is None:
        return int(solver.Solve(params))
    if should_stop is not None and should_stop():
        raise SolveCancelled("stopped before solving")
    done = threading.Event()
    stopped = threading.Event()

    def watch() -> None:
        polls = 0
        while not done.wait(WATCH_SECONDS):
            polls += 1
            if should_stop is not None and polls % STOP_POLLS == 0 and should_stop():
                stopped.set()
                solver.InterruptSolve()
                return
            if enough is not None and enough():
                while not done.wait(WATCH_SECONDS):  # an interruption before the solve begins is forgotten
                    solver.InterruptSolve()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        code = int(solver.Solve(params))
    finally:
        done.set()
        watcher.join()
    if stopped.is_set():
        raise SolveCancelled("stopped while solving")
    return code


def trustworthy(solver: pywraplp.Solver, variables: list[Var] | None = None) -> bool:
    """A time-limited backend may hand back a point that is not a solution: check every row and integer.
    `variables` are the solver's own, when the caller keeps them (`AllocationModel.variables`)."""
    if not solver.VerifySolution(1e-6, False):
        return False
    return all(abs(v.solution_value() - round(v.solution_value())) < 1e-6
               for v in (solver.variables() if variables is None else variables) if v.integer())


def hold_row(name: str) -> str:
    """The name of the row that holds level `name` at the value found."""
    return f"hold_{name}"


def value_at(expr: Expr, values: list[float]) -> float:
    """The value of a linear expression of a model at a point of it (`values` by variable index)."""
    if isinstance(expr, int | float):
        return float(expr)
    return float(sum(coefficient * (values[var.index()] if isinstance(var, pywraplp.Variable) else 1.0)
                     for var, coefficient in expr.GetCoeffs().items()))


def trivial_bound(expr: Expr, maximise: bool) -> float:
    """The best value `expr` could take with every variable at whichever of its bounds helps most."""
    if isinstance(expr, int | float):  # an empty sum: a level with nothing to choose
        return float(expr)
    best = 0.0
    for var, coefficient in expr.GetCoeffs().items():
        if isinstance(var, pywraplp.Variable):
            best += coefficient * (var.ub() if (coefficient > 0) == maximise else var.lb())
        else:  # the constant term
            best += coefficient
    return best


def whole_bound(bound: float, maximise: bool) -> int:
    """A level's bound as a whole number: its values are whole, so a maximum rounds down and a minimum up (within
    the backend's tolerance)."""
    return math.floor(bound + 1e-6) if maximise else math.ceil(bound - 1e-6)


class Solved(Protocol):
    """Anything that holds a solution of a model: `value(var)` is the variable's whole value."""

    def value(self, var: Var) -> int: ...


def transfer(source: Solved, src: AllocationModel, dst: AllocationModel) -> dict[Var, int]:
    """A complete solution of `dst` from one of `src` over the same day classes: seats, staffing and class totals
    carry over; covered and seated pupils are spread over `dst`'s preference groups; liked seats start at zero."""
    values: dict[Var, int] = {}
    for mapping in ("seats", "teachers", "runs", "leads"):
        src_vars, dst_vars = getattr(src, mapping), getattr(dst, mapping)
        for key, var in dst_vars.items():
            values[var] = source.value(src_vars[key])
    values[dst.max_load] = source.value(src.max_load)
    covered: dict[tuple[int, int], int] = defaultdict(int)
    for (k, _, level), var in src.covered.items():
        covered[(k, level)] += source.value(var)
    seated: dict[tuple[int, str], int] = defaultdict(int)
    for (k, _, period), var in src.seated.items():
        seated[(k, period)] += source.value(var)
    for k, day_class in enumerate(dst.classes):
        mine: dict[int, int] = defaultdict(int)
        for u, group in enumerate(day_class.groups.values()):
            for level, pupils in group.pupils_by_priority.items():
                n = min(len(pupils), covered[(k, level)])
                covered[(k, level)] -= n
                values[dst.covered[(k, u, level)]] = n
                mine[u] += n
        for period in day_class.periods:
            spare = seated[(k, period)] - sum(mine.values())
            for u, group in enumerate(day_class.groups.values()):
                extra = min(spare, group.size - mine[u])
                spare -= extra
                values[dst.seated[(k, u, period)]] = mine[u] + extra
        _greedy_liked(dst, k, day_class, values)
    return values


def point_of(built: AllocationModel, values: dict[Var, int]) -> list[float]:
    """A complete solution by variable (`transfer`'s) as a point of `built`, by variable index."""
    point = [0.0] * built.solver.NumVariables()
    for var, value in values.items():
        point[var.index()] = value
    return point


def _greedy_liked(built: AllocationModel, k: int, day_class: DayClass, values: dict[Var, int]) -> None:
    """Liked seats for a starting point: seated pupils take free seats of their best-scored activities first."""
    for period, sessions in day_class.eligible.items():
        free: dict[str, int] = defaultdict(int)
        for session in sessions:
            free[session.activity] += values[built.seats[(k, session.id)]]
        for u, group in enumerate(day_class.groups.values()):
            room = values[built.seated[(k, u, period)]]
            for activity, _score in sorted(group.scores, key=lambda item: -item[1]):
                var = built.liked.get((k, u, period, activity))
                if var is None:
                    continue
                n = min(room, free[activity])
                values[var] = n
                room -= n
                free[activity] -= n


def hold(built: AllocationModel, held: dict[str, int]) -> None:
    """Keep every level already decided at its value in a freshly built model."""
    for name, value in held.items():
        expr = built.level(name)
        if name in MAXIMISED:
            built.solver.Add(expr >= value - 0.5, hold_row(name))
        else:
            built.solver.Add(expr <= value + 0.5, hold_row(name))
