"""Tiny instances and solutions for tests, built in a line or two.

Defaults: weekdays 1–5, periods P1–P3, priority weights {0: 1, 1: 2, 2: 4}, activities `homework`
(no qualification), `football` (qualification `sports`) and `art` (qualification `arts`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scheduler.daywise import DaywisePlan, coverage_by_day
from scheduler.deadline import Deadline
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
from scheduler.groups import build_day_classes
from scheduler.lexicographic import hold
from scheduler.model import AllocationModel

_REPO = Path(__file__).resolve().parents[2]
SPEC_DIR = _REPO / "docs" / "spec"
"""PROBLEM.md and its worked example, kept in the repository beside the code that implements them."""

SCHOOL = School("SCH-1", "测试小学", "测试区")
PERIODS = (Period("P1", "15:30", "16:30"), Period("P2", "16:30", "17:30"), Period("P3", "17:30", "18:30"))
ACTIVITIES = (
    Activity("homework", "作业辅导", "homework", None),
    Activity("football", "足球", "sports", "sports"),
    Activity("art", "美术", "arts", "arts"),
)


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SPEC_DIR / name).read_text(encoding="utf-8"))
    return data


def example_instance_json() -> dict[str, Any]:
    """The worked example's instance, as decoded JSON (a fresh copy each call)."""
    return _example("example-instance.json")


def example_solution_json() -> dict[str, Any]:
    """The worked example's optimal solution, as decoded JSON (a fresh copy each call)."""
    return _example("example-solution.json")


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


def satisfies_every_row(model: Any, values: list[float]) -> None:
    """Assert that `values` (by variable index) keep every row and variable bound of a model's backend."""
    solver = model.solver
    x = solver.variables()
    for constraint in (solver.constraint(i) for i in range(solver.NumConstraints())):
        row = sum(constraint.GetCoefficient(var) * values[var.index()] for var in x)
        assert constraint.lb() - 1e-6 <= row <= constraint.ub() + 1e-6, constraint.name()
    for var in x:
        assert var.lb() - 1e-6 <= values[var.index()] <= var.ub() + 1e-6, var.name()


def model_of(inst: Instance, *, by_preference: bool = False) -> AllocationModel:
    """The allocation model of `inst`, grouped as levels 1 and 2 (`by_preference=False`) or level 3 see it."""
    return AllocationModel(inst, build_day_classes(inst, by_preference=by_preference, seed=0))


def level_3_by_day(inst: Instance) -> tuple[DaywisePlan, AllocationModel] | None:
    """Level 1 of `inst` proven day by day, and level 3's model holding it; None when the days did not prove it."""
    coverage = coverage_by_day(model_of(inst), Deadline.after(20))
    if coverage is None or not coverage.proven_by_days:
        return None
    fine = model_of(inst, by_preference=True)
    hold(fine, {"coverage": coverage.value})
    return coverage, fine
