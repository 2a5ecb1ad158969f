"""Continuous `seated` and `liked` counts: a point of the model becomes whole pupils without losing level 3."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.crowded import crowded
from scheduler.domain import Instance
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
