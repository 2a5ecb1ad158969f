"""The day-value rows (`scheduler.day_cuts`): never a plan cut off, and the small school they were made for."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import coverage as coverage_module
from scheduler import day_cuts, validation
from scheduler.coverage import solve_coverage
from scheduler.day_cuts import add_day_value_rows
from scheduler.daywise import relaxation_bound
from scheduler.deadline import Deadline
from scheduler.domain import Status
from scheduler.generate import generate
from scheduler.groups import build_day_classes
from scheduler.lexicographic import LexicographicSolver, SolverConfig, value_at
from scheduler.model import AllocationModel
from scheduler.solve import solve
from tests.scheduler.builders import model_of
from tests.scheduler.random_instances import random_instance
from tests.scheduler.reference import reference_optimum


def _coverage(week: AllocationModel) -> tuple[str, int]:
    lexi = LexicographicSolver(week, SolverConfig(), 0.0, None)
    result = lexi.optimise("coverage", week.coverage_level(), maximise=True, seconds=30)
    return result.status, result.value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fixed=st.booleans(), days=st.integers(1, 3))
def test_the_rows_keep_every_plan_and_bound_the_optimum(seed: int, fixed: bool, days: int) -> None:
    inst = random_instance(seed, pupils=10, days=days, with_fixed=fixed)
    expected = reference_optimum(inst, levels=1)
    week = model_of(inst)
    rows = add_day_value_rows(week, Deadline.after(30), seed=seed)
    if expected is None:
        return
    # The week's relaxation with the rows still bounds the optimum, and the optimum is still reached.
    assert rows.bound is None or rows.bound >= expected["coverage"]
    assert _coverage(week) == (Status.OPTIMAL, expected["coverage"])


CUTTING = [(10, 4, False), (10, 106, False), (10, 141, True), (10, 211, False), (10, 245, False), (10, 375, True),
           (14, 0, True), (14, 63, True), (14, 94, False), (10, 125, False), (14, 158, False), (10, 353, False)]
"""(pupils, seed, pins) of random three-day instances whose relaxation the rows bring down."""


@pytest.mark.parametrize(("pupils", "seed", "fixed"), CUTTING)
def test_rows_that_cut_the_relaxation_keep_the_optimum(pupils: int, seed: int, fixed: bool) -> None:
    inst = random_instance(seed, pupils=pupils, days=3, with_fixed=fixed)
    expected = reference_optimum(inst, levels=1)
    assert expected is not None
    week = model_of(inst)
    before = relaxation_bound(week, week.coverage_level(), Deadline.after(30))
    rows = add_day_value_rows(week, Deadline.after(30), seed=seed)
    assert before is not None and rows.bound is not None
    assert before > rows.bound >= expected["coverage"]
    assert _coverage(week) == (Status.OPTIMAL, expected["coverage"])


SMALL_SCHOOL = (239, 100_060)
"""The city's school KM-0061 (`bench.city`): 239 pupils, teachers short; SCIP alone had not proven its best plan
(1,414) after 75 s, the bound still at 1,415."""


@pytest.fixture(scope="module")
def small_school() -> object:
    return generate(*SMALL_SCHOOL)


def test_the_rows_bring_a_small_schools_relaxation_down_to_its_best_plan(small_school: object) -> None:
    week = model_of(small_school)
    before = relaxation_bound(week, week.coverage_level(), Deadline.after(30))
    rows = add_day_value_rows(week, Deadline.after(60))
    after = relaxation_bound(week, week.coverage_level(), Deadline.after(30))
    assert before is not None and after is not None and rows.bound == after
    assert before >= 1_429 and after == 1_414 and rows.rows > 0
    assert _coverage(week) == (Status.OPTIMAL, 1_414)


def test_a_small_schools_week_search_starts_with_the_rows_and_is_proven(small_school: object) -> None:
    solution = solve(small_school, SolverConfig(time_limit=30, seed=1))  # type: ignore[arg-type]
    coverage = next(level for level in solution.stats["levels"] if level["name"] == "coverage")
    assert (coverage["status"], coverage["value"], coverage["bound"]) == (Status.OPTIMAL, 1_414, 1_414)
    assert solution.stats["day_rows"]["rows"] > 0
    assert solution.stats["phases"]["day_rows"] > 0
    assert sum(solution.stats["phases"].values()) <= solution.stats["seconds"] + 0.05
    assert [level["name"] for level in solution.stats["levels"]].count("coverage") == 1  # the first look's is gone


def test_a_small_schools_level_1_is_proven_by_its_days_plans_joined(small_school: object) -> None:
    # The look does not settle it; the rows bring the bound to 1,414, and a week of the days' plans reaches it.
    for seed in (1, 2):
        solution = solve(small_school, SolverConfig(time_limit=6, workers=1, seed=seed,  # type: ignore[arg-type]
                                                    later_levels_limit=0.75))
        coverage = next(level for level in solution.stats["levels"] if level["name"] == "coverage")
        assert (coverage["status"], coverage["value"], coverage["bound"]) == (Status.OPTIMAL, 1_414, 1_414)
        assert solution.stats["day_rows"]["joined"] == 1_414 and solution.stats["day_rows"]["join_seconds"] > 0
        assert validation.coverage(small_school, solution.assignments) == 1_414  # type: ignore[arg-type]


def test_a_school_the_first_look_proves_gets_no_rows() -> None:
    inst = random_instance(5, days=3)
    solution = solve(inst, SolverConfig(time_limit=20, seed=1))
    coverage = [level for level in solution.stats["levels"] if level["name"] == "coverage"]
    assert len(coverage) == 1 and coverage[0]["status"] == Status.OPTIMAL
    reference = reference_optimum(inst, levels=1)
    assert reference is not None and coverage[0]["value"] == reference["coverage"]
    assert "day_rows" not in solution.stats and "day_rows" not in solution.stats["phases"]


def test_a_day_search_cut_short_ends_the_rows_and_what_they_proved_still_holds(
        small_school: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each day's search stops at its root (a node limit, not the clock): the first search whose root does not
    # settle it is cut short, its row still counts, and no search follows it.
    monkeypatch.setattr(day_cuts, "DAY_SEARCH_PARAMETERS", day_cuts.DAY_SEARCH_PARAMETERS + "limits/nodes = 1\n")
    seen: list[bool] = []
    row = day_cuts._Day.row

    def watched(day: day_cuts._Day, price: float, deadline: Deadline) -> float | None:
        phi = row(day, price, deadline)
        objective = day.model.solver.Objective()
        seen.append(objective.BestBound() > objective.Value() + 1e-4)  # the search's own gap is still open
        return phi

    monkeypatch.setattr(day_cuts._Day, "row", watched)
    week = model_of(small_school)  # type: ignore[arg-type]
    rows = add_day_value_rows(week, Deadline.after(60))
    assert seen and seen[-1] and not any(seen[:-1]) and rows.searches == len(seen)
    # The five days alone settle at their roots; the first day searched at a price is cut short.
    assert len(seen) == 6 and rows.rows == 6 and rows.bound == rows.first_bound == 1_429
    after = relaxation_bound(week, week.coverage_level(), Deadline.after(30))
    assert after is not None and after >= 1_414  # the rows added keep the best plan


def test_a_search_after_the_rows_that_finds_nothing_leaves_the_first_looks_plan(
        small_school: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # A look as long as the whole search: it ends with a plan it has not proven, the rows and the search after
    # them get no time, and the level's one result is the look's, its plan the model's values.
    monkeypatch.setattr(coverage_module, "LOOK_SECONDS", 3.2)
    week = model_of(small_school)  # type: ignore[arg-type]
    first = LexicographicSolver(week, SolverConfig(seed=1), time.monotonic(), None)
    found = solve_coverage(first, 0.0, lambda: 3.2)
    assert found.days is None and found.day_rows is not None and found.day_rows.rows == 0
    assert found.result.status == Status.FEASIBLE and not found.result.skipped
    assert first.results == [found.result] and found.result.seconds >= 3.0
    assert first.values is not None and round(value_at(week.coverage_level(), first.values)) == found.result.value
    assert 0 < found.result.value <= 1_414 < found.result.bound


TINY_SCHOOL = (150, 100_055)
"""The city's school KM-0056 (`bench.city`): 150 pupils, a week's model of 826 variables, whose coverage the first
look does not settle; the week's search alone proves its best plan (647) in a second or two."""


def test_a_school_below_the_rows_size_is_searched_without_them() -> None:
    inst = generate(*TINY_SCHOOL)
    assert model_of(inst).solver.NumVariables() < coverage_module.ROWS_MIN_VARIABLES
    solution = solve(inst, SolverConfig(time_limit=20, workers=1, seed=1))
    coverage = next(level for level in solution.stats["levels"] if level["name"] == "coverage")
    assert (coverage["status"], coverage["value"], coverage["bound"]) == (Status.OPTIMAL, 647, 647)
    assert coverage["seconds"] > coverage_module.LOOK_SECONDS  # the look did not settle it
    assert "day_rows" not in solution.stats and "day_rows" not in solution.stats["phases"]


def test_a_city_batchs_short_limit_leaves_the_whole_search_its_time(small_school: object) -> None:
    solution = solve(small_school, SolverConfig(time_limit=3, workers=1, later_levels_limit=1.0))  # type: ignore[arg-type]
    assert "day_rows" not in solution.stats and "day_rows" not in solution.stats["phases"]


def _holds_every_row(week: AllocationModel, values: list[float]) -> bool:
    """`values` (by variable index) keep every variable's bounds and every row of `week`."""
    variables = week.solver.variables()
    if any(not var.lb() - 1e-6 <= values[var.index()] <= var.ub() + 1e-6 for var in variables):
        return False
    if any(var.integer() and abs(values[var.index()] - round(values[var.index()])) > 1e-6 for var in variables):
        return False
    for row in week.solver.constraints():
        activity = sum(row.GetCoefficient(var) * values[var.index()] for var in variables)
        if not row.lb() - 1e-6 <= activity <= row.ub() + 1e-6:
            return False
    return True


@pytest.mark.parametrize(("pupils", "seed", "fixed"), CUTTING)
def test_the_days_plans_join_only_into_plans_of_the_week_and_never_above_its_best(
        pupils: int, seed: int, fixed: bool) -> None:
    inst = random_instance(seed, pupils=pupils, days=3, with_fixed=fixed)
    expected = reference_optimum(inst, levels=1)
    assert expected is not None
    week = model_of(inst)
    rows = add_day_value_rows(week, Deadline.after(30), seed=seed)
    assert rows.plans and all(day.plans for day in rows.plans)
    # No joined plan covers more than the best plan there is.
    assert rows.join(week, Deadline.after(10), at_least=expected["coverage"] + 1) is None and rows.joined is None
    joined = rows.join(week, Deadline.after(10), at_least=expected["coverage"])
    if joined is not None:  # the days' plans found may not make the best week; when they do, it is one
        assert rows.joined == expected["coverage"] == round(value_at(week.coverage_level(), joined))
        assert _holds_every_row(week, joined)


def test_the_days_plans_join_into_a_small_schools_best_week(small_school: object) -> None:
    week = model_of(small_school)  # type: ignore[arg-type]
    rows = add_day_value_rows(week, Deadline.after(60))
    assert rows.bound == 1_414
    joined = rows.join(week, Deadline.after(10), at_least=1_414)
    assert joined is not None and rows.joined == 1_414 and rows.join_seconds > 0
    assert _holds_every_row(week, joined)
    # The week's model is left as it was: its own search still finds the same best plan.
    assert _coverage(week) == (Status.OPTIMAL, 1_414)


def test_a_model_that_hires_is_refused() -> None:
    inst = random_instance(3, days=2)
    hiring = AllocationModel(inst, build_day_classes(inst, by_preference=False, seed=0), hire_sessions=4)
    with pytest.raises(ValueError, match="hires"):
        add_day_value_rows(hiring, Deadline.after(5))
