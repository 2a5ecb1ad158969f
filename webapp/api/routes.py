"""JSON API routes. Business rules come from `webapp.parents.service`; this module only speaks HTTP and JSON.

Errors are always `{"error": code, "message": sentence, "fields": {path: sentence}}`: 400 unreadable JSON,
401 missing/invalid token or credentials, 404 not found (including other families' children), 409 a request
the current state forbids (window closed, nothing to withdraw), 415 not JSON, 422 invalid fields.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from flask import g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _

from webapp import accounts
from webapp.allocation import offers, views
from webapp.api.common import (
    ApiError,
    bp,
    iso,
    json_object,
    own_pupil,
    token_required,
    unknown_fields,
)
from webapp.api.openapi import openapi_document
from webapp.audit import record
from webapp.extensions import db
from webapp.hardening import throttle_login
from webapp.models import (
    ApiToken,
    CareRequest,
    ChangeRequest,
    Notification,
    Pupil,
    Term,
    User,
    WaitlistOffer,
)
from webapp.notifications import inbox
from webapp.notifications.messages import render
from webapp.parents import service
from webapp.security import PASSWORD_MAX

REQUEST_KEYS = {"days", "pickup_time", "preferences"}


def _lang() -> str:
    return "en" if str(get_locale() or "zh").startswith("en") else "zh"


@bp.route("/tokens", methods=["POST"])
@throttle_login
def create_token() -> ResponseReturnValue:
    """Phone number and password in, an opaque bearer token out (parents only)."""
    data = json_object()
    fields = unknown_fields(data, {"phone", "password"})
    phone, password = data.get("phone"), data.get("password")
    if not isinstance(phone, str) or not phone.strip() or len(phone) > 32:
        fields["phone"] = _("Enter your mobile phone number.")
    if not isinstance(password, str) or not password or len(password) > PASSWORD_MAX:
        fields["password"] = _("Enter your password.")
    if fields:
        raise ApiError(422, "invalid", _("Some fields are not valid."), fields)
    assert isinstance(phone, str) and isinstance(password, str)
    try:
        issued = accounts.issue_token(phone, password)
    except accounts.BadCredentials:
        raise ApiError(401, "invalid_credentials", _("Wrong phone number or password.")) from None
    return jsonify({"token": issued.token, "token_type": "Bearer",
                    "expires_at": iso(issued.row.expires_at)}), 201


@bp.route("/tokens/current", methods=["DELETE"])
@token_required
def revoke_token() -> ResponseReturnValue:
    row: ApiToken = g.api_token
    row.revoked = True
    record("api.token_revoke", f"user:{row.user_id}", user_id=row.user_id)
    db.session.commit()
    return "", 204


@bp.route("/me")
@token_required
def me() -> ResponseReturnValue:
    user: User = g.api_user
    consent = {"policy_version": user.consent_policy_version, "given_at": iso(user.consent_at)}
    return jsonify({"phone": user.phone, "display_name": user.display_name, "locale": user.locale,
                    "consent": consent})


# ------------------------------------------------------------------------------------------ children


def _term_of(pupil: Pupil) -> Term:
    term = service.current_term(pupil)
    if term is None:
        raise ApiError(404, "no_term", _("The school has not set up a term yet."))
    return term


def _term_json(term: Term | None) -> dict[str, Any] | None:
    if term is None:
        return None
    window = service.window_state(term)
    return {"id": term.id, "name": term.name,
            "window": {"state": window.state, "opens_at": iso(window.opens_at),
                       "closes_at": iso(window.closes_at)},
            "results_date": term.results_date.isoformat() if term.results_date else None,
            "published": service.is_published(term)}


def _child_json(pupil: Pupil) -> dict[str, Any]:
    term = service.current_term(pupil)
    found = service.find_request(pupil, term) if term is not None else None
    return {"id": pupil.id, "name": pupil.name, "grade": pupil.grade, "class_name": pupil.class_name,
            "school": {"code": pupil.school.code, "name": pupil.school.name, "contact": pupil.school.contact or ""},
            "term": _term_json(term),
            "request_status": found.status if found is not None else None}


def _request_json(row: CareRequest, term: Term) -> dict[str, Any]:
    return {"pupil_id": row.pupil_id, "term_id": term.id, "term": term.name, "days": list(row.days),
            "pickup_time": row.pickup_time, "periods": list(row.periods),
            "preferences": list(row.preferences), "status": row.status,
            "submitted_at": iso(row.submitted_at), "updated_at": iso(row.updated_at)}


@bp.route("/children")
@token_required
def children() -> ResponseReturnValue:
    return jsonify({"children": [_child_json(p) for p in service.own_pupils(g.api_user)]})


@bp.route("/children/<int:pupil_id>")
@token_required
def child(pupil_id: int) -> ResponseReturnValue:
    return jsonify(_child_json(own_pupil(pupil_id)))


@bp.route("/children/<int:pupil_id>/options")
@token_required
def options(pupil_id: int) -> ResponseReturnValue:
    """What a request may contain: service days, pickup times and the activities on offer for each."""
    pupil = own_pupil(pupil_id)
    term = _term_of(pupil)
    activities = service.offered_activities(term, pupil.grade)
    pickups = [{"time": t, "periods": service.periods_until(term, t),
                "activities": [a.code for a in service.offered_activities(term, pupil.grade,
                                                                          service.periods_until(term, t))]}
               for t in service.pickup_times(term)]
    offered = [{"code": a.code, "name": a.name, "category": a.category, "description": a.description or ""}
               for a in activities]
    return jsonify({"term": _term_json(term), "days": sorted(term.weekdays), "pickup_times": pickups,
                    "activities": offered,
                    "max_preferences": service.MAX_PREFERENCES})


@bp.route("/children/<int:pupil_id>/request", methods=["GET"])
@token_required
def get_request(pupil_id: int) -> ResponseReturnValue:
    pupil = own_pupil(pupil_id)
    term = _term_of(pupil)
    row = service.find_request(pupil, term)
    if row is None:
        raise ApiError(404, "no_request", _("There is no request for this term yet."))
    return jsonify(_request_json(row, term))


def _request_fields(data: dict[str, Any]) -> tuple[list[int], str, list[str]]:
    fields = unknown_fields(data, REQUEST_KEYS)
    days = data.get("days")
    if isinstance(days, list) and all(type(d) is int or (type(d) is float and d.is_integer()) for d in days):
        days = [int(d) for d in days]  # JSON does not tell 2 from 2.0
    if not isinstance(days, list) or len(days) > 7 or not all(type(d) is int for d in days):
        fields["days"] = _("Give the days as a list of weekday numbers (1 = Monday).")
    pickup = data.get("pickup_time")
    if not isinstance(pickup, str) or len(pickup) > 5:
        fields["pickup_time"] = _("Give the pickup time as HH:MM.")
    preferences = data.get("preferences", [])
    if preferences is None:
        preferences = []
    if not isinstance(preferences, list) or not all(isinstance(p, str) and len(p) <= 64 for p in preferences):
        fields["preferences"] = _("Give the preferences as a list of activity codes.")
    elif len(preferences) > service.MAX_PREFERENCES:
        fields["preferences"] = _("Choose at most %(n)d activities.", n=service.MAX_PREFERENCES)
    if fields:
        raise ApiError(422, "invalid", _("Some fields are not valid."), fields)
    return cast(list[int], days), cast(str, pickup), cast(list[str], preferences)


def _service_error(error: service.RequestError) -> ApiError:
    if error.field == "window":
        return ApiError(409, "window_closed", str(error.message))
    if error.field == "form":
        return ApiError(409, "conflict", str(error.message))
    if error.field == "notice":
        return ApiError(409, "notice_unsigned", _("%(message)s Sign it here: %(link)s", message=str(error.message),
                                                   link=error.link))
    fields: dict[str, str] = {}
    for path, message in error.problems:
        fields.setdefault(path, str(message))
    return ApiError(422, "invalid", _("Some fields are not valid."), fields)


@bp.route("/children/<int:pupil_id>/request", methods=["PUT"])
@token_required
def put_request(pupil_id: int) -> ResponseReturnValue:
    """Create or replace the child's request for the current term (201 created, 200 updated)."""
    data = json_object()
    pupil = own_pupil(pupil_id)  # a stranger's child is 404 whatever the body says
    days, pickup, preferences = _request_fields(data)
    term = _term_of(pupil)
    try:
        row, created = service.store_request(g.api_user, pupil, term, days, pickup, preferences)
    except service.RequestError as error:
        db.session.rollback()
        raise _service_error(error) from None
    return jsonify(_request_json(row, term)), 201 if created else 200


@bp.route("/children/<int:pupil_id>/request", methods=["DELETE"])
@token_required
def delete_request(pupil_id: int) -> ResponseReturnValue:
    """Withdraw the child's request; after publication the child's seats go to the waitlist."""
    pupil = own_pupil(pupil_id)
    term = _term_of(pupil)
    try:
        row = service.withdraw_request(g.api_user, pupil, term)
    except service.RequestError as error:
        db.session.rollback()
        raise _service_error(error) from None
    return jsonify(_request_json(row, term))


@bp.route("/children/<int:pupil_id>/result")
@token_required
def result(pupil_id: int) -> ResponseReturnValue:
    """The published timetable of the child and why requested days are not covered."""
    pupil = own_pupil(pupil_id)
    term = _term_of(pupil)
    fields = unknown_fields(dict(request.args), {"since_version"})
    since = request.args.get("since_version", "0")
    if not since.isdigit() or len(since) > 9:
        fields["since_version"] = _("Give a version number (0 or more).")
    if fields:
        raise ApiError(422, "invalid", _("Some fields are not valid."), fields)
    found = service.child_result(pupil, term, _lang())
    if found is None:
        raise ApiError(404, "not_published", _("Results for this term are not published yet."))
    changes = [{**c, "at": iso(c["at"])}  # type: ignore[arg-type]
               for c in views.pupil_changes(pupil, term, int(since))]
    return jsonify({
        "term": term.name, "run_id": found.run_id, "published_at": iso(found.published_at),
        "plan_version": term.plan_version, "changes": changes,
        "timetable": [{"day": s.day, "start": s.start, "end": s.end, "activity": s.activity, "room": s.room,
                       "teachers": list(s.teachers)} for s in found.timetable],
        "uncovered": [{"day": u.day, "reason": u.reason, "waitlist_position": u.waitlist_position}
                      for u in found.uncovered],
        "requested_days": list(found.requested_days), "covered_days": list(found.covered_days),
    })


# ------------------------------------------------------------------------------------------ notifications


def _page_param(name: str, default: int, maximum: int, fields: dict[str, str]) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        fields[name] = _("Give a whole number from 1 to %(max)d.", max=maximum)
        return default
    return int(raw)


def _notification_json(row: Notification) -> dict[str, Any]:
    message = render(row, _lang())
    return {"id": row.id, "event": row.event, "title": message.title, "body": message.body,
            "pupil_id": row.pupil_id, "term_id": row.term_id, "created_at": iso(row.created_at),
            "read_at": iso(row.read_at)}


@bp.route("/notifications")
@token_required
def notifications() -> ResponseReturnValue:
    """The parent's messages, newest first, a page at a time, with the count of unread ones."""
    fields = unknown_fields(dict(request.args), {"page", "per_page"})
    page = _page_param("page", 1, 100000, fields)
    per_page = _page_param("per_page", inbox.PER_PAGE, inbox.MAX_PER_PAGE, fields)
    if fields:
        raise ApiError(422, "invalid", _("Some fields are not valid."), fields)
    found = inbox.inbox_page(g.api_user.id, page, per_page)
    return jsonify({"notifications": [_notification_json(row) for row in found.items], "page": found.page,
                    "per_page": found.per_page, "total": found.total, "unread": found.unread})


@bp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@token_required
def read_notification(notification_id: int) -> ResponseReturnValue:
    """Mark one of the parent's messages read (again is fine); another account's is 404."""
    row = inbox.mark_read(g.api_user.id, notification_id)
    if row is None:
        raise ApiError(404, "not_found", _("No such message on your account."))
    return jsonify(_notification_json(row))
# ------------------------------------------------------------------------------------------ changes and offers


CHANGE_KEYS = REQUEST_KEYS | {"effective_on", "withdraw"}


def _change_json(row: ChangeRequest) -> dict[str, Any]:
    return {"id": row.id, "pupil_id": row.pupil_id, "effective_on": row.effective_on.isoformat(),
            "withdraw": row.withdraw, "days": list(row.days), "pickup_time": row.pickup_time,
            "preferences": list(row.preferences), "state": row.state}


@bp.route("/children/<int:pupil_id>/changes", methods=["POST"])
@token_required
def post_change(pupil_id: int) -> ResponseReturnValue:
    """Change the published request from a date: withdraw, or new days, pickup time and preferences."""
    data = json_object()
    pupil = own_pupil(pupil_id)
    fields = unknown_fields(data, CHANGE_KEYS)
    withdraw = data.get("withdraw", False)
    if not isinstance(withdraw, bool):
        fields["withdraw"] = _("Give true or false.")
    effective_on = None
    text = data.get("effective_on")
    try:
        effective_on = date.fromisoformat(text) if isinstance(text, str) and len(text) == 10 else None
    except ValueError:
        effective_on = None
    if effective_on is None:
        fields["effective_on"] = _("Give the date as YYYY-MM-DD.")
    days: list[int] = []
    preferences: list[str] = []
    pickup = ""
    if not withdraw and not fields:
        days, pickup, preferences = _request_fields({k: v for k, v in data.items() if k in REQUEST_KEYS})
    if fields:
        raise ApiError(422, "invalid", _("Some fields are not valid."), fields)
    assert effective_on is not None
    term = _term_of(pupil)
    try:
        row = service.change_published_request(g.api_user, pupil, term, effective_on, withdraw=bool(withdraw),
                                               days=days, pickup=pickup, preferences=preferences)
    except service.RequestError as error:
        db.session.rollback()
        raise _service_error(error) from None
    return jsonify(_change_json(row)), 201


def _offer_json(offer: WaitlistOffer) -> dict[str, Any]:
    sessions = [{"id": s.id, "activity": s.activity.name, "start": s.period.start, "end": s.period.end,
                 "room": s.room or ""} for s in views.offer_sessions(offer)]
    return {"id": offer.id, "pupil_id": offer.pupil_id, "day": offer.day, "sessions": sessions,
            "state": offer.state, "offered_at": iso(offer.offered_at), "expires_at": iso(offer.expires_at)}


@bp.route("/offers")
@token_required
def list_offers() -> ResponseReturnValue:
    """Seats offered to the account's children from the waiting list, newest first (open ones to answer)."""
    return jsonify({"offers": [_offer_json(o) for o in offers.offers_for(g.api_user)]})


def _answer(offer_id: int, accept: bool) -> ResponseReturnValue:
    try:
        if accept:
            offers.accept_offer(offer_id, g.api_user)
        else:
            offers.decline_offer(offer_id, g.api_user)
    except offers.OfferNotFound:
        raise ApiError(404, "not_found", _("There is no such offer.")) from None
    except offers.OfferError as error:
        raise ApiError(409, "offer_closed", _(str(error))) from None
    offer = db.session.get(WaitlistOffer, offer_id)
    assert offer is not None
    return jsonify(_offer_json(offer))


@bp.route("/offers/<int:offer_id>/accept", methods=["POST"])
@token_required
def accept_offer(offer_id: int) -> ResponseReturnValue:
    """Take the offered seats: they join the child's timetable as a new plan version."""
    return _answer(offer_id, accept=True)


@bp.route("/offers/<int:offer_id>/decline", methods=["POST"])
@token_required
def decline_offer(offer_id: int) -> ResponseReturnValue:
    """Decline: the day leaves the waiting list and the seat goes to the next family."""
    return _answer(offer_id, accept=False)


@bp.route("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document())
