"""The seat policy on a phone-sized Chromium: the school admin picks 尽量整周 with the request window, a run follows
it, and the run page names the policy with its figures, and says what the solver proved about each level."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from tests.e2e.conftest import CHROMIUM_ARGS, phone_screenshot, sign_in_page
from tests.webapp.factories import build_instance, create_user, import_term
from webapp.extensions import db
from webapp.jobs import database_url, run_allocation
from webapp.models import AllocationRun, Term

pytestmark = pytest.mark.slow
SHOTS = Path("/tmp/seat-policy-shots")


def test_admin_sets_the_policy_and_the_run_page_shows_it(live_app: Flask, live_server: str,
                                                         chromium_path: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with live_app.app_context():
        term = import_term(build_instance(20, seed=3, days=3, tight=0.5, code="KM-SEAT-0001"))
        admin = create_user("school_admin", school=term.school, login="seat-admin")
        db.session.commit()
        term_id, admin_id = term.id, admin.id
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page.set_default_timeout(15_000)
            sign_in_page(page, live_server, "seat-admin")
            page.goto(f"{live_server}/admin/window")
            expect(page.get_by_label("名额分配方式")).to_have_value("spread")
            page.get_by_label("名额分配方式").select_option(label="尽量整周")
            phone_screenshot(page, SHOTS, "window")
            page.get_by_role("button", name="保存").click()
            expect(page.get_by_text("申请时间已保存")).to_be_visible()
            with live_app.app_context():
                stored = db.session.get(Term, term_id)
                assert stored is not None and stored.seat_policy == "whole_week"
                run = AllocationRun(term_id=term_id, created_by=admin_id)
                db.session.add(run)
                db.session.commit()
                assert run_allocation(run.id, database_url(), time_limit=5.0) == "done"
                run_id = run.id
            page.goto(f"{live_server}/admin/runs/{run_id}")
            expect(page.get_by_text("尽量整周")).to_be_visible()
            expect(page.get_by_text("名学生每个申请的星期都有名额")).to_be_visible()
            # What the solver proved about each level, readable on the phone too.
            levels = page.locator("ul.solver-levels")
            expect(levels).to_contain_text("志愿得分")
            expect(levels.locator("li.level-proven").first).to_contain_text("已证明最优")
            phone_screenshot(page, SHOTS, "run")
            page.locator(".runs-metrics").first.screenshot(path=str(SHOTS / "run-results.png"))
            levels.screenshot(path=str(SHOTS / "run-levels.png"))
        finally:
            browser.close()
