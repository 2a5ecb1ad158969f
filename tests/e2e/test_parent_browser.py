"""A new parent in a phone-sized Chromium: register, sign in, link a child, request care, change it, see it at home."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TEST_ENROLMENT_CODE
from tests.e2e.conftest import CHROMIUM_ARGS

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
            page.fill("#login", "13912345678")
            page.fill("#password", "a long family passphrase")
            page.click("#submit")
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
            page.screenshot(path=str(tmp_path / "child.png"), full_page=True)

            page.get_by_role("link", name="我的孩子").first.click()
            expect(page.get_by_text("已提交，结果公布后将在此显示")).to_be_visible()
            body = page.inner_text("body")
            assert "学生2" in body and "4年级" in body and "查看或修改申请" in body
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"the page scrolls sideways on a phone ({width}px)"
            page.screenshot(path=str(tmp_path / "home.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "home.png").stat().st_size > 5_000
