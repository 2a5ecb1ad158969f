"""Writes to term calendars: the city's and districts' (`BureauCalendar`) and a school's own layer.

Who edits what: a city-wide bureau user the city's calendars, a district bureau user their own district's,
a school admin their school's own entries (never the inherited ones: those are read through
`webapp.daily.layers`). Each function is one transaction with its audit row; a refusal raises `CalendarError`
with a translated sentence and writes nothing. A change to a published calendar reaches schools at once,
because their calendars are computed when read.
"""

from __future__ import annotations

from datetime import date

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.audit import AuditAction, record
from webapp.daily.calendar_import import (
    MAX_RANGE_DAYS,
    EntryRejected,
    check_calendar,
    inherited_bounds,
    make_entry,
    outside,
)
from webapp.extensions import db
from webapp.models import BureauCalendar, CalendarDay, PickupWindow, SchoolCalendar, Term, User, clock

TERM_NAME_MAX = 64


class CalendarError(ValueError):
    """A refused write; `field` names the form field it is about (or "" for the page)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


Owner = BureauCalendar | SchoolCalendar


# ------------------------------------------------------------------------------------------ who may do what


def readable(user: User) -> list[BureauCalendar]:
    """The bureau calendars a bureau user reads: the city's, and every district's (city-wide) or their own."""
    query = select(BureauCalendar).order_by(BureauCalendar.term_name.desc(), BureauCalendar.district_id.is_not(None),
                                            BureauCalendar.district_id)
    if not user.city_wide:
        query = query.where((BureauCalendar.district_id.is_(None)) | (BureauCalendar.district_id == user.district_id))
    return list(db.session.scalars(query))


def readable_one(user: User, calendar_id: int) -> BureauCalendar | None:
    """The calendar when `user` may read it; another district's is None (as if it did not exist)."""
    calendar = db.session.get(BureauCalendar, calendar_id)
    if calendar is None or user.city_wide or calendar.district_id in (None, user.district_id):
        return calendar
    return None


def may_edit(user: User, calendar: BureauCalendar) -> bool:
    """City-wide users edit the city's calendars, district users their district's; nobody edits another's."""
    if user.role != "bureau":
        return False
    if user.city_wide:
        return calendar.district_id is None
    return user.district_id is not None and calendar.district_id == user.district_id


def _scope_of(user: User) -> int | None:
    """The district a new calendar of `user` belongs to (None: the city's)."""
    return None if user.city_wide else user.district_id


def _detail(calendar: BureauCalendar, **extra: object) -> dict[str, object]:
    return {"term_name": calendar.term_name, "district": calendar.district_id,
            "first_day": calendar.first_day.isoformat(), "last_day": calendar.last_day.isoformat(),
            "days": len(calendar.days), "windows": len(calendar.pickup_windows),
            "published": calendar.published_at is not None, **extra}


def _changed(user: User, calendar: BureauCalendar, what: str, **extra: object) -> None:
    calendar.changed_at = clock()
    db.session.flush()
    db.session.refresh(calendar)
    record(AuditAction.BUREAU_CALENDAR_CHANGE, f"bureau_calendar:{calendar.id}",
           _detail(calendar, change=what, **extra), user_id=user.id)


# ------------------------------------------------------------------------------------------ bureau calendars


def _check_dates(first: date, last: date) -> None:
    if last < first or (last - first).days > MAX_RANGE_DAYS:
        raise CalendarError(_("the last day must be on or after the first day, within a year."), "last_day")


def create_calendar(user: User, term_name: str, first: date, last: date) -> BureauCalendar:
    """A draft calendar of the user's scope for schools' terms called `term_name`."""
    term_name = term_name.strip()
    if not term_name or len(term_name) > TERM_NAME_MAX:
        raise CalendarError(_("Enter 1 to %(n)d characters.", n=TERM_NAME_MAX), "term_name")
    _check_dates(first, last)
    calendar = BureauCalendar(district_id=_scope_of(user), term_name=term_name, first_day=first, last_day=last,
                              changed_at=clock(), created_at=clock())
    db.session.add(calendar)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise CalendarError(_("There is already a calendar for %(name)s.", name=term_name), "term_name") from None
    _changed(user, calendar, "create")
    db.session.commit()
    return calendar


def import_bureau_calendar(user: User, term_name: str, filename: str, data: bytes) -> BureauCalendar:
    """The file's calendar for `term_name` in the user's scope: a new draft, or it replaces the dates and entries
    of the one there (published or not). ImportRejected (every problem by row and column) writes nothing."""
    term_name = term_name.strip()
    if not term_name or len(term_name) > TERM_NAME_MAX:
        raise CalendarError(_("Enter 1 to %(n)d characters.", n=TERM_NAME_MAX), "term_name")
    found = check_calendar(filename, data, bureau=True)
    assert found.first_day is not None and found.last_day is not None
    district_id = _scope_of(user)
    calendar = db.session.scalar(select(BureauCalendar).where(
        BureauCalendar.term_name == term_name,
        BureauCalendar.district_id.is_(None) if district_id is None else BureauCalendar.district_id == district_id))
    if calendar is None:
        calendar = BureauCalendar(district_id=district_id, term_name=term_name, created_at=clock())
        db.session.add(calendar)
    calendar.first_day, calendar.last_day = found.first_day, found.last_day
    calendar.days = []
    calendar.pickup_windows = []
    try:
        db.session.flush()
    except IntegrityError:  # the same new term name imported by a colleague at the same moment
        db.session.rollback()
        raise CalendarError(_("There is already a calendar for %(name)s.", name=term_name), "term_name") from None
    calendar.days, calendar.pickup_windows = found.days, found.windows
    _changed(user, calendar, "import")
    db.session.commit()
    return calendar


def publish(user: User, calendar: BureauCalendar) -> BureauCalendar:
    """Schools' terms of the calendar's name inherit it from now on (publishing twice changes nothing)."""
    if not may_edit(user, calendar):
        raise CalendarError(_("Only the calendar's own bureau can change it."))
    if calendar.published_at is None:
        calendar.published_at, calendar.published_by = clock(), user.id
        record(AuditAction.BUREAU_CALENDAR_PUBLISH, f"bureau_calendar:{calendar.id}", _detail(calendar),
               user_id=user.id)
    db.session.commit()
    return calendar


# ------------------------------------------------------------------------------------------ entries, both layers


def own_calendar(term: Term) -> SchoolCalendar:
    """The school's own layer of the term's calendar, made (dates left to the bureau) when it has none yet."""
    calendar = db.session.scalar(select(SchoolCalendar).where(SchoolCalendar.term_id == term.id))
    if calendar is None:
        calendar = SchoolCalendar(term_id=term.id, first_day=None, last_day=None)
        db.session.add(calendar)
        db.session.flush()
    return calendar


def _bounds(owner: Owner, term: Term | None) -> tuple[date, date] | None:
    if isinstance(owner, BureauCalendar):
        return owner.first_day, owner.last_day
    assert term is not None
    if owner.first_day is not None and owner.last_day is not None:
        return owner.first_day, owner.last_day
    return inherited_bounds(term)


def add_entry(user: User, owner: Owner, kind: str, first: date, last: date | None, *, runs_weekday: int | None,
              pickup: str | None, note: str, term: Term | None = None) -> None:
    """Add a holiday (range), 调休, early-close day or seasonal window to `owner` (a bureau calendar the user may
    edit, or the school's own layer of `term`). A date the same layer already has is refused; a date another
    layer has is overridden (school > district > city)."""
    if isinstance(owner, BureauCalendar) and not may_edit(user, owner):
        raise CalendarError(_("Only the calendar's own bureau can change it."))
    try:
        entry = make_entry(kind, first, last, runs_weekday=runs_weekday, pickup=pickup, note=note.strip()[:100])
    except EntryRejected as rejected:
        raise CalendarError(rejected.message, {"last": "last_day", "weekday": "runs_weekday",
                                               "time": "pickup_time"}.get(rejected.column, "")) from None
    bounds = _bounds(owner, term)
    if bounds is None:
        raise CalendarError(_("The term has no first and last day yet: import a calendar with a 学期 row first."))
    dates = [entry.starts_on, entry.ends_on] if isinstance(entry, PickupWindow) else [d.day for d in entry]
    for day in dates:
        why = outside(day, *bounds)
        if why is not None:
            raise CalendarError(why, "first_day")
    if isinstance(entry, PickupWindow):
        owner.pickup_windows.append(entry)
    else:
        taken = {d.day for d in owner.days}
        clash = next((d.day for d in entry if d.day in taken), None)
        if clash is not None:
            raise CalendarError(_("%(day)s already has an entry here: remove it first.", day=clash.isoformat()),
                                "first_day")
        owner.days.extend(entry)
    _audit_entry(user, owner, "add", kind=kind, first=first.isoformat(), last=(last or first).isoformat())
    db.session.commit()


def remove_entry(user: User, owner: Owner, what: str, entry_id: int) -> bool:
    """Remove one of `owner`'s own dated entries (`what` "day") or windows ("window"); False when it has none."""
    if isinstance(owner, BureauCalendar) and not may_edit(user, owner):
        raise CalendarError(_("Only the calendar's own bureau can change it."))
    rows: list[CalendarDay] | list[PickupWindow] = owner.days if what == "day" else owner.pickup_windows
    row = next((r for r in rows if r.id == entry_id), None)
    if row is None:
        return False
    rows.remove(row)
    _audit_entry(user, owner, "remove", entry=what, entry_id=entry_id)
    db.session.commit()
    return True


def _audit_entry(user: User, owner: Owner, what: str, **extra: object) -> None:
    if isinstance(owner, BureauCalendar):
        _changed(user, owner, what, **extra)
    else:
        db.session.flush()
        record(AuditAction.CALENDAR_CHANGE, f"term:{owner.term_id}", {"change": what, **extra}, user_id=user.id,
               school_id=user.school_id)

