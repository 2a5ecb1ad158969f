"""Placing a waitlisted pupil-day by hand: a new plan version in free seats, or a clear refusal and no write."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.webapp.allocation.test_waitlist import _pairs, _queue
from tests.webapp.factories import consistent, create_user, publish, pupil, request, session, small_term, teacher
from webapp.allocation import service as allocation
from webapp.extensions import db
from webapp.models import AuditLog, Notification, PlanAmendment, Pupil, Term, User


def _term() -> Term:
    """Session A (day 1, P1, grades 3–6) has 2 seats and one teacher for 2; S1 sits there, one seat is free.
    W1 (priority 1) waits first, then W3; G1 (grade 1) waits too but no session takes grade 1."""
    people = [pupil("S1"), pupil("W1", priority=1), pupil("W3"), pupil("G1", grade=1)]
    term = small_term([session("A", capacity=2, ppt=2, grades=(3, 6))], [teacher("T1", [(1, "P1")])],
                      people, [request(p.id) for p in people])
    publish(term, [("S1", "A")], [("T1", "A")])
    return term


def _id(number: str) -> int:
    found = db.session.scalar(select(Pupil.id).where(Pupil.number == number))
    assert found is not None
    return int(found)


def _versions(term: Term) -> int:
    return int(db.session.scalar(select(func.count()).select_from(PlanAmendment)
                                 .where(PlanAmendment.term_id == term.id)) or 0)


def _check(app: Flask) -> None:
    with app.app_context():
        term = _term()
        admin = create_user("school_admin", school=term.school, login="placer")
        parent = create_user("parent", login="13900000003", pupil=db.session.get(Pupil, _id("W3")))
        run_id = term.published_run_id
        assert _queue(term)[0] == ("W1", 1) and {n for n, _ in _queue(term)} == {"W1", "W3", "G1"}
        version, versions = term.plan_version, _versions(term)

        given = allocation.place_from_waitlist(term, _id("W3"), 1, actor=admin, reason="家庭困难，班主任申请")
        assert len(given) == 1
        assert _pairs(run_id) == {("S1", "A"), ("W3", "A")}  # ahead of W1, nobody moved
        term = db.session.get(Term, term.id)
        assert term is not None and term.plan_version == version + 1 and _versions(term) == versions + 1
        amendment = db.session.scalar(select(PlanAmendment).where(PlanAmendment.version == term.plan_version))
        assert amendment is not None and amendment.actor_id == admin.id and "家庭困难" in amendment.reason
        assert db.session.scalar(select(func.count()).select_from(Notification)
                                 .where(Notification.user_id == parent.id)) == 1
        assert db.session.scalar(select(func.count()).select_from(AuditLog)
                                 .where(AuditLog.action == "waitlist.place")) == 1
        assert ("W3", 1) not in _queue(term) and _queue(term)[0] == ("W1", 1)
        assert consistent(term, objective=False) == []

        refusals = [(_id("W1"), "no seat is free"), (_id("G1"), "open to this pupil"),
                    (_id("S1"), "not on the waitlist")]
        for pupil_id, words in refusals:
            with pytest.raises(allocation.NotPlaceable, match=f"(?i){words}"):
                allocation.place_from_waitlist(term, pupil_id, 1, actor=admin, reason="试一下")
        with pytest.raises(allocation.NotPlaceable, match="reason"):
            allocation.place_from_waitlist(term, _id("W1"), 1, actor=admin, reason="  ")
        term = db.session.get(Term, term.id)
        assert term is not None and term.plan_version == version + 1 and _versions(term) == versions + 1
        assert _pairs(run_id) == {("S1", "A"), ("W3", "A")}
        assert db.session.scalar(select(func.count()).select_from(User)) == 2


def test_place_by_hand_sqlite(app: Flask) -> None:
    _check(app)


@pytest.mark.postgres
def test_place_by_hand_postgresql(pg_app: Flask) -> None:  # noqa: F811
    _check(pg_app)


def test_no_published_plan_is_refused(app: Flask) -> None:
    with app.app_context():
        people = [pupil("W1")]
        term = small_term([session("A", capacity=2, ppt=2)], [teacher("T1", [(1, "P1")])], people,
                          [request(p.id) for p in people])
        admin = create_user("school_admin", school=term.school, login="placer")
        with pytest.raises(allocation.NotPlaceable, match="no published allocation"):
            allocation.place_from_waitlist(term, _id("W1"), 1, actor=admin, reason="x")
