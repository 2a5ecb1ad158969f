"""The family's data export carries the child's daily records; `purge-term` also removes the daily service's
records of an expired term (a current term's stay)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.webapp.daily.conftest import MONDAY, Daily, utc
from tests.webapp.factories import pupil_id
from webapp.extensions import db
from webapp.models import (
    Absence,
    Handover,
    NoticeSignature,
    PickupDelegate,
    PickupPerson,
    Pupil,
    RollCallMark,
    ServiceNotice,
    Session,
    Term,
    User,
)
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
            ServiceNotice(id=1, term_id=daily.school.term_id, version=1, title="告家长书", content="x", hours="x",
                          safety="x"),
        ])
        db.session.flush()
        db.session.add(NoticeSignature(notice_id=1, pupil_id=pupil))
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
        assert {k: report.counts[k] for k in ("roll-call marks", "handovers", "absences", "delegates",
                                              "notice signatures")} == {
            "roll-call marks": 1, "handovers": 1, "absences": 1, "delegates": 1, "notice signatures": 1}
        assert daily_rows() == [0, 0, 0, 0, 1]  # the pickup person stays with the child
        assert db.session.scalar(select(func.count()).select_from(NoticeSignature)) == 0
        assert db.session.get(ServiceNotice, 1) is not None  # the notice names nobody: it stays


def test_the_family_export_carries_the_childs_daily_records(app: Flask, client: FlaskClient, daily: Daily,
                                                            parent: User) -> None:
    with app.app_context():
        s11 = db.session.scalar(select(Session.id).where(Session.code == "S11"))
        pupil = daily.pupil_id
        other = pupil_id("P002")
        grandma = PickupPerson(pupil_id=pupil, name="王奶奶", relation="奶奶", phone="13900139000")
        db.session.add_all([
            grandma,
            PickupPerson(pupil_id=other, name="别家外婆", relation="外婆", phone="13900139001"),
            Absence(pupil_id=pupil, first_day=MONDAY, last_day=MONDAY, reason="看牙"),
            Absence(pupil_id=other, first_day=MONDAY, last_day=MONDAY, reason="别家请假"),
            PickupDelegate(pupil_id=pupil, name="李阿姨", valid_on=MONDAY, code_hash="f" * 64),
            RollCallMark(client_id="e-1", pupil_id=pupil, session_id=s11, day=MONDAY, status="absent"),
            ServiceNotice(id=7, term_id=daily.school.term_id, version=2, title="告家长书", content="x", hours="x",
                          safety="x"),
        ])
        db.session.flush()
        db.session.add_all([
            RollCallMark(client_id="e-2", pupil_id=pupil, session_id=s11, day=MONDAY, status="present",
                         reason="迟到补记"),
            Handover(pupil_id=pupil, day=MONDAY, session_id=s11, at=utc(MONDAY, "17:35"),
                     pickup_person_id=grandma.id),
            NoticeSignature(notice_id=7, pupil_id=pupil, signed_by=parent.id),
        ])
        db.session.commit()
        assert db.session.get(Pupil, other) is not None and db.session.get(User, parent.id) is not None
    body = client.get("/account/export").get_data(as_text=True)
    (child,) = json.loads(body)["children"]
    records = child["daily"]
    assert [(a["first_day"], a["reason"], a["cancelled_at"]) for a in records["absences"]] == [
        ("2026-09-07", "看牙", None)]
    assert [(p["name"], p["phone"]) for p in records["pickup_persons"]] == [("王奶奶", "13900139000")]
    assert [(d["name"], d["valid_on"], d["used_at"]) for d in records["delegates"]] == [("李阿姨", "2026-09-07", None)]
    assert [(m["session"], m["status"], m["correction_reason"]) for m in records["roll_call"]] == [
        ("S11", "absent", None), ("S11", "present", "迟到补记")]
    assert [(h["day"], h["collected_by"]) for h in records["handovers"]] == [("2026-09-07", "王奶奶")]
    assert [(n["term"], n["version"]) for n in records["service_notices"]] == [("2026-autumn", 2)]
    assert "f" * 64 not in body and "code_hash" not in body
    assert "别家外婆" not in body and "别家请假" not in body
