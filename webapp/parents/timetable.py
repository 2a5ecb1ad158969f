"""What a family reads about a published result: the week as a grid of days × clock times, and why a day
is not covered, in plain words.

The school's staff read the solver's reasons (`scheduler.explain`, with period codes and the model's terms);
a parent reads these instead: clock times for periods, no codes, and what a waiting-list place means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext

from scheduler.weekdays import WEEKDAYS, weekday_name
from webapp.labels import clock_span


def plain_reason(code: str, params: Mapping[str, Any] | None, day: int, clocks: Mapping[str, str],
                 fallback: str, lang: str = "zh") -> str:
    """Why `day` is not covered, for a parent (day names in `lang`); `fallback`, the stored sentence, for an
    unknown code or a row stored before reasons carried their parameters."""
    if not params:
        return fallback
    values = dict(params)
    period = str(values.get("period", ""))
    when = clocks.get(period, period)
    common = {"day": _day(day, lang), "time": when, "grade": values.get("grade", ""),
              "seats": values.get("seats", ""), "demand": values.get("demand", "")}
    if code == "no_session":
        return gettext("The school offers no session for grade %(grade)s on %(day)s at %(time)s.", **common)
    if code == "no_teacher":
        return gettext("No teacher was free to lead a session for grade %(grade)s on %(day)s at %(time)s.",
                       **common)
    if code == "no_seat":
        return gettext("All %(seats)s places for grade %(grade)s on %(day)s at %(time)s are taken: "
                       "%(demand)s children asked for them.", **common)
    if code == "min_pupils":
        return gettext("%(activity)s on %(day)s at %(time)s runs only with at least %(least)s children, and "
                       "only %(demand)s asked for it.", activity=values.get("activity", ""),
                       least=values.get("min_pupils", ""), **common)
    if code == "lost_to_priority":
        return gettext("The %(seats)s places for grade %(grade)s on %(day)s at %(time)s went to children the "
                       "school's published priority rules put first (%(demand)s children asked).", **common)
    if code == "partial_day":
        return gettext("Only part of %(day)s could be arranged: %(time)s is missing, so the day is not covered "
                       "until your pickup time.", **common)
    if code == "not_assigned":
        return gettext("A place was still free on %(day)s at %(time)s but your child was not placed; the "
                       "school can still place your child by hand.", **common)
    return fallback


def waitlist_text(position: int, day: int, lang: str = "zh") -> str:
    """What a waiting-list place means, in a sentence."""
    return gettext("Your child is number %(n)d on the waiting list for %(day)s. If a place becomes free, it is "
                   "offered to you here, and you decide whether to take it.", n=position, day=_day(day, lang))


def _day(day: int, lang: str) -> str:
    return weekday_name(day, lang) if day in WEEKDAYS else str(day)


@dataclass(frozen=True)
class GridCell:
    """One day at one clock time: the session the child attends, or nothing arranged."""

    slot: Any | None
    """A `service.Slot`, or None."""
    uncovered: bool
    """The day was requested but is not covered (the reason is in the day's note)."""


@dataclass(frozen=True)
class GridRow:
    time: str
    cells: list[GridCell]


@dataclass(frozen=True)
class WeekGrid:
    """Columns are the requested days, rows the clock times the child needs (from the periods requested)."""

    days: list[int]
    rows: list[GridRow]

    def day_cells(self, index: int) -> list[tuple[str, GridCell]]:
        """The day at column `index`, as (clock time, cell) pairs: the phone's day-by-day view."""
        return [(row.time, row.cells[index]) for row in self.rows]


def week_grid(slots: Sequence[Any], days: Sequence[int], periods: Sequence[Any], needed: Sequence[str],
              uncovered_days: Sequence[int]) -> WeekGrid:
    """The grid of `days` × the `periods` (ordered rows with code/start/end) whose code is in `needed`."""
    rows: list[GridRow] = []
    missing = set(uncovered_days)
    for period in periods:
        if period.code not in needed:
            continue
        cells = []
        for day in days:
            found = next((s for s in slots if s.day == day and (s.start, s.end) == (period.start, period.end)),
                         None)
            cells.append(GridCell(found, found is None and day in missing))
        rows.append(GridRow(clock_span(period.start, period.end), cells))
    return WeekGrid(list(days), rows)
