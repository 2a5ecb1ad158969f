"""The admin's confirmation step: an edit that would move published seats shows who gains and who loses first.

World (`two_families`): school X's published run seats P001 (学生1, parent A) in S11 and S12 on Monday; P004
waits for Tuesday. Admin X edits; admin Y (another school), parent A and anonymous try to.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.webapp.factories import World, create_user, csrf_token, post_form, sign_in, two_families
from webapp.allocation import service
from webapp.extensions import db
from webapp.models import (
    AuditLog,
    CareRequest,
    Notification,
    PlanAmendment,
    Pupil,
    RunAssignment,
    Session,
    Teacher,
    Term,
    User,
    WaitlistOffer,
)

HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture
def world(app: Flask) -> World:
    made = two_families(app)
    with app.app_context():
        p004 = db.session.scalar(select(Pupil).where(Pupil.school_id == made.ids["school_x"],
                                                     Pupil.number == "P004"))
        create_user("parent", login="13800000004", pupil=p004)
    return made


def _admin_x(app: Flask, world: World) -> FlaskClient:
    client = app.test_client()
    sign_in(client, world.logins["admin_x"])
    return client


def _session(app: Flask, world: World, code: str, school: str = "x") -> dict[str, str]:
    """The edit form's fields of session `code`, as the browser posts them."""
    with app.app_context():
        found = db.session.scalar(select(Session).where(Session.term_id == world.ids[f"term_{school}"],
                                                        Session.code == code))
        assert found is not None
        return {"id": str(found.id), "code": found.code, "activity": str(found.activity_id), "day": str(found.day),
                "period": str(found.period_id), "room": found.room, "capacity": str(found.capacity),
                "grade_lo": str(found.grade_lo), "grade_hi": str(found.grade_hi),
                "pupils_per_teacher": str(found.pupils_per_teacher), "min_pupils": str(found.min_pupils)}


def _state(app: Flask) -> dict[str, Any]:
    with app.app_context():
        return {
            "versions": sorted(db.session.execute(select(Term.id, Term.plan_version)).all()),
            "seats": sorted(db.session.execute(select(RunAssignment.pupil_id, RunAssignment.session_id)).all()),
            "sessions": sorted(db.session.execute(select(Session.id, Session.capacity, Session.room)).all()),
            "teachers": sorted(db.session.execute(select(Teacher.id, Teacher.qualifications)).all()),
            "offers": db.session.scalar(select(func.count()).select_from(WaitlistOffer)),
            "messages": db.session.scalar(select(func.count()).select_from(Notification)),
            "audit": sorted(db.session.scalars(select(AuditLog.action).where(AuditLog.action != "auth.login"))),
        }


def _confirm_fields(page: str, reason: str) -> dict[str, Any]:
    """The confirmation form's hidden fields (the edit again, the token, CSRF) plus a reason."""
    fields: dict[str, Any] = {}
    for name, value in HIDDEN_RE.findall(page):
        value = html.unescape(value)
        if name in fields:
            fields[name] = [*([fields[name]] if isinstance(fields[name], str) else fields[name]), value]
        else:
            fields[name] = value
    fields["reason"] = reason
    return fields


def _lower_s12(app: Flask, world: World) -> tuple[FlaskClient, str, str]:
    client = _admin_x(app, world)
    form = _session(app, world, "S12")
    url = f"/admin/sessions/{form.pop('id')}/edit"
    before = _state(app)
    response = post_form(client, url, dict(form, capacity="0"))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert _state(app) == before, "the preview wrote something"
    return client, url, page


def test_lowering_a_capacity_shows_who_loses_then_confirming_amends_the_plan(app: Flask, world: World) -> None:
    client, url, page = _lower_s12(app, world)
    assert "这项修改会变动已发布方案中的名额" in page
    assert "失去名额" in page and "P001 甲" not in page and "学生1" in page  # who loses, by name
    assert "候补中获得名额" in page and "学生4" in page  # the freed Tuesday seat goes to the next family
    assert 'name="reason"' in page and 'name="plan_token" value="1.' in page
    assert "<script" not in page
    response = client.post(url, data=_confirm_fields(page, "足球场维修，本周一停课"))
    assert response.status_code == 302
    with app.app_context():
        term = db.session.get(Term, world.ids["term_x"])
        assert term is not None and term.plan_version == 2
        amendment = db.session.scalar(select(PlanAmendment).where(PlanAmendment.term_id == term.id,
                                                                  PlanAmendment.version == 2))
        assert amendment is not None and amendment.reason == "足球场维修，本周一停课"
        assert amendment.actor_id == world.ids["admin_x"] and amendment.kind == "session_edit"
        assert [(c.pupil_id, c.gained) for c in amendment.changes] == [(world.ids["pupil_a"], False)]
        told = set(db.session.execute(select(Notification.user_id, Notification.event)
                                      .where(Notification.event.in_(("plan_amended", "offer_made")))).all())
        assert (world.ids["parent_a"], "plan_amended") in told
        parent_d = db.session.scalar(select(User.id).where(User.phone == "13800000004"))
        assert (parent_d, "offer_made") in told


def test_a_stale_preview_shows_the_new_one_and_changes_nothing(app: Flask, world: World) -> None:
    client, url, page = _lower_s12(app, world)
    with app.app_context():  # meanwhile the family first in the queue withdraws
        row = db.session.scalar(select(CareRequest).where(CareRequest.pupil_id == db.session.scalar(
            select(Pupil.id).where(Pupil.school_id == world.ids["school_x"], Pupil.number == "P004"))))
        assert row is not None
        service.withdraw_request(row, actor=db.session.get(User, world.ids["admin_x"]), at=service.clock())
    before = _state(app)
    response = client.post(url, data=_confirm_fields(page, "原因"))
    assert response.status_code == 409
    fresh = response.get_data(as_text=True)
    assert "方案在您查看之后已有变动" in fresh and "学生1" in fresh
    assert _state(app) == before
    assert client.post(url, data=_confirm_fields(fresh, "原因")).status_code == 302


def test_confirming_needs_a_reason(app: Flask, world: World) -> None:
    client, url, page = _lower_s12(app, world)
    before = _state(app)
    response = client.post(url, data=_confirm_fields(page, "  "))
    assert response.status_code == 200 and "请填写修改原因" in response.get_data(as_text=True)
    assert _state(app) == before


def test_confirming_needs_the_csrf_token(app: Flask, world: World) -> None:
    client, url, page = _lower_s12(app, world)
    fields = _confirm_fields(page, "原因")
    fields.pop("csrf_token")
    before = _state(app)
    assert client.post(url, data=fields).status_code == 400
    assert _state(app) == before


def test_an_edit_that_moves_no_seat_is_saved_at_once(app: Flask, world: World) -> None:
    client = _admin_x(app, world)
    form = _session(app, world, "S12")
    response = post_form(client, f"/admin/sessions/{form.pop('id')}/edit", dict(form, room="新操场"))
    assert response.status_code == 302
    with app.app_context():
        term = db.session.get(Term, world.ids["term_x"])
        assert term is not None and term.plan_version == 1
        assert db.session.scalar(select(Session.room).where(Session.code == "S12",
                                                            Session.term_id == term.id)) == "新操场"


def test_deleting_a_session_with_pupils_is_confirmed_first(app: Flask, world: World) -> None:
    client = _admin_x(app, world)
    session_id = _session(app, world, "S12")["id"]
    url = f"/admin/sessions/{session_id}/delete"
    before = _state(app)
    response = post_form(client, url, token_from="/admin/sessions")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "学生1" in page and _state(app) == before
    assert client.post(url, data=_confirm_fields(page, "场地取消")).status_code == 302
    with app.app_context():
        assert db.session.get(Session, int(session_id)) is None
        assert db.session.get(Term, world.ids["term_x"]).plan_version == 2  # type: ignore[union-attr]


def test_the_teacher_form_goes_through_the_allocation_service(app: Flask, world: World) -> None:
    client = _admin_x(app, world)
    with app.app_context():
        t1 = db.session.scalar(select(Teacher).where(Teacher.school_id == world.ids["school_x"],
                                                     Teacher.code == "T1"))
        assert t1 is not None
        t1_id = t1.id
    url = f"/admin/teachers/{t1_id}/edit"
    edit = client.get(url).get_data(as_text=True)
    slots = re.findall(r'name="available" value="([^"]+)" checked', edit)
    before = _state(app)
    response = post_form(client, url, {"code": "T1", "name": "李老师", "qualifications": "", "max_sessions": "6",
                                       "active": "y", "available": slots})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "学生1" in page and "李老师不再负责 S12" in page
    assert _state(app) == before
    fields = _confirm_fields(page, "体育资格到期")
    assert sorted(fields["available"]) == sorted(slots)
    assert client.post(url, data=fields).status_code == 302
    with app.app_context():
        assert db.session.get(Teacher, t1_id).qualifications == []  # type: ignore[union-attr]
        amendment = db.session.scalar(select(PlanAmendment).where(PlanAmendment.version == 2))
        assert amendment is not None and amendment.kind == "teacher_edit" and amendment.reason == "体育资格到期"
    # T1 leads nothing any more, but an open offer of a freed seat holds T1 for Tuesday's homework: deleting
    # the teacher withdraws that offer (and offers the seat again with another teacher), so it is confirmed.
    url = f"/admin/teachers/{t1_id}/delete"
    deleted = post_form(client, url, token_from="/admin/teachers")
    page = deleted.get_data(as_text=True)
    assert deleted.status_code == 200 and "失去待确认的名额邀请" in page
    assert client.post(url, data=_confirm_fields(page, "老师调离")).status_code == 302
    with app.app_context():
        assert db.session.get(Teacher, t1_id) is None


@pytest.mark.parametrize("role", ["admin_y", "parent_a", "anonymous"])
def test_only_the_schools_own_admin_may_edit_or_confirm(app: Flask, world: World, role: str) -> None:
    form = _session(app, world, "S12")
    session_id = form.pop("id")
    client = app.test_client()
    if role != "anonymous":
        sign_in(client, world.logins[role])
    before = _state(app)
    for url, data in ((f"/admin/sessions/{session_id}/edit", dict(form, capacity="0")),
                      (f"/admin/sessions/{session_id}/delete", {})):
        token = csrf_token(client, "/account" if role != "anonymous" else "/login")
        response = client.post(url, data={**data, "csrf_token": token, "reason": "x", "plan_token": "1.abc"})
        expected = {"admin_y": 404, "parent_a": 403, "anonymous": 302}[role]
        assert response.status_code == expected, (url, response.status_code)
    assert _state(app) == before
