"""Spreadsheets a school office prints (one sheet per session, class or teacher) and the JSON exports.

Every cell is written through `webapp.tabular`, so names and rooms are always text, never formulas. Every
sheet is set up for A4: a title, a frozen header row that repeats on every printed page, column widths
wide enough for Chinese names, and fit-to-width so nothing falls off the right edge.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

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
from webapp.tabular import append_row, cell_text, set_cell, workbook_bytes

SESSION_HEADERS = ("序号", "学号", "姓名", "班级", "签到")
_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEADER_FILL = PatternFill("solid", fgColor="E8EEF7")
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def sheet_title(text: str, taken: set[str]) -> str:
    """A valid, unique worksheet name (at most 31 characters, none of []:*?/\\)."""
    base = _BAD_SHEET_CHARS.sub("_", cell_text(text).replace("\ufffd", "_")).strip("'") or "Sheet"
    base = base[:31]
    title, n = base, 2
    while title.lower() in taken:
        suffix = f"~{n}"
        title, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(title.lower())
    return title


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


def _new_workbook() -> tuple[Workbook, set[str]]:
    workbook = Workbook()
    default = workbook.active
    if default is not None:
        workbook.remove(default)
    return workbook, set()


def _setup(ws: Worksheet, header_row: int, widths: Sequence[float], *, landscape: bool = False,
           freeze: str | None = None) -> None:
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[_column(index)].width = width
    ws.freeze_panes = freeze or f"A{header_row + 1}"
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True


def _column(index: int) -> str:

    return str(get_column_letter(index))


def _title(ws: Worksheet, text: str, detail: str, columns: int) -> None:
    append_row(ws, [text])
    append_row(ws, [detail])
    ws["A1"].font = Font(bold=True, size=14)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=columns)
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=columns)


def _header(ws: Worksheet, row: int, headers: Sequence[str]) -> None:
    for col, text in enumerate(headers, start=1):
        cell = set_cell(ws, row, col, text)
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.border = _BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center")


def _body_row(ws: Worksheet, values: Sequence[Any]) -> None:
    append_row(ws, values)
    for cell in ws[ws.max_row]:
        cell.border = _BORDER
        cell.alignment = Alignment(vertical="center", wrap_text=True)


def _save(workbook: Workbook) -> bytes:
    if not workbook.worksheets:
        empty = workbook.create_sheet("空")
        empty["A1"] = "此分配方案中没有开班的课程班"
    return workbook_bytes(workbook)


def sessions_workbook(sheets: Sequence[SessionSheet]) -> bytes:
    """Attendance sheets: one worksheet per session, pupils by class then number, an empty tick column."""
    workbook, taken = _new_workbook()
    for sheet in sheets:
        ws = workbook.create_sheet(sheet_title(f"{sheet.session.code} {sheet.activity.name}", taken))
        _title(ws, session_heading(sheet), session_details(sheet), len(SESSION_HEADERS))
        _header(ws, 3, SESSION_HEADERS)
        for number, pupil in enumerate(sheet.pupils, start=1):
            _body_row(ws, [number, pupil.number, pupil.name, pupil.class_name, ""])
        _setup(ws, 3, (6, 14, 14, 10, 12))
    return _save(workbook)


def classes_workbook(rosters: Rosters, classes: Sequence[ClassList]) -> bytes:
    """Dismissal lists: one worksheet per class; for each weekday where the pupil goes and the pickup time."""
    workbook, taken = _new_workbook()
    days = rosters.weekdays
    headers = ["序号", "学号", "姓名"]
    for day in days:
        headers += [f"{weekday_name(day)}去向", f"{weekday_name(day)}接送时间"]
    for class_list in classes:
        ws = workbook.create_sheet(sheet_title(f"{class_list.class_name}班", taken))
        _title(ws, f"{class_list.class_name} 班 放学去向（{term_label(rosters.term.name, 'zh')}）",
               f"共 {len(class_list.rows)} 人；15:30 放学时无课后服务的学生由家长接回", len(headers))
        _header(ws, 3, headers)
        for number, row in enumerate(class_list.rows, start=1):
            values: list[Any] = [number, row.pupil.number, row.pupil.name]
            for day in days:
                values += [stops_text(row, day), row.pickup(day) or ""]
            _body_row(ws, values)
        _setup(ws, 3, [6, 12, 10] + [22, 9] * len(days), landscape=True, freeze="D4")
    return _save(workbook)


def teachers_workbook(rosters: Rosters, tables: Sequence[TeacherTimetable]) -> bytes:
    """Duty timetables: one worksheet per teacher, periods down, weekdays across."""
    workbook, taken = _new_workbook()
    headers = ["时段"] + [weekday_name(day) for day in rosters.weekdays]
    for table in tables:
        ws = workbook.create_sheet(sheet_title(f"{table.teacher.name} {table.teacher.code}", taken))
        _title(ws, f"{table.teacher.name}（{table.teacher.code}）每周值班表",
               f"{term_label(rosters.term.name, 'zh')}    共 {len(table.duties)} 个课程班", len(headers))
        _header(ws, 3, headers)
        for period in rosters.periods:
            values = [f"{period.code} {period.start}–{period.end}"]
            values += [duty_text(table, day, period.id) for day in rosters.weekdays]
            _body_row(ws, values)
            ws.row_dimensions[ws.max_row].height = 36
        _setup(ws, 3, [16] + [20] * len(rosters.weekdays), landscape=True, freeze="B4")
    return _save(workbook)


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
