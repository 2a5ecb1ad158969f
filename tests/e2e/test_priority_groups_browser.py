"""Priority groups in a 375 px Chromium: the city bureau adds a group, a school admin tags a pupil with it on the
pupil page (evidence and expiry), sees the weight the allocation uses, and finds the tag on the review page.
Screenshots go to the test's tmp dir (PRIORITY_SCREENSHOTS overrides it) for a person to look at."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.e2e.conftest import CHROMIUM_ARGS, phone_screenshot, sign_in_page
from tests.webapp.factories import create_user
from webapp.extensions import db
from webapp.models import PriorityTag, Pupil, School

pytestmark = pytest.mark.slow


def test_bureau_defines_a_group_and_an_admin_tags_a_pupil(live_app: Flask, live_server: str, chromium_path: str,
                                                          tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with live_app.app_context():
        school = db.session.scalar(select(School))
        assert school is not None
        create_user("bureau", login="city-bureau")
        create_user("school_admin", school=school, login="tag-admin")
        pupil_id = db.session.scalar(select(Pupil.id).where(Pupil.school_id == school.id, Pupil.number == "P001"))
    shots = Path(os.environ.get("PRIORITY_SCREENSHOTS", tmp_path / "screens"))
    shots.mkdir(parents=True, exist_ok=True)
    expires = date.today() + timedelta(days=20)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page.set_default_timeout(15_000)

            sign_in_page(page, live_server, "city-bureau")
            page.goto(f"{live_server}/bureau/groups")
            page.fill("#name_zh", "特殊教育需要")
            page.fill("#name_en", "Special educational needs")
            page.fill("#weight", "4")
            page.click("#submit")
            expect(page.locator("table.data")).to_contain_text("特殊教育需要")
            phone_screenshot(page, shots, "1-bureau-groups")

            sign_in_page(page, live_server, "tag-admin")
            page.goto(f"{live_server}/admin/pupils/{pupil_id}")
            page.select_option("#tag-group", label="特殊教育需要 (4)")
            page.fill("#tag-note", "残疾人证 5301，已查验原件")
            page.fill("#tag-expires_on", expires.isoformat())
            page.click("#tag-submit")
            section = page.locator("#priority-groups")
            expect(section).to_contain_text("残疾人证 5301")
            expect(section.locator("dl.facts dd")).to_have_text("4")
            phone_screenshot(page, shots, "2-pupil-tagged")

            page.click("text=待复核的标记")
            expect(page.locator("main")).to_contain_text("残疾人证 5301")
            phone_screenshot(page, shots, "3-review")
        finally:
            browser.close()
    with live_app.app_context():
        assert db.session.scalars(select(PriorityTag.expires_on)).all() == [expires]
    print(f"screenshots in {shots}")
