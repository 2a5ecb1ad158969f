"""The term calendar from a school's spreadsheet, all or nothing, with the admin importer's conventions.

One row per entry; the first column says what it is. Every problem is reported at once by row and column
("第 4 行，「结束日期」列：…"), and only a file without problems replaces the term's calendar, in one
transaction. Importing the same file again gives the same calendar.

    类型        开始日期     结束日期     按星期几上课   接送时间   说明
    学期        2026-09-01  2027-01-22
    请假截止                                          12:00
    放假        2026-10-01  2026-10-07                           国庆
    调休        2026-10-10               周一                    调休上课
    提前放学     2026-10-12                            16:30     教研
    季节作息     2026-11-01  2027-01-22                17:00     冬季
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

from flask_babel import gettext as _

from webapp.admin.importer import Column, ImportRejected, Problem, _header_key, _Row, as_text, parse_day
from webapp.admin.spreadsheet import FileRejected, read_table, write_xlsx
from webapp.audit import AuditAction, record
from webapp.extensions import db
from webapp.models import CalendarDay, CalendarDayKind, PickupWindow, SchoolCalendar, Term

COLUMNS = (
    Column("kind", "类型", "kind", True, "学期、请假截止、放假、调休、提前放学、季节作息"),
    Column("first", "开始日期", "from", False, "如 2026-09-01", ("日期", "date")),
    Column("last", "结束日期", "until", False, "范围的最后一天（含）；单日可不填"),
    Column("weekday", "按星期几上课", "runs weekday", False, "调休日按哪天的课表，如 周一"),
    Column("time", "接送时间", "time", False, "如 16:30；请假截止行填截止时间"),
    Column("note", "说明", "note", False, "如 国庆、冬季作息"),
)
KINDS = {"学期": "term", "term": "term", "请假截止": "cutoff", "cutoff": "cutoff",
         "放假": "holiday", "假期": "holiday", "holiday": "holiday", "调休": "makeup", "makeup": "makeup",
         "提前放学": "early_close", "early close": "early_close", "季节作息": "season", "season": "season"}
MAX_RANGE_DAYS = 366
_TIME_RE = re.compile(r"^([01]?\d|2[0-3])[:：]([0-5]\d)$")


@dataclass
class CalendarRecord:
    first_day: date | None = None
    last_day: date | None = None
    cutoff: str = "12:00"
    days: list[CalendarDay] = field(default_factory=list)
    windows: list[PickupWindow] = field(default_factory=list)


def _date(row: _Row, key: str, required: bool) -> date | None:
    return row.date_value(key, required=required)


def _time(row: _Row, key: str) -> str | None:
    raw = row.raw(key) if key in row.columns else None
    if isinstance(raw, time):
        return raw.strftime("%H:%M")
    text = as_text(raw)
    match = _TIME_RE.match(text)
    if match is None:
        row.fail(key if key in row.columns else "接送时间", _("give a time like 16:30."))
        return None
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def _read(table: Any, columns: dict[str, int], problems: list[Problem]) -> CalendarRecord:
    found = CalendarRecord()
    taken: dict[date, int] = {}
    for number, cells in table.rows:
        row = _Row(number, cells, columns, table.headers, problems)
        kind = KINDS.get(row.text("kind", required=True).lower())
        if kind is None:
            if not row.failed_on("kind"):
                row.fail("kind", _("use one of 学期, 请假截止, 放假, 调休, 提前放学, 季节作息."))
            continue
        note = row.text("note", max_length=100)
        if kind == "cutoff":
            found.cutoff = _time(row, "time") or found.cutoff
            continue
        first = _date(row, "first", required=True)
        last = _date(row, "last", required=kind in ("term", "season")) if "last" in columns else None
        if first is None or row.failed:
            continue
        if kind in ("term", "holiday", "season"):
            last = last or first
            if last < first or (last - first).days > MAX_RANGE_DAYS:
                row.fail("last", _("the last day must be on or after the first day, within a year."))
                continue
        if kind == "term":
            if found.first_day is not None:
                row.fail("kind", _("the file has more than one 学期 row."))
            found.first_day, found.last_day = first, last
            continue
        if kind == "season":
            pickup = _time(row, "time")
            if pickup is not None and last is not None:
                found.windows.append(PickupWindow(starts_on=first, ends_on=last, pickup_time=pickup, note=note))
            continue
        dates = [first + timedelta(days=i) for i in range(((last or first) - first).days + 1)]
        entry: dict[str, Any] = {"note": note}
        if kind == "makeup":
            weekday = parse_day(as_text(row.raw("weekday"))) if "weekday" in columns else None
            if weekday is None or weekday > 5:
                row.fail("weekday" if "weekday" in columns else "按星期几上课",
                         _("give the weekday whose timetable runs, such as 周一."))
                continue
            entry.update(kind=CalendarDayKind.MAKEUP, runs_weekday=weekday)
        elif kind == "early_close":
            pickup = _time(row, "time")
            if pickup is None:
                continue
            entry.update(kind=CalendarDayKind.EARLY_CLOSE, pickup_time=pickup)
        else:
            entry.update(kind=CalendarDayKind.HOLIDAY)
        for day in dates:
            if day in taken:
                row.fail("first", _("%(day)s is already given in row %(row)d.", day=day.isoformat(),
                                    row=taken[day]))
                break
            taken[day] = number
            found.days.append(CalendarDay(day=day, **entry))
    if found.first_day is None:
        problems.append(Problem(_("The file needs one 学期 row with the first and last day of the term.")))
    else:
        assert found.last_day is not None
        for day in found.days:
            if not found.first_day <= day.day <= found.last_day:
                problems.append(Problem(_("%(day)s is outside the term (%(first)s to %(last)s).",
                                          day=day.day.isoformat(), first=found.first_day.isoformat(),
                                          last=found.last_day.isoformat()), taken.get(day.day)))
                break
    return found


def check_calendar(filename: str, data: bytes) -> CalendarRecord:
    """The calendar a file describes; raise ImportRejected listing every problem when there is any."""
    try:
        table = read_table(filename, data)
    except FileRejected as exc:
        raise ImportRejected([Problem(str(exc))]) from None
    by_name = {name: column for column in COLUMNS for name in column.names()}
    columns: dict[str, int] = {}
    for index, header in enumerate(table.headers):
        column = by_name.get(_header_key(header)) if header else None
        if column is not None and column.key not in columns:
            columns[column.key] = index
    problems: list[Problem] = []
    if "kind" not in columns or "first" not in columns:
        problems.append(Problem(_("The header row needs the columns 类型 and 开始日期 (see the template).")))
        raise ImportRejected(problems)
    if not table.rows:
        raise ImportRejected([Problem(_("The file has a header row but no data rows."))])
    found = _read(table, columns, problems)
    if problems:
        raise ImportRejected(problems)
    return found


def import_calendar(term: Term, filename: str, data: bytes) -> SchoolCalendar:
    """Replace the term's calendar with the file's, in one transaction; ImportRejected leaves it as it was."""
    found = check_calendar(filename, data)
    assert found.first_day is not None and found.last_day is not None
    old = db.session.query(SchoolCalendar).filter_by(term_id=term.id).one_or_none()
    if old is not None:
        db.session.delete(old)
        db.session.flush()
    calendar = SchoolCalendar(term_id=term.id, first_day=found.first_day, last_day=found.last_day,
                              absence_cutoff=found.cutoff, days=found.days, pickup_windows=found.windows)
    db.session.add(calendar)
    db.session.flush()
    record(AuditAction.CALENDAR_IMPORT, f"term:{term.id}",
           {"days": len(found.days), "windows": len(found.windows), "first_day": found.first_day.isoformat(),
            "last_day": found.last_day.isoformat()}, school_id=term.school_id)
    db.session.commit()
    return calendar


def template_file() -> bytes:
    notes = [["列名", "说明"]] + [[c.label, f"{'（必填）' if c.required else '（选填）'}{c.help}"] for c in COLUMNS]
    notes.append(["", "每行一条：一行「学期」写首末日；「放假」「季节作息」可写日期范围；导入会替换本学期原有校历。"])
    return write_xlsx([c.label for c in COLUMNS], notes, "校历", "填写说明")
