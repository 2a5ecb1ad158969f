"""The service notice (告家长书) on a phone-sized Chromium: the admin publishes it, the parent is stopped at the
request form, reads and signs the notice, then requests care; the admin's report and the bureau's figures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.e2e.conftest import CHROMIUM_ARGS, phone_screenshot, sign_in_page
from tests.webapp.daily.conftest import TUESDAY, make_calendar, utc
from tests.webapp.factories import create_user, publish_for, pupil_id, requests_for, term_of
from webapp.extensions import db
from webapp.models import District, NoticeSignature, Pupil

pytestmark = pytest.mark.slow
SHOTS = Path("/tmp/notice-shots")


def test_publish_sign_then_request(live_app: Flask, live_server: str, chromium_path: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with live_app.app_context():
        child = pupil_id("P002")
        publish_for(pupil_id("P001"))
        term = term_of()
        make_calendar(term.id)
        create_user("school_admin", login="admin-n", school=term.school)
        create_user("parent", login="13800000002", pupil=db.session.get(Pupil, child))
        district = db.session.scalar(select(District))
        create_user("bureau", login="bureau-n", district=district)
        term.requests_open_at = utc(TUESDAY, "10:00") - timedelta(days=1)
        term.requests_close_at = utc(TUESDAY, "10:00") + timedelta(days=7)
        db.session.commit()
    live_app.config["NOW"] = utc(TUESDAY, "10:00")
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page.set_default_timeout(15_000)
            sign_in_page(page, live_server, "admin-n")
            page.goto(f"{live_server}/daily/notice")
            page.fill("#title", "2026秋季课后服务告家长书")
            page.fill("#content", "尊敬的家长：\n本学期课后服务周一至周五开展。")
            page.fill("#hours", "周一至周五 15:30–17:30")
            page.fill("#safety", "请按时接孩子；只有登记的接送人可以接走学生。")
            page.get_by_role("button", name="发布此版本").click()
            expect(page.get_by_text("第 1 版已发布并生效")).to_be_visible()
            phone_screenshot(page, SHOTS, "admin-notice")

            sign_in_page(page, live_server, "13800000002")
            page.goto(f"{live_server}/family/child/{child}")
            expect(page.get_by_role("link", name="阅读并签署告家长书")).to_be_visible()
            page.locator("input[name=days][value='1']").check()
            page.select_option("#pickup_time", "17:30")
            page.get_by_role("button", name="提交申请").click()
            expect(page.get_by_role("link", name="阅读并签署告家长书")).to_be_visible()
            phone_screenshot(page, SHOTS, "parent-refused")
            with live_app.app_context():
                assert requests_for(child) == []
            page.get_by_role("link", name="阅读并签署告家长书").click()
            expect(page.get_by_role("heading", name="2026秋季课后服务告家长书")).to_be_visible()
            phone_screenshot(page, SHOTS, "parent-sign")
            page.get_by_label("我已阅读告家长书，同意其中的安全安排。").check()
            page.get_by_role("button", name="签署").click()
            expect(page.get_by_text("谢谢，已签署。")).to_be_visible()
            page.locator("input[name=days][value='1']").check()
            page.select_option("#pickup_time", "17:30")
            page.get_by_role("button", name="提交申请").click()
            expect(page.get_by_text("申请已提交")).to_be_visible()
            with live_app.app_context():
                assert len(requests_for(child)) == 1
                assert db.session.scalar(select(NoticeSignature.pupil_id)) == child

            sign_in_page(page, live_server, "admin-n")
            page.goto(f"{live_server}/daily/notice/report")
            expect(page.get_by_text("未签署").first).to_be_visible()
            phone_screenshot(page, SHOTS, "admin-report")

            sign_in_page(page, live_server, "bureau-n")
            page.goto(f"{live_server}/daily/bureau")
            expect(page.get_by_role("heading", name="按区")).to_be_visible()
            phone_screenshot(page, SHOTS, "bureau")
        finally:
            browser.close()
