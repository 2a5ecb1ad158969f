"""Inherited term calendars on a phone-sized Chromium: the city bureau makes a calendar, adds a holiday and
publishes it; the school admin sees it marked as the city's, adds the school's own sports day beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from tests.e2e.conftest import CHROMIUM_ARGS, phone_screenshot, sign_in_page
from tests.webapp.daily.conftest import MONDAY, utc
from tests.webapp.factories import create_user, term_of
from webapp.extensions import db
from webapp.models import BureauCalendar

pytestmark = pytest.mark.slow
SHOTS = Path("/tmp/calendar-shots")


def test_the_city_publishes_and_the_school_inherits(live_app: Flask, live_server: str, chromium_path: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with live_app.app_context():
        term = term_of()
        create_user("school_admin", login="admin-c", school=term.school)
        create_user("bureau", login="bureau-c")
    live_app.config["NOW"] = utc(MONDAY, "10:00")
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page.set_default_timeout(15_000)
            sign_in_page(page, live_server, "bureau-c")
            page.goto(f"{live_server}/bureau/calendars")
            page.fill("#term_name", "2026-autumn")
            page.fill("#first_day", "2026-09-01")
            page.fill("#last_day", "2027-01-22")
            page.get_by_role("button", name="创建草稿").click()
            expect(page.get_by_text("草稿：学校还看不到。")).to_be_visible()
            page.select_option("#kind", "holiday")
            page.fill("#first_day", "2026-10-01")
            page.fill("#last_day", "2026-10-07")
            page.fill("#note", "国庆")
            page.get_by_role("button", name="添加").click()
            expect(page.get_by_text("国庆").first).to_be_visible()
            page.get_by_role("button", name="发布给学校").click()
            expect(page.get_by_text("已发布：名称为 2026-autumn 的各校学期现在使用此校历。")).to_be_visible()
            phone_screenshot(page, SHOTS, "bureau-calendar")
            page.goto(f"{live_server}/bureau/calendars")
            phone_screenshot(page, SHOTS, "bureau-calendars")

            sign_in_page(page, live_server, "admin-c")
            page.goto(f"{live_server}/daily/calendar")
            expect(page.get_by_text("市教育局").first).to_be_visible()
            expect(page.get_by_role("button", name="移除")).to_have_count(0)  # the city's entries are not the school's
            page.select_option("#kind", "holiday")
            page.fill("#first_day", "2026-10-20")
            page.fill("#note", "校运会")
            page.get_by_role("button", name="添加").click()
            expect(page.locator(".tag", has_text="本校")).to_be_visible()
            expect(page.get_by_role("button", name="移除")).to_have_count(1)
            phone_screenshot(page, SHOTS, "school-calendar")
        finally:
            browser.close()
    with live_app.app_context():
        [calendar] = db.session.query(BureauCalendar).all()
        assert calendar.published_at is not None and len(calendar.days) == 7
