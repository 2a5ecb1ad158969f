"""Edge cases of the lexicographic levels (scheduler/lexicographic.py)."""

from __future__ import annotations

import logging

import pytest
from ortools.linear_solver import linear_solver_pb2, pywraplp

from bench.crowded import crowded
from scheduler.day_cuts import DAY_SEARCH_PARAMETERS
from scheduler.daywise import NEAR_PARAMETERS
from scheduler.domain import Instance, Status
from scheduler.groups import build_day_classes
from scheduler.lexicographic import (
    LevelResult,
    LexicographicSolver,
    SolverConfig,
    hold,
    limit_time,
    solver_from_proto,
    trivial_bound,
    tune_scip,
    value_at,
)
from scheduler.model import AllocationModel
from tests.scheduler.builders import satisfies_every_row


def test_the_trivial_bound_of_an_empty_sum_is_zero() -> None:
    """A level over nothing (`sum([])` is the int 0, e.g. advice with no hire possible) has bound 0, not a crash."""
    assert trivial_bound(sum([]), maximise=True) == 0.0
    assert trivial_bound(sum([]), maximise=False) == 0.0


@pytest.mark.parametrize("more", ["", DAY_SEARCH_PARAMETERS, NEAR_PARAMETERS])
def test_scip_takes_every_set_of_parameters_the_searches_use(more: str, caplog: pytest.LogCaptureFixture) -> None:
    """Every search's parameters are names this SCIP build knows: a refused set leaves the search on SCIP's own
    settings, which only a warning in the log would show."""
    solver = pywraplp.Solver.CreateSolver("SCIP")
    assert tune_scip(solver, 3, more)
    with caplog.at_level(logging.WARNING, logger="scheduler"):
        assert not tune_scip(solver, 3, "branching/no_such_rule/priority = 1\n")
    assert "SCIP refused the parameters" in caplog.text


def test_a_copy_of_a_model_is_searched_apart() -> None:
    """`solver_from_proto` gives a solver of its own (the model's own is left as it was), or None for a model the
    backend refuses."""
    inst = crowded(60, seed=1)
    model = AllocationModel(inst, build_day_classes(inst, by_preference=False, seed=0))
    proto = linear_solver_pb2.MPModelProto()
    model.solver.ExportModelToProto(proto)
    copy = solver_from_proto(proto, "SCIP")
    assert copy is not None and copy is not model.solver
    assert copy.NumVariables() == model.solver.NumVariables() and copy.NumConstraints() == model.solver.NumConstraints()
    copy.Constraint(0, 0).SetCoefficient(copy.variables()[0], 1)
    assert copy.NumConstraints() == model.solver.NumConstraints() + 1
    broken = linear_solver_pb2.MPModelProto()
    broken.CopyFrom(proto)
    broken.constraint[0].var_index.append(len(proto.variable) + 5)  # a row naming a variable that is not there
    broken.constraint[0].coefficient.append(1.0)
    assert solver_from_proto(broken, "SCIP") is None


class _Limits:
    """Records the time limits a solver is handed (pywraplp has no getter for them)."""

    def __init__(self) -> None:
        self.ms: list[int] = []

    def SetTimeLimit(self, ms: int) -> None:  # noqa: N802 - pywraplp's name
        self.ms.append(ms)


def test_a_backend_is_never_handed_no_time_limit() -> None:
    """OR-Tools reads a limit of 0 ms as none at all: `limit_time` rounds a deadline that has (nearly) passed up to
    its floor, and hands over whole milliseconds otherwise."""
    limits = _Limits()
    for seconds, floor in [(0.0, 1), (-3.0, 1), (0.0004, 50), (2.5, 1), (0.01, 50)]:
        limit_time(limits, seconds, at_least_ms=floor)
    assert limits.ms == [1, 1, 50, 2500, 50]


def _level_3(inst: Instance, coverage: int, staffing: dict[str, int] | None = None) -> int:
    """Level 3's optimum on a model of its own holding level 1; with `staffing` (a value by staffing variable's
    name), within that staffing (held by the variables' bounds)."""
    model = AllocationModel(inst, build_day_classes(inst, by_preference=True, seed=0))
    hold(model, {"coverage": coverage})
    for var in [*model.teachers.values(), *model.runs.values()]:
        if staffing is not None:
            var.SetBounds(staffing[var.name()], staffing[var.name()])
    lexi = LexicographicSolver(model, SolverConfig(), 0.0, None)
    result = lexi.optimise("preference", model.preference_level(), maximise=True, seconds=60)
    assert result.status == Status.OPTIMAL
    return result.value


@pytest.mark.parametrize("size, seed", [(120, 5), (150, 4)])
def test_level_3_searched_again_within_its_plans_staffing(size: int, seed: int) -> None:
    """Level 1's plan taken as level 3's answer, then searched again within its staffing: the best seating of that
    staffing, no lower; every row kept; the bound still the whole model's; and the staffing let go afterwards, so
    the whole level searched on the same model still reaches its optimum."""
    inst = crowded(size, seed=seed)
    model = AllocationModel(inst, build_day_classes(inst, by_preference=True, seed=0))
    lexi = LexicographicSolver(model, SolverConfig(), 0.0, None)
    covered = lexi.optimise("coverage", model.coverage_level(), maximise=True, seconds=60)
    assert covered.status == Status.OPTIMAL and lexi.values is not None
    start = model.best_seating(lexi.values)
    staffing = {var.name(): round(start[var.index()]) for var in [*model.teachers.values(), *model.runs.values()]}
    points = model.preference_level()
    optimum = _level_3(inst, covered.value)
    within = _level_3(inst, covered.value, staffing)
    assert value_at(points, start) < within <= optimum  # the start is not the best seating of its staffing

    result = lexi.accept("preference", start, optimum, 0.0)
    assert lexi.again_within_staffing(result, 60.0) is result
    assert result.value == within == round(value_at(points, lexi.values))
    assert result.bound == (optimum if within < optimum else within)
    assert result.status == (Status.FEASIBLE if within < optimum else Status.OPTIMAL)
    satisfies_every_row(model, lexi.values)
    assert {name: round(lexi.values[var.index()]) for name, var in
            ((v.name(), v) for v in [*model.teachers.values(), *model.runs.values()])} == staffing
    assert [r.name for r in lexi.results] == ["coverage", "preference"]
    again = lexi.optimise("preference", points, maximise=True, seconds=60)
    assert again.status == Status.OPTIMAL and again.value == optimum


def test_a_proven_level_is_not_searched_again() -> None:
    inst = crowded(120, seed=5)
    model = AllocationModel(inst, build_day_classes(inst, by_preference=True, seed=0))
    lexi = LexicographicSolver(model, SolverConfig(), 0.0, None)
    result = lexi.optimise("preference", model.preference_level(), maximise=True, seconds=60)
    assert result.status == Status.OPTIMAL
    rows = model.solver.NumConstraints()
    assert lexi.again_within_staffing(result, 60.0) is result
    assert model.solver.NumConstraints() == rows


def test_level_3_searched_within_its_starts_staffing_first_then_as_a_whole() -> None:
    """Level 1's staffing seated by preference first, then the whole model from there: the whole model's optimum
    and bound, one result for the level, and the staffing let go (the optimum staffs differently)."""
    inst = crowded(150, seed=4)
    model = AllocationModel(inst, build_day_classes(inst, by_preference=True, seed=0))
    lexi = LexicographicSolver(model, SolverConfig(), 0.0, None)
    covered = lexi.optimise("coverage", model.coverage_level(), maximise=True, seconds=60)
    assert covered.status == Status.OPTIMAL and lexi.values is not None
    staffing = lexi.staffing_of(lexi.values)
    optimum = _level_3(inst, covered.value)
    within = _level_3(inst, covered.value, {model.solver.variables()[i].name(): v for i, v in staffing.items()})
    assert within < optimum

    result = lexi.within_staffing_first("preference", staffing, 120.0)
    assert (result.status, result.value, result.bound) == (Status.OPTIMAL, optimum, optimum)
    assert [r.name for r in lexi.results] == ["coverage", "preference"]
    satisfies_every_row(model, lexi.values)
    assert lexi.staffing_of(lexi.values) != staffing


def test_a_plan_seated_by_a_flow_takes_the_searchs_place_only_when_it_scores_more() -> None:
    """Level 1's plan taken as level 3's answer is seated again within its staffing: more points, every row kept
    (the level held at its new value), the staffing unchanged. A plan that scores less leaves the result alone; a
    level whose search found nothing (or was skipped) takes the plan, against the bound that needs no search."""
    inst = crowded(150, seed=4)
    model = AllocationModel(inst, build_day_classes(inst, by_preference=True, seed=0))
    lexi = LexicographicSolver(model, SolverConfig(), 0.0, None)
    lexi.optimise("coverage", model.coverage_level(), maximise=True, seconds=60)
    assert lexi.values is not None
    plan = list(lexi.values)
    points = model.preference_level()
    seated = model.seating_within_staffing(plan)
    assert value_at(points, seated) > value_at(points, plan)

    result = lexi.accept("preference", plan, 10**6, 0.0)
    assert lexi.seated_within_staffing(result) is result
    assert result.value == round(value_at(points, seated)) == round(value_at(points, lexi.values))
    assert result.status == Status.FEASIBLE and result.bound == 10**6
    satisfies_every_row(model, lexi.values)
    assert lexi.staffing_of(lexi.values) == lexi.staffing_of(plan)
    before = (result.value, list(lexi.values))
    lexi.take_better(result, plan)
    assert (result.value, lexi.values) == before

    found_none = LevelResult("preference", Status.UNKNOWN, 0, 0, 0.0, skipped=True)
    lexi.take_better(found_none, seated)
    assert (found_none.status, found_none.value) == (Status.FEASIBLE, round(value_at(points, seated)))
    assert not found_none.skipped
    assert found_none.bound == lexi.trivial_bound("preference") > found_none.value
