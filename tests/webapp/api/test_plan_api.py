"""The plan in the parents' API: plan version and changes in the result, offers, change requests."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Flask
from sqlalchemy import func, select

from tests.webapp.allocation.test_plan_pages import _world
from tests.webapp.factories import api_token, bearer
from webapp.extensions import db
from webapp.models import ChangeRequest, PlanAmendment, WaitlistOffer


def test_result_carries_the_plan_version_and_this_childs_changes(app: Flask) -> None:
    world = _world(app)
    headers = bearer(api_token(app.test_client(), world["holder"]))
    client = app.test_client()
    # Version 1 is the publication, version 2 another family's withdrawal, which did not touch this child.
    before = client.get(f"/api/v1/children/{world['holder_pupil']}/result?since_version=1",
                        headers=headers).get_json()
    assert before["plan_version"] == 2 and before["changes"] == []
    assert client.get(f"/api/v1/children/{world['holder_pupil']}/result?since_version=x",
                      headers=headers).status_code == 422
    unknown = client.get(f"/api/v1/children/{world['holder_pupil']}/result?since_version=0&=null&sort=x",
                         headers=headers)
    assert unknown.status_code == 422 and set(unknown.get_json()["fields"]) == {"", "sort"}
    accepted = client.post(f"/api/v1/offers/{world['offer']}/accept", headers=headers)
    assert accepted.status_code == 200 and accepted.get_json()["state"] == "accepted"
    after = client.get(f"/api/v1/children/{world['holder_pupil']}/result?since_version=2", headers=headers).get_json()
    assert after["plan_version"] == 3
    (change,) = after["changes"]
    assert change["version"] == 3 and change["kind"] == "offer_accepted" and change["lost"] == []
    assert [g["day"] for g in change["gained"]] == [1]
    assert client.get(f"/api/v1/children/{world['holder_pupil']}/result?since_version=3",
                      headers=headers).get_json()["changes"] == []


def test_offers_list_answer_and_refusals(app: Flask) -> None:
    world = _world(app)
    client = app.test_client()
    holder = bearer(api_token(client, world["holder"]))
    stranger = bearer(api_token(client, world["stranger"]))
    listed = client.get("/api/v1/offers", headers=holder).get_json()["offers"]
    assert [o["id"] for o in listed] == [world["offer"]] and listed[0]["state"] == "open"
    assert listed[0]["sessions"] and listed[0]["expires_at"].endswith("Z")
    assert client.get("/api/v1/offers", headers=stranger).get_json()["offers"] == []
    for path in ("accept", "decline"):
        refused = client.post(f"/api/v1/offers/{world['offer']}/{path}", headers=stranger)
        assert refused.status_code == 404 and refused.get_json()["message"]
        assert client.post(f"/api/v1/offers/999999/{path}", headers=holder).status_code == 404
    with app.app_context():
        versions = db.session.scalar(select(func.count()).select_from(PlanAmendment))
        offer = db.session.get(WaitlistOffer, world["offer"])
        assert offer is not None and offer.state == "open"
        late = offer.expires_at + timedelta(minutes=1)
    app.config["NOW"] = late
    expired = client.post(f"/api/v1/offers/{world['offer']}/accept", headers=holder)
    app.config["NOW"] = None
    assert expired.status_code == 409 and expired.get_json()["error"] == "offer_closed"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PlanAmendment)) == versions
    declined = client.post(f"/api/v1/offers/{world['offer']}/decline", headers=holder)
    assert declined.status_code == 200 and declined.get_json()["state"] == "declined"
    again = client.post(f"/api/v1/offers/{world['offer']}/decline", headers=holder)
    assert again.status_code == 409 and again.get_json()["message"]


def test_change_requests_through_the_api(app: Flask) -> None:
    world = _world(app)
    client = app.test_client()
    own = bearer(api_token(client, world["s1"]))
    stranger = bearer(api_token(client, world["stranger"]))
    url = f"/api/v1/children/{world['s1_pupil']}/changes"
    today = date.today()
    body = {"effective_on": today.isoformat(), "days": [2], "pickup_time": "16:30"}
    assert client.post(url, json=body, headers=stranger).status_code == 404
    for bad in ({**body, "effective_on": (today - timedelta(days=1)).isoformat()},
                {**body, "effective_on": (today + timedelta(days=90)).isoformat()},
                {**body, "effective_on": "tomorrow"}, {**body, "days": "Monday"}, {**body, "colour": "red"}):
        refused = client.post(url, json=bad, headers=own)
        assert refused.status_code == 422, (bad, refused.get_json())
        assert refused.get_json()["fields"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ChangeRequest)) == 0
    made = client.post(url, json=body, headers=own)
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["state"] == "applied" and made.get_json()["days"] == [2]
    later = client.post(url, json={"effective_on": (today + timedelta(days=7)).isoformat(), "withdraw": True},
                        headers=own)
    assert later.status_code == 201 and later.get_json()["state"] == "pending"
