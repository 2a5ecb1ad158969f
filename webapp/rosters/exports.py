"""Spreadsheets a school office prints (one sheet per session, class or teacher) and the JSON exports.

Every cell is written through `webapp.tabular` (`StreamingBook`: rows written in order, styles registered
once), so names and rooms are always text, never formulas. Every
sheet is set up for A4: a title, a frozen header row that repeats on every printed page, column widths
wide enough for Chinese names, and fit-to-width so nothing falls off the right edge.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from scheduler.io import dumps, instance_to_json, solution_to_json
from scheduler.weekdays import weekday_name
from webapp.labels import term_label
from webapp.models import AllocationRun, Term
from webapp.rosters.data import (
    HOME_ZH,
    ClassList,
    DismissalRow,
    Rosters,
    SessionSheet,
    TeacherTimetable,
)
from webapp.services import run_to_solution, term_to_instance
from webapp.tabular import XLSX_MIMETYPE as XLSX_MIMETYPE
from webapp.tabular import StreamingBook, StreamingSheet, cell_text

SESSION_HEADERS = ("序号", "学号", "姓名", "班级", "签到")
_BORDER = "#999999"  # thin, all four sides
_HEADER_FILL = "#E8EEF7"
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def sheet_title(text: str, taken: set[str]) -> str:
    """A valid, unique worksheet name (at most 31 UTF-16 units, as Excel counts: an emoji is two; none of
    []:*?/\\; no apostrophe at either end)."""
    base = _BAD_SHEET_CHARS.sub("_", cell_text(text).replace("\ufffd", "_")).strip("'") or "Sheet"
    base = _utf16_prefix(base, 31).rstrip("'") or "Sheet"
    title, n = base, 2
    while title.lower() in taken:
        suffix = f"~{n}"
        title, n = _utf16_prefix(base, 31 - len(suffix)) + suffix, n + 1
    taken.add(title.lower())
    return title


def _utf16_prefix(text: str, units: int) -> str:
    """The longest start of `text` that is at most `units` UTF-16 code units long."""
    length = 0
    for index, char in enumerate(text):
        length += 2 if ord(char) > 0xFFFF else 1
        if length > units:
            return text[:index]
    return text


def session_heading(sheet: SessionSheet) -> str:
    day = weekday_name(sheet.session.day, "zh")
    return f"{sheet.session.code} {sheet.activity.name} · {day} {sheet.time}"


def session_details(sheet: SessionSheet) -> str:
    teachers = "、".join(t.name for t in sheet.teachers) or "—"
    return (f"教室：{sheet.session.room or '—'}    教师：{teachers}    "
            f"人数：{len(sheet.pupils)}/{sheet.session.capacity}")


def stops_text(row: DismissalRow, day: int) -> str:
    """Where the pupil goes that day, period by period, or the note that a parent collects at dismissal."""
    stops = row.stops(day)
    if not stops:
        return HOME_ZH
    return " → ".join(f"{stop.activity.name}@{stop.session.room or stop.session.code}" for stop in stops)


def duty_text(table: TeacherTimetable, day: int, period_id: int) -> str:
    duty = table.duties.get((day, period_id))
    if duty is None:
        return ""
    sheet = duty.sheet
    return f"{sheet.session.code} {sheet.activity.name}\n{sheet.session.room or '—'} · {duty.pupil_count}人"


class _Book(StreamingBook):
    """The roster workbooks' one look: a bold title, a shaded header row, bordered wrapped body cells."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: set[str] = set()
        self.title_style = self.style("roster-title", bold=True, size=14)
        self.header_style = self.style("roster-header", bold=True, fill=_HEADER_FILL, border=_BORDER,
                                       align="center", valign="center")
        self.body_style = self.style("roster-body", border=_BORDER, valign="center", wrap=True)

    def new_sheet(self, name: str, header_row: int, widths: Sequence[float], *, landscape: bool = False,
                  freeze: str | None = None) -> StreamingSheet:
        """A sheet set up for A4: widths, frozen header, repeated header row, fit to width."""
        ws = self.sheet(sheet_title(name, self.taken))
        ws.widths(widths)
        ws.freeze(freeze or f"A{header_row + 1}")
        ws.print_setup(title_row=header_row, landscape=landscape)
        return ws

    def title(self, ws: StreamingSheet, text: str, detail: str, columns: int) -> None:
        self.row(ws, [text], self.title_style, merge_to=columns)
        self.row(ws, [detail], merge_to=columns)

    def header(self, ws: StreamingSheet, headers: Sequence[str]) -> None:
        self.row(ws, headers, self.header_style)

    def body(self, ws: StreamingSheet, values: Sequence[Any]) -> None:
        self.row(ws, values, self.body_style)

    def save(self) -> bytes:
        if not self.sheets:
            empty = self.sheet("空")
            self.row(empty, ["此分配方案中没有开班的课程班"])
        return self.bytes()


def sessions_workbook(sheets: Sequence[SessionSheet]) -> bytes:
    """Attendance sheets: one worksheet per session, pupils by class then number, an empty tick column."""
    with _Book() as book:
        for sheet in sheets:
            ws = book.new_sheet(f"{sheet.session.code} {sheet.activity.name}", 3, (6, 14, 14, 10, 12))
            book.title(ws, session_heading(sheet), session_details(sheet), len(SESSION_HEADERS))
            book.header(ws, SESSION_HEADERS)
            for number, pupil in enumerate(sheet.pupils, start=1):
                book.body(ws, [number, pupil.number, pupil.name, pupil.class_name, ""])
        return book.save()


def classes_workbook(rosters: Rosters, classes: Sequence[ClassList]) -> bytes:
    """Dismissal lists: one worksheet per class; for each weekday where the pupil goes and the pickup time."""
    with _Book() as book:
        days = rosters.weekdays
        headers = ["序号", "学号", "姓名"]
        for day in days:
            headers += [f"{weekday_name(day)}去向", f"{weekday_name(day)}接送时间"]
        for class_list in classes:
            ws = book.new_sheet(f"{class_list.class_name}班", 3, [6, 12, 10] + [22, 9] * len(days), landscape=True,
                                freeze="D4")
            book.title(ws, f"{class_list.class_name} 班 放学去向（{term_label(rosters.term.name, 'zh')}）",
                       f"共 {len(class_list.rows)} 人；15:30 放学时无课后服务的学生由家长接回", len(headers))
            book.header(ws, headers)
            for number, row in enumerate(class_list.rows, start=1):
                values: list[Any] = [number, row.pupil.number, row.pupil.name]
                for day in days:
                    values += [stops_text(row, day), row.pickup(day) or ""]
                book.body(ws, values)
        return book.save()


def teachers_workbook(rosters: Rosters, tables: Sequence[TeacherTimetable]) -> bytes:
    """Duty timetables: one worksheet per teacher, periods down, weekdays across."""
    with _Book() as book:
        headers = ["时段"] + [weekday_name(day) for day in rosters.weekdays]
        for table in tables:
            ws = book.new_sheet(f"{table.teacher.name} {table.teacher.code}", 3,
                                [16] + [20] * len(rosters.weekdays), landscape=True, freeze="B4")
            for row in range(4, 4 + len(rosters.periods)):
                ws.row_height(row, 36)
            book.title(ws, f"{table.teacher.name}（{table.teacher.code}）每周值班表",
                       f"{term_label(rosters.term.name, 'zh')}    共 {len(table.duties)} 个课程班", len(headers))
            book.header(ws, headers)
            for period in rosters.periods:
                values = [f"{period.code} {period.start}–{period.end}"]
                values += [duty_text(table, day, period.id) for day in rosters.weekdays]
                book.body(ws, values)
        return book.save()


def instance_json(term: Term) -> str:
    """The term as a solver instance file (afterschool-instance/1)."""
    return dumps(instance_to_json(term_to_instance(term)))


def solution_json(run: AllocationRun) -> str:
    """The run as a solution file (afterschool-solution/1)."""
    return dumps(solution_to_json(run_to_solution(run)))


def export_filename(term: Term, kind: str, extension: str, run: AllocationRun | None = None) -> str:
    """e.g. `KM-0001_2026-autumn_sessions_v1.xlsx`: school code, term, what, which run."""
    which = ""
    if run is not None:
        which = f"_v{run.version}" if run.is_published and run.version else f"_run{run.id}"
    raw = f"{term.school.code}_{term.name}_{kind}{which}.{extension}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw)
