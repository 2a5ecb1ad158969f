"""Solve one school's term: the four objective levels in strict order, then concrete pupils and teachers.

Levels 1 (coverage) and 2 (stability) are solved on the coarse grouping, where preferences are ignored; level 3
on groups that also tell preferences apart; level 4 (teacher load) on the coarse grouping again, with each class's
seats per activity kept as level 3 chose them, checked against lower bounds (see `_LevelPlan.teacher_load`). Each
level keeps every earlier level at the value found, so a lower level is never traded for a higher one.

Everything counts against one `Deadline`, `time_limit` after the call: grouping, building, the levels and turning
counts into pupils and reasons. The levels stop early enough to leave the finishing phases their time (estimated
from how long grouping took, a pass over the same pupil-days); a model the levels would have no time to solve is
abandoned while it is built, and a level after the deadline is skipped and reports the plan's own value with a
bound that needs no search. Only level 1 always runs: without it there is no plan. `stats["phases"]` gives each
phase's seconds.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from scheduler import fairness, validation
from scheduler.coverage import solve_coverage
from scheduler.daywise import (
    RELAXATION_SECONDS_PER_VARIABLE,
    DaywisePlan,
    days_first,
    near_the_week_relaxation,
    preference_by_day,
    relaxation_point,
    split_week_plan,
)
from scheduler.deadline import Deadline, OutOfTime
from scheduler.domain import Assignment, Instance, Objective, Solution, Staffing, Status
from scheduler.explain import explain_unserved
from scheduler.extract import assign_pupils, assign_teachers
from scheduler.fixed import check_fixed
from scheduler.groups import DayClass, build_day_classes, lottery_seed
from scheduler.lexicographic import (
    BACKENDS,
    MIN_LEVEL_SECONDS,
    LevelResult,
    LexicographicSolver,
    ProgressCallback,
    SolveCancelled,
    SolverConfig,
    hold,
    point_of,
    transfer,
    value_at,
)
from scheduler.model import MAXIMISED, AllocationModel, Var, total
from scheduler.seat_policy import Choice

__all__ = ["BACKENDS", "LexicographicSolver", "ProgressCallback", "SolveCancelled", "SolverConfig", "solve"]

STABILITY_PARTS = 4
"""Level 2 may use a quarter of the time level 1 left: level 3 and the steps of level 4 still follow."""
PREFERENCE_SHARE = 0.6
"""Level 3 may use this share of the time left; the rest is level 4's."""
DAYWISE_PREFERENCE_SHARE = 0.75
"""Level 3 solved day by day may use this share of the time left: the days are where its answer comes from on a
big school; the rest is level 4's. On a small school the days end early and leave the rest to the week's model
(when they prove nothing) and to level 4."""
WITHIN_STAFFING_SHARE = 0.9
"""Level 3 within a plan's staffing may use this share of the time left: after the week's search (a smaller
model), or, with under `DAYWISE_PREFERENCE_FLOOR` left, for both searches when it comes first (a larger one). The
rest is level 4's, whose short searches on these models end where they began too."""
NEAR_AFTER_SEARCH_SHARE = 0.25
"""A level-3 plan the week's search did not prove is searched again near the week's relaxation within this share of
the levels' time left (level 4 has the rest). On a mid-size school that search is often proven within its
neighbourhood in a fraction of a second: KM-0002 (424 pupils) rose from 1,166 to 1,184 points in 0.2 s, the
relaxation included, after a 25 s search (`docs/benchmarks.md`). A city batch's later levels are too short for it."""
WITHIN_STAFFING_FIRST = 5_500
"""A week's level-3 model with more variables than this is searched within level 1's staffing first, and as a
whole after; a smaller one as a whole first (`LexicographicSolver.within_staffing_first`, `again_within_staffing`)."""
DAYWISE_PREFERENCE_FLOOR = 2.0
"""Level 3 goes day by day (below the big model's size) only with at least this many seconds left for it."""
WEEK_PREFERENCE_FLOOR = 1.0
WEEK_PREFERENCE_BIG = 20_000
"""The week's level-3 model with more variables than this does not follow joined days (it rarely ends its first
LP in the time left), and is not started with less than the floor in seconds: the backend cannot stop inside
its first LP, and would overrun the limit for nothing."""
RESEAT_MARGIN = 1.25
"""After the search, its plan is seated again by the same flows as level 1's plan before it: the search leaves
this many times their seconds for it."""
RESEAT_SECONDS_PER_VARIABLE = 2e-5
"""Without level 1's plan seated first to time it, the search leaves this much per variable of the model for
seating its plan afterwards. Each flow took about 0.9 s on the 60,000 variables of a crowded 3,250-pupil school,
where a 12 s run ended at 14.6 s, past the 14.2 s allowed, while they came after the search unbudgeted."""
LOAD_STEPS = ("max_load", "staffing")
"""Level 4 in its two steps: the largest teacher load, then the number of staffing pairs."""
FINISH_PER_GROUPING = 8.0
"""Extraction, objective and reasons take about this many times as long as grouping the pupil-days did."""
FINISH_MIN_SHARE = 0.1
"""... and never less than this share: a grouping timed on a quiet moment says little about a loaded machine."""
FINISH_FLOOR = 1.0
"""... nor less than this many seconds while that stays within the largest share: on a loaded machine a big
school's extraction and reasons took 1.3 s in a 6 s run."""
FINISH_MAX_SHARE = 0.3
"""The time kept back for finishing never exceeds this share of the limit."""
LOTTERY_PER_GROUPING = 20.0
LOTTERY_MAX_SHARE = 0.25
"""Drawing the lottery (and reading its plan into the model) takes about this many times as long as grouping the
pupil-days did (1.2 s against 0.06 s on a loaded machine, 3,250 pupils), at most this share of the limit."""
SHORT_LIMIT = 6.0
"""Below this time limit (a city batch's few seconds a school, where the schools are mostly small) the finishing
floor is not kept back and the lottery's room is `SHORT_LOTTERY_SHARE`: the limit's allowance of 10 % + 1 s
covers a slow finish, and the days need the time to be proven (with the floor and the full lottery share, 72 %
of a generated city's schools had coverage proven at 3 s a school against 84 % without them)."""
SHORT_LOTTERY_SHARE = 0.1
COVERAGE_FLOOR = 0.1
"""Seconds level 1 always gets, even past the deadline: without it there is no plan to return. When that search
ends with an empty plan although pupils could be covered, level 1 searches once more until `OVERRUN_SHARE` of the
limit past the deadline: the one case where a solve runs past its limit, because an empty plan helps nobody."""
OVERRUN_SHARE = 0.05
"""The contract allows a solve 10 % of its limit and one second past it; level 1's second search takes at most
half of that share, the rest is for turning its plan into pupils."""


def _checked_step_parts(steps_left: int) -> tuple[int, int, int]:
    """Into how many parts the time left is cut for each solve of a level-4 step that needs the check (the step
    gets one part each time): the restricted solve, its relaxed lower bound, the exact model's challenge. The
    restricted solve leaves room for a challenge in every step left; the bound only has to prove, so it gets less.
    """
    return 2 * steps_left, 4 * steps_left - 1, 2 * steps_left - 1


def solve(instance: Instance, config: SolverConfig | None = None,
          progress: ProgressCallback | None = None) -> Solution:
    """Allocate pupils and teachers to sessions, maximising the four levels of PROBLEM.md in order."""
    config = config or SolverConfig()
    if config.backend not in BACKENDS:
        raise ValueError(f"unknown backend {config.backend!r}; choose one of {', '.join(BACKENDS)}")
    plan = _LevelPlan(instance, config, progress)
    with plan.phase("check"):
        broken = check_fixed(instance)
    if broken:
        plan.stats["infeasible_fixed"] = broken
        return plan.no_allocation(Status.INFEASIBLE)
    first = plan.coverage_and_stability()
    if not first.have_solution:
        return plan.no_coverage()
    labels = plan.preference(first)
    labels, seats = plan.teacher_load(first, labels)
    return plan.solution(labels, seats)


def coverage_time(left: float, config: SolverConfig, previous: bool) -> float:
    """Level 1's seconds out of the `left` the levels have: its `coverage_share`, or, when the levels after it are
    capped (`later_levels_limit`, a city batch) and there is no `previous` plan to keep (level 2, which the cap
    does not count), all but that cap where that is more: the capped levels could not use the rest, and a school
    whose coverage is not proven would leave it idle. At a batch's 6 s that is 0.2 s more for level 1; at the
    bureau's 30 s, about 4.5 s (`docs/benchmarks.md`)."""
    seconds = left * config.coverage_share
    if config.later_levels_limit is not None and not previous:
        seconds = max(seconds, left - max(0.0, config.later_levels_limit))
    return max(COVERAGE_FLOOR, seconds)


class _LevelPlan:
    """Which model each level runs on, with how much of the time limit, holding which earlier levels."""

    def __init__(self, instance: Instance, config: SolverConfig, progress: ProgressCallback | None) -> None:
        self.instance, self.config, self.progress = instance, config, progress
        self.started = time.monotonic()
        self.deadline = Deadline(self.started + config.time_limit)
        """When `solve()` must have returned."""
        self.levels_deadline = self.deadline
        """When the levels must stop, leaving the finishing phases their time (set once grouping is timed)."""
        self.stats: dict[str, Any] = {
            "solver": f"{config.backend} MIP over aggregated pupils", "workers": config.workers,
            "seed": config.seed, "lottery_seed": lottery_seed(instance, config.seed), "time_limit": config.time_limit,
            "phases": {},
        }
        self.held: dict[str, int] = {}
        """Every level decided so far, at its value: later models hold them."""
        self.results: list[LevelResult] = []
        self.coarse: list[DayClass] = []
        self.fine: list[DayClass] = []
        self.coverage: LevelResult | None = None
        self.days: DaywisePlan | None = None
        """Level 1 solved day by day, when it was."""

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the seconds spent inside to `stats["phases"][name]`."""
        began = time.monotonic()
        try:
            yield
        finally:
            phases = self.stats["phases"]
            phases[name] = round(phases.get(name, 0.0) + time.monotonic() - began, 3)

    def _model(self, classes: list[DayClass], *, in_time: bool = True) -> AllocationModel:
        """A model of `classes`; `in_time` abandons it (`OutOfTime`) once the levels' deadline passes."""
        with self.phase("build"):
            return AllocationModel(self.instance, classes, backend=self.config.backend,
                                   deadline=self.levels_deadline if in_time else None)

    def _group(self, *, by_preference: bool) -> list[DayClass]:
        with self.phase("group"):
            return build_day_classes(self.instance, by_preference=by_preference, seed=self.config.seed)

    def _optimise(self, solver: LexicographicSolver, name: str, seconds: float) -> LevelResult:
        with self.phase("solve"):
            return solver.optimise(name, solver.built.level(name), maximise=name in MAXIMISED, seconds=seconds)

    def _solver(self, model: AllocationModel, *, reports: bool = True) -> LexicographicSolver:
        return LexicographicSolver(model, self.config, self.started, self.progress if reports else None)

    def _share(self, parts: int) -> float:
        """An even share of the levels' time left for the next of `parts` solves (0 once it is over)."""
        return self.levels_deadline.left() / max(1, parts)

    def _seconds(self) -> float:
        return round(time.monotonic() - self.started, 3)

    # ------------------------------------------------------------ the levels

    def coverage_and_stability(self) -> LexicographicSolver:
        """Levels 1 and 2 on the coarse grouping: preferences do not matter to them."""
        began = time.monotonic()
        self.coarse = self._group(by_preference=False)
        grouping = time.monotonic() - began
        limit = self.config.time_limit
        floor = min(FINISH_FLOOR, FINISH_MAX_SHARE * limit) if limit >= SHORT_LIMIT else 0.0
        finish = min(max(FINISH_PER_GROUPING * grouping, FINISH_MIN_SHARE * limit, floor), FINISH_MAX_SHARE * limit)
        self.levels_deadline = self.deadline.earlier(finish)
        self.stats["finish_reserve"] = round(finish, 3)
        model = self._model(self.coarse, in_time=False)
        self.stats["coverage_model"] = _size(model)
        first = self._solver(model)
        # The days leave room for drawing the lottery, level 1's fallback when they find no plan of the week.
        lottery_time = min(LOTTERY_PER_GROUPING * grouping,
                           (LOTTERY_MAX_SHARE if limit >= SHORT_LIMIT else SHORT_LOTTERY_SHARE) * limit)
        seconds = coverage_time(self.levels_deadline.left() - lottery_time, self.config, bool(self.instance.previous))
        self.coverage = self._coverage(first, seconds)
        if self.coverage.status == Status.UNKNOWN or self.coverage.value == 0 < self.coverage.bound:
            # No plan, or an empty one, helps no family: into the overrun the time limit allows, search once more.
            empty = self.coverage
            overrun = self.deadline.left() + OVERRUN_SHARE * self.config.time_limit
            self.coverage = self._optimise(first, "coverage", max(COVERAGE_FLOOR, overrun))
            first.results.remove(empty)
            self.stats["coverage_extended"] = True
        self.stats["coverage_seconds"] = self._seconds()
        if first.have_solution:
            self.held["coverage"] = self.coverage.value
            if self.instance.previous:
                stability = self._optimise(first, "stability", self._share(STABILITY_PARTS))
                if first.have_solution and stability.status != Status.UNKNOWN:
                    self.held["stability"] = stability.value
        self.results += first.results
        if self.config.later_levels_limit is not None:
            capped = Deadline.after(max(0.0, self.config.later_levels_limit))
            if capped.at < self.levels_deadline.at:
                self.levels_deadline = capped
                self.stats["later_levels_limit"] = self.config.later_levels_limit
        return first

    def _coverage(self, first: LexicographicSolver, seconds: float) -> LevelResult:
        """Level 1 as `scheduler.coverage` solves it: the days get `seconds`, the week's search its share of what
        is left then."""
        previous = bool(self.instance.previous)
        found = solve_coverage(first, seconds,
                               lambda: coverage_time(self.levels_deadline.left(), self.config, previous),
                               phase=self.phase)
        self.days = days = found.days
        if days is not None:
            self.stats["daywise"] = {"value": days.value, "bound": days.bound, "joined": days.values is not None,
                                     "seconds": round(days.seconds, 3)}
        if found.from_lottery:
            self.stats["coverage_fallback"] = "lottery"
        if found.day_rows is not None:
            rows = found.day_rows
            self.stats["day_rows"] = {"rows": rows.rows, "bound": rows.bound, "first_bound": rows.first_bound,
                                      "searches": rows.searches, "seconds": round(rows.seconds, 3),
                                      "joined": rows.joined, "join_seconds": round(rows.join_seconds, 3)}
        if found.teacher_prices is not None:
            self.stats["teacher_prices"] = dataclasses.asdict(found.teacher_prices)
        return found.result

    def preference(self, first: LexicographicSolver) -> LexicographicSolver:
        """Level 3 needs pupils told apart by preference; the seats it chooses per activity then stay put.
        Returns the solve that says who sits in a liked activity (`first` when preferences split no group)."""
        if self.levels_deadline.passed:
            self.results.append(first.skip("preference"))
            return first
        self.fine = self._group(by_preference=True)
        if _same_grouping(self.coarse, self.fine):
            return first
        try:
            model = self._model(self.fine)
        except OutOfTime:
            self.results.append(first.skip("preference"))
            return first
        self.stats["preference_model"] = _size(model)
        third = self._solver(model)
        with self.phase("build"):
            hold(model, self.held)
            # Level 1's plan in this model: the search's start, the staffing held first, and the flow's floor.
            known = transfer(first, first.built, model) if first.have_solution else None
            if known is not None:
                model.hint(list(known), list(known.values()))
        days = None
        big = model.solver.NumVariables() > WEEK_PREFERENCE_BIG
        # With less than the floor, each free day would get less than a 1,000-pupil school's day takes to build
        # and presolve: the days would hand back level 1's plan. The week's plan searched within its staffing
        # does better then (city batches).
        short = not big and self.levels_deadline.left() < DAYWISE_PREFERENCE_FLOOR
        by_day = None if self.instance.previous or short else self._coverage_by_day(first)
        if by_day is not None:
            with self.phase("daywise"):
                days = preference_by_day(model, by_day, self.levels_deadline.earlier(
                    (1 - DAYWISE_PREFERENCE_SHARE) * self.levels_deadline.left()), self.config)
        if days is not None:
            self.stats["daywise_preference"] = {"value": days.value, "bound": days.bound, "days_bound": days.days_bound,
                                                "priced_bound": days.priced_bound, "days_value": days.days_value,
                                                "joined": days.values is not None, "seconds": round(days.seconds, 3),
                                                "from_week_plan": by_day is not None and by_day.split}
        joined = days.values if days is not None else None
        if days is not None and joined is not None and (days.proven or big):
            # On a big school the week's model rarely ends its first LP in the time left: the joined days are
            # the answer, and level 4 gets the rest.
            third.accept("preference", joined, days.bound, days.seconds)
        else:
            if joined is not None:
                third.hint(joined)
            seconds = PREFERENCE_SHARE * self._share(1)
            # Started from level 1's plan, a short search of a model of more than `WITHIN_STAFFING_FIRST` variables
            # ends where it began. That plan seated by preference within its staffing (one flow per slot) is the
            # level's floor after the search, and the answer when the model is too big to search in the time left.
            # The search itself starts from level 1's plan, and gets all its time: from the seated plan it moved no
            # covered pupils between preference groups.
            floor = known if joined is None else None
            if seconds < WEEK_PREFERENCE_FLOOR and big:  # too little time to read the model in
                if floor is None:
                    self.results.append(third.skip("preference"))
                    return first
                start = self._seated_start(floor, third)
                result = third.accept("preference", start, third.trivial_bound("preference"),
                                      self.stats["preference_seated_start"]["seconds"])
            elif big or joined is not None:  # joined days were each searched as a whole day already
                # The flows come out of the level's time: level 1's plan is seated before the search, which then
                # leaves room for seating its own plan the same way (on a big model about a second each).
                seated = None
                if floor is not None:
                    seated = self._seated_start(floor, third)
                    seconds -= (1 + RESEAT_MARGIN) * self.stats["preference_seated_start"]["seconds"]
                else:
                    seconds -= RESEAT_SECONDS_PER_VARIABLE * model.solver.NumVariables()
                result = self._seated_after(third, self._optimise(third, "preference", seconds), floor, seated)
            elif model.solver.NumVariables() > WITHIN_STAFFING_FIRST:
                # Level 1's staffing is searched first, then the whole model from there.
                assert known is not None  # level 1 found a plan, or there would be no level 3
                staffing = third.staffing_of(known)
                if short:  # level 4's short search would end where it began too
                    seconds = WITHIN_STAFFING_SHARE * self._share(1)
                with self.phase("solve"):
                    result = third.within_staffing_first("preference", staffing, seconds)
                self.stats["preference_within_staffing"] = "first"
                result = self._seated_after(third, result, floor)
            else:
                # A smaller model's search is often proven in a fraction of a second; when it is not, it often
                # ended where it began, and its plan's staffing seated by preference takes a fraction of that.
                result = self._optimise(third, "preference", seconds)
                if result.status == Status.FEASIBLE:
                    with self.phase("solve"):
                        third.again_within_staffing(result, WITHIN_STAFFING_SHARE * self._share(1))
                    self.stats["preference_within_staffing"] = "again"
                    result = self._seated_after(third, result, None)
                elif result.status != Status.OPTIMAL:  # a search that found nothing in its time (3 of 950 schools)
                    result = self._seated_after(third, result, floor)
            if days is not None and result.status in (Status.OPTIMAL, Status.FEASIBLE) and days.bound < result.bound:
                result.bound = days.bound
                result.status = Status.OPTIMAL if result.value >= result.bound else Status.FEASIBLE
        self.results += third.results
        if not third.have_solution:
            return first
        self.held["preference"] = third.results[-1].value
        return third

    def _seated_start(self, known: dict[Var, int], third: LexicographicSolver) -> list[float]:
        """Level 1's plan in level 3's model (`transfer`'s), its pupils seated by preference within its staffing;
        its points (and the plan's before) in `stats["preference_seated_start"]`."""
        with self.phase("reseat"):
            began = time.monotonic()
            model = third.built
            plan = point_of(model, known)
            start = model.seating_within_staffing(plan)
            points = model.preference_level()
            self.stats["preference_seated_start"] = {"plan": round(value_at(points, plan)),
                                                     "seated": round(value_at(points, start)),
                                                     "seconds": round(time.monotonic() - began, 3)}
        return start

    def _seated_after(self, third: LexicographicSolver, result: LevelResult,
                      floor: dict[Var, int] | None, seated: list[float] | None = None) -> LevelResult:
        """Level 3's searched plan seated again within its staffing, or `floor`'s plan (level 1's) seated so
        (`seated`, when that was done before the search), whichever scores most, when that is more than the
        search's (the points before and after in `stats["preference_seated_after"]`)."""
        before = result.value if result.status in (Status.OPTIMAL, Status.FEASIBLE) else None
        with self.phase("reseat"):
            third.seated_within_staffing(result)
        if floor is not None and result.status != Status.OPTIMAL:
            third.take_better(result, seated if seated is not None else self._seated_start(floor, third))
        if result.value != before:
            self.stats["preference_seated_after"] = {"searched": before, "seated": result.value}
        self._near_the_relaxation(third, result)
        return result

    def _near_the_relaxation(self, third: LexicographicSolver, result: LevelResult) -> None:
        """A level-3 plan not proven the best, searched again near the week's relaxation (`near_the_week_relaxation`:
        every whole variable on which the plan and the relaxation agree held) within `NEAR_AFTER_SEARCH_SHARE` of
        the levels' time left, taken when it scores more; the relaxation's bound counts when it is lower (the
        points before and after in `stats["preference_near"]`)."""
        week = third.built
        seconds = NEAR_AFTER_SEARCH_SHARE * self.levels_deadline.left()
        if result.status != Status.FEASIBLE or third.values is None or \
                seconds < RELAXATION_SECONDS_PER_VARIABLE * week.solver.NumVariables():
            return
        deadline = self.levels_deadline.earlier(self.levels_deadline.left() - seconds)
        with self.phase("near"):
            relaxed = relaxation_point(week, week.preference_level(), deadline)
            if relaxed is None:
                return
            before = result.value
            value, values = near_the_week_relaxation(week, relaxed, result.value, third.values, deadline, self.config)
            if value > result.value:
                third.take_better(result, values)
            if relaxed.bound < result.bound:
                result.bound = max(relaxed.bound, result.value)
                result.status = Status.OPTIMAL if result.value >= result.bound else Status.FEASIBLE
        self.stats["preference_near"] = {"before": before, "after": result.value, "relaxation": relaxed.bound}

    def _coverage_by_day(self, first: LexicographicSolver) -> DaywisePlan | None:
        """Level 1's plan one day at a time, for level 3 to go day by day: the days' own when they proved level 1
        (each day then at its best); on a big school (`days_first`) whose level 1 the week's search or the
        week's relaxation settled, that plan split into its days."""
        if self.days is not None and self.days.proven_by_days:
            return self.days
        if first.values is None or not days_first(first.built):
            return None
        with self.phase("daywise"):
            return split_week_plan(first.built, first.values, self.levels_deadline)

    def teacher_load(self, first: LexicographicSolver,
                     labels: LexicographicSolver) -> tuple[LexicographicSolver, LexicographicSolver]:
        """Level 4 on the coarse grouping, keeping every class's seats per activity as level 3 left them: small and
        fast. When level 3 refined the groups, each step is checked (`_checked_step`).

        Returns (labels, seats): the solve that says who is covered and liked, and the one that says how many
        of each class sit in each session and who teaches.
        """
        refined = labels is not first
        model = None
        # A step gets at most what is left (half of it when checked): with less, no step could run, and building
        # the model would only spend the finishing phases' time.
        if self.levels_deadline.left() >= MIN_LEVEL_SECONDS * (2 if refined else 1):
            with suppress(OutOfTime):
                model = self._model(self.coarse)
        if model is None:
            self.results += [labels.skip(name) for name in LOAD_STEPS]
            return labels, labels
        last = self._solver(model)
        with self.phase("build"):
            hold(model, {name: value for name, value in self.held.items() if name != "preference"})
            if refined:
                _keep_activity_seats(model, labels)
            last.hint_from(labels)
        seats = last
        for i, name in enumerate(LOAD_STEPS):
            steps_left = len(LOAD_STEPS) - i
            if refined and seats is last:
                result, exact = self._checked_step(name, steps_left, last, labels)
                if exact is not None:
                    seats = labels = exact
            else:
                result = self._optimise(seats, name, self._share(steps_left))
            self.results.append(result)
            if result.status in (Status.OPTIMAL, Status.FEASIBLE):
                self.held[name] = result.value
        if not last.have_solution:
            return labels, labels
        return (labels if refined else seats), seats

    def _checked_step(self, name: str, steps_left: int, last: LexicographicSolver,
                      labels: LexicographicSolver) -> tuple[LevelResult, LexicographicSolver | None]:
        """One level-4 step on the restricted model, proven when a bound without the restriction meets it;
        otherwise the exact preference-grouped model decides. Returns the step's result and the exact solve
        when it did better (it then takes over)."""
        solve_parts, bound_parts, exact_parts = _checked_step_parts(steps_left)
        # The exact model of a big school (the week grouped by preference) would not end its first LP in the
        # time a step has: the relaxed bound gets that time instead.
        challenge_exact = labels.built.solver.NumVariables() <= WEEK_PREFERENCE_BIG
        if not challenge_exact:
            bound_parts = exact_parts
        result = self._optimise(last, name, self._share(solve_parts))
        if result.status not in (Status.OPTIMAL, Status.FEASIBLE):
            return result, None
        bound = self._relaxed_bound(name, self._share(bound_parts), last.values)
        better = None
        exact = self._exact_model(labels) if bound < result.value and challenge_exact else None
        if exact is not None:
            challenge = self._optimise(exact, name, self._share(exact_parts))
            if challenge.status in (Status.OPTIMAL, Status.FEASIBLE):
                bound = max(bound, challenge.bound)
                if challenge.value < result.value:
                    better = exact
                    result.value = challenge.value
        result.bound = min(bound, result.value)
        result.status = Status.OPTIMAL if result.bound >= result.value else Status.FEASIBLE
        return result, better

    def _exact_model(self, labels: LexicographicSolver) -> LexicographicSolver | None:
        """The preference-grouped model holding every level so far, started at `labels`; None if out of time."""
        if self.levels_deadline.passed:
            return None
        try:
            exact_model = self._model(self.fine)
        except OutOfTime:
            return None
        exact = self._solver(exact_model, reports=False)
        with self.phase("build"):
            hold(exact_model, self.held)
            exact.hint(labels.values)
        return exact

    def _relaxed_bound(self, name: str, seconds: float, start: list[float] | None) -> int:
        """A proven lower bound for a level-4 step: the same step with preference left free (coarse grouping)."""
        if seconds < MIN_LEVEL_SECONDS:
            return 0
        try:
            relaxed = self._model(self.coarse)
        except OutOfTime:
            return 0
        lower = self._solver(relaxed, reports=False)
        with self.phase("build"):
            hold(relaxed, {level: value for level, value in self.held.items() if level != "preference"})
            lower.hint(start)
        result = self._optimise(lower, name, seconds)
        return result.bound if result.status in (Status.OPTIMAL, Status.FEASIBLE) else 0

    # ------------------------------------------------------------ answers

    def solution(self, labels: LexicographicSolver, seats: LexicographicSolver) -> Solution:
        """Concrete pupils and teachers, the objective recomputed from them, proven when every level is."""
        instance = self.instance
        with self.phase("extract"):
            assignments, choice = assign_pupils(labels, seats, policy=instance.seat_policy, seed=self.config.seed,
                                                deadline=self.deadline)
            staffing = assign_teachers(seats)
        with self.phase("objective"):
            loads = validation.teacher_loads(instance, staffing)
            assert self.coverage is not None
            objective = Objective(
                coverage=validation.coverage(instance, assignments),
                coverage_bound=self.coverage.bound,
                stability=validation.stability(instance, assignments),
                preference=validation.preference(instance, assignments),
                max_teacher_load=max(loads.values(), default=0),
            )
        self._settle_skipped(objective, staffing)
        self.stats["seat_policy"] = _seat_policy_stats(instance, assignments, choice)
        with self.phase("explain"):
            unserved = explain_unserved(instance, assignments, staffing)
        self.stats["levels"] = [vars(r) for r in self.results]
        self.stats["seconds"] = self._seconds()
        if self.progress is not None:
            self.progress("done", {"value": objective.coverage, "bound": objective.coverage_bound,
                                   "elapsed": self.stats["seconds"]})
        proven = all(r.status == Status.OPTIMAL for r in self.results)
        return Solution(
            school=instance.school.id,
            status=Status.OPTIMAL if proven else Status.FEASIBLE,
            assignments=assignments,
            staffing=staffing,
            objective=objective,
            unserved=unserved,
            stats=self.stats,
        )

    def _settle_skipped(self, objective: Objective, staffing: tuple[Staffing, ...]) -> None:
        """A skipped level reports the plan's own value and a bound no search is needed for: every pair kept,
        every requested period in a first choice, or no load at all. Proven only where the two meet."""
        instance = self.instance
        best = max(instance.rank_points, default=0)
        plan = {"stability": objective.stability, "preference": objective.preference,
                "max_load": objective.max_teacher_load, "staffing": len(staffing)}
        bounds = {"stability": len(set(instance.previous)),
                  "preference": sum(best * len(r.days) * len(r.periods) for r in instance.requests),
                  "max_load": 0, "staffing": 0}
        for result in self.results:
            if result.skipped:
                result.value, result.bound = plan[result.name], bounds[result.name]
                result.status = Status.OPTIMAL if result.value == result.bound else Status.FEASIBLE

    def no_coverage(self) -> Solution:
        """Level 1 found nothing: infeasible pins say which pairs, a timeout says it is unknown."""
        assert self.coverage is not None
        self.stats["levels"] = [vars(r) for r in self.results]
        status = Status.INFEASIBLE if self.coverage.status == Status.INFEASIBLE else Status.UNKNOWN
        if status == Status.INFEASIBLE and self.instance.fixed:
            self.stats["infeasible_fixed"] = [
                {"pupil": p.pupil, "session": p.session,
                 "reason": "the pinned pairs together cannot be staffed or filled"}
                for p in self.instance.fixed]
        return self.no_allocation(status)

    def no_allocation(self, status: str) -> Solution:
        self.stats["seconds"] = self._seconds()
        return Solution(self.instance.school.id, status, (), (), Objective(0, 0, 0, 0, 0), (), self.stats)


def _seat_policy_stats(instance: Instance, assignments: tuple[Assignment, ...], choice: Choice) -> dict[str, Any]:
    """The policy that chose who among equals is covered, whether its aim is proven met, and both policies'
    measures of the plan (families left with nothing, pupils covered on every day asked for)."""
    plan = Solution(instance.school.id, Status.FEASIBLE, assignments, (), Objective(0, 0, 0, 0, 0))
    families, served = fairness.families_and_served(instance, plan)
    return {"policy": choice.policy, "proven": choice.proven, "seconds": choice.seconds,
            "requesting_families": families.requesting, "families_with_nothing": families.with_nothing,
            "pupils_fully_served": served.fully, "pupils_partly_served": served.partly,
            "pupils_not_served": served.not_at_all}


def _keep_activity_seats(built: AllocationModel, labels: LexicographicSolver) -> None:
    """Each class keeps, per period and activity, the seats and covered pupils that the preference level chose."""
    label_model = labels.built
    solver = built.solver
    for k, day_class in enumerate(built.classes):
        for sessions in day_class.eligible.values():
            for activity in sorted({s.activity for s in sessions}):
                ids = [s.id for s in sessions if s.activity == activity]
                chosen = sum(labels.value(label_model.seats[(k, sid)]) for sid in ids)
                solver.Add(total([built.seats[(k, sid)] for sid in ids]) == chosen)
        label_covered: dict[int, int] = defaultdict(int)
        for (kk, _, level), var in label_model.covered.items():
            if kk == k:
                label_covered[level] += labels.value(var)
        for level, count in label_covered.items():
            mine = [var for (kk, _, lvl), var in built.covered.items() if kk == k and lvl == level]
            solver.Add(total(mine) == count)


def _size(built: AllocationModel) -> dict[str, int]:
    solver = built.solver
    return {"day_classes": len(built.classes), "groups": sum(len(c.groups) for c in built.classes),
            "variables": solver.NumVariables(), "constraints": solver.NumConstraints()}


def _same_grouping(coarse: list[DayClass], fine: list[DayClass]) -> bool:
    return all(len(c.groups) == len(f.groups) for c, f in zip(coarse, fine, strict=True)) and all(
        not scores for c in fine for scores in c.groups
    )
