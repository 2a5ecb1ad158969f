"""Continuous `seated` and `liked` counts: a point of the model becomes whole pupils without losing level 3."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.crowded import crowded
from scheduler.domain import Instance, Status
from scheduler.groups import build_day_classes
from scheduler.lexicographic import LexicographicSolver, SolverConfig, value_at
from scheduler.model import AllocationModel
from tests.scheduler.builders import satisfies_every_row
from tests.scheduler.random_instances import random_instance


def _check_fractional_point_becomes_whole(inst: Instance) -> None:
    model = AllocationModel(inst, build_day_classes(inst, by_preference=True, seed=0))
    lexi = LexicographicSolver(model, SolverConfig(), 0.0, None)
    lexi.optimise("coverage", model.coverage_level(), maximise=True, seconds=20)
    if lexi.values is None:  # pins that no plan keeps
        return
    # Half a pupil less in every liked count keeps every row (liked counts only meet upper bounds).
    point = list(lexi.values)
    for var in model.liked.values():
        point[var.index()] = max(0.0, point[var.index()] - 0.5)
    points = model.preference_level()
    fractional = value_at(points, point)
    whole = model.whole_counts(point)
    satisfies_every_row(model, point)
    satisfies_every_row(model, whole)
    counts = [*model.seated.values(), *model.liked.values()]
    assert all(whole[v.index()] == round(whole[v.index()]) for v in counts)
    assert value_at(points, whole) >= fractional
    for name in ("seats", "covered", "teachers", "runs", "leads"):  # only the pupil-side counts change
        for var in getattr(model, name).values():
            assert whole[var.index()] == point[var.index()]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fixed=st.booleans())
def test_a_fractional_point_becomes_whole_pupils_without_losing_points(seed: int, fixed: bool) -> None:
    _check_fractional_point_becomes_whole(random_instance(seed, pupils=10, with_fixed=fixed))


def test_whole_counts_on_a_crowded_school() -> None:
    _check_fractional_point_becomes_whole(crowded(150, seed=4))


def test_a_whole_point_comes_back_unchanged() -> None:
    inst = crowded(120, seed=5)
    model = AllocationModel(inst, build_day_classes(inst, by_preference=True, seed=0))
    lexi = LexicographicSolver(model, SolverConfig(), 0.0, None)
    lexi.optimise("preference", model.preference_level(), maximise=True, seconds=20)
    assert lexi.values is not None
    assert model.whole_counts(lexi.values) is lexi.values


# ------------------------------------------------------------ seating within a plan's staffing


def _level_1_point(inst: Instance) -> tuple[AllocationModel, LexicographicSolver, list[float]] | None:
    """Level 1 solved on level 3's grouping (a plan that seats nobody by preference), its level held."""
    model = AllocationModel(inst, build_day_classes(inst, by_preference=True, seed=0))
    lexi = LexicographicSolver(model, SolverConfig(), 0.0, None)
    lexi.optimise("coverage", model.coverage_level(), maximise=True, seconds=20)
    if lexi.values is None:  # pins that no plan keeps
        return None
    if inst.previous:
        lexi.optimise("stability", model.stability_level(), maximise=True, seconds=20)
    return model, lexi, list(lexi.values)


def _held_optimum(model: AllocationModel, point: list[float]) -> int:
    """Level 3's optimum with the staffing, the leads, the covered pupils and every pinned or previous class's
    seats of `point` held by the variables' bounds: what `seating_within_staffing` may choose from."""
    held = [*model.teachers.values(), *model.runs.values(), *model.leads.values(), *model.covered.values()]
    for k, day_class in enumerate(model.classes):
        if day_class.fixed or day_class.previous:
            held += [model.seats[(k, s.id)] for s in day_class.sessions()]
    bounds = [(var, var.lb(), var.ub()) for var in held]
    for var in held:
        var.SetBounds(point[var.index()], point[var.index()])
    try:
        lexi = LexicographicSolver(model, SolverConfig(), 0.0, None)
        result = lexi.optimise("preference", model.preference_level(), maximise=True, seconds=60)
        assert result.status == Status.OPTIMAL
        return result.value
    finally:
        for var, lower, upper in bounds:
            var.SetBounds(lower, upper)


def _check_seating_within_staffing(inst: Instance) -> None:
    solved = _level_1_point(inst)
    if solved is None:
        return
    model, _, point = solved
    seated = model.seating_within_staffing(point)
    satisfies_every_row(model, seated)  # the level-1 (and level-2) hold rows included
    for name in ("covered", "teachers", "runs", "leads"):
        for var in getattr(model, name).values():
            assert seated[var.index()] == point[var.index()], var.name()
    assert seated[model.max_load.index()] == point[model.max_load.index()]
    points = model.preference_level()
    assert value_at(points, seated) == _held_optimum(model, point) >= value_at(points, point)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fixed=st.booleans(), previous=st.booleans())
def test_seating_within_a_plans_staffing_is_the_best_the_staffing_allows(seed: int, fixed: bool,
                                                                          previous: bool) -> None:
    """Pupils seated again by one min-cost flow per slot keep every row, every level before 3, the staffing and
    the covered pupils, and score exactly what a MIP holding those finds (pinned and previous classes held)."""
    _check_seating_within_staffing(random_instance(seed, pupils=10, with_fixed=fixed, with_previous=previous))


def test_seating_within_staffing_moves_pupils_between_sessions_on_a_crowded_school() -> None:
    """On a crowded school level 1's plan seats many pupils away from the clubs they ranked; seated again within
    its staffing, they move into them."""
    inst = crowded(150, seed=4)
    solved = _level_1_point(inst)
    assert solved is not None
    model, _, point = solved
    seated = model.seating_within_staffing(point)
    assert any(seated[v.index()] != point[v.index()] for v in model.seats.values())
    points = model.preference_level()
    assert value_at(points, seated) > value_at(points, point)
    _check_seating_within_staffing(inst)
