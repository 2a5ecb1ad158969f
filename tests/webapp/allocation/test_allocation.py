"""The allocation service: one waitlist rule, the family lottery, seats freed and refilled, one transaction each."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, func, select, update

from scheduler import domain
from scheduler.explain import explain_unserved
from scheduler.validation import recompute_objective
from tests.webapp.factories import consistent, create_user, publish, pupil, request, session, small_term, teacher
from webapp.allocation import seats, service
from webapp.allocation.lottery import lottery_key, lottery_number
from webapp.allocation.waitlist import waitlist
from webapp.extensions import db
from webapp.models import (
    AllocationRun,
    AuditLog,
    CareRequest,
    Pupil,
    RunAssignment,
    RunUnserved,
    Session,
    Term,
    User,
    utcnow,
)
from webapp.services import store_solution, term_to_instance


def _id(number: str) -> int:
    found = db.session.scalar(select(Pupil.id).where(Pupil.number == number))
    assert found is not None
    return found


def _seated(run_id: int) -> set[tuple[str, str]]:
    return set(db.session.execute(
        select(Pupil.number, Session.code).select_from(RunAssignment)
        .join(Pupil, Pupil.id == RunAssignment.pupil_id).join(Session, Session.id == RunAssignment.session_id)
        .where(RunAssignment.run_id == run_id)).all())


def _stored_positions(run_id: int) -> dict[str, int | None]:
    return dict(db.session.execute(select(Pupil.number, RunUnserved.waitlist_position)
                                   .join(Pupil, Pupil.id == RunUnserved.pupil_id)
                                   .where(RunUnserved.run_id == run_id, RunUnserved.day == 1)).all())


def _admin(term: Term) -> User:
    return create_user("school_admin", school=term.school, login=f"alloc-admin-{term.id}")


def _draft(term: Term, assignments: Iterable[tuple[str, str]], staffing: Iterable[tuple[str, str]]
           ) -> AllocationRun:
    """A finished, unpublished run holding exactly these seats (unserved days worked out as the solver would)."""
    instance = term_to_instance(term)
    pairs = tuple(domain.Assignment(p, s) for p, s in assignments)
    staff = tuple(domain.Staffing(t, s) for t, s in staffing)
    draft = domain.Solution(instance.school.id, domain.Status.FEASIBLE, pairs, staff,
                            domain.Objective(0, instance.demand(), 0, 0, 0), explain_unserved(instance, pairs, staff))
    solution = dataclasses.replace(draft, objective=dataclasses.replace(
        recompute_objective(instance, draft), coverage_bound=instance.demand()))
    run = AllocationRun(term=term, state="running")
    db.session.add(run)
    db.session.commit()
    store_solution(term, solution, run, instance=instance)
    return run


def _full_term(extra_waiting: int = 3) -> Term:
    """Session A (2 seats, one teacher for up to 4) is full with S1 and S2; W1… wait for day 1."""
    pupils = [pupil("S1"), pupil("S2"), *(pupil(f"W{i}") for i in range(1, extra_waiting + 1))]
    return small_term([session("A", capacity=2, ppt=4)], [teacher("T1", [(1, "P1")])], pupils,
                      [request(p.id) for p in pupils])


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the database went away")


# ------------------------------------------------------------------------------------------ the waitlist rule


def test_publish_numbers_only_live_requests_and_a_withdrawal_renumbers(app: Flask) -> None:
    with app.app_context():
        term = _full_term()
        admin = _admin(term)
        run = _draft(term, [("S1", "A"), ("S2", "A")], [("T1", "A")])
        waiting = db.session.scalars(select(Pupil).where(Pupil.number.like("W%"))).all()
        first, second, third = (p.number for p in sorted(waiting, key=lambda p: lottery_key(term.lottery_seed, p)))
        db.session.execute(update(CareRequest).where(CareRequest.pupil_id == _id(first)).values(status="withdrawn"))
        db.session.commit()

        service.publish_run(run, admin)
        assert _stored_positions(run.id) == {first: None, second: 1, third: 2}
        assert [e.pupil.number for e in waitlist(term)] == [second, third]

        parent = create_user("parent", pupil=db.session.get(Pupil, _id(second)))
        row = db.session.scalar(select(CareRequest).where(CareRequest.pupil_id == _id(second)))
        assert row is not None
        assert service.withdraw_request(row, actor=parent, at=utcnow()) == 0  # no seat: nothing freed
        assert _stored_positions(run.id) == {first: None, second: None, third: 1}  # ...but the place is given up
        assert [e.pupil.number for e in waitlist(term)] == [third]


def test_siblings_share_one_draw_and_stand_together_on_the_waitlist(app: Flask) -> None:
    with app.app_context():
        family = [domain.Pupil(f"F{i}", f"学生F{i}", 3, "3-1", "FAM-1", 0) for i in range(2)]
        others = [pupil(f"X{i:02d}") for i in range(12)]
        everyone = [*family, *others]
        term = small_term([session("A", capacity=0)], [], everyone, [request(p.id, days=(1, 2)) for p in everyone])
        publish(term, [], [])
        siblings = [db.session.get(Pupil, _id(p.id)) for p in family]
        assert all(s is not None for s in siblings)
        numbers = {lottery_number(term.lottery_seed, s) for s in siblings if s is not None}
        assert len(numbers) == 1  # one draw for the family
        stranger = db.session.get(Pupil, _id("X00"))
        assert stranger is not None and lottery_number(term.lottery_seed, stranger) not in numbers
        for day in (1, 2):
            queue = [e.pupil.number for e in waitlist(term) if e.day == day]
            where = sorted(queue.index(p.id) for p in family)
            assert where[1] == where[0] + 1, queue  # adjacent among equals


# ------------------------------------------------------------------------------------------ seats


def test_removing_a_seat_refills_it_from_the_waitlist_in_one_go(app: Flask) -> None:
    with app.app_context():
        term = _full_term()
        admin = _admin(term)
        run = publish(term, [("S1", "A"), ("S2", "A")], [("T1", "A")])
        service.fill_freed_seats(term)  # numbers the waitlist
        head = waitlist(term)[0].pupil.number
        change = service.remove_seat(run, _id("S2"), db.session.scalar(select(Session.id)), actor=admin)
        assert change.published and [p["pupil_id"] for p in change.promoted] == [_id(head)]
        assert _seated(run.id) == {("S1", "A"), (head, "A")}
        stored = _stored_positions(run.id)  # S2 still asks for the day: it waits now, behind nobody it displaced
        assert head not in stored and stored["S2"] is not None
        assert sorted(p for p in stored.values() if p is not None) == [1, 2, 3]
        assert {e.pupil.number for e in waitlist(term)} == set(stored)
        fresh = db.session.get(AllocationRun, run.id)
        assert fresh is not None and fresh.metrics and fresh.metrics["coverage"] == fresh.coverage == 2
        assert consistent(term, objective=False) == []
        with pytest.raises(service.SeatNotFound):
            service.remove_seat(run, _id("S2"), db.session.scalar(select(Session.id)), actor=admin)


def test_raising_a_capacity_offers_the_new_seats(app: Flask) -> None:
    with app.app_context():
        term = _full_term()
        admin = _admin(term)
        run = publish(term, [("S1", "A"), ("S2", "A")], [("T1", "A")])
        found = db.session.scalar(select(Session))
        assert found is not None
        _, change = service.save_session(term, found.id, {"capacity": 3}, actor=admin)
        assert len(change.promoted) == 1 and len(_seated(run.id)) == 3
        assert consistent(term, objective=False) == []
        with pytest.raises(service.RuleBroken) as refused:  # three sit there now: two seats would break rule 4
            service.save_session(term, found.id, {"capacity": 2}, actor=admin)
        assert any(p.startswith("rule 4") for p in refused.value.problems)
        db.session.expire_all()
        assert db.session.get(Session, found.id).capacity == 3 and len(_seated(run.id)) == 3


# ------------------------------------------------------------------------------------------ one transaction each


def _snapshot(run_id: int) -> dict[str, Any]:
    db.session.expire_all()
    return {
        "seats": _seated(run_id),
        "unserved": _stored_positions(run_id),
        "requests": sorted(db.session.execute(select(CareRequest.pupil_id, CareRequest.status)).all()),
        "capacity": sorted(db.session.scalars(select(Session.capacity))),
        "audit": db.session.scalar(select(func.count()).select_from(AuditLog)),
        "published": sorted(db.session.execute(select(AllocationRun.id, AllocationRun.version)).all()),
        "coverage": db.session.scalar(select(AllocationRun.coverage).where(AllocationRun.id == run_id)),
    }


@pytest.mark.parametrize("call", ["remove_seat", "withdraw_request", "save_session", "fill_freed_seats",
                                  "publish_run"])
def test_a_failure_inside_any_call_leaves_nothing_half_written(app: Flask, monkeypatch: pytest.MonkeyPatch,
                                                               call: str) -> None:
    with app.app_context():
        term = _full_term()
        admin = _admin(term)
        run = publish(term, [("S1", "A"), ("S2", "A")], [("T1", "A")])
        draft = _draft(term, [("S1", "A")], [("T1", "A")])
        session_id = db.session.scalar(select(Session.id))
        assert session_id is not None
        if call == "fill_freed_seats":  # a seat is free, so promotion writes before the failure
            db.session.execute(delete(RunAssignment).where(RunAssignment.run_id == run.id,
                                                           RunAssignment.pupil_id == _id("S2")))
            db.session.commit()
        before = _snapshot(run.id)
        monkeypatch.setattr(seats, "_update_objective", _boom)  # fails after promotions were added
        monkeypatch.setattr(service, "positions", _boom)  # fails after publish's first write
        parent = create_user("parent", pupil=db.session.get(Pupil, _id("S1")))
        before["audit"] = db.session.scalar(select(func.count()).select_from(AuditLog))
        with pytest.raises(RuntimeError):
            if call == "remove_seat":
                service.remove_seat(run, _id("S2"), session_id, actor=admin)
            elif call == "withdraw_request":
                row = db.session.scalar(select(CareRequest).where(CareRequest.pupil_id == _id("S1")))
                assert row is not None
                service.withdraw_request(row, actor=parent, at=utcnow())
            elif call == "save_session":
                service.save_session(term, session_id, {"capacity": 4}, actor=admin)
            elif call == "fill_freed_seats":
                service.fill_freed_seats(term, actor=admin)
            else:
                service.publish_run(draft, admin)
        assert _snapshot(run.id) == before
        fresh = db.session.get(Term, term.id)
        assert fresh is not None and fresh.published_run_id == run.id
