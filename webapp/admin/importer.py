"""Importing pupils, teachers and sessions from a school's spreadsheet, all or nothing.

`import_file(kind, filename, data, school, term)` reads the upload, checks every cell and reports every
problem at once ("第 5 行，「年级」列：年级必须是 1 到 6 的整数"). Only a file without a single problem is
written, in one transaction; rows are matched on pupil number / staff number / session code, so importing the
same file twice changes nothing. Existing rows are loaded once into dicts: a 3,000-pupil file costs a handful
of queries.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from flask import has_request_context
from flask_babel import LazyString, force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import delete, insert, select

from webapp import held_uploads
from webapp.admin.scope import known_qualifications, unknown_qualification_message
from webapp.admin.spreadsheet import EXCEL_ERRORS, Cell, FileRejected, Table, clean_text, read_table
from webapp.admin.spreadsheet import write_csv as _write_csv
from webapp.admin.spreadsheet import write_xlsx as _write_xlsx
from webapp.allocation import service as allocation
from webapp.audit import record
from webapp.extensions import db
from webapp.inputs import control_character
from webapp.labels import day_names
from webapp.models import (
    Activity,
    ClassTeacher,
    Period,
    PriorityGroup,
    Pupil,
    School,
    Session,
    Teacher,
    TeacherAvailability,
    Term,
)
from webapp.notifications.forms import EMAIL_MAX, EMAIL_RE
from webapp.priority_groups import city_groups, tag_pupil
from webapp.security import PHONE_RE, normalise_phone
from webapp.services import school_today

log = logging.getLogger(__name__)

KINDS = ("pupils", "teachers", "sessions")
_ZH_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7, "七": 7}
_EN_DAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
_DAY_RE = re.compile(
    r"^(?:(?:周|星期|礼拜)([一二三四五六日天])|(mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?|([1-7]))",
    re.IGNORECASE,
)
_DATE_RE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_LIST_SPLIT = re.compile(r"[,，、;；/\s]+")
_YES = frozenset({"1", "是", "✓", "√", "✔", "y", "yes", "true", "x", "有", "可", "可以", "○", "o"})
_NO = frozenset({"", "0", "否", "n", "no", "false", "×", "✗", "-", "无", "不可"})
PUPIL_STATUS = {"在读": True, "active": True, "离校": False, "left": False}
"""A pupil file's 在读状态 cell -> whether the pupil is on the roll (English words in any case)."""
MAX_GRADE = 6


@dataclass(frozen=True)
class Column:
    """A column of an import file: its Chinese header (as in the template) and the other names accepted."""

    key: str
    label: str
    english: str
    required: bool
    help: LazyString
    """What to enter, said in the reader's language (the template file's notes are always Chinese)."""
    aliases: tuple[str, ...] = ()

    def names(self) -> set[str]:
        return {_header_key(n) for n in (self.label, self.english, self.key, *self.aliases)}


COLUMNS: dict[str, tuple[Column, ...]] = {
    "pupils": (
        Column("number", "学号", "pupil number", True, _l("Unique for each pupil; parents use it to link their child"),
               ("number", "pupil id", "id")),
        Column("name", "姓名", "name", True, _l("The pupil's name")),
        Column("grade", "年级", "grade", True, _l("A whole number from 1 to 6")),
        Column("class_name", "班级", "class", False, _l("For example 3-1"), ("class name",)),
        Column("family", "家庭编号", "family", False,
               _l("The same code for brothers and sisters; may be left empty"), ("family code",)),
        Column("priority", "优先级", "priority", False,
               _l("Older files only: a whole number, 0 for ordinary; empty means 0. Prefer a priority group")),
        Column("group", "优先群体", "priority group", False,
               _l("The name of one of the city's priority groups, in Chinese or English; may be left empty"),
               ("group",)),
        Column("group_note", "群体证明", "group evidence", False,
               _l("With a group: the evidence you saw, for example the kind and number of a certificate"),
               ("evidence",)),
        Column("group_expires", "群体有效期至", "group expires", False,
               _l("With a group: the last day the group counts, for example 2027-01-31"),
               ("group expires on", "expires")),
        Column("status", "在读状态", "status", False,
               _l("Active (on the roll) or left (left the school); an empty cell means active, and a file without "
                  "this column keeps every pupil's status. A pupil who left gives up their seats in the published "
                  "plan, which are offered to the waitlist"),
               ("enrolment status",)),
    ),
    "teachers": (
        Column("code", "工号", "staff number", True, _l("Unique for each teacher"), ("code", "teacher id", "id")),
        Column("name", "姓名", "name", True, _l("The teacher's name")),
        Column("qualifications", "资质", "qualifications", False,
               _l("Qualification tags separated by commas, for example sports, arts")),
        Column("max_sessions", "每周上限", "weekly cap", False,
               _l("The most sessions a week the teacher leads; empty means 5"),
               ("max sessions", "max_sessions")),
        Column("available", "可用时段", "availability", False,
               _l("For example Mon P1, Mon P2, Wed P3 or 1-P1 1-P2; or one column per weekday and period "
                  "holding 1 or ✓"),
               ("available",)),
        Column("phone", "手机", "mobile", False,
               _l("The teacher's mainland mobile number: a class teacher is told by SMS of absences nobody "
                  "reported"), ("phone", "mobile number")),
        Column("email", "邮箱", "e-mail", False, _l("The teacher's e-mail address, for the same messages"),
               ("email",)),
        Column("locale", "消息语言", "message language", False,
               _l("The language of those messages: 中文 or English; empty means Chinese"), ("language", "语言")),
        Column("class_of", "班主任班级", "class teacher of", False,
               _l("The class this teacher is class teacher of, as the pupils' class column has it, for example "
                  "3-1; empty means none"), ("class teacher", "班主任")),
        Column("class_grade", "班主任年级", "class teacher grade", False,
               _l("Only when two grades have a class of that name: the class's grade, 1 to 6"),
               ("class grade",)),
    ),
    "sessions": (
        Column("code", "编号", "session code", True, _l("Unique for each session, for example S11"), ("code", "id")),
        Column("activity", "活动", "activity", True, _l("The activity's code or Chinese name")),
        Column("day", "星期", "day", True, _l("Mon to Fri, or 1 to 5"), ("weekday",)),
        Column("period", "时段", "period", True, _l("The period's code, for example P1"), ()),
        Column("room", "教室", "room", False, _l("Where the session meets")),
        Column("capacity", "容量", "capacity", True, _l("The most pupils it takes, 0 or more")),
        Column("grade_lo", "年级下限", "lowest grade", False, _l("1 to 6; empty means 1"), ("grade lo", "grade_min")),
        Column("grade_hi", "年级上限", "highest grade", False, _l("1 to 6; empty means 6"), ("grade hi", "grade_max")),
        Column("pupils_per_teacher", "每位教师学生数", "pupils per teacher", False,
               _l("The most pupils one teacher takes, 1 or more; empty means the capacity"), ("ppt",)),
        Column("min_pupils", "最少人数", "minimum pupils", False,
               _l("The session does not open with fewer pupils; empty means 0"),
               ("min pupils",)),
    ),
}


def _header_key(text: str) -> str:
    return re.sub(r"[\s_]+", "", clean_text(text)).lower()


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file, located by spreadsheet row and column header when it has a place."""

    message: str
    row: int | None = None
    column: str | None = None

    @property
    def text(self) -> str:
        if self.row is not None and self.column:
            return str(_("Row %(row)d, column “%(column)s”: %(message)s", row=self.row, column=self.column,
                         message=self.message))
        if self.row is not None:
            return str(_("Row %(row)d: %(message)s", row=self.row, message=self.message))
        return self.message

    def __str__(self) -> str:
        return self.text


@dataclass
class ImportResult:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[Problem] = field(default_factory=list)
    digest: str = ""
    """The file's SHA-256."""
    confirmation: allocation.ConfirmationNeeded | None = None
    """Set when the file would move published seats: the preview to confirm (nothing was written)."""
    change: allocation.SeatChange | None = None
    """What the import did to the published plan (None when nothing was written)."""

    @property
    def ok(self) -> bool:
        return not self.problems and self.confirmation is None


class ImportRejected(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.text for p in problems))
        self.problems = problems


# ------------------------------------------------------------------------------------------ reading cells


class _Row:
    """A data row read through the column map, collecting problems instead of raising."""

    def __init__(self, number: int, cells: list[Cell], columns: dict[str, int], headers: list[str],
                 problems: list[Problem]) -> None:
        self.number = number
        self.cells = cells
        self.columns = columns
        self.headers = headers
        self.problems = problems
        self.failed = False

    def header(self, key: str) -> str:
        return self.headers[self.columns[key]]

    def fail(self, key_or_header: str, message: str) -> None:
        column = self.header(key_or_header) if key_or_header in self.columns else key_or_header
        self.problems.append(Problem(message, self.number, column))
        self.failed = True

    def cell(self, key: str) -> Cell | None:
        index = self.columns.get(key)
        if index is None or index >= len(self.cells):
            return None
        return self.cells[index]

    def raw(self, key: str) -> Any:
        """The cell's value, or None after reporting formulas without results and Excel error values."""
        cell = self.cell(key)
        if cell is None:
            return None
        return self._checked(key, cell)

    def _checked(self, key: str, cell: Cell) -> Any:
        if cell.formula_without_value:
            self.fail(key, _("the cell holds a formula without a saved result. Open the file in Excel, save "
                             "it and upload it again, or paste the values only."))
            return None
        if isinstance(cell.value, str) and clean_text(cell.value).upper() in EXCEL_ERRORS:
            self.fail(key, _("the cell holds the Excel error %(value)s.", value=clean_text(cell.value)))
            return None
        return cell.value

    def text(self, key: str, *, required: bool = False, max_length: int = 100) -> str:
        value = as_text(self.raw(key))
        bad = control_character(value)
        if bad:
            self.fail(key, _("%(column)s contains the control character %(char)s. Delete it and save the file "
                             "again.", column=self.header(key), char=bad))
            return ""
        if required and not value and not self.failed_on(key):
            self.fail(key, _("%(column)s must not be empty.", column=self.header(key)))
        elif len(value) > max_length:
            self.fail(key, _("%(column)s is longer than %(n)d characters.", column=self.header(key),
                             n=max_length))
        return value

    def date_value(self, key: str, *, required: bool = False) -> date | None:
        """A date cell (an Excel date, or text like 2026-09-01, 2026/9/1, 2026年9月1日)."""
        raw = self.raw(key)
        if self.failed_on(key):
            return None
        if isinstance(raw, datetime):
            return raw.date()
        if isinstance(raw, date):
            return raw
        text = as_text(raw)
        if not text:
            if required:
                self.fail(key, _("%(column)s must not be empty.", column=self.header(key)))
            return None
        match = _DATE_RE.match(text)
        if match is not None:
            try:
                return date(*(int(part) for part in match.groups()))
            except ValueError:
                pass
        self.fail(key, _("“%(value)s” is not a date like 2026-09-01.", value=text))
        return None

    def failed_on(self, key: str) -> bool:
        column = self.header(key) if key in self.columns else key
        return any(p.row == self.number and p.column == column for p in self.problems)

    def integer(self, key: str, low: int, high: int, default: int | None) -> int | None:
        """A whole number within [low, high]; `default` when the column is absent or the cell empty."""
        raw = self.raw(key)
        if self.failed_on(key):
            return None
        text = as_text(raw)
        if not text:
            if default is None:
                self.fail(key, _("%(column)s must not be empty.", column=self.header(key)))
            return default
        number = as_int(raw)
        if number is None:
            self.fail(key, _("“%(value)s” is not a whole number.", value=text))
            return None
        if not low <= number <= high:
            self.fail(key, _("%(column)s must be a whole number from %(low)d to %(high)d.",
                             column=self.header(key), low=low, high=high))
            return None
        return number


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M") if value.time() != time() else value.strftime("%Y-%m-%d")
    if isinstance(value, date | time):
        return value.isoformat()
    return clean_text(str(value))


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or isinstance(value, date | time):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = as_text(value)
    if re.fullmatch(r"[+-]?\d+(\.0+)?", text):
        return int(float(text)) if "." in text else int(text)
    return None


def parse_day(text: str) -> int | None:
    """周一 / 星期一 / 一 / Mon / Monday / 1 -> 1; None when it is not a weekday."""
    text = clean_text(text)
    if text in _ZH_DIGITS:
        return _ZH_DIGITS[text]
    match = _DAY_RE.match(text)
    if match is None or match.end() != len(text):
        return None
    return _day_from_match(match)


def _day_from_match(match: re.Match[str]) -> int:
    zh, en, digit = match.groups()
    if zh:
        return _ZH_DIGITS[zh]
    if en:
        return _EN_DAYS[en.lower()]
    return int(digit)


def parse_slot(text: str, periods: dict[str, Period]) -> tuple[int, Period] | None:
    """"周一P1", "1-P1", "Mon P1" -> (1, period P1); None when either half is not recognised."""
    text = clean_text(text)
    match = _DAY_RE.match(text)
    if match is None:
        return None
    rest = text[match.end():].lstrip(" -_:：.·")
    period = periods.get(rest.lower())
    if period is None:
        return None
    return _day_from_match(match), period


# ------------------------------------------------------------------------------------------ the column map


def _map_columns(kind: str, table: Table) -> tuple[dict[str, int], list[Problem]]:
    columns: dict[str, int] = {}
    problems: list[Problem] = []
    by_name = {name: column for column in COLUMNS[kind] for name in column.names()}
    for index, header in enumerate(table.headers):
        column = by_name.get(_header_key(header)) if header else None
        if column is None:
            continue
        if column.key in columns:
            problems.append(Problem(_("Column “%(column)s” appears twice.", column=header)))
            continue
        columns[column.key] = index
    for column in COLUMNS[kind]:
        if column.required and column.key not in columns:
            problems.append(Problem(_("Required column “%(column)s” is missing (the English header "
                                      "“%(english)s” is accepted too).",
                                      column=column.label, english=column.english)))
    return columns, problems


def _duplicate(row: _Row, key: str, value: str, seen: dict[str, int]) -> bool:
    if not value:
        return False
    first = seen.get(value.lower())
    if first is not None:
        row.fail(key, _("“%(value)s” already appears in row %(first)d.", value=value, first=first))
        return True
    seen[value.lower()] = row.number
    return False


# ------------------------------------------------------------------------------------------ pupils


@dataclass(frozen=True)
class PupilRecord:
    number: str
    name: str
    grade: int
    class_name: str
    family_code: str | None
    priority: int
    tag: GroupTag | None = None
    active: bool | None = True
    """False when the row records the pupil as having left the school (离校); None when the file has no 在读状态
    column, which keeps each pupil's status as it is (an old file never brings back a pupil who left)."""


@dataclass(frozen=True)
class GroupTag:
    """A priority-group tag read from an import row, written like one added on the pupil page."""

    group: PriorityGroup
    note: str
    expires_on: date


def _read_pupils(table: Table, columns: dict[str, int], term: Term | None,
                 problems: list[Problem]) -> list[PupilRecord]:
    levels = list(range(10))
    if term is not None and term.priority_weights:
        levels = sorted(int(level) for level in term.priority_weights)
    groups = {key: group for group in city_groups(active_only=True)
              for key in (group.name_zh.lower(), group.name_en.lower())}
    today = school_today()
    seen: dict[str, int] = {}
    records = []
    for number, cells in table.rows:
        row = _Row(number, cells, columns, table.headers, problems)
        pupil_number = row.text("number", required=True, max_length=64)
        _duplicate(row, "number", pupil_number, seen)
        name = row.text("name", required=True)
        grade = row.integer("grade", 1, MAX_GRADE, None)
        class_name = row.text("class_name", max_length=64)
        family = row.text("family", max_length=64)
        priority = row.integer("priority", 0, 99, 0)
        if priority is not None and priority not in levels:
            row.fail("priority", _("%(column)s must be one of %(levels)s.", column=row.header("priority"),
                                   levels="、".join(str(level) for level in levels)))
        tag = _group_tag(row, groups, today)
        active = _pupil_status(row) if "status" in columns else None
        if not row.failed and grade is not None and priority is not None and (
                active is not None or "status" not in columns):
            records.append(PupilRecord(pupil_number, name, grade, class_name, family or None, priority, tag,
                                       active))
    return records


def _pupil_status(row: _Row) -> bool | None:
    """The row's 在读状态: True on the roll (also when empty), False left the school, None when refused."""
    text = row.text("status", max_length=16)
    if row.failed_on("status"):
        return None
    if not text:
        return True
    active = PUPIL_STATUS.get(text.lower())
    if active is None:
        row.fail("status", _("“%(value)s” is not a status: write 在读 (on the roll) or 离校 (left the school); "
                             "English active or left is accepted too.", value=text))
    return active


def _group_tag(row: _Row, groups: dict[str, PriorityGroup], today: date) -> GroupTag | None:
    """The row's priority group, evidence and expiry: all three or none (an unknown group is refused)."""
    name = row.text("group", max_length=64)
    note = row.text("group_note", max_length=200)
    expires_on = row.date_value("group_expires")
    if not name:
        if note or expires_on:
            row.fail("group", _("%(column)s must not be empty when evidence or an expiry date is given.",
                                column=row.header("group")))
        return None
    group = groups.get(name.lower())
    if group is None:
        known = "、".join(sorted({g.name_zh for g in groups.values()})) or _("none yet")
        row.fail("group", _("“%(value)s” is not one of the city's priority groups (%(groups)s).", value=name,
                            groups=known))
        return None
    if not note:
        row.fail("group_note" if "group_note" in row.columns else "group",
                 _("Say in %(column)s what evidence you saw.", column=_column_name("group_note")))
    if expires_on is None:
        if not row.failed_on("group_expires"):
            row.fail("group_expires" if "group_expires" in row.columns else "group",
                     _("%(column)s must not be empty.", column=_column_name("group_expires")))
    elif expires_on < today:
        row.fail("group_expires", _("%(column)s has already passed.", column=row.header("group_expires")))
    if row.failed or expires_on is None:
        return None
    return GroupTag(group, note, expires_on)


def _column_name(key: str) -> str:
    return next(column.label for column in COLUMNS["pupils"] if column.key == key)


def _write_pupils(records: list[PupilRecord], school: School,
                  result: ImportResult) -> tuple[set[int], set[int]]:
    """Write the pupils; return the ids of existing pupils whose part in the plan changed
    (`allocation.PUPIL_PLAN_FIELDS`: grade, active; a new name, class, family or priority is not) and, among
    them, of those the file records as having left the school."""
    existing = {p.number: p for p in db.session.scalars(select(Pupil).where(Pupil.school_id == school.id))}
    new_rows = []
    reshaped: set[int] = set()
    left: set[int] = set()
    for rec in records:
        values = {"name": rec.name, "grade": rec.grade, "class_name": rec.class_name,
                  "family_code": rec.family_code, "priority": rec.priority}
        if rec.active is not None:
            values["active"] = rec.active
        pupil = existing.get(rec.number)
        if pupil is None:
            new_rows.append({"school_id": school.id, "number": rec.number, "active": True, **values})
            continue
        if pupil.active and rec.active is False:
            left.add(pupil.id)
        updated, plan_changed = _update_parts(pupil, values, allocation.PUPIL_PLAN_FIELDS)
        if updated:
            result.updated += 1
        else:
            result.unchanged += 1
        if plan_changed:
            reshaped.add(pupil.id)
    if new_rows:
        db.session.execute(insert(Pupil), new_rows)
    result.created = len(new_rows)
    tagged = [rec for rec in records if rec.tag is not None]
    if tagged:
        pupils = {p.number: p for p in db.session.scalars(select(Pupil).where(
            Pupil.school_id == school.id, Pupil.number.in_([rec.number for rec in tagged])))}
        today = school_today()
        user_id = current_user.id if has_request_context() and current_user.is_authenticated else None
        for rec in tagged:
            assert rec.tag is not None
            tag_pupil(pupils[rec.number], rec.tag.group, note=rec.tag.note, expires_on=rec.tag.expires_on,
                      today=today, user_id=user_id, commit=False)
    return reshaped, left


def _update(row: Any, values: dict[str, Any]) -> bool:
    changed = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    return changed


def _update_parts(row: Any, values: dict[str, Any], plan_fields: tuple[str, ...]) -> tuple[bool, bool]:
    """Set `values` on `row`; return whether anything changed and whether one of `plan_fields` did."""
    plan_changed = _update(row, {key: value for key, value in values.items() if key in plan_fields})
    other_changed = _update(row, {key: value for key, value in values.items() if key not in plan_fields})
    return plan_changed or other_changed, plan_changed


# ------------------------------------------------------------------------------------------ teachers


@dataclass(frozen=True)
class TeacherRecord:
    code: str
    name: str
    qualifications: list[str]
    max_sessions: int
    available: frozenset[tuple[int, int]] | None
    """(day, period id) pairs; None when the file says nothing about availability."""
    contact: dict[str, str | None] = field(default_factory=dict)
    """`phone`, `email` and `locale` (the language of the teacher's messages), for the columns the file has (an
    empty phone or e-mail removes what is on file)."""
    leads: tuple[tuple[int, str], ...] | None = None
    """The (grade, class name) the teacher is class teacher of; None when the file has no such column."""


def _grid_columns(table: Table, columns: dict[str, int],
                  periods: dict[str, Period]) -> dict[int, tuple[int, Period]]:
    taken = set(columns.values())
    return {index: slot for index, header in enumerate(table.headers)
            if index not in taken and header and (slot := parse_slot(header, periods)) is not None}


def _read_teachers(table: Table, columns: dict[str, int], school: School, term: Term | None,
                   problems: list[Problem]) -> list[TeacherRecord]:
    periods = {p.code.lower(): p for p in term.periods} if term else {}
    weekdays = list(term.weekdays) if term else []
    grid = _grid_columns(table, columns, periods)
    if (grid or "available" in columns) and term is None:
        problems.append(Problem(_("This school has no term yet, so availability cannot be imported. "
                                  "Create a term first.")))
        return []
    seen: dict[str, int] = {}
    records = []
    known = known_qualifications(school.id)
    classes = _school_classes(school) if "class_of" in columns else {}
    led: dict[tuple[int, str], int] = {}
    for number, cells in table.rows:
        row = _Row(number, cells, columns, table.headers, problems)
        code = row.text("code", required=True, max_length=64)
        _duplicate(row, "code", code, seen)
        name = row.text("name", required=True)
        tags = [t for t in _LIST_SPLIT.split(row.text("qualifications", max_length=500)) if t]
        if any(len(t) > 64 for t in tags):
            row.fail("qualifications", _("A qualification tag is longer than 64 characters."))
        elif (refused := unknown_qualification_message(tags, known)) is not None:
            row.fail("qualifications", refused)
        cap = row.integer("max_sessions", 0, 50, 5)
        available: set[tuple[int, int]] | None = None
        if "available" in columns:
            available = set()
            for token in _LIST_SPLIT.split(row.text("available", max_length=2000)):
                if token:
                    _add_slot(row, "available", token, periods, weekdays, available)
        if grid:
            available = available or set()
            for index in grid:
                cell = cells[index] if index < len(cells) else Cell()
                value = as_text(row._checked(table.headers[index], cell)).lower()
                if row.failed_on(table.headers[index]):
                    continue
                if value in _YES:
                    _add_slot(row, table.headers[index], table.headers[index], periods, weekdays, available)
                elif value not in _NO:
                    row.fail(table.headers[index], _("“%(value)s” should be 1, 是 or ✓ for available, or "
                                                     "empty for not available.", value=value))
        contact = _contact(row, columns)
        leads = _class_led(row, columns, classes, led) if "class_of" in columns else None
        if not row.failed and cap is not None:
            records.append(TeacherRecord(code, name, sorted(set(tags)), cap,
                                         frozenset(available) if available is not None else None,
                                         contact, leads))
    return records


LANGUAGE_NAMES = {"zh": "zh", "中文": "zh", "chinese": "zh", "汉语": "zh", "en": "en", "english": "en",
                  "英文": "en", "英语": "en"}
"""What the message-language column accepts (lower case), and the `Teacher.locale` each means."""


def _contact(row: _Row, columns: dict[str, int]) -> dict[str, str | None]:
    """The phone, e-mail and message-language cells the file has, checked (None for an empty phone or e-mail, and
    Chinese for an empty language)."""
    found: dict[str, str | None] = {}
    if "locale" in columns:
        text = row.text("locale", max_length=32)
        found["locale"] = LANGUAGE_NAMES.get(text.lower(), "") if text else "zh"
        if not found["locale"]:
            row.fail("locale", _("“%(value)s” is not a language for messages: use 中文 or English.", value=text))
    if "phone" in columns:
        text = row.text("phone", max_length=32)
        number = normalise_phone(text) if text else ""
        if text and not PHONE_RE.match(number):
            row.fail("phone", _("“%(value)s” is not an 11-digit mainland mobile number.", value=text))
        found["phone"] = number or None
    if "email" in columns:
        text = row.text("email", max_length=EMAIL_MAX)
        if text and not EMAIL_RE.match(text):
            row.fail("email", _("“%(value)s” is not an e-mail address such as name@example.com.", value=text))
        found["email"] = text or None
    return found


def _school_classes(school: School) -> dict[str, tuple[str, set[int]]]:
    """Class name (lower case) -> (its spelling, the grades with an active pupil in a class of that name)."""
    found: dict[str, tuple[str, set[int]]] = {}
    for grade, name in db.session.execute(select(Pupil.grade, Pupil.class_name).where(
            Pupil.school_id == school.id, Pupil.active.is_(True), Pupil.class_name != "").distinct()):
        found.setdefault(name.lower(), (name, set()))[1].add(grade)
    return found


def _class_led(row: _Row, columns: dict[str, int], classes: dict[str, tuple[str, set[int]]],
               led: dict[tuple[int, str], int]) -> tuple[tuple[int, str], ...]:
    """The class named in the row's class-teacher cells, checked against the school's pupils' classes."""
    text = row.text("class_of", max_length=64)
    grade = row.integer("class_grade", 1, MAX_GRADE, 0) if "class_grade" in columns else 0
    if not text:
        if grade:
            row.fail("class_of", _("Give the class as well as its grade."))
        return ()
    spelling, grades = classes.get(text.lower(), (text, set()))
    if not grades:
        row.fail("class_of", _("No pupil of the school is in class “%(value)s”. Import the pupils with their "
                               "class first, or check the spelling.", value=text))
        return ()
    if grade and grade not in grades:
        row.fail("class_grade", _("Class “%(value)s” has no pupils in grade %(grade)d (grades: %(grades)s).",
                                  value=text, grade=grade, grades="、".join(str(g) for g in sorted(grades))))
        return ()
    if not grade and len(grades) > 1:
        row.fail("class_of", _("Grades %(grades)s each have a class “%(value)s”: give the grade in column "
                               "“%(column)s”.", grades="、".join(str(g) for g in sorted(grades)), value=text,
                               column="班主任年级"))
        return ()
    key = (grade or min(grades), spelling)
    first = led.get(key)
    if first is not None:
        row.fail("class_of", _("“%(value)s” already appears in row %(first)d.", value=text, first=first))
        return ()
    led[key] = row.number
    return (key,)


def _add_slot(row: _Row, key: str, token: str, periods: dict[str, Period], weekdays: list[int],
              into: set[tuple[int, int]]) -> None:
    slot = parse_slot(token, periods)
    if slot is None:
        row.fail(key, _("“%(value)s” is not a day and period such as 周一P1 or 1-P1 (periods: %(known)s).",
                        value=token, known="、".join(p.code for p in periods.values())))
    elif slot[0] not in weekdays:
        row.fail(key, _("“%(value)s” is not on a service day of this term (%(days)s).", value=token,
                        days=day_names(weekdays)))
    else:
        into.add((slot[0], slot[1].id))


def _write_teachers(records: list[TeacherRecord], school: School, term: Term | None,
                    result: ImportResult) -> set[int]:
    """Write the teachers and their availability; return the ids of existing teachers whose part in the plan
    changed (`allocation.TEACHER_PLAN_FIELDS` or availability; a new name, contact or class led is not)."""
    existing = {t.code: t for t in db.session.scalars(select(Teacher).where(Teacher.school_id == school.id))}
    current: dict[int, set[tuple[int, int]]] = {}
    if term is not None:
        for teacher_id, day, period_id in db.session.execute(
            select(TeacherAvailability.teacher_id, TeacherAvailability.day, TeacherAvailability.period_id)
            .where(TeacherAvailability.term_id == term.id)
        ):
            current.setdefault(teacher_id, set()).add((day, period_id))
    new_grids: list[tuple[Teacher, frozenset[tuple[int, int]]]] = []
    leading: dict[int, set[tuple[int, str]]] = {}
    for row in db.session.scalars(select(ClassTeacher).where(ClassTeacher.school_id == school.id)):
        leading.setdefault(row.teacher_id, set()).add((row.grade, row.class_name))
    changed: set[int] = set()
    for rec in records:
        values = {"name": rec.name, "qualifications": rec.qualifications, "max_sessions": rec.max_sessions,
                  "active": True, **rec.contact}
        teacher = existing.get(rec.code)
        if teacher is None:
            teacher = Teacher(school_id=school.id, code=rec.code, **values)
            db.session.add(teacher)
            existing[rec.code] = teacher
            result.created += 1
            if rec.available:
                new_grids.append((teacher, rec.available))
            continue
        grid_changed = rec.available is not None and current.get(teacher.id, set()) != rec.available
        if grid_changed and rec.available is not None:
            new_grids.append((teacher, rec.available))
        class_changed = rec.leads is not None and leading.get(teacher.id, set()) != set(rec.leads)
        updated, plan_changed = _update_parts(teacher, values, allocation.TEACHER_PLAN_FIELDS)
        plan_changed |= grid_changed
        if updated or class_changed or plan_changed:
            result.updated += 1
        else:
            result.unchanged += 1
        if plan_changed:
            changed.add(teacher.id)
    _write_class_teachers(records, school, existing)
    if term is None or not new_grids:
        return changed
    db.session.flush()
    ids = [teacher.id for teacher, _grid in new_grids]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        db.session.execute(delete(TeacherAvailability).where(
            TeacherAvailability.term_id == term.id, TeacherAvailability.teacher_id.in_(chunk)))
    rows = [{"teacher_id": teacher.id, "term_id": term.id, "day": day, "period_id": period_id}
            for teacher, grid in new_grids for day, period_id in sorted(grid)]
    if rows:
        db.session.execute(insert(TeacherAvailability), rows)
    for teacher, _grid in new_grids:
        db.session.expire(teacher, ["availability"])
    return changed


def _write_class_teachers(records: list[TeacherRecord], school: School, teachers: dict[str, Teacher]) -> None:
    """The file's class teachers: each listed teacher leads the class of their row (or none when it is empty);
    a class led by someone else before passes to the teacher named in the file."""
    listed = [rec for rec in records if rec.leads is not None]
    if not listed:
        return
    db.session.flush()
    rows = {(row.grade, row.class_name): row for row in db.session.scalars(
        select(ClassTeacher).where(ClassTeacher.school_id == school.id))}
    wanted = {key: teachers[rec.code].id for rec in listed for key in rec.leads or ()}
    listed_ids = {teachers[rec.code].id for rec in listed}
    for key, lead in list(rows.items()):
        if lead.teacher_id in listed_ids and key not in wanted:
            db.session.delete(lead)
            del rows[key]
    for (grade, class_name), teacher_id in wanted.items():
        found = rows.get((grade, class_name))
        if found is None:
            db.session.add(ClassTeacher(school_id=school.id, grade=grade, class_name=class_name,
                                        teacher_id=teacher_id))
        else:
            found.teacher_id = teacher_id


# ------------------------------------------------------------------------------------------ sessions


@dataclass(frozen=True)
class SessionRecord:
    code: str
    activity: Activity
    day: int
    period: Period
    room: str
    capacity: int
    grade_lo: int
    grade_hi: int
    pupils_per_teacher: int
    min_pupils: int


def _read_sessions(table: Table, columns: dict[str, int], term: Term,
                   problems: list[Problem]) -> list[SessionRecord]:
    periods = {p.code.lower(): p for p in term.periods}
    activities: dict[str, Activity] = {}
    activity: Activity | None
    for activity in term.activities:
        activities.setdefault(activity.name.lower(), activity)
    for activity in term.activities:
        activities[activity.code.lower()] = activity
    known_activities = "、".join(f"{a.code}（{a.name}）"
                                for a in sorted(term.activities, key=lambda a: a.code))
    seen: dict[str, int] = {}
    records = []
    for number, cells in table.rows:
        row = _Row(number, cells, columns, table.headers, problems)
        code = row.text("code", required=True, max_length=64)
        _duplicate(row, "code", code, seen)
        activity_text = row.text("activity", required=True)
        activity = activities.get(activity_text.lower())
        if activity_text and activity is None:
            row.fail("activity", _("“%(value)s” is not an activity of this term. Known activities: "
                                   "%(known)s.", value=activity_text, known=known_activities or "—"))
        day_text = row.text("day", required=True)
        day = parse_day(day_text) if day_text else None
        if day_text and day is None:
            row.fail("day", _("“%(value)s” is not a weekday; write 周一 to 周五 or 1 to 5.", value=day_text))
        elif day is not None and day not in term.weekdays:
            row.fail("day", _("“%(value)s” is not a service day of this term (%(days)s).", value=day_text,
                              days=day_names(term.weekdays)))
        period_text = row.text("period", required=True)
        period = periods.get(period_text.lower())
        if period_text and period is None:
            row.fail("period", _("“%(value)s” is not a period of this term. Known periods: %(known)s.",
                                 value=period_text, known="、".join(p.code for p in term.periods) or "—"))
        room = row.text("room")
        capacity = row.integer("capacity", 0, 2000, None)
        grade_lo = row.integer("grade_lo", 1, MAX_GRADE, 1)
        grade_hi = row.integer("grade_hi", 1, MAX_GRADE, MAX_GRADE)
        if grade_lo is not None and grade_hi is not None and grade_lo > grade_hi:
            row.fail("grade_lo" if "grade_lo" in columns else "grade_hi",
                     _("the lowest grade %(low)d is above the highest grade %(high)d.",
                       low=grade_lo, high=grade_hi))
        per_teacher = row.integer("pupils_per_teacher", 1, 2000, max(1, capacity or 1))
        min_pupils = row.integer("min_pupils", 0, 2000, 0)
        if (row.failed or activity is None or day is None or period is None or capacity is None
                or grade_lo is None or grade_hi is None or per_teacher is None or min_pupils is None):
            continue
        records.append(SessionRecord(code, activity, day, period, room, capacity, grade_lo, grade_hi,
                                     per_teacher, min_pupils))
    return records


def _write_sessions(records: list[SessionRecord], term: Term, result: ImportResult) -> set[int]:
    """Write the sessions; return the ids of existing sessions whose part in the plan changed
    (`allocation.SESSION_PLAN_FIELDS`; a new room is not)."""
    existing = {s.code: s for s in db.session.scalars(select(Session).where(Session.term_id == term.id))}
    changed: set[int] = set()
    for rec in records:
        values = {"activity_id": rec.activity.id, "day": rec.day, "period_id": rec.period.id,
                  "room": rec.room, "capacity": rec.capacity, "grade_lo": rec.grade_lo,
                  "grade_hi": rec.grade_hi, "pupils_per_teacher": rec.pupils_per_teacher,
                  "min_pupils": rec.min_pupils}
        session = existing.get(rec.code)
        if session is None:
            db.session.add(Session(term_id=term.id, code=rec.code, **values))
            result.created += 1
            continue
        updated, plan_changed = _update_parts(session, values, allocation.SESSION_PLAN_FIELDS)
        if updated:
            result.updated += 1
        else:
            result.unchanged += 1
        if plan_changed:
            changed.add(session.id)
    return changed


# ------------------------------------------------------------------------------------------ entry points


def check_file(kind: str, filename: str, data: bytes, school: School, term: Term | None) -> list[Any]:
    """The records a file would write; raise ImportRejected listing every problem when there is any."""
    if kind not in KINDS:
        raise ValueError(f"unknown import kind {kind!r}")
    try:
        table = read_table(filename, data)
    except FileRejected as exc:
        raise ImportRejected([Problem(str(exc))]) from None
    columns, problems = _map_columns(kind, table)
    if problems:
        raise ImportRejected(problems)
    if not table.rows:
        raise ImportRejected([Problem(_("The file has a header row but no data rows."))])
    records: list[Any]
    if kind == "pupils":
        records = _read_pupils(table, columns, term, problems)
    elif kind == "teachers":
        records = _read_teachers(table, columns, school, term, problems)
    else:
        if term is None:
            raise ImportRejected([Problem(_("This school has no term yet. Create a term before importing "
                                            "sessions."))])
        records = _read_sessions(table, columns, term, problems)
    if problems:
        raise ImportRejected(problems)
    return records


def import_file(kind: str, filename: str, data: bytes, school: School, term: Term | None, *,
                confirm: allocation.Confirm | None = None) -> ImportResult:
    """Check the whole file, then write it in one transaction (or nothing, with every problem listed).

    The write goes through `allocation.import_rows`: after publication a file that changes what the plan rests on
    (`allocation.PUPIL_PLAN_FIELDS`, `SESSION_PLAN_FIELDS`, `TEACHER_PLAN_FIELDS`) is an amendment of it (any other
    is simply saved), and with `confirm` (the import screen) a file that moves published seats is previewed first
    (`result.confirmation`, nothing written) and applied only when the admin confirms that preview of this
    very file (the token binds its SHA-256).
    """
    result = ImportResult(kind)
    try:
        records = check_file(kind, filename, data, school, term)
    except ImportRejected as exc:
        result.problems = exc.problems
        return result
    result.rows = len(records)
    result.digest = held_uploads.file_digest(data)

    def write() -> allocation.Imported:
        result.created = result.updated = result.unchanged = 0
        if kind == "pupils":  # a new pupil has asked for nothing yet: no part of the plan
            reshaped, left = _write_pupils(records, school, result)
            touched = allocation.Imported(pupils=frozenset(reshaped), left=frozenset(left))
        elif kind == "teachers":
            changed = _write_teachers(records, school, term, result)
            touched = allocation.Imported(teachers=frozenset(changed), added=result.created > 0)
        else:
            assert term is not None
            changed = _write_sessions(records, term, result)
            touched = allocation.Imported(sessions=frozenset(changed), added=result.created > 0)
        record(f"{kind}.import", f"term:{term.id}" if term else f"school:{school.id}",
               {"rows": result.rows, "created": result.created, "updated": result.updated,
                "unchanged": result.unchanged, "sha256": result.digest}, school_id=school.id)
        return touched

    actor = current_user if has_request_context() and current_user.is_authenticated else None
    try:
        result.change = allocation.import_rows(term, kind, write, actor=actor, confirm=confirm,
                                               digest=result.digest)
    except allocation.ConfirmationNeeded as needed:
        result.confirmation = needed
    except allocation.AllocationError as exc:
        result.problems = [Problem(_(str(exc)))]
        if isinstance(exc, allocation.RuleBroken):
            result.problems += [Problem(problem) for problem in exc.problems]
        result.created = result.updated = result.unchanged = 0
    except Exception:
        log.exception("import of %s for school %s failed", kind, school.id)
        result.problems = [Problem(_("The import could not be saved; nothing was changed. "
                                     "Please try again."))]
        result.created = result.updated = result.unchanged = 0
    return result


# ------------------------------------------------------------------------------------------ templates


def template_headers(kind: str, term: Term | None = None) -> list[str]:
    return [column.label for column in COLUMNS[kind]]


def template_notes(kind: str) -> list[list[str]]:
    lines = [["列名", "说明"]]
    with force_locale("zh"):
        for column in COLUMNS[kind]:
            required = "（必填）" if column.required else "（选填）"
            lines.append([column.label, f"{required}{column.help}；英文表头 {column.english} 亦可"])
    lines.append(["", "第一张工作表第 1 行是表头，从第 2 行起每行一条记录；"
                      "重复导入时按编号更新，不会重复添加。"])
    return lines


def template_file(kind: str, fmt: str) -> bytes:
    """The blank template for `kind` as .xlsx (header row plus an explanation sheet) or UTF-8 .csv."""
    headers = template_headers(kind)
    if fmt == "csv":
        return _write_csv(headers)
    titles = {"pupils": "学生", "teachers": "教师", "sessions": "课程班"}
    return _write_xlsx(headers, template_notes(kind), titles[kind], "填写说明")
