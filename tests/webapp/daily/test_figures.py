"""The bureau's daily-service figures: placed, attended, reported absent and late pickups, counts only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.webapp.daily.conftest import MONDAY, TUESDAY, Daily, utc
from webapp.daily.figures import school_figures
from webapp.extensions import db
from webapp.models import Absence, District, Handover, RollCallMark, School, Session, User

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
