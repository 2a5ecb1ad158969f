"""The roster for a date: which pupils are expected in which session, from the plan in force, the calendar,
the family's dated changes and their reported absences.

`roster_for` is pure (plain values in, a `Roster` out) so the rules can be tested without a database;
`load_roster` reads those values for one term and calls it, with the term's effective calendar
(`webapp.daily.layers`: the city's, the district's and the school's own entries). Seats come from the term's
published run as it stands (changes already applied are in it); a change still pending but dated on or
before the date is applied here on the fly, so a roster for next week shows next week's plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import Date, Integer, Select, and_, bindparam, exists, select
from sqlalchemy.orm import aliased

from webapp.daily.calendar import CalendarRules, DayReason, ServiceDay, service_day
from webapp.daily.layers import DATE_COLUMNS, effective_calendar, join_layers_on, rules_of, rules_on, term_bounds
from webapp.extensions import db
from webapp.models import (
    Absence,
    AbsenceAlert,
    AllocationRun,
    ChangeRequest,
    Handover,
    Period,
    Pupil,
    RunAssignment,
    School,
    Session,
    Teacher,
    Term,
)


@dataclass(frozen=True)
class Seat:
    """A pupil's weekly seat in the plan in force."""

    pupil_id: int
    session_id: int
    day: int
    period: str
    start: str
    end: str


@dataclass(frozen=True)
class DatedChange:
    """A family's change not applied yet: from `effective_on`, only `days` x `periods` (nothing if withdrawn)."""

    pupil_id: int
    effective_on: date
    withdraw: bool
    days: frozenset[int]
    periods: frozenset[str]


@dataclass(frozen=True)
class AbsenceSpan:
    id: int
    pupil_id: int
    first_day: date
    last_day: date


@dataclass(frozen=True)
class RosterSession:
    session_id: int
    start: str
    end: str
    """The period's end, or the day's latest pickup when that comes first."""
    expected: tuple[int, ...]
    """Pupils who should be there (reported absences excluded)."""
    reported_absent: tuple[int, ...]


@dataclass(frozen=True)
class Roster:
    day: ServiceDay
    sessions: tuple[RosterSession, ...]

    def session(self, session_id: int) -> RosterSession | None:
        return next((s for s in self.sessions if s.session_id == session_id), None)

    def expected_in(self, pupil_id: int, session_id: int) -> bool:
        found = self.session(session_id)
        return found is not None and pupil_id in found.expected

    def sessions_of(self, pupil_id: int) -> list[RosterSession]:
        """The sessions the pupil has a seat in on this date, absent or not."""
        return [s for s in self.sessions if pupil_id in s.expected or pupil_id in s.reported_absent]

    def reported_absent(self, pupil_id: int) -> bool:
        return any(pupil_id in s.reported_absent for s in self.sessions)


def roster_for(on: date, rules: CalendarRules | None, seats: Iterable[Seat], changes: Iterable[DatedChange],
               absences: Iterable[AbsenceSpan]) -> Roster:
    """Who is expected where on `on`. No calendar or no service that day: an empty roster saying why not."""
    if rules is None:
        return Roster(ServiceDay(on, False, None, None, DayReason.OUTSIDE_TERM), ())
    day = service_day(rules, on)
    if not day.service:
        return Roster(day, ())
    in_force: dict[int, DatedChange] = {}
    for dated in sorted(changes, key=lambda c: c.effective_on):
        if dated.effective_on <= on:
            in_force[dated.pupil_id] = dated
    away = {a.pupil_id for a in absences if a.first_day <= on <= a.last_day}
    by_session: dict[int, tuple[str, str, list[int], list[int]]] = {}
    for seat in seats:
        if seat.day != day.weekday or (day.ends_by is not None and seat.start >= day.ends_by):
            continue
        change = in_force.get(seat.pupil_id)
        if change is not None and (change.withdraw or seat.day not in change.days
                                   or seat.period not in change.periods):
            continue
        end = min(seat.end, day.ends_by) if day.ends_by else seat.end
        _start, _end, expected, absent = by_session.setdefault(seat.session_id, (seat.start, end, [], []))
        (absent if seat.pupil_id in away else expected).append(seat.pupil_id)
    sessions = tuple(RosterSession(sid, start, end, tuple(sorted(expected)), tuple(sorted(absent)))
                     for sid, (start, end, expected, absent) in sorted(by_session.items(),
                                                                       key=lambda kv: (kv[1][0], kv[0])))
    return Roster(day, sessions)


# ------------------------------------------------------------------------------------------ from the database


def calendar_rules(term: Term) -> CalendarRules | None:
    """The term's effective calendar (city, district and school layers) as plain values, or None when no layer
    gives the term's dates."""
    calendar = effective_calendar(term)
    return rules_of(calendar, term.weekdays or ()) if calendar is not None else None


@cache
def _calendar_statement() -> Select[Any]:
    """`calendar_rules_on`'s statement, built once (parameters `term_id`, `on`)."""
    return join_layers_on(select(*DATE_COLUMNS).select_from(Term).join(School, School.id == Term.school_id),
                          bindparam("on", type_=Date)).where(Term.id == bindparam("term_id", type_=Integer))


def calendar_rules_on(term: Term, on: date) -> CalendarRules | None:
    """`calendar_rules(term)` as far as the date `on` is concerned, read in one statement (every layer's dates,
    the entries of `on` and the windows containing it: `webapp.daily.layers.rules_on`); None as there."""
    rows = db.session.execute(_calendar_statement(), {"term_id": term.id, "on": on}).all()
    return rules_on(on, term.weekdays, rows)


def load_roster(term: Term, on: date, *, pupil_id: int | None = None, session_id: int | None = None) -> Roster:
    """The roster of `term` on `on` (only `pupil_id`'s seats, or only session `session_id`'s, when given), read
    in this transaction. A session's roster reads its own pupils only: a duty teacher's page stays cheap in a
    school of thousands."""
    rules = calendar_rules_on(term, on)
    run = term.published_run if term.published_run is not None and term.published_run.is_published else None
    if rules is None or run is None:
        return roster_for(on, None if run is None else rules, (), (), ())
    seat_query = (select(RunAssignment.pupil_id, Session.id, Session.day, Period.code, Period.start, Period.end)
                  .join(Session, Session.id == RunAssignment.session_id)
                  .join(Period, Period.id == Session.period_id)
                  .where(RunAssignment.run_id == run.id))
    change_query = select(ChangeRequest).where(ChangeRequest.term_id == term.id, ChangeRequest.state == "pending",
                                               ChangeRequest.effective_on <= on)
    absence_query = select(Absence.id, Absence.pupil_id, Absence.first_day, Absence.last_day).where(
        Absence.cancelled_at.is_(None), Absence.first_day <= on, Absence.last_day >= on)
    if session_id is not None:
        seat_query = seat_query.where(RunAssignment.session_id == session_id)
    if pupil_id is not None:
        seat_query = seat_query.where(RunAssignment.pupil_id == pupil_id)
        change_query = change_query.where(ChangeRequest.pupil_id == pupil_id)
        absence_query = absence_query.where(Absence.pupil_id == pupil_id)
    elif session_id is not None:
        seated = select(RunAssignment.pupil_id).where(RunAssignment.run_id == run.id,
                                                      RunAssignment.session_id == session_id)
        change_query = change_query.where(ChangeRequest.pupil_id.in_(seated))
        absence_query = absence_query.where(Absence.pupil_id.in_(seated))
    else:
        absence_query = absence_query.where(Absence.pupil_id.in_(
            select(RunAssignment.pupil_id).where(RunAssignment.run_id == run.id)))
    seats = [Seat(*row) for row in db.session.execute(seat_query)]
    changes = [DatedChange(c.pupil_id, c.effective_on, bool(c.withdraw), frozenset(c.days or ()),
                           frozenset(c.periods or ())) for c in db.session.scalars(change_query)]
    absences = [AbsenceSpan(*row) for row in db.session.execute(absence_query)]
    return roster_for(on, rules, seats, changes, absences)


@dataclass(frozen=True)
class SeatToday:
    """One pupil's seat in one session on one date, as `load_seat` read it."""

    session: Session
    pupil: Pupil
    entry: RosterSession
    """The session as `roster_for` gives it for this pupil alone (expected, or listed as reported absent)."""
    handover: Handover | None
    alert: AbsenceAlert | None = None
    """The pupil's absence alert of that date, if one was raised (`webapp.daily.alerts`)."""
    class_teacher: Teacher | None = None
    """The class teacher that alert names, if it names one (read with it: `alert.class_teacher` needs no
    statement)."""


@cache
def _seat_statement() -> Select[Any]:
    """`load_seat`'s statement, built once (parameters `school_id`, `on`, `session_id`, `pupil_id`): building it
    anew for every tap cost more CPU than running it."""
    on, school_id = bindparam("on", type_=Date), bindparam("school_id", type_=Integer)
    session_id, pupil_id = bindparam("session_id", type_=Integer), bindparam("pupil_id", type_=Integer)
    bounds = term_bounds().where(Term.school_id == school_id).subquery()
    term_in_force = (select(bounds.c.id).where(bounds.c.first_day <= on, bounds.c.last_day >= on)
                     .order_by(bounds.c.id.desc()).limit(1).scalar_subquery())
    newest_change = (select(ChangeRequest.id)
                     .where(ChangeRequest.term_id == Term.id, ChangeRequest.pupil_id == pupil_id,
                            ChangeRequest.state == "pending", ChangeRequest.effective_on <= on)
                     .order_by(ChangeRequest.effective_on.desc(), ChangeRequest.id.desc()).limit(1)
                     .correlate(Term).scalar_subquery())
    away = exists().where(Absence.pupil_id == pupil_id, Absence.cancelled_at.is_(None), Absence.first_day <= on,
                          Absence.last_day >= on)
    lead = aliased(Teacher, name="class_teacher")
    return join_layers_on(
        select(Session, Pupil, Handover, AbsenceAlert, lead, Term.weekdays, Period.code, Period.start,
               Period.end, ChangeRequest.effective_on, ChangeRequest.withdraw, ChangeRequest.days,
               ChangeRequest.periods, away.label("away"), *DATE_COLUMNS)
        .select_from(Session)
        .join(Term, Term.id == Session.term_id)
        .join(School, School.id == Term.school_id)
        .join(AllocationRun, and_(AllocationRun.id == Term.published_run_id, AllocationRun.is_published))
        .join(Period, Period.id == Session.period_id)
        .join(Pupil, and_(Pupil.id == pupil_id, Pupil.school_id == school_id))
        .join(RunAssignment, and_(RunAssignment.run_id == AllocationRun.id, RunAssignment.session_id == Session.id,
                                  RunAssignment.pupil_id == Pupil.id))
        .outerjoin(ChangeRequest, ChangeRequest.id == newest_change)
        .outerjoin(Handover, and_(Handover.pupil_id == Pupil.id, Handover.day == on))
        .outerjoin(AbsenceAlert, and_(AbsenceAlert.pupil_id == Pupil.id, AbsenceAlert.day == on))
        .outerjoin(lead, lead.id == AbsenceAlert.class_teacher_id)
        .where(Session.id == session_id, Term.id == term_in_force), on)


def load_seat(school_id: int, on: date, session_id: int, pupil_id: int) -> SeatToday | None:
    """The pupil's seat in session `session_id` on `on`, if the roster has one: `load_roster(term, on,
    pupil_id=..., session_id=...)` of the school's term on that date, read in one statement (the roll-call mark
    needs nothing else). None when the session is not the term's, the pupil not the school's, no seat, or no
    service for it on that date; the caller tells these apart the slow way.

    The statement joins the session's term (the school's newest whose effective calendar contains `on`, as
    `term_on`), its published run, the period, the pupil and the pupil's seat; every layer of the term's calendar
    with the entries of `on` and the seasonal windows containing it (`webapp.daily.layers.join_layers_on`: a row
    each); the pupil's newest pending change dated on or before `on` (the one `roster_for` would apply), whether
    an absence is reported for `on`, today's handover and today's absence alert with its class teacher.
    The rules stay in `roster_for`, `service_day` and `layers.rules_on`, given only the parts of the calendar
    that concern `on`.
    """
    rows = db.session.execute(_seat_statement(), {"school_id": school_id, "on": on, "session_id": session_id,
                                                  "pupil_id": pupil_id}).all()
    if not rows:
        return None
    (session, pupil, handover, alert, lead, weekdays, period, start, end, change_on, withdraw, days, periods,
     reported) = rows[0][:14]
    rules = rules_on(on, weekdays, [row[14:] for row in rows])
    changes = [DatedChange(pupil_id, change_on, bool(withdraw), frozenset(days or ()), frozenset(periods or ()))
               ] if change_on is not None else []
    absences = [AbsenceSpan(0, pupil_id, on, on)] if reported else []
    roster = roster_for(on, rules, [Seat(pupil_id, session_id, session.day, period, start, end)], changes, absences)
    entry = roster.session(session_id)
    return SeatToday(session, pupil, entry, handover, alert, lead) if entry is not None else None
