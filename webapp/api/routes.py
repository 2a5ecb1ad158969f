"""JSON API routes. Business rules come from `webapp.parents.service`; this module only speaks HTTP and JSON.

Errors are always `{"error": code, "message": sentence, "fields": {path: sentence}}`: 400 unreadable JSON,
401 missing/invalid token or credentials, 404 not found (including other families' children), 409 a request
the current state forbids (window closed, nothing to withdraw), 415 not JSON, 422 invalid fields.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import AnonymousUserMixin
from sqlalchemy import select

from webapp import accounts
from webapp.accounts import hash_token as hash_token
from webapp.allocation import offers, views
from webapp.api.openapi import openapi_document
from webapp.audit import record
from webapp.extensions import csrf, db
from webapp.hardening import json_error, throttle_login
from webapp.inputs import MAX_JSON_BYTES
from webapp.models import (
    ApiToken,
    CareRequest,
    ChangeRequest,
    Notification,
    Pupil,
    Term,
    User,
    WaitlistOffer,
    utcnow,
)
from webapp.notifications import inbox
from webapp.notifications.messages import render
from webapp.parents import service
from webapp.security import PASSWORD_MAX

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

F = TypeVar("F", bound=Callable[..., Any])

LAST_USED_EVERY = timedelta(minutes=10)
REQUEST_KEYS = {"days", "pickup_time", "preferences"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Response:
    return json_error(error.status, error.code, error.message, error.fields)


def _iso(value: datetime | None) -> str | None:
    """Naive UTC as RFC 3339 with a Z."""
    return value.replace(microsecond=0).isoformat() + "Z" if value is not None else None


def _lang() -> str:
    return "en" if str(get_locale() or "zh").startswith("en") else "zh"


# ------------------------------------------------------------------------------------------ tokens


def user_for_token(token: str) -> tuple[User, ApiToken] | None:
    if not token or len(token) > 200:
        return None
    found = db.session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(token))
    ).first()
    if found is None:
        return None
    row, user = found
    if row.revoked or row.expires_at <= utcnow() or not user.active or user.role != "parent":
        return None
    return user, row


@bp.before_request
def _authenticate() -> None:
    """The bearer token is the only credential here: a browser session cookie is ignored."""
    g._login_user = AnonymousUserMixin()
    g.api_user = None
    g.api_token = None
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return
    found = user_for_token(token.strip())
    if found is None:
        return
    user, row = found
    g.api_user, g.api_token, g._login_user = user, row, user
    if row.last_used_at is None or utcnow() - row.last_used_at > LAST_USED_EVERY:
        row.last_used_at = utcnow()
        db.session.commit()


def token_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("api_user") is None:
            raise ApiError(401, "unauthorized", _("Sign in again: the token is missing, expired or revoked."))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def _json_object() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", _("Send the request body as JSON."))
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", _("The request body is larger than %(kb)d KB.", kb=MAX_JSON_BYTES // 1024))
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "bad_json", _("The request body is not valid JSON."))
    if not isinstance(data, dict):
        raise ApiError(422, "invalid", _("The request body must be a JSON object."))
    return data


def _unknown_fields(data: dict[str, Any], allowed: set[str]) -> dict[str, str]:
    return {str(key)[:64]: _("Unknown field.") for key in data if key not in allowed}


@bp.route("/tokens", methods=["POST"])
@throttle_login
def create_token() -> ResponseReturnValue:
    """Phone number and password in, an opaque bearer token out (parents only)."""
    data = _json_object()
    fields = _unknown_fields(data, {"phone", "password"})
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
                    "expires_at": _iso(issued.row.expires_at)}), 201


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
    consent = {"policy_version": user.consent_policy_version, "given_at": _iso(user.consent_at)}
    return jsonify({"phone": user.phone, "display_name": user.display_name, "locale": user.locale,
                    "consent": consent})


# ------------------------------------------------------------------------------------------ children


def _own_pupil(pupil_id: int) -> Pupil:
    try:
        return service.own_pupil(g.api_user, pupil_id)
    except service.NotYourChild:
        raise ApiError(404, "not_found", _("No such child on your account.")) from None


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
            "window": {"state": window.state, "opens_at": _iso(window.opens_at),
                       "closes_at": _iso(window.closes_at)},
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
            "submitted_at": _iso(row.submitted_at), "updated_at": _iso(row.updated_at)}


@bp.route("/children")
@token_required
def children() -> ResponseReturnValue:
    return jsonify({"children": [_child_json(p) for p in service.own_pupils(g.api_user)]})


@bp.route("/children/<int:pupil_id>")
@token_required
def child(pupil_id: int) -> ResponseReturnValue:
    return jsonify(_child_json(_own_pupil(pupil_id)))


@bp.route("/children/<int:pupil_id>/options")
@token_required
def options(pupil_id: int) -> ResponseReturnValue:
    """What a request may contain: service days, pickup times and the activities on offer for each."""
    pupil = _own_pupil(pupil_id)
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
    pupil = _own_pupil(pupil_id)
    term = _term_of(pupil)
    row = service.find_request(pupil, term)
    if row is None:
        raise ApiError(404, "no_request", _("There is no request for this term yet."))
    return jsonify(_request_json(row, term))


def _request_fields(data: dict[str, Any]) -> tuple[list[int], str, list[str]]:
    fields = _unknown_fields(data, REQUEST_KEYS)
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
    data = _json_object()
    pupil = _own_pupil(pupil_id)  # a stranger's child is 404 whatever the body says
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
    pupil = _own_pupil(pupil_id)
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
    pupil = _own_pupil(pupil_id)
    term = _term_of(pupil)
    since = request.args.get("since_version", "0")
    if not since.isdigit() or len(since) > 9:
        raise ApiError(422, "invalid", _("Some fields are not valid."),
                       {"since_version": _("Give a version number (0 or more).")})
    found = service.child_result(pupil, term, _lang())
    if found is None:
        raise ApiError(404, "not_published", _("Results for this term are not published yet."))
    changes = [{**c, "at": _iso(c["at"])}  # type: ignore[arg-type]
               for c in views.pupil_changes(pupil, term, int(since))]
    return jsonify({
        "term": term.name, "run_id": found.run_id, "published_at": _iso(found.published_at),
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
            "pupil_id": row.pupil_id, "term_id": row.term_id, "created_at": _iso(row.created_at),
            "read_at": _iso(row.read_at)}


@bp.route("/notifications")
@token_required
def notifications() -> ResponseReturnValue:
    """The parent's messages, newest first, a page at a time, with the count of unread ones."""
    fields = _unknown_fields(dict(request.args), {"page", "per_page"})
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
    data = _json_object()
    pupil = _own_pupil(pupil_id)
    fields = _unknown_fields(data, CHANGE_KEYS)
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
    pickup, preferences = "", []
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
            "state": offer.state, "offered_at": _iso(offer.offered_at), "expires_at": _iso(offer.expires_at)}


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
