"""Solve one school's term: the four objective levels in strict order, then concrete pupils and teachers.

Levels 1 (coverage) and 2 (stability) are solved on the coarse grouping, where preferences are ignored; level 3
on groups that also tell preferences apart; level 4 (teacher load) on the coarse grouping again, with each class's
seats per activity kept as level 3 chose them, checked against lower bounds (see `solve`). Each level keeps every
earlier level at the value found, so a lower level is never traded for a higher one.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ortools.graph.python import max_flow
from ortools.linear_solver import pywraplp

from scheduler import validation
from scheduler.domain import Assignment, Instance, Objective, Solution, Staffing, Status
from scheduler.explain import explain_unserved
from scheduler.fixed import check_fixed
from scheduler.groups import DayClass, build_day_classes
from scheduler.model import AllocationModel, Expr, StaffingGroup, Var, staffing_group, total

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, dict[str, Any]], None]
"""Called with a stage name (`coverage`, `stability`, `preference`, `load`, `staffing`, `done`) and details."""


class SolveCancelled(Exception):
    """Raised when the caller's `should_stop` asked the solver to give up."""


BACKENDS = ("SCIP", "HIGHS")


@dataclass(frozen=True)
class SolverConfig:
    time_limit: float = 60.0
    """Wall-clock seconds for all levels together, model building included."""
    workers: int = 2
    """Threads the MIP backend may use (SCIP runs single-threaded; HiGHS uses them)."""
    seed: int = 0
    """Drives the MIP's randomisation and the lottery that picks, among interchangeable pupils, who gets a seat."""
    backend: str = "SCIP"
    coverage_share: float = 0.8
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
            solver.SetSolverSpecificParametersAsString(f"randomization/randomseedshift = {config.seed}\n")
        if config.log:
            solver.EnableOutput()
        self.params = pywraplp.MPSolverParameters()
        self.params.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, 0.0)

    def hint_from(self, source: LexicographicSolver) -> None:
        """Start from another model's solution over the same day classes (grouped alike or not)."""
        if source.values is not None:
            known = transfer(source, source.built, self.built)
            self.built.solver.SetHint(list(known), list(known.values()))

    def hint(self, values: list[float] | None) -> None:
        """Start from a solution of a model built the same way (same variables in the same order)."""
        if values is not None:
            self.built.solver.SetHint(self.built.solver.variables(), values)

    @property
    def have_solution(self) -> bool:
        return self.values is not None

    def optimise(self, name: str, expr: Expr, *, maximise: bool, seconds: float) -> LevelResult:
        solver = self.built.solver
        if maximise:
            solver.Maximize(expr)
        else:
            solver.Minimize(expr)
        solver.SetTimeLimit(max(50, int(seconds * 1000)))
        began = time.monotonic()
        code = self._solve_watching_for_stop(solver)
        seconds_used = time.monotonic() - began
        if code in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE) and not self._trustworthy(solver):
            logger.warning("level %s: the backend's answer breaks the model; treated as no solution", name)
            code = pywraplp.Solver.NOT_SOLVED
        if code in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            value = round(solver.Objective().Value())
            raw_bound = solver.Objective().BestBound()
            bound = math.floor(raw_bound + 1e-6) if maximise else math.ceil(raw_bound - 1e-6)
            proven = code == pywraplp.Solver.OPTIMAL or bound == value
            status = Status.OPTIMAL if proven else Status.FEASIBLE
            if proven:
                bound = value
            variables = solver.variables()
            self.values = [v.solution_value() for v in variables]
            solver.SetHint(variables, self.values)
            if maximise:
                solver.Add(expr >= value - 0.5, f"hold_{name}")
            else:
                solver.Add(expr <= value + 0.5, f"hold_{name}")
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

    @staticmethod
    def _trustworthy(solver: pywraplp.Solver) -> bool:
        """A time-limited backend may hand back a point that is not a solution: check every row and integer."""
        if not solver.VerifySolution(1e-6, False):
            return False
        return all(abs(v.solution_value() - round(v.solution_value())) < 1e-6
                   for v in solver.variables() if v.integer())

    def _solve_watching_for_stop(self, solver: pywraplp.Solver) -> int:
        should_stop = self.config.should_stop
        if should_stop is None:
            return int(solver.Solve(self.params))
        if should_stop():
            raise SolveCancelled("stopped before solving")
        done = threading.Event()
        stopped = threading.Event()

        def watch() -> None:
            while not done.wait(0.25):
                if should_stop():
                    stopped.set()
                    solver.InterruptSolve()
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            code = int(solver.Solve(self.params))
        finally:
            done.set()
            watcher.join()
        if stopped.is_set():
            raise SolveCancelled("stopped while solving")
        return code

    def value(self, var: Var) -> int:
        assert self.values is not None, "no level has a solution"
        return int(round(self.values[var.index()]))


def solve(instance: Instance, config: SolverConfig | None = None,
          progress: ProgressCallback | None = None) -> Solution:
    """Allocate pupils and teachers to sessions, maximising the four levels of PROBLEM.md in order."""
    config = config or SolverConfig()
    started = time.monotonic()
    deadline = started + config.time_limit
    if config.backend not in BACKENDS:
        raise ValueError(f"unknown backend {config.backend!r}; choose one of {', '.join(BACKENDS)}")
    stats: dict[str, Any] = {"solver": f"{config.backend} MIP over aggregated pupils", "workers": config.workers,
                             "seed": config.seed, "time_limit": config.time_limit}

    broken = check_fixed(instance)
    if broken:
        stats["infeasible_fixed"] = broken
        stats["seconds"] = round(time.monotonic() - started, 3)
        return _empty(instance, Status.INFEASIBLE, stats)

    coarse = build_day_classes(instance, by_preference=False, seed=config.seed)
    first_model = AllocationModel(instance, coarse, backend=config.backend)
    stats["coverage_model"] = _size(first_model)
    first = LexicographicSolver(first_model, config, started, progress)
    level1_time = max(0.1, (deadline - time.monotonic()) * config.coverage_share)
    coverage = first.optimise("coverage", first_model.levels().coverage, maximise=True, seconds=level1_time)
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
    held = {"coverage": coverage.value}
    if instance.previous:
        stability = first.optimise("stability", first_model.levels().stability, maximise=True,
                                   seconds=_share(deadline, 4))
        if first.have_solution and stability.status != Status.UNKNOWN:
            held["stability"] = stability.value
    results = first.results

    # Level 3 needs pupils told apart by preference; the seats it chooses per activity then stay put.
    labels, label_model = first, first_model
    fine = build_day_classes(instance, by_preference=True, seed=config.seed)
    if not _same_grouping(coarse, fine):
        fine_model = AllocationModel(instance, fine, backend=config.backend)
        stats["preference_model"] = _size(fine_model)
        _hold(fine_model, held)
        third = LexicographicSolver(fine_model, config, started, progress)
        third.hint_from(first)
        third.optimise("preference", fine_model.levels().preference, maximise=True,
                       seconds=0.6 * _share(deadline, 1))
        results = results + third.results
        if third.have_solution:
            labels, label_model = third, fine_model
            held["preference"] = third.results[-1].value

    # Level 4 on the coarse grouping, keeping every class's seats per activity as level 3 left them: small and
    # fast. It is proven when a bound without that restriction meets it; otherwise the exact preference-grouped
    # model decides, and takes over when it does better.
    refined = label_model is not first_model
    last_model = AllocationModel(instance, coarse, backend=config.backend)
    _hold(last_model, {name: value for name, value in held.items() if name != "preference"})
    if refined:
        _keep_activity_seats(last_model, labels, label_model)
    last = LexicographicSolver(last_model, config, started, progress)
    last.hint_from(labels)
    lexi, built = last, last_model
    for name, remaining in (("max_load", 2), ("staffing", 1)):
        result = lexi.optimise(name, getattr(built.levels(), name), maximise=False,
                               seconds=_share(deadline, 2 * remaining if refined and lexi is last else remaining))
        if result.status not in (Status.OPTIMAL, Status.FEASIBLE):
            continue
        if refined and lexi is last:
            bound = _bound(instance, coarse, config, held, name, _share(deadline, 4 * remaining - 1), started,
                           last.values)
            if bound < result.value:
                exact_model = AllocationModel(instance, fine, backend=config.backend)
                _hold(exact_model, held)
                exact = LexicographicSolver(exact_model, config, started, None)
                exact.hint(labels.values)
                challenge = exact.optimise(name, getattr(exact_model.levels(), name), maximise=False,
                                           seconds=_share(deadline, 2 * remaining - 1))
                if challenge.status in (Status.OPTIMAL, Status.FEASIBLE):
                    bound = max(bound, challenge.bound)
                    if challenge.value < result.value:
                        lexi, built = exact, exact_model
                        labels, label_model = exact, exact_model
                        result.value = challenge.value
            result.bound = min(bound, result.value)
            result.status = Status.OPTIMAL if result.bound >= result.value else Status.FEASIBLE
        held[name] = result.value
    results = results + last.results
    if not last.have_solution:
        lexi, built = labels, label_model
    elif not refined:
        labels, label_model = lexi, built

    assignments = _assign_pupils(labels, label_model, lexi, built)
    staffing = _assign_teachers(lexi, built)
    proven = all(r.status == Status.OPTIMAL for r in results)
    stats["levels"] = [vars(r) for r in results]
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


MAXIMISED = ("coverage", "stability", "preference")


def transfer(source: LexicographicSolver, src: AllocationModel, dst: AllocationModel) -> dict[Var, int]:
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


def _share(deadline: float, parts: int) -> float:
    """An even share of the time left for the next of `parts` solves."""
    return max(0.05, (deadline - time.monotonic()) / max(1, parts))


def _hold(built: AllocationModel, held: dict[str, int]) -> None:
    """Keep every level already decided at its value in a freshly built model."""
    levels = built.levels()
    for name, value in held.items():
        expr = getattr(levels, name)
        if name in MAXIMISED:
            built.solver.Add(expr >= value - 0.5, f"hold_{name}")
        else:
            built.solver.Add(expr <= value + 0.5, f"hold_{name}")


def _keep_activity_seats(built: AllocationModel, labels: LexicographicSolver, label_model: AllocationModel) -> None:
    """Each class keeps, per period and activity, the seats and covered pupils that the preference level chose."""
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


def _bound(instance: Instance, classes: list[DayClass], config: SolverConfig, held: dict[str, int],
           name: str, seconds: float, started: float, start: list[float] | None) -> int:
    """A proven lower bound for a minimised level: the same level with preference left free (coarse grouping)."""
    relaxed = AllocationModel(instance, classes, backend=config.backend)
    _hold(relaxed, {level: value for level, value in held.items() if level != "preference"})
    lower = LexicographicSolver(relaxed, config, started, None)
    lower.hint(start)
    result = lower.optimise(name, getattr(relaxed.levels(), name), maximise=False, seconds=seconds)
    return result.bound if result.status in (Status.OPTIMAL, Status.FEASIBLE) else 0


def _empty(instance: Instance, status: str, stats: dict[str, Any]) -> Solution:
    return Solution(instance.school.id, status, (), (), Objective(0, 0, 0, 0, 0), (), stats)


def _size(built: AllocationModel) -> dict[str, int]:
    solver = built.solver
    return {"day_classes": len(built.classes), "groups": sum(len(c.groups) for c in built.classes),
            "variables": solver.NumVariables(), "constraints": solver.NumConstraints()}


def _same_grouping(coarse: list[DayClass], fine: list[DayClass]) -> bool:
    return all(len(c.groups) == len(f.groups) for c, f in zip(coarse, fine, strict=True)) and all(
        not scores for c in fine for scores in c.groups
    )


def _assign_pupils(labels: LexicographicSolver, label_model: AllocationModel,
                   seats: LexicographicSolver, seat_model: AllocationModel) -> tuple[Assignment, ...]:
    """Turn counts into pupils: the label model says who is covered and who sits in a liked activity (within a
    group the lottery order decides), the seat model how many of each class sit in each session."""
    pairs: list[Assignment] = []
    for k, day_class in enumerate(label_model.classes):
        labelled: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
        for u, group in enumerate(day_class.groups.values()):
            covered: list[str] = []
            waiting: list[str] = []
            for level, pupils in sorted(group.pupils_by_priority.items(),
                                        key=lambda item: -label_model.instance.priority_weights[item[0]]):
                n = labels.value(label_model.covered[(k, u, level)])
                covered += pupils[:n]
                waiting += pupils[n:]
            for period in day_class.periods:
                seated = covered + waiting[: labels.value(label_model.seated[(k, u, period)]) - len(covered)]
                cursor = 0
                for activity, _score in sorted(group.scores, key=lambda item: -item[1]):
                    liked = label_model.liked.get((k, u, period, activity))
                    n = labels.value(liked) if liked is not None else 0
                    labelled[period] += [(activity, pupil) for pupil in seated[cursor:cursor + n]]
                    cursor += n
                labelled[period] += [(None, pupil) for pupil in seated[cursor:]]
        for period, sessions in day_class.eligible.items():
            free = {s.id: seats.value(seat_model.seats[(k, s.id)]) for s in sessions}
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
    """Whole teachers from the flow: a max-flow with the levels' integral demands and load cap.

    The model's `leads` may be fractional at an optimal vertex-free point; the flow network with integral
    capacities has an integral maximum flow of the same value, which is what hands out real teachers.
    """
    instance = built.instance
    need: dict[StaffingGroup, int] = defaultdict(int)
    for session_id, var in built.teachers.items():
        need[staffing_group(instance, instance.session_by_id[session_id])] += lexi.value(var)
    cap = lexi.value(built.max_load)
    flow = max_flow.SimpleMaxFlow()
    source, sink = 0, 1
    nodes: dict[object, int] = {}

    def node(key: object) -> int:
        if key not in nodes:
            nodes[key] = len(nodes) + 2
        return nodes[key]

    arcs: dict[int, tuple[str, StaffingGroup]] = {}
    for teacher in instance.teachers:
        groups = [g for (t, g) in built.leads if t == teacher.id and need.get(g, 0) > 0]
        if not groups:
            continue
        flow.add_arc_with_capacity(source, node(teacher.id), min(teacher.max_sessions, cap))
        for group in sorted(groups):
            slot = (teacher.id, group[0], group[1])
            if slot not in nodes:
                flow.add_arc_with_capacity(node(teacher.id), node(slot), 1)
            arc = flow.add_arc_with_capacity(node(slot), node(group), 1)
            arcs[arc] = (teacher.id, group)
    for group, count in sorted(need.items()):
        if count:
            flow.add_arc_with_capacity(node(group), sink, count)
    status = flow.solve(source, sink)
    if status != flow.OPTIMAL or flow.optimal_flow() != sum(need.values()):
        raise RuntimeError("the staffing flow could not be completed; the model and the flow disagree")
    teachers_by_group: dict[StaffingGroup, list[str]] = defaultdict(list)
    for arc, (teacher_id, group) in arcs.items():
        if flow.flow(arc) > 0:
            teachers_by_group[group].append(teacher_id)
    pairs: list[Staffing] = []
    for session_id, var in sorted(built.teachers.items()):
        group = staffing_group(instance, instance.session_by_id[session_id])
        for _ in range(lexi.value(var)):
            pairs.append(Staffing(teachers_by_group[group].pop(), session_id))
    return tuple(sorted(pairs, key=lambda s: (s.session, s.teacher)))
