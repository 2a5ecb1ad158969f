"""Calendars the city and a district publish, inherited by schools' terms of the same name: precedence
(school > district > city), changes after publication, the roster for a date, who may edit what, the bureau's
spreadsheet import, and the school's date and cutoff following the `TIMEZONE` setting."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.webapp.daily.conftest import EARLY_CLOSE, HOLIDAY, MAKEUP_SATURDAY, MONDAY, utc
from tests.webapp.daily.test_calendar_import import _xlsx
from tests.webapp.factories import SchoolIds, create_user, post_form, sign_in
from webapp.daily import service
from webapp.daily.calendar import DayReason, service_day
from webapp.daily.calendar_edit import CalendarError, add_entry, create_calendar, own_calendar, publish
from webapp.daily.layers import Source, effective_calendar, entries_in_force, term_dates, term_on, window_order
from webapp.daily.roster import calendar_rules, calendar_rules_on, load_roster
from webapp.extensions import db
from webapp.models import AuditLog, BureauCalendar, CalendarDay, District, Pupil, Session, Term, User
from webapp.services import school_today

TERM = "2026-autumn"  # the test school's term name (tests/conftest.make_school)
FIRST, LAST = date(2026, 9, 1), date(2027, 1, 22)


def _city_user() -> User:
    return create_user("bureau", login="city")


def _district_user(name: str = "五华区", login: str = "wuhua") -> User:
    district = db.session.scalar(select(District).where(District.name == name))
    if district is None:
        district = District(name=name, city="昆明市")
        db.session.add(district)
        db.session.commit()
    return create_user("bureau", login=login, district=district)


def _city_calendar(user: User, *, published: bool = True) -> BureauCalendar:
    """The city's autumn term: National Day holidays, a 调休 Saturday, the winter timetable."""
    calendar = create_calendar(user, TERM, FIRST, LAST)
    add_entry(user, calendar, "holiday", date(2026, 10, 1), date(2026, 10, 7), runs_weekday=None, pickup=None,
              note="国庆")
    add_entry(user, calendar, "makeup", MAKEUP_SATURDAY, None, runs_weekday=1, pickup=None, note="调休")
    add_entry(user, calendar, "season", date(2026, 11, 1), LAST, runs_weekday=None, pickup="17:00", note="冬季")
    if published:
        publish(user, calendar)
    return calendar


def _term(school: SchoolIds) -> Term:
    term = db.session.get(Term, school.term_id)
    assert term is not None
    return term


def test_precedence_school_over_district_over_city(app: Flask, school: SchoolIds) -> None:
    with app.app_context():
        term = _term(school)
        assert calendar_rules(term) is None  # nothing published yet: no daily service
        _city_calendar(_city_user())
        wuhua = _district_user()
        district = create_calendar(wuhua, TERM, FIRST, date(2027, 1, 15))  # the district ends the term earlier
        add_entry(wuhua, district, "early_close", date(2026, 10, 7), None, runs_weekday=None, pickup="15:30",
                  note="区统一补课")
        add_entry(wuhua, district, "early_close", EARLY_CLOSE, None, runs_weekday=None, pickup="16:30", note="教研")
        add_entry(wuhua, district, "season", date(2026, 12, 1), date(2027, 1, 15), runs_weekday=None,
                  pickup="16:45", note="区冬季")
        publish(wuhua, district)
        admin = create_user("school_admin", school=db.session.get(Term, school.term_id).school, login="adm")
        add_entry(admin, own_calendar(term), "holiday", EARLY_CLOSE, None, runs_weekday=None, pickup=None,
                  note="校运会", term=term)
        rules = calendar_rules(term)
        assert rules is not None
        assert (rules.first_day, rules.last_day) == (FIRST, date(2027, 1, 15))  # the district's dates
        assert service_day(rules, HOLIDAY).reason == DayReason.HOLIDAY                  # the city's
        assert service_day(rules, MAKEUP_SATURDAY).weekday == 1                         # the city's 调休
        replaced = service_day(rules, date(2026, 10, 7))                               # district over city
        assert replaced.service and replaced.ends_by == "15:30"
        assert service_day(rules, EARLY_CLOSE).reason == DayReason.HOLIDAY              # school over district
        assert service_day(rules, date(2026, 11, 16)).ends_by == "17:00"                # the city's window
        assert service_day(rules, date(2026, 12, 7)).ends_by == "16:45"                 # the district's window
        effective = effective_calendar(term)
        assert effective is not None
        overridden = {(e.day.day, e.source) for e in effective.entries if e.overridden}
        assert overridden == {(date(2026, 10, 7), Source.CITY), (EARLY_CLOSE, Source.DISTRICT)}


def test_one_rule_resolves_the_layers() -> None:
    """The precedence the whole calendar (`effective_calendar`) and one date's statement (`rules_on`) both use."""
    district_end = date(2027, 1, 15)
    assert term_dates([(Source.CITY, FIRST, LAST), (Source.DISTRICT, FIRST, district_end),
                       (Source.SCHOOL, None, None)]) == (FIRST, district_end)
    assert term_dates([(Source.SCHOOL, FIRST, district_end), (Source.CITY, FIRST, LAST)]) == (FIRST, district_end)
    assert term_dates([(Source.SCHOOL, FIRST, None)]) is None  # a layer gives both dates or neither
    assert entries_in_force([(HOLIDAY, Source.SCHOOL, "校运会"), (HOLIDAY, Source.CITY, "国庆"),
                             (MONDAY, Source.DISTRICT, "教研"), (MONDAY, Source.CITY, "补课")]) == {
        HOLIDAY: (Source.SCHOOL, "校运会"), MONDAY: (Source.DISTRICT, "教研")}
    windows = [(Source.SCHOOL, date(2026, 11, 1), 7), (Source.CITY, date(2026, 12, 1), 9),
               (Source.SCHOOL, date(2026, 11, 1), 3), (Source.SCHOOL, date(2026, 10, 1), 8)]
    assert sorted(windows, key=lambda w: window_order(*w)) == [  # service_day applies the last that covers a date
        (Source.CITY, date(2026, 12, 1), 9), (Source.SCHOOL, date(2026, 10, 1), 8),
        (Source.SCHOOL, date(2026, 11, 1), 3), (Source.SCHOOL, date(2026, 11, 1), 7)]


def test_of_two_windows_starting_together_the_newer_applies_everywhere(app: Flask, school: SchoolIds) -> None:
    """The calendar page, the whole calendar's rules and one date's rules agree on which of one layer's windows
    starting the same day applies: the newer."""
    with app.app_context():
        _city_calendar(_city_user())
        term = _term(school)
        admin = create_user("school_admin", school=term.school, login="adm")
        for pickup in ("16:50", "16:40"):
            add_entry(admin, own_calendar(term), "season", date(2026, 11, 2), date(2026, 11, 27), runs_weekday=None,
                      pickup=pickup, note="期中", term=term)
        effective = effective_calendar(term)
        assert effective is not None
        assert [(w.source, w.window.pickup_time) for w in effective.windows] == [
            (Source.CITY, "17:00"), (Source.SCHOOL, "16:50"), (Source.SCHOOL, "16:40")]
        on = date(2026, 11, 16)
        whole, one = calendar_rules(term), calendar_rules_on(term, on)
        assert whole is not None and one is not None
        assert service_day(whole, on).ends_by == service_day(one, on).ends_by == "16:40"


def test_drafts_and_other_districts_are_not_inherited(app: Flask, school: SchoolIds) -> None:
    with app.app_context():
        _city_calendar(_city_user(), published=False)
        panlong = _district_user("盘龙区", "panlong")
        publish(panlong, create_calendar(panlong, TERM, FIRST, LAST))
        term = _term(school)
        assert calendar_rules(term) is None and term_on(school.id, MONDAY) is None
        other_name = create_calendar(_district_user(), "2027-spring", FIRST, LAST)
        publish(db.session.scalar(select(User).where(User.username == "wuhua")), other_name)
        assert calendar_rules(term) is None  # a calendar of another term name
        panlong_calendar = db.session.scalar(select(BureauCalendar).where(
            BureauCalendar.district_id == panlong.district_id))
        assert panlong_calendar is not None
        add_entry(panlong, panlong_calendar, "holiday", MONDAY, None, runs_weekday=None, pickup=None, note="盘龙区")
        publish(db.session.scalar(select(User).where(User.username == "city")),
                db.session.scalar(select(BureauCalendar).where(BureauCalendar.district_id.is_(None))))
        rules = calendar_rules(term)  # the city's now, never 盘龙区's holiday
        assert rules is not None and service_day(rules, MONDAY).service and MONDAY not in rules.exceptions


def test_a_change_after_publication_reaches_the_school_at_once(app: Flask, school: SchoolIds) -> None:
    with app.app_context():
        city = _city_user()
        calendar = _city_calendar(city)
        term = _term(school)
        assert term_on(school.id, MONDAY) == term
        rules = calendar_rules(term)
        assert rules is not None and service_day(rules, MONDAY).service
        add_entry(city, calendar, "holiday", MONDAY, None, runs_weekday=None, pickup=None, note="台风停课")
        rules = calendar_rules(term)
        assert rules is not None and service_day(rules, MONDAY).reason == DayReason.HOLIDAY
        actions = list(db.session.scalars(select(AuditLog.action).where(AuditLog.target == f"bureau_calendar:"
                                                                                             f"{calendar.id}")))
        assert actions.count("calendar.publish") == 1 and "calendar.bureau_change" in actions


def test_the_roster_for_a_date_uses_the_inherited_calendar(app: Flask, school: SchoolIds, published_run: int,
                                                           at: Callable[[date, str], None]) -> None:
    """P001 has Monday seats in S11 (15:30–16:30) and S12 (16:30–17:30); the school has no calendar of its own."""
    with app.app_context():
        city = _city_user()
        calendar = _city_calendar(city)
        add_entry(city, calendar, "early_close", EARLY_CLOSE, None, runs_weekday=None, pickup="16:30", note="教研")
        term = _term(school)
        codes = {s.id: s.code for s in db.session.scalars(select(Session).where(Session.term_id == term.id))}
        pupil = db.session.scalar(select(Pupil).where(Pupil.school_id == school.id, Pupil.number == "P001"))
        assert pupil is not None

        def seen(on: date) -> list[str]:
            return [codes[s.session_id] for s in load_roster(term, on).sessions if pupil.id in s.expected]

        assert seen(MONDAY) == ["S11", "S12"]
        assert seen(MAKEUP_SATURDAY) == ["S11", "S12"]   # the city's 调休 Saturday runs Monday
        assert seen(EARLY_CLOSE) == ["S11"]              # the city's early close drops S12
        assert seen(HOLIDAY) == []                       # the city's holiday
        parent = create_user("parent", pupil=pupil)
        at(date(2026, 9, 30), "09:00")
        try:
            service.report_absence(parent, pupil, HOLIDAY, None, "")
        except service.DailyError as error:
            assert error.code == "no_service"
        else:
            raise AssertionError("an absence on an inherited holiday was accepted")
        at(MAKEUP_SATURDAY, "11:59")  # the cutoff of an inherited 调休 day is the school's (12:00 by default)
        assert service.report_absence(parent, pupil, MAKEUP_SATURDAY, None, "").created
        at(EARLY_CLOSE, "12:00")
        try:
            service.report_absence(parent, pupil, EARLY_CLOSE, None, "")
        except service.DailyError as error:
            assert error.code == "cutoff_passed"
        else:
            raise AssertionError("an absence after the cutoff was accepted")


def test_a_district_user_edits_only_their_districts_calendars(app: Flask, client: FlaskClient,
                                                              school: SchoolIds) -> None:
    with app.app_context():
        city = _calendar_id(_city_calendar(_city_user()))
        panlong = _calendar_id(create_calendar(_district_user("盘龙区", "panlong"), TERM, FIRST, LAST))
        _district_user()
    sign_in(client, "wuhua")
    entry = {"kind": "holiday", "first_day": "2026-09-14", "runs_weekday": "0"}
    assert client.get(f"/bureau/calendars/{city}").status_code == 200            # reads the city's
    assert post_form(client, f"/bureau/calendars/{city}", entry).status_code == 403
    assert post_form(client, f"/bureau/calendars/{city}/publish", token_from=f"/bureau/calendars/{city}"
                     ).status_code == 403
    assert client.get(f"/bureau/calendars/{panlong}").status_code == 404          # another district's
    assert post_form(client, f"/bureau/calendars/{panlong}", entry, token_from="/bureau/calendars"
                     ).status_code == 404
    made = post_form(client, "/bureau/calendars", {"term_name": TERM, "first_day": "2026-09-01",
                                                   "last_day": "2027-01-22"})
    assert made.status_code == 302
    own = int(made.headers["Location"].rsplit("/", 1)[1])
    assert post_form(client, f"/bureau/calendars/{own}", entry).status_code == 302
    assert post_form(client, f"/bureau/calendars/{own}", {**entry, "first_day": "2027-03-01"}).status_code == 400
    with app.app_context():
        calendar = db.session.get(BureauCalendar, own)
        city_calendar = db.session.get(BureauCalendar, city)
        assert calendar is not None and city_calendar is not None
        assert calendar.district is not None and calendar.district.name == "五华区"
        assert [d.day for d in calendar.days] == [date(2026, 9, 14)]
        assert date(2026, 9, 14) not in {d.day for d in city_calendar.days}


def test_a_city_user_does_not_edit_a_districts_calendar(app: Flask, client: FlaskClient, school: SchoolIds) -> None:
    with app.app_context():
        district = _calendar_id(create_calendar(_district_user(), TERM, FIRST, LAST))
        _city_user()
    sign_in(client, "city")
    assert client.get(f"/bureau/calendars/{district}").status_code == 200
    assert post_form(client, f"/bureau/calendars/{district}", {"kind": "holiday", "first_day": "2026-09-14",
                                                               "runs_weekday": "0"}).status_code == 403
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "city"))
        calendar = db.session.get(BureauCalendar, district)
        assert user is not None and calendar is not None
        try:
            publish(user, calendar)
        except CalendarError:
            pass
        else:
            raise AssertionError("a city user published a district's calendar")
        assert calendar.published_at is None


def test_a_school_admin_reads_but_cannot_remove_inherited_entries(app: Flask, client: FlaskClient, school: SchoolIds,
                                                                  signed_in: Callable[..., User]) -> None:
    with app.app_context():
        calendar = _city_calendar(_city_user())
        inherited = calendar.days[0].id
    signed_in("school_admin")
    page = client.get("/daily/calendar").get_data(as_text=True)
    assert "国庆" in page and "市教育局" in page  # the entry and where it comes from
    assert client.get("/bureau/calendars").status_code == 403
    assert post_form(client, f"/daily/calendar/day/{inherited}/remove", token_from="/daily/calendar"
                     ).status_code == 404
    added = post_form(client, "/daily/calendar/entries", {"kind": "holiday", "first_day": "2026-10-20",
                                                           "note": "校运会", "runs_weekday": "0"},
                      token_from="/daily/calendar")
    assert added.status_code == 302
    with app.app_context():
        assert db.session.get(CalendarDay, inherited) is not None
        term = _term(school)
        rules = calendar_rules(term)
        assert rules is not None and service_day(rules, date(2026, 10, 20)).reason == DayReason.HOLIDAY
        own = own_calendar(term)
        assert own.first_day is None and [d.note for d in own.days] == ["校运会"]
        own_id = own.days[0].id
    assert post_form(client, f"/daily/calendar/day/{own_id}/remove", token_from="/daily/calendar").status_code == 302


def test_the_bureau_imports_the_schools_spreadsheet(app: Flask, client: FlaskClient, school: SchoolIds) -> None:
    with app.app_context():
        _city_user()
    sign_in(client, "city")
    template = client.get("/bureau/calendars/template.xlsx")
    assert template.status_code == 200 and template.data.startswith(b"PK")  # the schools' own template
    bad = [
        ["学期", "2026-09-01", "2027-01-22", None, None, None],
        ["请假截止", None, None, None, "11:30", None],          # row 3: each school sets its own
        ["调休", "2026-10-10", None, "周日", None, None],       # row 4: a weekend timetable
        ["放假", "2027-03-01", None, None, None, None],         # outside the term (row 5)
    ]
    response = _bureau_upload(client, _xlsx(bad))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for row, column in ((3, "类型"), (4, "按星期几上课")):
        assert f"第 {row} 行，「{column}」列" in page or f"Row {row}, column “{column}”" in page, (row, page[-3000:])
    assert "第 5 行" in page or "Row 5" in page
    with app.app_context():
        assert db.session.scalar(select(BureauCalendar)) is None
    good = [["学期", "2026-09-01", "2027-01-22", None, None, None],
            ["放假", "2026-10-01", "2026-10-07", None, None, "国庆"]]
    made = _bureau_upload(client, _xlsx(good))
    assert made.status_code == 302
    again = _bureau_upload(client, _xlsx(good[:1]))  # the same term name again replaces the entries
    assert again.status_code == 302 and again.headers["Location"] == made.headers["Location"]
    with app.app_context():
        calendars = db.session.scalars(select(BureauCalendar)).all()
        assert len(calendars) == 1 and calendars[0].days == [] and calendars[0].district_id is None


def test_a_school_inheriting_its_dates_imports_without_a_term_row(app: Flask, client: FlaskClient,
                                                                  school: SchoolIds,
                                                                  signed_in: Callable[..., User]) -> None:
    with app.app_context():
        _city_calendar(_city_user())
    signed_in("school_admin")
    response = post_form(client, "/daily/calendar", {
        "file": (io.BytesIO(_xlsx([["放假", "2026-10-20", None, None, None, "校运会"],
                                   ["请假截止", None, None, None, "11:00", None]])), "校历.xlsx")})
    assert response.status_code == 302
    with app.app_context():
        rules = calendar_rules(_term(school))
        assert rules is not None and rules.first_day == FIRST and rules.absence_cutoff == "11:00"
        assert service_day(rules, HOLIDAY).reason == DayReason.HOLIDAY  # the city's entries stay
        assert service_day(rules, date(2026, 10, 20)).reason == DayReason.HOLIDAY


def test_the_school_date_and_cutoff_follow_the_timezone_setting(app: Flask, daily: object) -> None:
    """Asia/Urumqi is UTC+6: at 05:59 UTC it is 11:59 there (13:59 in Beijing), so the noon cutoff has not passed."""
    app.config["TIMEZONE"] = "Asia/Urumqi"
    with app.app_context():
        pupil = db.session.scalar(select(Pupil).where(Pupil.number == "P001"))
        assert pupil is not None
        parent = create_user("parent", pupil=pupil)
        app.config["NOW"] = utc(MONDAY, "00:30", "Asia/Urumqi")
        assert school_today() == MONDAY  # 18:30 UTC on Sunday
        app.config["NOW"] = utc(MONDAY, "11:59", "Asia/Urumqi")
        assert service.report_absence(parent, pupil, MONDAY, None, "").created
        app.config["NOW"] = utc(MONDAY, "12:00", "Asia/Urumqi")
        try:
            service.cancel_absence(parent, pupil, service.absences_of(pupil, MONDAY)[0].id)
        except service.DailyError as error:
            assert error.code == "cutoff_passed"
        else:
            raise AssertionError("cancelled after the Urumqi noon cutoff")


def _calendar_id(calendar: BureauCalendar) -> int:
    return calendar.id


def _bureau_upload(client: FlaskClient, data: bytes) -> object:
    return post_form(client, "/bureau/calendars/import", {"term_name": TERM, "file": (io.BytesIO(data), "校历.xlsx")},
                     token_from="/bureau/calendars")
