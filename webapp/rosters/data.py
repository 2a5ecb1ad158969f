"""What the rosters show, read once from a run: attendance sheets, dismissal lists and duty timetables.

The HTML pages and the spreadsheets are both drawn from these plain objects, so the two never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import (
    Activity,
    AllocationRun,
    Period,
    Pupil,
    RunAssignment,
    RunStaffing,
    Session,
    Teacher,
    Term,
)

HOME_ZH = "回家/家长接"


@dataclass
class SessionSheet:
    """One session's attendance sheet: where and when, who teaches, who should be there."""

    session: Session
    activity: Activity
    period: Period
    teachers: list[Teacher] = field(default_factory=list)
    pupils: list[Pupil] = field(default_factory=list)

    @property
    def time(self) -> str:
        return f"{self.period.start}–{self.period.end}"


@dataclass(frozen=True)
class Stop:
    """Where a pupil is in one period of one day."""

    period: Period
    activity: Activity
    session: Session


@dataclass
class DismissalRow:
    pupil: Pupil
    days: dict[int, list[Stop]] = field(default_factory=dict)

    def stops(self, day: int) -> list[Stop]:
        return self.days.get(day, [])

    def pickup(self, day: int) -> str | None:
        """When the pupil is collected that day: the end of the last period covered, or None (goes home)."""
        stops = self.stops(day)
        return max(stop.period.end for stop in stops) if stops else None


@dataclass
class ClassList:
    class_name: str
    rows: list[DismissalRow] = field(default_factory=list)


@dataclass(frozen=True)
class Duty:
    sheet: SessionSheet

    @property
    def pupil_count(self) -> int:
        return len(self.sheet.pupils)


@dataclass
class TeacherTimetable:
    teacher: Teacher
    duties: dict[tuple[int, int], Duty] = field(default_factory=dict)

    def at(self, day: int, period: Period) -> Duty | None:
        return self.duties.get((day, period.id))


@dataclass
class Rosters:
    """A run's sheets, read with one query per table; the class lists and duty timetables are derived from the
    sheets on first use, so a page that shows only attendance sheets never reads the whole school's pupils."""

    term: Term
    run: AllocationRun
    periods: list[Period]
    weekdays: list[int]
    sheets: list[SessionSheet]

    def sheet(self, session_id: int) -> SessionSheet | None:
        return next((s for s in self.sheets if s.session.id == session_id), None)

    def class_list(self, class_name: str) -> ClassList | None:
        return next((c for c in self.classes if c.class_name == class_name), None)

    def timetable(self, teacher_id: int) -> TeacherTimetable | None:
        return next((t for t in self.timetables if t.teacher.id == teacher_id), None)

    @cached_property
    def classes(self) -> list[ClassList]:
        """Every active pupil of the school by class, with where each goes on each day."""
        stops: dict[int, dict[int, list[Stop]]] = defaultdict(lambda: defaultdict(list))
        for sheet in self.sheets:
            for pupil in sheet.pupils:
                stops[pupil.id][sheet.session.day].append(Stop(sheet.period, sheet.activity, sheet.session))
        pupils = db.session.scalars(
            select(Pupil).where(Pupil.school_id == self.term.school_id, Pupil.active)
            .order_by(Pupil.class_name, Pupil.number)
        ).all()
        classes: dict[str, ClassList] = {}
        for pupil in pupils:
            days = stops.get(pupil.id, {})
            row = DismissalRow(pupil, {day: list(day_stops) for day, day_stops in days.items()})
            classes.setdefault(pupil.class_name, ClassList(pupil.class_name)).rows.append(row)
        return [classes[name] for name in sorted(classes, key=class_sort_key)]

    @cached_property
    def timetables(self) -> list[TeacherTimetable]:
        timetables: dict[int, TeacherTimetable] = {}
        for sheet in self.sheets:
            for teacher in sheet.teachers:
                table = timetables.setdefault(teacher.id, TeacherTimetable(teacher))
                table.duties[(sheet.session.day, sheet.period.id)] = Duty(sheet)
        return sorted(timetables.values(), key=lambda t: t.teacher.code)


def load_rosters(term: Term, run: AllocationRun) -> Rosters:
    """Everything the rosters need about `run` (a run of `term`), in the order a school office reads it."""
    periods = sorted(term.periods, key=lambda p: p.position)
    position = {p.id: p.position for p in periods}
    sessions = db.session.execute(
        select(Session, Activity, Period).join(Activity, Activity.id == Session.activity_id)
        .join(Period, Period.id == Session.period_id).where(Session.term_id == term.id)
    ).all()
    sheets = {s.id: SessionSheet(s, activity, period) for s, activity, period in sessions}

    # the seats as plain id pairs and each seated pupil once: a big school has ~20,000 seats but ~3,000 pupils,
    # and building an ORM row per seat was most of a roster page's time
    seated = RunAssignment.run_id == run.id
    pupils = {pupil.id: pupil for pupil in db.session.scalars(
        select(Pupil).where(Pupil.id.in_(select(RunAssignment.pupil_id).where(seated))))}
    for session_id, pupil_id in db.session.execute(
        select(RunAssignment.session_id, RunAssignment.pupil_id).where(seated)
    ):
        if session_id in sheets:
            sheets[session_id].pupils.append(pupils[pupil_id])
    for session_id, teacher in db.session.execute(
        select(RunStaffing.session_id, Teacher).join(Teacher, Teacher.id == RunStaffing.teacher_id)
        .where(RunStaffing.run_id == run.id)
    ):
        if session_id in sheets:
            sheets[session_id].teachers.append(teacher)

    for sheet in sheets.values():
        sheet.pupils.sort(key=lambda p: (p.class_name, p.number))
        sheet.teachers.sort(key=lambda t: t.code)
    running = sorted((s for s in sheets.values() if s.pupils or s.teachers),
                     key=lambda s: (s.session.day, position[s.period.id], s.session.code))
    return Rosters(term=term, run=run, periods=periods, weekdays=sorted(term.weekdays), sheets=running)


def class_sort_key(name: str) -> tuple[tuple[int, str], ...]:
    """"2-10" after "2-9": numeric parts compare as numbers."""
    parts = name.replace("班", "").replace("－", "-").split("-")
    return tuple((int(part), "") if part.isdigit() else (10**6, part) for part in parts)
