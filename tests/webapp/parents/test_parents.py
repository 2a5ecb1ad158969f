"""The parents' pages through the test client: linking, requesting, editing, withdrawing, results, access."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import TEST_ENROLMENT_CODE, make_school
from tests.webapp.factories import SchoolIds, post_form, publish_for, pupil_id, requests_for, term_of
from webapp.extensions import db
from webapp.models import Guardianship, Pupil, RunAssignment, RunUnserved, User

REGISTRATION = {"phone": "13912345678", "display_name": "王爸爸", "password": "long enough passphrase",
                "confirm": "long enough passphrase", "consent": "y"}
REQUEST = {"days": ["1", "2"], "pickup_time": "17:30", "pref1": "football", "pref2": "art", "pref3": ""}
T0 = datetime(2026, 7, 1, 2, 0)


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined,no-any-return]


def switch_to_english(client: FlaskClient) -> None:
    response = post_form(client, "/lang/en", {"next": "/family/"}, token_from="/family/")
    assert response.status_code == 302


@pytest.fixture
def parent(app: Flask, signed_in: Callable[..., User]) -> int:
    """A signed-in parent of P001 (grade 3); returns the pupil id."""
    signed_in("parent")
    with app.app_context():
        return pupil_id()


def test_home_in_chinese_then_english(client: FlaskClient, parent: int) -> None:
    page = text(client.get("/family/"))
    assert "我的孩子" in page and "学生1" in page and "3年级" in page and "未提交" in page
    assert "申请课后服务" in page
    switch_to_english(client)
    page = text(client.get("/family/"))
    assert "My children" in page and "Grade 3" in page and "Not submitted" in page and "Request care" in page
    assert "未提交" not in page


def test_register_and_link_child(app: Flask, client: FlaskClient, school: SchoolIds) -> None:
    assert post_form(client, "/register", REGISTRATION).status_code == 302
    login = {"login": REGISTRATION["phone"], "password": REGISTRATION["password"]}
    assert post_form(client, "/login", login).status_code == 302
    assert "还没有绑定孩子" in text(client.get("/family/"))

    wrong = [
        {"school_code": "KM-TEST-0001", "pupil_number": "P002", "enrolment_code": "WRONG234"},
        {"school_code": "KM-NOPE", "pupil_number": "P002", "enrolment_code": TEST_ENROLMENT_CODE},
        {"school_code": "KM-TEST-0001", "pupil_number": "P999", "enrolment_code": TEST_ENROLMENT_CODE},
    ]
    for data in wrong:
        page = text(post_form(client, "/family/link", {**data, "relation": "father", "consent": "y"}))
        assert "信息不匹配，请核对后重试" in page
        assert "学号" in page and "绑定码" in page
    no_consent = {"school_code": "KM-TEST-0001", "pupil_number": "P002", "enrolment_code": TEST_ENROLMENT_CODE,
                  "relation": "father"}
    assert "请先同意" in text(post_form(client, "/family/link", no_consent))
    with app.app_context():
        assert db.session.scalar(select(Guardianship)) is None

    response = post_form(client, "/family/link", {**no_consent, "enrolment_code": "abcd-2345", "consent": "y"})
    assert response.status_code == 302
    with app.app_context():
        link = db.session.scalar(select(Guardianship))
        assert link is not None and link.relation == "father"
        assert link.consent_policy_version == app.config["CONSENT_POLICY_VERSION"] and link.consent_at
        assert response.headers["Location"].endswith(f"/family/child/{link.pupil_id}")
    page = text(client.get("/family/"))
    assert "学生2" in page and "4年级" in page


def test_submit_edit_withdraw_resubmit(app: Flask, client: FlaskClient, parent: int) -> None:
    url = f"/family/child/{parent}"
    app.config["NOW"] = T0
    with app.app_context():
        term = term_of()
        term.requests_open_at, term.requests_close_at = T0 - timedelta(days=1), T0 + timedelta(days=14)
        db.session.commit()
    response = post_form(client, url, REQUEST)
    assert response.status_code == 302
    assert "申请已提交" in text(client.get(url))
    with app.app_context():
        (row,) = requests_for(parent)
        assert (row.days, row.pickup_time, row.periods, row.preferences) == (
            [1, 2], "17:30", ["P1", "P2"], ["football", "art"])
        assert row.status == "active" and row.submitted_at == T0 and row.submitted_by is not None
    assert "已提交，结果公布后将在此显示" in text(client.get("/family/"))

    app.config["NOW"] = T0 + timedelta(hours=3)
    page = text(client.get(url))
    assert "保存修改" in page and 'checked id="days-0"' in page
    response = post_form(client, url, {"days": ["2"], "pickup_time": "18:30", "pref1": "care"})
    assert response.status_code == 302
    assert "申请已更新" in text(client.get(url))
    with app.app_context():
        (row,) = requests_for(parent)
        assert (row.days, row.periods, row.preferences) == ([2], ["P1", "P2", "P3"], ["care"])
        assert row.submitted_at == T0 and row.updated_at == T0 + timedelta(hours=3)

    step = post_form(client, f"{url}/withdraw", token_from=url)  # the child page's button: a confirmation step
    assert step.status_code == 200 and "是，撤回" in text(step) and "可以重新提交" in text(step)
    with app.app_context():
        assert [r.status for r in requests_for(parent)] == ["active"]
    response = post_form(client, f"{url}/withdraw", {"confirmed": "1"}, token_from=url)
    assert response.status_code == 302
    assert "申请已撤回" in text(client.get(url))
    with app.app_context():
        assert [r.status for r in requests_for(parent)] == ["withdrawn"]
    assert "已撤回" in text(client.get("/family/"))
    assert "没有可撤回的申请" in text(post_form(client, f"{url}/withdraw", {"confirmed": "1"}, token_from=url,
                                                follow_redirects=True))

    assert post_form(client, url, REQUEST).status_code == 302
    with app.app_context():
        assert [(r.status, r.days) for r in requests_for(parent)] == [("active", [1, 2])]
    switch_to_english(client)
    assert "Submitted; results will appear here once published" in text(client.get("/family/"))
    assert "Save changes" in text(client.get(url))


@pytest.mark.parametrize("change, message", [
    ({"days": []}, "请至少选择一天"),
    ({"days": ["1", "6"]}, "只能选择学校提供课后服务的日子"),
    ({"days": ["x"]}, "只能选择学校提供课后服务的日子"),
    ({"pickup_time": "17:00"}, "请从列表中选择接孩子时间"),
    ({"pickup_time": ""}, "请从列表中选择接孩子时间"),
    ({"pref2": "football"}, "请勿重复选择"),
    ({"pref3": "chess"}, "没有面向孩子年级的该项活动"),
    ({"pickup_time": "16:30", "pref2": ""}, "没有面向孩子年级的该项活动"),
])
def test_validation_errors_beside_the_field(app: Flask, client: FlaskClient, parent: int,
                                            change: dict[str, object], message: str) -> None:
    response = post_form(client, f"/family/child/{parent}", {**REQUEST, **change})
    assert response.status_code == 200
    page = text(response)
    assert message in page and 'class="error" role="alert"' in page
    with app.app_context():
        assert requests_for(parent) == []


def test_grade_limits_activities(app: Flask, client: FlaskClient, parent: int) -> None:
    with app.app_context():
        pupil = db.session.get(Pupil, parent)
        assert pupil is not None
        pupil.grade = 2  # football is for grades 3-6
        db.session.commit()
    page = text(client.get(f"/family/child/{parent}"))
    assert 'value="football"' not in page and 'value="art"' in page
    page = text(post_form(client, f"/family/child/{parent}", REQUEST))
    assert "没有面向孩子年级的该项活动" in page
    switch_to_english(client)
    page = text(post_form(client, f"/family/child/{parent}", REQUEST))
    assert "This activity is not offered to your child&#39;s grade" in page


@pytest.mark.parametrize("offset, can_submit", [
    (timedelta(seconds=-1), False), (timedelta(0), True), (timedelta(days=14, seconds=-1), True),
    (timedelta(days=14), False), (timedelta(days=20), False),
])
def test_window_boundaries(app: Flask, client: FlaskClient, parent: int, offset: timedelta,
                           can_submit: bool) -> None:
    with app.app_context():
        term = term_of()
        term.requests_open_at, term.requests_close_at = T0, T0 + timedelta(days=14)
        db.session.commit()
    app.config["NOW"] = T0 + offset
    url = f"/family/child/{parent}"
    page = text(client.get(url))
    assert ('name="pickup_time"' in page) is can_submit
    if not can_submit:
        expected = "申请将于 2026-07-01 10:00 开放" if offset < timedelta(0) else "已于 2026-07-15 10:00 截止"
        assert expected in page
    response = post_form(client, url, REQUEST, token_from="/family/")
    assert (response.status_code == 302) is can_submit
    with app.app_context():
        assert len(requests_for(parent)) == int(can_submit)


def test_closed_window_shows_request_read_only(app: Flask, client: FlaskClient, parent: int) -> None:
    url = f"/family/child/{parent}"
    assert post_form(client, url, REQUEST).status_code == 302
    with app.app_context():
        term = term_of()
        app.config["NOW"] = term.requests_close_at
    page = text(client.get(url))
    assert "申请不能再修改" in page and "足球、美术" in page and 'name="pickup_time"' not in page
    assert "撤回申请" in page


def test_other_family_child_is_404(app: Flask, client: FlaskClient, parent: int) -> None:
    with app.app_context():
        make_school("KM-TEST-0002", n_pupils=2)
        strangers = [pupil_id("P002"), pupil_id("P001", "KM-TEST-0002")]
        other = db.session.get(Pupil, strangers[0])
        assert other is not None
        from tests.webapp.factories import create_user
        from webapp.parents.service import save_request

        owner = create_user("parent", login="13700000000", pupil=other)
        save_request(owner, other, term_of(), [1], "16:30", [])
    for stranger in [*strangers, 999999]:
        url = f"/family/child/{stranger}"
        assert client.get(url).status_code == 404
        assert post_form(client, url, REQUEST, token_from="/family/").status_code == 404
        assert post_form(client, f"{url}/withdraw", token_from="/family/").status_code == 404
    with app.app_context():
        assert [(r.status, r.days) for r in requests_for(strangers[0])] == [("active", [1])]
        assert requests_for(strangers[1]) == []


def test_other_roles_are_refused(app: Flask, client: FlaskClient, signed_in: Callable[..., User]) -> None:
    assert client.get("/family/").status_code == 302  # anonymous: to the login page
    signed_in("school_admin")
    assert client.get("/family/").status_code == 403
    with app.app_context():
        assert client.get(f"/family/child/{pupil_id()}").status_code == 403


def test_csrf_missing_is_400(app: Flask, client: FlaskClient, parent: int) -> None:
    url = f"/family/child/{parent}"
    assert client.post(url, data=REQUEST).status_code == 400
    assert post_form(client, url, REQUEST).status_code == 302
    assert client.post(f"{url}/withdraw").status_code == 400
    with app.app_context():
        assert [r.status for r in requests_for(parent)] == ["active"]


def test_published_timetable_reason_and_waitlist(client: FlaskClient, parent: int, published_run: int) -> None:
    home = text(client.get("/family/"))
    assert "结果已公布" in home and "已安排 1 / 2 天" in home and "查看课表" in home
    page = text(client.get(f"/family/child/{parent}"))
    assert "每周课表" in page and "作业辅导" in page and "足球" in page and "操场" in page
    assert "李老师" in page and "赵老师" in page and "15:30–16:30" in page
    # Publishing recounts every reason: the fixture's made-up "no seat" sentence gives way to the true one.
    assert "周二 15:30–16:30仍有空余名额，但本次没有安排您的孩子；学校仍可以手动安排。" in page
    # The period's id is never shown; the forms' random CSRF tokens are left out of the look, as they may hold "P1".
    shown = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', page)
    assert "（已存）" not in shown and "P1" not in shown
    assert "候补第 2 位" in page
    switch_to_english(client)
    page = text(client.get(f"/family/child/{parent}"))
    assert "Weekly timetable" in page and "A place was still free on Tue at 15:30–16:30 but your child was not " \
        "placed" in page
    assert "Waiting list: number 2" in page
    assert "1 of 2 requested days covered" in text(client.get("/family/"))


def test_reason_falls_back_to_stored_sentence(app: Flask, client: FlaskClient, parent: int) -> None:
    with app.app_context():
        run_id = publish_for(parent, with_params=False)
        # A row stored before reasons carried their params (publishing recounts them, so set it back by hand).
        for row in db.session.scalars(select(RunUnserved).where(RunUnserved.run_id == run_id)):
            row.params, row.reason = None, "周二 P2：3年级可用座位 20 个，需求 31 人（已存）"
        db.session.commit()
    assert "需求 31 人（已存）" in text(client.get(f"/family/child/{parent}"))


def test_submitted_shows_results_date(app: Flask, client: FlaskClient, parent: int) -> None:
    from datetime import date

    with app.app_context():
        term = term_of()
        term.results_date = date(2026, 8, 25)
        db.session.commit()
    post_form(client, f"/family/child/{parent}", REQUEST)
    assert "已提交，结果将于 2026-08-25 公布" in text(client.get("/family/"))


def test_withdraw_after_publication_frees_seats(app: Flask, client: FlaskClient, parent: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def promote(term: object, *, actor: object = None, at: object = None) -> list[dict[str, object]]:
        calls.append(int(term.id))  # type: ignore[attr-defined]
        return []

    monkeypatch.setattr("webapp.allocation.seats.promote", promote)
    with app.app_context():
        run_id = publish_for(parent)
        term_id = term_of().id
    url = f"/family/child/{parent}"
    assert "撤回后，孩子已获得的名额将让给其他家庭" in text(client.get(url))
    step = post_form(client, f"{url}/withdraw", token_from=url)
    assert step.status_code == 200 and "让给候补名单上的孩子" in text(step)
    with app.app_context():
        assert db.session.scalars(select(RunAssignment).where(RunAssignment.run_id == run_id)).all() != []
    assert post_form(client, f"{url}/withdraw", {"confirmed": "1"}, token_from=url).status_code == 302
    with app.app_context():
        left = db.session.scalars(select(RunAssignment).where(RunAssignment.run_id == run_id)).all()
        assert left == []
        assert [r.status for r in requests_for(parent)] == ["withdrawn"]
    assert calls == [term_id]
