"""What-if advice: hiring and seats that close the gap, and nothing when there is no gap."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from scheduler import io
from scheduler.domain import Instance, Status
from scheduler.solve import SolverConfig
from scheduler.whatif import advice_to_json, advise

SPEC = Path(__file__).resolve().parents[2] / "docs" / "spec"
FAST = SolverConfig(time_limit=20, workers=1)


def example() -> Instance:
    return io.load_instance(SPEC / "example-instance.json")


def test_no_gap_no_advice() -> None:
    advice = advise(example(), FAST)
    assert advice.coverage_now == advice.coverage_after == advice.demand == 9
    assert advice.items == ()
    assert advice.extra_teachers == 0 and advice.extra_seats == 0
    assert advice.status == Status.OPTIMAL


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
    assert (item.day, item.period, item.extra_teachers, item.pupils_covered) == (1, "P3", {"": 1}, 1)


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
