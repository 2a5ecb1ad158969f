"""Level 1 day by day: the days' bound holds, a joined plan is a plan of the week, a tight cap is not ignored."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.crowded import crowded
from scheduler import validation
from scheduler.baselines import lottery
from scheduler.daywise import (
    DaywisePlan,
    _again_within_the_week,
    _Day,
    _preference_of_day,
    _Relaxation,
    _week_values,
    _weekly_staffing,
    coverage_by_day,
    near_the_week_relaxation,
    preference_by_day,
    relaxation_point,
    split_week_plan,
)
from scheduler.deadline import Deadline
from scheduler.domain import Instance, Status
from scheduler.lexicographic import (
    LevelResult,
    LexicographicSolver,
    SolverConfig,
    hold,
    point_of,
    transfer,
    value_at,
)
from scheduler.model import AllocationModel
from scheduler.solve import _LevelPlan, solve
from scheduler.warmstart import plan_values
from tests.scheduler.builders import (
    instance,
    level_3_by_day,
    model_of,
    pupil,
    request,
    satisfies_every_row,
    session,
    teacher,
)
from tests.scheduler.random_instances import random_instance
from tests.scheduler.reference import reference_optimum


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fixed=st.booleans())
def test_the_days_bound_the_week_and_a_joined_plan_is_a_plan_of_the_week(seed: int, fixed: bool) -> None:
    inst = random_instance(seed, days=3, with_fixed=fixed)
    expected = reference_optimum(inst)
    week = model_of(inst)
    days = coverage_by_day(week, Deadline.after(20))
    if expected is None or days is None:
        return
    assert days.bound >= expected["coverage"]
    if days.values is None:
        return
    assert days.value <= expected["coverage"]
    # The joined plan satisfies every row of the week's model: the backend accepts it as it stands.
    satisfies_every_row(week, days.values)
    lexi = LexicographicSolver(week, SolverConfig(), 0.0, None)
    result = lexi.accept("coverage", days.values, days.bound, days.seconds)
    assert result.value == days.value
    assert (result.status == Status.OPTIMAL) == (days.value == expected["coverage"] == days.bound)


def test_a_weekly_cap_that_the_days_share_is_honoured() -> None:
    # One teacher may lead one session a week, and each of two days needs them: only one day can be covered,
    # though each day alone could be. The week's relaxation knows it too: each session can seat its one pupil
    # and no more, so half a teacher in each earns half a pupil-day.
    inst = instance([session("S1", day=1), session("S2", day=2)], [teacher("T1", max_sessions=1)],
                    [pupil("P1")], [request("P1", days=(1, 2))], weekdays=(1, 2))
    days = coverage_by_day(model_of(inst), Deadline.after(20))
    assert days is not None and days.days_bound == 2 and days.bound == 1
    assert days.values is not None and days.value == 1 and days.proven and not days.proven_by_days
    solution = solve(inst)
    assert solution.objective.coverage == solution.objective.coverage_bound == 1
    assert solution.status == Status.OPTIMAL


def test_the_weeks_relaxation_proves_what_the_days_cannot() -> None:
    # One teacher, one session a week, each of two days a session of one seat needing them: each day alone covers
    # its pupil-day (the days' bound is 2), but the week's linear relaxation already shares the one session
    # between the days, so it bounds the week at 1, and the joined plan is proven without the week's search.
    sessions = [session(f"S{d}", day=d, capacity=1, pupils_per_teacher=1) for d in (1, 2)]
    inst = instance(sessions, [teacher("T1", max_sessions=1)], [pupil("P1")], [request("P1", days=(1, 2))],
                    weekdays=(1, 2))
    week = model_of(inst)
    days = coverage_by_day(week, Deadline.after(20))
    assert days is not None and days.days_bound == 2 and days.bound == 1
    assert days.values is not None and days.value == 1
    assert days.proven and not days.proven_by_days
    # Level 3 day by day needs each day at its own best, which a proof by the relaxation does not give.
    fine = model_of(inst, by_preference=True)
    assert preference_by_day(fine, days, Deadline.after(20), SolverConfig()) is None
    solution = solve(inst)
    assert solution.status == Status.OPTIMAL
    assert solution.objective.coverage == solution.objective.coverage_bound == 1


def test_a_session_with_few_eligible_pupils_earns_no_more_than_them_per_teacher_in_the_relaxation() -> None:
    # One teacher, one session a week; three rooms of 40 with one teacher per 30, each open to one grade of two
    # pupils. A whole teacher seats the two pupils of one grade. The rooms' ratio rows alone let a third of the
    # teacher earn ten seats in each room (relaxation 6, above the free days' 4); no room can ever seat more
    # than its two eligible pupils, so a teacher's share earns at most two per whole teacher there, and the
    # relaxation meets the optimum.
    sessions = [session(f"S{g}", day=1 if g < 3 else 2, capacity=40, grades=(g, g), pupils_per_teacher=30)
                for g in (1, 2, 3)]
    pupils = [pupil(f"P{g}{i}", grade=g) for g in (1, 2, 3) for i in (1, 2)]
    requests = [request(p.id, days=(1 if p.grade < 3 else 2,)) for p in pupils]
    inst = instance(sessions, [teacher("T1", max_sessions=1)], pupils, requests, weekdays=(1, 2))
    week = model_of(inst)
    assert all(teachers.ub() == 1 for teachers in week.teachers.values())
    days = coverage_by_day(week, Deadline.after(20))
    assert days is not None and days.days_bound == 4 and days.bound == 2
    assert days.proven and days.value == 2
    solution = solve(inst)
    assert solution.status == Status.OPTIMAL
    expected = reference_optimum(inst)
    assert expected is not None
    assert solution.objective.coverage == solution.objective.coverage_bound == expected["coverage"] == 2


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fixed=st.booleans())
def test_the_lottery_plan_is_a_point_of_the_week_model(seed: int, fixed: bool) -> None:
    inst = random_instance(seed, days=3, with_fixed=fixed)
    plan = lottery(inst, seed=seed)
    if not plan.has_allocation:
        return
    week = model_of(inst)
    values = plan_values(week, plan)
    satisfies_every_row(week, values)
    coverage = sum(c * values[v.index()] for v, c in week.coverage_level().GetCoeffs().items() if hasattr(v, "index"))
    assert round(coverage) == validation.coverage(inst, plan.assignments)


def test_a_limit_too_short_for_any_search_still_returns_a_plan_in_time() -> None:
    inst = crowded(400, seed=3)
    began = time.monotonic()
    solution = solve(inst, SolverConfig(time_limit=0.05, workers=1))
    assert time.monotonic() - began <= 1.1 * 0.05 + 1.0
    assert validation.validate(inst, solution).consistent
    assert solution.objective.coverage > 0


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("art", [{}, {"capacity": 1, "pupils_per_teacher": 1}], ids=["room", "one-to-one"])
def test_level_3_days_that_ask_too_much_of_a_teacher_are_bounded_by_the_weeks_relaxation(art: dict[str, int],
                                                                                          workers: int) -> None:
    # The only art teacher may lead one session a week; each day alone would put the pupil in art (3 points a
    # day, the days' bound 6), so the free days do not join. Solved again in turn within the week, one day gets
    # art; the week's relaxation proves that optimal: an art session seats one pupil at most (the one pupil
    # eligible, or a room of one), so it needs a whole teacher, of whom there is one for the week. With two
    # workers the relaxation is solved on the second core while the free days are searched, to the same end, and
    # the days alone at its prices are bounded there too.
    sessions = [session(f"H{d}", "homework", day=d) for d in (1, 2)]
    sessions += [session(f"A{d}", "art", day=d, **art) for d in (1, 2)]
    teachers = [teacher("T1", qualifications=("arts",), max_sessions=1), teacher("T2", max_sessions=2)]
    inst = instance(sessions, teachers, [pupil("P1")], [request("P1", days=(1, 2), preferences=("art",))],
                    weekdays=(1, 2))
    held = level_3_by_day(inst)
    assert held is not None
    coverage, fine = held
    assert coverage.proven
    days = preference_by_day(fine, coverage, Deadline.after(20), SolverConfig(workers=workers))
    assert days is not None and days.values is not None
    assert days.days_bound == 6 and days.bound == 3 == days.value and days.proven
    assert not [thread for thread in threading.enumerate() if thread.name in ("relaxation", "day-prices")]
    # With a second core the days were also bounded alone at the relaxation's prices, no lower than the optimum.
    assert (days.priced_bound is not None) == (workers > 1)
    assert days.priced_bound is None or days.priced_bound >= 3
    satisfies_every_row(fine, days.values)
    solution = solve(inst)
    assert solution.status == Status.OPTIMAL
    assert solution.objective.preference == 3 == reference_optimum(inst)["preference"]  # type: ignore[index]
    assert validation.validate(inst, solution).ok


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), scarce=st.booleans())
def test_level_3_by_day_is_bounded_above_the_optimum_and_its_plan_is_a_plan_of_the_week(seed: int,
                                                                                         scarce: bool) -> None:
    inst = random_instance(seed, pupils=10, days=3)
    if scarce:  # one session a week per teacher: the free days rarely join, and the week's relaxation bounds
        inst = dataclasses.replace(inst, teachers=tuple(dataclasses.replace(t, max_sessions=min(t.max_sessions, 1))
                                                        for t in inst.teachers))
    expected = reference_optimum(inst, levels=3)
    held = level_3_by_day(inst)
    if expected is None or held is None:
        return
    coverage, fine = held
    days = preference_by_day(fine, coverage, Deadline.after(20), SolverConfig())
    assert days is not None
    assert days.bound >= expected["preference"]
    assert days.days_bound is None or days.bound <= days.days_bound
    if days.values is not None:
        assert days.value <= expected["preference"]
        satisfies_every_row(fine, days.values)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), scarce=st.booleans())
def test_level_3_by_day_from_the_weeks_plan_split_into_days_is_a_plan_of_the_week(seed: int, scarce: bool) -> None:
    # Level 1 settled by the week's search: its plan split into days keeps every row of each day's model and
    # covers what the week's plan covers; level 3 day by day from it, each day held at the plan's coverage, is a
    # plan of the week, bounded above the optimum by the week's relaxation alone (the free days' sum bounds
    # nothing when the days are not at their best).
    inst = random_instance(seed, pupils=10, days=3)
    if scarce:
        inst = inst.with_weekly_caps({t.id: min(t.max_sessions, 1) for t in inst.teachers})
    expected = reference_optimum(inst, levels=3)
    if expected is None:
        return
    week = model_of(inst)
    lexi = LexicographicSolver(week, SolverConfig(), 0.0, None)
    level1 = lexi.optimise("coverage", week.coverage_level(), maximise=True, seconds=20)
    assert level1.status == Status.OPTIMAL and lexi.values is not None
    split = split_week_plan(week, lexi.values, Deadline.after(20))
    assert split is not None and split.value == level1.value == expected["coverage"]
    assert split.split and not split.proven_by_days
    for plan in split.days.values():
        satisfies_every_row(plan.model, plan.values)
    fine = model_of(inst, by_preference=True)
    hold(fine, {"coverage": level1.value})
    days = preference_by_day(fine, split, Deadline.after(20), SolverConfig())
    assert days is not None and days.days_bound is None
    assert days.bound >= expected["preference"]
    if days.values is not None:
        assert days.value <= expected["preference"]
        satisfies_every_row(fine, days.values)


def test_a_big_schools_level_3_goes_day_by_day_from_the_weeks_plan_when_the_days_did_not_prove_level_1() -> None:
    # The crowded school of 1,000 pupils: the days do not prove level 1, the week's search settles it; level 3
    # then starts from its plan split into days. In a 60 s run the week's level-3 search alone had ended at 1,460
    # points against a bound of 4,785; from the days, 4,697 against 4,782. Half the time goes to level 1 rather
    # than 80 %: with 20 s and the default share, level 3 had about 3 s, and on a loaded machine a day that could
    # not be searched in its part of them sent level 3 back to the week (1 run in 3 beside three busy loops).
    inst = crowded(1000, seed=1)
    solution = solve(inst, SolverConfig(time_limit=20, seed=1, coverage_share=0.5))
    levels = {level["name"]: level for level in solution.stats["levels"]}
    level_1_days = solution.stats["daywise"]
    assert not (level_1_days["joined"] and level_1_days["value"] >= level_1_days["bound"])
    days = solution.stats["daywise_preference"]
    assert days["joined"] and days["from_week_plan"] and levels["preference"]["value"] >= days["value"] > 0
    assert validation.validate(inst, solution).ok


@pytest.mark.parametrize("near", ["day", "week"])
def test_a_day_within_teachers_caps_is_searched_near_a_relaxation_and_given_back_whole(near: str) -> None:
    # Every teacher may lead on the day only what level 1's week has them lead: the day's level 3 is searched
    # among plans staffed as a relaxation is (the day's own or the week's, rounded down or up, or as level 1's
    # plan); the whole day comes later, within what the other days leave. The model handed back has every
    # variable bound it was built with, and its plan keeps every row of it.
    inst = crowded(300, seed=1)
    coverage = coverage_by_day(model_of(inst), Deadline.after(20))
    assert coverage is not None and coverage.values is not None
    day = min(coverage.days)
    load: Counter[str] = Counter()
    for (teacher_id, group), count in coverage.joined_leads.items():
        load[teacher_id] += count if group[0] == day else 0
    capped = dataclasses.replace(inst, teachers=tuple(dataclasses.replace(t, max_sessions=load[t.id])
                                                      for t in inst.teachers))
    fine = model_of(inst, by_preference=True)
    hold(fine, {"coverage": coverage.value})
    week = relaxation_point(fine, fine.preference_level(), Deadline.after(20)) if near == "week" else None
    result = _preference_of_day(fine, capped, coverage.days[day], 20, SolverConfig(),
                                start_leads=coverage.joined_leads,
                                relaxed=None if week is None else (fine, week.values))
    assert result is not None
    fresh = AllocationModel(capped, [fine.classes[k] for k in coverage.days[day].keys])
    hold(fresh, {"coverage": coverage.days[day].score})
    assert ([(v.name(), v.lb(), v.ub()) for v in result.model.solver.variables()]
            == [(v.name(), v.lb(), v.ub()) for v in fresh.solver.variables()])
    satisfies_every_row(result.model, result.values)
    assert 0 < result.score <= result.bound


def test_a_relaxation_on_another_core_is_the_same_and_stops_when_told() -> None:
    inst = crowded(300, seed=1)
    fine = model_of(inst, by_preference=True)
    here = relaxation_point(fine, fine.preference_level(), Deadline.after(20))
    relaxation = _Relaxation.of(fine, fine.preference_level(), 20)
    assert relaxation is not None
    there = relaxation.start().result()
    assert here is not None and there is not None
    assert there.bound == here.bound and there.value == pytest.approx(here.value)
    stopped = _Relaxation.of(fine, fine.preference_level(), 20)
    assert stopped is not None
    stopped.start().cancel()
    assert stopped.thread is not None and not stopped.thread.is_alive()


def test_free_days_that_fit_stop_the_relaxation_started_for_them() -> None:
    # Teachers to spare: the free days join, and the week's relaxation begun on the second core is stopped.
    inst = crowded(300, seed=1)
    inst = inst.with_weekly_caps({t.id: 25 for t in inst.teachers})
    held = level_3_by_day(inst)
    assert held is not None
    coverage, fine = held
    days = preference_by_day(fine, coverage, Deadline.after(20), SolverConfig(workers=2))
    assert days is not None and days.values is not None and days.proven
    assert not [thread for thread in threading.enumerate() if thread.name == "relaxation"]


def test_whether_days_fit_is_the_teachers_flow_within_the_room_given() -> None:
    # One session a day, two teachers free every day: whichever teacher each day's own plan names, the days fit
    # when the flow can give each day a teacher within the room each has, and not when the room holds one session.
    sessions = [session(f"S{d}", day=d) for d in (1, 2)]
    inst = instance(sessions, [teacher("T1", max_sessions=2), teacher("T2", max_sessions=2)], [pupil("P1")],
                    [request("P1", days=(1, 2))], weekdays=(1, 2))
    week = model_of(inst)
    coverage = coverage_by_day(week, Deadline.after(20))
    assert coverage is not None and coverage.proven
    days = coverage.days
    for room in ({"T1": 1, "T2": 1}, {"T1": 2, "T2": 0}, {"T1": 0, "T2": 2}):
        leads = _weekly_staffing(week, days, room)
        assert leads is not None and sum(leads.values()) == 2
        for teacher_id, most in room.items():
            assert sum(count for (t, _), count in leads.items() if t == teacher_id) <= most
    assert _weekly_staffing(week, days, {"T1": 1, "T2": 0}) is None
    assert _weekly_staffing(week, days) is not None  # the weekly caps: two each


@pytest.mark.parametrize("arts_first", [True, False])
def test_a_day_searched_again_may_move_the_other_days_sessions_to_other_teachers(arts_first: bool) -> None:
    # The arts teacher and a homework teacher may each lead one session a week; both days' plans seat the pupil
    # in homework. Whichever of the two the weekly flow names for Monday's and Tuesday's homework, Monday
    # searched again gets art: Tuesday's homework is kept open, by whoever is free. Searched within what one
    # weekly flow leaves, the week stayed at 0 in one of the two orders (the flow gave Tuesday the arts teacher).
    sessions = [session(f"H{d}", "homework", day=d) for d in (1, 2)] + [session("A1", "art", day=1, min_pupils=1)]
    arts, other = teacher("T1", qualifications=("arts",), max_sessions=1), teacher("T2", max_sessions=1)
    inst = instance(sessions, [arts, other] if arts_first else [other, arts], [pupil("P1")],
                    [request("P1", days=(1, 2), preferences=("art",))], weekdays=(1, 2))
    held = level_3_by_day(inst)
    assert held is not None
    coverage, fine = held
    no_arts = inst.with_weekly_caps({"T1": 0, "T2": 1})
    held_back: dict[int, _Day] = {}
    for day in (1, 2):
        result = _preference_of_day(fine, no_arts, coverage.days[day], 20, SolverConfig())
        assert result is not None and result.score == 0
        held_back[day] = result
    assert _weekly_staffing(fine, held_back) is not None
    again = _again_within_the_week(fine, coverage, held_back, Deadline.after(20), SolverConfig())
    assert sum(day.score for day in again.values()) == 3 == reference_optimum(inst, levels=3)["preference"]  # type: ignore[index]
    leads = _weekly_staffing(fine, again)
    assert leads is not None
    assert {key: count for key, count in leads.items() if count} == {("T1", (1, "P1", "arts")): 1,
                                                                     ("T2", (2, "P1", "")): 1}
    for plan in again.values():
        satisfies_every_row(plan.model, plan.values)


def test_staffing_other_slots_too_counts_against_the_same_weekly_caps() -> None:
    # A day's model that also keeps another day's session staffed: the teacher who may lead one session a week
    # cannot lead both, so the day's own session goes to the other teacher, and with no other teacher the day
    # cannot open it at all.
    sessions = [session("H1", "homework", day=1, min_pupils=1), session("H2", "homework", day=2)]
    both = instance(sessions, [teacher("T1", max_sessions=1), teacher("T2", max_sessions=1)], [pupil("P1")],
                    [request("P1", days=(1,))], weekdays=(1, 2))
    for inst, covered in ((both, 1), (dataclasses.replace(both, teachers=both.teachers[:1]), 0)):
        week = model_of(inst)
        day = AllocationModel(inst, [c for c in week.classes if c.day == 1])
        added = day.staff_also({(2, "P1", ""): 1})
        assert sorted(added) == sorted((t.id, (2, "P1", "")) for t in inst.teachers)
        day.solver.Maximize(day.coverage_level())
        assert day.solver.Solve() == day.solver.OPTIMAL
        assert round(day.solver.Objective().Value()) == covered
        assert sum(var.solution_value() for var in added.values()) == pytest.approx(1)


def _days_held_back_by_their_caps() -> tuple[Instance, DaywisePlan, AllocationModel, dict[int, _Day]]:
    """The arts teacher may lead one session a week and each day's first search was told to leave them free: both
    days seat the pupil in homework (0 points, where the week's optimum is 3)."""
    sessions = [session(f"H{d}", "homework", day=d) for d in (1, 2)]
    sessions += [session(f"A{d}", "art", day=d, min_pupils=1) for d in (1, 2)]
    teachers = [teacher("T1", qualifications=("arts",), max_sessions=1), teacher("T2", max_sessions=2)]
    inst = instance(sessions, teachers, [pupil("P1")], [request("P1", days=(1, 2), preferences=("art",))],
                    weekdays=(1, 2))
    held = level_3_by_day(inst)
    assert held is not None
    coverage, fine = held
    no_arts = dataclasses.replace(inst, teachers=(dataclasses.replace(teachers[0], max_sessions=0), teachers[1]))
    held_back: dict[int, _Day] = {}
    for day in (1, 2):
        result = _preference_of_day(fine, no_arts, coverage.days[day], 20, SolverConfig())
        assert result is not None and result.score == 0
        held_back[day] = result
    return inst, coverage, fine, held_back


def test_days_held_back_by_their_caps_are_searched_again_within_what_the_others_left() -> None:
    # Searched again in turn within what the other day's plan leaves, the first day takes the arts teacher and the
    # week reaches the optimum; the days still join under the weekly caps.
    inst, coverage, fine, held_back = _days_held_back_by_their_caps()
    again = _again_within_the_week(fine, coverage, held_back, Deadline.after(20), SolverConfig())
    assert sum(day.score for day in again.values()) == 3 == reference_optimum(inst, levels=3)["preference"]  # type: ignore[index]
    assert _weekly_staffing(fine, again) is not None
    for plan in again.values():
        satisfies_every_row(plan.model, plan.values)


def test_the_week_searched_near_its_relaxation_moves_the_days_together_and_keeps_every_row() -> None:
    # From the held-back days' plan, the whole week is searched with every whole variable on which that plan and
    # the week's relaxation agree held: the arts sessions, where they differ, are free, and the search puts the
    # pupil in art on one day, the week's optimum. Its plan keeps every row of the week's model and comes back
    # whole; a plan the search cannot better comes back as it is, with its own points.
    inst, _, fine, held_back = _days_held_back_by_their_caps()
    leads = _weekly_staffing(fine, held_back)
    assert leads is not None
    start = _week_values(fine, held_back, leads)
    relaxed = relaxation_point(fine, fine.preference_level(), Deadline.after(20))
    assert relaxed is not None and relaxed.bound == 3
    value, values = near_the_week_relaxation(fine, relaxed, 0, start, Deadline.after(20), SolverConfig())
    assert value == 3 == reference_optimum(inst, levels=3)["preference"]  # type: ignore[index]
    satisfies_every_row(fine, values)
    assert all(values[var.index()] == round(values[var.index()]) for var in [*fine.seated.values(),
                                                                            *fine.liked.values()])
    assert near_the_week_relaxation(fine, relaxed, value, values, Deadline.after(20), SolverConfig()) == (3, values)
    # With less time than its root takes, the search is not started: the start comes back.
    assert near_the_week_relaxation(fine, relaxed, 0, start, Deadline.after(0), SolverConfig())[1] is start


def test_a_level_3_plan_the_search_left_unproven_is_searched_near_the_relaxation_and_proven_by_it() -> None:
    # The week's search left the held-back plan (0 points) with a bound of 6: the run searches it again near the
    # week's relaxation, takes the optimum that search finds (3), and the relaxation's bound (3) proves it.
    inst, _, fine, held_back = _days_held_back_by_their_caps()
    leads = _weekly_staffing(fine, held_back)
    assert leads is not None
    third = LexicographicSolver(fine, SolverConfig(), time.monotonic(), None)
    third.values = _week_values(fine, held_back, leads)
    result = LevelResult("preference", Status.FEASIBLE, 0, 6, 1.0)
    plan = _LevelPlan(inst, SolverConfig(time_limit=20), None)
    plan._near_the_relaxation(third, result)
    assert (result.status, result.value, result.bound) == (Status.OPTIMAL, 3, 3)
    assert plan.stats["preference_near"] == {"before": 0, "after": 3, "relaxation": 3}
    assert third.values is not None
    satisfies_every_row(fine, third.values)
    # A plan already proven is left as it is.
    proven = LevelResult("preference", Status.OPTIMAL, 3, 3, 1.0)
    plan._near_the_relaxation(third, proven)
    assert (proven.value, proven.bound) == (3, 3)


def test_days_searched_in_too_little_time_still_seat_level_1s_plan_by_preference_within_its_staffing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # With a few seconds for level 3 on a big crowded school, each day's search ends about where it starts. It
    # starts from level 1's plan of the day with its pupils seated by preference within its staffing (a flow per
    # slot), so the days' plan scores at least level 1's week seated so. Seats held in the sessions where level 1
    # left them scored 3,934 points here against 9,516, and 10,671 against 21,665 on crowded(3250, 0) in a 10 s run.
    # No day gets time to search here (each search is skipped, as it is when its time is gone), while the deadline
    # leaves every day's model time to be built, however loaded the machine.
    inst = crowded(1500, seed=0)
    held = level_3_by_day(inst)
    assert held is not None
    coverage, fine = held
    assert coverage.values is not None
    coarse = model_of(inst)  # the model level 1's plan is a point of
    level_1 = _Day(coarse, [], coverage.values, coverage.value, coverage.bound)
    seated = fine.seating_within_staffing(point_of(fine, transfer(level_1, coarse, fine)))
    monkeypatch.setattr(LexicographicSolver, "optimise", lambda self, name, *_, **__: self.skip(name))
    days = preference_by_day(fine, coverage, Deadline.after(60), SolverConfig(workers=1))
    assert days is not None and days.values is not None
    assert days.value >= round(value_at(fine.preference_level(), seated)) > 0
