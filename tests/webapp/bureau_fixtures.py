"""A tiny seeded city for the bureau tests: two districts, three schools, hand-made runs.

Figures worked out by hand (see test_bureau.py):
- KM-TEST-0001 (五华区, 6 pupils, published run): 4 requesting, 6 requested pupil-days, 2 unserved, 3 served,
  teachers T3 (2 sessions) and T1 (1 session).
- KM-TEST-0002 (五华区, 4 pupils, draft run only): 2 requesting, 3 requested pupil-days, 1 unserved, 2 served,
  teacher T3 (1 session).
- KM-TEST-0003 (盘龙区, 3 pupils): term "2026-spring" (published, 1 of 1 covered) and the newer "2026-autumn"
  with one request and no run yet.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tests.conftest import make_school
from webapp.extensions import db
from webapp.models import (
    Activity,
    AllocationRun,
    CareRequest,
    Period,
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


def _ids(school: School) -> tuple[Term, dict[str, int], dict[str, int], dict[str, int]]:
    term = db.session.scalar(select(Term).where(Term.school_id == school.id).order_by(Term.id.desc()))
    assert term is not None
    pupils = {p.number: p.id for p in db.session.scalars(select(Pupil).where(Pupil.school_id == school.id))}
    sessions = {s.code: s.id for s in db.session.scalars(select(Session).where(Session.term_id == term.id))}
    teachers = {
        t.code: t.id for t in db.session.scalars(select(Teacher).where(Teacher.school_id == school.id))
    }
    return term, pupils, sessions, teachers


def _request(term: Term, pupil_id: int, days: list[int], periods: list[str], status: str = "active") -> None:
    db.session.add(
        CareRequest(
            term_id=term.id,
            pupil_id=pupil_id,
            days=days,
            periods=periods,
            preferences=[],
            pickup_time="17:30",
            status=status,
        )
    )


def _run(
    term: Term,
    pupils: dict[str, int],
    sessions: dict[str, int],
    teachers: dict[str, int],
    *,
    assignments: list[tuple[str, str]],
    unserved: list[tuple[str, int]],
    staffing: list[tuple[str, str]],
    publish: bool,
) -> AllocationRun:
    run = AllocationRun(
        term_id=term.id,
        state="done",
        stage="done",
        progress=1.0,
        status="OPTIMAL",
        is_published=publish,
        stats={},
    )
    db.session.add(run)
    db.session.flush()
    for pupil, session in assignments:
        db.session.add(RunAssignment(run_id=run.id, pupil_id=pupils[pupil], session_id=sessions[session]))
    for pupil, day in unserved:
        db.session.add(
            RunUnserved(run_id=run.id, pupil_id=pupils[pupil], day=day, code="no_seat", reason="座位不足")
        )
    for teacher, session in staffing:
        db.session.add(RunStaffing(run_id=run.id, teacher_id=teachers[teacher], session_id=sessions[session]))
    if publish:
        term.published_run_id = run.id
    return run


def seed_city() -> dict[str, Any]:
    """Create the tiny city (call inside an app context); returns the schools by code and district ids."""
    a = make_school("KM-TEST-0001", district_name="五华区", n_pupils=6)
    b = make_school("KM-TEST-0002", district_name="五华区", n_pupils=4)
    c = make_school("KM-TEST-0003", district_name="盘龙区", n_pupils=3)

    term, pupils, sessions, teachers = _ids(a)
    _request(term, pupils["P001"], [1, 2], ["P1"])
    _request(term, pupils["P002"], [1, 2], ["P1", "P2"])
    _request(term, pupils["P003"], [1], ["P1", "P2", "P3"])
    _request(term, pupils["P004"], [2], ["P1"])
    _request(term, pupils["P005"], [1, 2], ["P1"], status="withdrawn")
    _run(
        term,
        pupils,
        sessions,
        teachers,
        assignments=[
            ("P001", "S11"),
            ("P001", "S21"),
            ("P002", "S11"),
            ("P002", "S12"),
            ("P002", "S21"),
            ("P004", "S21"),
        ],
        unserved=[("P002", 2), ("P003", 1)],
        staffing=[("T3", "S11"), ("T3", "S21"), ("T1", "S12")],
        publish=True,
    )

    term, pupils, sessions, teachers = _ids(b)
    _request(term, pupils["P001"], [1], ["P1"])
    _request(term, pupils["P002"], [1, 2], ["P1"])
    _run(
        term,
        pupils,
        sessions,
        teachers,
        assignments=[("P001", "S11"), ("P002", "S11")],
        unserved=[("P002", 2)],
        staffing=[("T3", "S11")],
        publish=False,
    )

    spring, pupils, sessions, teachers = _ids(c)
    spring.name = "2026-spring"
    spring.requests_open_at = utcnow() - timedelta(days=200)
    _request(spring, pupils["P001"], [1], ["P1"])
    _run(
        spring,
        pupils,
        sessions,
        teachers,
        assignments=[("P001", "S11")],
        unserved=[],
        staffing=[("T3", "S11")],
        publish=True,
    )
    autumn = Term(
        school_id=c.id,
        name="2026-autumn",
        requests_open_at=utcnow() - timedelta(days=1),
        weekdays=[1, 2, 3, 4, 5],
        priority_weights={"0": 1, "1": 2},
    )
    db.session.add(autumn)
    db.session.flush()
    period = Period(term_id=autumn.id, code="P1", start="15:30", end="16:30", position=0)
    activity = Activity(term_id=autumn.id, code="homework", name="作业辅导", category="homework")
    db.session.add_all([period, activity])
    db.session.flush()
    db.session.add(
        Session(
            term_id=autumn.id,
            code="S31",
            activity_id=activity.id,
            day=3,
            period_id=period.id,
            capacity=30,
            pupils_per_teacher=30,
        )
    )
    _request(autumn, pupils["P002"], [3], ["P1"])
    db.session.commit()
    return {
        "schools": {s.code: s.id for s in (a, b, c)},
        "districts": {s.district.name: s.district_id for s in (a, b, c) if s.district is not None},
    }
