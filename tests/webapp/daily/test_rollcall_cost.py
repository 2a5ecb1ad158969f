"""What a roll-call tap costs, in SQL statements (deterministic, unlike timings), on SQLite and PostgreSQL;
the row a tap sent by the page's script gets back (with the absence alert's note); and `load_seat` read in one
statement giving what `load_roster` gives for one pupil and session, and the effective calendar read for one
date giving what the whole effective calendar gives (city, district and school layers).

`python -m bench.load.rollcall_cost` measures the same taps' CPU time on the 3,000-pupil bench school.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from tests.conftest import make_school
from tests.webapp.daily.conftest import (
    EARLY_CLOSE,
    HOLIDAY,
    MAKEUP_SATURDAY,
    MONDAY,
    TUESDAY,
    WINTER_MONDAY,
    make_calendar,
    make_duty_teacher,
    utc,
)
from tests.webapp.daily.test_inherited_calendar import _city_calendar, _city_user, _district_user
from tests.webapp.factories import create_user, csrf_token, publish_for, pupil_id, sign_in, term_of
from webapp.daily.calendar import service_day
from webapp.daily.calendar_edit import add_entry, create_calendar, own_calendar, publish
from webapp.daily.layers import effective_calendar, rules_of
from webapp.daily.roster import calendar_rules, calendar_rules_on, load_roster, load_seat
from webapp.extensions import db
from webapp.models import (
    Absence,
    ChangeRequest,
    ClassTeacher,
    Notification,
    PickupWindow,
    Pupil,
    RollCallMark,
    SchoolCalendar,
    Session,
    Teacher,
    Term,
)

MARK_STATEMENTS = 7
"""Per tap, whether first mark or correction, fetched or posted as a form (the redirect's page not counted):
the signed-in user, the duty teacher, the pupil's lock, the pupil's marks in the session today, the seat today
(with today's absence alert), the mark and its audit row."""
ALERT_STATEMENTS = 9
"""More for the first unreported `absent` of the day, which raises the absence alert (16 in all): the activity's
name; to the family the guardians, their inbox row and its delivery; the class teacher, their message and its
deliveries (SMS and e-mail in one statement); the alert and its audit row. (The family alone, before class
teachers, took 4.)"""
ARRIVED_STATEMENTS = 8
"""More for the correction of that absence to present or late, which tells both again (15 in all; 13 on
PostgreSQL, which inserts the two messages in one statement and their deliveries in another): the activity's
name, the alert's arrival, the guardians, the audit row, the two messages and their deliveries. The class
teacher and the alert were read with the seat."""
PAGE_STATEMENTS = 14
"""The session page of the roll-call (the reload after a tap without the script): its pupils' absence alerts
with their class teachers' names are one of them."""
FETCH = {"X-Requested-With": "fetch"}
CLIENT_ID_RE = re.compile(r'name="client_id" value="([^"]+)"')
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextmanager
def counted(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine executes inside the block."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _world(app: Flask, *, own_calendar: bool = True) -> tuple[int, int, int]:
    """The test school's published plan, its calendar (or none of its own), a duty teacher and P001's class
    teacher with a phone and an e-mail: (S11, S12, P001)."""
    with app.app_context():
        school = make_school()
        pupil = pupil_id("P001")
        publish_for(pupil)
        if own_calendar:
            make_calendar(term_of().id)
        make_duty_teacher(school.id)
        create_user("parent", login="13800000001", pupil=db.session.get(Pupil, pupil))
        lead = db.session.scalar(select(Teacher).where(Teacher.school_id == school.id, Teacher.code == "T2"))
        assert lead is not None
        lead.phone, lead.email = "13900000002", "wang@example.cn"
        one = db.session.get(Pupil, pupil)
        assert one is not None
        db.session.add(ClassTeacher(school_id=school.id, grade=one.grade, class_name=one.class_name,
                                    teacher_id=lead.id))
        db.session.commit()
        s11, s12 = (db.session.scalar(select(Session.id).where(Session.code == code)) for code in ("S11", "S12"))
        assert s11 is not None and s12 is not None
        return s11, s12, pupil


def _tap(client: FlaskClient, token: str, session_id: int, pupil: int, status: str, client_id: str,
         reason: str = "", *, fetch: bool = True) -> Any:
    return client.post(f"/daily/duty/sessions/{session_id}/mark", headers=FETCH if fetch else {},
                       data={"csrf_token": token, "pupil_id": pupil, "session_id": session_id,
                             "client_id": client_id, "status": status, "reason": reason})


def _check_statements(app: Flask) -> None:
    s11, s12, pupil = _world(app)
    app.config["NOW"] = utc(MONDAY, "15:40")
    client = app.test_client()
    sign_in(client, "duty-x")
    page = f"/daily/duty/sessions/{s11}"
    token = csrf_token(client, page)
    with counted(app) as seen:
        assert client.get(page).status_code == 200
    assert len(seen) <= PAGE_STATEMENTS, "\n".join(s[:150].replace("\n", " ") for s in seen)
    # a mark and a correction, each fetched and as a plain form; then an absence raises the alert (once a day),
    # its correction tells family and class teacher the pupil arrived (once)
    taps = [(s11, "present", "", True, 0), (s11, "late", "迟到", True, 0), (s12, "present", "", False, 0),
            (s12, "late", "迟到", False, 0), (s12, "absent", "早退", True, ALERT_STATEMENTS),
            (s11, "absent", "没来", True, 0), (s12, "present", "到了", False, ARRIVED_STATEMENTS),
            (s11, "present", "到了", True, 0)]
    for number, (session_id, status, reason, fetch, more) in enumerate(taps):
        with counted(app) as seen:
            answer = _tap(client, token, session_id, pupil, status, f"bounded-{number}", reason, fetch=fetch)
        assert answer.status_code == (200 if fetch else 302), answer.get_data(as_text=True)[:300]
        assert len(seen) <= MARK_STATEMENTS + more, "\n".join(seen)
    with app.app_context():
        assert [m.status for m in db.session.scalars(select(RollCallMark).order_by(RollCallMark.id))] == [
            "present", "late", "present", "late", "absent", "absent", "present", "present"]
        assert sorted(db.session.scalars(select(Notification.event))) == sorted([
            "absence_unreported", "class_absence", "absence_arrived", "class_arrived"])  # once each


def test_statements_per_mark_are_bounded_sqlite(app: Flask) -> None:
    _check_statements(app)


@pytest.mark.postgres
def test_statements_per_mark_are_bounded_postgresql(pg_app: Flask) -> None:
    _check_statements(pg_app)


def test_a_tap_from_the_page_script_gets_its_row_back(app: Flask) -> None:
    s11, _s12, pupil = _world(app)
    app.config["NOW"] = utc(MONDAY, "15:40")
    client = app.test_client()
    sign_in(client, "duty-x")
    token = csrf_token(client, f"/daily/duty/sessions/{s11}")
    answer = _tap(client, token, s11, pupil, "present", "row-back-1")
    row = answer.get_data(as_text=True)
    assert answer.status_code == 200 and len(row) < 3000 and "<html" not in row
    assert row.strip().startswith(f'<li id="pupil-{pupil}">') and "已到" in row
    assert 'value="present" class="btn chosen"' in row and 'name="reason"' in row  # a change needs a reason
    found = CLIENT_ID_RE.search(row)
    assert found is not None and found.group(1) != "row-back-1"  # the next tap is a new mark
    refused = _tap(client, token, s11, pupil, "late", "row-back-2")
    assert refused.status_code == 422 and refused.mimetype == "text/plain"
    assert refused.get_data(as_text=True) == "修改考勤须填写原因。"
    again = _tap(client, token, s11, pupil, "present", "row-back-1")  # the same form again: the page reloads
    assert again.status_code == 204
    with app.app_context():
        stranger = pupil_id("P002")
    assert _tap(client, token, s11, stranger, "present", "row-back-3").status_code == 409
    assert _tap(client, "forged", s11, pupil, "late", "row-back-4", "x").status_code == 400
    with app.app_context():
        assert [m.client_id for m in db.session.scalars(select(RollCallMark))] == ["row-back-1"]


ROW_RE = r'<li id="pupil-{pupil}">.*?</li>'


def _same_row(html: str) -> str:
    """A row without what is drawn anew each time (the next tap's client id, the form's CSRF token)."""
    return CSRF_RE.sub('name="csrf_token" value=""',
                       CLIENT_ID_RE.sub('name="client_id" value=""', " ".join(html.split())))


def test_the_row_an_absence_gets_back_is_the_pages_row_with_the_alert_note(app: Flask) -> None:
    s11, s12, pupil = _world(app)
    app.config["NOW"] = utc(MONDAY, "15:40")
    client = app.test_client()
    sign_in(client, "duty-x")
    page = f"/daily/duty/sessions/{s11}"
    token = csrf_token(client, page)
    row = _tap(client, token, s11, pupil, "absent", "alert-one-1").get_data(as_text=True)
    assert 'class="alert-note">已通知家长和班主任王老师。</p>' in row
    drawn = re.search(ROW_RE.format(pupil=pupil), client.get(page).get_data(as_text=True), re.S)
    assert drawn is not None and _same_row(drawn.group(0)) == _same_row(row)
    again = _tap(client, token, s12, pupil, "absent", "alert-two-2").get_data(as_text=True)  # no second alert
    assert "已通知家长和班主任王老师。" in again
    fixed = _tap(client, token, s11, pupil, "present", "alert-three-3", "到了").get_data(as_text=True)
    assert "alert-note" not in fixed and "已到" in fixed  # the note goes with the absent mark
    with app.app_context():
        assert sorted(db.session.scalars(select(Notification.event))) == sorted([
            "absence_unreported", "class_absence", "absence_arrived", "class_arrived"])


def test_load_seat_is_load_roster_for_one_pupil_and_session(app: Flask) -> None:
    s11, s12, pupil = _world(app)
    late_autumn = date(2026, 11, 16)  # a Monday in two seasonal windows: the later-starting one applies
    with app.app_context():
        term = db.session.get(Term, term_of().id)
        assert term is not None
        calendar = db.session.scalar(select(SchoolCalendar).where(SchoolCalendar.term_id == term.id))
        assert calendar is not None
        db.session.add(PickupWindow(calendar_id=calendar.id, starts_on=date(2026, 11, 15),
                                    ends_on=date(2026, 11, 30), pickup_time="16:45", note="期末"))
        db.session.add(Absence(pupil_id=pupil, first_day=MONDAY, last_day=MONDAY, reason="看牙"))
        db.session.add(ChangeRequest(term_id=term.id, pupil_id=pupil, effective_on=date(2026, 9, 14),
                                     withdraw=False, days=[1], periods=["P1"], state="pending"))
        db.session.add(ChangeRequest(term_id=term.id, pupil_id=pupil, effective_on=date(2026, 9, 21),
                                     withdraw=False, days=[1], periods=["P1", "P2"], state="pending"))
        db.session.add(ChangeRequest(term_id=term.id, pupil_id=pupil, effective_on=date(2026, 12, 7),
                                     withdraw=True, state="pending"))
        db.session.commit()
        school_id = term.school_id
        days = [MONDAY, TUESDAY, date(2026, 9, 14), date(2026, 9, 21), HOLIDAY, MAKEUP_SATURDAY, EARLY_CLOSE,
                WINTER_MONDAY, late_autumn, date(2026, 12, 7), date(2027, 3, 1)]
        seen = set()
        for on in days:
            for session_id in (s11, s12):
                _same_rules_on(term, on)
                seat = load_seat(school_id, on, session_id, pupil)
                whole = load_roster(term, on, pupil_id=pupil, session_id=session_id).session(session_id)
                assert (seat.entry if seat is not None else None) == whole, (on, session_id)
                if seat is not None:
                    assert seat.pupil.id == pupil and seat.session.id == session_id and seat.handover is None
                    seen.add((bool(seat.entry.reported_absent), seat.entry.end))
        assert seen == {(True, "16:30"), (True, "17:30"), (False, "16:30"), (False, "17:30"), (False, "17:00"),
                        (False, "16:45")}
        other = make_school("KM-TEST-0002")
        stranger = db.session.scalar(select(Pupil.id).where(Pupil.school_id == other.id))
        assert stranger is not None and load_seat(other.id, MONDAY, s11, stranger) is None
        assert load_seat(school_id, MONDAY, s11, stranger) is None


def _same_rules_on(term: Term, on: date) -> None:
    """`calendar_rules_on(term, on)` is `rules_of(effective_calendar(term))` as far as `on` is concerned."""
    one = calendar_rules_on(term, on)
    effective = effective_calendar(term)
    whole = rules_of(effective, term.weekdays or ()) if effective is not None else None
    assert whole == calendar_rules(term)
    if one is None or whole is None:
        assert one is None and whole is None, on
        return
    assert (one.first_day, one.last_day, one.weekdays, one.absence_cutoff) == (
        whole.first_day, whole.last_day, whole.weekdays, whole.absence_cutoff), on
    assert one.exceptions.get(on) == whole.exceptions.get(on), on
    assert [w for w in whole.windows if w[0] <= on <= w[1]] == list(one.windows), on
    assert service_day(one, on) == service_day(whole, on), on


def test_one_dates_rules_and_seat_follow_every_calendar_layer(app: Flask) -> None:
    """The city's calendar, the district's over it and the school's own entries (first without dates of its own,
    then with them): the rules of each date read in one statement are the effective calendar's, and so is the
    seat a mark reads."""
    s11, s12, pupil = _world(app, own_calendar=False)
    with app.app_context():
        term = db.session.get(Term, term_of().id)
        assert term is not None
        school_id, term_id = term.school_id, term.id
        days = [date(2026, 8, 31), MONDAY, TUESDAY, date(2026, 10, 1), HOLIDAY, date(2026, 10, 7), MAKEUP_SATURDAY,
                EARLY_CLOSE, date(2026, 10, 19), WINTER_MONDAY, date(2026, 11, 16), date(2026, 12, 7),
                date(2027, 1, 18), date(2027, 1, 25)]

        def check(expected_seats: set[date]) -> None:
            layered = db.session.get(Term, term_id)
            assert layered is not None
            seats = set()
            for on in days:
                _same_rules_on(layered, on)
                for session_id in (s11, s12):
                    seat = load_seat(school_id, on, session_id, pupil)
                    whole = load_roster(layered, on, pupil_id=pupil, session_id=session_id).session(session_id)
                    assert (seat.entry if seat is not None else None) == whole, (on, session_id)
                    if seat is not None:
                        seats.add(on)
            assert seats == expected_seats

        check(set())  # no layer yet: no service
        _city_calendar(_city_user())
        wuhua = _district_user()
        district = create_calendar(wuhua, "2026-autumn", date(2026, 9, 1), date(2027, 1, 15))
        for day, pickup in ((date(2026, 10, 7), "15:30"), (EARLY_CLOSE, "16:30"), (date(2026, 10, 19), "16:00")):
            add_entry(wuhua, district, "early_close", day, None, runs_weekday=None, pickup=pickup, note="区")
        add_entry(wuhua, district, "season", date(2026, 12, 1), date(2027, 1, 15), runs_weekday=None,
                  pickup="16:45", note="区冬季")
        publish(wuhua, district)
        mondays = {MONDAY, MAKEUP_SATURDAY, EARLY_CLOSE, date(2026, 10, 19), WINTER_MONDAY, date(2026, 11, 16),
                   date(2026, 12, 7)}
        check(mondays)
        admin = create_user("school_admin", school=term.school, login="adm")
        own = own_calendar(term)
        add_entry(admin, own, "holiday", EARLY_CLOSE, None, runs_weekday=None, pickup=None, note="校运会", term=term)
        add_entry(admin, own, "season", date(2026, 11, 15), date(2026, 11, 30), runs_weekday=None, pickup="16:15",
                  note="校冬季", term=term)
        db.session.commit()
        check(mondays - {EARLY_CLOSE})
        assert load_seat(school_id, date(2026, 11, 16), s12, pupil) is None  # 16:30 starts after the 16:15 pickup
        seat = load_seat(school_id, date(2026, 11, 16), s11, pupil)
        assert seat is not None and seat.entry.end == "16:15"  # the school's window over the city's
        seat = load_seat(school_id, date(2026, 12, 7), s12, pupil)
        assert seat is not None and seat.entry.end == "16:45"  # the district's over the city's
        own.first_day, own.last_day, own.absence_cutoff = date(2026, 9, 1), date(2027, 1, 22), "11:00"
        db.session.commit()
        check(mondays - {EARLY_CLOSE} | {date(2027, 1, 18)})  # the school's dates over the district's
