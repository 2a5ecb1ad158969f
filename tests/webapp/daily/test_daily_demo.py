"""The demo's daily service on a hand-made published school (ten pupils in one Monday session): a calendar
around today, the duty login, a day in progress the duty teacher sees first; seeding again changes nothing."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import TEST_PASSWORD
from tests.webapp.daily.conftest import MAKEUP_SATURDAY, MONDAY, utc
from tests.webapp.factories import publish, pupil, request, session, sign_in, small_term, teacher
from webapp.daily.calendar import service_day
from webapp.daily.demo import DUTY_USERNAME, seed_day
from webapp.daily.roster import calendar_rules
from webapp.extensions import db
from webapp.models import Absence, Handover, RollCallMark, SchoolCalendar, Term
from webapp.security import hash_password


def _school() -> Term:
    pupils = [pupil(f"D{i:02d}") for i in range(10)]
    term = small_term([session("A", day=1, capacity=20, ppt=20)], [teacher("T1", [(1, "P1")])], pupils,
                      [request(p.id) for p in pupils], code="KM-DEMO-DAY")
    publish(term, [(p.id, "A") for p in pupils], [("T1", "A")])
    return term


def _counts() -> tuple[int, ...]:
    return tuple(int(db.session.scalar(select(func.count()).select_from(model)) or 0)
                 for model in (SchoolCalendar, RollCallMark, Handover, Absence))


def test_a_day_in_progress(app: Flask, client: FlaskClient) -> None:
    app.config["NOW"] = utc(MONDAY, "16:10")
    with app.app_context():
        term = _school()
        line = seed_day(term, hash_password(TEST_PASSWORD))
        assert "marked" in line, line
        calendars, marks, handovers, absences = _counts()
        assert calendars == 1 and marks >= 5 and handovers == 1 and absences == 1
        statuses = {m.status for m in db.session.scalars(select(RollCallMark))}
        assert statuses == {"present", "late", "absent"}
        assert seed_day(term, hash_password(TEST_PASSWORD)).endswith("already there")
        assert _counts() == (calendars, marks, handovers, absences)
    sign_in(client, DUTY_USERNAME)
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "已点名" in page
    assert "您的班级：未请假缺席" in page  # the duty login's teacher is the absent pupil's class teacher


def test_a_weekend_demo_is_a_makeup_day(app: Flask) -> None:
    app.config["NOW"] = utc(MAKEUP_SATURDAY, "10:00")
    with app.app_context():
        term = _school()
        seed_day(term, hash_password(TEST_PASSWORD))
        rules = calendar_rules(term)
        assert rules is not None
        day = service_day(rules, MAKEUP_SATURDAY)
        assert day.service and day.weekday == 1
        assert _counts()[1] >= 5  # the Saturday's roll-call is under way
