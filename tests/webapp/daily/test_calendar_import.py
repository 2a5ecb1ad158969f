"""The term calendar from a spreadsheet: all or nothing, every problem by row and column, re-import replaces."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from tests.webapp.factories import SchoolIds, post_form, xlsx
from webapp.daily.calendar import DayReason, service_day
from webapp.daily.roster import calendar_rules
from webapp.extensions import db
from webapp.models import AuditLog, SchoolCalendar, Term, User

HEADERS = ["类型", "开始日期", "结束日期", "按星期几上课", "接送时间", "说明"]
GOOD: list[list[Any]] = [
    ["学期", datetime(2026, 9, 1), "2027-01-22", None, None, None],
    ["请假截止", None, None, None, "11:30", None],
    ["放假", "2026/10/1", "2026年10月7日", None, None, "国庆"],
    ["调休", "2026-10-10", None, "周一", None, "调休上课"],
    ["提前放学", "2026-10-12", None, None, "16:30", "教研"],
    ["季节作息", "2026-11-01", "2027-01-22", None, "17:00", "冬季"],
]


def _xlsx(rows: list[list[Any]], headers: list[str] = HEADERS) -> bytes:
    return xlsx([headers, *rows])


def _upload(client: FlaskClient, data: bytes, name: str = "校历.xlsx") -> Any:
    return post_form(client, "/daily/calendar", {"file": (io.BytesIO(data), name)}, token_from="/daily/calendar")


def test_a_good_file_makes_the_calendar(app: Flask, client: FlaskClient, school: SchoolIds,
                                        signed_in: Callable[..., User]) -> None:
    signed_in("school_admin")
    response = _upload(client, _xlsx(GOOD))
    assert response.status_code == 302
    with app.app_context():
        term = db.session.get(Term, school.term_id)
        assert term is not None
        rules = calendar_rules(term)
        assert rules is not None and rules.absence_cutoff == "11:30"
        assert (rules.first_day, rules.last_day) == (date(2026, 9, 1), date(2027, 1, 22))
        assert service_day(rules, date(2026, 10, 5)).reason == DayReason.HOLIDAY
        assert service_day(rules, date(2026, 10, 10)).weekday == 1
        assert service_day(rules, date(2026, 10, 12)).ends_by == "16:30"
        assert service_day(rules, date(2026, 12, 7)).ends_by == "17:00"
        assert db.session.scalar(select(AuditLog.action).where(AuditLog.action == "calendar.import"))
    page = client.get("/daily/calendar").get_data(as_text=True)
    assert "2026-10-10" in page and "国庆" in page
    again = _upload(client, _xlsx(GOOD[:1]))  # importing replaces the whole calendar
    assert again.status_code == 302
    with app.app_context():
        calendars = db.session.scalars(select(SchoolCalendar)).all()
        assert len(calendars) == 1 and calendars[0].days == [] and calendars[0].absence_cutoff == "12:00"


def test_every_problem_is_listed_and_nothing_changes(app: Flask, client: FlaskClient, school: SchoolIds,
                                                     signed_in: Callable[..., User]) -> None:
    signed_in("school_admin")
    bad = [
        ["学期", "2026-09-01", "2027-01-22", None, None, None],
        ["放假", "2026-13-01", None, None, None, None],        # row 3: not a date
        ["调休", "2026-10-10", None, "周六", None, None],       # row 4: a weekend timetable
        ["提前放学", "2026-10-12", None, None, "4pm", None],     # row 5: not a time
        ["开学典礼", "2026-09-01", None, None, None, None],      # row 6: unknown kind
        ["放假", "2026-10-12", None, None, None, None],         # row 7: clashes with nothing yet, fine
        ["放假", "2026-10-12", None, None, None, None],         # row 8: the same day again
    ]
    response = _upload(client, _xlsx(bad))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for row, column in ((3, "开始日期"), (4, "按星期几上课"), (5, "接送时间"), (6, "类型"), (8, "开始日期")):
        assert f"第 {row} 行" in page or f"Row {row}" in page, row
        assert column in page
    with app.app_context():
        assert db.session.scalar(select(SchoolCalendar)) is None
    no_term_row = _upload(client, _xlsx([["放假", "2026-10-01", None, None, None, None]]))
    assert "学期" in no_term_row.get_data(as_text=True) and no_term_row.status_code == 422
    not_a_sheet = _upload(client, b"\x00\x01 not a spreadsheet", name="x.xls")
    assert not_a_sheet.status_code == 422


def test_the_template_downloads(client: FlaskClient, school: SchoolIds, signed_in: Callable[..., User]) -> None:
    signed_in("school_admin")
    response = client.get("/daily/calendar/template.xlsx")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    assert [c.value for c in book.worksheets[0][1]] == HEADERS
