"""Tiny instances and solutions for tests, built in a line or two.

Defaults: weekdays 1–5, periods P1–P3, priority weights {0: 1, 1: 2, 2: 4}, activities `homework`
(no qualification), `football` (qualification `sports`) and `art` (qualification `arts`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scheduler.domain import (
    Activity,
    Assignment,
    Instance,
    Objective,
    Period,
    Pupil,
    Request,
    School,
    Session,
    Solution,
    Staffing,
    Status,
    Teacher,
    Unserved,
)

_REPO = Path(__file__).resolve().parents[2]
SPEC_DIRS = (_REPO / "docs" / "spec", _REPO / "spec", Path("/work/shared/spec"))
"""Where the worked example of PROBLEM.md may live; the first folder holding it wins."""
SPEC_DIR: Path | None = next((d for d in SPEC_DIRS if (d / "example-instance.json").is_file()), None)

SCHOOL = School("SCH-1", "测试小学", "测试区")
PERIODS = (Period("P1", "15:30", "16:30"), Period("P2", "16:30", "17:30"), Period("P3", "17:30", "18:30"))
ACTIVITIES = (
    Activity("homework", "作业辅导", "homework", None),
    Activity("football", "足球", "sports", "sports"),
    Activity("art", "美术", "arts", "arts"),
)


def _example(name: str, fallback: dict[str, Any]) -> dict[str, Any]:
    if SPEC_DIR is None:
        data: dict[str, Any] = copy.deepcopy(fallback)
    else:
        data = json.loads((SPEC_DIR / name).read_text(encoding="utf-8"))
    return data


def example_instance_json() -> dict[str, Any]:
    """The worked example's instance, as decoded JSON (a fresh copy each call)."""
    return _example("example-instance.json", EXAMPLE_INSTANCE_DATA)


def example_solution_json() -> dict[str, Any]:
    """The worked example's optimal solution, as decoded JSON (a fresh copy each call)."""
    return _example("example-solution.json", EXAMPLE_SOLUTION_DATA)


def write_examples(folder: Path) -> tuple[Path, Path]:
    """Copy the worked example into `folder`; returns (instance path, solution path)."""
    paths = (folder / "example-instance.json", folder / "example-solution.json")
    for path, data in zip(paths, (example_instance_json(), example_solution_json()), strict=True):
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return paths


def session(id: str, activity: str = "homework", day: int = 1, period: str = "P1", *, capacity: int = 30,
            grades: tuple[int, int] = (1, 6), pupils_per_teacher: int = 30, min_pupils: int = 0,
            room: str = "教室") -> Session:
    return Session(id, activity, day, period, room, capacity, grades, pupils_per_teacher, min_pupils)


def teacher(id: str, available: list[tuple[int, str]] | None = None, qualifications: tuple[str, ...] = (),
            max_sessions: int = 10, name: str = "老师") -> Teacher:
    slots = available if available is not None else [(d, p.id) for d in range(1, 6) for p in PERIODS]
    return Teacher(id, name, frozenset(qualifications), frozenset(slots), max_sessions)


def pupil(id: str, grade: int = 3, priority: int = 0, family: str | None = None,
          class_name: str = "3-1", name: str = "学生") -> Pupil:
    return Pupil(id, name, grade, class_name, family, priority)


def request(pupil: str, days: tuple[int, ...] = (1,), periods: tuple[str, ...] = ("P1",),
            preferences: tuple[str, ...] = ()) -> Request:
    return Request(pupil, days, periods, preferences)


def instance(sessions: Sequence[Session] = (), teachers: Sequence[Teacher] = (),
             pupils: Sequence[Pupil] = (), requests: Sequence[Request] = (),
             *, fixed: tuple[tuple[str, str], ...] = (), previous: tuple[tuple[str, str], ...] = (),
             weekdays: tuple[int, ...] = (1, 2, 3, 4, 5), priority_weights: dict[int, int] | None = None,
             activities: tuple[Activity, ...] = ACTIVITIES) -> Instance:
    return Instance(
        school=SCHOOL, term="2026-autumn", weekdays=weekdays, periods=PERIODS,
        priority_weights=dict(priority_weights or {0: 1, 1: 2, 2: 4}), activities=activities,
        sessions=tuple(sessions), teachers=tuple(teachers), pupils=tuple(pupils), requests=tuple(requests),
        fixed=tuple(Assignment(p, s) for p, s in fixed),
        previous=tuple(Assignment(p, s) for p, s in previous),
    )


def solution(assignments: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
             staffing: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (), *,
             status: str = Status.FEASIBLE, objective: Objective | None = None,
             unserved: tuple[Unserved, ...] = (), school: str = SCHOOL.id) -> Solution:
    """A solution from (pupil, session) and (teacher, session) pairs; objective zeros unless given."""
    return Solution(
        school=school, status=status,
        assignments=tuple(Assignment(p, s) for p, s in assignments),
        staffing=tuple(Staffing(t, s) for t, s in staffing),
        objective=objective or Objective(0, 0, 0, 0, 0), unserved=unserved,
    )


# A copy of the worked example, used when the spec folder is not beside the checkout.
EXAMPLE_INSTANCE_DATA: dict[str, Any] = {
    'format': 'afterschool-instance/1',
     'school': {'id': 'KM-WH-0001', 'name': '昆明市五华区示例小学', 'district': '五华区'},
     'term': '2026-autumn',
     'weekdays': [1, 2, 3, 4, 5],
     'periods': [{'id': 'P1', 'start': '15:30', 'end': '16:30'},
                 {'id': 'P2', 'start': '16:30', 'end': '17:30'},
                 {'id': 'P3', 'start': '17:30', 'end': '18:30'}],
     'priority_weights': {'0': 1, '1': 2, '2': 4},
     'activities': [{'id': 'homework', 'name': '作业辅导', 'category': 'homework', 'qualification': None},
                    {'id': 'football', 'name': '足球', 'category': 'sports', 'qualification': 'sports'},
                    {'id': 'art', 'name': '美术', 'category': 'arts', 'qualification': 'arts'},
                    {'id': 'care', 'name': '延时托管', 'category': 'care', 'qualification': None}],
     'sessions': [{'id': 'S1',
                   'activity': 'homework',
                   'day': 1,
                   'period': 'P1',
                   'room': '3-1教室',
                   'capacity': 45,
                   'grades': [3, 3],
                   'pupils_per_teacher': 45,
                   'min_pupils': 0},
                  {'id': 'S2',
                   'activity': 'football',
                   'day': 1,
                   'period': 'P2',
                   'room': '操场',
                   'capacity': 2,
                   'grades': [3, 6],
                   'pupils_per_teacher': 25,
                   'min_pupils': 0},
                  {'id': 'S3',
                   'activity': 'art',
                   'day': 1,
                   'period': 'P2',
                   'room': '美术室',
                   'capacity': 30,
                   'grades': [1, 4],
                   'pupils_per_teacher': 15,
                   'min_pupils': 2},
                  {'id': 'S4',
                   'activity': 'care',
                   'day': 1,
                   'period': 'P3',
                   'room': '礼堂',
                   'capacity': 80,
                   'grades': [1, 6],
                   'pupils_per_teacher': 30,
                   'min_pupils': 0}],
     'teachers': [{'id': 'T1',
                   'name': '李老师',
                   'qualifications': ['sports'],
                   'available': [[1, 'P1'], [1, 'P2']],
                   'max_sessions': 4},
                  {'id': 'T2',
                   'name': '王老师',
                   'qualifications': ['arts'],
                   'available': [[1, 'P2'], [1, 'P3']],
                   'max_sessions': 3},
                  {'id': 'T3',
                   'name': '赵老师',
                   'qualifications': [],
                   'available': [[1, 'P1'], [1, 'P3']],
                   'max_sessions': 5}],
     'pupils': [{'id': 'P001',
                 'name': '张子涵',
                 'grade': 3,
                 'class': '3-1',
                 'family': 'F01',
                 'priority': 1},
                {'id': 'P002',
                 'name': '张浩宇',
                 'grade': 3,
                 'class': '3-1',
                 'family': 'F01',
                 'priority': 1},
                {'id': 'P003',
                 'name': '陈欣怡',
                 'grade': 3,
                 'class': '3-1',
                 'family': 'F02',
                 'priority': 0},
                {'id': 'P004',
                 'name': '刘梓轩',
                 'grade': 3,
                 'class': '3-1',
                 'family': None,
                 'priority': 2}],
     'requests': [{'pupil': 'P001',
                   'days': [1],
                   'periods': ['P1', 'P2'],
                   'preferences': ['football', 'art']},
                  {'pupil': 'P002',
                   'days': [1],
                   'periods': ['P1', 'P2', 'P3'],
                   'preferences': ['football']},
                  {'pupil': 'P003',
                   'days': [1],
                   'periods': ['P1', 'P2'],
                   'preferences': ['football', 'art']},
                  {'pupil': 'P004', 'days': [1], 'periods': ['P1'], 'preferences': []}]}

EXAMPLE_SOLUTION_DATA: dict[str, Any] = {'format': 'afterschool-solution/1',
     'school': 'KM-WH-0001',
     'status': 'OPTIMAL',
     'assignments': [{'pupil': 'P001', 'session': 'S1'},
                     {'pupil': 'P002', 'session': 'S1'},
                     {'pupil': 'P003', 'session': 'S1'},
                     {'pupil': 'P004', 'session': 'S1'},
                     {'pupil': 'P002', 'session': 'S2'},
                     {'pupil': 'P001', 'session': 'S3'},
                     {'pupil': 'P003', 'session': 'S3'},
                     {'pupil': 'P002', 'session': 'S4'}],
     'staffing': [{'teacher': 'T3', 'session': 'S1'},
                  {'teacher': 'T1', 'session': 'S2'},
                  {'teacher': 'T2', 'session': 'S3'},
                  {'teacher': 'T3', 'session': 'S4'}],
     'objective': {'coverage': 9,
                   'coverage_bound': 9,
                   'stability': 0,
                   'preference': 3,
                   'max_teacher_load': 2},
     'unserved': [],
     'stats': {'note': 'P003 can only be covered in art, which needs two pupils: so P001 joins art and '
                       'P002 takes the football seat.'}}
