"""The generator: deterministic, valid by the spec, and shaped like a real Kunming primary school."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from scheduler.domain import Instance
from scheduler.generate import DISTRICTS, generate
from scheduler.io import instance_to_json, parse_instance


def _round_trip(instance: Instance) -> Instance:
    return parse_instance(json.loads(json.dumps(instance_to_json(instance), ensure_ascii=False)))


@pytest.fixture(scope="module", params=[11, 12, 13])
def school(request: pytest.FixtureRequest) -> Instance:
    return generate(1500, seed=request.param)


def test_same_seed_gives_identical_json() -> None:
    first = json.dumps(instance_to_json(generate(400, seed=3)), ensure_ascii=False)
    second = json.dumps(instance_to_json(generate(400, seed=3)), ensure_ascii=False)
    assert first == second
    assert json.dumps(instance_to_json(generate(400, seed=4)), ensure_ascii=False) != first
    assert json.dumps(instance_to_json(generate(400, seed=3, tight=True)), ensure_ascii=False) != first


@pytest.mark.parametrize(("pupils", "seed", "tight"), [(1, 0, False), (40, 5, False), (333, 2, True),
                                                        (1500, 11, False)])
def test_round_trip_through_the_json_format(pupils: int, seed: int, tight: bool) -> None:
    instance = generate(pupils, seed, tight)
    assert len(instance.pupils) == pupils
    assert _round_trip(instance) == instance


def test_school_periods_and_weights(school: Instance) -> None:
    assert school.school.id.startswith("KM-GEN-1")
    assert school.school.district in DISTRICTS
    assert school.school.name.startswith("昆明市") and school.school.name.endswith("小学")
    assert school.weekdays == (1, 2, 3, 4, 5)
    assert [(p.id, p.start, p.end) for p in school.periods] == [
        ("P1", "15:30", "16:30"), ("P2", "16:30", "17:30"), ("P3", "17:30", "18:30")]
    assert school.priority_weights == {0: 1, 1: 2, 2: 4}


def test_classes_and_families(school: Instance) -> None:
    classes = Counter(p.class_name for p in school.pupils)
    assert all(40 <= size <= 50 for size in classes.values())
    per_grade = Counter(name.split("-")[0] for name in classes)
    assert set(per_grade) == {"1", "2", "3", "4", "5", "6"}
    assert all(4 <= n <= 12 for n in per_grade.values())
    assert all(p.class_name.startswith(f"{p.grade}-") for p in school.pupils)
    families = Counter(p.family for p in school.pupils)
    siblings = [p for p in school.pupils if families[p.family] > 1]
    assert 0.07 <= len(siblings) / len(school.pupils) <= 0.13
    by_family: dict[str | None, list[int]] = {}
    for p in siblings:
        by_family.setdefault(p.family, []).append(p.grade)
    assert all(len(set(grades)) == len(grades) for grades in by_family.values())
    assert all(2 <= len(p.name) <= 4 for p in school.pupils)


def test_request_and_priority_shares(school: Instance) -> None:
    pupils = len(school.pupils)
    assert 0.83 <= len(school.requests) / pupils <= 0.94
    priorities = Counter(p.priority for p in school.pupils)
    assert 0.62 <= priorities[0] / pupils <= 0.78
    assert 0.18 <= priorities[1] / pupils <= 0.32
    assert 0.02 <= priorities[2] / pupils <= 0.09
    all_week = sum(1 for r in school.requests if len(r.days) == 5)
    assert 0.68 <= all_week / len(school.requests) <= 0.82
    assert all(2 <= len(r.days) for r in school.requests)
    kinds = Counter(r.periods for r in school.requests)
    assert set(kinds) == {("P1",), ("P1", "P2"), ("P1", "P2", "P3")}
    assert 0.28 <= kinds[("P1",)] / len(school.requests) <= 0.42


def test_preferences_name_clubs_open_to_the_pupil(school: Instance) -> None:
    offered: set[tuple[str, int]] = set()
    for s in school.sessions:
        if s.period == "P2" and school.activity_by_id[s.activity].qualification is not None:
            offered.update((s.activity, g) for g in range(s.grades[0], s.grades[1] + 1))
    club_askers = [r for r in school.requests if "P2" in r.periods]
    assert sum(len(r.preferences) >= 2 for r in club_askers) / len(club_askers) >= 0.7
    for r in school.requests:
        grade = school.pupil_by_id[r.pupil].grade
        assert len(r.preferences) <= 3 and len(set(r.preferences)) == len(r.preferences)
        assert all((a, grade) in offered for a in r.preferences)


def test_sessions_by_period(school: Instance) -> None:
    for s in school.sessions:
        activity = school.activity_by_id[s.activity]
        if s.period == "P1":
            assert activity.id == "homework" and s.grades[0] == s.grades[1]
            assert s.room.endswith("教室")
        elif s.period == "P3":
            assert activity.id == "care" and s.grades == (1, 6) and 60 <= s.capacity <= 120
            assert s.pupils_per_teacher == 30
        elif activity.qualification is not None:
            assert 20 <= s.capacity <= 40 and 15 <= s.pupils_per_teacher <= 25
            assert s.min_pupils == 0 or 8 <= s.min_pupils <= 12
            assert s.grades[0] < s.grades[1]
    rooms = Counter((s.day, s.period, s.room) for s in school.sessions)
    assert max(rooms.values()) == 1
    homework = school.activity_by_id["homework"]
    care = school.activity_by_id["care"]
    assert homework.qualification is None and care.qualification is None


def test_club_time_is_short_but_not_starved(school: Instance) -> None:
    asked = sum(len(r.days) for r in school.requests if "P2" in r.periods)
    seats = sum(s.capacity for s in school.sessions if s.period == "P2")
    assert 0.85 * asked <= seats < 1.1 * asked


def test_teachers(school: Instance) -> None:
    teachers = school.teachers
    assert 14 <= len(school.pupils) / len(teachers) <= 20
    assert all(t.name.endswith("老师") and 3 <= t.max_sessions <= 8 for t in teachers)
    skills = Counter(len(t.qualifications) for t in teachers)
    assert skills[0] + skills[1] > 0.7 * len(teachers) and skills[2] > 0
    slots = len(teachers) * 5
    assert sum((d, "P1") in t.available for t in teachers for d in range(1, 6)) > 0.85 * slots
    care_share = sum((d, "P3") in t.available for t in teachers for d in range(1, 6)) / slots
    assert 0.25 <= care_share <= 0.45


def test_tight_schools_have_fewer_teachers_and_seats() -> None:
    normal, tight = generate(1500, seed=8), generate(1500, seed=8, tight=True)
    assert normal.pupils == tight.pupils
    assert [(r.pupil, r.days, r.periods) for r in normal.requests] == [
        (r.pupil, r.days, r.periods) for r in tight.requests]
    assert len(tight.teachers) < 0.8 * len(normal.teachers)
    assert 20 <= len(tight.pupils) / len(tight.teachers) <= 30
    for period in ("P2", "P3"):
        seats = {name: sum(s.capacity for s in inst.sessions if s.period == period)
                 for name, inst in (("normal", normal), ("tight", tight))}
        assert seats["tight"] < 0.85 * seats["normal"]


def test_large_school_generates() -> None:
    instance = generate(3000, seed=1)
    assert len(instance.pupils) == 3000
    assert len({s.id for s in instance.sessions}) == len(instance.sessions)


def test_rejects_an_empty_school() -> None:
    with pytest.raises(ValueError, match="pupils must be >= 1"):
        generate(0, seed=1)
