"""The bureau's daily-service figures: placed, attended, reported absent and late pickups, counts only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import make_school
from tests.webapp.daily.conftest import MONDAY, TUESDAY, Daily, utc
from tests.webapp.factories import PHONES, create_user
from webapp.daily import notice
from webapp.daily.figures import SchoolFigures, rollup, school_figures
from webapp.extensions import db
from webapp.models import Absence, District, Handover, Pupil, RollCallMark, School, Session, Term, User

Freeze = Callable[[date, str], None]


def _day(app: Flask, daily: Daily, *, handed_over_at: str) -> None:
    with app.app_context():
        s11 = db.session.scalar(select(Session.id).where(Session.code == "S11"))
        db.session.add(RollCallMark(client_id="fig-1", pupil_id=daily.pupil_id, session_id=s11, day=MONDAY,
                                    status="present"))
        db.session.add(Handover(pupil_id=daily.pupil_id, day=MONDAY, at=utc(MONDAY, handed_over_at)))
        db.session.add(Absence(pupil_id=daily.pupil_id, first_day=date(2026, 9, 14), last_day=date(2026, 9, 14)))
        db.session.commit()


def test_a_late_pickup_and_a_reported_absence(app: Flask, daily: Daily) -> None:
    _day(app, daily, handed_over_at="17:50")  # the last session ends 17:30
    with app.app_context():
        school = db.session.get(School, daily.school.id)
        assert school is not None
        week = school_figures(school, date(2026, 9, 1), TUESDAY)
        assert (week.expected, week.attended, week.reported_absent, week.late_pickups) == (1, 1, 0, 1)
        assert week.rate == 1.0
        fortnight = school_figures(school, date(2026, 9, 1), date(2026, 9, 14))
        assert (fortnight.expected, fortnight.attended, fortnight.reported_absent) == (1, 1, 1)


def test_on_time_is_not_late(app: Flask, daily: Daily) -> None:
    _day(app, daily, handed_over_at="17:38")
    with app.app_context():
        school = db.session.get(School, daily.school.id)
        assert school is not None and school_figures(school, MONDAY, MONDAY).late_pickups == 0


def test_the_bureau_page_shows_counts_not_children(app: Flask, client: FlaskClient, daily: Daily,
                                                   signed_in: Callable[..., User], at: Freeze) -> None:
    _day(app, daily, handed_over_at="17:50")
    at(TUESDAY, "10:00")
    with app.app_context():
        wuhua = db.session.scalar(select(District).where(District.name == "五华区"))
    signed_in("bureau", district=wuhua)
    page = client.get("/daily/bureau").get_data(as_text=True)
    assert "测试小学0001" in page and "100%" in page
    assert "学生1" not in page


def test_rollup_sums_counts_by_district_and_city_and_recomputes_rates(app: Flask, daily: Daily) -> None:
    with app.app_context():
        make_school("KM-TEST-0002", district_name="盘龙区", n_pupils=2)
        make_school("KM-TEST-0003", district_name="五华区", n_pupils=2)
        schools = {s.code: s for s in db.session.scalars(select(School))}
        rows = [SchoolFigures(schools["KM-TEST-0001"], 10, 9, 1, 2, 3, 4),
                SchoolFigures(schools["KM-TEST-0003"], 30, 15, 0, 1, 4, 4),
                SchoolFigures(schools["KM-TEST-0002"], 0, 0, 0, 0, 0, 5)]
        districts = rollup(rows, lambda s: s.district.name if s.district else "")
        assert [(r.label, r.schools, r.expected, r.attended, r.late_pickups, r.signed, r.placed)
                for r in districts] == [("五华区", 2, 40, 24, 3, 7, 8), ("盘龙区", 1, 0, 0, 0, 0, 5)]
        assert districts[0].rate == 24 / 40  # not the mean of 90% and 50%
        assert districts[1].rate is None and districts[1].signed_rate == 0.0
        (city,) = rollup(rows, lambda s: s.district.city if s.district else "")
        assert (city.label, city.schools, city.expected, city.signed, city.placed) == ("昆明市", 3, 40, 7, 13)


def test_signed_agreements_reach_the_figures_and_the_city_wide_page(app: Flask, client: FlaskClient,
                                                                     daily: Daily, signed_in: Callable[..., User],
                                                                     at: Freeze) -> None:
    _day(app, daily, handed_over_at="17:50")
    at(TUESDAY, "10:00")
    with app.app_context():
        term = db.session.get(Term, daily.school.term_id)
        admin = create_user("school_admin", login="fig-admin", school=term.school)
        version = notice.publish_notice(admin, term, "告家长书", "内容", "15:30–17:30", "安全")
        parent = create_user("parent", login=PHONES["parent_c"], pupil=db.session.get(Pupil, daily.pupil_id))
        notice.sign_notice(parent, db.session.get(Pupil, daily.pupil_id), version.id)
        placed = len(notice.placed_pupil_ids(term))
        school = db.session.get(School, daily.school.id)
        figures = school_figures(school, MONDAY, TUESDAY)
        assert (figures.signed, figures.placed) == (1, placed)
        make_school("KM-TEST-0002", district_name="盘龙区", n_pupils=2)  # no daily service: not listed
    user = signed_in("bureau")
    with app.app_context():
        found = db.session.get(User, user.id)
        found.district_id, found.city_wide = None, True
        db.session.commit()
    page = client.get("/daily/bureau").get_data(as_text=True)
    assert "按城市" in page and "昆明市" in page and "按区" in page and "五华区" in page
    assert f"1 / {placed}" in page and "盘龙区" not in page
    assert "学生1" not in page and "测试小学0002" not in page
