"""The daily service's test world: the test school's published plan (P001 on Monday: S11 15:30–16:30 and
S12 16:30–17:30) with a calendar for the autumn term 2026.

Dates used throughout: Monday 2026-09-07 (a regular day), 2026-10-01..07 holidays, Saturday 2026-10-10 a 调休
make-up day running Monday's timetable, Monday 2026-10-12 an early-close day (pickup by 16:30), and from
2026-11-01 the winter timetable (pickup by 17:00). The parent's cutoff is 12:00 local, 04:00 UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.webapp.factories import SchoolIds, create_user, pupil_id, sign_in
from webapp.extensions import db
from webapp.labels import DEFAULT_TIMEZONE
from webapp.models import CalendarDay, CalendarDayKind, DutyTeacher, PickupWindow, SchoolCalendar, Teacher, User

MONDAY = date(2026, 9, 7)
HOLIDAY = date(2026, 10, 5)
MAKEUP_SATURDAY = date(2026, 10, 10)
EARLY_CLOSE = date(2026, 10, 12)
WINTER_MONDAY = date(2026, 11, 2)
TUESDAY = date(2026, 9, 8)


def utc(day: date, hhmm: str, zone: str = DEFAULT_TIMEZONE) -> datetime:
    """The naive-UTC instant of a local wall-clock time (Asia/Shanghai, UTC+8, unless `zone` says otherwise)."""
    local = datetime.combine(day, time.fromisoformat(hhmm), ZoneInfo(zone))
    return local.astimezone(UTC).replace(tzinfo=None)


def make_calendar(term_id: int, *, cutoff: str = "12:00") -> SchoolCalendar:
    calendar = SchoolCalendar(term_id=term_id, first_day=date(2026, 9, 1), last_day=date(2027, 1, 22),
                              absence_cutoff=cutoff)
    calendar.days = [CalendarDay(day=date(2026, 10, d), kind=CalendarDayKind.HOLIDAY, note="国庆")
                     for d in range(1, 8)]
    calendar.days += [
        CalendarDay(day=MAKEUP_SATURDAY, kind=CalendarDayKind.MAKEUP, runs_weekday=1, note="调休"),
        CalendarDay(day=EARLY_CLOSE, kind=CalendarDayKind.EARLY_CLOSE, pickup_time="16:30", note="教研"),
    ]
    calendar.pickup_windows = [PickupWindow(starts_on=date(2026, 11, 1), ends_on=date(2027, 1, 22),
                                            pickup_time="17:00", note="冬季作息")]
    db.session.add(calendar)
    db.session.commit()
    return calendar


@dataclass(frozen=True)
class Daily:
    school: SchoolIds
    pupil_id: int
    run_id: int


@pytest.fixture
def daily(app: Flask, school: SchoolIds, published_run: int) -> Daily:
    with app.app_context():
        make_calendar(school.term_id)
        return Daily(school, pupil_id("P001", school.code), published_run)


@pytest.fixture
def at(app: Flask) -> Callable[[date, str], None]:
    """Freeze the app clock at a local date and time: `at(MONDAY, "11:59")`."""

    def freeze(day: date, hhmm: str) -> None:
        app.config["NOW"] = utc(day, hhmm)

    return freeze


@pytest.fixture
def parent(app: Flask, client: FlaskClient, signed_in: Callable[..., User], daily: Daily) -> User:
    """A parent of P001, signed in on `client`."""
    return signed_in("parent")


def make_duty_teacher(school_id: int, login: str = "duty-x", teacher_code: str = "T1") -> User:
    """A duty-teacher account linked to the school's teacher `teacher_code`."""
    teacher = db.session.scalar(select(Teacher).where(Teacher.school_id == school_id, Teacher.code == teacher_code))
    assert teacher is not None
    user = create_user("duty_teacher", login=login)
    db.session.add(DutyTeacher(user_id=user.id, teacher_id=teacher.id))
    db.session.commit()
    return user


@pytest.fixture
def duty(app: Flask, client: FlaskClient, daily: Daily) -> int:
    """The test school's duty teacher (李老师, T1), signed in on `client`: the account's id."""
    with app.app_context():
        user_id = make_duty_teacher(daily.school.id).id
    sign_in(client, "duty-x")
    return user_id
