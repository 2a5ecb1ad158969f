"""A spreadsheet imported after publication is an amendment: previewed, confirmed for that very file, one transaction.

The world is the test school's published run (`publish_for`): P001 (grade 3) sits in S11 (homework, Monday P1)
and S12 (football, Monday P2, grades 3–6); Tuesday is uncovered for P004 and P001. Both families have an account.
Each test runs on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import io
import re
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from tests.conftest import make_school
from tests.webapp.factories import create_user, post_form, publish_for, pupil_id, sign_in, term_of, the_school, xlsx
from webapp import held_uploads
from webapp.admin.importer import import_file
from webapp.allocation.service import REASON_NEEDED, Confirm
from webapp.extensions import db
from webapp.jobs import PERIODIC
from webapp.models import (
    AuditLog,
    ClassTeacher,
    Notification,
    NotificationEvent,
    PlanAmendment,
    Pupil,
    RunAssignment,
    Session,
    Teacher,
    WaitlistOffer,
)

SESSION_HEADER = ["编号", "活动", "星期", "时段", "教室", "容量", "年级下限", "年级上限", "每位教师学生数", "最少人数"]
PUPIL_HEADER = ["学号", "姓名", "年级", "班级", "家庭编号", "优先级"]
TEACHER_HEADER = ["工号", "姓名", "资质", "每周上限", "可用时段", "手机", "邮箱", "班主任班级"]


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest) -> Flask:
    app: Flask = request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
    with app.app_context():
        the_school()
        publish_for(pupil_id("P001"))
        for number, phone in (("P001", "13800000001"), ("P004", "13800000004")):
            create_user("parent", login=phone, pupil=db.session.get(Pupil, pupil_id(number)))
        create_user("school_admin", school=the_school(), login="import-admin")
    return app


def _pupils_file(**changed: dict[str, Any]) -> bytes:
    """Every pupil as on file, with the given cells changed (P004={"priority": 0} …)."""
    rows: list[list[Any]] = [PUPIL_HEADER]
    for p in db.session.scalars(select(Pupil).where(Pupil.school_id == the_school().id).order_by(Pupil.number)):
        cells = {"name": p.name, "grade": p.grade, "class_name": p.class_name, "family": p.family_code or "",
                 "priority": p.priority} | changed.get(p.number, {})
        rows.append([p.number, cells["name"], cells["grade"], cells["class_name"], cells["family"],
                     cells["priority"]])
    return xlsx(rows)


def _rows(book: bytes) -> list[list[Any]]:
    sheet = load_workbook(io.BytesIO(book)).active
    assert sheet is not None
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def _sessions_file(**changed: dict[str, Any]) -> bytes:
    """Every session as on file, with the given cells changed (S13={"room": …, "day": 2} …)."""
    rows: list[list[Any]] = [SESSION_HEADER]
    for s in db.session.scalars(select(Session).where(Session.term_id == term_of().id).order_by(Session.code)):
        cells = {"activity": s.activity.code, "day": s.day, "period": s.period.code, "room": s.room,
                 "capacity": s.capacity, "grade_lo": s.grade_lo, "grade_hi": s.grade_hi,
                 "pupils_per_teacher": s.pupils_per_teacher, "min_pupils": s.min_pupils} | changed.get(s.code, {})
        rows.append([s.code, *cells.values()])
    return xlsx(rows)


def _teachers_file(**changed: dict[str, Any]) -> bytes:
    """Every teacher as on file, with the given cells changed (T1={"phone": …} …; availability as 1-P1 …)."""
    rows: list[list[Any]] = [TEACHER_HEADER]
    for t in db.session.scalars(select(Teacher).where(Teacher.school_id == the_school().id).order_by(Teacher.code)):
        cells = {"name": t.name, "qualifications": ",".join(t.qualifications), "max_sessions": t.max_sessions,
                 "available": ", ".join(sorted(f"{a.day}-{a.period.code}" for a in t.availability)),
                 "phone": t.phone or "", "email": t.email or "", "class_of": ""} | changed.get(t.code, {})
        rows.append([t.code, cells["name"], cells["qualifications"], cells["max_sessions"], cells["available"],
                     cells["phone"], cells["email"], cells["class_of"]])
    return xlsx(rows)


def _state() -> dict[str, Any]:
    """Everything an unconfirmed import must leave as it was."""
    db.session.expire_all()
    return {
        "version": term_of().plan_version,
        "seats": sorted(db.session.execute(select(RunAssignment.pupil_id, RunAssignment.session_id)).all()),
        "sessions": sorted(db.session.execute(select(Session.code, Session.capacity)).all()),
        "grades": sorted(db.session.execute(select(Pupil.number, Pupil.grade)).all()),
        "offers": db.session.scalar(select(func.count()).select_from(WaitlistOffer)),
        "messages": db.session.scalar(select(func.count()).select_from(Notification)),
        "audit": db.session.scalar(select(func.count()).select_from(AuditLog)),
    }


def _run(kind: str, data: bytes, confirm: Confirm | None) -> Any:
    return import_file(kind, "data.xlsx", data, the_school(), term_of(), confirm=confirm)


def _p001_seats() -> set[str]:
    return set(db.session.scalars(select(Session.code).join(RunAssignment, RunAssignment.session_id == Session.id)
                                  .where(RunAssignment.pupil_id == pupil_id("P001"))))


def test_a_session_file_that_takes_seats_is_previewed_then_applied_as_one_amendment(world: Flask) -> None:
    with world.app_context():
        data = _sessions_file(S12={"capacity": 0})
        before = _state()
        result = _run("sessions", data, Confirm())
        assert result.confirmation is not None and not result.ok
        assert _state() == before, "a preview wrote something"
        preview = result.confirmation.preview
        assert [(m.number, m.day, m.sessions) for m in preview.lost] == [("P001", 1, ("S12",))]
        assert {(m.number, m.day) for m in preview.offered} == {("P001", 2), ("P004", 2)}

        missing_reason = _run("sessions", data, Confirm("", preview.token))
        assert missing_reason.confirmation is not None and str(missing_reason.confirmation) == REASON_NEEDED
        assert _state() == before

        done = _run("sessions", data, Confirm("足球课停开", preview.token))
        assert done.ok and done.updated == 1 and done.change is not None and len(done.change.lost) == 1
        db.session.expire_all()
        assert term_of().plan_version == 2 and _p001_seats() == {"S11"}
        amendment = db.session.scalar(select(PlanAmendment).where(PlanAmendment.version == 2))
        assert amendment is not None and amendment.kind == "import" and amendment.reason == "足球课停开"
        told = db.session.scalars(select(Notification.event).where(Notification.pupil_id == pupil_id("P001")))
        assert NotificationEvent.PLAN_AMENDED.value in set(told)
        imported = db.session.scalar(select(AuditLog).where(AuditLog.action == "sessions.import"))
        assert imported is not None and imported.detail["updated"] == 1


def test_the_confirmation_fits_only_the_file_previewed(world: Flask) -> None:
    with world.app_context():
        previewed = _run("sessions", _sessions_file(S12={"capacity": 0}), Confirm())
        assert previewed.confirmation is not None
        token = previewed.confirmation.preview.token
        before = _state()
        other_file = _sessions_file(S12={"capacity": 0}, S14={"capacity": 61})
        other = _run("sessions", other_file, Confirm("足球课停开", token))  # another file
        assert other.confirmation is not None and other.confirmation.stale
        assert other.confirmation.preview.lost == previewed.confirmation.preview.lost
        assert _state() == before


def test_an_import_that_moves_no_seat_saves_at_once_and_offers_new_seats(world: Flask) -> None:
    """More seats on Tuesday P2: nothing to confirm; the freed seats go to the waitlist in the same call."""
    with world.app_context():
        result = _run("sessions", _sessions_file(S22={"capacity": 25}), Confirm())
        assert result.ok and result.updated == 1
        db.session.expire_all()
        assert term_of().plan_version == 1  # offers are not seats yet
        assert db.session.scalar(select(Session.capacity).where(Session.code == "S22")) == 25


def test_a_teacher_file_changing_only_contacts_and_classes_just_saves(world: Flask) -> None:
    """Phones, e-mails, names and the classes teachers lead are no part of the plan: no preview, no waitlist
    offers (the world has free Tuesday seats and a waitlist, which an amendment would offer), no version."""
    client: FlaskClient = world.test_client()
    sign_in(client, "import-admin")
    with world.app_context():
        data = _teachers_file(T1={"phone": "13900000001", "name": "李明"}, T2={"email": "wang@example.com"},
                              T3={"class_of": "3-1"})
        before = _state()
        result = _run("teachers", data, Confirm())
        assert result.ok and result.confirmation is None and (result.updated, result.unchanged) == (3, 0)
        after = _state()
        assert after.pop("audit") == before.pop("audit") + 1  # the import's own audit row, nothing else
        assert after == before
        assert db.session.scalar(select(func.count()).select_from(PlanAmendment)) == 1
        teachers = {t.code: t for t in db.session.scalars(select(Teacher))}
        assert (teachers["T1"].phone, teachers["T1"].name, teachers["T2"].email) == (
            "13900000001", "李明", "wang@example.com")
        assert db.session.scalar(select(ClassTeacher.teacher_id).where(ClassTeacher.class_name == "3-1")) == \
            teachers["T3"].id
        again = _teachers_file(T1={"phone": "13900000002"}, T3={"class_of": ""})
    uploaded = post_form(client, "/admin/import/teachers", {"file": (io.BytesIO(again), "teachers.xlsx")},
                         token_from="/admin/import/teachers")
    assert uploaded.status_code == 302  # saved at once: no preview page holding the file
    with world.app_context():
        assert db.session.scalar(select(Teacher.phone).where(Teacher.code == "T1")) == "13900000002"
        assert db.session.scalar(select(func.count()).select_from(ClassTeacher)) == 0
        assert _state()["offers"] == 0 and term_of().plan_version == 1


def test_a_teacher_file_changing_what_the_plan_rests_on_amends_it(world: Flask) -> None:
    """Qualifications and availability (T1 leads S12, football, on Monday P2) and the weekly cap stay part of
    the plan: a file that changes them goes through the amendment, previewed when it moves seats."""
    with world.app_context():
        for changed in ({"qualifications": ""}, {"available": "1-P1, 2-P1, 2-P2"}):
            before = _state()
            result = _run("teachers", _teachers_file(T1=changed), Confirm())
            assert result.confirmation is not None, changed
            assert [(m.number, m.sessions) for m in result.confirmation.preview.lost] == [("P001", ("S12",))]
            assert _state() == before
        capped = _run("teachers", _teachers_file(T3={"max_sessions": 4}), Confirm())
        assert capped.ok and capped.updated == 1 and capped.change is not None
        assert {(p["pupil_id"], p["day"]) for p in capped.change.promoted} == {
            (pupil_id("P001"), 2), (pupil_id("P004"), 2)}  # the amendment offers the free Tuesday seats


def test_re_importing_the_same_pupils_and_sessions_files_just_saves(world: Flask) -> None:
    """A file as stored changes nothing: no amendment, no version, no offer of the free Tuesday seats to the
    waitlist, no message to a family; only the import's own audit row. The import page saves it at once."""
    client: FlaskClient = world.test_client()
    sign_in(client, "import-admin")
    with world.app_context():
        files = {"pupils": _pupils_file(), "sessions": _sessions_file()}
        for kind, data in files.items():
            before = _state()
            result = _run(kind, data, Confirm())
            assert result.ok and result.confirmation is None, kind
            assert (result.created, result.updated, result.unchanged) == (0, 0, result.rows), kind
            assert result.change is not None and not result.change.promoted
            after = _state()
            assert after.pop("audit") == before.pop("audit") + 1, kind
            assert after == before, kind
        assert db.session.scalar(select(func.count()).select_from(PlanAmendment)) == 1  # the publication
    for kind, data in files.items():
        uploaded = post_form(client, f"/admin/import/{kind}", {"file": (io.BytesIO(data), f"{kind}.xlsx")},
                             token_from=f"/admin/import/{kind}")
        assert uploaded.status_code == 302, kind  # saved at once: no preview page holding the file
    with world.app_context():
        state = _state()
        assert (state["version"], state["offers"], state["messages"]) == (1, 0, 0)
        assert db.session.scalar(select(func.count()).select_from(PlanAmendment)) == 1


def test_a_pupil_file_changing_no_grade_or_status_just_saves(world: Flask) -> None:
    """Names, classes, family codes and priority levels move no seat: the waitlist order they feed is read when
    the next seat is offered (as after a priority tag), so the file is saved without an amendment."""
    with world.app_context():
        data = _pupils_file(P001={"name": "李小明", "class_name": "3-2", "family": "F1"},
                            P004={"priority": 0, "family": "F1"})
        before = _state()
        result = _run("pupils", data, Confirm())
        assert result.ok and result.confirmation is None and (result.updated, result.created) == (2, 0)
        after = _state()
        assert after.pop("audit") == before.pop("audit") + 1
        assert after == before
        p001, p004 = (db.session.get(Pupil, pupil_id(number)) for number in ("P001", "P004"))
        assert p001 is not None and p004 is not None
        assert (p001.name, p001.class_name, p001.family_code, p004.priority) == ("李小明", "3-2", "F1", 0)


def test_a_pupil_file_bringing_a_pupil_back_amends_the_plan(world: Flask) -> None:
    """`active` is part of the plan: P004, inactive, waits again once the file lists them, so the amendment
    offers the free Tuesday seats, to P004 too."""
    with world.app_context():
        p004 = db.session.get(Pupil, pupil_id("P004"))
        assert p004 is not None
        p004.active = False
        db.session.commit()
        # A file without the 在读状态 column keeps each pupil's status: P004 stays off the roll.
        kept = _run("pupils", _pupils_file(), Confirm())
        assert kept.ok and kept.updated == 0 and kept.change is not None and not kept.change.promoted
        assert db.session.get(Pupil, pupil_id("P004")).active is False  # type: ignore[union-attr]
        rows = [[*row, "在读"] for row in _rows(_pupils_file())]
        rows[0][-1] = "在读状态"
        result = _run("pupils", xlsx(rows), Confirm())
        assert result.ok and result.updated == 1 and result.change is not None
        assert {(p["pupil_id"], p["day"]) for p in result.change.promoted} == {
            (pupil_id("P001"), 2), (pupil_id("P004"), 2)}


def test_a_session_file_changing_only_rooms_just_saves(world: Flask) -> None:
    with world.app_context():
        before = _state()
        result = _run("sessions", _sessions_file(S12={"room": "体育馆"}, S21={"room": "4-1教室"}), Confirm())
        assert result.ok and result.confirmation is None and result.updated == 2
        after = _state()
        assert after.pop("audit") == before.pop("audit") + 1
        assert after == before
        assert db.session.scalar(select(Session.room).where(Session.code == "S12")) == "体育馆"


@pytest.mark.parametrize("changed", [
    {"activity": "homework"}, {"day": 2}, {"period": "P1"}, {"capacity": 19}, {"grade_lo": 2}, {"grade_hi": 5},
    {"pupils_per_teacher": 10}, {"min_pupils": 1},
], ids=lambda changed: next(iter(changed)))
def test_a_session_file_changing_what_the_plan_rests_on_amends_it(world: Flask, changed: dict[str, Any]) -> None:
    """Every field of `SESSION_PLAN_FIELDS`, changed on S13 (art, Monday P2, nobody seated): the file is an
    amendment, which offers the free Tuesday seats to the waitlist."""
    with world.app_context():
        result = _run("sessions", _sessions_file(S13=changed), Confirm())
        assert result.ok and result.updated == 1 and result.change is not None
        assert {(p["pupil_id"], p["day"]) for p in result.change.promoted} == {
            (pupil_id("P001"), 2), (pupil_id("P004"), 2)}


def test_a_session_file_whose_grades_break_seats_is_previewed(world: Flask) -> None:
    with world.app_context():
        before = _state()
        result = _run("sessions", _sessions_file(S12={"grade_lo": 4}), Confirm())
        assert result.confirmation is not None and _state() == before
        assert [(m.number, m.sessions) for m in result.confirmation.preview.lost] == [("P001", ("S12",))]


def test_a_pupil_file_whose_grades_break_seats_is_previewed(world: Flask) -> None:
    with world.app_context():
        rows: list[list[Any]] = [PUPIL_HEADER]
        for p in db.session.scalars(select(Pupil).where(Pupil.school_id == the_school().id).order_by(Pupil.number)):
            rows.append([p.number, p.name, 2 if p.number == "P001" else p.grade, p.class_name, "", p.priority])
        data = xlsx(rows)
        before = _state()
        result = _run("pupils", data, Confirm())
        assert result.confirmation is not None and _state() == before
        assert [(m.number, m.sessions) for m in result.confirmation.preview.lost] == [("P001", ("S12",))]
        assert _run("pupils", data, Confirm("学籍年级更正", result.confirmation.preview.token)).ok
        db.session.expire_all()
        assert _p001_seats() == {"S11"} and term_of().plan_version == 2


def test_without_the_confirming_screen_an_import_that_breaks_a_rule_is_refused(world: Flask) -> None:
    with world.app_context():
        before = _state()
        result = _run("sessions", _sessions_file(S12={"capacity": 0}), None)
        assert not result.ok and result.confirmation is None and result.problems
        assert _state() == before


def test_before_publication_an_import_writes_at_once(app: Flask) -> None:
    with app.app_context():
        make_school()
        result = _run("sessions", _sessions_file(S12={"capacity": 0}), Confirm())
        assert result.ok and result.confirmation is None and result.updated == 1
        assert db.session.scalar(select(Session.capacity).where(Session.code == "S12")) == 0


def test_the_import_page_holds_the_file_until_the_admin_confirms(world: Flask) -> None:
    client: FlaskClient = world.test_client()
    sign_in(client, "import-admin")
    with world.app_context():
        data = _sessions_file(S12={"capacity": 0})
        before = _state()
    page = client.get("/admin/import/sessions").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert csrf is not None
    shown = client.post("/admin/import/sessions", data={"csrf_token": csrf.group(1),
                                                        "file": (io.BytesIO(data), "sessions.xlsx")},
                        content_type="multipart/form-data")
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "S12" in html and 'name="plan_token"' in html
    held = re.search(r'name="held" value="([0-9a-f]{64})"', html)
    plan_token = re.search(r'name="plan_token" value="([^"]+)"', html)
    assert held is not None and plan_token is not None
    with world.app_context():
        assert _state() == before and held_uploads.held(the_school().id, held.group(1)) is not None

    forged = post_form(client, "/admin/import/sessions/confirm",
                       {"held": "0" * 64, "plan_token": plan_token.group(1), "reason": "x"},
                       token_from="/admin/import/sessions")
    assert forged.status_code == 302
    with world.app_context():
        assert _state() == before

    done = post_form(client, "/admin/import/sessions/confirm",
                     {"held": held.group(1), "plan_token": plan_token.group(1), "reason": "足球课停开"},
                     token_from="/admin/import/sessions")
    assert done.status_code == 302
    with world.app_context():
        assert _p001_seats() == {"S11"} and term_of().plan_version == 2
        assert held_uploads.held(the_school().id, held.group(1)) is None  # released once imported
        assert db.session.scalar(select(Teacher.id).limit(1)) is not None


def test_held_files_older_than_a_day_are_swept(app: Flask) -> None:
    with app.app_context():
        digest = held_uploads.hold(1, "pupils.xlsx", b"not really a workbook")
        assert held_uploads.held(1, digest) == (f"{digest}.xlsx", b"not really a workbook")
        assert held_uploads.held(1, "../" + digest) is None and held_uploads.held(2, digest) is None
        assert held_uploads.sweep() == 0
        assert held_uploads.sweep(now=time.time() + held_uploads.HOLD_HOURS * 3600 + 60) == 1
        assert held_uploads.held(1, digest) is None
        assert PERIODIC["uploads.sweep"] is not None  # the periodic task that runs the sweep
