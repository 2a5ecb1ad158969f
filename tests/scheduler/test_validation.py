from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from scheduler.domain import Assignment, Instance, Objective, Solution, Staffing, Status, Unserved
from scheduler.io import parse_instance, parse_solution
from scheduler.validation import (
    Report,
    coverage,
    covered_pupil_days,
    preference,
    stability,
    teacher_loads,
    validate,
)
from tests.scheduler.builders import (
    example_instance_json,
    example_solution_json,
    instance,
    pupil,
    request,
    session,
    solution,
    teacher,
)


def rules(report: Report) -> set[int]:
    return {v.rule for v in report.violations}


def messages(report: Report) -> str:
    return "\n".join(v.message for v in report.violations)


# ---------------------------------------------------------------- the worked example


def test_example_is_valid_and_objective_recomputed(example_instance: Instance,
                                                   example_solution: Solution) -> None:
    report = validate(example_instance, example_solution)
    assert report.ok and report.consistent, report
    assert report.objective == Objective(coverage=9, coverage_bound=9, stability=0, preference=7,
                                         max_teacher_load=2)
    assert report.total_staffing == 4
    assert report.covered == {("P001", 1), ("P002", 1), ("P003", 1), ("P004", 1)}


def test_pure_objective_functions(example_instance: Instance, example_solution: Solution) -> None:
    pairs = example_solution.assignments
    assert coverage(example_instance, pairs) == 9
    assert preference(example_instance, pairs) == 7
    assert stability(example_instance, pairs) == 0
    assert teacher_loads(example_instance, example_solution.staffing) == {"T1": 1, "T2": 1, "T3": 2}
    without_s4 = [a for a in pairs if a.session != "S4"]
    assert covered_pupil_days(example_instance, without_s4) == {("P001", 1), ("P003", 1), ("P004", 1)}
    assert coverage(example_instance, without_s4) == 9 - 2


def test_stability_counts_kept_previous_pairs() -> None:
    inst = instance([session("S1"), session("S2")], [teacher("T1")], [pupil("A"), pupil("B")],
                    [request("A"), request("B")], previous=(("A", "S1"), ("B", "S1")))
    assert stability(inst, [Assignment("A", "S1"), Assignment("B", "S2")]) == 1


# ---------------------------------------------------------------- mutations of the worked example


def mutated(change: Callable[[dict[str, Any], dict[str, Any]], None]) -> Report:
    instance_data, solution_data = example_instance_json(), example_solution_json()
    change(instance_data, solution_data)
    inst = parse_instance(instance_data)
    return validate(inst, parse_solution(solution_data))


def test_mutation_over_capacity() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        i["sessions"][1]["capacity"] = 0
    report = mutated(change)
    assert 4 in rules(report)
    assert "rule 4: session S2 has 1 pupils, capacity 0" in messages(report)


def test_mutation_drop_a_teacher() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        s["staffing"] = [p for p in s["staffing"] if p["session"] != "S3"]
    report = mutated(change)
    assert rules(report) == {5}
    assert "session S3 has 2 pupils and 0 teacher(s), needs 1" in messages(report)


def test_mutation_wrong_qualification() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        s["staffing"][1] = {"teacher": "T2", "session": "S2"}  # art teacher on football
        s["staffing"][2] = {"teacher": "T1", "session": "S3"}
    report = mutated(change)
    assert rules(report) == {6}
    assert "teacher T2 lacks qualification 'sports' for session S2" in messages(report)
    assert "teacher T1 lacks qualification 'arts' for session S3" in messages(report)


def test_mutation_teacher_double_booked() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        i["teachers"][0]["qualifications"] = ["sports", "arts"]
        s["staffing"][2] = {"teacher": "T1", "session": "S3"}  # T1 also leads S2 at (1, P2)
    report = mutated(change)
    assert rules(report) == {6}
    assert "teacher T1 leads 2 sessions on day 1 P2: S2, S3" in messages(report)


def test_mutation_teacher_unavailable() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        i["teachers"][2]["available"] = [[1, "P1"]]
    report = mutated(change)
    assert rules(report) == {6}
    assert "teacher T3 is not available on day 1 P3 for session S4" in messages(report)


def test_mutation_exceed_max_sessions() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        i["teachers"][2]["max_sessions"] = 1
    report = mutated(change)
    assert rules(report) == {6}
    assert "teacher T3 leads 2 sessions, max_sessions 1" in messages(report)


def test_mutation_pupil_in_wrong_grade() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        i["sessions"][0]["grades"] = [4, 6]
    report = mutated(change)
    assert rules(report) == {2}
    assert "pupil P001 (grade 3) sits in session S1 for grades 4-6" in messages(report)


def test_mutation_unrequested_slot() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        s["assignments"].append({"pupil": "P004", "session": "S4"})
    report = mutated(change)
    assert rules(report) == {2}
    assert "pupil P004 sits in session S4 on day 1 P3, a slot the request does not list" in messages(report)


def test_mutation_missing_fixed_pair() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        i["fixed"] = [{"pupil": "P003", "session": "S2"}]
    report = mutated(change)
    assert rules(report) == {7}
    assert "rule 7: fixed pair (P003, S2) is not assigned" in messages(report)


def test_mutation_unknown_ids() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        s["assignments"].append({"pupil": "P999", "session": "S1"})
        s["staffing"].append({"teacher": "T1", "session": "S77"})
    report = mutated(change)
    assert rules(report) == {1}
    assert "unknown pupil P999" in messages(report) and "unknown session S77" in messages(report)


def test_mutation_pupil_in_two_sessions_at_once() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        s["assignments"].append({"pupil": "P003", "session": "S2"})  # P003 already in S3 at (1, P2)
    report = mutated(change)
    assert 3 in rules(report)
    assert "pupil P003 sits in 2 sessions on day 1 P2: S2, S3" in messages(report)


def test_mutation_duplicate_pairs() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        s["assignments"].append({"pupil": "P001", "session": "S1"})
        s["staffing"].append({"teacher": "T3", "session": "S1"})
    report = mutated(change)
    assert rules(report) == {3, 6}
    assert "pupil P001 is assigned to session S1 twice" in messages(report)
    assert "teacher T3 is staffed on session S1 twice" in messages(report)


def test_mutation_wrong_reported_objective() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        s["objective"]["preference"] = 4
        s["objective"]["coverage_bound"] = 8
    report = mutated(change)
    assert report.ok and not report.consistent
    assert "objective.preference is 4, recomputed 7" in report.objective_mismatches
    assert "objective.coverage_bound 8 is below the achieved coverage 9" in report.objective_mismatches


def test_unserved_list_must_match_coverage() -> None:
    def change(i: dict[str, Any], s: dict[str, Any]) -> None:
        s["assignments"] = [a for a in s["assignments"] if a["session"] != "S4"]
        s["staffing"] = [p for p in s["staffing"] if p["session"] != "S4"]
        s["objective"].update(coverage=7, max_teacher_load=1)
        s["unserved"] = [{"pupil": "P001", "day": 1, "reason": "x"}]
    report = mutated(change)
    assert report.ok and report.objective_mismatches == ()
    assert report.unserved_mismatches == (
        "unserved lists pupil P001 day 1, which the assignments cover",
        "pupil P002 day 1 is not covered but missing from unserved",
    )


# ---------------------------------------------------------------- each rule: trivial, violated, feasible

def one_pupil(max_sessions: int = 10, fixed: tuple[tuple[str, str], ...] = ()) -> Instance:
    """Pupil A asks for Monday P1; session S1 is there; teacher T1 can lead it."""
    return instance([session("S1", capacity=2, pupils_per_teacher=1)],
                    [teacher("T1", max_sessions=max_sessions)], [pupil("A")], [request("A")], fixed=fixed)


def test_empty_solution_is_trivially_valid_for_every_rule() -> None:
    inst = one_pupil()
    report = validate(inst, solution(unserved=(Unserved("A", 1, "x"),)))
    assert report.ok and report.consistent
    assert report.objective == Objective(0, 0, 0, 0, 0)


def test_rule_1_school_must_match() -> None:
    inst = one_pupil()
    report = validate(inst, solution([("A", "S1")], [("T1", "S1")], school="ELSEWHERE"))
    assert rules(report) == {1}
    assert validate(inst, solution([("A", "S1")], [("T1", "S1")])).ok


def test_rule_1_unknown_teacher_and_unserved_pupil() -> None:
    inst = one_pupil()
    report = validate(inst, solution([("A", "S1")], [("T9", "S1")], unserved=(Unserved("Z", 1, "x"),)))
    assert 1 in rules(report)
    assert "staffing (T9, S1): unknown teacher T9" in messages(report)
    assert "unserved entry names unknown pupil Z" in messages(report)


def test_rule_2_feasible_and_violated_day() -> None:
    inst = instance([session("S1", day=1), session("S2", day=2)], [teacher("T1")], [pupil("A")],
                    [request("A", days=(1,))])
    assert validate(inst, solution([("A", "S1")], [("T1", "S1")])).ok
    report = validate(inst, solution([("A", "S2")], [("T1", "S2")]))
    assert rules(report) == {2}


def test_rule_2_pupil_without_request() -> None:
    inst = instance([session("S1")], [teacher("T1")], [pupil("A")], [])
    assert "pupil A has no request but sits in session S1" in messages(
        validate(inst, solution([("A", "S1")], [("T1", "S1")])))


def test_rule_3_feasible_and_violated() -> None:
    inst = instance([session("S1"), session("S2"), session("S3", period="P2")],
                    [teacher("T1"), teacher("T2")], [pupil("A")], [request("A", periods=("P1", "P2"))])
    assert validate(inst, solution([("A", "S1"), ("A", "S3")], [("T1", "S1"), ("T1", "S3")])).ok
    report = validate(inst, solution([("A", "S1"), ("A", "S2")], [("T1", "S1"), ("T2", "S2")]))
    assert rules(report) == {3}


def test_rule_4_exactly_full_is_feasible_one_more_is_not() -> None:
    inst = instance([session("S1", capacity=2)], [teacher("T1")], [pupil("A"), pupil("B"), pupil("C")],
                    [request("A"), request("B"), request("C")])
    assert validate(inst, solution([("A", "S1"), ("B", "S1")], [("T1", "S1")])).ok
    report = validate(inst, solution([("A", "S1"), ("B", "S1"), ("C", "S1")], [("T1", "S1")]))
    assert rules(report) == {4}
    assert "rule 4: session S1 has 3 pupils, capacity 2" in messages(report)


def test_rule_5_min_pupils() -> None:
    inst = instance([session("S1", min_pupils=2)], [teacher("T1")], [pupil("A"), pupil("B")],
                    [request("A"), request("B")])
    assert validate(inst, solution([("A", "S1"), ("B", "S1")], [("T1", "S1")])).ok
    report = validate(inst, solution([("A", "S1")], [("T1", "S1")]))
    assert rules(report) == {5}
    assert "session S1 has 1 pupils, fewer than min_pupils 2" in messages(report)


def test_rule_5_teacher_ratio_rounds_up() -> None:
    inst = instance([session("S1", pupils_per_teacher=2)], [teacher("T1"), teacher("T2")],
                    [pupil(p) for p in "ABC"], [request(p) for p in "ABC"])
    three = [("A", "S1"), ("B", "S1"), ("C", "S1")]
    assert validate(inst, solution(three, [("T1", "S1"), ("T2", "S1")])).ok
    report = validate(inst, solution(three, [("T1", "S1")]))
    assert "session S1 has 3 pupils and 1 teacher(s), needs 2 (one per 2)" in messages(report)


def test_rule_5_empty_session_has_no_teacher() -> None:
    inst = one_pupil()
    report = validate(inst, solution([], [("T1", "S1")]))
    assert rules(report) == {5}
    assert "session S1 has no pupils but 1 teacher(s)" in messages(report)


def test_rule_6_qualification_feasible_and_violated() -> None:
    inst = instance([session("S1", "football")], [teacher("T1", qualifications=("sports",)), teacher("T2")],
                    [pupil("A")], [request("A")])
    assert validate(inst, solution([("A", "S1")], [("T1", "S1")])).ok
    assert rules(validate(inst, solution([("A", "S1")], [("T2", "S1")]))) == {6}


def test_rule_6_max_sessions_zero() -> None:
    inst = one_pupil(max_sessions=0)
    assert rules(validate(inst, solution([("A", "S1")], [("T1", "S1")]))) == {6}


def test_rule_7_fixed_pairs() -> None:
    inst = one_pupil(fixed=(("A", "S1"),))
    assert validate(inst, solution([("A", "S1")], [("T1", "S1")])).ok
    assert rules(validate(inst, solution())) == {7}
    # An INFEASIBLE answer holds no allocation, so there is nothing to pin.
    assert validate(inst, solution(status=Status.INFEASIBLE)).ok


@pytest.mark.parametrize("status", [Status.OPTIMAL, Status.FEASIBLE])
def test_report_lists_every_violation(status: str) -> None:
    inst = instance([session("S1", capacity=1, min_pupils=0)], [teacher("T1", available=[])],
                    [pupil("A", grade=1), pupil("B")], [request("A"), request("B", days=(2,))])
    sol = Solution(inst.school.id, status, (Assignment("A", "S1"), Assignment("B", "S1")),
                   (Staffing("T1", "S1"),), Objective(0, 0, 0, 0, 0))
    report = validate(inst, sol)
    assert rules(report) == {2, 4, 6}
    assert all(v.message.startswith(f"rule {v.rule}: ") for v in report.violations)


def test_preference_scores_rank_points_whatever_the_list_length(example_instance: Instance) -> None:
    # P002 ranked only football, P001 football then art: a first choice scores the same for both
    both_in_football = [Assignment("P001", "S2"), Assignment("P002", "S2")]
    assert preference(example_instance, both_in_football) == 3 + 3
    assert preference(example_instance, [Assignment("P001", "S3")]) == 2
    assert preference(example_instance, [Assignment("P004", "S3")]) == 0  # P004 ranked nothing
    custom = dataclasses.replace(example_instance, rank_points=(10,))
    assert preference(custom, both_in_football) == 20
    assert preference(custom, [Assignment("P001", "S3")]) == 0  # second choice, beyond the points
