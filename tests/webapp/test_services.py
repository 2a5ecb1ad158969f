"""ORM <-> scheduler: an instance survives the database, a solution is stored and read back intact."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from scheduler import domain
from scheduler.io import load_instance
from scheduler.solve import SolverConfig, solve
from scheduler.validation import validate
from webapp.extensions import db
from webapp.models import AllocationRun, CareRequest, Pin, Pupil, RunAssignment, Session, Teacher, Term
from webapp.services import (
    instance_to_term,
    periods_for_pickup,
    pickup_for_periods,
    run_to_solution,
    school_from_instance,
    store_solution,
    term_to_instance,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "spec" / "example-instance.json"


@pytest.fixture
def example() -> domain.Instance:
    if not EXAMPLE.exists():
        pytest.fail(f"{EXAMPLE} is missing")
    return load_instance(EXAMPLE)


def _import(instance: domain.Instance) -> Term:
    school = school_from_instance(instance, city="昆明市")
    db.session.flush()
    return instance_to_term(instance, school)


def assert_same_instance(expected: domain.Instance, actual: domain.Instance) -> None:
    for field in dataclasses.fields(domain.Instance):
        if field.compare:
            assert getattr(actual, field.name) == getattr(expected, field.name), field.name


def test_round_trip_field_by_field(app: Flask, example: domain.Instance) -> None:
    with app.app_context():
        term = _import(example)
        rebuilt = term_to_instance(term)
        assert_same_instance(example, rebuilt)
        assert rebuilt.school.district == "五华区" and term.school.district.city == "昆明市"
        request = db.session.scalar(select(CareRequest).join(Pupil).where(Pupil.number == "P002"))
        assert request is not None and request.pickup_time == "18:30"


def test_import_twice_updates_in_place(app: Flask, example: domain.Instance) -> None:
    with app.app_context():
        first = _import(example)
        smaller = dataclasses.replace(
            example,
            sessions=tuple(s for s in example.sessions if s.id != "S4"),
            requests=tuple(r for r in example.requests if r.pupil != "P004"),
            fixed=(domain.Assignment("P001", "S3"),),
        )
        second = _import(smaller)
        assert second.id == first.id
        assert db.session.scalar(select(func.count()).select_from(Term)) == 1
        assert db.session.scalar(select(func.count()).select_from(Session)) == 3
        assert db.session.scalar(select(func.count()).select_from(Teacher)) == 3
        statuses = dict(db.session.execute(select(Pupil.number, CareRequest.status).join(Pupil)).all())
        assert statuses["P004"] == "withdrawn" and statuses["P001"] == "active"
        rebuilt = term_to_instance(second)
        assert rebuilt.fixed == (domain.Assignment("P001", "S3"),)
        assert_same_instance(dataclasses.replace(smaller, pupils=smaller.pupils[:3]), rebuilt)


def test_solve_store_and_read_back(app: Flask, example: domain.Instance) -> None:
    with app.app_context():
        term = _import(example)
        db.session.add(Pin(term=term, pupil_id=db.session.scalar(select(Pupil.id).where(Pupil.number == "P001")),
                           session_id=db.session.scalar(select(Session.id).where(Session.code == "S1"))))
        db.session.commit()
        instance = term_to_instance(term)
        solution = solve(instance, SolverConfig(time_limit=30, workers=1))
        assert solution.status == domain.Status.OPTIMAL
        assert validate(instance, solution).ok
        run = AllocationRun(term=term, state="running")
        db.session.add(run)
        db.session.commit()
        store_solution(term, solution, run, instance=instance)

        stored = run_to_solution(db.session.get(AllocationRun, run.id))
        assert set(stored.assignments) == set(solution.assignments)
        assert set(stored.staffing) == set(solution.staffing)
        assert stored.objective == solution.objective and stored.objective.coverage == 9
        assert {(u.pupil, u.day, u.code) for u in stored.unserved} == \
            {(u.pupil, u.day, u.code) for u in solution.unserved}
        assert run.state == "done" and run.demand == instance.demand() and run.coverage == 9
        pinned = db.session.scalars(select(RunAssignment).where(RunAssignment.pinned)).all()
        assert [(a.pupil.number, a.session.code) for a in pinned] == [("P001", "S1")]

        # Storing again replaces rather than duplicates; publishing makes it the next run's `previous`.
        store_solution(term, solution, run, instance=instance)
        assert db.session.scalar(select(func.count()).select_from(RunAssignment)) == len(solution.assignments)
        term.published_run_id = run.id
        db.session.commit()
        assert set(term_to_instance(term).previous) == set(solution.assignments)


def test_store_solution_rejects_unknown_ids(app: Flask, example: domain.Instance) -> None:
    with app.app_context():
        term = _import(example)
        run = AllocationRun(term=term)
        db.session.add(run)
        db.session.commit()
        bad = domain.Solution(school=example.school.id, status=domain.Status.FEASIBLE,
                              assignments=(domain.Assignment("P001", "S1"), domain.Assignment("P999", "S1")),
                              staffing=(), objective=domain.Objective(0, 0, 0, 0, 0))
        with pytest.raises(ValueError, match="P999"):
            store_solution(term, bad, run)
        assert db.session.scalar(select(func.count()).select_from(RunAssignment)) == 0


def test_previous_becomes_a_published_run(app: Flask, example: domain.Instance) -> None:
    previous = (domain.Assignment("P002", "S1"), domain.Assignment("P002", "S2"))
    with app.app_context():
        term = _import(dataclasses.replace(example, previous=previous))
        assert term.published_run is not None and term.published_run.is_published
        assert term_to_instance(term).previous == previous


def test_pickup_periods(app: Flask, example: domain.Instance) -> None:
    with app.app_context():
        periods = _import(example).periods
        assert periods_for_pickup(periods, "16:30") == ["P1"]
        assert periods_for_pickup(periods, "17:30") == ["P1", "P2"]
        assert periods_for_pickup(periods, "18:00") == ["P1", "P2", "P3"]
        assert pickup_for_periods(periods, ["P1", "P2"]) == "17:30"
        assert pickup_for_periods(periods, []) == ""
