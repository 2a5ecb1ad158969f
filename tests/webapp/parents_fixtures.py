"""Helpers for the parents' tests: ids of the test school's rows and a published run for one child."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import (
    AllocationRun,
    CareRequest,
    Pupil,
    RunAssignment,
    RunStaffing,
    RunUnserved,
    School,
    Session,
    Teacher,
    Term,
    utcnow,
)

SCHOOL = "KM-TEST-0001"


def pupil_id(number: str = "P001", school_code: str = SCHOOL) -> int:
    school = db.session.scalar(select(School).where(School.code == school_code))
    assert school is not None
    pupil = db.session.scalar(select(Pupil).where(Pupil.school_id == school.id, Pupil.number == number))
    assert pupil is not None
    return int(pupil.id)


def term_of(school_code: str = SCHOOL) -> Term:
    term = db.session.scalar(select(Term).join(School).where(School.code == school_code))
    assert term is not None
    return term


def requests_for(pupil: int) -> list[CareRequest]:
    return list(db.session.scalars(select(CareRequest).where(CareRequest.pupil_id == pupil)).all())


def publish_for(pupil: int, *, with_params: bool = True) -> int:
    """Publish a run seating the pupil on Monday (homework then football) and leaving Tuesday uncovered."""
    term = term_of()
    db.session.add(CareRequest(term_id=term.id, pupil_id=pupil, days=[1, 2], pickup_time="17:30",
                               periods=["P1", "P2"], preferences=["football"], status="active"))
    run = AllocationRun(term_id=term.id, state="done", status="OPTIMAL", is_published=True,
                        published_at=utcnow(), version=1)
    db.session.add(run)
    db.session.flush()
    sessions = {s.code: s for s in db.session.scalars(select(Session).where(Session.term_id == term.id))}
    teachers = {t.code: t for t in db.session.scalars(select(Teacher))}
    for code in ("S11", "S12"):
        db.session.add(RunAssignment(run_id=run.id, pupil_id=pupil, session_id=sessions[code].id))
    db.session.add(RunStaffing(run_id=run.id, teacher_id=teachers["T3"].id, session_id=sessions["S11"].id))
    db.session.add(RunStaffing(run_id=run.id, teacher_id=teachers["T1"].id, session_id=sessions["S12"].id))
    params = {"day": 2, "period": "P2", "grade": 3, "seats": 20, "demand": 31}
    db.session.add(RunUnserved(run_id=run.id, pupil_id=pupil, day=2, code="no_seat",
                               reason="周二 P2：3年级可用座位 20 个，需求 31 人（已存）",
                               params=params if with_params else None, waitlist_position=2))
    term.published_run_id = run.id
    term.results_date = date(2026, 8, 25)
    db.session.commit()
    return int(run.id)
