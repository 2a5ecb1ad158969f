"""An absence nobody reported reaches the class teacher (班主任) too: through the notifications outbox, counted at
a real local SMTP server (aiosmtpd) and a local stand-in of the SMS endpoint; once, even when the mark is
retried; again ("已到") when the mark is corrected; and, when nobody can be told, the duty teacher's page and the
school admin's overview say so.

P001 (学生1) is in grade 3, class 3-1; the duty teacher is 李老师 (T1); the class teacher here is 王老师 (T2).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import _make_app, make_school
from tests.webapp.daily.conftest import MONDAY, Daily, make_duty_teacher
from tests.webapp.factories import create_user, post_form, sign_in
from tests.webapp.notifications.servers import FakeSms, SmtpServer, fake_sms, sms_config, smtp_server  # noqa: F401
from webapp.extensions import db
from webapp.jobs import sweep
from webapp.jobs.periodic import start_local_scheduler, stop_local_scheduler
from webapp.models import AbsenceAlert, ClassTeacher, Notification, Pupil, School, Session, Teacher

Freeze = Callable[[date, str], None]
WANG_PHONE = "13900000002"
WANG_MAIL = "wang@school.example"
PARENT_PHONE = "13800000001"


@pytest.fixture
def app(tmp_path: Any, smtp_server: SmtpServer, fake_sms: FakeSms) -> Iterator[Flask]:  # noqa: F811
    """The app with mail to the local SMTP server and SMS to the local endpoint."""
    app = _make_app(tmp_path, **smtp_server.config(), **sms_config(fake_sms))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _teacher(school_id: int, code: str) -> Teacher:
    found = db.session.scalar(select(Teacher).where(Teacher.school_id == school_id, Teacher.code == code))
    assert found is not None
    return found


def _lead(app: Flask, daily: Daily, *, phone: str | None = WANG_PHONE, email: str | None = WANG_MAIL) -> int:
    """王老师 is the class teacher of grade 3 class 3-1, with this contact; the family has an account."""
    with app.app_context():
        wang = _teacher(daily.school.id, "T2")
        wang.phone, wang.email = phone, email
        db.session.add(ClassTeacher(school_id=daily.school.id, grade=3, class_name="3-1", teacher_id=wang.id))
        db.session.commit()
        create_user("parent", login=PARENT_PHONE, pupil=db.session.get(Pupil, daily.pupil_id))
        return wang.id


def _session_id(code: str) -> int:
    found = db.session.scalar(select(Session.id).where(Session.code == code))
    assert found is not None
    return int(found)


def _mark(client: FlaskClient, session_id: int, pupil_id: int, status: str, client_id: str,
          reason: str = "") -> str:
    response = post_form(client, f"/daily/duty/sessions/{session_id}/mark",
                         {"pupil_id": pupil_id, "session_id": session_id, "client_id": client_id,
                          "status": status, "reason": reason}, token_from="/daily/duty", follow_redirects=True)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _mail_to(server: SmtpServer, address: str) -> list[Message]:
    return [m for m in server.handler.received if address in str(m["To"])]


def _body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


def _sms_to(fake: FakeSms, phone: str) -> list[dict[str, str]]:
    return [r for r in fake.requests if r["PhoneNumbers"] == phone]


def _deliver(app: Flask) -> None:
    """One pass of the delivery job, as the periodic sweep runs it."""
    with app.app_context():
        sweep()


def test_the_class_teacher_gets_sms_and_mail_from_the_periodic_sweep(
        app: Flask, client: FlaskClient, daily: Daily, duty: int, at: Freeze, smtp_server: SmtpServer,  # noqa: F811
        fake_sms: FakeSms) -> None:  # noqa: F811
    _lead(app, daily)
    at(MONDAY, "15:40")
    with app.app_context():
        s11 = _session_id("S11")
    page = _mark(client, s11, daily.pupil_id, "absent", "absent-class-1")
    assert "已通知家长和班主任王老师。" in page
    app.config["NOTIFY_SWEEP_SECONDS"] = 0.3  # the sweep every few tenths of a second instead of every minute
    start_local_scheduler(app)
    try:
        deadline = time.monotonic() + 20
        while (not _mail_to(smtp_server, WANG_MAIL) or len(fake_sms.requests) < 2) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop_local_scheduler(app)
    [mail] = _mail_to(smtp_server, WANG_MAIL)
    body = _body(mail)
    assert "学生1（3年级 3-1）在课后服务（15:30 作业辅导）缺席" in body
    assert "值班教师李老师于 2026-09-07 15:40 点名记录" in body and "家长未请假" in body
    [sms] = _sms_to(fake_sms, WANG_PHONE)
    assert "学生1" in sms["TemplateParam"] and "李老师" in sms["TemplateParam"]
    assert len(_sms_to(fake_sms, PARENT_PHONE)) == 1  # the family is told as before
    with app.app_context():
        alert = db.session.scalars(select(AbsenceAlert)).one()
        assert alert.problem is None and alert.class_teacher_id == _teacher(daily.school.id, "T2").id


def test_a_retried_mark_tells_nobody_twice(app: Flask, client: FlaskClient, daily: Daily, duty: int, at: Freeze,
                                           smtp_server: SmtpServer, fake_sms: FakeSms) -> None:  # noqa: F811
    wang_id = _lead(app, daily)
    at(MONDAY, "15:40")
    with app.app_context():
        s11, s12 = _session_id("S11"), _session_id("S12")
    for _ in range(3):  # the same form posted again and again on bad Wi-Fi
        _mark(client, s11, daily.pupil_id, "absent", "absent-retry-1")
    _deliver(app)
    _mark(client, s11, daily.pupil_id, "absent", "absent-retry-1")
    _mark(client, s12, daily.pupil_id, "absent", "absent-retry-2")  # the next session: the same day's absence
    _deliver(app)
    assert len(_mail_to(smtp_server, WANG_MAIL)) == 1
    assert len(_sms_to(fake_sms, WANG_PHONE)) == 1 and len(_sms_to(fake_sms, PARENT_PHONE)) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)
                                 .where(Notification.teacher_id == wang_id)) == 1
        assert db.session.scalar(select(func.count()).select_from(AbsenceAlert)) == 1


def test_a_correction_sends_arrived_to_the_family_and_the_class_teacher_once(
        app: Flask, client: FlaskClient, daily: Daily, duty: int, at: Freeze, smtp_server: SmtpServer,  # noqa: F811
        fake_sms: FakeSms) -> None:  # noqa: F811
    wang_id = _lead(app, daily)
    at(MONDAY, "15:40")
    with app.app_context():
        s11 = _session_id("S11")
    _mark(client, s11, daily.pupil_id, "absent", "absent-fix-1")
    at(MONDAY, "15:52")
    for _ in range(2):  # a retried correction is one correction
        _mark(client, s11, daily.pupil_id, "present", "absent-fix-2", reason="在厕所")
    _mark(client, s11, daily.pupil_id, "absent", "absent-fix-3", reason="又走了")
    _mark(client, s11, daily.pupil_id, "late", "absent-fix-4", reason="回来了")
    _deliver(app)
    mails = [_body(m) for m in _mail_to(smtp_server, WANG_MAIL)]
    assert len(mails) == 2 and "缺席" in mails[0]
    assert "学生1（3年级 3-1）已到课后服务（15:30 作业辅导）" in mails[1]
    assert "值班教师李老师于 2026-09-07 15:52 更正了缺席记录" in mails[1]
    assert len(_sms_to(fake_sms, WANG_PHONE)) == 2 and len(_sms_to(fake_sms, PARENT_PHONE)) == 2
    with app.app_context():
        family = db.session.scalars(select(Notification.event).where(Notification.user_id.is_not(None))
                                    .order_by(Notification.id)).all()
        assert family == ["absence_unreported", "absence_arrived"]
        teacher = db.session.scalars(select(Notification.event).where(Notification.teacher_id == wang_id)
                                     .order_by(Notification.id)).all()
        assert teacher == ["class_absence", "class_arrived"]


def test_without_a_class_teacher_the_duty_teacher_and_the_admin_are_told(
        app: Flask, client: FlaskClient, daily: Daily, duty: int, at: Freeze,
        smtp_server: SmtpServer) -> None:  # noqa: F811
    at(MONDAY, "15:40")
    with app.app_context():
        s11 = _session_id("S11")
    page = _mark(client, s11, daily.pupil_id, "absent", "absent-nobody-1")
    assert "已通知家长。3年级 3-1没有登记班主任：请您自行告知班主任。" in page
    again = client.get(f"/daily/duty/sessions/{s11}").get_data(as_text=True)
    assert "3年级 3-1没有登记班主任：请您自行告知班主任。" in again  # still there after a reload
    admin = app.test_client()
    with app.app_context():
        create_user("school_admin", school=db.session.get(School, daily.school.id), login="admin-x")
    sign_in(admin, "admin-x")
    overview = admin.get("/daily/alerts").get_data(as_text=True)
    assert "学生1" in overview and "未送达：未登记班主任" in overview and "其中 1 条未送达班主任" in overview
    assert "李老师" in overview  # the duty teacher who marked it
    _deliver(app)
    assert not smtp_server.handler.received


def test_a_class_teacher_without_contact_is_shown_undelivered(app: Flask, client: FlaskClient, daily: Daily,
                                                              duty: int, at: Freeze) -> None:
    _lead(app, daily, phone=None, email=None)
    at(MONDAY, "15:40")
    with app.app_context():
        s11 = _session_id("S11")
    page = _mark(client, s11, daily.pupil_id, "absent", "absent-nocontact-1")
    assert "已通知家长。班主任王老师没有登记手机号或邮箱：请您自行告知。" in page
    admin = app.test_client()
    with app.app_context():
        create_user("school_admin", school=db.session.get(School, daily.school.id), login="admin-x")
    sign_in(admin, "admin-x")
    overview = admin.get("/daily/alerts").get_data(as_text=True)
    assert "未送达：无手机号或邮箱" in overview and "王老师" in overview
    assert "（班主任）" not in admin.get("/admin/notifications").get_data(as_text=True)  # no delivery to list


def test_the_class_teachers_duty_account_shows_the_alert(app: Flask, client: FlaskClient, daily: Daily,
                                                         duty: int, at: Freeze, smtp_server: SmtpServer) -> None:  # noqa: F811
    _lead(app, daily)
    at(MONDAY, "15:40")
    with app.app_context():
        s11 = _session_id("S11")
        make_duty_teacher(daily.school.id, login="duty-wang", teacher_code="T2")
        make_duty_teacher(daily.school.id, login="duty-zhao", teacher_code="T3")
    _mark(client, s11, daily.pupil_id, "absent", "absent-own-1")
    wang, zhao = app.test_client(), app.test_client()
    sign_in(wang, "duty-wang")
    sign_in(zhao, "duty-zhao")
    page = wang.get("/daily/duty").get_data(as_text=True)
    assert "您的班级：未请假缺席" in page and "学生1" in page and "李老师于 15:40 点名记录" in page
    assert "您的班级" not in zhao.get("/daily/duty").get_data(as_text=True)  # not their class
    _deliver(app)
    admin = app.test_client()
    with app.app_context():
        create_user("school_admin", school=db.session.get(School, daily.school.id), login="admin-x")
    sign_in(admin, "admin-x")
    assert "已发送" in admin.get("/daily/alerts").get_data(as_text=True)
    assert "王老师 <span class=\"muted\">(班主任)</span>" in admin.get("/admin/notifications").get_data(as_text=True)


# ------------------------------------------------------------------------------------------ the admin page


def test_the_school_admin_records_class_teachers(app: Flask, client: FlaskClient, daily: Daily,
                                                 signed_in: Callable[..., Any]) -> None:
    signed_in("school_admin")
    page = client.get("/daily/class-teachers").get_data(as_text=True)
    assert "3年级 3-1" in page and "未登记班主任" in page
    with app.app_context():
        wang = _teacher(daily.school.id, "T2")
        wang.phone = WANG_PHONE
        db.session.commit()
        wang_id = wang.id
        other = make_school("KM-TEST-0002", n_pupils=1)
        foreign = _teacher(other.id, "T1").id
    response = post_form(client, "/daily/class-teachers", {"grade": 3, "class_name": "3-1", "teacher_id": wang_id},
                         follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "139****0002" in page and WANG_PHONE not in page  # the contact masked
    refused = post_form(client, "/daily/class-teachers", {"grade": 3, "class_name": "3-1", "teacher_id": foreign},
                        follow_redirects=True)
    assert "未能识别所选班主任" in refused.get_data(as_text=True)  # not a teacher of this school
    unknown = post_form(client, "/daily/class-teachers", {"grade": 3, "class_name": "9-9", "teacher_id": wang_id},
                        follow_redirects=True)
    assert "请选择本校的班级。" in unknown.get_data(as_text=True)  # not a class of this school's pupils
    assert client.post("/daily/class-teachers", data={"grade": 3, "class_name": "3-1",
                                                      "teacher_id": ""}).status_code == 400  # no CSRF token
    with app.app_context():
        rows = db.session.scalars(select(ClassTeacher)).all()
        assert [(r.grade, r.class_name, r.teacher_id) for r in rows] == [(3, "3-1", wang_id)]
    post_form(client, "/daily/class-teachers", {"grade": 3, "class_name": "3-1", "teacher_id": ""})
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ClassTeacher)) == 0


@pytest.mark.parametrize("role", ["parent", "duty_teacher", "bureau"])
def test_only_school_admins_see_class_teachers_and_alerts(app: Flask, client: FlaskClient, daily: Daily,
                                                          signed_in: Callable[..., Any], role: str) -> None:
    signed_in(role)
    assert client.get("/daily/class-teachers").status_code == 403
    assert client.get("/daily/alerts").status_code == 403


def test_another_schools_admin_sees_none_of_our_alerts(app: Flask, client: FlaskClient, daily: Daily, duty: int,
                                                       at: Freeze) -> None:
    at(MONDAY, "15:40")
    with app.app_context():
        s11 = _session_id("S11")
        other = make_school("KM-TEST-0003", n_pupils=1)
        create_user("school_admin", school=other, login="admin-other")
    _mark(client, s11, daily.pupil_id, "absent", "absent-other-1")
    stranger = app.test_client()
    sign_in(stranger, "admin-other")
    page = stranger.get("/daily/alerts").get_data(as_text=True)
    assert "学生1" not in page and "当天没有未请假缺席。" in page


def test_a_teachers_contact_is_entered_once_and_then_shown_masked(app: Flask, client: FlaskClient,
                                                                  signed_in: Callable[..., Any]) -> None:
    admin = signed_in("school_admin")
    with app.app_context():
        wang = _teacher(admin.school_id or 0, "T2")
        url = f"/admin/teachers/{wang.id}/edit"
    form = {"code": "T2", "name": "王老师", "qualifications": "arts", "max_sessions": 6, "active": "y",
            "phone": "139 0000 0002", "email": WANG_MAIL}
    assert post_form(client, url, {**form, "phone": "12345"}).status_code == 200  # refused, shown again
    with app.app_context():
        assert _teacher(admin.school_id or 0, "T2").phone is None
    assert post_form(client, url, form).status_code == 302
    listing = client.get("/admin/teachers").get_data(as_text=True)
    assert "139****0002" in listing and "w***@school.example" in listing and WANG_PHONE not in listing
    edit = client.get(url).get_data(as_text=True)
    assert WANG_PHONE not in edit and WANG_MAIL not in edit and "已登记：139****0002。留空则保留。" in edit
    post_form(client, url, {**form, "phone": "", "email": ""})  # empty fields keep what is on file
    with app.app_context():
        kept = _teacher(admin.school_id or 0, "T2")
        assert (kept.phone, kept.email) == (WANG_PHONE, WANG_MAIL)
    post_form(client, url, {**form, "phone": "", "email": "", "clear_contact": "y"})
    with app.app_context():
        cleared = _teacher(admin.school_id or 0, "T2")
        assert (cleared.phone, cleared.email) == (None, None)
