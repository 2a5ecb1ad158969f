"""An import after publication on a 375 px phone: upload, see who loses a seat, give a reason, confirm.

The school (KM-TEST-0001) has a published run seating P001 in S11 and S12 (`publish_for`). The admin uploads
the sessions file with S12 at no seats; the confirmation page lists P001 losing S12 and the file's counts; after
a reason and confirming, the import page reports the import and the amendment. Screenshots go to the test's tmp
dir; each page is checked for sideways scroll.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select

from tests.e2e.conftest import CHROMIUM_ARGS, phone_screenshot, sign_in_page
from tests.webapp.admin.test_import_published import _sessions_file
from tests.webapp.factories import create_user, publish_for, pupil_id, term_of, the_school
from webapp.extensions import db
from webapp.models import RunAssignment, Session


def test_an_import_that_takes_a_seat_is_confirmed_on_a_phone(live_app: Flask, live_server: str,
                                                              chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with live_app.app_context():
        publish_for(pupil_id("P001"))
        create_user("school_admin", school=the_school(), login="import-phone")
        upload = tmp_path / "sessions.xlsx"
        upload.write_bytes(_sessions_file(S12={"capacity": 0}))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page.set_default_timeout(15_000)
            sign_in_page(page, live_server, "import-phone")
            page.goto(f"{live_server}/admin/import/sessions")
            page.set_input_files("input[type=file]", str(upload))
            page.click("#submit")
            expect(page.get_by_role("heading", name="失去名额")).to_be_visible()
            expect(page.get_by_text("文件共 8 行")).to_be_visible()
            expect(page.locator("table.data").first).to_contain_text("S12")
            phone_screenshot(page, tmp_path, "import-confirm")
            page.fill("#reason", "足球课停开")
            page.click("#confirm")
            expect(page.get_by_text("方案已修订：撤销了 1 个名额。")).to_be_visible()
            phone_screenshot(page, tmp_path, "import-done")
        finally:
            browser.close()
    with live_app.app_context():
        assert term_of().plan_version == 2
        seats = set(db.session.scalars(select(Session.code).join(RunAssignment, RunAssignment.session_id == Session.id)
                                        .where(RunAssignment.pupil_id == pupil_id("P001"))))
        assert seats == {"S11"}
