"""Level 1 one day at a time: a proven bound and, most often, a plan that meets it, in a fraction of the time.

Days share nothing but the teachers' weekly caps (`max_sessions`). Without those caps the week falls apart into
five independent models a fifth of the size, which the MIP backend closes in well under a second each where the
whole week can leave it without any plan for many seconds (its root heuristics do not find the structure). Hence:

1. Solve each day's coverage alone, every teacher free to teach that day up to their weekly cap. Every plan of
   the week restricted to one day is a plan of that day, so the sum of the days' proven bounds bounds the week.
2. Put the days' plans together. Which teacher leads what across the week is a flow (teacher -> free slot ->
   staffing group, the weekly cap on the first arc); when its maximum meets the teachers the days need, the plans
   form one plan of the week, and it is optimal when it reaches the bound. When it falls short, each day first
   looks, among its best plans, for one that needs fewer teachers, and the flow is tried again.
3. Otherwise the teachers' weeks bind, and the free days' bound can be weak (on a small school short of
   teachers, a third above the best plan). The week's linear relaxation (GLOP, a few hundredths of a second on a
   city school) is then a second proven bound, and the lower one counts. When it is below the days' bound, no
   plan of the week reaches the days' bound, so step 2's search for days needing fewer teachers is skipped.
4. The days are solved again in turn, each with an even share of what the days before left of every teacher's
   cap: a plan of the week, not necessarily optimal, that the whole-week model starts from.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ortools.graph.python import max_flow
from ortools.linear_solver import linear_solver_pb2, pywraplp

from scheduler.day_prices import DayPrices, priced_days, stop_solving
from scheduler.deadline import Deadline, OutOfTime
from scheduler.domain import Instance, Status
from scheduler.groups import DayClass
from scheduler.lexicographic import (
    MIN_LEVEL_SECONDS,
    LevelResult,
    LexicographicSolver,
    SolverConfig,
    hold,
    hold_row,
    limit_time,
    logger,
    solve_watching,
    solver_from_proto,
    transfer,
    trivial_bound,
    trustworthy,
    tune_scip,
    value_at,
)
from scheduler.model import AllocationModel, Expr, StaffingGroup, Var, staffing_group


@dataclass
class DaywisePlan:
    """Coverage of the week from the days: `values` fill every variable of the week's model (by index)."""

    value: int
    bound: int
    """The best proven bound on the week's coverage: the free days' sum, or the week's relaxation when lower."""
    values: list[float] | None
    """None when the days' plans could not be joined into one week (the bound still holds)."""
    seconds: float
    days: dict[int, _Day] = field(default_factory=dict)
    """Each day's own plan, when they were joined."""
    joined_leads: dict[tuple[str, StaffingGroup], int] = field(default_factory=dict)
    """Who leads what across the week in the joined plan."""
    days_bound: int | None = None
    """The free days' summed bound (None: the same as `bound`)."""
    priced_bound: int | None = None
    """Level 3's bound from the days alone at the week's relaxation's prices (`scheduler.day_prices`), when they
    were searched."""
    split: bool = False
    """A plan of the week found by the week's search, split into its days (`split_week_plan`): each day's
    coverage is the plan's, not proven to be the day's best."""
    days_value: int | None = None
    """Level 3: the days' own plan's points, when the week's search near its relaxation then found a better plan
    (`value`, whose days are not kept)."""

    @property
    def proven(self) -> bool:
        return self.values is not None and self.value >= self.bound

    @property
    def proven_by_days(self) -> bool:
        """Proven against the free days' own bounds: every optimal week then covers each day exactly its best,
        which is what `preference_by_day` builds on (a proof by the week's relaxation says nothing per day)."""
        days_bound = self.bound if self.days_bound is None else self.days_bound
        return not self.split and self.values is not None and self.value >= days_bound


def split_week_plan(week: AllocationModel, values: list[float], deadline: Deadline) -> DaywisePlan | None:
    """Level 1's plan of `week` (by variable index; a model without hired teachers) as one plan per day, each
    in its own model, joined by the teachers' weekly flow: what `preference_by_day` starts from when the days
    did not prove level 1. None when the days' models are not built by `deadline`, or when the days' staffing
    needs do not join (a plan the backend gave back slightly fractional)."""
    began = time.monotonic()
    if week.hire_sessions:
        return None
    instance = week.instance
    solved: dict[int, _Day] = {}
    for day in sorted({c.day for c in week.classes}):
        keys = [k for k, c in enumerate(week.classes) if c.day == day]
        try:
            model = AllocationModel(instance, [week.classes[k] for k in keys], backend=week.backend,
                                    deadline=deadline)
        except OutOfTime:
            return None
        local = [0.0] * model.solver.NumVariables()
        for name in ("seats", "seated", "covered", "liked"):
            for key, var in getattr(model, name).items():
                local[var.index()] = values[getattr(week, name)[(keys[key[0]], *key[1:])].index()]
        for name in ("teachers", "runs", "leads"):
            for key, var in getattr(model, name).items():
                local[var.index()] = values[getattr(week, name)[key].index()]
        load: dict[str, float] = defaultdict(float)
        for (teacher_id, _), var in model.leads.items():
            load[teacher_id] += local[var.index()]
        local[model.max_load.index()] = math.ceil(max(load.values(), default=0) - 1e-6)
        score = round(value_at(model.coverage_level(), local))
        solved[day] = _Day(model, keys, local, score, score)
    leads = _weekly_staffing(week, solved)
    if leads is None:
        return None
    value = sum(day.score for day in solved.values())
    return DaywisePlan(value, value, values, time.monotonic() - began, solved, leads, split=True)


DAYWISE_MIN_VARIABLES = 2_000
"""Level 1 goes day by day first only on a coarse model of at least this many variables (a school of about 900
pupils or more). On a smaller one SCIP, branching on the staffing first, settles the week sooner than the days
find a plan they can join when the teachers' weeks bind: on 190 sampled city schools at 3 CPU-seconds each, the
summed gap to the bounds fell from 621 to 426 pupil-days, with as many proven; on 24 small schools given 6 s (what-if
advice's first step), 14 were proven against 12, mostly sooner (`docs/benchmarks.md`)."""


def days_first(week: AllocationModel) -> bool:
    """Whether level 1 of `week` is solved day by day before the week's search: the one rule for the allocation
    (`scheduler.solve`) and what-if advice (`scheduler.whatif`)."""
    return bool(week.solver.NumVariables() >= DAYWISE_MIN_VARIABLES)


def coverage_by_day(week: AllocationModel, deadline: Deadline, backend: str = "SCIP") -> DaywisePlan | None:
    """Level 1 of `week` (a model without hired teachers) solved day by day; None when a day found no plan
    in its share of the time. The bound is proven even when the days' plans cannot be joined."""
    began = time.monotonic()
    instance = week.instance
    days = sorted({c.day for c in week.classes})
    if not days or week.hire_sessions:
        return None
    solved: dict[int, _Day] = {}
    for i, day in enumerate(days):
        result = _solve_day(instance, week.classes, day, deadline.left() / (len(days) - i), backend)
        if result is None:
            return None
        solved[day] = result
    days_bound = bound = sum(day.bound for day in solved.values())
    leads = _weekly_staffing(week, solved)
    if leads is None:
        relaxed = relaxation_bound(week, week.coverage_level(), deadline)
        bound = bound if relaxed is None else min(bound, relaxed)
    if leads is None and bound == days_bound:
        # The week may still reach the days' bound: among each day's best plans, look for ones needing fewer
        # teachers, and try the weekly flow again.
        for i, day in enumerate(days):
            seconds = min(deadline.left() / (2 * (len(days) - i)),
                          max(FEWER_TEACHERS_FLOOR, FEWER_TEACHERS_FACTOR * solved[day].seconds))
            solved[day] = _fewer_teachers(solved[day], seconds, backend)
        leads = _weekly_staffing(week, solved)
    if leads is None:
        solved = _in_turn(week, days, deadline, backend)
        leads = _weekly_staffing(week, solved) if solved else None
    if leads is None:
        return DaywisePlan(0, bound, None, time.monotonic() - began, days_bound=days_bound)
    values = _week_values(week, solved, leads)
    value = sum(day.score for day in solved.values())
    return DaywisePlan(value, bound, values, time.monotonic() - began, solved, leads, days_bound)


RELAXATION_MARGIN = 0.01
"""Added to the relaxation's optimum before rounding it down to a whole bound: a backend's tolerance never turns
an optimum of 4,022 into a bound of 4,021 (a value within 0.01 below a whole number only weakens the bound)."""


def relaxation_bound(week: AllocationModel, objective: Expr, deadline: Deadline) -> int | None:
    """A proven bound on `objective` (maximised, whole-valued) over `week`: its linear relaxation, solved by GLOP
    on a copy of the model. None when the relaxation is not solved to optimality before `deadline`."""
    relaxed = relaxation_point(week, objective, deadline)
    return None if relaxed is None else relaxed.bound


@dataclass
class _Relaxed:
    bound: int
    value: float
    """The relaxation's optimum itself (`bound` is it rounded down)."""
    values: list[float]
    """The relaxation's optimum, by the week's variable index."""
    duals: list[float] = field(default_factory=list)
    """The price of each row of `model` at the optimum."""
    model: linear_solver_pb2.MPModelProto | None = None
    """The copy of the model that was relaxed (every variable continuous)."""
    integers: list[int] = field(default_factory=list)
    """The variables (by index) that are whole in the model copied."""


DUAL_SIMPLEX = "use_dual_simplex: true"
"""GLOP's dual simplex closes the week's level-3 relaxation of a crowded school (58,000 variables) in about half
the time of its default primal simplex (7.9 against 15.3 CPU-seconds)."""


def relaxation_point(week: AllocationModel, objective: Expr, deadline: Deadline,
                     parameters: str = "") -> _Relaxed | None:
    """`relaxation_bound` with the relaxation's optimal point; `parameters` are GLOP's, in its text format."""
    relaxation = _Relaxation.of(week, objective, deadline.left(), parameters)
    return None if relaxation is None else relaxation.solve()


class _Relaxation:
    """A model's linear relaxation, copied into GLOP: solved here (`solve`) or on another core while this thread
    goes on (`start`, then `result` or `cancel`). GLOP releases Python's lock while it solves, and the copy
    shares nothing with the model, which may be searched meanwhile."""

    def __init__(self, glop: pywraplp.Solver, model: linear_solver_pb2.MPModelProto, integers: list[int]) -> None:
        self.glop = glop
        self.model = model
        """The copy GLOP solves, every variable continuous."""
        self.integers = integers
        """The variables (by index) that are whole in the model copied."""
        self.code: int | None = None
        self.thread: threading.Thread | None = None
        self.cancelled = False

    @classmethod
    def of(cls, week: AllocationModel, objective: Expr, seconds: float, parameters: str = "",
           days_held: Mapping[int, int] | None = None) -> _Relaxation | None:
        """None when there is no time or GLOP cannot take the model. With `days_held` (level 1 of each day, when
        the days proved it: every plan that covers as much then covers each day exactly that), the copy holds
        each day's coverage instead of the week's: the same plans, a tighter relaxation (on `crowded(3000, 0)`,
        23,290.7 against 23,294.8), and the days' prices on their own rows, where `day_prices` wants them."""
        if seconds <= 0:
            return None
        week.solver.Maximize(objective)
        proto = linear_solver_pb2.MPModelProto()
        week.solver.ExportModelToProto(proto)
        integers = [i for i, variable in enumerate(proto.variable) if variable.is_integer]
        for variable in proto.variable:
            variable.is_integer = False
        if days_held is not None:
            _hold_days(week, proto, days_held)
        glop = solver_from_proto(proto, "GLOP")
        if glop is None:
            return None
        if parameters and not glop.SetSolverSpecificParametersAsString(parameters):
            raise ValueError(f"GLOP refused the parameters {parameters!r}")
        limit_time(glop, seconds)
        return cls(glop, proto, integers)

    def _run(self) -> None:
        if not self.cancelled:
            self.code = self.glop.Solve()

    def solve(self) -> _Relaxed | None:
        self._run()
        return self.result()

    def start(self) -> _Relaxation:
        self.thread = threading.Thread(target=self._run, name="relaxation", daemon=True)
        self.thread.start()
        return self

    def result(self) -> _Relaxed | None:
        """The optimum (waiting for it when it is solved on another core), or None when it was not reached."""
        if self.thread is not None:
            self.thread.join()
        if self.code != pywraplp.Solver.OPTIMAL:
            return None
        response = linear_solver_pb2.MPSolutionResponse()
        self.glop.FillSolutionResponseProto(response)
        value = response.objective_value
        return _Relaxed(int(math.floor(value + RELAXATION_MARGIN)), value, list(response.variable_value),
                        list(response.dual_value), self.model, self.integers)

    def cancel(self) -> None:
        """Stop a solve started on another core, and wait until it has (within a few hundredths of a second).
        GLOP forgets an interruption that comes before its solve begins, so it is repeated until the thread ends."""
        self.cancelled = True
        stop_solving(self.thread, self.glop.InterruptSolve)


def _hold_days(week: AllocationModel, model: linear_solver_pb2.MPModelProto, days_held: Mapping[int, int]) -> None:
    """In `model` (a copy of `week`), hold each day's coverage at `days_held` in place of the week's coverage."""
    weights = week.instance.priority_weights
    terms: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (k, _, level), var in week.covered.items():
        terms[week.classes[k].day].append((var.index(), weights[level]))
    for row in model.constraint:
        if row.name == hold_row("coverage"):
            row.lower_bound = -math.inf  # the days' rows add up to it
    for day, coverage in days_held.items():
        row = model.constraint.add(name=f"{hold_row('coverage')}_{day}", lower_bound=coverage, upper_bound=math.inf)
        row.var_index.extend(index for index, _ in terms[day])
        row.coefficient.extend(weight for _, weight in terms[day])


@dataclass
class _Day:
    model: AllocationModel
    keys: list[int]
    """The week's class index of each of this day's classes."""
    values: list[float]
    score: int
    """The day's value of the level solved last."""
    bound: int
    seconds: float = 0.0
    """How long the day's level took."""

    def value(self, var: Var) -> int:
        return int(round(self.values[var.index()]))


def preference_by_day(week: AllocationModel, coverage: DaywisePlan, deadline: Deadline,
                      config: SolverConfig) -> DaywisePlan | None:
    """Level 3 of `week` (grouped by preference, holding level 1) day by day, once level 1 was proven day by day;
    None otherwise.

    When the days' coverage adds up to their summed bound, every plan of the week that covers as much covers
    each day exactly its own best. So each day's model, holding its coverage, bounds the day's part of level 3
    (every teacher free up to their weekly cap that day), and the days' plans joined by the weekly flow are the
    week's optimum when they reach those bounds.

    On a school short of teachers the free days together ask for more sessions than the teachers' weeks hold,
    and do not join. Their sum is then a weak bound, and the week's linear relaxation (`relaxation_point`) is solved
    instead: its optimum is the bound, and its sessions per teacher and day say how to share each teacher's week
    among the days. Once the free days so far are seen not to fit, the later ones are not solved at all when the
    relaxation is. With a second core (`config.workers`), the relaxation is solved there from the start, while the
    free days are searched here. The days are then solved again in turn (`_in_turn_within_caps`), each within
    what the days before it left of every teacher's cap, less what is promised to the days after it: a plan of
    the week that always joins. Time allowing, each day is then searched again with the whole week's teachers,
    the other days' sessions kept open (`_again_within_the_week`), and the whole week is searched near its
    relaxation from the days' plan (`near_the_week_relaxation`): what one day at a time cannot reach.
    """
    exact = coverage.proven_by_days
    if not (exact or coverage.split) or not coverage.days or week.hire_sessions:
        return None
    began = time.monotonic()
    days = sorted(coverage.days)
    solved: dict[int, _Day] = {}
    free = deadline.earlier(RETRY_SHARE * deadline.left())  # the rest is for the days in turn, if they come
    split = False
    relaxed: _Relaxed | None = None
    # With a second core, the week's relaxation is solved there while the free days are searched here: it is
    # ready, or nearly, when they are seen not to fit, and stopped when they fit.
    held = {day: plan.score for day, plan in coverage.days.items()} if exact else None
    ahead = _relaxation_of_week(week, deadline, held) if config.workers > 1 else None
    if ahead is not None:
        ahead.start()
    try:
        for i, day in enumerate(days):
            if not split and i and _weekly_staffing(week, {**coverage.days, **solved}) is None:
                # The free days so far, with level 1's plans of the others, already ask more of some teacher than
                # the week holds: the relaxation bounds and shares the week instead of the free days.
                split = True
                relaxed = _relaxed_week(week, deadline, began, held, ahead)
                if relaxed is not None:
                    break
            result = _preference_of_day(week, week.instance, coverage.days[day], free.left() / (len(days) - i),
                                        config)
            if result is None:
                return None
            solved[day] = result
        days_bound = sum(day.bound for day in solved.values()) if exact and len(solved) == len(days) else None
        leads = None if relaxed is not None else _weekly_staffing(week, solved)
        if leads is not None:
            value = sum(day.score for day in solved.values())
            if days_bound is None:  # days held at a plan's coverage: only the week's relaxation bounds them
                relaxed = _relaxed_week(week, deadline, began, held, ahead)
            return DaywisePlan(value, _bound(week, relaxed, days_bound), _week_values(week, solved, leads),
                               time.monotonic() - began, solved, leads)
        if relaxed is None and not split:
            relaxed = _relaxed_week(week, deadline, began, held, ahead)
    finally:
        if ahead is not None:
            ahead.cancel()
    if relaxed is not None:
        wanted = _loads_by_day((key, relaxed.values[var.index()]) for key, var in week.leads.items())
    else:
        wanted = _loads_by_day((key, day.value(var)) for day in solved.values() for key, var in day.model.leads.items())
    bound = _bound(week, relaxed, days_bound)
    if relaxed is None:
        solved.clear()  # the free days' models are not needed any more: their backends' memory goes first
    # With a second core, the days alone at the relaxation's prices bound the week more tightly meanwhile.
    prices = _day_prices(week, relaxed, deadline, config) if config.workers > 1 else None
    value, values, days_value = 0, None, None
    try:
        solved = _in_turn_within_caps(week, coverage, wanted, deadline, config, solved,
                                      None if relaxed is None else relaxed.values)
        if solved:
            solved = _again_within_the_week(week, coverage, solved, deadline.earlier(NEAR_SHARE * deadline.left())
                                            if relaxed is not None else deadline, config)
        leads = _weekly_staffing(week, solved) if solved else None
        if leads is not None:
            value = sum(day.score for day in solved.values())
            values = _week_values(week, solved, leads)
            if relaxed is not None:
                near_value, found = near_the_week_relaxation(week, relaxed, value, values, deadline, config)
                if found is not values:  # a plan of the whole week, not of its days
                    days_value, value, values, solved, leads = value, near_value, found, {}, {}
    finally:
        priced = None if prices is None else prices.bound()
    if priced is not None:
        logger.info("level 3: the days at the relaxation's prices bound it at %s (%s of %s days searched)",
                    priced, prices.searched if prices else 0, len(days))
        bound = min(bound, priced)
    if values is None:
        return DaywisePlan(0, int(bound), None, time.monotonic() - began, days_bound=days_bound,
                           priced_bound=priced)
    return DaywisePlan(value, int(bound), values, time.monotonic() - began, solved, leads or {}, days_bound,
                       priced_bound=priced, days_value=days_value)


def _day_prices(week: AllocationModel, relaxed: _Relaxed | None, deadline: Deadline,
                config: SolverConfig) -> DayPrices | None:
    """The days alone at the week's relaxation's prices (`scheduler.day_prices`), started on another core; None
    without a relaxation."""
    if relaxed is None or relaxed.model is None:
        return None
    model, days = relaxed.model, week.variable_days()
    return DayPrices(lambda: priced_days(model, relaxed.integers, days, relaxed.duals), deadline, config.seed).start()


def _bound(week: AllocationModel, relaxed: _Relaxed | None, days_bound: int | None) -> int:
    """Level 3's bound: the lower of the week's relaxation and the free days' sum, or every pupil in their first
    choice when there is neither."""
    bounds = [bound for bound in (None if relaxed is None else relaxed.bound, days_bound) if bound is not None]
    return min(bounds, default=math.floor(trivial_bound(week.preference_level(), True)))


def _relaxation_of_week(week: AllocationModel, deadline: Deadline,
                         days_held: Mapping[int, int] | None) -> _Relaxation | None:
    """The week's level-3 relaxation within `RELAXATION_SHARE` of the time left, copied into GLOP (holding each
    day's coverage at `days_held`, see `_Relaxation.of`); None when that share is below what a model of its size
    takes."""
    seconds = RELAXATION_SHARE * deadline.left()
    if seconds < RELAXATION_SECONDS_PER_VARIABLE * week.solver.NumVariables():
        logger.info("level 3: no time for the week's relaxation (%.2fs)", seconds)
        return None
    return _Relaxation.of(week, week.preference_level(), seconds, DUAL_SIMPLEX, days_held)


def _relaxed_week(week: AllocationModel, deadline: Deadline, began: float, days_held: Mapping[int, int] | None,
                  ahead: _Relaxation | None = None) -> _Relaxed | None:
    """The week's level-3 relaxation: the one started `ahead` on another core, or else solved now (see
    `_relaxation_of_week`); None when it is not solved in time."""
    if ahead is None:
        ahead = _relaxation_of_week(week, deadline, days_held)
        relaxed = None if ahead is None else ahead.solve()
    else:
        relaxed = ahead.result()
    logger.info("level 3: the week's relaxation %s after %.2fs", "not solved" if relaxed is None
                else f"bounds it at {relaxed.bound}", time.monotonic() - began)
    return relaxed


RELAXATION_SHARE = 0.5
"""Share of the time left that the week's relaxation may take once the free days are seen not to join (on a
crowded 3,250-pupil school it needs about 10 CPU-seconds). GLOP's limit counts wall seconds: on a loaded machine
it may not end in time, and then it has cost up to that share and changes nothing."""
RELAXATION_SECONDS_PER_VARIABLE = 1.5e-4
"""The relaxation is not started with less time than this per variable of the week's model: the crowded school's
58,000 variables took 7.9–9.7 CPU-seconds, and copying the model alone costs a large part of a short run."""


RETRY_SHARE = 0.6
"""Share of level 3's day-by-day time kept for the week's relaxation and solving the days again within the
teachers' weeks, should the free days not fit them. A free day that takes longer to prove than its part of the rest
ends early: on `crowded(3000, 0)` day 2 spent 9 CPU-seconds closing its last 2 points (4,438 against 4,440), and
the days in turn then had under 2 s each. Where the free days join they are proven in about a second each."""


def _in_turn_within_caps(week: AllocationModel, coverage: DaywisePlan, wanted: dict[tuple[str, int], int],
                         deadline: Deadline, config: SolverConfig, free: dict[int, _Day],
                         relaxed: list[float] | None = None) -> dict[int, _Day]:
    """Each day's level 3 again, in turn, within a cap per teacher that keeps the week whole: what the days
    before it left, less what the days after it are promised. A later day is promised level 1's use of each
    teacher that day (so level 1's plan of every day always fits, and is each day's start and fallback) and a
    part of the teacher's spare sessions in proportion to how many more `wanted` gives that day (the week's
    relaxation, or else the free plan of the day); whatever a day leaves unused passes on to the days after it.
    A day whose free plan (in `free`) is proven and fits keeps that plan, optimal within the cap too: it fits
    when the teachers' flow staffs it and the days before it within the room the later days' promises leave
    (another teacher free in that slot may lead a session in place of one whose week is full). A day searched
    within its caps starts near a relaxation (`_near_the_relaxation`): the week's (`relaxed`, by variable index of
    `week`) when it was solved, else the day's own. Empty when a day cannot be solved."""
    instance = week.instance
    days = sorted(coverage.days)
    first = _loads_by_day(coverage.joined_leads.items())
    promised: dict[tuple[str, int], int] = {}
    for teacher in instance.teachers:
        spare = teacher.max_sessions - sum(first[(teacher.id, day)] for day in days)
        more = {day: max(0, wanted[(teacher.id, day)] - first[(teacher.id, day)]) for day in days}
        asked = sum(more.values())
        for day in days:
            extra = min(more[day], spare * more[day] // asked) if asked else 0
            promised[(teacher.id, day)] = first[(teacher.id, day)] + extra
    solved: dict[int, _Day] = {}
    for i, day in enumerate(days):
        later = days[i + 1:]
        room = {t.id: t.max_sessions - sum(promised[(t.id, d)] for d in later) for t in instance.teachers}
        result: _Day | None = free.get(day)
        if result is not None and (result.score < result.bound
                                   or _weekly_staffing(week, {**solved, day: result}, room) is None):
            result = None  # a free plan not proven (it may be level 1's start) is searched again within the caps
        if result is None:
            # The days solved so far were staffed within the room left when this day is promised its part too.
            before = _weekly_staffing(week, solved, {t: room[t] - promised[(t, day)] for t in room})
            assert before is not None, "every day is solved within what the days after it are promised"
            used: dict[str, int] = defaultdict(int)
            for (teacher_id, _), count in before.items():
                used[teacher_id] += count
            capped = instance.with_weekly_caps({t.id: room[t.id] - used[t.id] for t in instance.teachers})
            result = _preference_of_day(week, capped, coverage.days[day], deadline.left() / (len(days) - i), config,
                                        start_leads=coverage.joined_leads,
                                        relaxed=None if relaxed is None else (week, relaxed))
        if result is None:
            return {}
        solved[day] = result
    return solved


def _again_within_the_week(week: AllocationModel, coverage: DaywisePlan, solved: dict[int, _Day],
                           deadline: Deadline, config: SolverConfig) -> dict[int, _Day]:
    """Each day again, in turn, over the whole day and the whole week's teachers: the other days keep the
    sessions their plans open, staffed by whoever the teachers' weeks allow (`AllocationModel.staff_also`), and
    the day starts from its own plan. Never worse, and better where a day solved early was held back by promises
    to later days that they did not use, or by which teacher another day's session happened to get. Round after
    round while a round gains and time is left; a day is not searched again while the other days need what they
    needed at its last search, and is searched only when its part of the time left is at least what its last
    search took (it rarely gains with less, and level 4 has the rest).

    The days in turn each end at their box's optimum within caps that keep room for the days after them, so what
    level 3 misses on the crowded schools is in how the caps share the teachers' weeks. Searched within a fixed
    room per teacher (what one weekly flow of the other days left), `crowded(2000, 1)` stopped at 16,038 against a
    bound of 16,205: every day proven within its room. With the other days' sessions free to change teachers,
    the same 20 s took it to 16,126. Each search is the one near the day's own relaxation (`_near_the_relaxation`,
    whose relaxation now sees the other days' sessions too): searching the whole day after it gained nothing on
    two crowded schools, and the time went to more days (`docs/benchmarks.md`)."""
    instance = week.instance
    days = sorted(solved)
    searched: dict[int, dict[StaffingGroup, int]] = {}
    gained = True
    while gained:
        gained = False
        for i, day in enumerate(days):
            seconds = deadline.left() / (len(days) - i)
            if seconds < max(AGAIN_MIN_SECONDS, solved[day].seconds):
                continue
            others = _staffing_needs(instance, (plan for other, plan in solved.items() if other != day))
            others = {group: count for group, count in others.items() if count}
            if searched.get(day) == others:
                continue
            searched[day] = others
            leads = _weekly_staffing(week, solved)
            assert leads is not None, "the days in turn always join"
            result = _preference_of_day(week, instance, coverage.days[day], seconds, config, start_leads=leads,
                                        start_plan=solved[day], others=others)
            if result is not None and result.score > solved[day].score and \
                    _weekly_staffing(week, {**solved, day: result}) is not None:
                solved = {**solved, day: result}
                gained = True
    return solved


AGAIN_MIN_SECONDS = 0.5
"""A day is not searched again with less time than this: its model alone takes a good part of it to build."""


def near_the_week_relaxation(week: AllocationModel, relaxed: _Relaxed, value: int, start: list[float],
                              deadline: Deadline, config: SolverConfig) -> tuple[int, list[float]]:
    """The whole week searched near its relaxation from the joined days' plan `start` (worth `value`): every whole
    variable on which the plan and the relaxation agree is held where it is, and SCIP searches the rest of the week
    at once, every day and every teacher's week together, from the plan (RINS, at the scale of the week). Returns
    the better of that search's plan and `start`, with its points.

    The days' searches move one day at a time, and end where no single day gains (`_again_within_the_week`). On
    the crowded schools about four in five of the week's whole variables agree with the relaxation, and the
    rest is small enough for SCIP to search whole: on `crowded(3250, 0)`, 24,211 points after the days in turn
    became 24,439 in 7 s, against 24,283 after the days searched again (`docs/benchmarks.md`)."""
    seconds = deadline.left()
    if relaxed.model is None or seconds < NEAR_SECONDS_PER_VARIABLE * len(start):
        return value, start
    model = linear_solver_pb2.MPModelProto()
    model.CopyFrom(relaxed.model)
    held = 0
    for i in relaxed.integers:
        variable = model.variable[i]
        variable.is_integer = True
        if abs(start[i] - relaxed.values[i]) < 0.5:
            variable.lower_bound = variable.upper_bound = round(start[i])
            held += 1
    model.ClearField("solution_hint")
    model.solution_hint.var_index.extend(range(len(start)))
    model.solution_hint.var_value.extend(start)
    solver = solver_from_proto(model, "SCIP")
    if solver is None:
        return value, start
    tune_scip(solver, config.seed, NEAR_PARAMETERS)
    limit_time(solver, seconds)
    began = time.monotonic()
    code = solve_watching(solver, pywraplp.MPSolverParameters(), config.should_stop)
    variables = solver.variables()
    found = code in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE) and trustworthy(solver, variables)
    values = week.whole_counts([var.solution_value() for var in variables]) if found else start
    points = round(value_at(week.preference_level(), values))
    logger.info("level 3: the week searched near its relaxation, %s whole variables free of %s: %s points "
                "from %s in %.2fs", len(relaxed.integers) - held, len(relaxed.integers),
                points if found else "none", value, time.monotonic() - began)
    return (points, values) if points > value else (value, start)


NEAR_SECONDS_PER_VARIABLE = 4e-5
"""The week is not searched near its relaxation with less time than this per variable of its model: SCIP's root
alone takes about 3 s on the 58,000 variables of a crowded 3,000-pupil school's level 3, and 0.1 s on the 2,900
of a 424-pupil school's."""
NEAR_SHARE = 0.6
"""Share of the time left after the days in turn that the week's search near its relaxation gets; the days
searched again come first, with the rest."""
NEAR_PARAMETERS = "branching/relpscost/maxreliable = 0\nseparating/maxroundsroot = 3\n"
"""Pseudo-costs without strong branching, and three rounds of cuts at the root: the search needs plans, not a
bound (the relaxation and the days give it). On `crowded(3250, 0)` the first better plan came after 7 s instead of
15 s with SCIP's own settings."""


def _loads_by_day(leads: Iterable[tuple[tuple[str, StaffingGroup], float]]) -> dict[tuple[str, int], int]:
    """Sessions per teacher and day, from (teacher, staffing group) -> sessions."""
    load: dict[tuple[str, int], float] = defaultdict(float)
    for (teacher_id, group), count in leads:
        load[(teacher_id, group[0])] += count
    return defaultdict(int, {key: round(count) for key, count in load.items()})


def _preference_of_day(week: AllocationModel, instance: Instance, covered: _Day, seconds: float,
                       config: SolverConfig, *,
                       start_leads: dict[tuple[str, StaffingGroup], int] | None = None,
                       relaxed: tuple[AllocationModel, list[float]] | None = None,
                       start_plan: _Day | None = None,
                       others: dict[StaffingGroup, int] | None = None) -> _Day | None:
    """One day's level 3, holding the day's coverage, started from level 1's plan of the day with its pupils seated
    by preference within its staffing (with `start_leads`, who leads what in level 1's joined week, its teachers
    come from there; with `start_plan`, a plan of the same classes, from that plan). With `others` (staffing
    groups of the other days, and how many teachers each needs) the same teachers keep those staffed within their
    weeks too. With `start_leads` and either no `start_plan` (a day in turn within caps) or `others` (a day
    searched again within the week) the answer is the search near a relaxation, when it finds a plan; otherwise
    the whole day is searched. A search that finds nothing better in time answers with the start, against the
    bound of every pupil in their first choice; None only when the model could not even be built in time."""
    began = time.monotonic()
    try:
        model = AllocationModel(instance, [week.classes[k] for k in covered.keys], backend=config.backend,
                                deadline=Deadline.after(seconds))
    except OutOfTime:
        return None
    lexi = LexicographicSolver(model, config, began, None)
    hold(model, {"coverage": covered.score})
    if start_plan is None:
        known = transfer(covered, covered.model, model)
    else:  # the same classes make the same variables in the same order
        known = {var: start_plan.values[var.index()] for var in model.variables()}
    if start_leads is not None:
        load: dict[str, int] = defaultdict(int)
        for key, var in model.leads.items():
            known[var] = start_leads.get(key, 0)
            load[key[0]] += known[var]
        known[model.max_load] = max(load.values(), default=0)
    if others:
        for key, var in model.staff_also(others).items():
            known[var] = (start_leads or {}).get(key, 0)
    start = [0.0] * model.solver.NumVariables()
    for var, value in known.items():
        start[var.index()] = value
    # Level 1's plan of the day seated by preference within its staffing (a flow per slot): the search's start,
    # and the day's answer when its search finds nothing in time. A plan of the same classes was searched already:
    # its liked seats only need filling in.
    start = model.best_seating(start) if start_plan is not None else model.seating_within_staffing(start)
    model.hint(model.variables(), start)
    points = model.preference_level()
    near: LevelResult | None = None
    if start_leads is not None and (start_plan is None or others is not None):
        near = _near_the_relaxation(model, lexi, points, start, Deadline(began + seconds), relaxed)
    if near is not None and near.status in (Status.OPTIMAL, Status.FEASIBLE):
        # The box's plan is the answer: proving it over the whole day took most of a day's time on the crowded
        # schools, and the day is searched again within the week while time allows (`_again_within_the_week`).
        result = near
    else:
        result = lexi.optimise("preference", points, maximise=True, seconds=seconds - (time.monotonic() - began))
    if near is not None and result.status not in (Status.OPTIMAL, Status.FEASIBLE):
        result = near  # the whole day's search found nothing in the time left: the plan near the relaxation
    if lexi.values is not None:
        bound = result.bound if near is None or result is near else min(result.bound, near.bound)
        return _Day(model, covered.keys, lexi.values, result.value, bound, time.monotonic() - began)
    return _Day(model, covered.keys, start, round(value_at(points, start)), math.floor(trivial_bound(points, True)),
                time.monotonic() - began)


def _near_the_relaxation(model: AllocationModel, lexi: LexicographicSolver, points: Expr, start: list[float],
                         deadline: Deadline,
                         week: tuple[AllocationModel, list[float]] | None = None) -> LevelResult | None:
    """Search a day's level 3 first among the plans that staff each session as its linear relaxation does,
    rounded down or up, or as `start` (a plan of the day) does (RENS on the sessions, widened to hold the start);
    None when the relaxation is not solved in time.

    Within a cap on every teacher the relaxation of a crowded day staffs a few dozen of its sessions by fractions,
    and the search from level 1's plan finds nothing better in the seconds a day gets (2,209 against a bound of
    4,987 after 13 s on a day of the 3,000-pupil crowded school). With the other sessions staffed as the
    relaxation has them, the same search proves 4,971 in 4 s. Rounding alone can leave no plan at all (a session
    the relaxation closes may be one that whole teachers need open); the start keeps one. The plan found is the
    day's answer in turn, and again within the week (where the relaxation also sees the other days' sessions);
    the answer's bound is the relaxation's (the search near it proves nothing about the day).

    With `week` (the week's model and its relaxation's point) the sessions are staffed near the week's relaxation
    instead, and the bound is only the trivial one: it is solved already and shares the teachers' weeks as the
    day's caps do, and the day's own would cost about a second of the few a day gets. On a quiet 2-core machine
    (60 s, wall clock) that took `crowded(3000, 1)` from 12,351 to 22,937 (bound 23,188), where the days in turn
    had about 3.5 s each and two of them did not end their search near their own relaxation; on four other
    crowded schools it changed level 3 by -50 to +57 points."""
    if week is not None:
        whole, point = week
        values = [0.0] * model.solver.NumVariables()
        for name in ("teachers", "runs"):
            for key, var in getattr(model, name).items():
                same = getattr(whole, name).get(key)
                values[var.index()] = start[var.index()] if same is None else point[same.index()]
        most = trivial_bound(points, True)
        relaxed: _Relaxed | None = _Relaxed(math.floor(most), most, values)
    else:
        relaxed = relaxation_point(model, points, deadline)
    if relaxed is None:
        return None
    # Rows, not the variables' bounds: SCIP takes an integer variable narrowed to [0, 1] for a binary one and
    # refuses its old bounds back. The rows are opened up again afterwards.
    solver = model.solver
    rows = []
    for var in (*model.teachers.values(), *model.runs.values()):
        value, known = relaxed.values[var.index()], round(start[var.index()])
        row = solver.Constraint(min(math.floor(value + 1e-6), known), max(math.ceil(value - 1e-6), known))
        row.SetCoefficient(var, 1)
        rows.append(row)
    try:
        near = lexi.optimise("preference", points, maximise=True, seconds=deadline.left())
    finally:
        for row in rows:
            row.SetBounds(-solver.infinity(), solver.infinity())
    return dataclasses.replace(near, bound=relaxed.bound)


def _solve_day(instance: Instance, classes: list[DayClass], day: int, seconds: float,
               backend: str) -> _Day | None:
    began = time.monotonic()
    keys = [k for k, c in enumerate(classes) if c.day == day]
    try:
        model = AllocationModel(instance, [classes[k] for k in keys], backend=backend,
                                deadline=Deadline.after(seconds))
    except OutOfTime:
        return None
    seconds -= time.monotonic() - began
    if seconds < MIN_LEVEL_SECONDS:
        return None
    lexi = LexicographicSolver(model, SolverConfig(backend=backend), began, None)
    coverage = lexi.optimise("coverage", model.coverage_level(), maximise=True, seconds=seconds)
    if lexi.values is None:
        return None
    return _Day(model, keys, lexi.values, coverage.value, coverage.bound, coverage.seconds)


FEWER_TEACHERS_FACTOR = 2.0
FEWER_TEACHERS_FLOOR = 0.25
"""A day looks for a plan needing fewer teachers for at most this many times as long as its coverage took
(at least the floor, in seconds): the search only has to free enough teachers for the weekly flow."""


def _fewer_teachers(day: _Day, seconds: float, backend: str) -> _Day:
    """Among the day's best plans (its model holds its coverage), one that needs fewer teachers: it leaves more
    of their weekly caps to the other days."""
    lexi = LexicographicSolver(day.model, SolverConfig(backend=backend), time.monotonic(), None)
    lexi.hint(day.values)
    lexi.optimise("staffing", day.model.staffing_level(), maximise=False, seconds=seconds)
    return day if lexi.values is None else _Day(day.model, day.keys, lexi.values, day.score, day.bound)


def _in_turn(week: AllocationModel, days: list[int], deadline: Deadline, backend: str) -> dict[int, _Day]:
    """Each day in turn with the sessions the days before it left each teacher; empty when one fails."""
    instance = week.instance
    left = {t.id: t.max_sessions for t in instance.teachers}
    solved: dict[int, _Day] = {}
    for i, day in enumerate(days):
        share = len(days) - i
        capped = instance.with_weekly_caps({t.id: -(-left[t.id] // share) for t in instance.teachers})
        result = _solve_day(capped, week.classes, day, deadline.left() / (len(days) - i), backend)
        if result is None:
            return {}
        used: dict[str, float] = defaultdict(float)
        for (teacher_id, _), var in result.model.leads.items():
            used[teacher_id] += result.values[var.index()]
        for teacher_id, sessions in used.items():
            left[teacher_id] -= round(sessions)
        solved[day] = result
    return solved


def _weekly_staffing(week: AllocationModel, solved: dict[int, _Day],
                     room: dict[str, int] | None = None) -> dict[tuple[str, StaffingGroup], int] | None:
    """Whole teachers for the days' staffing needs within every weekly cap (or within `room`, sessions per
    teacher), or None when there are too few. Whether a day's plan fits is this flow's answer, not its own leads:
    another teacher free that slot may lead a session in place of one whose week is full."""
    instance = week.instance
    need = _staffing_needs(instance, solved.values())
    flow = max_flow.SimpleMaxFlow()
    nodes: dict[object, int] = {}

    def node(key: object) -> int:
        return nodes.setdefault(key, len(nodes) + 2)

    caps = room if room is not None else {t.id: t.max_sessions for t in instance.teachers}
    arcs: dict[int, tuple[str, StaffingGroup]] = {}
    for teacher_id, group in week.leads:
        if need.get(group, 0) <= 0:
            continue
        if teacher_id not in nodes:
            flow.add_arc_with_capacity(0, node(teacher_id), max(0, caps[teacher_id]))
        slot = (teacher_id, group[0], group[1])
        if slot not in nodes:
            flow.add_arc_with_capacity(node(teacher_id), node(slot), 1)
        arcs[flow.add_arc_with_capacity(node(slot), node(group), 1)] = (teacher_id, group)
    for group, count in need.items():
        if count:
            flow.add_arc_with_capacity(node(group), 1, count)
    if flow.solve(0, 1) != flow.OPTIMAL or flow.optimal_flow() != sum(need.values()):
        return None
    return {key: flow.flow(arc) for arc, key in arcs.items()}


def _staffing_needs(instance: Instance, days: Iterable[_Day]) -> dict[StaffingGroup, int]:
    """Teachers the days' plans need, by staffing group."""
    need: dict[StaffingGroup, int] = defaultdict(int)
    for day in days:
        for session_id, var in day.model.teachers.items():
            need[staffing_group(instance, instance.session_by_id[session_id])] += day.value(var)
    return need


def _week_values(week: AllocationModel, solved: dict[int, _Day],
                 leads: dict[tuple[str, StaffingGroup], int]) -> list[float]:
    """The days' plans and the weekly staffing as one point of the week's model."""
    values = [0.0] * week.solver.NumVariables()
    for day in solved.values():
        mine = day.model
        for name in ("seats", "seated", "covered", "liked"):
            for key, var in getattr(mine, name).items():
                week_key = (day.keys[key[0]], *key[1:])
                values[getattr(week, name)[week_key].index()] = day.value(var)
        for name in ("teachers", "runs"):
            for key, var in getattr(mine, name).items():
                values[getattr(week, name)[key].index()] = day.value(var)
    load: dict[str, int] = defaultdict(int)
    for (teacher_id, group), var in week.leads.items():
        values[var.index()] = leads.get((teacher_id, group), 0)
        load[teacher_id] += leads.get((teacher_id, group), 0)
    values[week.max_load.index()] = max(load.values(), default=0)
    return values
