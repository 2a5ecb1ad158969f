"""Instance and solution JSON <-> domain objects, with every problem reported at once.

Each problem reads `<json path>: <what is wrong>`, e.g. `sessions[12].capacity: must be an integer >= 0`,
so a person can fix a whole file in one pass instead of one error per run.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from scheduler.domain import (
    DEFAULT_RANK_POINTS,
    DEFAULT_SEAT_POLICY,
    INSTANCE_FORMAT,
    SEAT_POLICIES,
    SOLUTION_FORMAT,
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

T = TypeVar("T")

INSTANCE_FIELDS = ("format", "school", "term", "weekdays", "periods", "priority_weights", "activities",
                   "sessions", "teachers", "pupils", "requests", "fixed", "previous", "rank_points",
                   "lottery_seed", "seat_policy")
SOLUTION_STATUSES = tuple(Status)
OBJECTIVE_FIELDS = ("coverage", "coverage_bound", "stability", "preference", "max_teacher_load")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_MISSING = object()


class InputError(Exception):
    """A file that cannot be used as it is; `problems` lists every reason, one sentence each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class _Reader:
    """Typed field access that records a problem and returns None instead of raising."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def obj(self, value: object, path: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.problem(path, "must be a JSON object")
            return None
        return value

    def field(self, obj: dict[str, Any], key: str, path: str) -> object:
        if key not in obj:
            self.problem(f"{path}.{key}" if path else key, "is required")
            return _MISSING
        return obj[key]

    def string(self, obj: dict[str, Any], key: str, path: str, *, nullable: bool = False,
               non_empty: bool = False) -> str | None:
        value = self.field(obj, key, path)
        if value is _MISSING:
            return None
        where = f"{path}.{key}" if path else key
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            self.problem(where, "must be a string or null" if nullable else "must be a string")
            return None
        if non_empty and not value.strip():
            self.problem(where, "must not be empty")
            return None
        return value

    def integer(self, value: object, path: str, lo: int | None = None, hi: int | None = None) -> int | None:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and lo is not None and value < lo:  # type: ignore[operator]
            ok = False
        if ok and hi is not None and value > hi:  # type: ignore[operator]
            ok = False
        if not ok:
            if lo is not None and hi is not None:
                self.problem(path, f"must be an integer from {lo} to {hi}")
            elif lo is not None:
                self.problem(path, f"must be an integer >= {lo}")
            else:
                self.problem(path, "must be an integer")
            return None
        assert isinstance(value, int)
        return value

    def int_field(self, obj: dict[str, Any], key: str, path: str, lo: int | None = None,
                  hi: int | None = None) -> int | None:
        value = self.field(obj, key, path)
        if value is _MISSING:
            return None
        return self.integer(value, f"{path}.{key}" if path else key, lo, hi)

    def array(self, obj: dict[str, Any], key: str, path: str, *, optional: bool = False) -> list[Any] | None:
        where = f"{path}.{key}" if path else key
        if optional and key not in obj:
            return []
        value = self.field(obj, key, path)
        if value is _MISSING:
            return None
        if not isinstance(value, list):
            self.problem(where, "must be a JSON array")
            return None
        return value

    def items(self, obj: dict[str, Any], key: str, path: str,
              parse: Callable[[dict[str, Any], str], T | None], *, optional: bool = False) -> list[T]:
        """Parse every element of an array of objects, skipping (and reporting) the broken ones."""
        where = f"{path}.{key}" if path else key
        values = self.array(obj, key, path, optional=optional)
        parsed: list[T] = []
        for i, element in enumerate(values or []):
            item_path = f"{where}[{i}]"
            element_obj = self.obj(element, item_path)
            if element_obj is None:
                continue
            item = parse(element_obj, item_path)
            if item is not None:
                parsed.append(item)
        return parsed

    def unique_ids(self, items: Iterable[tuple[str, str]], key: str) -> None:
        """`items` yields (path, id); report each id that was already seen."""
        seen: set[str] = set()
        for path, item_id in items:
            if item_id in seen:
                self.problem(f"{path}.{key}", f"duplicate id '{item_id}'")
            seen.add(item_id)


# ---------------------------------------------------------------- instance


class _InstanceParser(_Reader):
    def __init__(self) -> None:
        super().__init__()
        self.weekdays: set[int] = set()
        self.period_ids: set[str] = set()
        self.activity_ids: set[str] = set()
        self.priority_levels: set[int] = set()

    def parse(self, data: object) -> Instance | None:
        root = self.obj(data, "instance")
        if root is None:
            return None
        fmt = self.field(root, "format", "")
        if fmt is not _MISSING and fmt != INSTANCE_FORMAT:
            self.problem("format", f"must be '{INSTANCE_FORMAT}', not {json.dumps(fmt, ensure_ascii=False)}")
        school = self._school(root)
        term = self.string(root, "term", "")
        weekdays = self._weekdays(root)
        periods = self.items(root, "periods", "", self._period)
        self.unique_ids(((f"periods[{i}]", p.id) for i, p in enumerate(periods)), "id")
        self.period_ids = {p.id for p in periods}
        weights = self._priority_weights(root)
        activities = self.items(root, "activities", "", self._activity)
        self.unique_ids(self._indexed(root, "activities"), "id")
        self.activity_ids = {a.id for a in activities}
        sessions = self.items(root, "sessions", "", self._session)
        self.unique_ids(self._indexed(root, "sessions"), "id")
        teachers = self.items(root, "teachers", "", self._teacher)
        self.unique_ids(self._indexed(root, "teachers"), "id")
        pupils = self.items(root, "pupils", "", self._pupil)
        self.unique_ids(self._indexed(root, "pupils"), "id")
        pupil_ids = self._all_ids(root, "pupils")
        session_ids = self._all_ids(root, "sessions")
        requests = self.items(root, "requests", "", lambda o, p: self._request(o, p, pupil_ids))
        seen_pupils: set[str] = set()
        raw_requests = root.get("requests")
        for i, element in enumerate(raw_requests if isinstance(raw_requests, list) else []):
            pupil = element.get("pupil") if isinstance(element, dict) else None
            if isinstance(pupil, str):
                if pupil in seen_pupils:
                    self.problem(f"requests[{i}].pupil", f"pupil '{pupil}' already has a request")
                seen_pupils.add(pupil)
        fixed = self.items(root, "fixed", "", lambda o, p: self._pair(o, p, pupil_ids, session_ids),
                           optional=True)
        previous = self.items(root, "previous", "", lambda o, p: self._pair(o, p, pupil_ids, session_ids),
                              optional=True)
        rank_points = self._rank_points(root)
        lottery_seed = self._lottery_seed(root)
        seat_policy = self._seat_policy(root)
        if self.problems or school is None or term is None or weights is None or rank_points is None:
            return None
        extra = {k: v for k, v in root.items() if k not in INSTANCE_FIELDS}
        return Instance(
            school=school, term=term, weekdays=weekdays, periods=tuple(periods), priority_weights=weights,
            activities=tuple(activities), sessions=tuple(sessions), teachers=tuple(teachers),
            pupils=tuple(pupils), requests=tuple(requests), fixed=tuple(fixed), previous=tuple(previous),
            rank_points=rank_points, lottery_seed=lottery_seed, seat_policy=seat_policy, extra=extra,
        )

    @staticmethod
    def _indexed(root: dict[str, Any], key: str) -> list[tuple[str, str]]:
        values = root.get(key)
        if not isinstance(values, list):
            return []
        return [(f"{key}[{i}]", v["id"]) for i, v in enumerate(values)
                if isinstance(v, dict) and isinstance(v.get("id"), str)]

    def _all_ids(self, root: dict[str, Any], key: str) -> set[str]:
        return {item_id for _, item_id in self._indexed(root, key)}

    def _school(self, root: dict[str, Any]) -> School | None:
        value = self.field(root, "school", "")
        if value is _MISSING:
            return None
        obj = self.obj(value, "school")
        if obj is None:
            return None
        school_id = self.string(obj, "id", "school", non_empty=True)
        name = self.string(obj, "name", "school")
        district = self.string(obj, "district", "school")
        if school_id is None or name is None or district is None:
            return None
        return School(school_id, name, district)

    def _weekdays(self, root: dict[str, Any]) -> tuple[int, ...]:
        values = self.array(root, "weekdays", "")
        days: list[int] = []
        for i, value in enumerate(values or []):
            day = self.integer(value, f"weekdays[{i}]", 1, 7)
            if day is None:
                continue
            if day in days:
                self.problem(f"weekdays[{i}]", f"day {day} is listed twice")
                continue
            days.append(day)
        self.weekdays = set(days)
        return tuple(days)

    def _priority_weights(self, root: dict[str, Any]) -> dict[int, int] | None:
        value = self.field(root, "priority_weights", "")
        if value is _MISSING:
            return None
        obj = self.obj(value, "priority_weights")
        if obj is None:
            return None
        weights: dict[int, int] = {}
        for key, weight in obj.items():
            where = f"priority_weights.{key}"
            if not re.fullmatch(r"0|[1-9]\d*", key):
                self.problem(where, "priority level must be a non-negative integer written as a string")
                continue
            parsed = self.integer(weight, where, 1)
            if parsed is not None:
                weights[int(key)] = parsed
        self.priority_levels = set(weights)
        return weights

    def _rank_points(self, root: dict[str, Any]) -> tuple[int, ...] | None:
        """Points per rank, best first: whole numbers >= 0 (ranks beyond the list score 0, and a listed choice
        is never worth less than an unlisted one) that never rise (a better rank never scores less)."""
        if "rank_points" not in root:
            return DEFAULT_RANK_POINTS
        values = self.array(root, "rank_points", "")
        if values is None:
            return None
        points: list[int] = []
        ok = True
        for i, value in enumerate(values):
            parsed = self.integer(value, f"rank_points[{i}]", 0)
            if parsed is None:
                ok = False
                continue
            if points and parsed > points[-1]:
                self.problem(f"rank_points[{i}]", f"must be at most {points[-1]}, the points of the rank before: "
                                                  "a better rank never scores less")
                ok = False
            points.append(parsed)
        return tuple(points) if ok else None

    def _lottery_seed(self, root: dict[str, Any]) -> int | None:
        if root.get("lottery_seed") is None:
            return None
        return self.integer(root["lottery_seed"], "lottery_seed")

    def _seat_policy(self, root: dict[str, Any]) -> str:
        value = root.get("seat_policy")
        if value is None:
            return DEFAULT_SEAT_POLICY
        if value not in SEAT_POLICIES:
            self.problem("seat_policy", f"must be one of {', '.join(repr(p) for p in SEAT_POLICIES)}, not {value!r}")
            return DEFAULT_SEAT_POLICY
        return str(value)

    def _period(self, obj: dict[str, Any], path: str) -> Period | None:
        period_id = self.string(obj, "id", path, non_empty=True)
        times: list[str | None] = []
        for key in ("start", "end"):
            text = self.string(obj, key, path)
            if text is not None and not _TIME.match(text):
                self.problem(f"{path}.{key}", f"must be a time written HH:MM, not '{text}'")
                text = None
            times.append(text)
        start, end = times
        if start is not None and end is not None and end <= start:
            self.problem(f"{path}.end", f"must be after start {start}")
        if period_id is None or start is None or end is None:
            return None
        return Period(period_id, start, end)

    def _activity(self, obj: dict[str, Any], path: str) -> Activity | None:
        activity_id = self.string(obj, "id", path, non_empty=True)
        name = self.string(obj, "name", path)
        category = self.string(obj, "category", path)
        if "qualification" not in obj:
            self.problem(f"{path}.qualification", "is required (null when any teacher may lead it)")
            return None
        qualification = self.string(obj, "qualification", path, nullable=True)
        bad_qualification = obj["qualification"] is not None and qualification is None
        if activity_id is None or name is None or category is None or bad_qualification:
            return None
        return Activity(activity_id, name, category, qualification)

    def _day(self, value: object, path: str) -> int | None:
        day = self.integer(value, path)
        if day is not None and day not in self.weekdays:
            self.problem(path, f"day {day} is not one of the instance's weekdays")
            return None
        return day

    def _activity_ref(self, value: object, path: str) -> str | None:
        if not isinstance(value, str):
            self.problem(path, "must be an activity id (string)")
            return None
        if value not in self.activity_ids:
            self.problem(path, f"unknown activity '{value}'")
            return None
        return value

    def _distinct(self, items: list[Any] | None, path: str, parse: Callable[[Any, str], T | None],
                  listed_twice: Callable[[T], str]) -> tuple[list[T], bool]:
        """Each item of a list parsed, repeats reported: the good values, and whether every item was good."""
        values: list[T] = []
        ok = True
        for i, value in enumerate(items or []):
            where = f"{path}[{i}]"
            parsed = parse(value, where)
            if parsed is None:
                ok = False
            elif parsed in values:
                self.problem(where, listed_twice(parsed))
                ok = False
            else:
                values.append(parsed)
        return values, ok

    def _period_ref(self, value: object, path: str) -> str | None:
        if not isinstance(value, str):
            self.problem(path, "must be a period id (string)")
            return None
        if value not in self.period_ids:
            self.problem(path, f"unknown period '{value}'")
            return None
        return value

    def _session(self, obj: dict[str, Any], path: str) -> Session | None:
        session_id = self.string(obj, "id", path, non_empty=True)
        activity = self.string(obj, "activity", path)
        if activity is not None and activity not in self.activity_ids:
            self.problem(f"{path}.activity", f"unknown activity '{activity}'")
            activity = None
        day_value = self.field(obj, "day", path)
        day = None if day_value is _MISSING else self._day(day_value, f"{path}.day")
        period_value = self.field(obj, "period", path)
        period = None if period_value is _MISSING else self._period_ref(period_value, f"{path}.period")
        room = self.string(obj, "room", path)
        capacity = self.int_field(obj, "capacity", path, 0)
        grades = self._grades(obj, path)
        ppt = self.int_field(obj, "pupils_per_teacher", path, 1)
        min_pupils = self.int_field(obj, "min_pupils", path, 0)
        if (session_id is None or activity is None or day is None or period is None or room is None
                or capacity is None or grades is None or ppt is None or min_pupils is None):
            return None
        return Session(session_id, activity, day, period, room, capacity, grades, ppt, min_pupils)

    def _grades(self, obj: dict[str, Any], path: str) -> tuple[int, int] | None:
        value = self.field(obj, "grades", path)
        if value is _MISSING:
            return None
        where = f"{path}.grades"
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(g, int) and not isinstance(g, bool) for g in value)
                or not 1 <= value[0] <= value[1] <= 6):
            self.problem(where, "must be [lo, hi] with 1 <= lo <= hi <= 6")
            return None
        return (value[0], value[1])

    def _teacher(self, obj: dict[str, Any], path: str) -> Teacher | None:
        teacher_id = self.string(obj, "id", path, non_empty=True)
        name = self.string(obj, "name", path)
        qualifications: set[str] = set()
        ok = True
        for i, tag in enumerate(self.array(obj, "qualifications", path) or []):
            if isinstance(tag, str):
                qualifications.add(tag)
            else:
                self.problem(f"{path}.qualifications[{i}]", "must be a string")
                ok = False
        available: set[tuple[int, str]] = set()
        raw_available = self.array(obj, "available", path)
        for i, pair in enumerate(raw_available or []):
            where = f"{path}.available[{i}]"
            if not isinstance(pair, list) or len(pair) != 2:
                self.problem(where, "must be a [day, period_id] pair")
                ok = False
                continue
            day = self._day(pair[0], f"{where}[0]")
            period = self._period_ref(pair[1], f"{where}[1]")
            if day is None or period is None:
                ok = False
                continue
            available.add((day, period))
        max_sessions = self.int_field(obj, "max_sessions", path, 0)
        if not ok or teacher_id is None or name is None or raw_available is None or max_sessions is None:
            return None
        return Teacher(teacher_id, name, frozenset(qualifications), frozenset(available), max_sessions)

    def _pupil(self, obj: dict[str, Any], path: str) -> Pupil | None:
        pupil_id = self.string(obj, "id", path, non_empty=True)
        name = self.string(obj, "name", path)
        grade = self.int_field(obj, "grade", path, 1, 6)
        class_name = self.string(obj, "class", path)
        family = self.string(obj, "family", path, nullable=True)
        bad_family = "family" not in obj or (obj["family"] is not None and family is None)
        priority = self.int_field(obj, "priority", path)
        if priority is not None and priority not in self.priority_levels:
            self.problem(f"{path}.priority", f"priority level {priority} is not in priority_weights")
            priority = None
        if (pupil_id is None or name is None or grade is None or class_name is None or bad_family
                or priority is None):
            return None
        return Pupil(pupil_id, name, grade, class_name, family, priority)

    def _request(self, obj: dict[str, Any], path: str, pupil_ids: set[str]) -> Request | None:
        pupil = self.string(obj, "pupil", path)
        if pupil is not None and pupil not in pupil_ids:
            self.problem(f"{path}.pupil", f"unknown pupil id '{pupil}'")
            pupil = None
        raw_days = self.array(obj, "days", path)
        days, days_ok = self._distinct(raw_days, f"{path}.days", self._day, lambda d: f"day {d} is listed twice")
        raw_periods = self.array(obj, "periods", path)
        periods, periods_ok = self._distinct(raw_periods, f"{path}.periods", self._period_ref,
                                             lambda p: f"period '{p}' is listed twice")
        raw_preferences = self.array(obj, "preferences", path)
        preferences, preferences_ok = self._distinct(raw_preferences, f"{path}.preferences", self._activity_ref,
                                                     lambda a: f"activity '{a}' is listed twice")
        ok = days_ok and periods_ok and preferences_ok
        if (not ok or pupil is None or raw_days is None or raw_periods is None
                or raw_preferences is None):
            return None
        return Request(pupil, tuple(days), tuple(periods), tuple(preferences))

    def _pair(self, obj: dict[str, Any], path: str, pupil_ids: set[str],
              session_ids: set[str]) -> Assignment | None:
        pupil = self.string(obj, "pupil", path)
        if pupil is not None and pupil not in pupil_ids:
            self.problem(f"{path}.pupil", f"unknown pupil id '{pupil}'")
            pupil = None
        session = self.string(obj, "session", path)
        if session is not None and session not in session_ids:
            self.problem(f"{path}.session", f"unknown session id '{session}'")
            session = None
        if pupil is None or session is None:
            return None
        return Assignment(pupil, session)


def parse_instance(data: object) -> Instance:
    """A validated `Instance` from decoded JSON, or `InputError` listing every problem found."""
    parser = _InstanceParser()
    instance = parser.parse(data)
    if instance is None or parser.problems:
        raise InputError(parser.problems or ["instance: could not be read"])
    return instance


def instance_to_json(instance: Instance) -> dict[str, Any]:
    """The JSON form of `instance`; fields kept in `extra` are written back after the spec's own."""
    period_index = instance.period_index
    data: dict[str, Any] = {
        "format": INSTANCE_FORMAT,
        "school": {"id": instance.school.id, "name": instance.school.name,
                   "district": instance.school.district},
        "term": instance.term,
        "weekdays": list(instance.weekdays),
        "periods": [{"id": p.id, "start": p.start, "end": p.end} for p in instance.periods],
        "priority_weights": {str(level): weight
                             for level, weight in sorted(instance.priority_weights.items())},
        "activities": [{"id": a.id, "name": a.name, "category": a.category, "qualification": a.qualification}
                       for a in instance.activities],
        "sessions": [{"id": s.id, "activity": s.activity, "day": s.day, "period": s.period, "room": s.room,
                      "capacity": s.capacity, "grades": list(s.grades),
                      "pupils_per_teacher": s.pupils_per_teacher, "min_pupils": s.min_pupils}
                     for s in instance.sessions],
        "teachers": [{"id": t.id, "name": t.name, "qualifications": sorted(t.qualifications),
                      "available": [[d, p] for d, p in sorted(
                          t.available, key=lambda slot: (slot[0], period_index.get(slot[1], 0)))],
                      "max_sessions": t.max_sessions}
                     for t in instance.teachers],
        "pupils": [{"id": p.id, "name": p.name, "grade": p.grade, "class": p.class_name, "family": p.family,
                    "priority": p.priority} for p in instance.pupils],
        "requests": [{"pupil": r.pupil, "days": list(r.days), "periods": list(r.periods),
                      "preferences": list(r.preferences)} for r in instance.requests],
        "fixed": [{"pupil": a.pupil, "session": a.session} for a in instance.fixed],
        "previous": [{"pupil": a.pupil, "session": a.session} for a in instance.previous],
        "rank_points": list(instance.rank_points),
    }
    if instance.lottery_seed is not None:
        data["lottery_seed"] = instance.lottery_seed
    if instance.seat_policy != DEFAULT_SEAT_POLICY:
        data["seat_policy"] = instance.seat_policy
    for key, value in instance.extra.items():
        data.setdefault(key, value)
    return data


# ---------------------------------------------------------------- solution


class _SolutionParser(_Reader):
    def __init__(self, instance: Instance | None) -> None:
        super().__init__()
        self.instance = instance

    def _ref(self, obj: dict[str, Any], key: str, path: str, known: dict[str, Any] | None,
             kind: str) -> str | None:
        value = self.string(obj, key, path)
        if value is not None and known is not None and value not in known:
            self.problem(f"{path}.{key}", f"unknown {kind} id '{value}'")
            return None
        return value

    def parse(self, data: object) -> Solution | None:
        root = self.obj(data, "solution")
        if root is None:
            return None
        inst = self.instance
        fmt = self.field(root, "format", "")
        if fmt is not _MISSING and fmt != SOLUTION_FORMAT:
            self.problem("format", f"must be '{SOLUTION_FORMAT}', not {json.dumps(fmt, ensure_ascii=False)}")
        school = self.string(root, "school", "")
        if school is not None and inst is not None and school != inst.school.id:
            self.problem("school", f"solution is for school '{school}', the instance is '{inst.school.id}'")
        status = self.string(root, "status", "")
        if status is not None and status not in SOLUTION_STATUSES:
            self.problem("status", f"must be one of {', '.join(SOLUTION_STATUSES)}, not '{status}'")
            status = None
        pupils = inst.pupil_by_id if inst else None
        sessions = inst.session_by_id if inst else None
        teachers = inst.teacher_by_id if inst else None

        def assignment(obj: dict[str, Any], path: str) -> Assignment | None:
            pupil = self._ref(obj, "pupil", path, pupils, "pupil")
            session = self._ref(obj, "session", path, sessions, "session")
            return None if pupil is None or session is None else Assignment(pupil, session)

        def staffing(obj: dict[str, Any], path: str) -> Staffing | None:
            teacher = self._ref(obj, "teacher", path, teachers, "teacher")
            session = self._ref(obj, "session", path, sessions, "session")
            return None if teacher is None or session is None else Staffing(teacher, session)

        def unserved(obj: dict[str, Any], path: str) -> Unserved | None:
            pupil = self._ref(obj, "pupil", path, pupils, "pupil")
            day = self.int_field(obj, "day", path, 1, 7)
            if day is not None and inst is not None and day not in inst.weekdays:
                self.problem(f"{path}.day", f"day {day} is not one of the instance's weekdays")
                day = None
            reason = self.string(obj, "reason", path)
            code = "" if "code" not in obj else self.string(obj, "code", path)
            params = obj.get("params", {})
            if not isinstance(params, dict):
                self.problem(f"{path}.params", "must be an object")
                params = {}
            if pupil is None or day is None or reason is None or code is None:
                return None
            return Unserved(pupil, day, reason, code, params)

        assignments = self.items(root, "assignments", "", assignment)
        staffings = self.items(root, "staffing", "", staffing)
        objective = self._objective(root)
        unserved_items = self.items(root, "unserved", "", unserved, optional=True)
        stats: dict[str, Any] = {}
        if "stats" in root:
            stats_obj = self.obj(root["stats"], "stats")
            stats = stats_obj if stats_obj is not None else {}
        if self.problems or school is None or status is None or objective is None:
            return None
        return Solution(school, status, tuple(assignments), tuple(staffings), objective,
                        tuple(unserved_items), stats)

    def _objective(self, root: dict[str, Any]) -> Objective | None:
        value = self.field(root, "objective", "")
        if value is _MISSING:
            return None
        obj = self.obj(value, "objective")
        if obj is None:
            return None
        values = [self.int_field(obj, key, "objective", 0) for key in OBJECTIVE_FIELDS]
        if any(v is None for v in values):
            return None
        coverage, bound, stability, preference, load = (v for v in values if v is not None)
        return Objective(coverage, bound, stability, preference, load)


def parse_solution(data: object, instance: Instance | None = None) -> Solution:
    """A `Solution` from decoded JSON. With `instance`, ids and the school must also match it."""
    parser = _SolutionParser(instance)
    solution = parser.parse(data)
    if solution is None or parser.problems:
        raise InputError(parser.problems or ["solution: could not be read"])
    return solution


def solution_to_json(solution: Solution) -> dict[str, Any]:
    objective = solution.objective
    return {
        "format": SOLUTION_FORMAT,
        "school": solution.school,
        "status": solution.status,
        "assignments": [{"pupil": a.pupil, "session": a.session} for a in solution.assignments],
        "staffing": [{"teacher": s.teacher, "session": s.session} for s in solution.staffing],
        "objective": {key: getattr(objective, key) for key in OBJECTIVE_FIELDS},
        "unserved": [_unserved_to_json(u) for u in solution.unserved],
        "stats": dict(solution.stats),
    }


# ---------------------------------------------------------------- files


def read_json(path: str | os.PathLike[str]) -> object:
    """Decoded JSON from a UTF-8 file, or `InputError` saying why the file cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError([f"{os.fspath(path)}: file not found"]) from None
    except UnicodeDecodeError as error:
        raise InputError([f"{os.fspath(path)}: not UTF-8 text (byte {error.start})"]) from None
    except OSError as error:
        raise InputError([f"{os.fspath(path)}: cannot read: {error.strerror or error}"]) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError([f"line {error.lineno} column {error.colno}: not valid JSON: {error.msg}"]) from None


def load_instance(path: str | os.PathLike[str]) -> Instance:
    return parse_instance(read_json(path))


def load_solution(path: str | os.PathLike[str], instance: Instance | None = None) -> Solution:
    return parse_solution(read_json(path), instance)


def dumps(obj: object) -> str:
    """Readable, diff-friendly JSON text with Chinese left as is."""
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"


def write_json(obj: object, path: str | os.PathLike[str]) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of it."""
    target = Path(path)
    text = dumps(obj)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def _unserved_to_json(unserved: Unserved) -> dict[str, Any]:
    row: dict[str, Any] = {"pupil": unserved.pupil, "day": unserved.day, "reason": unserved.reason,
                           "code": unserved.code}
    if unserved.params:
        row["params"] = dict(unserved.params)
    return row
