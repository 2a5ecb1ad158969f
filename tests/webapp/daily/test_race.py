"""A parent cancels an absence while the duty teacher marks the pupil absent, raced on SQLite and PostgreSQL.

One consistent end, whichever wins: the cancel first (the absence is cancelled, the teacher's `absent` finds
nothing reported and the family is told), or the mark first (the cancel is refused because the roll-call has
begun, the absence stands, nobody is told). Never a cancelled absence with a silent `absent`.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import make_school
from tests.webapp.daily.conftest import MONDAY, make_calendar, make_duty_teacher, utc
from tests.webapp.factories import create_user, publish_for, pupil_id, term_of
from webapp.daily import rollcall, service
from webapp.extensions import db
from webapp.models import Absence, Notification, Pupil, RollCallMark, Session, Teacher, User

DAYS = [MONDAY + timedelta(days=7 * week) for week in range(9) if week != 4]  # week 4: the National Day holiday


def _world(app: Flask) -> dict[str, int]:
    with app.app_context():
        school = make_school()
        pupil = pupil_id("P001")
        publish_for(pupil)
        make_calendar(term_of().id, cutoff="23:59")  # the family may cancel up to the evening
        parent = create_user("parent", login="13800000001", pupil=db.session.get(Pupil, pupil))
        duty = make_duty_teacher(school.id)
        session = db.session.scalar(select(Session.id).where(Session.code == "S11"))
        return {"pupil": pupil, "parent": parent.id, "duty": duty.id, "session": int(session or 0)}


def _round(app: Flask, ids: dict[str, int], round_no: int) -> tuple[bool, bool, int]:
    """One race; returns (absence cancelled, family told, marks written) for that day."""
    day = DAYS[round_no]
    app.config["NOW"] = utc(day, "15:40")
    with app.app_context():
        absence = Absence(pupil_id=ids["pupil"], first_day=day, last_day=day, reason="看病")
        db.session.add(absence)
        db.session.commit()
        absence_id = absence.id
    barrier = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def cancel() -> None:
        try:
            with app.app_context():
                parent = db.session.get(User, ids["parent"])
                pupil = db.session.get(Pupil, ids["pupil"])
                assert parent is not None and pupil is not None
                db.session.commit()
                barrier.wait()
                try:
                    service.cancel_absence(parent, pupil, absence_id)
                except service.DailyError as error:
                    assert error.code == "already_marked"
                db.session.remove()
        except BaseException as exc:  # noqa: B036  (reported to the main thread below)
            errors.append(exc)

    def mark() -> None:
        try:
            with app.app_context():
                user = db.session.get(User, ids["duty"])
                assert user is not None
                teacher = rollcall.duty_teacher(user)
                assert teacher is not None
                db.session.commit()
                barrier.wait()
                if round_no % 2:  # every other round the teacher is a moment slower, so both orders are raced
                    time.sleep(0.2)
                rollcall.mark(user, teacher, ids["session"], ids["pupil"], "absent", f"race-{round_no}")
                db.session.remove()
        except BaseException as exc:  # noqa: B036
            errors.append(exc)

    threads = [threading.Thread(target=cancel), threading.Thread(target=mark)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    with app.app_context():
        row = db.session.get(Absence, absence_id)
        assert row is not None
        told = db.session.scalars(select(Notification).where(
            Notification.user_id == ids["parent"], Notification.event == "absence_unreported")).all()
        told_today = [n for n in told if n.params.get("date") == day.isoformat()]
        marks = db.session.scalars(select(RollCallMark).where(RollCallMark.day == day)).all()
        return row.cancelled_at is not None, len(told_today) == 1, len(marks)


def _check(app: Flask) -> None:
    ids = _world(app)
    outcomes = []
    for round_no in range(len(DAYS)):
        cancelled, told, marks = _round(app, ids, round_no)
        assert marks == 1
        assert cancelled == told, f"round {round_no}: cancelled={cancelled} told={told}"
        outcomes.append(cancelled)
    print(f"cancel won {sum(outcomes)} of {len(DAYS)} rounds")
    assert any(outcomes), "the cancel never came first: the race did not test that order"


def test_cancel_and_mark_race_sqlite(app: Flask) -> None:
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    _check(app)


@pytest.mark.postgres
def test_cancel_and_mark_race_postgresql(pg_app: Flask) -> None:  # noqa: F811
    _check(pg_app)


def test_without_the_race_both_orders_hold(app: Flask) -> None:
    """The two sequential orders, so each branch is known to run: mark first refuses the cancel."""
    ids = _world(app)
    app.config["NOW"] = utc(MONDAY, "15:40")
    with app.app_context():
        db.session.add(Absence(pupil_id=ids["pupil"], first_day=MONDAY, last_day=MONDAY, reason="x"))
        db.session.commit()
        user = db.session.get(User, ids["duty"])
        teacher = db.session.scalar(select(Teacher).where(Teacher.code == "T1"))
        assert user is not None and teacher is not None
        rollcall.mark(user, teacher, ids["session"], ids["pupil"], "absent", "order-1")
        parent = db.session.get(User, ids["parent"])
        pupil = db.session.get(Pupil, ids["pupil"])
        absence_id = db.session.scalar(select(Absence.id))
        assert parent is not None and pupil is not None and absence_id is not None
        with pytest.raises(service.DailyError) as refused:
            service.cancel_absence(parent, pupil, absence_id)
        assert refused.value.code == "already_marked"
        assert db.session.scalar(select(Notification.id)) is None
