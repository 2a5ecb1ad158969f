"""Level 3's bound from the days alone at prices on the rows that tie them: valid at any prices, the relaxation's
optimum at its own prices when the days are linear programs, and no higher with whole days."""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.linear_solver import linear_solver_pb2

from bench.crowded import crowded
from scheduler.day_prices import DayPrices, priced_days
from scheduler.daywise import _Relaxation
from scheduler.deadline import Deadline
from scheduler.lexicographic import hold, hold_row
from tests.scheduler.builders import level_3_by_day, model_of
from tests.scheduler.random_instances import random_instance
from tests.scheduler.reference import reference_optimum


def _linear_sum(prices: DayPrices) -> float:
    assert prices.priced is not None
    return prices.priced.constant + sum(prices.linear.values())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), scarce=st.booleans(), noise=st.integers(0, 10_000))
def test_the_days_at_any_prices_bound_level_3_and_at_the_relaxations_prices_they_close_on_it(
        seed: int, scarce: bool, noise: int) -> None:
    inst = random_instance(seed, pupils=10, days=3)
    if scarce:  # one session a week per teacher: the weekly caps bind and get prices
        inst = inst.with_weekly_caps({t.id: min(t.max_sessions, 1) for t in inst.teachers})
    expected = reference_optimum(inst, levels=3)
    if expected is None:
        return
    fine = model_of(inst, by_preference=True)
    hold(fine, {"coverage": expected["coverage"]})
    relaxation = _Relaxation.of(fine, fine.preference_level(), 20)
    assert relaxation is not None
    relaxed = relaxation.solve()
    assert relaxed is not None and relaxed.bound >= expected["preference"]
    days = fine.variable_days()
    priced = priced_days(relaxation.model, relaxation.integers, days, relaxed.duals)
    assert priced is not None
    prices = DayPrices(lambda: priced, Deadline.after(20))
    prices.run()
    # Strong duality: the days as linear programs at the relaxation's own prices add up to its optimum ...
    assert _linear_sum(prices) == pytest.approx(relaxed.value, abs=1e-4)
    # ... and with whole teachers and pupils they bound level 3 no higher, and never below its optimum.
    bound = prices.bound()
    assert bound is not None and expected["preference"] <= bound <= relaxed.bound
    assert prices.searched == len(priced.days)
    # Any prices at all, of either sign, give a bound too (a price leaning on an open end is not used).
    rng = random.Random(noise)
    shaken = [price + rng.uniform(-3, 3) if rng.random() < 0.5 else rng.uniform(-2, 2) for price in relaxed.duals]
    other = priced_days(relaxation.model, relaxation.integers, days, shaken)
    if other is not None:
        anyway = DayPrices(lambda: other, Deadline.after(20))
        anyway.run()
        assert (anyway.bound() or 0) >= expected["preference"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_holding_each_days_coverage_tightens_the_relaxation_and_keeps_every_optimum(seed: int) -> None:
    inst = random_instance(seed, pupils=10, days=3)
    inst = inst.with_weekly_caps({t.id: min(t.max_sessions, 2) for t in inst.teachers})
    expected = reference_optimum(inst, levels=3)
    days = level_3_by_day(inst)
    if expected is None or days is None:
        return
    coverage, fine = days
    week = _Relaxation.of(fine, fine.preference_level(), 20)
    held = _Relaxation.of(fine, fine.preference_level(), 20, days_held={d: p.score for d, p in coverage.days.items()})
    assert week is not None and held is not None
    loose, tight = week.solve(), held.solve()
    assert loose is not None and tight is not None
    assert expected["preference"] <= tight.bound and tight.value <= loose.value + 1e-6
    # The week's own hold is open in the copy: each day's row holds its part, so the days' prices are their own.
    rows = {row.name: row for row in held.model.constraint}
    assert rows[hold_row("coverage")].lower_bound == -float("inf")
    assert sum(rows[f"{hold_row('coverage')}_{d}"].lower_bound for d in coverage.days) == coverage.value


def test_only_the_teachers_weeks_and_the_levels_held_tie_the_days_together() -> None:
    inst = random_instance(7, pupils=10, days=3)
    week = model_of(inst, by_preference=True)
    hold(week, {"coverage": 1})
    days = week.variable_days()
    names = [var.name() for var, day in zip(week.solver.variables(), days, strict=True) if day is None]
    assert names == ["max_teacher_load"]
    proto = linear_solver_pb2.MPModelProto()
    week.solver.ExportModelToProto(proto)
    spanning = {row.name.rsplit("_", 1)[0] for row in proto.constraint
                if len({days[i] for i in row.var_index}) > 1 or any(days[i] is None for i in row.var_index)}
    assert spanning == {"week_cap", "max_load", "hold"}


def test_the_days_prices_stop_when_told_and_their_bound_so_far_holds() -> None:
    inst = crowded(300, seed=1)
    fine = model_of(inst, by_preference=True)
    relaxation = _Relaxation.of(fine, fine.preference_level(), 20)
    assert relaxation is not None
    relaxed = relaxation.solve()
    assert relaxed is not None
    priced = priced_days(relaxation.model, relaxation.integers, fine.variable_days(), relaxed.duals)
    assert priced is not None
    prices = DayPrices(lambda: priced, Deadline.after(60)).start()
    while len(prices.linear) < len(priced.days) and prices.thread is not None and prices.thread.is_alive():
        prices.thread.join(0.01)
    bound = prices.bound()  # stops the days' searches wherever they are
    assert not [thread for thread in threading.enumerate() if thread.name == "day-prices"]
    assert bound is not None and bound <= relaxed.bound
    stopped = DayPrices(lambda: priced, Deadline.after(60)).start()
    assert stopped.bound() is None or stopped.bound() <= relaxed.bound  # type: ignore[operator]
    assert stopped.thread is not None and not stopped.thread.is_alive()
