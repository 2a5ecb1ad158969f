"""Level 1, coverage, solved the one way the allocation (`scheduler.solve`) and what-if advice (`scheduler.whatif`)
both use: day by day first on a big school (`scheduler.daywise.days_first`), done when the days join at their
bound; otherwise the week's search, started from the better of the days' joined plan and today's lottery; the best
of the three plans is the answer, with the lowest bound proven on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from scheduler.baselines import lottery
from scheduler.daywise import DaywisePlan, coverage_by_day, days_first
from scheduler.deadline import Deadline
from scheduler.domain import Status
from scheduler.lexicographic import LevelResult, LexicographicSolver
from scheduler.warmstart import plan_values

Phase = Callable[[str], AbstractContextManager[None]]
"""Times a named part of the work (`scheduler.solve` adds it to `stats["phases"]`)."""


@contextmanager
def untimed(_name: str) -> Iterator[None]:
    yield


@dataclass
class Coverage:
    result: LevelResult
    days: DaywisePlan | None
    """Level 1 solved day by day, when it was (a big school)."""
    from_lottery: bool = False
    """Today's lottery's plan is the answer: neither the days nor the week's search found a better one in time."""


def solve_coverage(first: LexicographicSolver, days_seconds: float, week_seconds: Callable[[], float], *,
                   phase: Phase = untimed) -> Coverage:
    """Level 1 of `first.built` (a model without hired teachers): the days get `days_seconds` (they stop early when
    done); the week's search, when it is needed, `week_seconds()` as it starts."""
    built, config = first.built, first.config
    instance = built.instance
    days = None
    if days_first(built):
        with phase("daywise"):
            days = coverage_by_day(built, Deadline.after(days_seconds), config.backend)
    if days is not None and days.proven:
        assert days.values is not None
        return Coverage(first.accept("coverage", days.values, days.bound, days.seconds), days)
    # The days proved nothing (a day short of time may even have answered with an empty plan): today's lottery is
    # a plan too, if it keeps the pins. It is drawn before the week's search, out of the same time, and the better
    # of the two starts that search.
    plan = None
    with phase("fallback"):
        drawn = lottery(instance, config.seed)
        if drawn.has_allocation and set(instance.fixed) <= set(drawn.assignments):
            plan = drawn
    days_value = days.value if days is not None and days.values is not None else -1
    if plan is not None and plan.objective.coverage > days_value:
        first.hint(plan_values(built, plan))
    elif days is not None:
        first.hint(days.values)
    with phase("solve"):
        result = first.optimise("coverage", built.coverage_level(), maximise=True, seconds=week_seconds())
    if not first.have_solution:  # a search without a plan reports no bound: demand is one
        result.bound = instance.demand()
    from_lottery = False
    known = max(days_value, plan.objective.coverage if plan is not None else -1)
    if result.status == Status.UNKNOWN or (first.have_solution and result.value < known):
        # The week's search found nothing better in time: the joined days' plan, or the lottery's, is the answer.
        bound = min(result.bound, days.bound if days is not None else instance.demand())
        if days is not None and days.values is not None and days.value > result.value and (
                plan is None or days.value >= plan.objective.coverage):
            first.results.remove(result)
            result = first.accept("coverage", days.values, bound, result.seconds)
        elif plan is not None and plan.objective.coverage > result.value:
            first.results.remove(result)
            result = first.accept("coverage", plan_values(built, plan), bound, result.seconds)
            from_lottery = True
    if days is not None and result.status in (Status.OPTIMAL, Status.FEASIBLE) and days.bound < result.bound:
        result.bound = days.bound
        result.status = Status.OPTIMAL if result.value >= result.bound else Status.FEASIBLE
    return Coverage(result, days, from_lottery)
