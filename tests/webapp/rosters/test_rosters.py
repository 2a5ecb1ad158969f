"""Rosters: each spreadsheet read back and checked cell by cell against the database; pages, JSON, access."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from scheduler.io import parse_instance, parse_solution
from scheduler.validation import validate
from tests.conftest import make_school
from tests.webapp.factories import create_user, generated_term, post_form, sign_in
from webapp.extensions import db
from webapp.models import (
    Activity,
    AllocationRun,
    AuditLog,
    Period,
    Pupil,
    RunAssignment,
    RunStaffing,
    School,
    Session,
    Teacher,
    Term,
)
from webapp.services import term_to_instance

DAYS = {1: "周一", 2: "周二", 3: "周三", 4: "周四", 5: "周五"}


@dataclasses.dataclass
class World:
    term_id: int
    run_id: int
    school_id: int


@pytest.fixture
def world(app: Flask) -> Iterator[World]:
    with app.app_context():
        term, run = generated_term()
        create_user("school_admin", school=term.school, login="roster-admin")
        found = World(term.id, run.id, term.school_id)
    yield found  # outside the app context: each request must get its own


@pytest.fixture
def admin(client: FlaskClient, world: World) -> FlaskClient:
    sign_in(client, "roster-admin")
    return client


def _base(world: World) -> str:
    return f"/admin/rosters/{world.term_id}"


def _workbook(client: FlaskClient, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, url
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in response.headers["Content-Disposition"]
    return load_workbook(io.BytesIO(response.data))


def _rows(ws: Any, first: int = 4) -> list[list[Any]]:
    return [[cell.value for cell in row] for row in ws.iter_rows(min_row=first)]


def _assignments(run_id: int) -> list[tuple[Pupil, Session, Activity, Period]]:
    return [tuple(row) for row in db.session.execute(
        select(Pupil, Session, Activity, Period).select_from(RunAssignment)
        .join(Pupil, Pupil.id == RunAssignment.pupil_id).join(Session, Session.id == RunAssignment.session_id)
        .join(Activity, Activity.id == Session.activity_id).join(Period, Period.id == Session.period_id)
        .where(RunAssignment.run_id == run_id)).all()]


def _staff(run_id: int) -> dict[int, list[Teacher]]:
    staff: dict[int, list[Teacher]] = {}
    for session_id, teacher in db.session.execute(
            select(RunStaffing.session_id, Teacher).join(Teacher).where(RunStaffing.run_id == run_id)).all():
        staff.setdefault(session_id, []).append(teacher)
    return staff


# ------------------------------------------------------------------------------------------ spreadsheets


def test_attendance_workbook_matches_database(app: Flask, admin: FlaskClient, world: World) -> None:
    wb = _workbook(admin, f"{_base(world)}/sessions.xlsx")
    with app.app_context():
        pupils: dict[int, list[Pupil]] = {}
        sessions: dict[int, tuple[Session, Activity, Period]] = {}
        for pupil, session, activity, period in _assignments(world.run_id):
            pupils.setdefault(session.id, []).append(pupil)
            sessions[session.id] = (session, activity, period)
        staff = _staff(world.run_id)
        assert set(staff) == set(pupils)
        assert len(wb.sheetnames) == len(pupils) > 10
        by_code = {ws["A1"].value.split(" ")[0]: ws for ws in wb.worksheets}
        for session_id, seated in pupils.items():
            session, activity, period = sessions[session_id]
            ws = by_code[session.code]
            when = f"{DAYS[session.day]} {period.start}–{period.end}"
            assert ws["A1"].value == f"{session.code} {activity.name} · {when}"
            teachers = "、".join(t.name for t in sorted(staff[session_id], key=lambda t: t.code))
            assert ws["A2"].value == (f"教室：{session.room}    教师：{teachers}    "
                                      f"人数：{len(seated)}/{session.capacity}")
            assert [c.value for c in ws[3]] == ["序号", "学号", "姓名", "班级", "签到"]
            ordered = sorted(seated, key=lambda p: (p.class_name, p.number))
            expected = [[i, p.number, p.name, p.class_name, None] for i, p in enumerate(ordered, start=1)]
            assert _rows(ws) == expected
            assert ws.freeze_panes == "A4"
            assert str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4
            assert ws.column_dimensions["C"].width >= 10


def test_dismissal_workbook_matches_database(app: Flask, admin: FlaskClient, world: World) -> None:
    wb = _workbook(admin, f"{_base(world)}/classes.xlsx")
    with app.app_context():
        term = db.session.get(Term, world.term_id)
        assert term is not None
        stops: dict[tuple[int, int], list[tuple[Period, Session, Activity]]] = {}
        for pupil, session, activity, period in _assignments(world.run_id):
            stops.setdefault((pupil.id, session.day), []).append((period, session, activity))
        all_pupils = db.session.scalars(select(Pupil).where(Pupil.school_id == world.school_id)).all()
        classes = sorted({p.class_name for p in all_pupils})
        assert sorted(ws.title[:-1] for ws in wb.worksheets) == classes
        checked_home = checked_served = 0
        for ws in wb.worksheets:
            class_name = ws.title[:-1]
            members = sorted((p for p in all_pupils if p.class_name == class_name), key=lambda p: p.number)
            header = ["序号", "学号", "姓名"]
            for day in term.weekdays:
                header += [f"{DAYS[day]}去向", f"{DAYS[day]}接送时间"]
            assert [c.value for c in ws[3]] == header
            rows = _rows(ws)
            assert len(rows) == len(members)
            for i, (pupil, row) in enumerate(zip(members, rows, strict=True), start=1):
                assert row[:3] == [i, pupil.number, pupil.name]
                for k, day in enumerate(term.weekdays):
                    day_stops = sorted(stops.get((pupil.id, day), []), key=lambda s: s[0].position)
                    where, pickup = row[3 + 2 * k], row[4 + 2 * k]
                    if day_stops:
                        checked_served += 1
                        assert where == " → ".join(f"{a.name}@{s.room}" for _, s, a in day_stops)
                        assert pickup == max(p.end for p, _, _ in day_stops)
                    else:
                        checked_home += 1
                        assert where == "回家/家长接" and pickup is None
            assert ws.freeze_panes == "D4" and ws.page_setup.orientation == "landscape"
        assert checked_home > 0 and checked_served > 0


def test_teacher_workbook_matches_database(app: Flask, admin: FlaskClient, world: World) -> None:
    wb = _workbook(admin, f"{_base(world)}/teachers.xlsx")
    with app.app_context():
        term = db.session.get(Term, world.term_id)
        assert term is not None
        periods = sorted(term.periods, key=lambda p: p.position)
        counts: dict[int, int] = {}
        for _, session, _, _ in _assignments(world.run_id):
            counts[session.id] = counts.get(session.id, 0) + 1
        duties: dict[int, dict[tuple[int, int], Session]] = {}
        teachers: dict[int, Teacher] = {}
        for session_id, staff in _staff(world.run_id).items():
            session = db.session.get(Session, session_id)
            assert session is not None
            for teacher in staff:
                teachers[teacher.id] = teacher
                duties.setdefault(teacher.id, {})[(session.day, session.period_id)] = session
        assert len(wb.worksheets) == len(teachers)
        for ws, teacher in zip(wb.worksheets, sorted(teachers.values(), key=lambda t: t.code), strict=True):
            assert ws["A1"].value == f"{teacher.name}（{teacher.code}）每周值班表"
            assert [c.value for c in ws[3]] == ["时段"] + [DAYS[d] for d in term.weekdays]
            for period, row in zip(periods, _rows(ws), strict=True):
                assert row[0] == f"{period.code} {period.start}–{period.end}"
                for k, day in enumerate(term.weekdays):
                    session = duties[teacher.id].get((day, period.id))
                    if session is None:
                        assert row[1 + k] is None
                    else:
                        assert row[1 + k] == (f"{session.code} {session.activity.name}\n"
                                              f"{session.room} · {counts[session.id]}人")


def test_single_item_workbooks(app: Flask, admin: FlaskClient, world: World) -> None:
    with app.app_context():
        session_id = db.session.scalar(select(RunAssignment.session_id)
                                       .where(RunAssignment.run_id == world.run_id))
        teacher_id = db.session.scalar(select(RunStaffing.teacher_id)
                                       .where(RunStaffing.run_id == world.run_id))
        class_name = db.session.scalar(select(Pupil.class_name).where(Pupil.school_id == world.school_id))
    assert len(_workbook(admin, f"{_base(world)}/sessions.xlsx?id={session_id}").worksheets) == 1
    assert len(_workbook(admin, f"{_base(world)}/teachers.xlsx?id={teacher_id}").worksheets) == 1
    assert len(_workbook(admin, f"{_base(world)}/classes.xlsx?id={class_name}").worksheets) == 1
    assert admin.get(f"{_base(world)}/classes.xlsx?id=no-such-class").status_code == 404
    assert admin.get(f"{_base(world)}/sessions.xlsx?id=x").status_code == 404


def test_json_exports_and_audit(app: Flask, admin: FlaskClient, world: World) -> None:
    response = admin.get(f"{_base(world)}/instance.json")
    assert response.status_code == 200 and ".json" in response.headers["Content-Disposition"]
    instance = parse_instance(json.loads(response.data))
    solution_response = admin.get(f"{_base(world)}/solution.json")
    assert "_v1.json" in solution_response.headers["Content-Disposition"]
    solution = parse_solution(json.loads(solution_response.data), instance)
    with app.app_context():
        term = db.session.get(Term, world.term_id)
        assert term is not None
        assert instance == term_to_instance(term)
        assert validate(dataclasses.replace(instance, previous=()), solution).consistent
        admin.get(f"{_base(world)}/sessions.xlsx")
        audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "roster.export")
                                   .order_by(AuditLog.id)).all()
        kinds = [a.detail["kind"] for a in audit if a.detail]
        assert kinds == ["instance.json", "solution.json", "sessions.xlsx"]
        assert all(a.school_id == world.school_id and a.user_id is not None for a in audit)


# ------------------------------------------------------------------------------------------ pages


PAGES = ("/", "/sessions", "/classes", "/teachers", "/waitlist")


@pytest.mark.parametrize("lang,expected", [("zh", "点名表"), ("en", "attendance sheets")])
def test_pages_render_in_both_languages(app: Flask, admin: FlaskClient, world: World, lang: str,
                                        expected: str) -> None:
    post_form(admin, f"/lang/{lang}", {"next": "/"}, token_from=f"{_base(world)}/")
    index = admin.get(f"{_base(world)}/").get_data(as_text=True)
    assert expected in index
    with app.app_context():
        session_id = db.session.scalar(select(RunAssignment.session_id)
                                       .where(RunAssignment.run_id == world.run_id))
        teacher_id = db.session.scalar(select(RunStaffing.teacher_id)
                                       .where(RunStaffing.run_id == world.run_id))
        class_name = db.session.scalar(select(Pupil.class_name).where(Pupil.school_id == world.school_id))
    for path in (*PAGES, f"/sessions/{session_id}", f"/teachers/{teacher_id}", f"/classes/{class_name}"):
        response = admin.get(_base(world) + path)
        assert response.status_code == 200, path
        text = response.get_data(as_text=True)
        assert "rosters.css" in text
    classes = admin.get(f"{_base(world)}/classes").get_data(as_text=True)
    assert ("回家/家长接" if lang == "zh" else "Home / parent pickup") in classes
    assert ("星期一" if lang == "zh" else "Monday") in classes
    assert admin.get("/admin/rosters/").status_code == 302


def test_draft_run_by_query(app: Flask, admin: FlaskClient, world: World) -> None:
    with app.app_context():
        draft = AllocationRun(term_id=world.term_id, state="done", status="FEASIBLE")
        db.session.add(draft)
        db.session.commit()
        draft_id = draft.id
    page = admin.get(f"{_base(world)}/sessions?run={draft_id}").get_data(as_text=True)
    assert "草稿方案" in page
    wb = _workbook(admin, f"{_base(world)}/sessions.xlsx?run={draft_id}")
    assert len(wb.worksheets) == 1 and wb.worksheets[0]["A1"].value == "此分配方案中没有开班的课程班"
    assert admin.get(f"{_base(world)}/sessions?run=999999").status_code == 404


def test_waitlist_page_and_fill(app: Flask, admin: FlaskClient, world: World) -> None:
    page = admin.get(f"{_base(world)}/waitlist").get_data(as_text=True)
    assert "候补" in page
    response = post_form(admin, f"{_base(world)}/waitlist/fill", token_from=f"{_base(world)}/waitlist")
    assert response.status_code == 302


# ------------------------------------------------------------------------------------------ access


def _all_urls(app: Flask, world: World) -> list[str]:
    with app.app_context():
        session_id = db.session.scalar(select(RunAssignment.session_id)
                                       .where(RunAssignment.run_id == world.run_id))
        teacher_id = db.session.scalar(select(RunStaffing.teacher_id)
                                       .where(RunStaffing.run_id == world.run_id))
        class_name = db.session.scalar(select(Pupil.class_name).where(Pupil.school_id == world.school_id))
    base = _base(world)
    return [base + p for p in PAGES] + [
        f"{base}/sessions/{session_id}", f"{base}/teachers/{teacher_id}", f"{base}/classes/{class_name}",
        f"{base}/sessions.xlsx", f"{base}/classes.xlsx", f"{base}/teachers.xlsx", f"{base}/instance.json",
        f"{base}/solution.json",
    ]


def test_other_school_admin_gets_404(app: Flask, client: FlaskClient, world: World) -> None:
    with app.app_context():
        other = make_school("KM-OTHER-0002")
        create_user("school_admin", school=other, login="other-admin")
    sign_in(client, "other-admin")
    for url in _all_urls(app, world):
        assert client.get(url).status_code in (403, 404), url
    token_page = client.get("/admin/rosters/", follow_redirects=True).request.path
    response = post_form(client, f"{_base(world)}/waitlist/fill", token_from=token_page)
    assert response.status_code in (403, 404)
    # their own index has no trace of the other school
    own = client.get("/admin/rosters/", follow_redirects=True).get_data(as_text=True)
    with app.app_context():
        school = db.session.get(School, world.school_id)
        assert school is not None and school.code not in own


def test_parent_and_anonymous_blocked(app: Flask, client: FlaskClient, world: World) -> None:
    for url in _all_urls(app, world):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    with app.app_context():
        pupil = db.session.scalar(select(Pupil).where(Pupil.school_id == world.school_id))
        create_user("parent", pupil=pupil, login="13900139000")
        create_user("bureau", login="bureau-user")
    sign_in(client, "13900139000")
    for url in _all_urls(app, world):
        assert client.get(url).status_code == 403, url
    client.post("/logout", data={"csrf_token": ""})
