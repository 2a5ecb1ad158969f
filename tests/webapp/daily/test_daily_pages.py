"""The family's daily-service page on a phone: report and cancel an absence, name pickup persons, a one-off code."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.webapp.daily.conftest import HOLIDAY, MONDAY, Daily
from tests.webapp.factories import post_form
from webapp.extensions import db
from webapp.models import Absence, PickupDelegate, PickupPerson, Pupil, User

Freeze = Callable[[date, str], None]


def test_the_page_shows_the_coming_days(app: Flask, client: FlaskClient, daily: Daily, parent: User,
                                        at: Freeze) -> None:
    at(MONDAY, "08:00")
    page = client.get(f"/daily/children/{daily.pupil_id}").get_data(as_text=True)
    assert "2026-09-07" in page and "15:30–16:30" in page
    assert "12:00" in page and "2026-09-08" not in page  # Tuesday: no seat, not listed


def test_report_and_cancel_an_absence(app: Flask, client: FlaskClient, daily: Daily, parent: User,
                                      at: Freeze) -> None:
    at(MONDAY, "08:00")
    url = f"/daily/children/{daily.pupil_id}"
    done = post_form(client, f"{url}/absences", {"first_day": "2026-09-07", "reason": "看牙"}, token_from=url,
                     follow_redirects=True)
    assert done.status_code == 200
    with app.app_context():
        absence = db.session.scalar(select(Absence))
        assert absence is not None and absence.reason == "看牙" and absence.reported_by == parent.id
        absence_id = absence.id
    post_form(client, f"{url}/absences/{absence_id}/cancel", token_from=url)
    with app.app_context():
        assert db.session.get(Absence, absence_id).cancelled_at is not None  # type: ignore[union-attr]


def test_refusals_are_flashed_and_nothing_is_written(app: Flask, client: FlaskClient, daily: Daily,
                                                     parent: User, at: Freeze) -> None:
    at(MONDAY, "13:00")
    url = f"/daily/children/{daily.pupil_id}"
    late = post_form(client, f"{url}/absences", {"first_day": "2026-09-07", "reason": "x"}, token_from=url,
                     follow_redirects=True).get_data(as_text=True)
    assert "12:00" in late
    holiday = post_form(client, f"{url}/absences", {"first_day": HOLIDAY.isoformat(), "reason": "x"},
                        token_from=url, follow_redirects=True).get_data(as_text=True)
    assert "no after-school service" in holiday.lower() or "没有课后服务" in holiday
    empty = post_form(client, f"{url}/absences", {"first_day": "", "reason": ""}, token_from=url)
    assert empty.status_code == 422
    phone = post_form(client, f"{url}/pickup-persons", {"name": "王奶奶", "relation": "奶奶", "phone": "555"},
                      token_from=url)
    assert phone.status_code == 422
    with app.app_context():
        assert db.session.scalar(select(Absence)) is None and db.session.scalar(select(PickupPerson)) is None


def test_a_pickup_person_and_a_one_off_code(app: Flask, client: FlaskClient, daily: Daily, parent: User,
                                            at: Freeze) -> None:
    at(MONDAY, "08:00")
    url = f"/daily/children/{daily.pupil_id}"
    post_form(client, f"{url}/pickup-persons", {"name": "王奶奶", "relation": "奶奶", "phone": "13900139000"},
              token_from=url)
    assert "王奶奶" in client.get(url).get_data(as_text=True)
    shown = post_form(client, f"{url}/delegates", {"name": "李阿姨", "valid_on": "2026-09-07"}, token_from=url)
    assert shown.status_code == 200
    code = re.search(r'class="delegate-code"[^>]*>([A-Z0-9]{8})<', shown.get_data(as_text=True))
    assert code is not None
    with app.app_context():
        assert db.session.scalar(select(PickupDelegate.name)) == "李阿姨"
    assert code.group(1) not in client.get(url).get_data(as_text=True)  # shown once only


def test_another_familys_child_is_404(app: Flask, client: FlaskClient, daily: Daily, parent: User) -> None:
    with app.app_context():
        other = db.session.scalar(select(Pupil.id).where(Pupil.number == "P002"))
    assert client.get(f"/daily/children/{other}").status_code == 404
