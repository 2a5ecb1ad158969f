"""A new parent in a phone-sized Chromium: register, sign in, link a child, request care, change it, see it at home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import TEST_ENROLMENT_CODE
from tests.e2e.conftest import CHROMIUM_ARGS, no_sideways_scroll, phone_screenshot, sign_in_page
from tests.webapp.factories import create_user, publish_for, pupil_id
from webapp.extensions import db
from webapp.models import Activity, Pupil, School

pytestmark = pytest.mark.slow


def test_new_parent_requests_care(live_server: str, chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page.set_default_timeout(15_000)
            page.goto(f"{live_server}/register")
            page.fill("#phone", "13912345678")
            page.fill("#display_name", "王妈妈")
            page.fill("#password", "a long family passphrase")
            page.fill("#confirm", "a long family passphrase")
            page.check("#consent")
            page.click("#submit")
            expect(page.get_by_text("如果该手机号此前未注册")).to_be_visible()  # the same answer for a taken number
            sign_in_page(page, live_server, "13912345678", password="a long family passphrase")
            expect(page.get_by_text("还没有绑定孩子")).to_be_visible()

            page.get_by_role("link", name="绑定孩子").click()
            page.fill("#school_code", "KM-TEST-0001")
            page.fill("#pupil_number", "P002")
            page.fill("#enrolment_code", "wrong-code")
            page.check("#consent")
            page.click("#submit")
            expect(page.get_by_text("信息不匹配，请核对后重试")).to_be_visible()
            page.fill("#enrolment_code", TEST_ENROLMENT_CODE.lower())
            page.check("#consent")
            page.click("#submit")
            expect(page.get_by_role("heading", name="学生2")).to_be_visible()

            page.check("#days-0")
            page.check("#days-1")
            page.select_option("#pickup_time", "17:30")
            assert page.locator("#pref1 option[value=care]").is_disabled()  # 延时托管 is after 17:30
            page.select_option("#pref1", "football")
            assert page.locator("#pref2 option[value=football]").is_disabled()
            page.select_option("#pref2", "art")
            page.click("#submit")
            expect(page.get_by_text("申请已提交")).to_be_visible()

            page.check("#days-2")
            page.select_option("#pickup_time", "18:30")
            page.select_option("#pref3", "care")
            page.click("#submit")
            expect(page.get_by_text("申请已更新")).to_be_visible()
            phone_screenshot(page, tmp_path, "child")

            page.get_by_role("link", name="我的孩子").first.click()
            expect(page.get_by_text("已提交，结果公布后将在此显示")).to_be_visible()
            body = page.inner_text("body")
            assert "学生2" in body and "4年级" in body and "查看或修改申请" in body
            phone_screenshot(page, tmp_path, "home")
        finally:
            browser.close()
    assert (tmp_path / "home.png").stat().st_size > 5_000


def test_published_week_as_grid_on_desktop_and_days_on_a_phone(live_app: Flask, live_server: str,
                                                               chromium_path: str, tmp_path: Path) -> None:
    """P001 is seated on Monday and waits for Tuesday: a grid of days × clock times at 1280 px, one block per
    day at 375 px, with the plain reason, the school's contact and an activity's description on both."""
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("E2E_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with live_app.app_context():
        pupil = db.session.get(Pupil, pupil_id())
        create_user("parent", login="13800138000", pupil=pupil)
        publish_for(pupil_id())
        school = db.session.scalar(select(School))
        football = db.session.scalar(select(Activity).where(Activity.code == "football"))
        assert school is not None and football is not None
        school.contact = "课后服务办公室 0871-6000000"
        football.description = "传球、运球和小场比赛。"
        db.session.commit()
        child_path = f"/family/child/{pupil_id()}"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            page.set_default_timeout(15_000)
            sign_in_page(page, live_server, "13800138000")
            page.goto(f"{live_server}{child_path}")

            grid = page.locator("table.week-grid")
            expect(grid).to_be_visible()
            expect(page.locator(".day-list")).to_be_hidden()
            assert grid.locator("thead th").all_inner_texts() == ["时间", "周一", "周二"]
            assert grid.locator("tbody th").all_inner_texts() == ["15:30–16:30", "16:30–17:30"]
            monday = grid.locator("tbody tr").first.locator("td").first
            assert "作业辅导" in monday.inner_text()
            expect(grid.locator("td.grid-missing").first).to_have_text("未安排")
            body = page.inner_text("body")
            assert "周二 15:30–16:30仍有空余名额" in body and "候补第 2 位" in body
            assert "课后服务办公室 0871-6000000" in body and "传球、运球和小场比赛。" in body
            assert " P1" not in body and "P2" not in body
            no_sideways_scroll(page, "the child's page", width=1280)
            page.screenshot(path=str(shots / "parent-child-1280.png"), full_page=True)

            page.set_viewport_size({"width": 375, "height": 812})
            expect(grid).to_be_hidden()
            days = page.locator(".day-list .day-block")
            expect(days.first).to_be_visible()
            assert days.locator("h3").all_inner_texts() == ["周一", "周二"]
            assert "未安排" in days.nth(1).inner_text()
            phone_screenshot(page, shots, "parent-child-375")
            page.locator("section.card", has=page.locator(".day-list")).screenshot(
                path=str(shots / "parent-timetable-375.png"))

            for path, name in (("/privacy", "privacy"), (f"{child_path}/unlink", "unlink"),
                               ("/account/delete", "delete")):
                page.goto(f"{live_server}{path}")
                phone_screenshot(page, shots, f"parent-{name}-375")
        finally:
            browser.close()
    assert (shots / "parent-child-1280.png").stat().st_size > 5_000
