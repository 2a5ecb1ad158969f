"""Today's methods: a lottery by priority tier and first-come-first-served, both valid by every hard rule."""

from __future__ import annotations

import dataclasses

import pytest

from scheduler.baselines import first_come_first_served, lottery
from scheduler.domain import Instance, Solution, Status
from scheduler.generate import generate
from scheduler.groups import lottery_key
from scheduler.validation import validate
from tests.scheduler.builders import instance, pupil, request, session, teacher


def _check(inst: Instance, solution: Solution) -> None:
    report = validate(inst, solution)
    assert report.consistent, (report.violations, report.objective_mismatches, report.unserved_mismatches)
    assert solution.status == Status.FEASIBLE
    assert solution.objective.coverage_bound == inst.demand()


def _seated(solution: Solution) -> set[tuple[str, str]]:
    return {(a.pupil, a.session) for a in solution.assignments}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("tight", [False, True])
def test_generated_schools_give_valid_allocations(seed: int, tight: bool) -> None:
    inst = generate(300 + 150 * seed, seed, tight)
    for solution, method in ((lottery(inst, seed=seed), "lottery"),
                             (first_come_first_served(inst), "first_come_first_served")):
        _check(inst, solution)
        assert solution.stats["method"] == method and solution.stats["seconds"] >= 0
        assert 0 < solution.objective.coverage < inst.demand()
        assert solution.unserved and all(u.reason for u in solution.unserved)


def test_the_lottery_without_explanations_seats_the_same_plan() -> None:
    """The solver's fallback draws without explaining whom the draw leaves out: the same seats, staffing and
    objective, and no `unserved`."""
    inst = generate(400, 5, True)
    explained, bare = lottery(inst, seed=5), lottery(inst, seed=5, explain=False)
    assert explained.unserved and not bare.unserved
    assert (bare.assignments, bare.staffing, bare.objective) == (
        explained.assignments, explained.staffing, explained.objective)


def test_lottery_is_repeatable_and_depends_on_its_seed() -> None:
    inst = generate(400, 9, tight=True)
    assert lottery(inst, seed=5).assignments == lottery(inst, seed=5).assignments
    assert lottery(inst, seed=5).assignments != lottery(inst, seed=6).assignments


def test_lottery_serves_higher_priority_first() -> None:
    inst = instance(
        sessions=[session("S1", capacity=1)], teachers=[teacher("T1")],
        pupils=[pupil("LOW", priority=0), pupil("HIGH", priority=2)],
        requests=[request("LOW"), request("HIGH")],
    )
    for seed in range(20):
        solution = lottery(inst, seed=seed)
        _check(inst, solution)
        assert _seated(solution) == {("HIGH", "S1")}
        assert [(u.pupil, u.day) for u in solution.unserved] == [("LOW", 1)]


def test_lottery_draws_within_a_tier() -> None:
    inst = instance(
        sessions=[session("S1", capacity=1)], teachers=[teacher("T1")],
        pupils=[pupil("A"), pupil("B")], requests=[request("A"), request("B")],
    )
    winners = {next(iter(_seated(lottery(inst, seed=seed))))[0] for seed in range(20)}
    assert winners == {"A", "B"}


def test_first_come_first_served_follows_submission_order_not_priority() -> None:
    pupils = [pupil("A", priority=2), pupil("B", priority=0)]
    for order, winner in ((["A", "B"], "A"), (["B", "A"], "B")):
        inst = instance(sessions=[session("S1", capacity=1)], teachers=[teacher("T1")], pupils=pupils,
                        requests=[request(p) for p in order])
        solution = first_come_first_served(inst)
        _check(inst, solution)
        assert _seated(solution) == {(winner, "S1")}


def test_ranked_activity_first_then_any_session_with_room() -> None:
    inst = instance(
        sessions=[session("HW", "homework", period="P2", capacity=5),
                  session("ART", "art", period="P2", capacity=1, pupils_per_teacher=10)],
        teachers=[teacher("T1"), teacher("T2", qualifications=("arts",))],
        pupils=[pupil("A"), pupil("B")],
        requests=[request("A", periods=("P2",), preferences=("art",)),
                  request("B", periods=("P2",), preferences=("art", "football"))],
    )
    solution = first_come_first_served(inst)
    _check(inst, solution)
    assert _seated(solution) == {("A", "ART"), ("B", "HW")}
    assert solution.objective.preference == 3  # A sits in art, its first choice: rank_points[0]


def test_a_day_is_seated_whole_or_not_at_all() -> None:
    # A wants P1 and P2 but there is no P2 session: A must not take B's P1 seat.
    inst = instance(
        sessions=[session("S1", capacity=1)], teachers=[teacher("T1")],
        pupils=[pupil("A"), pupil("B")],
        requests=[request("A", periods=("P1", "P2")), request("B")],
    )
    solution = first_come_first_served(inst)
    _check(inst, solution)
    assert _seated(solution) == {("B", "S1")}


def test_sessions_below_min_pupils_close_and_their_pupils_lose_the_day() -> None:
    inst = instance(
        sessions=[session("HW", capacity=10),
                  session("FB", "football", period="P2", capacity=10, min_pupils=3, pupils_per_teacher=20),
                  session("HW2", period="P2", capacity=10)],
        teachers=[teacher("T1"), teacher("T2", qualifications=("sports",))],
        pupils=[pupil("A"), pupil("B"), pupil("C")],
        requests=[request("A", periods=("P1", "P2"), preferences=("football",)),
                  request("B", periods=("P1", "P2"), preferences=("football",)),
                  request("C", periods=("P1", "P2"))],
    )
    solution = first_come_first_served(inst)
    _check(inst, solution)
    # C lands in the open football session too (the fullest open one), so it reaches 3 and stays open.
    assert _seated(solution) == {(p, s) for p in "ABC" for s in ("HW", "FB")}

    short = instance(sessions=inst.sessions, teachers=inst.teachers, pupils=inst.pupils,
                     requests=inst.requests[:2])
    solution = first_come_first_served(short)
    _check(short, solution)
    assert solution.assignments == () and solution.staffing == ()
    assert {u.pupil for u in solution.unserved} == {"A", "B"}


def test_unstaffable_sessions_close_smallest_first() -> None:
    inst = instance(
        sessions=[session("BIG", capacity=10, grades=(3, 3)), session("SMALL", capacity=10, grades=(4, 4)),
                  session("FB", "football", day=2, capacity=10, pupils_per_teacher=2)],
        teachers=[teacher("T1", max_sessions=1)],
        pupils=[pupil("A"), pupil("B"), pupil("C", grade=4), pupil("D")],
        requests=[request("A"), request("B"), request("C"), request("D", days=(2,))],
    )
    solution = lottery(inst)
    _check(inst, solution)
    assert _seated(solution) == {("A", "BIG"), ("B", "BIG")}
    assert {(s.teacher, s.session) for s in solution.staffing} == {("T1", "BIG")}
    assert {u.pupil for u in solution.unserved} == {"C", "D"}


def test_sessions_get_enough_teachers() -> None:
    inst = instance(
        sessions=[session("S1", capacity=5, pupils_per_teacher=2)],
        teachers=[teacher(f"T{i}") for i in range(1, 5)],
        pupils=[pupil(f"P{i}") for i in range(5)], requests=[request(f"P{i}") for i in range(5)],
    )
    solution = lottery(inst)
    _check(inst, solution)
    assert len(solution.assignments) == 5 and len(solution.staffing) == 3


def test_fixed_pairs_are_seated_first() -> None:
    inst = instance(
        sessions=[session("S1", capacity=1)], teachers=[teacher("T1")],
        pupils=[pupil("A", priority=2), pupil("B")], requests=[request("A"), request("B")],
        fixed=(("B", "S1"),),
    )
    for solution in (lottery(inst), first_come_first_served(inst)):
        _check(inst, solution)
        assert _seated(solution) == {("B", "S1")}


def test_fixed_pairs_that_break_the_rules_make_the_answer_infeasible() -> None:
    inst = instance(
        sessions=[session("S1", capacity=1, grades=(5, 6))], teachers=[teacher("T1")],
        pupils=[pupil("A")], requests=[request("A")], fixed=(("A", "S1"),),
    )
    solution = lottery(inst)
    assert solution.status == Status.INFEASIBLE and not solution.assignments
    assert solution.stats["infeasible_fixed"][0]["pupil"] == "A"


def test_lottery_draws_by_family_and_the_instance_seed() -> None:
    inst = dataclasses.replace(instance(
        sessions=[session("S1", capacity=2)], teachers=[teacher("T1")],
        pupils=[pupil("A", family="F"), pupil("B", family="F"), pupil("C"), pupil("D")],
        requests=[request("A"), request("B"), request("C"), request("D")],
    ), lottery_seed=11)
    runs = [lottery(inst, seed=seed) for seed in range(10)]
    assert all(run.assignments == runs[0].assignments for run in runs)  # the instance's seed wins
    assert runs[0].stats["seed"] == 11
    for seed in range(30):
        drawn = dataclasses.replace(inst, lottery_seed=seed)
        order = sorted("ABCD", key=lambda p: lottery_key(seed, p, drawn.pupil_by_id[p].family))
        assert abs(order.index("A") - order.index("B")) == 1  # siblings draw together
        assert {p for p, _ in _seated(lottery(drawn))} == set(order[:2])
