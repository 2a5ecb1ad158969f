"""Solve one school's term: the four objective levels in strict order, then concrete pupils and teachers.

Level 1 (coverage) is solved on the coarsest grouping, where preferences are ignored; levels 2-4 on groups that
also tell preferences apart, with coverage held at the level-1 value. Each later level keeps every earlier level
at the value found, so a lower level is never traded for a higher one.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ortools.sat.python import cp_model

from scheduler import validation
from scheduler.domain import Assignment, Instance, Objective, Solution, Staffing, Status
from scheduler.explain import explain_unserved
from scheduler.fixed import check_fixed
from scheduler.groups import DayClass, build_day_classes
from scheduler.model import AllocationModel, staffing_group

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, dict[str, Any]], None]
"""Called with a stage name (`coverage`, `stability`, `preference`, `load`, `staffing`, `done`) and details."""


class SolveCancelled(Exception):
    """Raised when the caller's `should_stop` asked the solver to give up."""


@dataclass(frozen=True)
class SolverConfig:
    time_limit: float = 60.0
    """Wall-clock seconds for all levels together, model building included."""
    workers: int = 2
    seed: int = 0
    """Drives CP-SAT's search and the lottery that picks, among interchangeable pupils, who gets a seat."""
    coverage_share: float = 0.6
    """Share of the time limit that level 1 may use before the later levels get the rest."""
    log: bool = False
    should_stop: Callable[[], bool] | None = field(default=None, compare=False)


@dataclass
class LevelResult:
    name: str
    status: str
    value: int
    bound: int
    seconds: float


class _Progress(cp_model.CpSolverSolutionCallback):
    def __init__(self, stage: str, expr: cp_model.LinearExprT, report: ProgressCallback | None,
                 should_stop: Callable[[], bool] | None, started: float) -> None:
        super().__init__()
        self.stage, self.expr, self.report, self.should_stop, self.started = stage, expr, report, should_stop, started
        self.stopped = False

    def on_solution_callback(self) -> None:
        if self.should_stop is not None and self.should_stop():
            self.stopped = True
            self.stop_search()
            return
        if self.report is not None:
            self.report(self.stage, {"value": int(self.value(self.expr)), "bound": int(self.best_objective_bound),
                                     "elapsed": round(time.monotonic() - self.started, 2)})


class LexicographicSolver:
    """Runs the levels one after another on one model, each fixing the one before it."""

    def __init__(self, built: AllocationModel, config: SolverConfig, started: float,
                 progress: ProgressCallback | None) -> None:
        self.built, self.config, self.started, self.progress = built, config, started, progress
        self.solver = cp_model.CpSolver()
        self.results: list[LevelResult] = []
        self.have_solution = False

    def optimise(self, name: str, expr: cp_model.LinearExprT, *, maximise: bool, seconds: float) -> LevelResult:
        model = self.built.model
        if maximise:
            model.maximize(expr)
        else:
            model.minimize(expr)
        solver = cp_model.CpSolver()
        params = solver.parameters
        params.max_time_in_seconds = max(0.05, seconds)
        params.num_workers = self.config.workers
        params.random_seed = self.config.seed
        params.log_search_progress = self.config.log
        params.log_to_stdout = False
        if self.config.log:
            solver.log_callback = lambda line: logger.debug("%s: %s", name, line)
        callback = _Progress(name, expr, self.progress, self.config.should_stop, self.started)
        began = time.monotonic()
        code = solver.solve(model, callback)
        if callback.stopped:
            raise SolveCancelled(name)
        seconds_used = time.monotonic() - began
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            value = int(round(solver.objective_value))
            bound = int(round(solver.best_objective_bound))
            status = Status.OPTIMAL if code == cp_model.OPTIMAL else Status.FEASIBLE
            self.solver = solver
            self.have_solution = True
            self._hint_from(solver)
            if maximise:
                model.add(expr >= value)
            else:
                model.add(expr <= value)
        else:
            status = Status.INFEASIBLE if code == cp_model.INFEASIBLE else Status.UNKNOWN
            value = bound = 0
        result = LevelResult(name, status, value, bound, round(seconds_used, 3))
        logger.info("level %s: %s value=%s bound=%s in %.2fs", name, status, value, bound, seconds_used)
        self.results.append(result)
        if self.progress is not None:
            self.progress(name, {"value": value, "bound": bound, "status": status,
                                 "elapsed": round(time.monotonic() - self.started, 2)})
        return result

    def _hint_from(self, solver: cp_model.CpSolver) -> None:
        model = self.built.model
        model.clear_hints()  # type: ignore[no-untyped-call]
        for var in self.built.all_variables():
            model.add_hint(var, solver.value(var))

    def value(self, var: cp_model.IntVar) -> int:
        return int(self.solver.value(var))


def solve(instance: Instance, config: SolverConfig | None = None,
          progress: ProgressCallback | None = None) -> Solution:
    """Allocate pupils and teachers to sessions, maximising the four levels of PROBLEM.md in order."""
    config = config or SolverConfig()
    started = time.monotonic()
    deadline = started + config.time_limit
    stats: dict[str, Any] = {"solver": "CP-SAT (aggregated)", "workers": config.workers, "seed": config.seed,
                             "time_limit": config.time_limit}

    broken = check_fixed(instance)
    if broken:
        stats["infeasible_fixed"] = broken
        stats["seconds"] = round(time.monotonic() - started, 3)
        return _empty(instance, Status.INFEASIBLE, stats)

    coarse = build_day_classes(instance, by_preference=False, seed=config.seed)
    coarse_model = AllocationModel(instance, coarse)
    stats["coverage_model"] = _size(coarse_model)
    first = LexicographicSolver(coarse_model, config, started, progress)
    level1_time = max(0.1, (deadline - time.monotonic()) * config.coverage_share)
    coverage = first.optimise("coverage", coarse_model.levels().coverage, maximise=True, seconds=level1_time)
    stats["coverage_seconds"] = round(time.monotonic() - started, 3)
    if not first.have_solution:
        stats["levels"] = [vars(r) for r in first.results]
        stats["seconds"] = round(time.monotonic() - started, 3)
        status = Status.INFEASIBLE if coverage.status == Status.INFEASIBLE else Status.UNKNOWN
        if status == Status.INFEASIBLE and instance.fixed:
            stats["infeasible_fixed"] = [{"pupil": p.pupil, "session": p.session,
                                          "reason": "the pinned pairs together cannot be staffed or filled"}
                                         for p in instance.fixed]
        return _empty(instance, status, stats)

    fine_classes = build_day_classes(instance, by_preference=True, seed=config.seed)
    if _same_grouping(coarse, fine_classes):
        built, lexi = coarse_model, first
    else:
        built = AllocationModel(instance, fine_classes)
        stats["model"] = _size(built)
        lexi = LexicographicSolver(built, config, started, progress)
        lexi.results = first.results
        built.model.add(built.levels().coverage >= coverage.value)
        _hint_between(first, coarse_model, built)
    levels = built.levels()
    later = []
    if instance.previous:
        later.append(("stability", levels.stability, True))
    later.append(("preference", levels.preference, True))
    later.append(("max_load", levels.max_load, False))
    later.append(("staffing", levels.staffing, False))
    for i, (name, expr, maximise) in enumerate(later):
        remaining = deadline - time.monotonic()
        lexi.optimise(name, expr, maximise=maximise, seconds=remaining / (len(later) - i))

    assignments = _assign_pupils(lexi, built)
    staffing = _assign_teachers(lexi, built)
    proven = all(r.status == Status.OPTIMAL for r in lexi.results)
    stats["levels"] = [vars(r) for r in lexi.results]
    stats["seconds"] = round(time.monotonic() - started, 3)
    loads = validation.teacher_loads(instance, staffing)
    objective = Objective(
        coverage=validation.coverage(instance, assignments),
        coverage_bound=coverage.bound,
        stability=validation.stability(instance, assignments),
        preference=validation.preference(instance, assignments),
        max_teacher_load=max(loads.values(), default=0),
    )
    if progress is not None:
        progress("done", {"value": objective.coverage, "bound": objective.coverage_bound,
                          "elapsed": stats["seconds"]})
    return Solution(
        school=instance.school.id,
        status=Status.OPTIMAL if proven else Status.FEASIBLE,
        assignments=assignments,
        staffing=staffing,
        objective=objective,
        unserved=explain_unserved(instance, assignments, staffing),
        stats=stats,
    )


def _empty(instance: Instance, status: str, stats: dict[str, Any]) -> Solution:
    return Solution(instance.school.id, status, (), (), Objective(0, 0, 0, 0, 0), (), stats)


def _size(built: AllocationModel) -> dict[str, int]:
    proto = built.model.proto
    return {"day_classes": len(built.classes), "variables": len(proto.variables),
            "constraints": len(proto.constraints)}


def _same_grouping(coarse: list[DayClass], fine: list[DayClass]) -> bool:
    return all(len(c.groups) == len(f.groups) for c, f in zip(coarse, fine, strict=True)) and all(
        not scores for c in fine for scores in c.groups
    )


def _hint_between(first: LexicographicSolver, coarse: AllocationModel, fine: AllocationModel) -> None:
    """Start the later levels from the level-1 seats and staffing: both models share those variables."""
    model = fine.model
    model.clear_hints()  # type: ignore[no-untyped-call]
    for seat_key, var in fine.seats.items():
        model.add_hint(var, first.value(coarse.seats[seat_key]))
    for session_id, var in fine.teachers.items():
        model.add_hint(var, first.value(coarse.teachers[session_id]))
    for lead_key, var in fine.leads.items():
        model.add_hint(var, first.value(coarse.leads[lead_key]))


def _assign_pupils(lexi: LexicographicSolver, built: AllocationModel) -> tuple[Assignment, ...]:
    """Turn seat counts into pupils: within a group, the lottery order decides who is covered."""
    pairs: list[Assignment] = []
    for k, day_class in enumerate(built.classes):
        labelled: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
        for u, group in enumerate(day_class.groups.values()):
            covered: list[str] = []
            waiting: list[str] = []
            for level, pupils in sorted(group.pupils_by_priority.items(),
                                        key=lambda item: -built.instance.priority_weights[item[0]]):
                n = lexi.value(built.covered[(k, u, level)])
                covered += pupils[:n]
                waiting += pupils[n:]
            for period in day_class.periods:
                seated = covered + waiting[: lexi.value(built.seated[(k, u, period)]) - len(covered)]
                cursor = 0
                for activity, _score in sorted(group.scores, key=lambda item: -item[1]):
                    liked = built.liked.get((k, u, period, activity))
                    n = lexi.value(liked) if liked is not None else 0
                    labelled[period] += [(activity, pupil) for pupil in seated[cursor:cursor + n]]
                    cursor += n
                labelled[period] += [(None, pupil) for pupil in seated[cursor:]]
        for period, sessions in day_class.eligible.items():
            free = {s.id: lexi.value(built.seats[(k, s.id)]) for s in sessions}
            # Pupils who count a liked activity go to its sessions first; everyone else fills what is left.
            queue = sorted(labelled[period], key=lambda item: item[0] is None)
            for liked_activity, pupil in queue:
                choice = next((s.id for s in sessions if free[s.id] > 0 and s.activity == liked_activity), None)
                if choice is None:
                    choice = next(s.id for s in sessions if free[s.id] > 0)
                free[choice] -= 1
                pairs.append(Assignment(pupil, choice))
    return tuple(sorted(pairs, key=lambda a: (a.pupil, a.session)))


def _assign_teachers(lexi: LexicographicSolver, built: AllocationModel) -> tuple[Staffing, ...]:
    """Hand each staffing group's teachers to its sessions, as many as each session needs."""
    teachers_by_group: dict[tuple[int, str, str], list[str]] = defaultdict(list)
    for (teacher_id, group), var in built.leads.items():
        if lexi.value(var):
            teachers_by_group[group].append(teacher_id)
    pairs: list[Staffing] = []
    for session_id, var in sorted(built.teachers.items()):
        need = lexi.value(var)
        group = staffing_group(built.instance, built.instance.session_by_id[session_id])
        for _ in range(need):
            pairs.append(Staffing(teachers_by_group[group].pop(), session_id))
    return tuple(sorted(pairs, key=lambda s: (s.session, s.teacher)))
