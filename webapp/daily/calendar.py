"""Which dates have after-school service, which weekday's timetable runs, and by when pupils are collected.

Pure: `service_day` takes `CalendarRules` (built from the database by `webapp.daily.roster.calendar_rules`)
and a date, and touches nothing else. Times are the school's local wall-clock times (the app's `TIMEZONE`);
`cutoff_passed` turns the app's naive-UTC clock into that with `webapp.labels.to_local`, the one conversion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum

from webapp.labels import to_local
from webapp.models import CalendarDayKind

DEFAULT_CUTOFF = "12:00"


class DayReason(StrEnum):
    """Why a date has the service it has (`ServiceDay.reason`)."""

    REGULAR = "regular"
    OUTSIDE_TERM = "outside_term"
    HOLIDAY = "holiday"
    NO_SERVICE_WEEKDAY = "no_service_weekday"
    MAKEUP = "makeup"
    EARLY_CLOSE = "early_close"
    SEASONAL = "seasonal"


@dataclass(frozen=True)
class DayException:
    kind: CalendarDayKind
    runs_weekday: int | None = None
    pickup_time: str = ""


@dataclass(frozen=True)
class CalendarRules:
    """A term's dates as plain values: first and last day, service weekdays, exceptions, seasonal windows."""

    first_day: date
    last_day: date
    weekdays: frozenset[int]
    exceptions: Mapping[date, DayException] = field(default_factory=dict)
    windows: tuple[tuple[date, date, str], ...] = ()
    """(starts_on, ends_on, pickup_time), inclusive."""
    absence_cutoff: str = DEFAULT_CUTOFF


@dataclass(frozen=True)
class ServiceDay:
    """One date: whether there is service, which weekday's timetable runs, and the latest pickup (or None)."""

    on: date
    service: bool
    weekday: int | None
    ends_by: str | None
    reason: DayReason


def service_day(rules: CalendarRules, on: date) -> ServiceDay:
    """The service on `on`: holidays have none; a 调休 day runs another weekday's timetable; an early-close
    day or a seasonal window sets the latest pickup (the earlier of the two when both apply)."""
    if not rules.first_day <= on <= rules.last_day:
        return ServiceDay(on, False, None, None, DayReason.OUTSIDE_TERM)
    exception = rules.exceptions.get(on)
    if exception is not None and exception.kind == CalendarDayKind.HOLIDAY:
        return ServiceDay(on, False, None, None, DayReason.HOLIDAY)
    reason = DayReason.REGULAR
    weekday = on.isoweekday()
    if exception is not None and exception.kind == CalendarDayKind.MAKEUP and exception.runs_weekday:
        weekday, reason = exception.runs_weekday, DayReason.MAKEUP
    if weekday not in rules.weekdays:
        return ServiceDay(on, False, None, None, DayReason.NO_SERVICE_WEEKDAY)
    ends_by: str | None = None
    for starts_on, ends_on, pickup in rules.windows:
        if starts_on <= on <= ends_on:
            ends_by, reason = pickup, DayReason.SEASONAL if reason == DayReason.REGULAR else reason
    if exception is not None and exception.kind == CalendarDayKind.EARLY_CLOSE and exception.pickup_time:
        if ends_by is None or exception.pickup_time < ends_by:
            ends_by = exception.pickup_time
        reason = DayReason.EARLY_CLOSE
    return ServiceDay(on, True, weekday, ends_by, reason)


def cutoff_passed(rules: CalendarRules, on: date, now_utc: datetime) -> bool:
    """Whether parents may no longer report or cancel an absence for `on` (local cutoff time on that day)."""
    hours, minutes = (int(part) for part in rules.absence_cutoff.split(":"))
    return to_local(now_utc) >= datetime.combine(on, time(hours, minutes))
