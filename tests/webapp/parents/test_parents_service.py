"""The parents' service functions on their own: the API will call them without any form."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import make_school
from tests.webapp.factories import create_user, publish_for, pupil_id, requests_for, term_of
from webapp.extensions import db
from webapp.models import AuditLog, CareRequest, Pupil, Term, User, clock
from webapp.parents import service

T0 = datetime(2026, 7, 1, 2, 0)


@pytest.fixture
def family(app: Flask) -> tuple[Flask, int, int]:
    """(app, user id, pupil id) for a parent of P001 with the window open around T0."""
    with app.app_context():
        make_school()
        pupil = db.session.get(Pupil, pupil_id())
        user = create_user("parent", pupil=pupil)
        term = term_of()
        term.requests_open_at, term.requests_close_at = T0, T0 + timedelta(days=14)
        db.session.commit()
        app.config["NOW"] = T0 + timedelta(hours=1)
        return app, user.id, pupil_id()


def load(user_id: int, pupil: int) -> tuple[User, Pupil, Term]:
    user = db.session.get(User, user_id)
    child = db.session.get(Pupil, pupil)
    assert user is not None and child is not None
    return user, child, term_of()


def test_window_state_boundaries(app: Flask) -> None:
    with app.app_context():
        make_school()
        term = term_of()
        term.requests_open_at, term.requests_close_at = T0, T0 + timedelta(days=14)
        states = [service.window_state(term, T0 + d).state for d in
                  (timedelta(microseconds=-1), timedelta(0), timedelta(days=14, microseconds=-1), timedelta(days=14))]
        assert states == ["not_open", "open", "open", "closed"]
        term.requests_open_at = term.requests_close_at = None
        assert service.window_state(term, T0).is_open
        app.config["NOW"] = lambda: T0 + timedelta(days=99)
        assert clock() == T0 + timedelta(days=99)


def test_choices_follow_term_and_grade(family: tuple[Flask, int, int]) -> None:
    app, user_id, pupil = family
    with app.app_context():
        _, child, term = load(user_id, pupil)
        assert service.pickup_times(term) == ["16:30", "17:30", "18:30"]
        assert [a.code for a in service.offered_activities(term, 3, ["P1"])] == ["homework"]
        assert {a.code for a in service.offered_activities(term, 2)} == {"homework", "art", "care"}
        assert {a.code for a in service.offered_activities(term, 3)} == {"homework", "football", "art", "care"}
        assert service.current_term(child) is term


@pytest.mark.parametrize("days, pickup, preferences, field", [
    ([], "17:30", [], "days"),
    ([1, 7], "17:30", [], "days"),
    ([1], "17:45", [], "pickup_time"),
    ([1], "17:30", ["art", "art"], "preferences[1]"),
    ([1], "17:30", ["homework", "art", "football", "care"], "preferences"),
    ([1], "16:30", ["art"], "preferences[0]"),
    ([1], "17:30", ["", "ghost"], "preferences[1]"),
])
def test_bad_input_raises_request_error(family: tuple[Flask, int, int], days: list[int], pickup: str,
                                        preferences: list[str], field: str) -> None:
    app, user_id, pupil = family
    with app.app_context():
        with pytest.raises(service.RequestError) as raised:
            service.save_request(*load(user_id, pupil), days, pickup, preferences)
        assert raised.value.field == field
        assert requests_for(pupil) == []


def test_all_problems_are_reported(family: tuple[Flask, int, int]) -> None:
    app, user_id, pupil = family
    with app.app_context():
        with pytest.raises(service.RequestError) as raised:
            service.save_request(*load(user_id, pupil), [], "9:99", ["art", "art"])
        assert [f for f, _ in raised.value.problems] == ["days", "pickup_time", "preferences[1]"]


def test_save_normalises_and_updates(family: tuple[Flask, int, int]) -> None:
    app, user_id, pupil = family
    with app.app_context():
        row = service.save_request(*load(user_id, pupil), ["2", 1, 2], "18:30", ["care", "", None])
        assert (row.days, row.periods, row.preferences) == ([1, 2], ["P1", "P2", "P3"], ["care"])
        first_id, submitted = row.id, row.submitted_at
        app.config["NOW"] = T0 + timedelta(days=2)
        row = service.save_request(*load(user_id, pupil), [3], "16:30", [])
        assert (row.id, row.submitted_at, row.updated_at) == (first_id, submitted, T0 + timedelta(days=2))
        actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
        assert actions[-2:] == ["request.submit", "request.update"]


def test_double_submit_race_stores_one_request(family: tuple[Flask, int, int],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The other submit inserts between our lookup and our insert: ours becomes an update of its row."""
    app, user_id, pupil = family
    with app.app_context():
        service.save_request(*load(user_id, pupil), [1], "16:30", [])
        monkeypatch.setattr(service, "find_request", lambda pupil, term: None)
        row = service.save_request(*load(user_id, pupil), [1, 2], "17:30", ["art"])
        rows = db.session.scalars(select(CareRequest)).all()
        assert len(rows) == 1 and rows[0].id == row.id
        assert (rows[0].days, rows[0].preferences) == ([1, 2], ["art"])


def test_window_and_ownership_are_enforced(family: tuple[Flask, int, int]) -> None:
    app, user_id, pupil = family
    with app.app_context():
        app.config["NOW"] = T0 - timedelta(seconds=1)
        with pytest.raises(service.RequestError) as raised:
            service.save_request(*load(user_id, pupil), [1], "16:30", [])
        assert raised.value.field == "window"
        app.config["NOW"] = T0
        stranger = create_user("parent", login="13700000000")
        _, child, term = load(user_id, pupil)
        with pytest.raises(service.NotYourChild):
            service.save_request(stranger, child, term, [1], "16:30", [])
        with pytest.raises(service.NotYourChild):
            service.withdraw_request(stranger, child, term)
        other_school = make_school("KM-TEST-0002", n_pupils=1)
        other_term = db.session.scalar(select(Term).where(Term.school_id == other_school.id))
        assert other_term is not None
        with pytest.raises(service.NotYourChild):
            service.save_request(*load(user_id, pupil)[:2], other_term, [1], "16:30", [])
        assert requests_for(pupil) == []


def test_withdraw_and_result(family: tuple[Flask, int, int]) -> None:
    app, user_id, pupil = family
    with app.app_context():
        _, child, term = load(user_id, pupil)
        assert service.child_result(child, term) is None
        with pytest.raises(service.RequestError):
            service.withdraw_request(*load(user_id, pupil))
        publish_for(pupil)
        result = service.child_result(*load(user_id, pupil)[1:], lang="en")
        assert result is not None
        assert [(s.day, s.start, s.activity, s.teachers) for s in result.timetable] == [
            (1, "15:30", "作业辅导", ("赵老师",)), (1, "16:30", "足球", ("李老师",))]
        assert (result.requested_days, result.covered_days) == ([1, 2], [1])
        assert [(u.day, u.waitlist_position) for u in result.uncovered] == [(2, 2)]
        # Publishing recounts the reason: seats were left on Tuesday, so the fixture's "no seat" gives way.
        assert result.uncovered[0].reason.startswith("A place was still free on Tue at 15:30–16:30")
        assert result.uncovered[0].code == "not_assigned" and "number 2 on the waiting list for Tue" in \
            result.uncovered[0].waitlist_note
        row = service.withdraw_request(*load(user_id, pupil))
        assert row.status == "withdrawn"
        after = service.child_result(*load(user_id, pupil)[1:])
        assert after is not None and after.timetable == [] and after.requested_days == []
