"""Weekday names and displayed times in the reader's language, for views, templates and messages.

`DAY_NAMES[3]` is "周三" or "Wed" depending on the request's language, so a module-level mapping serves every
request; spreadsheets written for schools use `weekday_name(day, "zh")` directly (`scheduler.weekdays` spells them).

Every time a person reads is shown in the one configured zone, `TIMEZONE` (default Asia/Shanghai): the database
keeps naive UTC, `show_time` formats it and `to_local`/`from_local` convert form fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any, NamedTuple, Protocol, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from flask import current_app, has_app_context, has_request_context
from flask_babel import LazyString, force_locale, format_date, format_datetime, get_locale
from flask_babel import lazy_gettext as _l

from scheduler.explain import REASON_ZH, reason_text
from scheduler.weekdays import WEEKDAYS, weekday_name


def current_language() -> str:
    """The language of the current request; Chinese outside a request (CLI, jobs)."""
    locale = get_locale() if has_request_context() else None
    return str(locale or "zh")


class _DayNames(Mapping[int, str]):
    """Day number -> its name in the current language."""

    def __init__(self, *, long: bool) -> None:
        self.long = long

    def __getitem__(self, day: int) -> str:
        if day not in WEEKDAYS:
            raise KeyError(day)
        return weekday_name(day, current_language(), long=self.long)

    def __iter__(self) -> Iterator[int]:
        return iter(WEEKDAYS)

    def __len__(self) -> int:
        return len(WEEKDAYS)


DAY_NAMES: Mapping[int, str] = _DayNames(long=False)
"""周一 … 周日 / Mon … Sun."""
DAY_NAMES_LONG: Mapping[int, str] = _DayNames(long=True)
"""星期一 … 星期日 / Monday … Sunday (printed roster headings)."""


def day_names(days: list[int] | tuple[int, ...]) -> str:
    """"周一、周三" / "Mon, Wed"."""
    separator = ", " if current_language().startswith("en") else "、"
    return separator.join(DAY_NAMES.get(day, str(day)) for day in days)


DEFAULT_TIMEZONE = "Asia/Shanghai"


def check_timezone(name: object) -> str:
    """The `TIMEZONE` setting, refused at start-up with a sentence when it names no zone."""
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise click.ClickException(f"TIMEZONE: {name!r} is not a time zone name such as Asia/Shanghai") from error
    return str(name)


def local_zone() -> ZoneInfo:
    """The zone every displayed time is in: the app's `TIMEZONE`."""
    name = current_app.config.get("TIMEZONE", DEFAULT_TIMEZONE) if has_app_context() else DEFAULT_TIMEZONE
    return ZoneInfo(name)


@overload
def to_local(moment: datetime) -> datetime: ...
@overload
def to_local(moment: None) -> None: ...


def to_local(moment: datetime | None) -> datetime | None:
    """Naive UTC from the database -> naive local time (the school's wall clock), for form fields and cutoffs."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC).astimezone(local_zone()).replace(tzinfo=None)


def zone_label() -> str:
    """The configured zone as staff say it: "China time (UTC+8)" / 北京时间（UTC+8） for Asia/Shanghai, otherwise the
    zone's name and its offset now ("Asia/Urumqi (UTC+6)")."""
    zone = local_zone()
    offset = datetime.now(zone).strftime("%z")  # "+0800"
    utc = f"UTC{offset[0]}{int(offset[1:3])}" + (f":{offset[3:]}" if offset[3:] != "00" else "")
    if zone.key == DEFAULT_TIMEZONE:
        return str(_l("China time (%(utc)s)")) % {"utc": utc}
    return f"{zone.key} ({utc})"


def local_date(moment: datetime) -> date:
    """The date a naive-UTC instant falls on in the configured zone (the school's "today")."""
    return moment.replace(tzinfo=UTC).astimezone(local_zone()).date()


def from_local(moment: datetime | None) -> datetime | None:
    """A naive local time typed into a form -> naive UTC for the database."""
    if moment is None:
        return None
    return moment.replace(tzinfo=local_zone()).astimezone(UTC).replace(tzinfo=None)


def show_time(value: datetime | None) -> str:
    """A naive-UTC datetime as the reader sees it, in the configured zone: 2026-09-01 08:00."""
    return str(format_datetime(value, "yyyy-MM-dd HH:mm")) if value else ""


def show_date(value: date | None) -> str:
    return str(format_date(value, "yyyy-MM-dd")) if value else ""


def class_label(grade: int | None, class_name: str) -> str:
    """A class as people say it, in the current language: 3年级 3-1 / Grade 3 3-1 (the name alone without a grade)."""
    if not isinstance(grade, int) or isinstance(grade, bool):
        return class_name
    grade_text = str(_l("Grade %(grade)d", grade=grade))
    return f"{grade_text} {class_name}".strip()


RELATION_LABELS: dict[str, LazyString] = {
    "mother": _l("Mother"),
    "father": _l("Father"),
    "grandparent": _l("Grandparent"),
    "other": _l("Other guardian"),
}
"""A guardian's relation to the child: the stored code -> its name in the reader's language."""


def relation_label(code: str | None) -> str:
    """"mother" -> 母亲 / Mother; a relation typed in before the codes existed is shown as it is."""
    return str(RELATION_LABELS.get(code or "", code or ""))


SOLVER_STATUS_LABELS: dict[str, LazyString] = {
    "OPTIMAL": _l("Best possible plan"),
    "FEASIBLE": _l("Good plan, not proven best"),
    "INFEASIBLE": _l("No plan fits the rules"),
    "UNKNOWN": _l("No plan found in time"),
    "IMPORTED": _l("Plan imported with the data"),
}
"""What the solver's answer (`scheduler.domain.Status`) means for a school."""


def solver_status(status: str | None) -> str:
    return str(SOLVER_STATUS_LABELS.get(status or "", status or ""))


SEAT_POLICY_LABELS: dict[str, LazyString] = {
    "spread": _l("As many families as possible get a day"),
    "whole_week": _l("As many pupils as possible get the whole week"),
}
"""Who among equals gets the seats (`scheduler.domain.SEAT_POLICIES`), in the school's words."""


def seat_policy_label(policy: str | None) -> str:
    return str(SEAT_POLICY_LABELS.get(policy or "", policy or ""))


class StoredReason(Protocol):
    code: str
    day: int
    reason: str
    params: dict[str, Any] | None


def unserved_reason(row: StoredReason, lang: str | None = None) -> str:
    """Why a pupil-day is uncovered, in `lang` (default: the reader's), from the stored code and parameters;
    the stored (Chinese) sentence when they are missing."""
    params = row.params
    if row.code in REASON_ZH and params:
        try:
            return reason_text(row.code, {**params, "day": params.get("day", row.day)},
                               lang or ("en" if current_language().startswith("en") else "zh"))
        except (KeyError, IndexError, ValueError):
            pass
    return row.reason


TERM_ID = re.compile(r"^\s*(\d{4})\s*[-_ ]\s*(spring|summer|autumn|fall|winter)\s*$", re.IGNORECASE)
SEASONS: dict[str, LazyString] = {
    "spring": _l("Spring term %(year)s"),
    "summer": _l("Summer term %(year)s"),
    "autumn": _l("Autumn term %(year)s"),
    "fall": _l("Autumn term %(year)s"),
    "winter": _l("Winter term %(year)s"),
}


def term_label(name: str | None, lang: str | None = None) -> str:
    """A term as people name it: an id-like name ("2026-autumn", as instance files and the demo write it) becomes
    "2026年秋季学期" / "Autumn term 2026" (in `lang`, default the reader's); any other name is shown as typed."""
    found = TERM_ID.match(name or "")
    if found is None:
        return name or ""
    season = SEASONS[found.group(2).lower()]
    if lang is None or not has_request_context():
        return str(season) % {"year": found.group(1)}
    with force_locale(lang):
        return str(season) % {"year": found.group(1)}


def clock_span(start: str, end: str) -> str:
    """"15:30–16:20": how a period is shown to families (never its code)."""
    return f"{start}–{end}"


def period_clocks(periods: Iterable[Any]) -> dict[str, str]:
    """Period code -> its clock span, for rows with `code`, `start` and `end` (a term's periods)."""
    return {period.code: clock_span(period.start, period.end) for period in periods}


class FixedReason(NamedTuple):
    stored: str
    """As `webapp.allocation` writes it on the amendment (English)."""
    reading: LazyString
    """How it reads in the reader's language."""


IMPORT_REASONS: dict[str, FixedReason] = {
    "sessions": FixedReason("sessions imported from a spreadsheet", _l("Sessions imported from a spreadsheet")),
    "teachers": FixedReason("teachers imported from a spreadsheet", _l("Teachers imported from a spreadsheet")),
    "pupils": FixedReason("pupils imported from a spreadsheet", _l("Pupils imported from a spreadsheet")),
    "left": FixedReason("pupils left the school", _l("Pupils left the school")),
}
"""The reason of an import under a published plan when the admin gave none, per kind of file."""

AMENDMENT_REASONS: tuple[tuple[re.Pattern[str], LazyString], ...] = tuple(
    (re.compile(pattern), label) for pattern, label in (
    (r"^run (?P<run>\d+) published as run version (?P<version>\d+)$",
     _l("Run %(run)s published as run version %(version)s")),
    (r"^change request (?P<id>\d+) applied$", _l("Change request %(id)s applied")),
    (r"^offer (?P<id>\d+) accepted$", _l("Offer %(id)s accepted")),
    (r"^offer (?P<id>\d+) declined$", _l("Offer %(id)s declined")),
    (r"^(?P<n>\d+) offers expired$", _l("%(n)s offers expired")),
    (r"^placement set to (?P<placement>\w+)$", _l("Waitlist placement set to %(placement)s")),
    (r"^freed seats placed from the waitlist$", _l("Freed seats placed from the waitlist")),
    (r"^placed by the school from the waitlist: (?P<reason>.*)$",
     _l("Placed by the school from the waitlist: %(reason)s")),
    (r"^seat of (?P<pupil>\S+) in (?P<session>\S+) removed$", _l("Seat of %(pupil)s in %(session)s removed")),
    (r"^the family withdrew its request$", _l("The family withdrew its request")),
    (r"^session (?P<code>\S+) edited$", _l("Session %(code)s edited")),
    (r"^session (?P<code>\S+) deleted$", _l("Session %(code)s deleted")),
    (r"^teacher (?P<code>\S+) edited$", _l("Teacher %(code)s edited")),
    (r"^teacher (?P<code>\S+) edited \(freed seats placed\)$", _l("Teacher %(code)s edited (freed seats placed)")),
    (r"^teacher (?P<code>\S+) deleted$", _l("Teacher %(code)s deleted")),
    *((f"^{re.escape(reason.stored)}$", reason.reading) for reason in IMPORT_REASONS.values()),
))
"""The reasons `webapp.allocation` writes on an amendment when nobody gave one (English, as stored), and how
they read in the reader's language; a reason a person typed matches none and is shown as typed."""


def amendment_reason(text: str | None) -> str:
    """A plan version's reason in the reader's language: "session S11 edited" -> 课程班 S11 已修改."""
    for pattern, label in AMENDMENT_REASONS:
        found = pattern.match(text or "")
        if found is not None:
            return str(label) % found.groupdict()
    return text or ""
