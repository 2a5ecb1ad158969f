"""Level 1's week search ends once the second core has a plan worth the teachers' prices' bound."""

from __future__ import annotations

import threading

from bench.crowded import crowded
from scheduler.coverage import _search_to_the_end
from scheduler.deadline import Deadline
from scheduler.domain import Status
from scheduler.generate import generate
from scheduler.lexicographic import LexicographicSolver, value_at
from scheduler.model import AllocationModel
from scheduler.solve import SolverConfig, solve
from scheduler.teacher_prices import TeacherPrices
from tests.scheduler.builders import model_of, satisfies_every_row
from tests.scheduler.random_instances import random_instance

SCHOOL = (253, 100_086)
"""A city school whose best plan covers 1,416, while its days' own best and the week's relaxation say 1,417: the
teachers' prices settle at 1,416 (`tests/scheduler/test_teacher_prices.py`)."""
OPTIMUM = 1416
SLOW_SCHOOL = (474, 100_064)
"""KM-0065 of the city benchmark: the teachers' prices settle at 2,464, one above its optimum, 2,463."""


def _prices_searched() -> tuple[AllocationModel, TeacherPrices]:
    """The school's week and its prices run to the end, with the search after them."""
    week = model_of(generate(*SCHOOL))
    prices = TeacherPrices(week, Deadline.after(60), then_search=True)
    prices.run()
    return week, prices


def _plan_worth_the_prices() -> list[float]:
    _, prices = _prices_searched()
    assert prices.found is not None
    bound, plan = prices.found
    assert bound == OPTIMUM
    return plan


def test_once_the_prices_settle_the_second_core_finds_a_plan_worth_their_bound() -> None:
    """The search after the prices finds a plan of the week (every row kept, whole) that covers the bound: the
    week's best. Its seconds are counted apart from the rounds'."""
    week, prices = _prices_searched()
    result = prices.result()
    assert result.bound == OPTIMUM and result.plan_found and result.plan_seconds > 0
    assert prices.found is not None
    _, plan = prices.found
    assert round(value_at(week.coverage_level(), plan)) == OPTIMUM
    satisfies_every_row(week, plan)
    # Without `then_search` the thread ends with the prices.
    alone = TeacherPrices(model_of(generate(*SCHOOL)), Deadline.after(60))
    alone.run()
    assert alone.found is None and not alone.result().plan_found


def test_a_plan_found_before_the_search_begins_is_the_answer_without_one() -> None:
    plan = _plan_worth_the_prices()
    first = LexicographicSolver(model_of(generate(*SCHOOL)), SolverConfig(), 0.0, None)
    result = _search_to_the_end(first, Deadline.after(60), lambda: (OPTIMUM, plan))
    assert (result.status, result.value, result.bound) == (Status.OPTIMAL, OPTIMUM, OPTIMUM)
    assert [r.name for r in first.results] == ["coverage"]
    assert first.values == plan


def test_a_search_under_way_is_interrupted_when_the_plan_comes() -> None:
    """A plan said to be the best arrives a second into the search: the search is interrupted (alone it would use
    its whole minute: this school's optimum takes minutes to prove), and the better of its plan and the one that
    came is the level's one result."""
    inst = crowded(1000, 1)
    other = LexicographicSolver(model_of(inst), SolverConfig(seed=1), 0.0, None)
    short = other.optimise("coverage", other.built.coverage_level(), maximise=True, seconds=1.0)
    assert short.status == Status.FEASIBLE and other.values is not None
    said = (short.value, other.values)
    first = LexicographicSolver(model_of(inst), SolverConfig(), 0.0, None)
    known: list[tuple[int, list[float]]] = []
    timer = threading.Timer(1.0, known.append, args=(said,))
    timer.start()
    try:
        result = _search_to_the_end(first, Deadline.after(60), lambda: known[0] if known else None)
    finally:
        timer.cancel()
    assert result.status == Status.OPTIMAL and result.value == result.bound >= short.value
    assert 1.0 <= result.seconds < 10
    assert [r.name for r in first.results] == ["coverage"]


def test_a_search_with_nothing_found_elsewhere_runs_as_before() -> None:
    inst = random_instance(7, pupils=12, days=3)
    first = LexicographicSolver(model_of(inst), SolverConfig(), 0.0, None)
    result = _search_to_the_end(first, Deadline.after(20), lambda: None)
    assert result.status == Status.OPTIMAL
    assert [r.name for r in first.results] == ["coverage"]


def test_a_two_worker_run_ends_level_1_when_the_second_core_proves_a_plan() -> None:
    """In a school's own run the prices settle on the second core at 2,464 while the week's search goes on; the
    search capped there proves 2,463 the best, and level 1 ends at once. Before, the run's own search went on
    until it proved 2,463 itself, 32 s into the minute."""
    solution = solve(generate(*SLOW_SCHOOL), SolverConfig(time_limit=60, workers=2, seed=1))
    priced = solution.stats["teacher_prices"]
    assert priced["bound"] == 2464 and priced["plan_found"]
    coverage = next(level for level in solution.stats["levels"] if level["name"] == "coverage")
    assert (coverage["status"], coverage["value"], coverage["bound"]) == (Status.OPTIMAL, 2463, 2463)
    # It ended when the second core's search did, not when its own would have.
    assert coverage["seconds"] < priced["seconds"] + priced["plan_seconds"] + 2.0
