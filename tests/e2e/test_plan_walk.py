"""The published plan's life on a 375 px phone: publish, a family's change, the waitlist's offer, an amendment.

The school (KM-TEST-0001) has one Tuesday homework seat (S21). Family B (学生2, priority 1) asks for Monday and
Tuesday, family A (学生1) for Tuesday only, so the solver gives the seat to B and A waits. In Chromium:

1. the admin opens the finished run's publish page (who gains, notifications) and publishes;
2. parent B drops Tuesday with a change request; the seat is offered to A, first in the queue;
3. parent A sees the offer on the child's page and accepts: the timetable shows Tuesday;
4. the admin's session roster lists A in S21; the admin lowers S21 to no seats, sees who loses on the
   confirmation page, gives a reason and confirms: the plan history shows the new version.

Screenshots of every page go to the test's tmp dir; each page is checked for Chinese text and sideways scroll.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from scheduler.solve import SolverConfig, solve
from tests.e2e.conftest import CHROMIUM_ARGS, phone_screenshot, sign_in_page
from tests.webapp.factories import create_user
from webapp.allocation.service import clock
from webapp.extensions import db
from webapp.models import AllocationRun, CareRequest, Pupil, School, Session, Term
from webapp.services import store_solution, term_to_instance

pytestmark = pytest.mark.slow

PHONE_A, PHONE_B = "13900000001", "13900000002"


def _prepare(app: Flask) -> dict[str, Any]:
    """Requests, one Tuesday seat, the accounts and a finished (unpublished) run solved by the real solver."""
    with app.app_context():
        school = db.session.scalar(select(School))
        assert school is not None
        term = db.session.scalar(select(Term).where(Term.school_id == school.id))
        assert term is not None
        pupils = {p.number: p for p in db.session.scalars(select(Pupil).where(Pupil.school_id == school.id))}
        s21 = db.session.scalar(select(Session).where(Session.term_id == term.id, Session.code == "S21"))
        assert s21 is not None
        s21.capacity = 1
        db.session.add_all([
            CareRequest(term_id=term.id, pupil_id=pupils["P001"].id, days=[2], periods=["P1"], preferences=[],
                        pickup_time="16:30", status="active"),
            CareRequest(term_id=term.id, pupil_id=pupils["P002"].id, days=[1, 2], periods=["P1"], preferences=[],
                        pickup_time="16:30", status="active"),
        ])
        term.requests_close_at = clock() - timedelta(minutes=1)  # publishing needs the window closed
        db.session.commit()
        create_user("parent", login=PHONE_A, pupil=pupils["P001"])
        create_user("parent", login=PHONE_B, pupil=pupils["P002"])
        create_user("school_admin", school=school, login="walk-admin")
        instance = term_to_instance(term)
        solution = solve(instance, SolverConfig(time_limit=10, workers=1, seed=1))
        run = AllocationRun(term_id=term.id, state="running")
        db.session.add(run)
        db.session.commit()
        store_solution(term, solution, run, instance=instance)
        return {"run": run.id, "term": term.id, "s21": s21.id, "a": pupils["P001"].id, "b": pupils["P002"].id}


def _look(page: Any, shots: Path, name: str) -> None:
    """Screenshot the page and check it fits a phone and speaks Chinese."""
    phone_screenshot(page, shots, name)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in page.inner_text("body")), f"{name}: no Chinese text"


def test_publish_change_offer_accept_and_amend(live_app: Flask, live_server: str, chromium_path: str,
                                               tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    ids = _prepare(live_app)
    shots = tmp_path / "screens"
    shots.mkdir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page.set_default_timeout(15_000)

            # 1. The admin publishes after looking at what it changes.
            sign_in_page(page, live_server, "walk-admin")
            page.goto(f"{live_server}/admin/runs/{ids['run']}/publish")
            expect(page.get_by_text("将发送的通知")).to_be_visible()
            assert "学生2" in page.inner_text("body")  # B gains Monday and Tuesday
            _look(page, shots, "1-publish-preview")
            page.get_by_role("button", name="发布本次分配").click()
            expect(page.get_by_text("家长现在可以看到")).to_be_visible()

            # 2. Parent B drops Tuesday from today.
            sign_in_page(page, live_server, PHONE_B)
            page.goto(f"{live_server}/family/child/{ids['b']}")
            expect(page.get_by_text("已安排 2 / 2 天")).to_be_visible()
            page.uncheck("#change-days-1")
            _look(page, shots, "2-parent-b-change")
            page.get_by_role("button", name="申请变更").click()
            expect(page.get_by_text("您的变更已记录")).to_be_visible()
            expect(page.get_by_text("已安排 1 / 1 天")).to_be_visible()

            # 3. Parent A, first on Tuesday's waitlist, is offered the seat and accepts it.
            sign_in_page(page, live_server, PHONE_A)
            page.goto(f"{live_server}/family/child/{ids['a']}")
            expect(page.get_by_text("为您保留的候补名额")).to_be_visible()
            _look(page, shots, "3-parent-a-offer")
            page.get_by_role("button", name="接受").click()
            expect(page.get_by_text("名额已归您所有")).to_be_visible()
            expect(page.get_by_text("已安排 1 / 1 天")).to_be_visible()
            timetable = page.locator(".day-list").inner_text()  # the phone view: one block per day
            assert "周二" in timetable and "作业辅导" in timetable
            _look(page, shots, "4-parent-a-timetable")

            # 4. The admin's roster shows A in S21; lowering S21 to no seats is confirmed before it applies.
            sign_in_page(page, live_server, "walk-admin")
            page.goto(f"{live_server}/admin/rosters/{ids['term']}/sessions/{ids['s21']}")
            assert "学生1" in page.inner_text("body") and "学生2" not in page.inner_text("body")
            _look(page, shots, "5-roster-s21")
            page.goto(f"{live_server}/admin/sessions/{ids['s21']}/edit")
            page.fill("#capacity", "0")
            page.get_by_role("button", name="保存").click()
            expect(page.get_by_text("这项修改会变动已发布方案中的名额")).to_be_visible()
            lost = page.locator("section", has_text="失去名额").inner_text()
            assert "学生1" in lost and "周二" in lost
            _look(page, shots, "6-confirm-edit")
            page.get_by_role("button", name="确认并修订方案").click()  # no reason yet: the browser asks for one
            expect(page.get_by_text("这项修改会变动已发布方案中的名额")).to_be_visible()
            page.fill("#reason", "教室维修，周二作业辅导暂停")
            page.get_by_role("button", name="确认并修订方案").click()
            expect(page.get_by_text("方案已修订")).to_be_visible()
            page.goto(f"{live_server}/admin/runs/term/{ids['term']}/history")
            expect(page.get_by_text("教室维修，周二作业辅导暂停")).to_be_visible()
            _look(page, shots, "7-history")
        finally:
            browser.close()
    for name in ("1-publish-preview", "3-parent-a-offer", "6-confirm-edit", "7-history"):
        assert (shots / f"{name}.png").stat().st_size > 5_000
    print(f"screenshots in {shots}")
