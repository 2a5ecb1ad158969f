"""Every staff page (school admin: admin, runs, rosters, messages; bureau) in a 375 px Chromium.

On each page: the document is no wider than the screen, no table cell is narrower than two Chinese characters of its
own font, and every chart label is drawn at 11 px or more. The main pages of each role are also photographed at
375 px and 1280 px into tmp/artifacts/staff-phone/ (the directory in STAFF_SCREENSHOTS overrides it) for a person
to look at.

The pages come from the app's URL map (tests/webapp/staff_pages.py), so a new staff page is checked as it appears.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import _make_app
from tests.e2e.conftest import CHROMIUM_ARGS, sign_in_page
from tests.webapp.staff_pages import LOGINS, staff_urls, staff_world
from webapp.extensions import db

pytestmark = pytest.mark.slow

MAIN_PAGES = {
    "admin": ["/admin/", "/admin/sessions", "/admin/pupils", "/admin/teachers", "/admin/runs/",
              "/admin/rosters/{term}/", "/admin/rosters/{term}/waitlist", "/admin/rosters/{term}/sessions"],
    "bureau": ["/bureau/", "/bureau/district/{district}", "/bureau/school/{school}"],
}
ARTIFACTS = Path(os.environ.get("STAFF_SCREENSHOTS", Path(__file__).resolve().parents[2] / "tmp/artifacts/staff-phone"))

MEASURE = """() => {
  const problems = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth) {
    problems.push(`page ${doc.scrollWidth} px wide in a ${window.innerWidth} px screen`);
  }
  for (const cell of document.querySelectorAll("td, th")) {
    const text = cell.innerText.trim();
    if (!text || cell.offsetParent === null) continue;
    const style = getComputedStyle(cell);
    const width = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const font = parseFloat(style.fontSize);
    if (width < 2 * font - 0.5) {
      problems.push(`cell "${text.slice(0, 20)}" ${width.toFixed(1)} px wide for ${font} px characters`);
    }
  }
  for (const label of document.querySelectorAll(".chart text")) {
    if (!label.textContent.trim()) continue;
    const size = parseFloat(getComputedStyle(label).fontSize) * label.getScreenCTM().a;
    if (size < 11 - 0.05) problems.push(`chart label "${label.textContent.trim()}" drawn at ${size.toFixed(1)} px`);
  }
  for (const node of document.querySelectorAll(".chart li *")) {
    if (!node.childNodes.length || ![...node.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const size = parseFloat(getComputedStyle(node).fontSize);
    if (size < 11) problems.push(`chart label "${node.textContent.trim()}" at ${size} px`);
  }
  return problems;
}"""


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[Flask]:
    """The app with CSRF on, the jobs a page starts run inside its request (the server has no worker)."""
    app = _make_app(tmp_path, JOBS_INLINE=True, BUREAU_TIME_LIMIT=1, BUREAU_ADVICE_TIME_LIMIT=1)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def world(live_app: Flask) -> dict[str, Any]:
    return staff_world(live_app)


def test_every_staff_page_is_listed(live_app: Flask, world: dict[str, Any]) -> None:
    urls = staff_urls(live_app, world)
    assert "/admin/rosters/{}/waitlist".format(world["term_id"]) in urls["admin"]
    assert "/bureau/" in urls["bureau"] and len(urls["admin"]) >= 25


def _check_pages(page: Any, base: str, urls: list[str]) -> list[str]:
    found = []
    for url in urls:
        response = page.goto(base + url)
        assert response is not None and response.status == 200, f"{url}: {response.status if response else None}"
        found += [f"{url}: {problem}" for problem in page.evaluate(MEASURE)]
    return found


def _photograph(browser: Any, base: str, login: str, role: str, urls: list[str]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in (375, 1280):
        context = browser.new_context(viewport={"width": width, "height": 812}, locale="zh-CN")
        page = context.new_page()
        sign_in_page(page, base, login, keep_cookies=True)
        for url in urls:
            page.goto(base + url)
            name = url.strip("/").replace("/", "_") or "home"
            page.screenshot(path=str(ARTIFACTS / f"{role}-{name}-{width}.png"), full_page=True)
        context.close()


@pytest.mark.parametrize("role", ["admin", "bureau"])
def test_staff_pages_fit_a_phone(live_server: str, live_app: Flask, chromium_path: str, world: dict[str, Any],
                                 role: str) -> None:
    from playwright.sync_api import sync_playwright

    login = LOGINS[role]
    urls = staff_urls(live_app, world)[role]
    main = [url.format(term=world["term_id"], district=world["district_id"],
                       school=world["school_id"]) for url in MAIN_PAGES[role]]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            problems = []
            for locale in ("zh-CN", "en"):
                context = browser.new_context(viewport={"width": 375, "height": 812}, locale=locale)
                page = context.new_page()
                page.set_default_timeout(15_000)
                sign_in_page(page, live_server, login, keep_cookies=True)
                if locale == "en":
                    page.click(".lang-switch button")
                    page.wait_for_load_state()
                problems += [f"[{locale}] {p}" for p in _check_pages(page, live_server, urls)]
                if locale == "en":  # the choice is saved on the account: back to Chinese for the photographs
                    page.click(".lang-switch button")
                    page.wait_for_load_state()
                if role == "bureau" and locale == "zh-CN":
                    page.goto(f"{live_server}/bureau/")
                    page.click(".batch-form button[type=submit]")
                    page.wait_for_url("**/bureau/batches/**")
                    problems += [f"[batch] {p}" for p in page.evaluate(MEASURE)]
                context.close()
            _photograph(browser, live_server, login, role, main)
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
