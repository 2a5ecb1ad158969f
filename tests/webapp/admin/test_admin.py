"""School admin screens: dashboard, edits with CSRF and validation, window, codes, and who may see what."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import make_school
from tests.webapp.factories import SchoolIds, create_user, post_form
from webapp.extensions import db
from webapp.family import link_child
from webapp.models import (
    Activity,
    AllocationRun,
    AuditLog,
    Guardianship,
    Pupil,
    RunAssignment,
    School,
    Session,
    Teacher,
    TeacherAvailability,
    Term,
    User,
    utcnow,
)

SignedIn = Callable[..., User]


def ids(app: Flask, code: str = "KM-TEST-0001") -> dict[str, int]:
    """Ids of one object of each kind in the school `code`."""
    with app.app_context():
        school = db.session.scalar(select(School).where(School.code == code))
        assert school is not None
        term = school.terms[0]
        return {"term": term.id, "activity": term.activities[0].id, "session": term.sessions[0].id,
                "teacher": school.teachers[0].id, "pupil": school.pupils[0].id}


def other_school(app: Flask) -> dict[str, int]:
    with app.app_context():
        make_school("KM-TEST-0002")
    return ids(app, "KM-TEST-0002")


def page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


# ------------------------------------------------------------------------------------------ dashboard


def test_dashboard_summarises_the_term_in_both_languages(client: FlaskClient, signed_in: SignedIn) -> None:
    signed_in("school_admin")
    html = page(client, "/admin/")
    assert "测试小学0001" in html and "开放中" in html and "立即截止申请" in html
    assert "各星期、各时段的名额" in html
    assert re.search(r'stat-value">6<.*学生', html, re.S)
    assert re.search(r'<td>40</td>', html)  # homework seats, Monday P1
    client.set_cookie("lang", "en")
    english = page(client, "/admin/")
    assert "Seats by weekday and period" in english and "Close requests now" in english


def test_every_admin_page_renders_in_both_languages(app: Flask, client: FlaskClient,
                                                    signed_in: SignedIn) -> None:
    signed_in("school_admin")
    mine = ids(app)
    urls = ["/admin/", "/admin/import/pupils", "/admin/import/teachers", "/admin/import/sessions",
            "/admin/activities", "/admin/activities/new", f"/admin/activities/{mine['activity']}/edit",
            "/admin/sessions", "/admin/sessions/new", f"/admin/sessions/{mine['session']}/edit",
            "/admin/teachers",
            "/admin/teachers/new", f"/admin/teachers/{mine['teacher']}/edit", "/admin/pupils",
            f"/admin/pupils/{mine['pupil']}", "/admin/codes", "/admin/window"]
    for lang in ("zh", "en"):
        client.set_cookie("lang", lang)
        for url in urls:
            html = page(client, url)
            assert ('lang="zh-CN"' if lang == "zh" else 'lang="en"') in html


def test_templates_download(client: FlaskClient, signed_in: SignedIn) -> None:
    signed_in("school_admin")
    response = client.get("/admin/import/teachers/template.csv")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    assert response.data.decode("utf-8-sig").startswith("工号,姓名,资质,每周上限,可用时段")
    assert client.get("/admin/import/sessions/template.xlsx").data[:2] == b"PK"
    assert client.get("/admin/import/pupils/template.pdf").status_code == 404


# ------------------------------------------------------------------------------------------ import over HTTP


def test_upload_shows_every_problem_and_then_imports(app: Flask, client: FlaskClient,
                                                     signed_in: SignedIn) -> None:
    signed_in("school_admin")
    bad = "学号,姓名,年级\nH1,张三,9\nH2,,2\n".encode()
    response = post_form(client, "/admin/import/pupils", {"file": (io.BytesIO(bad), "p.csv")})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "第 2 行，「年级」列：年级必须是 1 到 6 的整数。" in html
    assert "第 3 行，「姓名」列：姓名不能为空。" in html
    good = "学号,姓名,年级\nH1,张三,2\nH2,李四,2\n".encode()
    response = post_form(client, "/admin/import/pupils", {"file": (io.BytesIO(good), "p.csv")},
                         follow_redirects=True)
    assert "已导入 2 行：新增 2，更新 0，未变 0。" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Pupil.id)).where(Pupil.number.in_(["H1", "H2"]))) == 2


def test_upload_without_csrf_is_refused(client: FlaskClient, signed_in: SignedIn) -> None:
    signed_in("school_admin")
    data = {"file": (io.BytesIO(b"a,b\n"), "p.csv")}
    assert client.post("/admin/import/pupils", data=data).status_code == 400


# ------------------------------------------------------------------------------------------ edit screens


def test_activity_crud(app: Flask, client: FlaskClient, signed_in: SignedIn) -> None:
    signed_in("school_admin")
    data = {"code": "chess", "name": "围棋", "category": "thinking", "qualification": "chess"}
    assert post_form(client, "/admin/activities/new", data).status_code == 302
    with app.app_context():
        chess = db.session.scalar(select(Activity).where(Activity.code == "chess"))
        assert chess is not None and chess.qualification == "chess"
        chess_id = chess.id
    clash = post_form(client, f"/admin/activities/{chess_id}/edit", dict(data, code="art"))
    assert "本学期已有活动使用这个代码。" in clash.get_data(as_text=True)
    post_form(client, f"/admin/activities/{chess_id}/edit", dict(data, name="国际象棋", qualification=""))
    with app.app_context():
        chess = db.session.get(Activity, chess_id)
        assert chess is not None and chess.name == "国际象棋" and chess.qualification is None
    step = post_form(client, f"/admin/activities/{chess_id}/delete", token_from="/admin/activities")
    assert step.status_code == 200 and "是，删除" in step.get_data(as_text=True)  # the confirmation step
    with app.app_context():
        assert db.session.get(Activity, chess_id) is not None
    post_form(client, f"/admin/activities/{chess_id}/delete", {"confirmed": "1"}, token_from="/admin/activities")
    with app.app_context():
        assert db.session.get(Activity, chess_id) is None
    art = ids(app)["activity"]
    response = post_form(client, f"/admin/activities/{art}/delete", token_from="/admin/activities",
                         follow_redirects=True)
    assert "还有 2 个课程班" in response.get_data(as_text=True)


SESSION_DATA = {"code": "X1", "day": "3", "room": "101", "capacity": "25", "grade_lo": "2", "grade_hi": "5",
                "pupils_per_teacher": "25", "min_pupils": "5"}


def session_data(app: Flask, **changes: str) -> dict[str, str]:
    with app.app_context():
        term = db.session.scalar(select(Term))
        assert term is not None
        return {**SESSION_DATA, "activity": str(term.activities[0].id), "period": str(term.periods[0].id),
                **changes}


def test_session_create_and_validation(app: Flask, client: FlaskClient, signed_in: SignedIn) -> None:
    signed_in("school_admin")
    assert post_form(client, "/admin/sessions/new", session_data(app)).status_code == 302
    with app.app_context():
        created = db.session.scalar(select(Session).where(Session.code == "X1"))
        assert created is not None and (created.day, created.capacity, created.grade_lo) == (3, 25, 2)
    for changes, message in (
        ({"capacity": "-1"}, "请输入 0 到 2000 之间的整数。"),
        ({"grade_lo": "5", "grade_hi": "2"}, "年级上限不能低于年级下限。"),
        ({"grade_hi": "7"}, "请输入 1 到 6 之间的整数。"),
        ({"pupils_per_teacher": "0"}, "请输入 1 到 2000 之间的整数。"),
        ({"min_pupils": "-3"}, "请输入 0 到 2000 之间的整数。"),
        ({"day": "6"}, "不是有效的选择。"),
        ({"code": "S11"}, "本学期已有课程班使用这个编号。"),
    ):
        response = post_form(client, "/admin/sessions/new", session_data(app, **{"code": "X2", **changes}))
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert message in html, changes
    with app.app_context():
        assert db.session.scalar(select(func.count(Session.id)).where(Session.code == "X2")) == 0


def test_raising_capacity_calls_the_waitlist_hook(app: Flask, client: FlaskClient, signed_in: SignedIn,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr("webapp.allocation.seats.promote", lambda term, **kw: calls.append(term.id) or [])
    signed_in("school_admin")
    mine = ids(app)
    with app.app_context():
        s = db.session.get(Session, mine["session"])
        assert s is not None
        data = {"code": s.code, "activity": str(s.activity_id), "day": str(s.day), "period": str(s.period_id),
                "room": s.room, "capacity": str(s.capacity - 1), "grade_lo": str(s.grade_lo),
                "grade_hi": str(s.grade_hi), "pupils_per_teacher": str(s.pupils_per_teacher),
                "min_pupils": str(s.min_pupils)}
    post_form(client, f"/admin/sessions/{mine['session']}/edit", data)
    assert calls == []
    post_form(client, f"/admin/sessions/{mine['session']}/edit", dict(data, capacity="60"))
    assert calls == [mine["term"]]


def test_deleting_a_session_in_the_published_run_is_confirmed_first(app: Flask, client: FlaskClient,
                                                                    signed_in: SignedIn) -> None:
    signed_in("school_admin")
    mine = ids(app)
    with app.app_context():
        term = db.session.get(Term, mine["term"])
        assert term is not None
        run = AllocationRun(term=term, state="done", is_published=True, published_at=utcnow(), version=1)
        db.session.add(run)
        db.session.flush()
        db.session.add(RunAssignment(run_id=run.id, pupil_id=mine["pupil"], session_id=mine["session"]))
        term.published_run_id = run.id
        db.session.commit()
    url = f"/admin/sessions/{mine['session']}/delete"
    response = post_form(client, url, token_from="/admin/sessions")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "这项修改会变动已发布方案中的名额" in html and "失去名额" in html
    with app.app_context():
        assert db.session.get(Session, mine["session"]) is not None
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html), reason="停课")
    assert client.post(url, data=fields).status_code == 302
    with app.app_context():
        assert db.session.get(Session, mine["session"]) is None
        spare = db.session.scalar(select(Session.id).where(Session.id != mine["session"]))
    post_form(client, f"/admin/sessions/{spare}/delete", token_from="/admin/sessions")
    with app.app_context():
        assert db.session.get(Session, spare) is None


def test_teacher_with_availability_grid(app: Flask, client: FlaskClient, signed_in: SignedIn) -> None:
    signed_in("school_admin")
    with app.app_context():
        term = db.session.scalar(select(Term))
        assert term is not None
        p1, p3 = term.periods[0].id, term.periods[2].id
    data = {"code": "T7", "name": "钱老师", "qualifications": "sports, arts", "max_sessions": "3",
            "active": "y",
            "available": [f"1:{p1}", f"5:{p3}", f"6:{p1}", "junk"]}
    assert post_form(client, "/admin/teachers/new", data).status_code == 302
    with app.app_context():
        teacher = db.session.scalar(select(Teacher).where(Teacher.code == "T7"))
        assert teacher is not None and teacher.qualifications == ["arts", "sports"]
        slots = {(a.day, a.period_id) for a in db.session.scalars(
            select(TeacherAvailability).where(TeacherAvailability.teacher_id == teacher.id))}
        assert slots == {(1, p1), (5, p3)}
        teacher_id = teacher.id
    html = page(client, f"/admin/teachers/{teacher_id}/edit")
    assert f'value="1:{p1}" checked' in html and f'value="2:{p1}">' in html
    # A post without the qualifications field keeps the teacher's tags (found by the form fuzzer: it was a 500).
    kept = post_form(client, f"/admin/teachers/{teacher_id}/edit",
                     {k: v for k, v in data.items() if k != "qualifications"})
    assert kept.status_code == 302
    with app.app_context():
        assert db.session.get(Teacher, teacher_id).qualifications == ["arts", "sports"]  # type: ignore[union-attr]
    bad = post_form(client, "/admin/teachers/new", dict(data, code="T8", max_sessions="99"))
    assert "请输入 0 到 50 之间的整数。" in bad.get_data(as_text=True)
    misspelt = post_form(client, "/admin/teachers/new", dict(data, code="T8", qualifications="sprots, arts"))
    assert misspelt.status_code == 200
    assert "“sprots”：没有活动要求这项资质。已有的资质标签：arts、sports。" in misspelt.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Teacher).where(Teacher.code == "T8")) is None
    post_form(client, f"/admin/teachers/{teacher_id}/delete", token_from="/admin/teachers")
    with app.app_context():
        assert db.session.get(Teacher, teacher_id) is None


# ------------------------------------------------------------------------------------------ pupils


def test_pupil_search_paging_and_masked_guardian_phone(app: Flask, client: FlaskClient,
                                                       signed_in: SignedIn) -> None:
    signed_in("school_admin")
    with app.app_context():
        school = db.session.scalar(select(School))
        assert school is not None
        db.session.add_all([Pupil(school=school, number=f"Q{i:03d}", name=f"查询{i}", grade=2,
                                  class_name="2-1") for i in range(120)])
        db.session.commit()
        create_user("parent", login="13812341234", pupil=db.session.scalar(select(Pupil).where(
            Pupil.number == "P002")))
        p002 = db.session.scalar(select(Pupil.id).where(Pupil.number == "P002"))
    html = page(client, "/admin/pupils?q=查询11")
    assert "查询11" in html and "查询110" in html and "查询12" not in html
    first = page(client, "/admin/pupils?class=2-1")
    assert "第 1 / 3 页" in first and "Q049" in first and "Q050" not in first
    assert "Q100" in page(client, "/admin/pupils?class=2-1&page=3")
    detail = page(client, f"/admin/pupils/{p002}")
    assert "138****1234" in detail and "13812341234" not in detail


# ------------------------------------------------------------------------------------------ request window


def test_window_is_entered_in_china_time_and_stored_in_utc(app: Flask, client: FlaskClient,
                                                           signed_in: SignedIn) -> None:
    signed_in("school_admin")
    data = {"opens_at": "2026-09-01T08:00", "closes_at": "2026-09-10T20:00", "results_date": "2026-09-15"}
    assert post_form(client, "/admin/window", data).status_code == 302
    with app.app_context():
        term = db.session.scalar(select(Term))
        assert term is not None
        assert term.requests_open_at == datetime(2026, 9, 1, 0, 0)
        assert term.requests_close_at == datetime(2026, 9, 10, 12, 0)
        assert term.results_date is not None and term.results_date.isoformat() == "2026-09-15"
    assert 'value="2026-09-01T08:00"' in page(client, "/admin/window")
    bad = post_form(client, "/admin/window", dict(data, closes_at="2026-08-01T08:00"))
    assert "截止时间必须晚于开始时间。" in bad.get_data(as_text=True)
    early = post_form(client, "/admin/window", dict(data, results_date="2026-09-10"))
    assert early.status_code == 200 and "请选择截止日期之后的结果日期" in early.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Term.results_date)).isoformat() == "2026-09-15"  # type: ignore[union-attr]


def test_open_and_close_now(app: Flask, client: FlaskClient, signed_in: SignedIn) -> None:
    signed_in("school_admin")
    with app.app_context():
        term = db.session.scalar(select(Term))
        assert term is not None
        term.requests_open_at = datetime(2026, 8, 1, 0, 0)
        term.results_date = (utcnow() + timedelta(days=30)).date()
        db.session.commit()
    assert 'href="/admin/window/close"' in page(client, "/admin/")
    # Without the confirmation the POST only shows the confirmation step, and nothing changes.
    unconfirmed = post_form(client, "/admin/window/close", token_from="/admin/window/close")
    assert unconfirmed.status_code == 200 and "是，立即截止" in unconfirmed.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Term)).requests_open()  # type: ignore[union-attr]
    post_form(client, "/admin/window/close", {"confirmed": "1"}, token_from="/admin/window/close")
    with app.app_context():
        term = db.session.scalar(select(Term))
        assert term is not None and not term.requests_open()
        closed_at = term.requests_close_at
    assert "已截止" in page(client, "/admin/")
    # Reopening after the closing time asks for a new one: in the future, before the results date.
    assert 'name="closes_at"' in page(client, "/admin/window/open")
    for bad in ("", (closed_at - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),  # type: ignore[operator]
                (utcnow() + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M")):
        refused = post_form(client, "/admin/window/open", {"confirmed": "1", "closes_at": bad},
                            token_from="/admin/window/open")
        assert refused.status_code == 200
    closes = (utcnow() + timedelta(days=7, hours=8)).replace(second=0, microsecond=0)
    post_form(client, "/admin/window/open", {"confirmed": "1", "closes_at": closes.strftime("%Y-%m-%dT%H:%M")},
              token_from="/admin/window/open")
    with app.app_context():
        term = db.session.scalar(select(Term))
        assert term is not None and term.requests_open(utcnow() + timedelta(seconds=1))
        assert term.requests_open_at == datetime(2026, 8, 1, 0, 0)  # the opening date is kept
        assert term.requests_close_at == closes - timedelta(hours=8)  # entered in China time
        actions = set(db.session.scalars(select(AuditLog.action)))
        assert {"window.close", "window.open"} <= actions


# ------------------------------------------------------------------------------------------ codes


def test_codes_are_shown_once_and_replace_old_ones(app: Flask, client: FlaskClient,
                                                   signed_in: SignedIn) -> None:
    signed_in("school_admin")
    refused = post_form(client, "/admin/codes", {"class_name": "3-1"})
    assert "请先确认。" in refused.get_data(as_text=True)
    response = post_form(client, "/admin/codes", {"class_name": "3-1", "confirm": "y"})
    html = response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    codes = dict(re.findall(r"<dt>学号</dt><dd>(P\d+)</dd>.*?class=\"code\">([A-Z0-9]{8})<", html, re.S))
    assert set(codes) == {"P001", "P004"} and "KM-TEST-0001" in html
    assert "P002" not in html
    with app.app_context():
        parent = create_user("parent", login="13912349876")
        assert link_child(parent, "KM-TEST-0001", "P004", codes["P004"]) is not None
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "codes.issue"))
        assert entry is not None and entry.detail == {"class": "3-1", "count": 2}
        assert codes["P001"] not in repr(entry.detail)
    again = post_form(client, "/admin/codes", {"class_name": "3-1", "confirm": "y"})
    new_codes = dict(re.findall(r"<dt>学号</dt><dd>(P\d+)</dd>.*?class=\"code\">([A-Z0-9]{8})<",
                                again.get_data(as_text=True), re.S))
    with app.app_context():
        parent = db.session.scalar(select(User).where(User.phone == "13912349876"))
        assert parent is not None
        assert link_child(parent, "KM-TEST-0001", "P001", codes["P001"]) is None
        assert link_child(parent, "KM-TEST-0001", "P001", new_codes["P001"]) is not None
        links = select(func.count(Guardianship.id)).where(Guardianship.user_id == parent.id)
        assert db.session.scalar(links) == 2


# ------------------------------------------------------------------------------------------ who may see what


def routes_for(objects: dict[str, int]) -> list[tuple[str, str]]:
    return [
        ("GET", f"/admin/activities/{objects['activity']}/edit"),
        ("POST", f"/admin/activities/{objects['activity']}/edit"),
        ("POST", f"/admin/activities/{objects['activity']}/delete"),
        ("GET", f"/admin/sessions/{objects['session']}/edit"),
        ("POST", f"/admin/sessions/{objects['session']}/edit"),
        ("POST", f"/admin/sessions/{objects['session']}/delete"),
        ("GET", f"/admin/teachers/{objects['teacher']}/edit"),
        ("POST", f"/admin/teachers/{objects['teacher']}/edit"),
        ("POST", f"/admin/teachers/{objects['teacher']}/delete"),
        ("GET", f"/admin/pupils/{objects['pupil']}"),
        ("POST", "/admin/term"),
    ]


def test_admin_of_another_school_gets_404_everywhere(app: Flask, client: FlaskClient,
                                                     signed_in: SignedIn) -> None:
    signed_in("school_admin")
    theirs = other_school(app)
    for method, url in routes_for(theirs):
        if method == "GET":
            status = client.get(url).status_code
        else:
            status = post_form(client, url, {"term_id": theirs["term"], "code": "hack", "name": "x"},
                               token_from="/admin/").status_code
        assert status == 404, (method, url)
    with app.app_context():
        school = db.session.scalar(select(School).where(School.code == "KM-TEST-0002"))
        assert school is not None
        assert db.session.get(Session, theirs["session"]) is not None
        assert db.session.get(Teacher, theirs["teacher"]) is not None
        assert "测试小学0002" not in page(client, "/admin/")
        assert "KM-TEST-0002" not in page(client, "/admin/pupils?q=P00")


def test_other_school_pupils_are_not_listed_or_issued_codes(app: Flask, client: FlaskClient,
                                                            signed_in: SignedIn) -> None:
    signed_in("school_admin")
    theirs = other_school(app)
    with app.app_context():
        before = db.session.get(Pupil, theirs["pupil"])
        assert before is not None
        old_hash = before.enrolment_code_hash
    html = post_form(client, "/admin/codes", {"class_name": "", "confirm": "y"}).get_data(as_text=True)
    assert html.count('class="slip"') == 6
    with app.app_context():
        after = db.session.get(Pupil, theirs["pupil"])
        assert after is not None and after.enrolment_code_hash == old_hash


ALL_PAGES = ["/admin/", "/admin/import/pupils", "/admin/import/pupils/template.csv", "/admin/activities",
             "/admin/sessions", "/admin/teachers", "/admin/pupils", "/admin/codes", "/admin/window"]


@pytest.mark.parametrize("role", ["parent", "bureau"])
def test_other_roles_are_forbidden(client: FlaskClient, signed_in: SignedIn, role: str) -> None:
    signed_in(role)
    for url in ALL_PAGES:
        assert client.get(url).status_code == 403, url
    assert post_form(client, "/admin/window/close", token_from="/admin/").status_code == 403


def test_anonymous_users_are_sent_to_login(client: FlaskClient) -> None:
    for url in ALL_PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_admin_without_a_school_is_forbidden(app: Flask, client: FlaskClient, school: SchoolIds,
                                             signed_in: SignedIn) -> None:
    user = signed_in("school_admin", school=None)
    assert user.school_id is None
    assert client.get("/admin/").status_code == 403
