"""Teacher hours for payroll: lessons (课时) per teacher in a month, from the staffing and the roll-call.

A session counts for a date when it ran that day (the roster for the date has it) and its roll-call was taken
(at least one mark): a session nobody called is not paid on a guess. Its hours run from the period's start to
its end, or to the day's latest pickup when that comes first. Lessons are hours divided by the school's
`DAILY_LESSON_HOURS` (default 0.75: a 45-minute 课时); pay is lessons times `DAILY_LESSON_RATE` (yuan).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import select

from webapp.daily.layers import term_on
from webapp.daily.roster import load_roster
from webapp.extensions import db
from webapp.models import RollCallMark, RunStaffing, School, Session, Teacher
from webapp.tabular import append_row, workbook_bytes

DEFAULT_LESSON_HOURS = 0.75
DEFAULT_LESSON_RATE = 50.0


@dataclass
class TeacherHours:
    teacher: Teacher
    sessions: int = 0
    hours: float = 0.0
    detail: list[tuple[date, str, str, float]] = field(default_factory=list)
    """(date, session code, activity, hours) of each session counted."""


def _hours(start: str, end: str) -> float:
    span = datetime.strptime(end, "%H:%M") - datetime.strptime(start, "%H:%M")
    return max(0.0, span.total_seconds() / 3600)


def month_hours(school: School, first: date) -> list[TeacherHours]:
    """Every active teacher of the school with the sessions counted in the month starting at `first`."""
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    teachers = db.session.scalars(select(Teacher).where(Teacher.school_id == school.id)
                                  .order_by(Teacher.code)).all()
    found = {t.id: TeacherHours(t) for t in teachers}
    called: dict[date, set[int]] = defaultdict(set)
    for day, session_id in db.session.execute(select(RollCallMark.day, RollCallMark.session_id).where(
            RollCallMark.day >= first, RollCallMark.day <= last).distinct()):
        called[day].add(session_id)
    on = first
    while on <= last:
        term = term_on(school.id, on)
        run = term.published_run if term is not None else None
        if term is not None and run is not None and called.get(on):
            roster = load_roster(term, on)
            held = {s.session_id: s for s in roster.sessions if s.session_id in called[on]}
            if held:
                sessions = {s.id: s for s in db.session.scalars(select(Session).where(Session.id.in_(list(held))))}
                for teacher_id, session_id in db.session.execute(select(
                        RunStaffing.teacher_id, RunStaffing.session_id).where(
                        RunStaffing.run_id == run.id, RunStaffing.session_id.in_(list(held)))):
                    if teacher_id in found:
                        entry, session = held[session_id], sessions[session_id]
                        hours = _hours(entry.start, entry.end)
                        row = found[teacher_id]
                        row.sessions += 1
                        row.hours += hours
                        row.detail.append((on, session.code, session.activity.name, hours))
        on += timedelta(days=1)
    return list(found.values())


def hours_workbook(school: School, first: date) -> bytes:
    """The month's payroll sheet (one row per teacher) and a sheet with every session counted."""
    per_lesson = float(current_app.config.get("DAILY_LESSON_HOURS", DEFAULT_LESSON_HOURS))
    rate = float(current_app.config.get("DAILY_LESSON_RATE", DEFAULT_LESSON_RATE))
    rows = month_hours(school, first)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "课时汇总"
    append_row(sheet, [f"{school.name} {first:%Y年%m月} 课后服务课时（每课时 {per_lesson:g} 小时，单价 {rate:g} 元）"])
    append_row(sheet, ["工号", "姓名", "班次", "小时", "课时", "单价（元）", "金额（元）"])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in rows:
        lessons = round(row.hours / per_lesson, 2) if per_lesson > 0 else 0.0
        append_row(sheet, [row.teacher.code, row.teacher.name, row.sessions, round(row.hours, 2), lessons, rate,
                           round(lessons * rate, 2)])
    detail = book.create_sheet("明细")
    append_row(detail, ["日期", "工号", "姓名", "班次", "活动", "小时"])
    for row in rows:
        for day, code, activity, hours in row.detail:
            append_row(detail, [day, row.teacher.code, row.teacher.name, code, activity, round(hours, 2)])
    return workbook_bytes(book)
