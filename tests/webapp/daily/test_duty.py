"""The duty teacher on a phone: today's sessions, roll-call in two taps, sign-out, the late board, refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import make_school
from tests.webapp.daily.conftest import HOLIDAY, MONDAY, Daily, make_duty_teacher
from tests.webapp.factories import create_user, post_form, sign_in
from webapp.daily.rollcall import duty_teacher
from webapp.extensions import db
from webapp.family import hash_enrolment_code
from webapp.models import (
    Absence,
    AuditLog,
    Handover,
    Notification,
    PickupDelegate,
    PickupPerson,
    Pupil,
    RollCallMark,
    Session,
    User,
)

Freeze = Callable[[date, str], None]


def _session_id(code: str) -> int:
    found = db.session.scalar(select(Session.id).where(Session.code == code))
    assert found is not None
    return int(found)


def _mark(client: FlaskClient, session_id: int, pupil_id: int, status: str, client_id: str,
          reason: str = "") -> str:
    response = post_form(client, f"/daily/duty/sessions/{session_id}/mark",
                         {"pupil_id": pupil_id, "session_id": session_id, "client_id": client_id,
                          "status": status, "reason": reason}, token_from="/daily/duty", follow_redirects=True)
    return response.get_data(as_text=True)


def _count(model: type) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def _refusals(action: str) -> list[str]:
    return [row.detail["refused"] for row in db.session.scalars(select(AuditLog).where(AuditLog.action == action))]


def _parent(app: Flask, daily: Daily) -> int:
    with app.app_context():
        return create_user("parent", login="13800000001", pupil=db.session.get(Pupil, daily.pupil_id)).id


def test_todays_sessions_and_a_mark_in_two_taps(app: Flask, client: FlaskClient, daily: Daily, duty: int,
                                               at: Freeze) -> None:
    at(MONDAY, "15:40")
    assert client.get("/").location.endswith("/daily/duty")
    page = client.get("/daily/duty").get_data(as_text=True)
    assert "15:30–16:30 作业辅导" in page and "16:30–17:30 足球" in page
    with app.app_context():
        s11 = _session_id("S11")
    session_page = client.get(f"/daily/duty/sessions/{s11}").get_data(as_text=True)
    assert "学生1" in session_page
    # Works without script: every row is a form posting to the mark; the script (a file, no inline code) only
    # sends the same form in the background.
    assert f'<form method="post" action="/daily/duty/sessions/{s11}/mark">' in session_page
    assert session_page.count("<script") == 1 and '<script src="/static/js/rollcall.js" defer>' in session_page
    _mark(client, s11, daily.pupil_id, "present", "retry-me-1")
    _mark(client, s11, daily.pupil_id, "present", "retry-me-1")  # the same form again: bad Wi-Fi
    with app.app_context():
        assert _count(RollCallMark) == 1
        assert db.session.scalar(select(AuditLog.action).where(AuditLog.action.like("rollcall.%"))) == "rollcall.mark"
    at(HOLIDAY, "15:40")
    assert "今天没有课后服务。" in client.get("/daily/duty").get_data(as_text=True)
    assert client.get(f"/daily/duty/sessions/{s11}").status_code == 404  # not today


def test_a_correction_is_a_new_row_with_a_reason(app: Flask, client: FlaskClient, daily: Daily, duty: int,
                                                 at: Freeze) -> None:
    at(MONDAY, "15:40")
    with app.app_context():
        s11 = _session_id("S11")
    _mark(client, s11, daily.pupil_id, "present", "first-mark-1")
    page = _mark(client, s11, daily.pupil_id, "late", "second-mark-1")
    assert "修改考勤须填写原因。" in page
    with app.app_context():
        assert _count(RollCallMark) == 1
    _mark(client, s11, daily.pupil_id, "late", "third-mark-1", reason="点错了")
    with app.app_context():
        first, second = db.session.scalars(select(RollCallMark).order_by(RollCallMark.id)).all()
        assert first.status == "present" and second.status == "late"
        assert second.corrects_id == first.id and second.reason == "点错了"


def test_a_pupil_not_expected_is_refused_and_audited(app: Flask, client: FlaskClient, daily: Daily,
                                                     duty: int, at: Freeze) -> None:
    at(MONDAY, "15:40")
    with app.app_context():
        s11 = _session_id("S11")
        other = db.session.scalar(select(Pupil.id).where(Pupil.number == "P002"))
    page = _mark(client, s11, int(other or 0), "present", "stranger-01")
    assert "这名学生今天不在这个课程的名单上。" in page
    with app.app_context():
        assert _count(RollCallMark) == 0 and _refusals("rollcall.refuse") == ["not_expected"]


def test_an_unreported_absence_tells_the_family_once(app: Flask, client: FlaskClient, daily: Daily, duty: int,
                                                     at: Freeze) -> None:
    parent_id = _parent(app, daily)
    at(MONDAY, "15:40")
    with app.app_context():
        s11, s12 = _session_id("S11"), _session_id("S12")
    _mark(client, s11, daily.pupil_id, "absent", "absent-mark-1")
    _mark(client, s12, daily.pupil_id, "absent", "absent-mark-2")
    with app.app_context():
        told = db.session.scalars(select(Notification).where(Notification.user_id == parent_id)).all()
        assert [n.event for n in told] == ["absence_unreported"]
        assert told[0].params["session"] == "15:30 作业辅导"


def test_a_reported_absence_tells_nobody(app: Flask, client: FlaskClient, daily: Daily, duty: int,
                                         at: Freeze) -> None:
    _parent(app, daily)
    with app.app_context():
        db.session.add(Absence(pupil_id=daily.pupil_id, first_day=MONDAY, last_day=MONDAY, reason="病假"))
        db.session.commit()
        s11 = _session_id("S11")
    at(MONDAY, "15:40")
    assert "已请假" in client.get(f"/daily/duty/sessions/{s11}").get_data(as_text=True)
    _mark(client, s11, daily.pupil_id, "absent", "absent-mark-3")
    with app.app_context():
        assert _count(Notification) == 0 and _count(RollCallMark) == 1


def test_handover_to_an_authorised_person_then_never_twice(app: Flask, client: FlaskClient, daily: Daily,
                                                           duty: int, at: Freeze) -> None:
    at(MONDAY, "17:35")
    with app.app_context():
        grandma = PickupPerson(pupil_id=daily.pupil_id, name="王奶奶", relation="奶奶", phone="13900139000")
        stranger = PickupPerson(pupil_id=db.session.scalar(select(Pupil.id).where(Pupil.number == "P002")),
                                name="别人", relation="叔叔", phone="13900139001")
        db.session.add_all([grandma, stranger])
        db.session.commit()
        ids = (grandma.id, stranger.id)
    url = f"/daily/duty/pupils/{daily.pupil_id}/handover"
    page = client.get(url).get_data(as_text=True)
    assert "13900139000" in page  # the number is shown where the handover needs it
    refused = post_form(client, url, {"pupil_id": daily.pupil_id, "person_id": ids[1]}, token_from=url,
                        follow_redirects=True).get_data(as_text=True)
    assert "此人无权接这名学生。" in refused
    post_form(client, url, {"pupil_id": daily.pupil_id, "person_id": ids[0]}, token_from=url)
    again = post_form(client, url, {"pupil_id": daily.pupil_id, "person_id": ids[0]}, token_from=url,
                      follow_redirects=True).get_data(as_text=True)
    assert "这名学生今天已经被接走。" in again
    with app.app_context():
        handover = db.session.scalar(select(Handover))
        assert handover is not None and handover.pickup_person_id == ids[0] and handover.handed_by == duty
        assert _count(Handover) == 1
        assert _refusals("handover.refuse") == ["not_authorised", "already_picked_up"]


def test_handover_by_delegate_code_once(app: Flask, client: FlaskClient, daily: Daily, duty: int,
                                        at: Freeze) -> None:
    at(MONDAY, "17:35")
    with app.app_context():
        db.session.add_all([
            PickupDelegate(pupil_id=daily.pupil_id, name="李阿姨", valid_on=MONDAY,
                           code_hash=hash_enrolment_code("ABCD2345")),
            PickupDelegate(pupil_id=daily.pupil_id, name="明天的人", valid_on=date(2026, 9, 14),
                           code_hash=hash_enrolment_code("WXYZ6789"))])
        db.session.commit()
    url = f"/daily/duty/pupils/{daily.pupil_id}/handover"
    for wrong in ("AAAA2222", "WXYZ6789"):  # wrong, and right but for another date
        post_form(client, url, {"pupil_id": daily.pupil_id, "code": wrong}, token_from=url)
    with app.app_context():
        assert _count(Handover) == 0
    post_form(client, url, {"pupil_id": daily.pupil_id, "code": "abcd-2345"}, token_from=url)
    with app.app_context():
        handover = db.session.scalar(select(Handover))
        assert handover is not None and handover.delegate is not None and handover.delegate.name == "李阿姨"
        assert handover.delegate.used_at is not None
        assert _refusals("handover.refuse") == ["bad_code", "bad_code"]


def test_the_still_here_board(app: Flask, client: FlaskClient, daily: Daily, duty: int, at: Freeze) -> None:
    _parent(app, daily)
    with app.app_context():
        s11, s12 = _session_id("S11"), _session_id("S12")
        db.session.add(PickupPerson(pupil_id=daily.pupil_id, name="王奶奶", relation="奶奶", phone="13900139000"))
        db.session.commit()
    at(MONDAY, "15:40")
    _mark(client, s11, daily.pupil_id, "present", "board-mark-1")
    _mark(client, s12, daily.pupil_id, "present", "board-mark-2")
    at(MONDAY, "17:20")
    assert "13900139000" not in client.get("/daily/duty/still-here").get_data(as_text=True)  # not due yet
    at(MONDAY, "17:31")
    board = client.get("/daily/duty/still-here").get_data(as_text=True)
    assert "学生1" in board and "13800000001" in board and "13900139000" in board and "17:30" in board


def test_duty_teachers_see_only_their_own_school(app: Flask, client: FlaskClient, daily: Daily,
                                                 at: Freeze) -> None:
    at(MONDAY, "15:40")
    with app.app_context():
        other = make_school("KM-TEST-0002", district_name="盘龙区")
        make_duty_teacher(other.id, login="duty-y")
        create_user("duty_teacher", login="duty-unlinked")
        s11 = _session_id("S11")
    sign_in(client, "duty-y")
    assert client.get(f"/daily/duty/sessions/{s11}").status_code == 404
    assert client.get(f"/daily/duty/pupils/{daily.pupil_id}/handover").status_code == 404
    assert "学生1" not in client.get("/daily/duty").get_data(as_text=True)
    unlinked = app.test_client()
    sign_in(unlinked, "duty-unlinked")
    assert unlinked.get("/daily/duty").status_code == 403


def test_create_user_links_a_duty_teacher(app: Flask, daily: Daily) -> None:
    runner = app.test_cli_runner()
    base = ["create-user", "--role", "duty_teacher", "--username", "duty-cli", "--password", "long-enough-pass-1"]
    missing = runner.invoke(args=[*base, "--school", daily.school.code])
    assert missing.exit_code == 2 and "--teacher" in missing.output
    made = runner.invoke(args=[*base, "--school", daily.school.code, "--teacher", "T2"])
    assert made.exit_code == 0, made.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "duty-cli"))
        teacher = duty_teacher(user) if user is not None else None
        assert teacher is not None and teacher.code == "T2"
