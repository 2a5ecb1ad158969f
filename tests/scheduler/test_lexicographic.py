"""Edge cases of the lexicographic levels (scheduler/lexicographic.py)."""

from __future__ import annotations

import pytest

from bench.crowded import crowded
from scheduler.domain import Instance, Status
from scheduler.groups import build_day_classes
from scheduler.lexicographic import LevelResult, LexicographicSolver, SolverConfig, hold, trivial_bound, value_at
from scheduler.model import AllocationModel
from tests.scheduler.builders import satisfies_every_row


def test_the_trivial_bound_of_an_empty_sum_is_zero() -> None:
    """A level over nothing (`sum([])` is the int 0, e.g. advice with no hire possible) has bound 0, not a crash."""
    assert trivial_bound(sum([]), maximise=True) == 0.0
    assert trivial_bound(sum([]), maximise=False) == 0.0


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
