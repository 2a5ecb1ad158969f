"""The daily service in a phone-sized Chromium: the duty teacher's roll-call, an unreported absence that alerts
the family, a correction, the "still here" board, a handover by delegate code, and what the parent then sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.e2e.conftest import CHROMIUM_ARGS, phone_screenshot, sign_in_page
from tests.webapp.daily.conftest import MONDAY, make_calendar, make_duty_teacher, utc
from tests.webapp.factories import create_user, publish_for, pupil_id, term_of
from webapp.extensions import db
from webapp.family import hash_enrolment_code
from webapp.models import Handover, Notification, PickupDelegate, Pupil

pytestmark = pytest.mark.slow
SHOTS = Path("/tmp/daily-shots")


def _world(app: Flask) -> None:
    with app.app_context():
        pupil = pupil_id("P001")
        publish_for(pupil)
        make_calendar(term_of().id)
        make_duty_teacher(db.session.get(Pupil, pupil).school_id)  # type: ignore[union-attr]
        create_user("parent", login="13800000001", pupil=db.session.get(Pupil, pupil))
        db.session.add(PickupDelegate(pupil_id=pupil, name="李阿姨", valid_on=MONDAY,
                                      code_hash=hash_enrolment_code("ABCD2345")))
        db.session.commit()


def test_a_day_of_roll_call_and_pickup(live_app: Flask, live_server: str, chromium_path: str,
                                       tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    _world(live_app)
    live_app.config["NOW"] = utc(MONDAY, "15:35")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page.set_default_timeout(15_000)
            sign_in_page(page, live_server, "duty-x")
            expect(page.get_by_role("heading", name="今天 · 2026-09-07 周一")).to_be_visible()
            page.get_by_role("link", name="15:30–16:30 作业辅导").click()
            page.evaluate("window.sameDocument = true")  # gone if a tap reloads the page
            page.get_by_role("button", name="缺席").click()  # tap two: nobody reported an absence
            expect(page.locator(".rollcall .badge")).to_have_text("缺席")
            phone_screenshot(page, tmp_path, "rollcall")

            page.get_by_role("button", name="迟到").click()  # the child turns up: a correction needs a reason
            expect(page.get_by_text("修改考勤须填写原因。")).to_be_visible()  # in the pupil's row
            page.screenshot(path=str(tmp_path / "rollcall_refused.png"), full_page=True)
            page.fill("input[name=reason]", "孩子到了")
            page.get_by_role("button", name="迟到").click()
            expect(page.locator(".rollcall .badge")).to_have_text("迟到")
            assert page.evaluate("window.sameDocument === true")  # the rows were redrawn, the list not reloaded

            live_app.config["NOW"] = utc(MONDAY, "16:35")
            page.get_by_role("link", name="今天").first.click()
            page.get_by_role("link", name="16:30–17:30 足球").click()
            page.get_by_role("button", name="到", exact=True).click()
            expect(page.locator(".rollcall .badge")).to_have_text("已到")

            live_app.config["NOW"] = utc(MONDAY, "17:40")
            page.goto(f"{live_server}/daily/duty/still-here")
            expect(page.get_by_text("学生1")).to_be_visible()
            expect(page.get_by_text("13800000001")).to_be_visible()  # the family's number, to call
            phone_screenshot(page, tmp_path, "still_here")

            page.get_by_role("link", name="签退").click()
            page.fill("#code", "WRONG234")
            page.get_by_role("button", name="核对接送码并交接").click()
            expect(page.get_by_text("接送码错误、已使用，或不是今天的。")).to_be_visible()
            page.fill("#code", "abcd 2345")
            page.get_by_role("button", name="核对接送码并交接").click()
            expect(page.get_by_text("已于 2026-09-07 17:40 交接。")).to_be_visible()
            phone_screenshot(page, tmp_path, "handover")
            page.goto(f"{live_server}/daily/duty/still-here")
            expect(page.get_by_text("学生都已被接走。")).to_be_visible()

            parent = browser.new_page(viewport={"width": 375, "height": 812}, locale="zh-CN")
            parent.set_default_timeout(15_000)
            sign_in_page(parent, live_server, "13800000001")
            with live_app.app_context():
                pupil = pupil_id("P001")
            parent.goto(f"{live_server}/daily/children/{pupil}")
            expect(parent.locator(".daily-day").first).to_contain_text("已接走")
            expect(parent.locator(".daily-day").first).to_contain_text("李阿姨")
            phone_screenshot(parent, tmp_path, "parent")
        finally:
            browser.close()
    with live_app.app_context():
        told = db.session.scalars(select(Notification.event)).all()
        assert told == ["absence_unreported", "absence_arrived"]  # the absence, then its correction to late
        assert db.session.scalar(select(Handover.delegate_id)) is not None
    SHOTS.mkdir(exist_ok=True)
    for shot in tmp_path.glob("*.png"):
        (SHOTS / shot.name).write_bytes(shot.read_bytes())


def test_roll_call_without_script(live_app: Flask, live_server: str, chromium_path: str, tmp_path: Path) -> None:
    """A phone without JavaScript: each tap posts the form and the page comes back at the pupil's row."""
    from playwright.sync_api import expect, sync_playwright

    _world(live_app)
    live_app.config["NOW"] = utc(MONDAY, "15:35")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN",
                                          java_script_enabled=False)
            page = context.new_page()
            page.set_default_timeout(15_000)
            sign_in_page(page, live_server, "duty-x")
            page.get_by_role("link", name="15:30–16:30 作业辅导").click()
            page.get_by_role("button", name="到", exact=True).click()
            expect(page.locator(".rollcall .badge")).to_have_text("已到")
            assert page.url.endswith(f"#pupil-{_pupil(live_app)}")
            page.get_by_role("button", name="迟到").click()
            expect(page.get_by_text("修改考勤须填写原因。")).to_be_visible()
            page.fill("input[name=reason]", "点错了")
            page.get_by_role("button", name="迟到").click()
            expect(page.locator(".rollcall .badge")).to_have_text("迟到")
            phone_screenshot(page, tmp_path, "rollcall_no_script")
        finally:
            browser.close()
    SHOTS.mkdir(exist_ok=True)
    for shot in tmp_path.glob("*.png"):
        (SHOTS / shot.name).write_bytes(shot.read_bytes())


def _pupil(app: Flask) -> int:
    with app.app_context():
        return pupil_id("P001")
