"""Capacity advice in a 375 px Chromium: computed from the page, each level proven or bounded, the total that the
lines add up to, in Chinese and English. Photographs go to tmp/artifacts/advice-phone/ for a person to look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from tests.conftest import _make_app
from tests.e2e.conftest import CHROMIUM_ARGS, phone_screenshot, sign_in_page
from tests.webapp.staff_pages import LOGINS, staff_world
from webapp.extensions import db
from webapp.models import Session

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("ADVICE_SCREENSHOTS", Path(__file__).resolve().parents[2] / "tmp/artifacts/advice-phone"))


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[Flask]:
    """The app with CSRF on; advice runs inside the request that asks for it (the server has no worker)."""
    app = _make_app(tmp_path, JOBS_INLINE=True, BUREAU_ADVICE_TIME_LIMIT=10)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_advice_page_on_a_phone(live_server: str, live_app: Flask, chromium_path: str) -> None:
    from playwright.sync_api import sync_playwright

    world: dict[str, Any] = staff_world(live_app)
    with live_app.app_context():  # one seat a session: the school needs more, and the advice says where
        db.session.execute(update(Session).where(Session.term_id == world["term_id"]).values(capacity=1))
        db.session.commit()
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = f"{live_server}/bureau/advice/{world['school_id']}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page = context.new_page()
            page.set_default_timeout(60_000)
            sign_in_page(page, live_server, LOGINS["bureau"])
            page.wait_for_load_state()
            page.goto(url)
            page.click("form button[type=submit].btn-primary")
            page.wait_for_load_state()
            levels = page.inner_text("#advice-levels")
            assert "名教师" in levels and "个名额" in levels
            assert all(("已证明" in line or "找到的方案" in line) for line in levels.splitlines() if line.strip())
            assert "合计可多覆盖" in page.inner_text("#advice-gained")
            assert "人日（按优先级加权）" in page.inner_text(".advice-items")
            assert "正在计算建议" not in page.inner_text("body")  # done inline: nothing is being computed any more
            assert page.locator("#advice-pending").count() == 0
            phone_screenshot(page, SHOTS, "advice-zh")
            page.click(".lang-switch button")
            page.wait_for_load_state()
            page.goto(url)
            english = page.inner_text("#advice-levels")
            assert "Teachers to hire" in english and "Seats to add" in english
            phone_screenshot(page, SHOTS, "advice-en")
            page.click(".lang-switch button")  # the choice is saved on the account
            context.close()
        finally:
            browser.close()
