"""Fixtures for the webapp, browser and load tests: an app on a temporary SQLite file, clients and a small school."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from webapp import create_app
from webapp.extensions import db
from webapp.family import hash_enrolment_code
from webapp.models import (
    Activity,
    District,
    Period,
    Pupil,
    School,
    Session,
    Teacher,
    TeacherAvailability,
    Term,
    utcnow,
)

TEST_PASSWORD = "correct-horse-battery"
TEST_ENROLMENT_CODE = "ABCD2345"


def _make_app(tmp_path: Any, **overrides: Any) -> Flask:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.db'}",
        "WTF_CSRF_ENABLED": True,
        "RATELIMIT_ENABLED": False,
        "IMPORT_HOLD_FOLDER": str(tmp_path / "held-imports"),
    }
    config.update(overrides)
    app = create_app(config)
    with app.app_context():
        db.create_all()
    return app


@pytest.fixture
def app(tmp_path: Any) -> Iterator[Flask]:
    """The app with CSRF protection on, as in production."""
    app = _make_app(tmp_path)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_no_csrf(tmp_path: Any) -> Iterator[Flask]:
    """The app with CSRF checks off, for tests about something else."""
    app = _make_app(tmp_path, WTF_CSRF_ENABLED=False)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def make_school(code: str = "KM-TEST-0001", *, district_name: str = "五华区", n_pupils: int = 6) -> School:
    """District, school and a term "2026-autumn" with P1–P3, four activities, sessions, teachers and pupils.

    Pupils get numbers P001…; each has enrolment code TEST_ENROLMENT_CODE. Call inside an app context.
    """
    district = db.session.query(District).filter_by(name=district_name).one_or_none()
    if district is None:
        district = District(name=district_name, city="昆明市")
        db.session.add(district)
    school = School(code=code, name=f"测试小学{code[-4:]}", district=district)
    now = utcnow()
    term = Term(school=school, name="2026-autumn", requests_open_at=now - timedelta(days=1),
                requests_close_at=now + timedelta(days=14), weekdays=[1, 2, 3, 4, 5],
                priority_weights={"0": 1, "1": 2, "2": 4}, lottery_seed=7)
    periods = [Period(term=term, code=f"P{i + 1}", start=start, end=end, position=i)
               for i, (start, end) in enumerate([("15:30", "16:30"), ("16:30", "17:30"), ("17:30", "18:30")])]
    activities = {
        "homework": Activity(term=term, code="homework", name="作业辅导", category="homework"),
        "football": Activity(term=term, code="football", name="足球", category="sports", qualification="sports"),
        "art": Activity(term=term, code="art", name="美术", category="arts", qualification="arts"),
        "care": Activity(term=term, code="care", name="延时托管", category="care"),
    }
    db.session.add_all([school, term, *periods, *activities.values()])
    sessions = []
    for day in (1, 2):
        sessions += [
            Session(term=term, code=f"S{day}1", activity=activities["homework"], day=day, period=periods[0],
                    room="3-1教室", capacity=40, grade_lo=1, grade_hi=6, pupils_per_teacher=40, min_pupils=0),
            Session(term=term, code=f"S{day}2", activity=activities["football"], day=day, period=periods[1],
                    room="操场", capacity=20, grade_lo=3, grade_hi=6, pupils_per_teacher=20, min_pupils=0),
            Session(term=term, code=f"S{day}3", activity=activities["art"], day=day, period=periods[1],
                    room="美术室", capacity=20, grade_lo=1, grade_hi=6, pupils_per_teacher=15, min_pupils=0),
            Session(term=term, code=f"S{day}4", activity=activities["care"], day=day, period=periods[2],
                    room="礼堂", capacity=60, grade_lo=1, grade_hi=6, pupils_per_teacher=30, min_pupils=0),
        ]
    teachers = [
        Teacher(school=school, code="T1", name="李老师", qualifications=["sports"], max_sessions=6),
        Teacher(school=school, code="T2", name="王老师", qualifications=["arts"], max_sessions=6),
        Teacher(school=school, code="T3", name="赵老师", qualifications=[], max_sessions=6),
    ]
    db.session.add_all(sessions + teachers)
    for teacher in teachers:
        for day in (1, 2):
            for period in periods:
                db.session.add(TeacherAvailability(teacher=teacher, term=term, day=day, period=period))
    code_hash = hash_enrolment_code(TEST_ENROLMENT_CODE)
    for i in range(n_pupils):
        db.session.add(Pupil(school=school, number=f"P{i + 1:03d}", name=f"学生{i + 1}", grade=3 + i % 3,
                             class_name=f"{3 + i % 3}-1", family_code=None, priority=i % 2,
                             enrolment_code_hash=code_hash))
    db.session.commit()
    return school
