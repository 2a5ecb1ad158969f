"""Model constraints: uniqueness, cascades, naive-UTC times and the request window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.conftest import make_school
from tests.webapp.factories import create_user
from webapp.audit import record
from webapp.extensions import db
from webapp.models import (
    AllocationRun,
    AuditLog,
    CareRequest,
    Guardianship,
    Pupil,
    RunAssignment,
    School,
    Session,
    TeacherAvailability,
    Term,
    utcnow,
)


def test_pupil_number_unique_per_school(app: Flask) -> None:
    with app.app_context():
        school = make_school()
        make_school("KM-TEST-0002")  # the same pupil numbers in another school are fine
        db.session.add(Pupil(school=school, number="P001", name="重复", grade=2))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_one_request_per_pupil_and_term(app: Flask) -> None:
    with app.app_context():
        school = make_school()
        term = school.terms[0]
        pupil = school.pupils[0]
        for _ in range(2):
            db.session.add(CareRequest(term=term, pupil=pupil, days=[1], pickup_time="17:30", periods=["P1", "P2"]))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_deleting_a_school_cascades(app: Flask) -> None:
    with app.app_context():
        school = make_school()
        term = school.terms[0]
        pupil = school.pupils[0]
        user = create_user("parent", pupil=pupil)
        db.session.add(CareRequest(term=term, pupil=pupil, days=[1], pickup_time="17:30", periods=["P1"]))
        run = AllocationRun(term=term, state="done")
        db.session.add(run)
        db.session.flush()
        db.session.add(RunAssignment(run_id=run.id, pupil_id=pupil.id, session_id=term.sessions[0].id))
        term.published_run_id = run.id
        db.session.commit()
        db.session.delete(db.session.get(School, school.id))
        db.session.commit()
        for model in (Term, Session, Pupil, CareRequest, AllocationRun, RunAssignment, TeacherAvailability,
                      Guardianship):
            assert db.session.scalar(select(func.count()).select_from(model)) == 0, model.__name__
        assert db.session.get(type(user), user.id) is not None


def test_request_window(app: Flask) -> None:
    with app.app_context():
        term = make_school().terms[0]
        now = utcnow()
        assert now.tzinfo is None
        assert term.requests_open(now)
        assert not term.requests_open(now + timedelta(days=30))
        assert not term.requests_open(now - timedelta(days=2))
        term.requests_open_at = term.requests_close_at = None
        assert term.requests_open(now)


def test_audit_detail_drops_secrets(app: Flask) -> None:
    with app.app_context():
        record("pupils.import", "pupils", {"rows": 3, "phone": "13800138000", "nested": {"password": "x", "ok": 1}},
               commit=True)
        entry = db.session.scalar(select(AuditLog))
        assert entry is not None and entry.detail == {"rows": 3, "nested": {"ok": 1}}
