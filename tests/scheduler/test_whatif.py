"""What-if advice: hiring and seats that close the gap, and nothing when there is no gap."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import pytest

from scheduler import io
from scheduler.domain import Instance, Session, Slot, Status, Teacher
from scheduler.solve import SolverConfig
from scheduler.whatif import DEFAULT_PUPILS_PER_TEACHER, advice_to_json, advise
from tests.scheduler.random_instances import random_instance
from tests.scheduler.reference import reference_optimum

SPEC = Path(__file__).resolve().parents[2] / "docs" / "spec"
FAST = SolverConfig(time_limit=20, workers=1)
QUICK_EXAMPLES, SLOW_EXAMPLES = 5, 25
"""Random tiny schools compared with brute force: a few in every run, more in runs that include `slow` tests."""
HIRE_SESSIONS = 2
"""Fewer sessions a week than the tiny schools' three periods, so a hired teacher's weekly cap matters."""


def example() -> Instance:
    return io.load_instance(SPEC / "example-instance.json")


def test_no_gap_no_advice() -> None:
    advice = advise(example(), FAST)
    assert advice.coverage_now == advice.coverage_after == advice.demand == 9
    assert advice.items == ()
    assert advice.extra_teachers == 0 and advice.extra_seats == 0
    assert advice.status == Status.OPTIMAL


@pytest.mark.parametrize("days_from", [None, 0])
def test_todays_coverage_goes_day_by_day_only_on_a_big_school(monkeypatch: pytest.MonkeyPatch,
                                                               days_from: int | None) -> None:
    """The allocation's own rule (`days_first`): the worked example is far below the size where the days pay, so
    its coverage today comes from the week's search; with the threshold at 0 the days give the same advice."""
    import scheduler.coverage
    import scheduler.daywise

    calls = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return scheduler.daywise.coverage_by_day(*args, **kwargs)

    monkeypatch.setattr(scheduler.coverage, "coverage_by_day", counted)
    if days_from is not None:
        monkeypatch.setattr(scheduler.daywise, "DAYWISE_MIN_VARIABLES", days_from)
    base = example()
    teachers = tuple(dataclasses.replace(t, available=frozenset(s for s in t.available if s[1] != "P3"))
                     for t in base.teachers)
    advice = advise(dataclasses.replace(base, teachers=teachers), FAST)
    assert len(calls) == (0 if days_from is None else 1)
    assert (advice.coverage_now, advice.coverage_after, advice.hired) == (7, 9, {"": 1})
    assert advice.status == Status.OPTIMAL


def test_with_no_time_for_a_search_todays_coverage_is_the_lotterys_plan() -> None:
    """Today's coverage is found the allocation's way (`scheduler.coverage`): when neither the days nor the week's
    search has a plan in time, today's lottery is one, not an empty school."""
    from scheduler.baselines import lottery
    from scheduler.deadline import Deadline
    from scheduler.generate import generate
    from scheduler.whatif import _coverage_today

    inst = generate(150, 3, tight=True)
    _, solver, result = _coverage_today(inst, FAST, Deadline.after(0))
    drawn = lottery(inst, FAST.seed).objective.coverage
    assert drawn > 0
    assert result.value == drawn and solver.have_solution
    assert result.status == Status.FEASIBLE and result.bound == inst.demand()


def test_missing_care_teacher_is_hired() -> None:
    base = example()
    # nobody can lead extended care at P3 any more: P002's day is lost until a teacher is hired
    teachers = tuple(dataclasses.replace(t, available=frozenset(s for s in t.available if s[1] != "P3"))
                     for t in base.teachers)
    advice = advise(dataclasses.replace(base, teachers=teachers), FAST)
    assert advice.coverage_now == 7
    assert advice.coverage_after == 9
    assert advice.hired == {"": 1}
    assert advice.extra_seats == 0
    [item] = advice.items
    assert (item.day, item.period, item.extra_teachers, item.pupil_days_covered) == (1, "P3", {"": 1}, 2)


def test_missing_room_gets_seats_before_teachers() -> None:
    base = example()
    full = dataclasses.replace(base, sessions=tuple(
        dataclasses.replace(s, capacity=2) if s.id == "S1" else s for s in base.sessions))
    advice = advise(full, FAST)
    assert advice.coverage_after == advice.demand == 9
    assert advice.extra_seats == 2  # two more pupils need P1 seats on Monday
    # T1 is free at P1 and may lead the new room: no hiring needed
    assert advice.extra_teachers == 0
    assert advice_to_json(advice)["extra_seats"] == 2


def test_pupil_days_add_up_to_the_gap_on_random_schools() -> None:
    for seed in range(QUICK_EXAMPLES):
        instance = random_instance(seed, pupils=10, days=2)
        advice = advise(instance, FAST)
        assert advice.coverage_after == advice.demand
        assert sum(item.pupil_days_covered for item in advice.items) == advice.gained, seed
        assert advice_to_json(advice)["gained"] == advice.coverage_after - advice.coverage_now


@pytest.mark.parametrize("pupils, seed", [(4, 1000 + seed) for seed in range(QUICK_EXAMPLES)] + [
    (5, 17), (5, 28), (5, 41), (5, 47), (5, 71),  # the slots' plans overrun a weekly cap: priced bound, week search
] + [pytest.param(5, 2000 + seed, marks=pytest.mark.slow) for seed in range(SLOW_EXAMPLES)])
def test_advice_is_the_lexicographic_minimum_found_by_brute_force(pupils: int, seed: int) -> None:
    """Every hiring and every set of seats added, tried on tiny schools with the independent reference model:
    the first that covers everything, in the order (teachers, qualified teachers, seats), is the advice. A level
    not proven has its bound at or below the minimum and its value at or above."""
    instance = random_instance(seed, pupils=pupils, days=1)
    advice = advise(instance, FAST, hire_sessions=HIRE_SESSIONS)
    expected = dict(zip(("hired", "hired_qualified", "seats"), brute_force(instance), strict=True))
    levels = {level.name: level for level in advice.levels}
    assert levels["coverage"].value == levels["coverage"].bound == instance.demand()
    for name, least in expected.items():
        level = levels[name]
        assert level.bound <= least <= level.value, (name, level, least)
        if level.value != least:  # a later level is compared only where the earlier ones match
            assert not level.proven
            break
    assert all(level.proven for level in advice.levels), advice.levels  # these tiny schools are all proven
    assert advice.extra_teachers == expected["hired"] and advice.extra_seats == expected["seats"]
    now = reference_optimum(instance, levels=1)
    assert now is not None and advice.coverage_now == now["coverage"]
    assert sum(item.pupil_days_covered for item in advice.items) == advice.gained




def brute_force(instance: Instance) -> tuple[int, int, int]:
    """(teachers, qualified teachers, seats): the lexicographically least hiring and new seats per slot with which
    the reference model covers every requested pupil-day."""
    slots = sorted({(day, period) for r in instance.requests for day in r.days for period in r.periods})
    need = {slot: sum(1 for r in instance.requests if slot[0] in r.days and slot[1] in r.periods) for slot in slots}
    tags = sorted({instance.activity_by_id[s.activity].qualification or "" for s in instance.sessions} | {""})
    for hired in range(len(slots) * 4 + 1):
        for qualified in range(hired + 1):
            splits = [split for split in itertools.product(range(hired + 1), repeat=len(tags))
                      if sum(split) == hired and sum(n for tag, n in zip(tags, split, strict=True) if tag) == qualified]
            seats = [least_seats(instance, slots, need, dict(zip(tags, split, strict=True))) for split in splits]
            found = [n for n in seats if n is not None]
            if found:
                return hired, qualified, min(found)
    raise AssertionError("no hiring covers the school")


def least_seats(instance: Instance, slots: list[Slot], need: dict[Slot, int], hired: dict[str, int]) -> int | None:
    if not covers_all(instance, {slot: need[slot] for slot in slots}, hired):
        return None
    for seats in range(sum(need.values()) + 1):
        for rooms in itertools.product(*(range(need[slot] + 1) for slot in slots)):
            if sum(rooms) == seats and covers_all(instance, dict(zip(slots, rooms, strict=True)), hired):
                return seats
    raise AssertionError("unreachable: every room at its largest covers all")


def covers_all(instance: Instance, rooms: dict[Slot, int], hired: dict[str, int]) -> bool:
    sessions = []
    for (day, period), capacity in rooms.items():
        at_slot = instance.sessions_by_slot.get((day, period), [])
        ratio = max((s.pupils_per_teacher for s in at_slot), default=DEFAULT_PUPILS_PER_TEACHER)
        if capacity:
            sessions.append(Session(f"new_{day}_{period}", "care", day, period, "新", capacity, (1, 6), ratio, 0))
    everywhere = frozenset((d, p.id) for d in instance.weekdays for p in instance.periods)
    teachers = [Teacher(f"H_{tag or 'any'}_{i}", "新教师", frozenset({tag} if tag else ()), everywhere, HIRE_SESSIONS)
                for tag, count in hired.items() for i in range(count)]
    grown = dataclasses.replace(instance, sessions=(*instance.sessions, *sessions),
                                teachers=(*instance.teachers, *teachers))
    result = reference_optimum(grown, levels=1)
    return result is not None and result["coverage"] == instance.demand()
