"""Notifications are outbox rows: one per guardian, stored or dropped with the caller's transaction."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from tests.conftest import make_school
from tests.webapp.factories import create_user
from webapp.extensions import db
from webapp.models import Notification, NotificationEvent, Pupil
from webapp.notifications import notify


def test_one_row_per_guardian_in_the_callers_transaction(app: Flask) -> None:
    with app.app_context():
        school = make_school()
        pupil = db.session.scalar(select(Pupil).where(Pupil.school_id == school.id, Pupil.number == "P001"))
        assert pupil is not None
        mother = create_user("parent", login="13800138001", pupil=pupil)
        father = create_user("parent", login="13800138002", pupil=pupil)
        rows = notify(NotificationEvent.PLAN_AMENDED, pupil_id=pupil.id, params={"version": 2})
        assert sorted(row.user_id for row in rows) == sorted([mother.id, father.id])
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 0
        notify("offer_made", pupil_id=pupil.id)
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 2
