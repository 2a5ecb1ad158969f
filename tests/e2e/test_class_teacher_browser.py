"""Class teachers in a phone-sized Chromium: the school admin records one, the duty teacher's absent mark tells
them (or says why it could not), the admin's overview lists what did not arrive, and the class teacher's own
duty page shows the alert."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.e2e.conftest import CHROMIUM_ARGS, phone_screenshot, sign_in_page
from tests.webapp.daily.conftest import MONDAY, make_calendar, make_duty_teacher, utc
from tests.webapp.factories import create_user, publish_for, pupil_id, term_of
from webapp.extensions import db
from webapp.models import ClassTeacher, Pupil, School

pytestmark = pytest.mark.slow
SHOTS = Path("/tmp/class-teacher-shots")


def _world(app: Flask) -> None:
    with app.app_context():
        pupil = db.session.get(Pupil, pupil_id("P001"))
        assert pupil is not None
        publish_for(pupil.id)
        make_calendar(term_of().id)
        make_duty_teacher(pupil.school_id)  # 李老师 (T1), on duty
        make_duty_teacher(pupil.school_id, login="duty-wang", teacher_code="T2")  # 王老师, class teacher of 3-1
        create_user("school_admin", school=db.session.get(School, pupil.school_id), login="admin-x")
        create_user("parent", login="13800000001", pupil=pupil)


def test_class_teacher_alert_on_a_phone(live_app: Flask, live_server: str, chromium_path: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(exist_ok=True)
    _world(live_app)
    live_app.config["NOW"] = utc(MONDAY, "15:35")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page.set_default_timeout(15_000)
            sign_in_page(page, live_server, "admin-x")
            page.goto(f"{live_server}/daily/class-teachers")
            row = page.locator("tr", has_text="3年级 3-1")
            expect(row.get_by_text("未登记班主任")).to_be_visible()
            row.locator("select").select_option(label="王老师 (T2)")
            row.get_by_role("button", name="保存").click()
            expect(page.locator("tr", has_text="3年级 3-1").get_by_text("无手机号或邮箱")).to_be_visible()
            phone_screenshot(page, SHOTS, "class_teachers")
            with live_app.app_context():
                assert [(r.grade, r.class_name) for r in db.session.scalars(select(ClassTeacher))] == [(3, "3-1")]

            sign_in_page(page, live_server, "duty-x")
            page.get_by_role("link", name="15:30–16:30 作业辅导").click()
            page.evaluate("window.sameDocument = true")  # gone if the tap reloads the page
            page.get_by_role("button", name="缺席").click()
            # the page's script puts the pupil's row back, with the alert's note under the absent mark
            expect(page.locator(".alert-problem")).to_have_text("班主任王老师没有登记手机号或邮箱：请您自行告知。")
            assert page.evaluate("window.sameDocument === true")
            page.reload()  # the page drawn anew says the same
            expect(page.locator(".alert-problem")).to_have_text("班主任王老师没有登记手机号或邮箱：请您自行告知。")
            phone_screenshot(page, SHOTS, "duty_session")

            sign_in_page(page, live_server, "admin-x")
            page.goto(f"{live_server}/daily/alerts")
            expect(page.get_by_text("未送达：无手机号或邮箱")).to_be_visible()
            phone_screenshot(page, SHOTS, "alerts")

            sign_in_page(page, live_server, "duty-wang")
            expect(page.get_by_role("heading", name="您的班级：未请假缺席")).to_be_visible()
            expect(page.get_by_text("李老师于 15:35 点名记录")).to_be_visible()
            phone_screenshot(page, SHOTS, "class_teacher_duty")
        finally:
            browser.close()
