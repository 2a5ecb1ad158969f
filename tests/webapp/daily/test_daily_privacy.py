"""`purge-term` also removes the daily service's records of an expired term; a current term's stay."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import func, select

from tests.webapp.daily.conftest import MONDAY, Daily
from webapp.extensions import db
from webapp.models import Absence, Handover, PickupDelegate, PickupPerson, RollCallMark, Session, Term
from webapp.privacy import purge


def test_purge_takes_the_daily_records_of_an_expired_term(app: Flask, daily: Daily) -> None:
    with app.app_context():
        s11 = db.session.scalar(select(Session.id).where(Session.code == "S11"))
        pupil = daily.pupil_id
        db.session.add_all([
            RollCallMark(client_id="p-1", pupil_id=pupil, session_id=s11, day=MONDAY, status="present"),
            Handover(pupil_id=pupil, day=MONDAY, session_id=s11),
            Absence(pupil_id=pupil, first_day=MONDAY, last_day=MONDAY),
            PickupDelegate(pupil_id=pupil, name="李阿姨", valid_on=MONDAY, code_hash="x" * 64),
            PickupPerson(pupil_id=pupil, name="王奶奶", relation="奶奶", phone="13900139000"),
        ])
        db.session.commit()

        def daily_rows() -> list[int]:
            return [int(db.session.scalar(select(func.count()).select_from(model)) or 0)
                    for model in (RollCallMark, Handover, Absence, PickupDelegate, PickupPerson)]

        assert purge(30, at=datetime(2027, 1, 1)).counts["roll-call marks"] == 0  # the term has not expired
        assert daily_rows() == [1, 1, 1, 1, 1]
        term = db.session.get(Term, daily.school.term_id)
        assert term is not None
        db.session.add(Term(school_id=term.school_id, name="2027-spring",
                            requests_open_at=datetime(2027, 1, 10)))  # the next term ends this one
        db.session.commit()
        report = purge(30, at=datetime(2027, 1, 10) + timedelta(days=31))
        assert {k: report.counts[k] for k in ("roll-call marks", "handovers", "absences", "delegates")} == {
            "roll-call marks": 1, "handovers": 1, "absences": 1, "delegates": 1}
        assert daily_rows() == [0, 0, 0, 0, 1]  # the pickup person stays with the child
