"""A term calendar from a spreadsheet, all or nothing, with the admin importer's conventions: the school's own
layer (`import_calendar`), or a city or district calendar (`webapp.daily.bureau_calendars`), one parser.

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
from webapp.daily.layers import published_for
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
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
"""A calendar file larger than this is refused (the request itself may be up to `MAX_CONTENT_LENGTH`)."""
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


class EntryRejected(ValueError):
    """An entry the calendar rules refuse: `column` is the column key (`COLUMNS`) or form field it is about."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def make_entry(kind: str, first: date, last: date | None, *, runs_weekday: int | None = None,
               pickup: str | None = None, note: str = "") -> list[CalendarDay] | PickupWindow:
    """The rows one entry stands for (`kind` holiday, makeup, early_close or season): one `CalendarDay` per date
    of a holiday range, one for a 调休 or early-close day, a `PickupWindow` for a season. The one rule for the
    spreadsheet and the entry forms of schools and the bureau."""
    if kind in ("holiday", "season"):
        last = last or first
        if last < first or (last - first).days > MAX_RANGE_DAYS:
            raise EntryRejected("last", _("the last day must be on or after the first day, within a year."))
    if kind == "season":
        if not pickup:
            raise EntryRejected("time", _("give a time like 16:30."))
        assert last is not None
        return PickupWindow(starts_on=first, ends_on=last, pickup_time=pickup, note=note)
    if kind == "makeup":
        if runs_weekday is None or not 1 <= runs_weekday <= 5:
            raise EntryRejected("weekday", _("give the weekday whose timetable runs, such as 周一."))
        return [CalendarDay(day=first, kind=CalendarDayKind.MAKEUP, runs_weekday=runs_weekday, note=note)]
    if kind == "early_close":
        if not pickup:
            raise EntryRejected("time", _("give a time like 16:30."))
        return [CalendarDay(day=first, kind=CalendarDayKind.EARLY_CLOSE, pickup_time=pickup, note=note)]
    assert last is not None
    return [CalendarDay(day=first + timedelta(days=i), kind=CalendarDayKind.HOLIDAY, note=note)
            for i in range((last - first).days + 1)]


def outside(day: date, first: date, last: date) -> str | None:
    """Why `day` cannot be an entry of a term from `first` to `last` (None: it can)."""
    if first <= day <= last:
        return None
    return str(_("%(day)s is outside the term (%(first)s to %(last)s).", day=day.isoformat(),
                 first=first.isoformat(), last=last.isoformat()))


def _read(table: Any, columns: dict[str, int], problems: list[Problem], *, bureau: bool,
          inherited: tuple[date, date] | None) -> CalendarRecord:
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
            if bureau:
                row.fail("kind", _("a city or district calendar has no 请假截止 row: each school sets its own."))
            else:
                found.cutoff = _time(row, "time") or found.cutoff
            continue
        first = _date(row, "first", required=True)
        last = _date(row, "last", required=kind in ("term", "season")) if "last" in columns else None
        weekday = pickup = None
        if kind == "makeup" and "weekday" in columns:
            weekday = parse_day(as_text(row.raw("weekday")))
        if kind in ("early_close", "season"):
            pickup = _time(row, "time")
        if first is None or row.failed:
            continue
        if kind == "term":
            last = last or first
            if last < first or (last - first).days > MAX_RANGE_DAYS:
                row.fail("last", _("the last day must be on or after the first day, within a year."))
                continue
            if found.first_day is not None:
                row.fail("kind", _("the file has more than one 学期 row."))
            found.first_day, found.last_day = first, last
            continue
        try:
            entry = make_entry(kind, first, last, runs_weekday=weekday, pickup=pickup, note=note)
        except EntryRejected as rejected:
            column = rejected.column
            row.fail(column if column in columns else next(c.label for c in COLUMNS if c.key == column),
                     rejected.message)
            continue
        if isinstance(entry, PickupWindow):
            found.windows.append(entry)
            continue
        for day in entry:
            if day.day in taken:
                row.fail("first", _("%(day)s is already given in row %(row)d.", day=day.day.isoformat(),
                                    row=taken[day.day]))
                break
            taken[day.day] = number
            found.days.append(day)
    bounds = (found.first_day, found.last_day) if found.first_day is not None else inherited
    if bounds is None:
        problems.append(Problem(_("The file needs one 学期 row with the first and last day of the term.")))
    else:
        assert bounds[0] is not None and bounds[1] is not None
        for day in found.days:
            why = outside(day.day, bounds[0], bounds[1])
            if why is not None:
                problems.append(Problem(why, taken.get(day.day)))
                break
    return found


def check_calendar(filename: str, data: bytes, *, bureau: bool = False,
                   inherited: tuple[date, date] | None = None) -> CalendarRecord:
    """The calendar a file describes; raise ImportRejected listing every problem when there is any.

    A school whose term inherits its dates from the bureau (`inherited`) may leave out the 学期 row; a city or
    district calendar (`bureau`) has no 请假截止 row."""
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
    found = _read(table, columns, problems, bureau=bureau, inherited=inherited)
    if problems:
        raise ImportRejected(problems)
    return found


def import_calendar(term: Term, filename: str, data: bytes) -> SchoolCalendar:
    """Replace the school's own layer of the term's calendar with the file's, in one transaction; ImportRejected
    leaves it as it was. The city's and the district's entries stay: they are the bureau's."""
    inherited = inherited_bounds(term)
    found = check_calendar(filename, data, inherited=inherited)
    old = db.session.query(SchoolCalendar).filter_by(term_id=term.id).one_or_none()
    if old is not None:
        db.session.delete(old)
        db.session.flush()
    calendar = SchoolCalendar(term_id=term.id, first_day=found.first_day, last_day=found.last_day,
                              absence_cutoff=found.cutoff, days=found.days, pickup_windows=found.windows)
    db.session.add(calendar)
    db.session.flush()
    record(AuditAction.CALENDAR_IMPORT, f"term:{term.id}",
           {"days": len(found.days), "windows": len(found.windows),
            "first_day": found.first_day.isoformat() if found.first_day else None,
            "last_day": found.last_day.isoformat() if found.last_day else None}, school_id=term.school_id)
    db.session.commit()
    return calendar


def inherited_bounds(term: Term) -> tuple[date, date] | None:
    """The term's first and last day as the bureau's published calendars give them (district over city)."""
    for calendar in reversed(published_for(term)):
        return calendar.first_day, calendar.last_day
    return None


def template_file() -> bytes:
    notes = [["列名", "说明"]] + [[c.label, f"{'（必填）' if c.required else '（选填）'}{c.help}"] for c in COLUMNS]
    notes.append(["", "每行一条：一行「学期」写首末日；「放假」「季节作息」可写日期范围；导入会替换本学期原有校历。"])
    return write_xlsx([c.label for c in COLUMNS], notes, "校历", "填写说明")
