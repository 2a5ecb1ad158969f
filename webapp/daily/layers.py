"""A term's effective calendar: the city's, then the district's, then the school's own, computed when read.

The city (a `BureauCalendar` without a district) and a district publish calendars for a term name; every school
term of that name inherits the published ones of the city and of the school's district. Precedence is
school > district > city:

- the term's first and last day come from the most specific layer that gives them (a school's own calendar may
  leave them to the bureau, `SchoolCalendar.first_day` None);
- a dated entry (holiday, 调休, early close) of a more specific layer replaces the other layers' entry of the
  same date; the replaced one is still shown, marked as overridden;
- on a date covered by seasonal windows of several layers, the most specific layer's window applies;
- the absence cutoff is the school's (12:00 when the school has no calendar of its own).

The rule is written once (`term_dates`, `entries_in_force`, `window_order`, `absence_cutoff`): the whole calendar
(`effective_calendar`) and one date read in one statement (`rules_on`) both apply it.

Nothing is copied into the school: a change the bureau makes after publication is what every school reads
next, and the roster for a date (`webapp.daily.roster.calendar_rules`) always uses this calendar.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum
from typing import Any, TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import aliased

from webapp.daily.calendar import DEFAULT_CUTOFF, CalendarRules, DayException
from webapp.extensions import db
from webapp.models import BureauCalendar, CalendarDay, CalendarDayKind, PickupWindow, School, SchoolCalendar, Term


class Source(IntEnum):
    """Where an entry comes from; a higher value takes precedence."""

    CITY = 1
    DISTRICT = 2
    SCHOOL = 3


SOURCE_NAMES = {Source.CITY: _l("City bureau"), Source.DISTRICT: _l("District bureau"),
                Source.SCHOOL: _l("This school")}


@dataclass(frozen=True)
class Layer:
    source: Source
    first_day: date | None
    last_day: date | None
    days: Sequence[CalendarDay]
    windows: Sequence[PickupWindow]
    changed_at: datetime | None = None
    """When the bureau last changed its calendar (None for the school's own layer)."""


@dataclass(frozen=True)
class Entry:
    """One dated entry as the school sees it: which layer gave it and whether a more specific one replaced it."""

    day: CalendarDay
    source: Source
    overridden: bool


@dataclass(frozen=True)
class Window:
    window: PickupWindow
    source: Source


@dataclass(frozen=True)
class EffectiveCalendar:
    first_day: date
    last_day: date
    absence_cutoff: str
    entries: tuple[Entry, ...]
    windows: tuple[Window, ...]
    layers: tuple[Layer, ...]

    def in_force(self) -> dict[date, Entry]:
        return {entry.day.day: entry for entry in self.entries if not entry.overridden}


# ------------------------------------------------------------------------------------------ the precedence, once
# `effective_calendar` (the whole calendar, for the page and `rules_of`) and `rules_on` (one date, from one
# statement's rows, for the roll-call) both resolve their layers here.

Payload = TypeVar("Payload")


def term_dates(layers: Iterable[tuple[Source, date | None, date | None]]) -> tuple[date, date] | None:
    """The term's first and last day: those of the most specific layer that gives both; None when none does."""
    given = [(source, first, last) for source, first, last in layers if first is not None and last is not None]
    if not given:
        return None
    _source, first, last = max(given, key=lambda layer: layer[0])
    return first, last


def entries_in_force(entries: Iterable[tuple[date, Source, Payload]]) -> dict[date, tuple[Source, Payload]]:
    """Per date, the entry of the most specific layer that has one: it replaces the other layers' entries of that
    date (a layer has at most one entry a date)."""
    in_force: dict[date, tuple[Source, Payload]] = {}
    for on, source, entry in entries:
        if on not in in_force or source > in_force[on][0]:
            in_force[on] = (source, entry)
    return in_force


def window_order(source: Source, starts_on: date, window_id: int) -> tuple[int, date, int]:
    """The order seasonal windows go in: `webapp.daily.calendar.service_day` applies the last window that covers
    a date, so least specific layer first (the school's beats the district's beats the city's), then by first
    day, then the newer row last."""
    return int(source), starts_on, window_id


def absence_cutoff(own: str | None) -> str:
    """The absence cutoff is the school's alone; 12:00 while the school has not set one."""
    return own or DEFAULT_CUTOFF


def published_for(term: Term) -> list[BureauCalendar]:
    """The published bureau calendars a term inherits: the city's and its school's district's, city first."""
    district = select(School.district_id).where(School.id == term.school_id).scalar_subquery()
    found = db.session.scalars(select(BureauCalendar).where(
        BureauCalendar.term_name == term.name, BureauCalendar.published_at.is_not(None),
        or_(BureauCalendar.district_id.is_(None), BureauCalendar.district_id == district)))
    return sorted(found, key=lambda c: c.district_id is not None)


def school_calendar(term: Term) -> SchoolCalendar | None:
    return db.session.scalar(select(SchoolCalendar).where(SchoolCalendar.term_id == term.id))


def effective_calendar(term: Term) -> EffectiveCalendar | None:
    """The term's calendar with every layer applied, or None when no layer gives the term's dates.

    Four queries whatever the layers (the bureau's calendars, the school's, then every layer's entries and
    windows at once): the roster reads this for every date it is asked about."""
    bureau = published_for(term)
    own = school_calendar(term)
    if own is None and not bureau:
        return None
    bureau_ids = [c.id for c in bureau]
    own_id = own.id if own is not None else -1  # -1: no row, never NULL (NULL would match the bureau's rows)
    days = db.session.scalars(select(CalendarDay).where(or_(
        CalendarDay.bureau_calendar_id.in_(bureau_ids), CalendarDay.calendar_id == own_id))
        .order_by(CalendarDay.day)).all()
    all_windows = db.session.scalars(select(PickupWindow).where(or_(
        PickupWindow.bureau_calendar_id.in_(bureau_ids), PickupWindow.calendar_id == own_id))
        .order_by(PickupWindow.starts_on)).all()
    layers = [Layer(Source.DISTRICT if c.district_id is not None else Source.CITY, c.first_day, c.last_day,
                    [d for d in days if d.bureau_calendar_id == c.id],
                    [w for w in all_windows if w.bureau_calendar_id == c.id], c.changed_at) for c in bureau]
    if own is not None:
        layers.append(Layer(Source.SCHOOL, own.first_day, own.last_day,
                            [d for d in days if d.calendar_id == own.id],
                            [w for w in all_windows if w.calendar_id == own.id]))
    dates = term_dates((layer.source, layer.first_day, layer.last_day) for layer in layers)
    if dates is None:
        return None
    in_force = entries_in_force((day.day, layer.source, day) for layer in layers for day in layer.days)
    entries = sorted((Entry(day, layer.source, in_force[day.day][1] is not day) for layer in layers
                      for day in layer.days), key=lambda e: (e.day.day, e.source))
    windows = sorted((Window(window, layer.source) for layer in layers for window in layer.windows),
                     key=lambda w: window_order(w.source, w.window.starts_on, w.window.id))
    cutoff = absence_cutoff(own.absence_cutoff if own is not None else None)
    return EffectiveCalendar(*dates, cutoff, tuple(entries), tuple(windows), tuple(layers))


def rules_of(calendar: EffectiveCalendar, weekdays: Sequence[int]) -> CalendarRules:
    """The plain values `webapp.daily.calendar.service_day` reads (the windows in `window_order`, as the
    calendar keeps them)."""
    exceptions = {on: DayException(CalendarDayKind(e.day.kind), e.day.runs_weekday, e.day.pickup_time or "")
                  for on, e in calendar.in_force().items()}
    windows = tuple((w.window.starts_on, w.window.ends_on, w.window.pickup_time) for w in calendar.windows)
    return CalendarRules(calendar.first_day, calendar.last_day, frozenset(weekdays), exceptions, windows,
                         calendar.absence_cutoff)


def term_bounds() -> Select[int, int, date, date]:
    """(term id, school id, first day, last day) of every term, the dates taken school > district > city: one query
    for `term_on` and the purge of expired terms."""
    city = aliased(BureauCalendar)
    district = aliased(BureauCalendar)
    first = func.coalesce(SchoolCalendar.first_day, district.first_day, city.first_day)
    last = func.coalesce(SchoolCalendar.last_day, district.last_day, city.last_day)
    return (select(Term.id, Term.school_id, first.label("first_day"), last.label("last_day"))
            .join(School, School.id == Term.school_id)
            .outerjoin(SchoolCalendar, SchoolCalendar.term_id == Term.id)
            .outerjoin(district, and_(district.term_name == Term.name, district.district_id == School.district_id,
                                      district.published_at.is_not(None)))
            .outerjoin(city, and_(city.term_name == Term.name, city.district_id.is_(None),
                                  city.published_at.is_not(None))))


def term_on(school_id: int, on: date) -> Term | None:
    """The school's term whose effective calendar contains `on` (the newest if calendars overlap)."""
    bounds = term_bounds().where(Term.school_id == school_id).subquery()
    return db.session.scalar(
        select(Term).join(bounds, bounds.c.id == Term.id)
        .where(bounds.c.first_day <= on, bounds.c.last_day >= on).order_by(Term.id.desc()).limit(1))


# ------------------------------------------------------------------------------------------ one date, one statement

_DISTRICT = aliased(BureauCalendar, name="district_calendar")
_CITY = aliased(BureauCalendar, name="city_calendar")


def _source_of(school_id: Any, bureau_id: Any) -> Any:
    return case((school_id.is_not(None), int(Source.SCHOOL)), (bureau_id == _DISTRICT.id, int(Source.DISTRICT)),
                else_=int(Source.CITY))


DATE_COLUMNS: tuple[Any, ...] = (
    SchoolCalendar.first_day, SchoolCalendar.last_day, SchoolCalendar.absence_cutoff, _DISTRICT.first_day,
    _DISTRICT.last_day, _CITY.first_day, _CITY.last_day,
    _source_of(CalendarDay.calendar_id, CalendarDay.bureau_calendar_id), CalendarDay.kind, CalendarDay.runs_weekday,
    CalendarDay.pickup_time, _source_of(PickupWindow.calendar_id, PickupWindow.bureau_calendar_id), PickupWindow.id,
    PickupWindow.starts_on, PickupWindow.ends_on, PickupWindow.pickup_time)
"""The columns `rules_on` reads, for a select given to `join_layers_on`."""


def join_layers_on(query: Select[*tuple[Any, ...]], on: Any) -> Select[*tuple[Any, ...]]:
    """Outer-join, to a select that has `Term` and its `School` in its FROM, every layer of the term's calendar
    (its own, the published district's and city's), the entries of `on` and the seasonal windows containing it:
    a row per entry and window (a handful at most), each with the layers' dates."""
    def of_a_layer(row: Any) -> Any:
        return or_(row.calendar_id == SchoolCalendar.id, row.bureau_calendar_id == _DISTRICT.id,
                   row.bureau_calendar_id == _CITY.id)
    return (query.outerjoin(SchoolCalendar, SchoolCalendar.term_id == Term.id)
            .outerjoin(_DISTRICT, and_(_DISTRICT.term_name == Term.name, _DISTRICT.district_id == School.district_id,
                                       _DISTRICT.published_at.is_not(None)))
            .outerjoin(_CITY, and_(_CITY.term_name == Term.name, _CITY.district_id.is_(None),
                                   _CITY.published_at.is_not(None)))
            .outerjoin(CalendarDay, and_(CalendarDay.day == on, of_a_layer(CalendarDay)))
            .outerjoin(PickupWindow, and_(PickupWindow.starts_on <= on, PickupWindow.ends_on >= on,
                                          of_a_layer(PickupWindow))))


def rules_on(on: date, weekdays: Sequence[int] | None, rows: Sequence[Sequence[Any]]) -> CalendarRules | None:
    """`rules_of(effective_calendar(term), weekdays)` as far as the date `on` is concerned, from the rows of
    `DATE_COLUMNS` that `join_layers_on` gives, resolved by the same precedence functions: only the parts of `on`
    (`service_day` of `on` gives what it gives with the whole calendar). None when no layer gives the dates."""
    if not rows:
        return None
    (own_first, own_last, cutoff, district_first, district_last, city_first, city_last) = rows[0][:7]
    dates = term_dates(((Source.CITY, city_first, city_last), (Source.DISTRICT, district_first, district_last),
                        (Source.SCHOOL, own_first, own_last)))
    if dates is None:
        return None
    day_entries: list[tuple[date, Source, DayException]] = []
    windows: dict[int, tuple[Source, date, date, str]] = {}
    for day_source, kind, runs_weekday, pickup, window_source, window_id, starts_on, ends_on, window_pickup in (
            row[7:16] for row in rows):
        if kind is not None:
            day_entries.append((on, Source(day_source), DayException(CalendarDayKind(kind), runs_weekday,
                                                                     pickup or "")))
        if window_id is not None:
            windows[window_id] = (Source(window_source), starts_on, ends_on, window_pickup)
    exceptions = {day: entry for day, (_source, entry) in entries_in_force(day_entries).items()}
    ordered = sorted(windows.items(), key=lambda item: window_order(item[1][0], item[1][1], item[0]))
    return CalendarRules(*dates, frozenset(weekdays or ()), exceptions,
                         tuple((starts_on, ends_on, pickup) for _id, (_s, starts_on, ends_on, pickup) in ordered),
                         absence_cutoff(cutoff))
