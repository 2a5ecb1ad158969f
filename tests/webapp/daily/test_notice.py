"""The service notice and safety agreement (告家长书): published in versions, signed per child before requesting
care (the parents' form and the API alike), the school admin's report of who signed, and the races of both."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import make_school
from tests.webapp.daily.conftest import Daily
from tests.webapp.factories import (
    PHONES,
    SchoolIds,
    api_token,
    bearer,
    create_user,
    post_form,
    pupil_id,
    requests_for,
    sign_in,
    term_of,
)
from webapp.daily import notice
from webapp.daily.service import DailyError
from webapp.extensions import db
from webapp.models import AuditLog, NoticeSignature, Pupil, ServiceNotice, User

T0 = datetime(2026, 7, 1, 2, 0)
REQUEST = {"days": ["1", "2"], "pickup_time": "17:30", "pref1": "football", "pref2": "art", "pref3": ""}
NOTICE = {"title": "课后服务告家长书", "content": "尊敬的家长：\n本学期课后服务安排如下。",
          "hours": "周一至周五 15:30–17:30", "safety": "凭接送卡接孩子；未经登记的人员不得接走学生。"}


def _audits(action: str) -> list[AuditLog]:
    return list(db.session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def _count(model: type) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def _publish(app: Flask, version_title: str = "告家长书") -> int:
    """Publish a version through the service (as a school admin of the test school); its id."""
    with app.app_context():
        admin = db.session.scalar(select(User).where(User.role == "school_admin")) or create_user(
            "school_admin", login="notice-admin", school=term_of().school)
        found = notice.publish_notice(admin, term_of(), version_title, "内容", "15:30–17:30", "安全")
        return int(found.id)


def _open_window(app: Flask) -> None:
    app.config["NOW"] = T0
    with app.app_context():
        term = term_of()
        term.requests_open_at, term.requests_close_at = T0 - timedelta(days=1), T0 + timedelta(days=14)
        db.session.commit()


def test_the_admin_publishes_versions_and_the_newest_is_in_force(app: Flask, client: FlaskClient,
                                                                  signed_in: Callable[..., User]) -> None:
    signed_in("school_admin")
    assert "/daily/notice/report" in client.get("/daily/calendar").get_data(as_text=True)  # reachable
    page = client.get("/daily/notice").get_data(as_text=True)
    assert "还没有告家长书" in page or "No notice yet" in page
    empty = post_form(client, "/daily/notice", {**NOTICE, "safety": "  "})
    assert empty.status_code == 422
    with app.app_context():
        assert _count(ServiceNotice) == 0 and not _audits("notice.publish")
    assert post_form(client, "/daily/notice", NOTICE).status_code == 302
    again = client.get("/daily/notice").get_data(as_text=True)
    assert "本学期课后服务安排如下" in again  # the form starts from the version in force
    assert post_form(client, "/daily/notice", {**NOTICE, "hours": "周一至周五 15:30–18:00"}).status_code == 302
    with app.app_context():
        term_id = term_of().id
        current = notice.notice_in_force(term_id)
        assert current is not None and current.version == 2 and current.hours == "周一至周五 15:30–18:00"
        assert [v.version for v in notice.notice_versions(term_id)] == [2, 1]
        assert [a.detail["version"] for a in _audits("notice.publish")] == [1, 2]
    assert "第 1 版" in client.get("/daily/notice").get_data(as_text=True)


def test_the_parents_form_is_refused_until_the_notice_is_signed(app: Flask, client: FlaskClient,
                                                                 signed_in: Callable[..., User]) -> None:
    parent = signed_in("parent")
    _open_window(app)
    with app.app_context():
        child = pupil_id()
    notice_id = _publish(app)
    url = f"/family/child/{child}"
    page = client.get(url).get_data(as_text=True)
    assert "告家长书" in page and f"/daily/children/{child}/notice" in page
    refused = post_form(client, url, REQUEST)
    assert refused.status_code == 200  # the form again, with the sentence and the link; nothing stored
    assert f"/daily/children/{child}/notice" in refused.get_data(as_text=True)
    with app.app_context():
        assert requests_for(child) == []

    sign_page = f"/daily/children/{child}/notice"
    shown = client.get(sign_page).get_data(as_text=True)
    assert "凭接送卡" not in shown and "安全" in shown and "15:30–17:30" in shown
    unticked = post_form(client, sign_page, {"notice_id": str(notice_id)})
    assert unticked.status_code == 422
    signed = post_form(client, sign_page, {"notice_id": str(notice_id), "agree": "y"})
    assert signed.status_code == 302 and signed.headers["Location"].endswith(url)
    post_form(client, sign_page, {"notice_id": str(notice_id), "agree": "y"}, token_from=url)  # a double tap
    with app.app_context():
        (row,) = db.session.scalars(select(NoticeSignature)).all()
        assert (row.notice_id, row.pupil_id, row.signed_by) == (notice_id, child, parent.id)
        (audit,) = _audits("notice.sign")
        assert audit.target == f"pupil:{child}" and audit.detail["version"] == 1
    assert post_form(client, url, REQUEST).status_code == 302
    with app.app_context():
        assert len(requests_for(child)) == 1

    # A new version supersedes the old: the family signs again before changing the request.
    _publish(app, "告家长书（修订）")
    stale = post_form(client, sign_page, {"notice_id": str(notice_id), "agree": "y"}, follow_redirects=True)
    assert "新版本" in stale.get_data(as_text=True)
    assert post_form(client, url, {**REQUEST, "days": ["1"]}).status_code == 200
    with app.app_context():
        (request,) = requests_for(child)
        assert request.days == [1, 2]
        assert _count(NoticeSignature) == 1


def test_the_api_refuses_an_unsigned_request_with_the_link(app: Flask, client: FlaskClient,
                                                            school: SchoolIds) -> None:
    _open_window(app)
    with app.app_context():
        child = pupil_id()
        user = create_user("parent", login=PHONES["parent_a"], pupil=db.session.get(Pupil, child))
        user_id = user.id
    headers = bearer(api_token(client, PHONES["parent_a"]))
    body = {"days": [1, 2], "pickup_time": "17:30", "preferences": ["football"]}
    notice_id = _publish(app)
    refused = client.put(f"/api/v1/children/{child}/request", json=body, headers=headers)
    assert refused.status_code == 409
    answer = refused.get_json()
    assert answer["error"] == "notice_unsigned"
    assert f"http://localhost/daily/children/{child}/notice" in answer["message"]
    with app.app_context():
        assert requests_for(child) == []
        notice.sign_notice(db.session.get(User, user_id), db.session.get(Pupil, child), notice_id)
    assert client.put(f"/api/v1/children/{child}/request", json=body, headers=headers).status_code == 201


def test_no_notice_asks_for_no_signature(app: Flask, client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("parent")
    _open_window(app)
    with app.app_context():
        child = pupil_id()
    assert post_form(client, f"/family/child/{child}", REQUEST).status_code == 302
    page = client.get(f"/daily/children/{child}/notice").get_data(as_text=True)
    assert "学校本学期还没有发布告家长书" in page


def test_a_stranger_cannot_sign_and_a_wrong_id_is_refused(app: Flask, client: FlaskClient,
                                                          signed_in: Callable[..., User], school: SchoolIds) -> None:
    notice_id = _publish(app)
    signed_in("parent")
    with app.app_context():
        other = pupil_id("P002")
        mine = pupil_id()
    assert client.get(f"/daily/children/{other}/notice").status_code == 404
    own = f"/daily/children/{mine}/notice"
    assert post_form(client, f"/daily/children/{other}/notice", {"notice_id": str(notice_id), "agree": "y"},
                     token_from=own).status_code == 404
    wrong = post_form(client, own, {"notice_id": "99999", "agree": "y"}, follow_redirects=True)
    assert "不存在" in wrong.get_data(as_text=True)
    with app.app_context():
        assert _count(NoticeSignature) == 0 and not _audits("notice.sign")
        # another school's notice cannot be signed for this child
        make_school("KM-TEST-0002", n_pupils=2)
        admin = create_user("school_admin", login="other-admin", school=term_of("KM-TEST-0002").school)
        theirs = notice.publish_notice(admin, term_of("KM-TEST-0002"), "别校", "x", "x", "x")
        parent = db.session.scalar(select(User).where(User.role == "parent"))
        try:
            notice.sign_notice(parent, db.session.get(Pupil, mine), theirs.id)
        except DailyError as error:
            assert error.status == 404
        else:
            raise AssertionError("another school's notice was signed")


def test_the_report_lists_every_placed_pupil_unsigned_first(app: Flask, client: FlaskClient, daily: Daily,
                                                             signed_in: Callable[..., User]) -> None:
    signed_in("school_admin")
    assert "没有发布告家长书" in client.get("/daily/notice/report").get_data(as_text=True)
    notice_id = _publish(app)
    with app.app_context():
        term = term_of()
        placed = notice.placed_pupil_ids(term)
        assert daily.pupil_id in placed
        parent = create_user("parent", login=PHONES["parent_b"], pupil=db.session.get(Pupil, daily.pupil_id))
        notice.sign_notice(parent, db.session.get(Pupil, daily.pupil_id), notice_id)
        report = notice.signature_report(term)
        assert report.signed == 1 and len(report.rows) == len(placed)
        assert [r.signature is None for r in report.rows] == sorted(r.signature is None for r in report.rows)[::-1]
        assert notice.signed_share(term) == (1, len(placed))
        unsigned_names = [r.pupil.name for r in report.unsigned]
        signed_name = db.session.get(Pupil, daily.pupil_id).name
    page = client.get("/daily/notice/report").get_data(as_text=True)
    assert f"1 / {len(placed)}" in page or f"{len(placed)} 名" in page
    assert page.index(unsigned_names[0]) < page.index(signed_name) if unsigned_names else True
    assert page.count("未签") == len(unsigned_names)
    # a new version: nobody has signed the one in force
    _publish(app, "修订")
    with app.app_context():
        assert notice.signed_share(term_of()) == (0, len(placed))


def test_the_report_is_the_admins_own_school_only(app: Flask, client: FlaskClient, daily: Daily) -> None:
    with app.app_context():
        make_school("KM-TEST-0002", n_pupils=2)
        create_user("school_admin", login="admin-2", school=term_of("KM-TEST-0002").school)
    _publish(app)
    sign_in(client, "admin-2")
    page = client.get("/daily/notice/report").get_data(as_text=True)
    with app.app_context():
        name = db.session.get(Pupil, daily.pupil_id).name
    assert name not in page and "没有发布告家长书" in page


# ------------------------------------------------------------------------------------------ PostgreSQL races


def _race(count: int, work: Callable[[int], None]) -> list[BaseException]:
    barrier = threading.Barrier(count, timeout=30)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:  # noqa: B036  (reported to the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_two_guardians_signing_at_once_make_one_row_and_two_admins_two_versions(pg_app: Flask) -> None:  # noqa: F811
    app = pg_app
    with app.app_context():
        make_school()
        child = pupil_id()
        pupil = db.session.get(Pupil, child)
        parents = [create_user("parent", login=PHONES[k], pupil=pupil).id for k in ("parent_a", "parent_b")]
        admins = [create_user("school_admin", login=f"admin-{i}", school=pupil.school).id for i in range(3)]
        term_id = term_of().id
        notice_id = notice.publish_notice(db.session.get(User, admins[0]), term_of(), "v1", "x", "x", "x").id
    outcomes: list[bool] = []

    def sign(index: int) -> None:
        with app.test_request_context():
            _signed, created = notice.sign_notice(db.session.get(User, parents[index]),
                                                  db.session.get(Pupil, child), notice_id)
            outcomes.append(created)
            db.session.remove()

    for _round in range(5):
        with app.app_context():
            db.session.query(NoticeSignature).delete()
            db.session.commit()
        outcomes.clear()
        assert _race(2, sign) == []
        assert sorted(outcomes) == [False, True]
        with app.app_context():
            assert _count(NoticeSignature) == 1

    refused: list[str] = []

    def publish(index: int) -> None:
        with app.test_request_context():
            try:
                notice.publish_notice(db.session.get(User, admins[index]), db.session.get(type(term_of()), term_id),
                                      f"v-{index}", "x", "x", "x")
            except DailyError as error:
                refused.append(error.code)
            db.session.remove()

    assert _race(3, publish) == []
    with app.app_context():
        versions = [v.version for v in notice.notice_versions(term_id)]
        assert versions == sorted(set(versions), reverse=True) and versions[-1] == 1
        assert len(versions) - 1 + len(refused) == 3 and set(refused) <= {"conflict"}
        assert len(_audits("notice.publish")) == len(versions)


def test_the_api_shows_and_signs_the_notice(app: Flask, client: FlaskClient, school: SchoolIds) -> None:
    _open_window(app)
    with app.app_context():
        child = pupil_id()
        create_user("parent", login=PHONES["parent_a"], pupil=db.session.get(Pupil, child))
        stranger = pupil_id("P002")
    headers = bearer(api_token(client, PHONES["parent_a"]))
    url = f"/api/v1/children/{child}/notice"
    assert client.get(url, headers=headers).get_json() == {"notice": None, "signed_at": None}
    first = _publish(app)
    shown = client.get(url, headers=headers).get_json()
    assert shown["notice"]["id"] == first and shown["notice"]["version"] == 1 and shown["signed_at"] is None
    bad = client.post(url, json={"notice_id": "1", "agree": "yes", "extra": 1}, headers=headers)
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"notice_id", "agree", "extra"}
    assert client.post(f"/api/v1/children/{stranger}/notice", json={"notice_id": first, "agree": True},
                       headers=headers).status_code == 404
    second = _publish(app, "修订")
    stale = client.post(url, json={"notice_id": first, "agree": True}, headers=headers)
    assert stale.status_code == 409 and stale.get_json()["error"] == "superseded"
    signed = client.post(url, json={"notice_id": second, "agree": True}, headers=headers)
    assert signed.status_code == 201 and signed.get_json()["signed_at"]
    again = client.post(url, json={"notice_id": second, "agree": True}, headers=headers)
    assert again.status_code == 200 and again.get_json() == signed.get_json()
    with app.app_context():
        assert _count(NoticeSignature) == 1 and len(_audits("notice.sign")) == 1
    body = {"days": [1, 2], "pickup_time": "17:30", "preferences": ["football"]}
    assert client.put(f"/api/v1/children/{child}/request", json=body, headers=headers).status_code == 201
