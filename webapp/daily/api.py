"""The daily service in the parents' JSON API (`/api/v1`): attendance, absences, pickup persons, delegates.

Registered on the API blueprint, so the bearer-token authentication and the error shape of
`webapp.api.common` apply unchanged: 404 for another family's child, 409 for what the rules refuse now
(after the cutoff, no service on the date), 422 for invalid fields.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from webapp.api.common import ApiError, bp, iso, json_object, own_pupil, token_required, unknown_fields
from webapp.daily import notice, service
from webapp.daily.attendance import MAX_RANGE_DAYS, ChildDay, child_days
from webapp.daily.forms import clean_person
from webapp.extensions import db
from webapp.models import Absence, PickupPerson, ServiceNotice
from webapp.parents.service import current_term


def _date(value: object) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _daily_error(error: service.DailyError) -> ApiError:
    return ApiError(error.status, error.code, _(error.message, **error.params))


def _day_json(day: ChildDay) -> dict[str, Any]:
    return {"date": day.on.isoformat(), "status": day.status,
            "sessions": [{"session_id": s.session_id, "activity": s.activity, "start": s.start, "end": s.end,
                          "room": s.room} for s in day.sessions],
            "checked_in_at": iso(day.checked_in_at), "picked_up_at": iso(day.picked_up_at),
            "picked_up_by": day.picked_up_by}


def _absence_json(row: Absence) -> dict[str, Any]:
    return {"id": row.id, "date": row.first_day.isoformat(), "until": row.last_day.isoformat(),
            "reason": row.reason, "created_at": iso(row.created_at), "cancelled_at": iso(row.cancelled_at)}


def _person_json(row: PickupPerson) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "relation": row.relation, "phone": row.phone}


@bp.route("/children/<int:pupil_id>/attendance")
@token_required
def attendance(pupil_id: int) -> ResponseReturnValue:
    """The child's days from `from` to `to` (inclusive, at most 62 days): planned, reported, marked, collected."""
    pupil = own_pupil(pupil_id)
    fields = unknown_fields(dict(request.args), {"from", "to"})
    first, last = _date(request.args.get("from")), _date(request.args.get("to"))
    if first is None:
        fields["from"] = _("Give the date as YYYY-MM-DD.")
    if last is None:
        fields["to"] = _("Give the date as YYYY-MM-DD.")
    if first is not None and last is not None and not 0 <= (last - first).days < MAX_RANGE_DAYS:
        fields["to"] = _("Give a date on or after the first date, at most %(n)d days later.", n=MAX_RANGE_DAYS - 1)
    if fields:
        raise ApiError(422, "invalid", _("Some fields are not valid."), fields)
    assert first is not None and last is not None
    return jsonify({"days": [_day_json(day) for day in child_days(pupil, first, last)]})


@bp.route("/children/<int:pupil_id>/absences", methods=["POST"])
@token_required
def post_absence(pupil_id: int) -> ResponseReturnValue:
    """Report an absence for a date or a range (201); the same report again answers 200 with the same row."""
    data = json_object()
    pupil = own_pupil(pupil_id)
    fields = unknown_fields(data, {"date", "until", "reason"})
    first = _date(data.get("date"))
    if first is None:
        fields["date"] = _("Give the date as YYYY-MM-DD.")
    until = data.get("until")
    last = _date(until) if until is not None else None
    if until is not None and last is None:
        fields["until"] = _("Give the date as YYYY-MM-DD.")
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 200:
        fields["reason"] = _("Give a reason of at most 200 characters.")
    if fields:
        raise ApiError(422, "invalid", _("Some fields are not valid."), fields)
    assert first is not None and isinstance(reason, str)
    try:
        reported = service.report_absence(g.api_user, pupil, first, last, reason)
    except service.DailyError as error:
        raise _daily_error(error) from None
    return jsonify(_absence_json(reported.absence)), 201 if reported.created else 200


@bp.route("/children/<int:pupil_id>/absences/<int:absence_id>", methods=["DELETE"])
@token_required
def delete_absence(pupil_id: int, absence_id: int) -> ResponseReturnValue:
    """Cancel a reported absence before the cutoff of its first day."""
    pupil = own_pupil(pupil_id)
    try:
        row = service.cancel_absence(g.api_user, pupil, absence_id)
    except service.DailyError as error:
        raise _daily_error(error) from None
    return jsonify(_absence_json(row))


@bp.route("/children/<int:pupil_id>/pickup-persons", methods=["GET"])
@token_required
def list_pickup_persons(pupil_id: int) -> ResponseReturnValue:
    pupil = own_pupil(pupil_id)
    return jsonify({"pickup_persons": [_person_json(p) for p in service.pickup_persons(pupil)]})


@bp.route("/children/<int:pupil_id>/pickup-persons", methods=["POST"])
@token_required
def post_pickup_person(pupil_id: int) -> ResponseReturnValue:
    """Authorise an adult to collect the child: name, relation and a mainland mobile number."""
    data = json_object()
    pupil = own_pupil(pupil_id)
    fields = unknown_fields(data, {"name", "relation", "phone"})
    values = {key: data.get(key) for key in ("name", "relation", "phone")}
    cleaned, problems = clean_person(values)
    fields.update({key: str(message) for key, message in problems.items()})
    if fields:
        raise ApiError(422, "invalid", _("Some fields are not valid."), fields)
    try:
        person = service.add_pickup_person(g.api_user, pupil, **cleaned)
    except service.DailyError as error:
        raise _daily_error(error) from None
    return jsonify(_person_json(person)), 201


@bp.route("/children/<int:pupil_id>/pickup-persons/<int:person_id>", methods=["DELETE"])
@token_required
def delete_pickup_person(pupil_id: int, person_id: int) -> ResponseReturnValue:
    pupil = own_pupil(pupil_id)
    try:
        service.remove_pickup_person(g.api_user, pupil, person_id)
    except service.DailyError as error:
        raise _daily_error(error) from None
    return "", 204


@bp.route("/children/<int:pupil_id>/delegates", methods=["POST"])
@token_required
def post_delegate(pupil_id: int) -> ResponseReturnValue:
    """A one-off person for one date; the answer holds the single-use code, shown this once only."""
    data = json_object()
    pupil = own_pupil(pupil_id)
    fields = unknown_fields(data, {"name", "date"})
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 50:
        fields["name"] = _("Give a name of at most 50 characters.")
    valid_on = _date(data.get("date"))
    if valid_on is None:
        fields["date"] = _("Give the date as YYYY-MM-DD.")
    if fields:
        raise ApiError(422, "invalid", _("Some fields are not valid."), fields)
    assert isinstance(name, str) and valid_on is not None
    try:
        issued = service.create_delegate(g.api_user, pupil, name.strip(), valid_on)
    except service.DailyError as error:
        raise _daily_error(error) from None
    return jsonify({"id": issued.delegate.id, "name": issued.delegate.name,
                    "date": issued.delegate.valid_on.isoformat(), "code": issued.code}), 201


def _notice_json(pupil_id: int, term_id: int | None) -> dict[str, Any]:
    current = notice.notice_in_force(term_id) if term_id is not None else None
    signature = notice.signature_of(current, pupil_id) if current is not None else None
    return {"notice": None if current is None else {
        "id": current.id, "version": current.version, "title": current.title, "content": current.content,
        "hours": current.hours, "safety": current.safety, "published_at": iso(current.published_at)},
        "signed_at": iso(signature.signed_at) if signature is not None else None}


@bp.route("/children/<int:pupil_id>/notice")
@token_required
def get_notice(pupil_id: int) -> ResponseReturnValue:
    """The school's service notice in force for the child's term (or null), and when it was signed (or null)."""
    pupil = own_pupil(pupil_id)
    term = current_term(pupil)
    return jsonify(_notice_json(pupil.id, term.id if term is not None else None))


@bp.route("/children/<int:pupil_id>/notice", methods=["POST"])
@token_required
def post_notice(pupil_id: int) -> ResponseReturnValue:
    """Sign the version shown (`notice_id`, with `agree: true`): 201 signed, 200 already signed."""
    data = json_object()
    pupil = own_pupil(pupil_id)
    fields = unknown_fields(data, {"notice_id", "agree"})
    notice_id = data.get("notice_id")
    if not isinstance(notice_id, int) or isinstance(notice_id, bool) or not 0 < notice_id < 2**31:
        fields["notice_id"] = _("Give the id of the notice shown.")
    if data.get("agree") is not True:
        fields["agree"] = _("Agree to the notice to sign it (agree: true).")
    if fields:
        raise ApiError(422, "invalid", _("Some fields are not valid."), fields)
    assert isinstance(notice_id, int)
    try:
        signed, created = notice.sign_notice(g.api_user, pupil, notice_id)
    except service.DailyError as error:
        raise _daily_error(error) from None
    term_id = db.session.get(ServiceNotice, signed.notice_id).term_id  # type: ignore[union-attr]
    return jsonify(_notice_json(pupil.id, term_id)), 201 if created else 200
