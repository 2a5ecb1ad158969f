"""Bad answers to the published plan, on the web and in the API: a clear 4xx message and not one row changed.

Each refusal is checked against a snapshot of every table a change to the plan writes (seats, staffing,
uncovered rows and waitlist numbers, offers, amendments, change requests, requests, notifications, audit rows
and the term's version), taken after the page that carries the form was read (reading offers may expire them).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.webapp.allocation.test_plan_pages import _world
from tests.webapp.factories import api_token, bearer, csrf_token, sign_in
from webapp.extensions import db
from webapp.models import (
    AuditLog,
    CareRequest,
    ChangeRequest,
    Notification,
    PlanAmendment,
    PlanChange,
    RunAssignment,
    RunStaffing,
    RunUnserved,
    Term,
    WaitlistOffer,
)


def _snapshot(app: Flask) -> dict[str, Any]:
    with app.app_context():
        def rows(*columns: Any) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in db.session.execute(select(*columns).order_by(*columns))]

        return {
            "seats": rows(RunAssignment.run_id, RunAssignment.pupil_id, RunAssignment.session_id),
            "staffing": rows(RunStaffing.run_id, RunStaffing.teacher_id, RunStaffing.session_id),
            "unserved": rows(RunUnserved.id, RunUnserved.day, RunUnserved.waitlist_position),
            "offers": rows(WaitlistOffer.id, WaitlistOffer.state, WaitlistOffer.decided_at),
            "amendments": rows(PlanAmendment.id),
            "changes": rows(PlanChange.id),
            "change_requests": rows(ChangeRequest.id, ChangeRequest.state),
            "requests": [(r.pupil_id, r.status, list(r.days), list(r.periods), r.pickup_time,
                          list(r.preferences or [])) for r in db.session.scalars(
                              select(CareRequest).order_by(CareRequest.id))],
            "notifications": rows(Notification.id),
            "audit": rows(AuditLog.id),
            "terms": rows(Term.id, Term.plan_version, Term.published_run_id),
        }


def _expiry(app: Flask, offer_id: int) -> Any:
    with app.app_context():
        offer = db.session.get(WaitlistOffer, offer_id)
        assert offer is not None
        return offer.expires_at


def _end_of_term(app: Flask, term_id: int) -> date:
    with app.app_context():
        term = db.session.get(Term, term_id)
        assert term is not None and term.ends_on is not None
        return term.ends_on


# ------------------------------------------------------------------------------------------ API


def test_api_refusals_change_nothing(app: Flask) -> None:
    world = _world(app)
    client = app.test_client()
    holder = bearer(api_token(client, world["holder"]))
    stranger = bearer(api_token(client, world["stranger"]))
    own = bearer(api_token(client, world["s1"]))
    offer = world["offer"]
    changes = f"/api/v1/children/{world['s1_pupil']}/changes"
    today = date.today()
    body = {"days": [2], "pickup_time": "16:30"}
    ends_on = _end_of_term(app, world["term"])

    before = _snapshot(app)
    for path in ("accept", "decline"):  # another family's offer: as if it did not exist
        refused = client.post(f"/api/v1/offers/{offer}/{path}", headers=stranger)
        assert refused.status_code == 404 and refused.get_json()["message"]
    for effective_on in (today - timedelta(days=1), ends_on + timedelta(days=1)):
        refused = client.post(changes, json={**body, "effective_on": effective_on.isoformat()}, headers=own)
        assert refused.status_code == 422, refused.get_json()
        assert refused.get_json()["fields"]["effective_on"]
    assert _snapshot(app) == before

    app.config["NOW"] = _expiry(app, offer) + timedelta(minutes=1)
    try:
        before = _snapshot(app)
        for path in ("accept", "decline"):
            refused = client.post(f"/api/v1/offers/{offer}/{path}", headers=holder)
            assert refused.status_code == 409, refused.get_json()
            assert refused.get_json()["error"] == "offer_closed"
            assert "过期" in refused.get_json()["message"]  # in the family's language: the offer has expired
        assert _snapshot(app) == before
    finally:
        app.config["NOW"] = None


# ------------------------------------------------------------------------------------------ web


def _post(client: FlaskClient, url: str, token: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(url, data={**(data or {}), "csrf_token": token})


def test_web_refusals_change_nothing(app: Flask) -> None:
    world = _world(app)
    offer = world["offer"]
    holder, stranger, own = app.test_client(), app.test_client(), app.test_client()
    sign_in(holder, world["holder"])
    sign_in(stranger, world["stranger"])
    sign_in(own, world["s1"])
    child = f"/family/child/{world['s1_pupil']}"
    change = f"{child}/change"
    base = {"change-days": ["2"], "change-pickup_time": "16:30"}
    ends_on = _end_of_term(app, world["term"])
    tokens = {name: csrf_token(client, "/family/") for name, client in
              (("holder", holder), ("stranger", stranger), ("own", own))}

    before = _snapshot(app)
    for path in ("accept", "decline"):
        assert _post(stranger, f"/family/offers/{offer}/{path}", tokens["stranger"]).status_code == 404
    past = _post(own, change, tokens["own"],
                 {**base, "change-effective_on": (date.today() - timedelta(days=1)).isoformat()})
    assert past.status_code == 422 and "已经过去" in past.get_data(as_text=True)
    late = _post(own, change, tokens["own"],
                 {**base, "change-effective_on": (ends_on + timedelta(days=1)).isoformat()})
    assert late.status_code == 422 and "学期结束" in late.get_data(as_text=True)
    assert _snapshot(app) == before

    app.config["NOW"] = _expiry(app, offer) + timedelta(minutes=1)
    try:
        before = _snapshot(app)
        for path in ("accept", "decline"):
            refused = _post(holder, f"/family/offers/{offer}/{path}", tokens["holder"])
            assert refused.status_code == 409 and "过期" in refused.get_data(as_text=True)
        assert _snapshot(app) == before
    finally:
        app.config["NOW"] = None
