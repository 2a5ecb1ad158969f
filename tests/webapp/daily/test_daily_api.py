"""The daily service in the parents' API: attendance, absences (cutoff, repeat, cancel), pickup persons,
one-off delegates, and the refusals (audited, nothing written)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.webapp.daily.conftest import EARLY_CLOSE, HOLIDAY, MAKEUP_SATURDAY, MONDAY, TUESDAY, Daily
from tests.webapp.factories import PHONES, api_token, bearer, create_user
from webapp.extensions import db
from webapp.family import hash_enrolment_code
from webapp.models import Absence, AuditLog, PickupDelegate, PickupPerson, Pupil

Freeze = Callable[[date, str], None]


def _token(app: Flask, daily: Daily) -> dict[str, str]:
    with app.app_context():
        create_user("parent", login=PHONES["parent_a"], pupil=db.session.get(Pupil, daily.pupil_id))
    return bearer(api_token(app.test_client(), PHONES["parent_a"]))


def _count(model: type) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def _audits(action: str) -> list[AuditLog]:
    return list(db.session.scalars(select(AuditLog).where(AuditLog.action == action)))


def test_attendance_lists_each_date_with_its_status(app: Flask, client: FlaskClient, daily: Daily,
                                                    at: Freeze) -> None:
    headers = _token(app, daily)
    at(MONDAY, "08:00")
    url = f"/api/v1/children/{daily.pupil_id}/attendance"
    body = client.get(f"{url}?from=2026-10-05&to=2026-10-12", headers=headers).get_json()
    statuses = {d["date"]: d["status"] for d in body["days"]}
    assert len(statuses) == 8
    assert statuses[HOLIDAY.isoformat()] == "no_service"
    assert statuses[MAKEUP_SATURDAY.isoformat()] == "scheduled"
    assert statuses["2026-10-11"] == "no_service" and statuses["2026-10-06"] == "no_service"
    early = next(d for d in body["days"] if d["date"] == EARLY_CLOSE.isoformat())
    assert [(s["start"], s["end"]) for s in early["sessions"]] == [("15:30", "16:30")]
    assert early["checked_in_at"] is None and early["picked_up_by"] is None
    bad = client.get(f"{url}?from=2026-10-05&to=2027-10-05", headers=headers)
    assert bad.status_code == 422 and "to" in bad.get_json()["fields"]
    assert client.get(f"{url}?from=x", headers=headers).status_code == 422


def test_an_absence_before_the_cutoff_then_again_then_cancelled(app: Flask, client: FlaskClient, daily: Daily,
                                                                at: Freeze) -> None:
    headers = _token(app, daily)
    url = f"/api/v1/children/{daily.pupil_id}/absences"
    at(MONDAY, "11:59")
    first = client.post(url, json={"date": MONDAY.isoformat(), "reason": "发烧"}, headers=headers)
    assert first.status_code == 201, first.get_json()
    again = client.post(url, json={"date": MONDAY.isoformat(), "reason": "发烧"}, headers=headers)
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    with app.app_context():
        assert _count(Absence) == 1
    day = client.get(f"/api/v1/children/{daily.pupil_id}/attendance?from=2026-09-07&to=2026-09-07",
                     headers=headers).get_json()["days"][0]
    assert day["status"] == "reported_absent"
    cancelled = client.delete(f"{url}/{first.get_json()['id']}", headers=headers)
    assert cancelled.status_code == 200 and cancelled.get_json()["cancelled_at"]
    with app.app_context():
        assert [a.action for a in db.session.scalars(select(AuditLog).where(
            AuditLog.action.like("absence.%")).order_by(AuditLog.id))] == ["absence.report", "absence.cancel"]


def test_after_the_cutoff_nothing_is_recorded_and_the_attempt_is_audited(app: Flask, client: FlaskClient,
                                                                         daily: Daily, at: Freeze) -> None:
    headers = _token(app, daily)
    url = f"/api/v1/children/{daily.pupil_id}/absences"
    at(MONDAY, "11:00")
    made = client.post(url, json={"date": MONDAY.isoformat(), "reason": "看病"}, headers=headers).get_json()
    at(MONDAY, "12:00")
    late = client.post(url, json={"date": MONDAY.isoformat(), "until": "2026-09-08", "reason": "看病"},
                       headers=headers)
    assert late.status_code == 409 and late.get_json()["error"] == "cutoff_passed"
    assert "12:00" in late.get_json()["message"]
    too_late_to_cancel = client.delete(f"{url}/{made['id']}", headers=headers)
    assert too_late_to_cancel.status_code == 409
    with app.app_context():
        assert _count(Absence) == 1 and db.session.scalar(select(Absence.cancelled_at)) is None
        refused = _audits("absence.refuse")
        assert len(refused) == 2 and {a.detail["refused"] for a in refused} == {"cutoff_passed"}
    # the next day is still open until its own noon
    assert client.post(url, json={"date": "2026-09-14", "reason": "旅行"}, headers=headers).status_code == 201


def test_no_absence_on_a_day_without_service(app: Flask, client: FlaskClient, daily: Daily, at: Freeze) -> None:
    headers = _token(app, daily)
    url = f"/api/v1/children/{daily.pupil_id}/absences"
    at(date(2026, 9, 1), "08:00")
    for day in (HOLIDAY, TUESDAY, date(2026, 9, 12), date(2027, 3, 1)):  # holiday, no seat, weekend, no term
        response = client.post(url, json={"date": day.isoformat(), "reason": "x"}, headers=headers)
        assert response.status_code == 409 and response.get_json()["error"] == "no_service", day
    assert client.post(url, json={"date": MAKEUP_SATURDAY.isoformat(), "reason": "x"},
                       headers=headers).status_code == 201  # 调休: Monday's timetable runs
    reversed_range = client.post(url, json={"date": "2026-09-14", "until": "2026-09-07", "reason": "x"},
                                 headers=headers)
    assert reversed_range.status_code == 422
    with app.app_context():
        assert _count(Absence) == 1 and len(_audits("absence.refuse")) == 4


def test_pickup_persons_and_a_delegate(app: Flask, client: FlaskClient, daily: Daily, at: Freeze) -> None:
    headers = _token(app, daily)
    at(MONDAY, "09:00")
    base = f"/api/v1/children/{daily.pupil_id}"
    bad = client.post(f"{base}/pickup-persons", json={"name": "", "relation": "奶奶", "phone": "123"},
                      headers=headers)
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"name", "phone"}
    added = client.post(f"{base}/pickup-persons", json={"name": "王奶奶", "relation": "奶奶",
                                                        "phone": "+86 139-0013-9000"}, headers=headers)
    assert added.status_code == 201 and added.get_json()["phone"] == "13900139000"
    listed = client.get(f"{base}/pickup-persons", headers=headers).get_json()["pickup_persons"]
    assert [p["name"] for p in listed] == ["王奶奶"]
    assert client.delete(f"{base}/pickup-persons/{listed[0]['id']}", headers=headers).status_code == 204
    assert client.get(f"{base}/pickup-persons", headers=headers).get_json() == {"pickup_persons": []}
    assert client.delete(f"{base}/pickup-persons/{listed[0]['id']}", headers=headers).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(PickupPerson.removed_at)) is not None  # kept for past handovers

    issued = client.post(f"{base}/delegates", json={"name": "李阿姨", "date": MONDAY.isoformat()},
                         headers=headers)
    assert issued.status_code == 201
    code = issued.get_json()["code"]
    with app.app_context():
        row = db.session.scalar(select(PickupDelegate))
        assert row is not None and row.code_hash == hash_enrolment_code(code) and code not in row.code_hash
    past = client.post(f"{base}/delegates", json={"name": "李阿姨", "date": "2026-09-01"}, headers=headers)
    assert past.status_code == 422
    holiday = client.post(f"{base}/delegates", json={"name": "李阿姨", "date": HOLIDAY.isoformat()},
                          headers=headers)
    assert holiday.status_code == 409


def test_another_familys_child_is_not_found(app: Flask, client: FlaskClient, daily: Daily, at: Freeze) -> None:
    headers = _token(app, daily)
    at(MONDAY, "09:00")
    with app.app_context():
        other = db.session.scalar(select(Pupil.id).where(Pupil.number == "P002"))
    for method, path, body in (("get", "attendance?from=2026-09-07&to=2026-09-08", None),
                               ("post", "absences", {"date": MONDAY.isoformat(), "reason": "x"}),
                               ("get", "pickup-persons", None),
                               ("post", "delegates", {"name": "x", "date": MONDAY.isoformat()})):
        response = client.open(f"/api/v1/children/{other}/{path}", method=method.upper(), json=body,
                               headers=headers)
        assert response.status_code == 404, path
