from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scheduler.domain import Instance, Objective, Solution, Status, Unserved
from scheduler.io import (
    InputError,
    instance_to_json,
    load_instance,
    load_solution,
    parse_instance,
    parse_solution,
    solution_to_json,
    write_json,
)
from tests.scheduler import builders
from tests.scheduler.builders import example_instance_json, example_solution_json

Mutation = Callable[[dict[str, Any]], None]


def problems_of(data: object) -> list[str]:
    with pytest.raises(InputError) as caught:
        parse_instance(data)
    return caught.value.problems


def broken(mutate: Mutation) -> list[str]:
    data = example_instance_json()
    mutate(data)
    return problems_of(data)


# ---------------------------------------------------------------- loading the shared examples


def test_shared_example_files_load(example_files: tuple[Path, Path]) -> None:
    instance = load_instance(example_files[0])
    solution = load_solution(example_files[1], instance)
    assert instance.school.id == "KM-WH-0001"
    assert len(instance.pupils) == 4 and len(instance.sessions) == 4
    assert instance.priority_weights == {0: 1, 1: 2, 2: 4}
    assert instance.pupil_by_id["P001"].class_name == "3-1"
    assert instance.pupil_by_id["P004"].family is None
    assert instance.teacher_by_id["T1"].available == frozenset({(1, "P1"), (1, "P2")})
    assert instance.session_by_id["S3"].grades == (1, 4)
    assert solution.status == Status.OPTIMAL
    assert solution.objective == Objective(9, 9, 0, 7, 2)
    assert len(solution.assignments) == 8 and len(solution.staffing) == 4


def test_spec_folder_files_load_directly() -> None:
    instance = load_instance(builders.SPEC_DIR / "example-instance.json")
    load_solution(builders.SPEC_DIR / "example-solution.json", instance)


def test_instance_round_trip(example_instance: Instance) -> None:
    again = parse_instance(instance_to_json(example_instance))
    assert again == example_instance
    assert instance_to_json(again) == instance_to_json(example_instance)


def test_round_trip_keeps_fixed_previous_and_extra_fields() -> None:
    data = example_instance_json()
    data["fixed"] = [{"pupil": "P001", "session": "S3"}]
    data["previous"] = [{"pupil": "P002", "session": "S2"}]
    data["generator"] = {"seed": 7, "note": "中文保留"}
    instance = parse_instance(data)
    assert instance.extra == {"generator": {"seed": 7, "note": "中文保留"}}
    written = instance_to_json(instance)
    assert written["generator"] == {"seed": 7, "note": "中文保留"}
    assert parse_instance(written) == instance
    assert written["priority_weights"] == {"0": 1, "1": 2, "2": 4}
    assert written["pupils"][0]["class"] == "3-1"


def test_solution_round_trip(example_instance: Instance, example_solution: Solution) -> None:
    with_unserved = Solution(
        school=example_solution.school, status=Status.FEASIBLE, assignments=example_solution.assignments,
        staffing=example_solution.staffing, objective=example_solution.objective,
        unserved=(Unserved("P003", 1, "周一 P2：没有座位", "no_seat"),), stats={"seconds": 0.5},
    )
    data = solution_to_json(with_unserved)
    assert data["unserved"] == [{"pupil": "P003", "day": 1, "reason": "周一 P2：没有座位", "code": "no_seat"}]
    assert parse_solution(data, example_instance) == with_unserved
    assert parse_solution(json.loads(json.dumps(data))).stats == {"seconds": 0.5}


def test_unserved_code_is_optional_when_reading() -> None:
    data = example_solution_json()
    data["unserved"] = [{"pupil": "P003", "day": 1, "reason": "no room"}]
    assert parse_solution(data).unserved == (Unserved("P003", 1, "no room", ""),)


def test_write_json_is_utf8_readable_and_atomic(tmp_path: Path, example_instance: Instance) -> None:
    target = tmp_path / "out.json"
    target.write_text("old", encoding="utf-8")
    write_json(instance_to_json(example_instance), target)
    text = target.read_text(encoding="utf-8")
    assert "昆明市五华区示例小学" in text  # not \\u-escaped
    assert load_instance(target) == example_instance
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left behind


# ---------------------------------------------------------------- one test per error kind


def test_format_must_match() -> None:
    assert any(p.startswith("format: must be 'afterschool-instance/1'")
               for p in broken(lambda d: d.update(format="afterschool-instance/2")))


def test_missing_field_is_named() -> None:
    assert "pupils[1].grade: is required" in broken(lambda d: d["pupils"][1].pop("grade"))
    assert "term: is required" in broken(lambda d: d.pop("term"))


def test_capacity_must_be_non_negative_integer() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sessions"][2]["capacity"] = -1
    assert "sessions[2].capacity: must be an integer >= 0" in broken(mutate)


def test_bool_is_not_an_integer() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sessions"][0]["capacity"] = True
    assert "sessions[0].capacity: must be an integer >= 0" in broken(mutate)


def test_wrong_type_string() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["pupils"][0]["name"] = 12
    assert "pupils[0].name: must be a string" in broken(mutate)


def test_grade_range() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["pupils"][3]["grade"] = 7
    assert "pupils[3].grade: must be an integer from 1 to 6" in broken(mutate)


def test_unknown_pupil_in_request() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["requests"][2]["pupil"] = "P999"
    assert "requests[2].pupil: unknown pupil id 'P999'" in broken(mutate)


def test_duplicate_id() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["teachers"][2]["id"] = "T1"
    assert "teachers[2].id: duplicate id 'T1'" in broken(mutate)


def test_unknown_period_in_session() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sessions"][3]["period"] = "P9"
    assert "sessions[3].period: unknown period 'P9'" in broken(mutate)


def test_request_day_outside_weekdays() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["weekdays"] = [1, 2, 3, 4, 5]
        d["requests"][1]["days"] = [6]
    assert "requests[1].days[0]: day 6 is not one of the instance's weekdays" in broken(mutate)


def test_session_day_outside_weekdays() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["weekdays"] = [2, 3]
    problems = broken(mutate)
    assert "sessions[0].day: day 1 is not one of the instance's weekdays" in problems


def test_time_format() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["periods"][1]["start"] = "4:30pm"
    assert "periods[1].start: must be a time written HH:MM, not '4:30pm'" in broken(mutate)


def test_end_before_start() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["periods"][0]["end"] = "15:00"
    assert "periods[0].end: must be after start 15:30" in broken(mutate)


def test_priority_level_must_exist() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["pupils"][0]["priority"] = 5
    assert "pupils[0].priority: priority level 5 is not in priority_weights" in broken(mutate)


def test_priority_weight_must_be_positive() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["priority_weights"]["2"] = 0
    assert "priority_weights.2: must be an integer >= 1" in broken(mutate)


def test_priority_level_key_must_be_an_integer() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["priority_weights"]["high"] = 3
    assert any(p.startswith("priority_weights.high: priority level must be") for p in broken(mutate))


@pytest.mark.parametrize("grades", [[0, 3], [4, 3], [1, 7], [3], "1-6", [1.0, 2], [True, 2]])
def test_session_grades(grades: object) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sessions"][1]["grades"] = grades
    assert "sessions[1].grades: must be [lo, hi] with 1 <= lo <= hi <= 6" in broken(mutate)


def test_pupils_per_teacher_at_least_one() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sessions"][0]["pupils_per_teacher"] = 0
    assert "sessions[0].pupils_per_teacher: must be an integer >= 1" in broken(mutate)


def test_max_sessions_and_min_pupils_non_negative() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["teachers"][1]["max_sessions"] = -1
        d["sessions"][2]["min_pupils"] = -2
    problems = broken(mutate)
    assert "teachers[1].max_sessions: must be an integer >= 0" in problems
    assert "sessions[2].min_pupils: must be an integer >= 0" in problems


def test_unknown_activity_in_session_and_preference() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sessions"][1]["activity"] = "chess"
        d["requests"][0]["preferences"] = ["art", "chess"]
    problems = broken(mutate)
    assert "sessions[1].activity: unknown activity 'chess'" in problems
    assert "requests[0].preferences[1]: unknown activity 'chess'" in problems


def test_duplicate_request_for_a_pupil() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["requests"].append({"pupil": "P001", "days": [2], "periods": ["P1"], "preferences": []})
    assert "requests[4].pupil: pupil 'P001' already has a request" in broken(mutate)


def test_duplicates_inside_a_request() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["requests"][0]["days"] = [1, 1]
        d["requests"][1]["periods"] = ["P1", "P2", "P1"]
        d["requests"][2]["preferences"] = ["art", "art"]
    problems = broken(mutate)
    assert "requests[0].days[1]: day 1 is listed twice" in problems
    assert "requests[1].periods[2]: period 'P1' is listed twice" in problems
    assert "requests[2].preferences[1]: activity 'art' is listed twice" in problems


def test_fixed_and_previous_must_reference_known_ids() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["fixed"] = [{"pupil": "P404", "session": "S1"}]
        d["previous"] = [{"pupil": "P001", "session": "S404"}]
    problems = broken(mutate)
    assert "fixed[0].pupil: unknown pupil id 'P404'" in problems
    assert "previous[0].session: unknown session id 'S404'" in problems


def test_availability_must_reference_known_day_and_period() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["weekdays"] = [1, 2]
        d["teachers"][0]["available"] = [[3, "P1"], [1, "P7"], "1-P1"]
    problems = broken(mutate)
    assert "teachers[0].available[0][0]: day 3 is not one of the instance's weekdays" in problems
    assert "teachers[0].available[1][1]: unknown period 'P7'" in problems
    assert "teachers[0].available[2]: must be a [day, period_id] pair" in problems


def test_wrong_container_types() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["pupils"] = {"P001": {}}
        d["sessions"][0] = "S1"
    problems = broken(mutate)
    assert "pupils: must be a JSON array" in problems
    assert "sessions[0]: must be a JSON object" in problems


def test_root_must_be_an_object() -> None:
    assert problems_of([1, 2]) == ["instance: must be a JSON object"]


def test_many_problems_reported_at_once() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sessions"][0]["capacity"] = "45"
        d["pupils"][2]["grade"] = 0
        d["teachers"][1]["id"] = "T1"
        d["requests"][3]["periods"] = ["P8"]
        d.pop("school")
    problems = broken(mutate)
    assert len(problems) >= 5
    expected_paths = ("sessions[0].capacity:", "pupils[2].grade:", "teachers[1].id:",
                      "requests[3].periods[0]:", "school:")
    for expected in expected_paths:
        assert any(p.startswith(expected) for p in problems), expected
    message = str(InputError(problems))
    assert message.count("\n") == len(problems) - 1


# ---------------------------------------------------------------- files and solutions


def test_load_instance_reports_bad_json_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "format": "afterschool-instance/1",\n  "term" "x"\n}', encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_instance(path)
    assert caught.value.problems[0].startswith("line 3 column 10: not valid JSON: ")


def test_load_instance_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_instance(tmp_path / "nowhere.json")
    assert caught.value.problems == [f"{tmp_path / 'nowhere.json'}: file not found"]


def test_solution_errors_use_paths(example_instance: Instance) -> None:
    data = example_solution_json()
    data["status"] = "GREAT"
    data["assignments"][3]["pupil"] = "P999"
    data["staffing"][0]["teacher"] = "T9"
    data["objective"]["coverage"] = -1
    data["unserved"] = [{"pupil": "P001", "day": 6, "reason": "x"}]
    with pytest.raises(InputError) as caught:
        parse_solution(data, example_instance)
    problems = caught.value.problems
    assert "status: must be one of OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN, IMPORTED, not 'GREAT'" in problems
    assert "assignments[3].pupil: unknown pupil id 'P999'" in problems
    assert "staffing[0].teacher: unknown teacher id 'T9'" in problems
    assert "objective.coverage: must be an integer >= 0" in problems
    assert "unserved[0].day: day 6 is not one of the instance's weekdays" in problems


def test_solution_without_instance_accepts_unknown_ids() -> None:
    data = example_solution_json()
    data["assignments"].append({"pupil": "P999", "session": "S1"})
    assert parse_solution(data).assignments[-1].pupil == "P999"


def test_solution_school_must_match_instance(example_instance: Instance) -> None:
    data = example_solution_json()
    data["school"] = "OTHER"
    with pytest.raises(InputError) as caught:
        parse_solution(data, example_instance)
    assert caught.value.problems == ["school: solution is for school 'OTHER', the instance is 'KM-WH-0001'"]


def test_solution_format_and_missing_objective() -> None:
    data = example_solution_json()
    data["format"] = "afterschool-instance/1"
    del data["objective"]
    with pytest.raises(InputError) as caught:
        parse_solution(data)
    assert "objective: is required" in caught.value.problems
    assert any(p.startswith("format: must be 'afterschool-solution/1'") for p in caught.value.problems)


# ---------------------------------------------------------------- rank points and the lottery seed


def test_rank_points_and_lottery_seed_default_when_absent(example_instance: Instance) -> None:
    assert example_instance.rank_points == (3, 2, 1)
    assert example_instance.lottery_seed is None


def test_rank_points_and_lottery_seed_are_read_and_written_back() -> None:
    data = example_instance_json()
    data["rank_points"] = [5, 5, 0, 0]
    data["lottery_seed"] = 20260901
    instance = parse_instance(data)
    assert instance.rank_points == (5, 5, 0, 0)
    assert instance.lottery_seed == 20260901
    again = instance_to_json(instance)
    assert again["rank_points"] == [5, 5, 0, 0] and again["lottery_seed"] == 20260901
    assert parse_instance(again) == instance


def test_an_empty_rank_points_list_scores_every_placement_zero() -> None:
    data = example_instance_json()
    data["rank_points"] = []
    assert parse_instance(data).rank_points == ()


def test_rank_points_must_be_non_negative_integers_that_never_rise() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rank_points"] = [3, -1, "2", 1.5, True, 4]
    problems = broken(mutate)
    assert "rank_points[1]: must be an integer >= 0" in problems
    assert "rank_points[2]: must be an integer >= 0" in problems
    assert "rank_points[3]: must be an integer >= 0" in problems
    assert "rank_points[4]: must be an integer >= 0" in problems
    assert ("rank_points[5]: must be at most 3, the points of the rank before: a better rank never scores less"
            in problems)


def test_rank_points_must_be_a_list_and_the_seed_an_integer() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rank_points"] = {"1": 3}
        d["lottery_seed"] = "42"
    problems = broken(mutate)
    assert "rank_points: must be a JSON array" in problems
    assert "lottery_seed: must be an integer" in problems
