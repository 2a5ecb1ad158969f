"""The allocation problem as frozen dataclasses: one school, one term (see docs/spec/PROBLEM.md).

Instances arrive here fully validated by `scheduler.io`; nothing in this module parses or cleans.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

INSTANCE_FORMAT = "afterschool-instance/1"
SOLUTION_FORMAT = "afterschool-solution/1"

DEFAULT_RANK_POINTS = (3, 2, 1)


def rank_score(preferences: Sequence[str], activity: str, rank_points: Sequence[int] = DEFAULT_RANK_POINTS) -> int:
    """Points for a placement in `activity`: `rank_points[i]` where it stands at index i of `preferences`, else 0."""
    if activity not in preferences:
        return 0
    rank = list(preferences).index(activity)
    return rank_points[rank] if rank < len(rank_points) else 0
"""Points for a placement in a pupil's first, second and third choice when the instance names none."""

SEAT_POLICIES = ("spread", "whole_week")
"""Who among interchangeable pupils gets the seats (`scheduler.seat_policy`): as few families as possible left with
nothing, or as many pupils as possible covered on every day they asked for."""
DEFAULT_SEAT_POLICY = SEAT_POLICIES[0]

Slot = tuple[int, str]
"""A (weekday, period id) pair: the unit of time in which a pupil sits in one session."""


@dataclass(frozen=True)
class School:
    id: str
    name: str
    district: str


@dataclass(frozen=True)
class Period:
    id: str
    start: str
    end: str


@dataclass(frozen=True)
class Activity:
    id: str
    name: str
    category: str
    qualification: str | None


@dataclass(frozen=True)
class Session:
    id: str
    activity: str
    day: int
    period: str
    room: str
    capacity: int
    grades: tuple[int, int]
    pupils_per_teacher: int
    min_pupils: int

    @property
    def slot(self) -> Slot:
        return (self.day, self.period)

    def admits_grade(self, grade: int) -> bool:
        return self.grades[0] <= grade <= self.grades[1]


@dataclass(frozen=True)
class Teacher:
    id: str
    name: str
    qualifications: frozenset[str]
    available: frozenset[Slot]
    max_sessions: int

    def can_lead(self, activity: Activity) -> bool:
        return activity.qualification is None or activity.qualification in self.qualifications


@dataclass(frozen=True)
class Pupil:
    id: str
    name: str
    grade: int
    class_name: str
    family: str | None
    priority: int


@dataclass(frozen=True)
class Request:
    pupil: str
    days: tuple[int, ...]
    periods: tuple[str, ...]
    preferences: tuple[str, ...]

    def preference_score(self, activity: str, rank_points: Sequence[int]) -> int:
        """`rank_points[i]` for the activity at index i of the ranked preferences; 0 when not listed or when i
        is beyond the points. How many activities the pupil lists does not matter."""
        return rank_score(self.preferences, activity, rank_points)


@dataclass(frozen=True)
class Assignment:
    pupil: str
    session: str


@dataclass(frozen=True)
class Staffing:
    teacher: str
    session: str


@dataclass(frozen=True)
class Instance:
    school: School
    term: str
    weekdays: tuple[int, ...]
    periods: tuple[Period, ...]
    priority_weights: dict[int, int]
    activities: tuple[Activity, ...]
    sessions: tuple[Session, ...]
    teachers: tuple[Teacher, ...]
    pupils: tuple[Pupil, ...]
    requests: tuple[Request, ...]
    fixed: tuple[Assignment, ...] = ()
    previous: tuple[Assignment, ...] = ()
    rank_points: tuple[int, ...] = DEFAULT_RANK_POINTS
    """Points for a placement in the activity a pupil ranked first, second, ...; ranks beyond score 0."""
    lottery_seed: int | None = None
    """Fixes the draw among interchangeable pupils; None leaves it to the solver's configured seed."""
    seat_policy: str = DEFAULT_SEAT_POLICY
    """Who among interchangeable pupils gets the seats: `spread` or `whole_week` (`scheduler.seat_policy`)."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Fields outside the spec, kept so a round trip loses nothing."""

    @cached_property
    def activity_by_id(self) -> dict[str, Activity]:
        return {a.id: a for a in self.activities}

    @cached_property
    def session_by_id(self) -> dict[str, Session]:
        return {s.id: s for s in self.sessions}

    @cached_property
    def teacher_by_id(self) -> dict[str, Teacher]:
        return {t.id: t for t in self.teachers}

    @cached_property
    def pupil_by_id(self) -> dict[str, Pupil]:
        return {p.id: p for p in self.pupils}

    @cached_property
    def request_by_pupil(self) -> dict[str, Request]:
        return {r.pupil: r for r in self.requests}

    @cached_property
    def period_index(self) -> dict[str, int]:
        return {p.id: i for i, p in enumerate(self.periods)}

    @cached_property
    def sessions_by_slot(self) -> dict[Slot, list[Session]]:
        by_slot: dict[Slot, list[Session]] = defaultdict(list)
        for session in self.sessions:
            by_slot[session.slot].append(session)
        return dict(by_slot)

    def weight(self, pupil: Pupil) -> int:
        return self.priority_weights[pupil.priority]

    def with_weekly_caps(self, caps: Mapping[str, int]) -> Instance:
        """The same school with each teacher's `max_sessions` set to `caps[teacher id]` (a part of the week)."""
        teachers = tuple(dataclasses.replace(t, max_sessions=caps[t.id]) for t in self.teachers)
        return dataclasses.replace(self, teachers=teachers)

    def demand(self) -> int:
        """The largest coverage possible: every requested pupil-day, weighted by priority."""
        return sum(
            self.weight(self.pupil_by_id[r.pupil]) * len(r.days) for r in self.requests if r.periods
        )


@dataclass(frozen=True)
class Objective:
    coverage: int
    coverage_bound: int
    stability: int
    preference: int
    max_teacher_load: int


@dataclass(frozen=True)
class Unserved:
    """A requested pupil-day left uncovered, with a reason an admin can act on."""

    pupil: str
    day: int
    reason: str
    code: str = ""
    """Machine-readable kind of reason (`no_session`, `no_seat`, `no_teacher`, `lost_to_priority`, ...)."""
    params: dict[str, Any] = field(default_factory=dict, compare=False)
    """What the reason names (period, seats, demand ...), so it can be told again in another language."""


class Status(StrEnum):
    """How far a solution is proven: the solver's answer, or a plan taken over from outside it."""

    OPTIMAL = "OPTIMAL"
    FEASIBLE = "FEASIBLE"
    INFEASIBLE = "INFEASIBLE"
    UNKNOWN = "UNKNOWN"
    IMPORTED = "IMPORTED"
    """A plan read in with an instance (its previous seats), not solved here; its values are recomputed."""


PLAN_STATUSES = frozenset({Status.OPTIMAL, Status.FEASIBLE, Status.IMPORTED})
"""Statuses of a solution that is a plan pupils can be seated by (publishable)."""


def relative_gap(value: float, bound: float) -> float:
    """How far an objective level's value is from its proven bound: |bound - value| / max(1, |value|)."""
    return abs(bound - value) / max(1, abs(value))


@dataclass(frozen=True)
class Solution:
    school: str
    status: str
    assignments: tuple[Assignment, ...]
    staffing: tuple[Staffing, ...]
    objective: Objective
    unserved: tuple[Unserved, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def has_allocation(self) -> bool:
        return self.status in (Status.OPTIMAL, Status.FEASIBLE)
