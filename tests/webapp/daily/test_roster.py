"""The roster for a date: calendar rules (holidays, 调休, early close, seasons), dated changes and absences."""

from __future__ import annotations

from datetime import date

from flask import Flask
from sqlalchemy import select

from tests.webapp.daily.conftest import (
    EARLY_CLOSE,
    HOLIDAY,
    MAKEUP_SATURDAY,
    MONDAY,
    TUESDAY,
    WINTER_MONDAY,
    Daily,
    utc,
)
from webapp.daily.calendar import CalendarRules, DayException, DayReason, cutoff_passed, service_day
from webapp.daily.roster import AbsenceSpan, DatedChange, Seat, load_roster, roster_for
from webapp.extensions import db
from webapp.models import Absence, CalendarDayKind, ChangeRequest, Session, Term

RULES = CalendarRules(
    first_day=date(2026, 9, 1), last_day=date(2027, 1, 22), weekdays=frozenset({1, 2, 3, 4, 5}),
    exceptions={HOLIDAY: DayException(CalendarDayKind.HOLIDAY),
                MAKEUP_SATURDAY: DayException(CalendarDayKind.MAKEUP, runs_weekday=1),
                EARLY_CLOSE: DayException(CalendarDayKind.EARLY_CLOSE, pickup_time="16:30")},
    windows=((date(2026, 11, 1), date(2027, 1, 22), "17:00"),),
)
SEATS = [Seat(1, 11, 1, "P1", "15:30", "16:30"), Seat(1, 12, 1, "P2", "16:30", "17:30"),
         Seat(2, 11, 1, "P1", "15:30", "16:30"), Seat(2, 21, 2, "P1", "15:30", "16:30"),
         Seat(3, 14, 1, "P3", "17:30", "18:30")]


def test_a_regular_day_runs_its_own_weekday() -> None:
    roster = roster_for(MONDAY, RULES, SEATS, (), ())
    assert roster.day.service and roster.day.weekday == 1 and roster.day.reason == DayReason.REGULAR
    assert [(s.session_id, s.expected) for s in roster.sessions] == [(11, (1, 2)), (12, (1,)), (14, (3,))]
    assert [s.expected for s in roster_for(TUESDAY, RULES, SEATS, (), ()).sessions] == [(2,)]


def test_no_service_on_holidays_weekends_and_outside_the_term() -> None:
    assert roster_for(HOLIDAY, RULES, SEATS, (), ()).day.reason == DayReason.HOLIDAY
    assert roster_for(date(2026, 9, 12), RULES, SEATS, (), ()).day.reason == DayReason.NO_SERVICE_WEEKDAY
    assert roster_for(date(2026, 8, 31), RULES, SEATS, (), ()).day.reason == DayReason.OUTSIDE_TERM
    for day in (HOLIDAY, date(2026, 9, 12), date(2027, 1, 25)):
        assert roster_for(day, RULES, SEATS, (), ()).sessions == ()
    assert roster_for(MONDAY, None, SEATS, (), ()).sessions == ()  # no calendar entered: no daily service


def test_a_makeup_saturday_runs_mondays_timetable() -> None:
    roster = roster_for(MAKEUP_SATURDAY, RULES, SEATS, (), ())
    assert MAKEUP_SATURDAY.isoweekday() == 6
    assert roster.day.weekday == 1 and roster.day.reason == DayReason.MAKEUP
    assert [s.session_id for s in roster.sessions] == [11, 12, 14]


def test_early_close_drops_later_sessions_and_caps_the_end() -> None:
    roster = roster_for(EARLY_CLOSE, RULES, SEATS, (), ())
    assert roster.day.ends_by == "16:30" and roster.day.reason == DayReason.EARLY_CLOSE
    assert [(s.session_id, s.end) for s in roster.sessions] == [(11, "16:30")]


def test_the_winter_timetable_ends_at_five() -> None:
    roster = roster_for(WINTER_MONDAY, RULES, SEATS, (), ())
    assert roster.day.ends_by == "17:00" and roster.day.reason == DayReason.SEASONAL
    assert [(s.session_id, s.end) for s in roster.sessions] == [(11, "16:30"), (12, "17:00")]
    early_winter = CalendarRules(RULES.first_day, RULES.last_day, RULES.weekdays,
                                 {WINTER_MONDAY: DayException(CalendarDayKind.EARLY_CLOSE, pickup_time="16:00")},
                                 RULES.windows)
    assert service_day(early_winter, WINTER_MONDAY).ends_by == "16:00"  # the earlier of the two


def test_a_dated_change_applies_from_its_date() -> None:
    change = DatedChange(1, date(2026, 9, 14), False, frozenset({1}), frozenset({"P1"}))
    before = roster_for(MONDAY, RULES, SEATS, [change], ())
    after = roster_for(date(2026, 9, 14), RULES, SEATS, [change], ())
    assert before.expected_in(1, 12) and not after.expected_in(1, 12) and after.expected_in(1, 11)
    withdrawn = DatedChange(2, MONDAY, True, frozenset(), frozenset())
    assert not roster_for(MONDAY, RULES, SEATS, [withdrawn], ()).sessions_of(2)


def test_reported_absences_are_listed_apart() -> None:
    away = AbsenceSpan(1, 1, MONDAY, TUESDAY)
    roster = roster_for(MONDAY, RULES, SEATS, (), [away])
    first = roster.session(11)
    assert first is not None and first.expected == (2,) and first.reported_absent == (1,)
    assert roster.reported_absent(1) and not roster.reported_absent(2)
    assert not roster_for(date(2026, 9, 9), RULES, SEATS, (), [away]).reported_absent(1)


def test_the_cutoff_is_noon_local_on_the_day() -> None:
    assert not cutoff_passed(RULES, MONDAY, utc(MONDAY, "11:59"))
    assert cutoff_passed(RULES, MONDAY, utc(MONDAY, "12:00"))
    assert not cutoff_passed(RULES, TUESDAY, utc(MONDAY, "23:00"))
    assert utc(MONDAY, "07:00").day == 6  # 07:00 in Beijing is the evening before in UTC
    late = CalendarRules(RULES.first_day, RULES.last_day, RULES.weekdays, absence_cutoff="14:30")
    assert not cutoff_passed(late, MONDAY, utc(MONDAY, "14:29"))


def test_load_roster_reads_the_published_plan(app: Flask, daily: Daily) -> None:
    with app.app_context():
        term = db.session.get(Term, daily.school.term_id)
        assert term is not None
        codes = {s.id: s.code for s in db.session.query(Session).filter_by(term_id=term.id)}

        def seen(on: date) -> list[tuple[str, tuple[int, ...]]]:
            return [(codes[s.session_id], s.expected) for s in load_roster(term, on).sessions]

        pupil = daily.pupil_id
        assert seen(MONDAY) == [("S11", (pupil,)), ("S12", (pupil,))]
        assert seen(MAKEUP_SATURDAY) == seen(MONDAY)
        assert seen(EARLY_CLOSE) == [("S11", (pupil,))]
        assert seen(HOLIDAY) == [] and seen(TUESDAY) == []  # P001 waits for Tuesday: no seat
        db.session.add(Absence(pupil_id=pupil, first_day=MONDAY, last_day=MONDAY))
        db.session.add(ChangeRequest(term_id=term.id, pupil_id=pupil, effective_on=date(2026, 9, 14),
                                     withdraw=True, state="pending"))
        db.session.commit()
        roster = load_roster(term, MONDAY)
        assert roster.reported_absent(pupil) and roster.sessions_of(pupil)
        assert load_roster(term, date(2026, 9, 14)).sessions == ()


def test_one_sessions_roster_is_that_session_of_the_whole_roster(app: Flask, daily: Daily) -> None:
    with app.app_context():
        term = db.session.get(Term, daily.school.term_id)
        assert term is not None
        db.session.add(Absence(pupil_id=daily.pupil_id, first_day=MONDAY, last_day=MONDAY, reason="看牙"))
        db.session.commit()
        whole = load_roster(term, MONDAY)
        assert whole.sessions
        for entry in whole.sessions:
            alone = load_roster(term, MONDAY, session_id=entry.session_id)
            assert alone.sessions == (entry,)
        s11 = db.session.scalar(select(Session.id).where(Session.code == "S11"))
        assert load_roster(term, MONDAY, session_id=s11).session(s11).reported_absent == (daily.pupil_id,)
        assert load_roster(term, MONDAY, session_id=s11, pupil_id=daily.pupil_id).sessions_of(daily.pupil_id)
