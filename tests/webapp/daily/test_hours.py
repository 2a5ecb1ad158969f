"""Teacher hours for payroll: sessions that ran and were called, hours capped by early close, lessons and pay."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from tests.webapp.daily.conftest import EARLY_CLOSE, MONDAY, Daily
from webapp.daily.hours import month_hours
from webapp.extensions import db
from webapp.models import RollCallMark, School, Session, User


def _called(app: Flask, daily: Daily, *days: date) -> None:
    with app.app_context():
        sessions = {s.code: s.id for s in db.session.scalars(select(Session))}
        for day in days:
            for code in ("S11", "S12"):
                db.session.add(RollCallMark(client_id=f"h-{day}-{code}", pupil_id=daily.pupil_id,
                                            session_id=sessions[code], day=day, status="present"))
        db.session.commit()


def test_only_called_sessions_count_and_early_close_shortens(app: Flask, daily: Daily) -> None:
    _called(app, daily, MONDAY)
    with app.app_context():
        school = db.session.get(School, daily.school.id)
        assert school is not None
        september = {row.teacher.code: row for row in month_hours(school, date(2026, 9, 1))}
        # T3 staffs S11 (15:30–16:30), T1 S12 (16:30–17:30); Monday 14 September nobody called the roll
        assert (september["T3"].sessions, september["T3"].hours) == (1, 1.0)
        assert (september["T1"].sessions, september["T1"].hours) == (1, 1.0)
        assert september["T2"].sessions == 0
    _called(app, daily, EARLY_CLOSE)
    with app.app_context():
        school = db.session.get(School, daily.school.id)
        assert school is not None
        october = {row.teacher.code: row for row in month_hours(school, date(2026, 10, 1))}
        assert october["T3"].hours == 1.0 and october["T1"].sessions == 0  # S12 does not run after 16:30


def test_the_payroll_workbook(app: Flask, client: FlaskClient, daily: Daily,
                              signed_in: Callable[..., User]) -> None:
    _called(app, daily, MONDAY)
    app.config.update(DAILY_LESSON_HOURS=0.5, DAILY_LESSON_RATE=40)
    signed_in("school_admin")
    response = client.get("/daily/hours.xlsx?month=2026-09")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    rows = {r[0]: r for r in book["课时汇总"].iter_rows(min_row=3, values_only=True)}
    assert rows["T3"][2:] == (1, 1.0, 2.0, 40.0, 80.0)
    assert book["明细"].max_row == 3  # header + two sessions
    assert client.get("/daily/hours.xlsx?month=2026-13").status_code == 400
