"""Every staff page (school admin: admin, runs, rosters, messages; bureau) in a 375 px Chromium.

On each page: the document is no wider than the screen, no table cell is narrower than two Chinese characters of its
own font, and every chart label is drawn at 11 px or more. The main pages of each role are also photographed at
375 px and 1280 px into tmp/artifacts/staff-phone/ (the directory in STAFF_SCREENSHOTS overrides it) for a person
to look at.

The pages come from the app's URL map: a new GET page of these areas fails `test_every_staff_page_is_listed` until
it is visited here or named in NOT_PAGES with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import TEST_PASSWORD, _make_app
from tests.e2e.conftest import CHROMIUM_ARGS
from tests.webapp.factories import create_user, seed_city
from webapp.extensions import db
from webapp.models import (
    Activity,
    AllocationRun,
    District,
    Pupil,
    School,
    Session,
    Teacher,
    Term,
)

pytestmark = pytest.mark.slow

STAFF_AREAS = ("admin", "runs", "rosters", "bureau", "notifications")
NOT_PAGES = {
    # downloads and JSON, not pages
    "admin.import_template", "rosters.workbook", "rosters.instance_export", "rosters.solution_export",
    "runs.status", "bureau.batch_status", "bureau.export", "bureau.hiring_export",
    # the parents' own pages in the notifications area (covered by the parent browser test)
    "notifications.inbox_page", "notifications.email",
    # reached by starting a batch in the browser (test_bureau_pages), its id is made there
    "bureau.batch",
}
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
def staff_world(live_app: Flask) -> dict[str, Any]:
    """The tiny city of tests/webapp/factories.py, an admin of its first school and a city-wide bureau user."""
    with live_app.app_context():
        city = seed_city()
        school = db.session.get(School, city["schools"]["KM-TEST-0001"])
        assert school is not None
        create_user("school_admin", login="admin-km1", school=school)
        create_user("bureau", login="bureau-city")
        term = db.session.scalar(select(Term).where(Term.school_id == school.id))
        assert term is not None
        first = {model: db.session.scalar(select(model.id).where(where).order_by(model.id))
                 for model, where in ((Session, Session.term_id == term.id), (Teacher, Teacher.school_id == school.id),
                                      (Pupil, Pupil.school_id == school.id), (Activity, Activity.term_id == term.id),
                                      (AllocationRun, AllocationRun.term_id == term.id))}
        class_name = db.session.scalar(select(Pupil.class_name).where(Pupil.school_id == school.id))
        wuhua = db.session.scalar(select(District.id).where(District.name == "五华区"))
        return {
            "term_id": term.id, "session_id": first[Session], "teacher_id": first[Teacher],
            "pupil_id": first[Pupil], "activity_id": first[Activity], "run_id": first[AllocationRun],
            "class_name": class_name, "kind": "pupils", "district_id": wuhua, "school_id": school.id,
        }


def staff_urls(app: Flask, ids: dict[str, Any]) -> dict[str, list[str]]:
    """Every GET page of the staff areas, with its parameters filled from `ids`, by role."""
    pages: dict[str, list[str]] = {"admin": [], "bureau": []}
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            area = rule.endpoint.split(".")[0]
            if area not in STAFF_AREAS or "GET" not in (rule.methods or ()) or rule.endpoint in NOT_PAGES:
                continue
            values = {name: ids[name] for name in rule.arguments}
            if rule.endpoint == "runs.compare":
                values = {"a": ids["run_id"], "b": ids["run_id"]}
            pages["bureau" if area == "bureau" else "admin"].append(url_for(rule.endpoint, **values))
    return {role: sorted(set(urls)) for role, urls in pages.items()}


def test_every_staff_page_is_listed(live_app: Flask, staff_world: dict[str, Any]) -> None:
    urls = staff_urls(live_app, staff_world)
    assert "/admin/rosters/{}/waitlist".format(staff_world["term_id"]) in urls["admin"]
    assert "/bureau/" in urls["bureau"] and len(urls["admin"]) >= 25


def _sign_in(page: Any, base: str, login: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#login", login)
    page.fill("#password", TEST_PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()


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
        _sign_in(page, base, login)
        for url in urls:
            page.goto(base + url)
            name = url.strip("/").replace("/", "_") or "home"
            page.screenshot(path=str(ARTIFACTS / f"{role}-{name}-{width}.png"), full_page=True)
        context.close()


@pytest.mark.parametrize("role", ["admin", "bureau"])
def test_staff_pages_fit_a_phone(live_server: str, live_app: Flask, chromium_path: str, staff_world: dict[str, Any],
                                 role: str) -> None:
    from playwright.sync_api import sync_playwright

    login = {"admin": "admin-km1", "bureau": "bureau-city"}[role]
    urls = staff_urls(live_app, staff_world)[role]
    main = [url.format(term=staff_world["term_id"], district=staff_world["district_id"],
                       school=staff_world["school_id"]) for url in MAIN_PAGES[role]]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            problems = []
            for locale in ("zh-CN", "en"):
                context = browser.new_context(viewport={"width": 375, "height": 812}, locale=locale)
                page = context.new_page()
                page.set_default_timeout(15_000)
                _sign_in(page, live_server, login)
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
