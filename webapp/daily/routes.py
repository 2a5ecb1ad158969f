"""Pages of the daily service: the family's absences, pickup persons and one-off delegates (phone pages).

Views parse the form, call one function of `webapp.daily.service` and redirect; a refusal is flashed in the
user's language and nothing is written (the service audits the attempt where the rules ask for it).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from webapp.daily import service
from webapp.daily.attendance import child_days
from webapp.daily.forms import AbsenceForm, DelegateForm, PickupPersonForm, clean_person
from webapp.models import Pupil
from webapp.parents import service as parents
from webapp.security import parent_required

bp = Blueprint("daily", __name__, url_prefix="/daily")

UPCOMING_DAYS = 14


def _own(pupil_id: int) -> Pupil:
    try:
        return parents.own_pupil(current_user, pupil_id)
    except parents.NotYourChild:
        abort(404)


def _child_page(pupil: Pupil, *, absence: AbsenceForm | None = None, person: PickupPersonForm | None = None,
                delegate: DelegateForm | None = None) -> ResponseReturnValue:
    today = service.today()
    absences = service.absences_of(pupil, today)
    return render_template(
        "daily/child.html", pupil=pupil, days=child_days(pupil, today, today + timedelta(days=UPCOMING_DAYS - 1)),
        absences=[(a, service.can_cancel(a)) for a in absences], persons=service.pickup_persons(pupil),
        cutoff=service.absence_cutoff(pupil, today),
        absence_form=absence or AbsenceForm(formdata=None, first_day=today),
        person_form=person or PickupPersonForm(formdata=None),
        delegate_form=delegate or DelegateForm(formdata=None, valid_on=today))


def _refused(error: service.DailyError) -> None:
    flash(_(error.message, **error.params), "error")


@bp.route("/children/<int:pupil_id>")
@parent_required
def child(pupil_id: int) -> ResponseReturnValue:
    return _child_page(_own(pupil_id))


@bp.route("/children/<int:pupil_id>/absences", methods=["POST"])
@parent_required
def report_absence(pupil_id: int) -> ResponseReturnValue:
    pupil = _own(pupil_id)
    form = AbsenceForm()
    if not form.validate_on_submit():
        return _child_page(pupil, absence=form), 422
    try:
        reported = service.report_absence(current_user, pupil, form.first_day.data, form.last_day.data,
                                          form.reason.data or "")
    except service.DailyError as error:
        _refused(error)
    else:
        flash(_("The absence is recorded.") if reported.created else _("This absence was already recorded."),
              "success")
    return redirect(url_for("daily.child", pupil_id=pupil.id))


@bp.route("/children/<int:pupil_id>/absences/<int:absence_id>/cancel", methods=["POST"])
@parent_required
def cancel_absence(pupil_id: int, absence_id: int) -> ResponseReturnValue:
    pupil = _own(pupil_id)
    if service.pupil_absence(pupil, absence_id) is None:
        abort(404)
    try:
        service.cancel_absence(current_user, pupil, absence_id)
    except service.DailyError as error:
        _refused(error)
    else:
        flash(_("The absence is cancelled."), "success")
    return redirect(url_for("daily.child", pupil_id=pupil.id))


@bp.route("/children/<int:pupil_id>/pickup-persons", methods=["POST"])
@parent_required
def add_pickup_person(pupil_id: int) -> ResponseReturnValue:
    pupil = _own(pupil_id)
    form = PickupPersonForm()
    if not form.validate_on_submit():
        return _child_page(pupil, person=form), 422
    cleaned, problems = clean_person({"name": form.name.data, "relation": form.relation.data,
                                      "phone": form.phone.data})
    if problems:
        for key, message in problems.items():
            getattr(form, key).errors = [message]
        return _child_page(pupil, person=form), 422
    try:
        service.add_pickup_person(current_user, pupil, **cleaned)
    except service.DailyError as error:
        _refused(error)
    else:
        flash(_("%(name)s may now collect your child.", name=cleaned["name"]), "success")
    return redirect(url_for("daily.child", pupil_id=pupil.id))


@bp.route("/children/<int:pupil_id>/pickup-persons/<int:person_id>/remove", methods=["POST"])
@parent_required
def remove_pickup_person(pupil_id: int, person_id: int) -> ResponseReturnValue:
    pupil = _own(pupil_id)
    try:
        service.remove_pickup_person(current_user, pupil, person_id)
    except service.DailyError:
        abort(404)
    flash(_("The pickup person is removed."), "success")
    return redirect(url_for("daily.child", pupil_id=pupil.id))


@bp.route("/children/<int:pupil_id>/delegates", methods=["POST"])
@parent_required
def create_delegate(pupil_id: int) -> ResponseReturnValue:
    """Show the one-off code once: it is not stored in readable form and cannot be shown again."""
    pupil = _own(pupil_id)
    form = DelegateForm()
    if not form.validate_on_submit():
        return _child_page(pupil, delegate=form), 422
    name = (form.name.data or "").strip()
    try:
        issued = service.create_delegate(current_user, pupil, name, form.valid_on.data)
    except service.DailyError as error:
        _refused(error)
        return redirect(url_for("daily.child", pupil_id=pupil.id))
    return render_template("daily/delegate_code.html", pupil=pupil, issued=issued)
