"""What a parent reads and can do beyond the request: the week grid and plain reasons, the school's contact and
activity descriptions, the privacy notice behind every consent box, the school code in any case, the promise
that timing does not matter, unlinking a child and deleting the account."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import TEST_ENROLMENT_CODE
from tests.webapp.factories import api_token, bearer, create_user, post_form, pupil_id, requests_for, term_of
from webapp.extensions import db
from webapp.models import (
    Activity,
    ApiToken,
    AuditLog,
    Guardianship,
    Notification,
    NotificationEvent,
    Pupil,
    School,
    User,
)
from webapp.notifications import notify
from webapp.parents.timetable import plain_reason, waitlist_text

CLOCKS = {"P1": "15:30–16:30", "P2": "16:30–17:30"}


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined,no-any-return]


def visible(page: str) -> str:
    """The page's text without tags, attributes or the style sheet link."""
    return re.sub(r"<[^>]+>", " ", page)


@pytest.fixture
def parent(app: Flask, signed_in: Callable[..., User]) -> int:
    signed_in("parent")
    with app.app_context():
        return pupil_id()


# ------------------------------------------------------------------------------------------ timetable


def test_week_grid_has_days_as_columns_and_clock_times_as_rows(client: FlaskClient, parent: int,
                                                               published_run: int) -> None:
    page = text(client.get(f"/family/child/{parent}"))
    grid = page[page.index('<table class="week-grid">'):page.index("</table>")]
    heads = re.findall(r'<th scope="col">([^<]*)</th>', grid)
    assert heads == ["时间", "周一", "周二"]
    rows = re.findall(r'<th scope="row" class="grid-time">([^<]*)</th>', grid)
    assert rows == ["15:30–16:30", "16:30–17:30"]  # the periods the pickup time needs, in order
    cells = re.findall(r'<td class="(grid-[a-z]+)">', grid)
    assert cells == ["grid-slot", "grid-missing", "grid-slot", "grid-missing"]  # Monday seated, Tuesday not
    assert "作业辅导" in grid and "足球" in grid and "未安排" in grid
    # The phone's day-by-day view is the same week, one block per day.
    days = page[page.index('<div class="day-list">'):]
    assert re.findall(r"<h3>(周.)</h3>", days)[:2] == ["周一", "周二"]
    assert days.count('<span class="slot-time">15:30–16:30</span>') == 2
    # Never a period code: clock times only, in the grid, the reasons and the waiting-list note.
    assert not re.search(r"\bP[123]\b", visible(page))
    assert "孩子在周二的候补名单中排第 2 位" in page


def test_day_views_switch_by_screen_width_without_script(app: Flask) -> None:
    with app.open_resource("static/css/parents.css") as handle:
        css = handle.read().decode()
    assert ".day-list { display: none; }" in css
    phone = css[css.index("@media (max-width: 719px)"):]
    assert ".week-grid { display: none; }" in phone and ".day-list { display: block; }" in phone


@pytest.mark.parametrize("code, params, zh, en", [
    ("no_session", {"period": "P1", "grade": 3}, "学校在周二 15:30–16:30没有面向3年级的课程班。",
     "The school offers no session for grade 3 on Tue at 15:30–16:30."),
    ("no_teacher", {"period": "P2", "grade": 4}, "周二 16:30–17:30没有空闲的老师为4年级开班。",
     "No teacher was free to lead a session for grade 4 on Tue at 16:30–17:30."),
    ("no_seat", {"period": "P1", "grade": 3, "seats": 20, "demand": 31},
     "周二 15:30–16:30面向3年级的 20 个名额已满：共有 31 名孩子申请。",
     "All 20 places for grade 3 on Tue at 15:30–16:30 are taken: 31 children asked for them."),
    ("min_pupils", {"period": "P2", "activity": "美术", "min_pupils": 8, "capacity": 20, "demand": 5},
     "周二 16:30–17:30的美术至少 8 人才能开班，目前只有 5 人申请。",
     "美术 on Tue at 16:30–17:30 runs only with at least 8 children, and only 5 asked for it."),
    ("lost_to_priority", {"period": "P1", "grade": 5, "seats": 10, "demand": 14},
     "周二 15:30–16:30面向5年级的 10 个名额，按学校公布的优先规则分给了优先的孩子（共 14 人申请）。",
     "The 10 places for grade 5 on Tue at 15:30–16:30 went to children the school's published priority rules "
     "put first (14 children asked)."),
    ("partial_day", {"period": "P2"}, "周二只安排了部分时段：16:30–17:30未能安排，因此当天无法一直托管到您的接送时间。",
     "Only part of Tue could be arranged: 16:30–17:30 is missing, so the day is not covered until your pickup "
     "time."),
])
def test_plain_reasons_name_clock_times_in_both_languages(app: Flask, code: str, params: dict[str, object],
                                                         zh: str, en: str) -> None:
    for lang, expected in (("zh", zh), ("en", en)):
        with app.test_request_context(headers={"Cookie": f"lang={lang}"}):
            assert plain_reason(code, params, 2, CLOCKS, "stored", lang) == expected


def test_unknown_reason_and_missing_params_keep_the_stored_sentence(app: Flask) -> None:
    with app.test_request_context():
        assert plain_reason("new_code", {"period": "P1"}, 2, CLOCKS, "stored") == "stored"
        assert plain_reason("no_seat", None, 2, CLOCKS, "stored") == "stored"
        assert waitlist_text(3, 1) == ("孩子在周一的候补名单中排第 3 位。"
                                       "有名额空出时，会在这里通知您，由您决定是否接受。")


def test_school_contact_and_activity_descriptions(app: Flask, client: FlaskClient, parent: int,
                                                  published_run: int) -> None:
    url = f"/family/child/{parent}"
    page = text(client.get(url))
    assert "请联系学校" not in page and "活动介绍" not in page  # nothing to show yet: no empty headings
    with app.app_context():
        school = db.session.scalar(select(School))
        assert school is not None
        school.contact = "课后服务办公室 0871-6000000"
        football = db.session.scalar(select(Activity).where(Activity.code == "football"))
        assert football is not None
        football.description = "传球、运球和小场比赛，雨天改在室内。"
        db.session.commit()
    page = text(client.get(url))
    assert "有疑问？请联系学校：课后服务办公室 0871-6000000" in page
    assert "<dt>足球</dt><dd>传球、运球和小场比赛，雨天改在室内。</dd>" in page


def test_request_form_says_timing_does_not_matter_and_lists_descriptions(app: Flask, client: FlaskClient,
                                                                         parent: int) -> None:
    with app.app_context():
        art = db.session.scalar(select(Activity).where(Activity.code == "art"))
        assert art is not None
        art.description = "水彩和剪纸。"
        db.session.commit()
    page = text(client.get(f"/family/child/{parent}"))
    assert "不必抢先：名额不是先到先得。截止前何时提交都不影响结果" in page
    assert "多填不会降低第一志愿的机会" in page
    assert "<summary>各项活动介绍</summary>" in page and "<dt>美术</dt><dd>水彩和剪纸。</dd>" in page
    document = client.get("/api/v1/openapi.json").get_json()
    put = document["paths"]["/children/{pupil_id}/request"]["put"]
    assert "not first come, first served" in put["description"]
    assert "never lowers the chance of the first" in put["description"]


# ------------------------------------------------------------------------------------------ consent and codes


def test_every_consent_box_links_the_notice_in_force(app: Flask, client: FlaskClient,
                                                     signed_in: Callable[..., User]) -> None:
    app.config["CONSENT_POLICY_VERSION"] = "2027-03"
    notice = text(client.get("/privacy"))
    assert "个人信息保护说明" in notice and "版本 2027-03（现行版本）" in notice and "365 天" in notice
    assert 'href="/privacy"' in text(client.get("/register")) and "版本 2027-03" in text(client.get("/register"))
    signed_in("parent")
    assert 'href="/privacy"' in text(client.get("/family/link"))
    with app.app_context():
        user = db.session.scalar(select(User).where(User.role == "parent"))
        assert user is not None
        user.consent_policy_version = user.consent_at = None
        db.session.commit()
    consent = text(client.get("/family/consent"))
    assert 'href="/privacy"' in consent and "说明版本 2027-03" in consent


def test_school_code_is_case_insensitive(app: Flask, client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("parent")
    form = {"school_code": " km-test-0001 ", "pupil_number": "P002", "enrolment_code": TEST_ENROLMENT_CODE.lower(),
            "relation": "father", "consent": "y"}
    response = post_form(client, "/family/link", form)
    assert response.status_code == 302
    with app.app_context():
        assert response.headers["Location"].endswith(f"/family/child/{pupil_id('P002')}")


# ------------------------------------------------------------------------------------------ unlink


def test_unlink_asks_first_then_keeps_the_request_with_the_school(app: Flask, client: FlaskClient,
                                                                  parent: int) -> None:
    url = f"/family/child/{parent}"
    assert post_form(client, url, {"days": ["1"], "pickup_time": "16:30"}).status_code == 302
    with app.app_context():
        notify(NotificationEvent.PLAN_AMENDED, pupil_id=parent)
        db.session.commit()
    assert f'href="/family/child/{parent}/unlink"' in text(client.get(url))
    confirm = text(client.get(f"{url}/unlink"))
    assert "确定要解除与学生1的绑定吗？" in confirm and "课后服务申请仍保留在学校" in confirm
    with app.app_context():
        assert db.session.scalar(select(func.count(Guardianship.id))) == 1  # the question changed nothing
    assert client.post(f"{url}/unlink").status_code == 400  # no CSRF token
    response = post_form(client, f"{url}/unlink")
    assert response.status_code == 302 and response.headers["Location"].endswith("/family/")
    assert "已解除与学生1的绑定" in text(client.get("/family/"))
    assert client.get(url).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count(Guardianship.id))) == 0
        assert db.session.scalar(select(func.count(Notification.id))) == 0
        assert [(r.status, r.days) for r in requests_for(parent)] == [("active", [1])]
        audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "family.unlink_child"))
        assert audit is not None and audit.target == f"pupil:{parent}" and audit.user_id is not None


def test_unlink_someone_elses_child_is_404(app: Flask, client: FlaskClient, parent: int) -> None:
    with app.app_context():
        other = pupil_id("P002")
    assert client.get(f"/family/child/{other}/unlink").status_code == 404
    assert post_form(client, f"/family/child/{other}/unlink", token_from="/family/").status_code == 404


# ------------------------------------------------------------------------------------------ delete the account


def test_delete_account_offers_the_export_then_needs_the_password(app: Flask, client: FlaskClient,
                                                                   parent: int) -> None:
    assert post_form(client, f"/family/child/{parent}", {"days": ["1"], "pickup_time": "16:30"}).status_code == 302
    with app.app_context():
        user = db.session.scalar(select(User).where(User.role == "parent"))
        assert user is not None
        phone, user_id = user.phone, user.id
    token = api_token(app.test_client(), phone or "")
    assert 'href="/account/delete"' in text(client.get("/account"))
    page = text(client.get("/account/delete"))
    assert 'href="/account/export"' in page and "学生1" in page and "孩子的课后服务申请和名额仍保留在学校" in page

    refused = post_form(client, "/account/delete", {"password": "wrong password!", "confirm": "y"})
    assert refused.status_code == 422 and "密码不正确" in text(refused)
    unticked = post_form(client, "/account/delete", {"password": "correct-horse-battery"})
    assert unticked.status_code == 422 and "请勾选以确认" in text(unticked)
    with app.app_context():
        assert db.session.get(User, user_id) is not None

    done = post_form(client, "/account/delete", {"password": "correct-horse-battery", "confirm": "y"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    assert client.get("/family/").status_code == 302  # signed out
    assert app.test_client().get("/api/v1/children", headers=bearer(token)).status_code == 401
    with app.app_context():
        assert db.session.get(User, user_id) is None
        assert db.session.scalar(select(func.count(ApiToken.id))) == 0
        assert db.session.scalar(select(func.count(Guardianship.id))) == 0
        assert [r.status for r in requests_for(parent)] == ["active"]
        assert db.session.get(Pupil, parent) is not None
        assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.user_id == user_id)) == 0
        (row,) = db.session.scalars(select(AuditLog).where(AuditLog.action == "account.delete")).all()
        assert (row.user_id, row.target, row.detail) == (None, "", {"children": 1})
        assert phone not in repr([(a.target, a.detail) for a in db.session.scalars(select(AuditLog))])
    assert post_form(app.test_client(), "/login", {"login": phone, "password": "correct-horse-battery"}) \
        .status_code == 200  # the account is gone


def test_staff_cannot_delete_their_account_themselves(app: Flask, client: FlaskClient,
                                                      signed_in: Callable[..., User]) -> None:
    signed_in("school_admin")
    assert client.get("/account/delete").status_code == 403
    assert 'href="/account/delete"' not in text(client.get("/account"))


def test_deleting_keeps_another_guardians_link(app: Flask, client: FlaskClient, parent: int) -> None:
    with app.app_context():
        other = create_user("parent", login="13700000009", pupil=db.session.get(Pupil, parent))
        other_id = other.id
        term_of()
    assert post_form(client, "/account/delete", {"password": "correct-horse-battery", "confirm": "y"}) \
        .status_code == 302
    with app.app_context():
        links = db.session.scalars(select(Guardianship)).all()
        assert [(link.user_id, link.pupil_id) for link in links] == [(other_id, parent)]


def test_admin_sets_the_contact_and_descriptions_parents_read(app: Flask, client: FlaskClient,
                                                              signed_in: Callable[..., User]) -> None:
    signed_in("school_admin")
    assert 'href="/admin/contact"' in text(client.get("/admin/"))
    too_long = post_form(client, "/admin/contact", {"contact": "x" * 201})
    assert too_long.status_code == 200 and "200" in text(too_long)
    assert post_form(client, "/admin/contact", {"contact": " 王老师 13800000000 "}).status_code == 302
    with app.app_context():
        football = db.session.scalar(select(Activity).where(Activity.code == "football"))
        assert football is not None
        football_id = football.id
    form = {"code": "football", "name": "足球", "category": "sports", "qualification": "sports",
            "description": "传球和小场比赛。"}
    assert post_form(client, f"/admin/activities/{football_id}/edit", form).status_code == 302
    with app.app_context():
        school = db.session.scalar(select(School))
        assert school is not None and school.contact == "王老师 13800000000"
        assert db.session.get(Activity, football_id).description == "传球和小场比赛。"  # type: ignore[union-attr]
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "school.contact")) is not None


def test_new_pages_speak_english_on_request(app: Flask, client: FlaskClient, parent: int,
                                            published_run: int) -> None:
    post_form(client, "/lang/en", {"next": "/family/"}, token_from="/family/")
    with app.app_context():  # names of people, places and activities stay as the school wrote them
        names = ["学生1", "测试小学0001", "3-1教室", "操场", "赵老师", "李老师", "中文", app.config["APP_NAME"],
                 *db.session.scalars(select(Activity.name))]
    for url in (f"/family/child/{parent}", f"/family/child/{parent}/unlink", "/account/delete", "/privacy",
                "/account"):
        page = visible(text(client.get(url)))
        for name in names:
            page = page.replace(name, "")
        assert not re.search(r"[\u4e00-\u9fff]", page), (url, re.findall(r".{20}[\u4e00-\u9fff]+.{20}", page))
    grid = text(client.get(f"/family/child/{parent}"))
    assert "<th scope=\"col\">Mon</th>" in grid and "Not arranged" in grid
    anonymous = app.test_client()
    post_form(anonymous, "/lang/en", {"next": "/login"}, token_from="/login")
    for url in ("/password/forgot", "/password/reset", "/privacy"):
        page = visible(text(anonymous.get(url))).replace("中文", "").replace(app.config["APP_NAME"], "")
        assert not re.search(r"[\u4e00-\u9fff]", page), (url, re.findall(r".{20}[\u4e00-\u9fff]+.{20}", page))
