"""The waitlist: queue order, promotion into freed seats without disturbing anyone, and the seat race."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, func, select, text, update

from tests.webapp.factories import consistent, publish, pupil, request, session, small_term, teacher
from webapp.allocation.lottery import ensure_lottery_seed, lottery_number
from webapp.allocation.service import fill_freed_seats
from webapp.allocation.waitlist import positions, waitlist
from webapp.extensions import db
from webapp.models import (
    AllocationRun,
    AuditLog,
    CareRequest,
    Pupil,
    RunAssignment,
    RunStaffing,
    RunUnserved,
    Session,
    Term,
)


def _pairs(run_id: int) -> set[tuple[str, str]]:
    return set(db.session.execute(
        select(Pupil.number, Session.code).select_from(RunAssignment)
        .join(Pupil, Pupil.id == RunAssignment.pupil_id).join(Session, Session.id == RunAssignment.session_id)
        .where(RunAssignment.run_id == run_id)).all())


def _staffing(run_id: int) -> set[tuple[int, str]]:
    return set(db.session.execute(
        select(RunStaffing.teacher_id, Session.code).join(Session, Session.id == RunStaffing.session_id)
        .where(RunStaffing.run_id == run_id)).all())


def _remove(run_id: int, number: str, code: str) -> None:
    """What a parent's withdrawal does: the request is withdrawn, the seat freed, and that is committed."""
    pupil_id = db.session.scalar(select(Pupil.id).where(Pupil.number == number))
    db.session.execute(update(CareRequest).where(CareRequest.pupil_id == pupil_id).values(status="withdrawn"))
    session_id = db.session.scalar(select(Session.id).where(Session.code == code))
    db.session.execute(delete(RunAssignment).where(RunAssignment.run_id == run_id,
                                                   RunAssignment.pupil_id == pupil_id,
                                                   RunAssignment.session_id == session_id))
    db.session.commit()


def _queue(term: Term) -> list[tuple[str, int]]:
    return [(e.pupil.number, e.day) for e in waitlist(term)]


# ------------------------------------------------------------------------------------------ order


def test_order_is_priority_then_lottery_and_deterministic(app: Flask) -> None:
    with app.app_context():
        numbers = [f"W{i:02d}" for i in range(8)]
        levels = {5: 2, 2: 1, 6: 1}
        pupils = [pupil(n, priority=levels.get(i, 0)) for i, n in enumerate(numbers)]
        term = small_term([session("A", capacity=0)], [], pupils,
                          [request(n, days=(1, 2)) for n in numbers])
        publish(term, [], [])

        def expected(seed: int) -> list[str]:
            weight = {p.id: {0: 1, 1: 2, 2: 4}[p.priority] for p in pupils}
            return sorted(numbers, key=lambda n: (-weight[n], hashlib.blake2b(
                f"{seed}:{n}".encode(), digest_size=8).hexdigest()))

        queue = _queue(term)
        assert [n for n, day in queue if day == 1] == expected(4242)
        assert [n for n, day in queue if day == 2] == expected(4242)
        assert queue[0] == ("W05", 1) and queue[1] == ("W05", 2)
        assert _queue(term) == queue

        placed = positions(term)
        db.session.commit()
        rows = db.session.execute(select(Pupil.number, RunUnserved.day, RunUnserved.waitlist_position)
                                  .join(Pupil)).all()
        for number, day, position in rows:
            assert position == [n for n, d in queue if d == day].index(number) + 1
        assert sorted(placed.values()) == sorted(list(range(1, 9)) * 2)

        term.lottery_seed = 99
        assert [n for n, day in _queue(term) if day == 1] == expected(99)
        assert expected(99) != expected(4242)


def test_lottery_seed_drawn_once() -> None:
    term = Term(name="x", lottery_seed=0)
    seed = ensure_lottery_seed(term)
    assert 0 < seed < 2**31 and ensure_lottery_seed(term) == seed
    first, again, other = Pupil(number="P3"), Pupil(number="P3"), Pupil(number="P4")
    assert lottery_number(seed, first) == lottery_number(seed, again) != lottery_number(seed, other)


def test_withdrawn_request_leaves_the_queue(app: Flask) -> None:
    with app.app_context():
        term = small_term([session("A", capacity=0)], [], [pupil("W1"), pupil("W2")],
                          [request("W1"), request("W2")])
        publish(term, [], [])
        db.session.execute(text("UPDATE care_requests SET status='withdrawn' WHERE pupil_id = "
                                "(SELECT id FROM pupils WHERE number='W1')"))
        db.session.commit()
        assert _queue(term) == [("W2", 1)]


# ------------------------------------------------------------------------------------------ promotion


def _full_session_term() -> Term:
    """Session A (homework, 2 seats, one teacher for 2) is full; W1–W3 wait, W1 with priority."""
    seated = [pupil("S1"), pupil("S2")]
    waiting = [pupil("W1", priority=1), pupil("W2"), pupil("W3", grade=1)]
    term = small_term(
        [session("A", capacity=2, ppt=2, grades=(3, 6)), session("B", "art", capacity=5, ppt=5)],
        [teacher("T1", [(1, "P1")]), teacher("T2", [(1, "P2")], quals=["arts"])],
        seated + waiting, [request(p.id, preferences=("art",)) for p in seated + waiting])
    publish(term, [("S1", "A"), ("S2", "A")], [("T1", "A")])
    return term


def test_freed_seat_goes_to_the_first_waitlisted_pupil_only(app: Flask) -> None:
    with app.app_context():
        term = _full_session_term()
        run_id = term.published_run_id
        assert run_id is not None
        assert fill_freed_seats(term) == []
        staff_before = _staffing(run_id)
        coverage_before = db.session.scalar(select(AllocationRun.coverage).where(AllocationRun.id == run_id))
        assert coverage_before is not None
        _remove(run_id, "S2", "A")
        promoted = fill_freed_seats(term)
        assert [(p["pupil_id"], p["day"]) for p in promoted] == [
            (db.session.scalar(select(Pupil.id).where(Pupil.number == "W1")), 1)]
        assert _pairs(run_id) == {("S1", "A"), ("W1", "A")}
        assert _staffing(run_id) == staff_before
        assert sorted(_queue(term)) == [("W2", 1), ("W3", 1)]
        run = db.session.get(AllocationRun, run_id)
        # recounted from the rows with each version: W1's 2 gained, S2's 1 (removed by hand above) gone
        assert run is not None and run.coverage == coverage_before + 2 - 1
        assert db.session.scalar(select(func.count()).select_from(AuditLog)
                                 .where(AuditLog.action == "waitlist.promote")) == 1
        detail = db.session.scalar(select(AuditLog.detail).where(AuditLog.action == "waitlist.promote"))
        allowed = {"term_id", "run_id", "pupil_id", "day", "rank", "sessions", "teachers_added"}
        assert detail is not None and set(detail) <= allowed
        assert consistent(term, objective=False) == []
        positions_now = dict(db.session.execute(
            select(Pupil.number, RunUnserved.waitlist_position).join(Pupil)).all())
        placed = sorted(p for p in positions_now.values() if p is not None)
        assert placed == list(range(1, len(positions_now) + 1))


def test_ineligible_grade_is_skipped_for_the_next_pupil(app: Flask) -> None:
    with app.app_context():
        term = _full_session_term()
        run_id = term.published_run_id
        assert run_id is not None
        db.session.execute(text("UPDATE pupils SET priority=0 WHERE number='W1'"))
        db.session.execute(text("UPDATE pupils SET priority=2 WHERE number='W3'"))
        db.session.commit()
        assert _queue(term)[0] == ("W3", 1)
        _remove(run_id, "S1", "A")
        fill_freed_seats(term)
        promoted = {n for n, s in _pairs(run_id)} - {"S2"}
        assert len(promoted) == 1 and promoted != {"W3"}
        assert consistent(term, objective=False) == []


def test_no_promotion_without_a_free_teacher_then_one_is_added(app: Flask) -> None:
    with app.app_context():
        seated = [pupil("S1"), pupil("S2"), pupil("S3")]
        term = small_term(
            [session("A", capacity=4, ppt=2), session("C", capacity=5, ppt=5)],
            [teacher("T1", [(1, "P1")]), teacher("T2", [(1, "P1")]), teacher("T3", [(1, "P2")]),
             teacher("T4", [(1, "P1")], max_sessions=0)],
            [*seated, pupil("W1"), pupil("W2", grade=5)],
            [request(p) for p in ("S1", "S2", "S3", "W1")] + [request("W2", periods=("P1", "P2"))])
        # A holds 2 pupils with T1; C holds S3 with T2, so T2 is busy, T3 is not available at P1 and
        # T4 may lead no session: nobody can open a second group in A.
        publish(term, [("S1", "A"), ("S2", "A"), ("S3", "C")], [("T1", "A"), ("T2", "C")])
        run_id = term.published_run_id
        assert run_id is not None
        before = _pairs(run_id)
        # C has free seats, but W1 prefers nothing and C... is eligible: W1 takes a seat in C.
        promoted = fill_freed_seats(term)
        assert {n for n, _ in _pairs(run_id) - before} == {"W1"}
        assert len(promoted) == 1
        # W2 asks for P1 and P2 on day 1: no session at P2, so no promotion at all, not even half a day.
        assert ("W2", 1) in _queue(term)
        assert consistent(term) == []


def test_extra_teacher_only_when_free_qualified_and_available(app: Flask) -> None:
    with app.app_context():
        seated = [pupil("S1"), pupil("S2")]
        term = small_term(
            [session("A", capacity=4, ppt=2), session("X", "art", capacity=4, ppt=4)],
            [teacher("T1", [(1, "P1")]), teacher("T2", [(1, "P1")], quals=["arts"]),
             teacher("T3", [(1, "P2")]), teacher("T4", [(1, "P1")], max_sessions=0)],
            [*seated, pupil("W1")],
            [request(p) for p in ("S1", "S2")] + [request("W1", preferences=("homework",))])
        publish(term, [("S1", "A"), ("S2", "X")], [("T1", "A"), ("T2", "X")])
        run_id = term.published_run_id
        assert run_id is not None
        # A has 1 pupil and room for 2 per teacher: W1 fits with the teachers already there.
        promoted = fill_freed_seats(term)
        assert len(promoted) == 1 and ("W1", "A") in _pairs(run_id) and promoted[0]["teachers_added"] == []


def test_second_teacher_needed_and_not_free(app: Flask) -> None:
    with app.app_context():
        seated = [pupil("S1"), pupil("S2"), pupil("S3")]
        term = small_term(
            [session("A", capacity=4, ppt=2), session("C", "art", capacity=1, ppt=1)],
            [teacher("T1", [(1, "P1")]), teacher("T2", [(1, "P1")], quals=["arts"]),
             teacher("T3", [(1, "P2")]), teacher("T4", [(1, "P1")], max_sessions=0)],
            [*seated, pupil("W1")], [request(p) for p in ("S1", "S2", "S3", "W1")])
        publish(term, [("S1", "A"), ("S2", "A"), ("S3", "C")], [("T1", "A"), ("T2", "C")])
        run_id = term.published_run_id
        assert run_id is not None
        assert fill_freed_seats(term) == []
        assert ("W1", 1) in _queue(term)
        # Once T2's session closes, T2 is free at P1 and joins A as its second teacher.
        _remove(run_id, "S3", "C")
        db.session.execute(delete(RunStaffing).where(RunStaffing.run_id == run_id,
                                                     RunStaffing.session_id == select(Session.id).where(
                                                         Session.code == "C").scalar_subquery()))
        db.session.commit()
        promoted = fill_freed_seats(term)
        t2 = db.session.scalar(text("SELECT id FROM teachers WHERE code='T2'"))
        assert [p["pupil_id"] for p in promoted][:1] and ("W1", "A") in _pairs(run_id)
        assert (t2, "A") in _staffing(run_id)
        assert consistent(term, objective=False) == []


def test_min_pupils_respected(app: Flask) -> None:
    with app.app_context():
        term = small_term([session("M", capacity=10, ppt=10, min_pupils=3)], [teacher("T1", [(1, "P1")])],
                          [pupil("W1"), pupil("W2")], [request("W1"), request("W2")])
        publish(term, [], [])
        assert fill_freed_seats(term) == []
        assert len(_queue(term)) == 2
        run_id = term.published_run_id
        assert run_id is not None and _staffing(run_id) == set()


def test_needs_every_requested_period(app: Flask) -> None:
    with app.app_context():
        term = small_term(
            [session("A", capacity=5, ppt=5), session("B", period="P2", capacity=1, ppt=1)],
            [teacher("T1", [(1, "P1"), (1, "P2")])],
            [pupil("S1"), pupil("W1")], [request("S1", periods=("P2",)), request("W1", periods=("P1", "P2"))])
        publish(term, [("S1", "B")], [("T1", "B")])
        run_id = term.published_run_id
        assert run_id is not None
        assert fill_freed_seats(term) == [] and ("W1", "A") not in _pairs(run_id)
        _remove(run_id, "S1", "B")
        promoted = fill_freed_seats(term)
        assert len(promoted) == 1 and {("W1", "A"), ("W1", "B")} <= _pairs(run_id)
        assert consistent(term, objective=False) == []


# ------------------------------------------------------------------------------------------ the race


def _race_term() -> Term:
    """Session R has 60 seats, 50 taken; 50 more pupils wait for the last 10."""
    seated = [pupil(f"S{i:02d}") for i in range(50)]
    waiting = [pupil(f"W{i:02d}") for i in range(50)]
    term = small_term([session("R", capacity=60, ppt=60)], [teacher("T1", [(1, "P1")])],
                      seated + waiting, [request(p.id) for p in seated + waiting])
    publish(term, [(p.id, "R") for p in seated], [("T1", "R")])
    return term


def _race(app: Flask, term_id: int, attempts: int = 50) -> list[dict[str, Any]]:
    barrier = threading.Barrier(attempts, timeout=60)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def attempt() -> None:
        try:
            with app.app_context():
                term = db.session.get(Term, term_id)
                assert term is not None
                db.session.commit()  # give the connection back to the pool before waiting
                barrier.wait()
                got = fill_freed_seats(term)
                with lock:
                    results.extend(got)
                db.session.remove()
        except BaseException as exc:  # noqa: B036  (reported to the main thread below)
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    return results


def _check_race(app: Flask) -> None:
    with app.app_context():
        term = _race_term()
        term_id, run_id = term.id, term.published_run_id
    results = _race(app, term_id)
    with app.app_context():
        assert len(results) == 10
        assert len({r["pupil_id"] for r in results}) == 10
        count = db.session.scalar(select(func.count()).select_from(RunAssignment)
                                  .where(RunAssignment.run_id == run_id))
        assert count == 60
        term = db.session.get(Term, term_id)
        assert term is not None
        first_ten = {e.pupil.id for e in waitlist(term)}
        assert len(first_ten) == 40
        assert consistent(term) == []


def test_fifty_threads_ten_seats_sqlite_file(app: Flask) -> None:
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    _check_race(app)


@pytest.mark.postgres
def test_fifty_threads_ten_seats_postgresql(pg_app: Flask) -> None:
    _check_race(pg_app)


def test_race_request_rows_untouched(app: Flask) -> None:
    with app.app_context():
        term = _race_term()
        statuses = set(db.session.scalars(select(CareRequest.status)))
        fill_freed_seats(term)
        assert statuses == set(db.session.scalars(select(CareRequest.status))) == {"active"}
