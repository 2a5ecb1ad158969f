"""Parent pages: home, consent, link a child, the child's request and result, withdraw.

Every child route is 404 to strangers."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from webapp.allocation import offers as offer_service
from webapp.allocation import views
from webapp.daily.notice import unsigned_notice
from webapp.extensions import db
from webapp.family import ConsentMissing, has_consent, link_child, record_consent, unlink_child
from webapp.hardening import throttle_enrolment_codes
from webapp.inputs import safe_next
from webapp.labels import DAY_NAMES, show_date, show_time
from webapp.models import CareRequest, Pupil, Term, clock
from webapp.parents import service
from webapp.parents.forms import ChangeForm, ConsentForm, LinkChildForm, RequestForm, UnlinkForm
from webapp.security import parent_required

bp = Blueprint("parents", __name__, url_prefix="/family")



def _lang() -> str:
    return "en" if str(get_locale() or "zh").startswith("en") else "zh"


@bp.app_context_processor
def _helpers() -> dict[str, object]:
    return {"day_name": lambda day: DAY_NAMES.get(day, str(day)), "show_time": show_time, "show_date": show_date}


def _own_pupil(pupil_id: int) -> Pupil:
    pupil = db.session.get(Pupil, pupil_id)
    try:
        return service.ensure_guardian(current_user, pupil)
    except service.NotYourChild:
        abort(404)


@dataclass
class ChildCard:
    pupil: Pupil
    term: Term | None
    request: CareRequest | None
    window: service.WindowState | None
    result: service.ChildResult | None
    state: str
    """none | submitted | withdrawn | published | no_term | left (the school recorded the pupil as left)"""


def _card(pupil: Pupil) -> ChildCard:
    term = service.current_term(pupil)
    if not pupil.active:
        return ChildCard(pupil, term, None, None, None, "left")
    if term is None:
        return ChildCard(pupil, None, None, None, None, "no_term")
    request = service.find_request(pupil, term)
    result = service.child_result(pupil, term, _lang())
    if request is None:
        state = "none"
    elif request.status == "withdrawn":
        state = "withdrawn"
    elif result is not None:
        state = "published"
    else:
        state = "submitted"
    return ChildCard(pupil, term, request, service.window_state(term), result, state)


@bp.route("/")
@parent_required
def home() -> ResponseReturnValue:
    pupils = sorted(current_user.pupils, key=lambda p: (p.school_id, p.grade, p.name))
    return render_template("parents/home.html", cards=[_card(p) for p in pupils])


def _to_consent() -> ResponseReturnValue:
    flash(_("Before you link a child, please agree to the data policy."), "info")
    return redirect(url_for("parents.consent", next=url_for("parents.link")))


@bp.route("/consent", methods=["GET", "POST"])
@parent_required
def consent() -> ResponseReturnValue:
    """The guardian's consent (policy version, time), for accounts that have none recorded yet."""
    target = safe_next(request.args.get("next"), url_for("parents.home"))
    form = ConsentForm()
    if form.validate_on_submit():
        record_consent(current_user)
        db.session.commit()
        flash(_("Thank you. Your consent has been recorded."), "success")
        return redirect(target)
    if not form.is_submitted() and has_consent(current_user):
        return redirect(target)
    return render_template("parents/consent.html", form=form,
                           policy_version=current_app.config["CONSENT_POLICY_VERSION"])


@bp.route("/link", methods=["GET", "POST"])
@parent_required
@throttle_enrolment_codes
def link() -> ResponseReturnValue:
    if not has_consent(current_user):
        return _to_consent()
    form = LinkChildForm()
    if form.validate_on_submit():
        try:
            pupil = link_child(current_user, form.school_code.data or "", form.pupil_number.data or "",
                               form.enrolment_code.data or "", relation=form.relation.data or "")
        except ConsentMissing:
            return _to_consent()
        if pupil is None:
            flash(_("The details do not match. Please check them and try again."), "error")
        else:
            flash(_("%(name)s is now linked to your account.", name=pupil.name), "success")
            return redirect(url_for("parents.child", pupil_id=pupil.id))
    return render_template("parents/link.html", form=form)


def _fill_choices(form: RequestForm, pupil: Pupil, term: Term) -> dict[str, list[str]]:
    """Set the form's choices; return, per pickup time, the activity codes a preference may name."""
    form.days.choices = [SelectChoice(str(d), str(DAY_NAMES.get(d, d))) for d in sorted(term.weekdays)]
    times = service.pickup_times(term)
    form.pickup_time.choices = [SelectChoice("", _("Choose…"))] + [SelectChoice(t, t) for t in times]
    activities = service.offered_activities(term, pupil.grade)
    options = [SelectChoice("", _("No preference"))] + [SelectChoice(a.code, a.name) for a in activities]
    for select in form.preference_fields:
        select.choices = list(options)
    return {t: [a.code for a in service.offered_activities(term, pupil.grade, service.periods_until(term, t))]
            for t in times}


def _attach_errors(form: RequestForm, error: service.RequestError) -> None:
    for path, message in error.problems:
        target = None
        if path in ("days", "pickup_time"):
            target = getattr(form, path)
        elif path.startswith("preferences["):
            index = int(path[len("preferences["):-1])
            target = form.preference_fields[index] if index < len(form.preference_fields) else None
        elif path == "preferences":
            target = form.pref1
        if target is not None:
            target.errors = [*target.errors, str(message)]
        elif path == "notice":
            pass  # the page shows the sentence with its link (`notice_due`)
        else:
            flash(str(message), "error")


@bp.route("/child/<int:pupil_id>", methods=["GET", "POST"])
@parent_required
def child(pupil_id: int) -> ResponseReturnValue:
    pupil = _own_pupil(pupil_id)
    card = _card(pupil)
    term = card.term
    form = RequestForm()
    if term is None or card.state == "left":
        return render_template("parents/child.html", card=card, form=None, pupil=pupil)

    request = card.request
    if not form.is_submitted() and request is not None and request.status == "active":
        form.days.data = [str(d) for d in request.days]
        form.pickup_time.data = request.pickup_time
        for select, code in zip(form.preference_fields, request.preferences, strict=False):
            select.data = code
    offers = _fill_choices(form, pupil, term)
    if request is not None and request.status == "active":
        form.submit.label.text = _("Save changes")

    if form.validate_on_submit():
        try:
            saved = service.save_request(
                current_user, pupil, term, form.days.data or [], form.pickup_time.data,
                [f.data for f in form.preference_fields],
            )
        except service.RequestError as error:
            _attach_errors(form, error)
        else:
            updated = request is not None and request.status == "active"
            flash(_("Your request has been updated.") if updated else _("Your request has been submitted."),
                  "success")
            return redirect(url_for("parents.child", pupil_id=saved.pupil_id))
    names = {a.code: a.name for a in term.activities}
    described = [a for a in service.offered_activities(term, pupil.grade) if a.description]
    published = card.state == "published" and request is not None and request.status == "active"
    change_form = _change_form(pupil, term, request) if published else None
    open_offers = views.open_offers(pupil, offer_service.offers_for(current_user)) if published else []
    return render_template("parents/child.html", card=card, form=form, pupil=pupil, offers=offers,
                           notice_due=unsigned_notice(pupil, term), activity_names=names,
                           editable=card.window is not None and card.window.is_open,
                           change_form=change_form, open_offers=open_offers, offer_sessions=views.offer_sessions,
                           described_activities=described)


def _change_form(pupil: Pupil, term: Term, request: CareRequest | None) -> ChangeForm:
    form = ChangeForm(prefix="change")
    _fill_choices(form, pupil, term)
    if not form.is_submitted():
        form.effective_on.data = clock().date()
        if request is not None:
            form.days.data = [str(d) for d in request.days]
            form.pickup_time.data = request.pickup_time
            for select, code in zip(form.preference_fields, request.preferences, strict=False):
                select.data = code
    return form


@bp.route("/child/<int:pupil_id>/change", methods=["POST"])
@parent_required
def change(pupil_id: int) -> ResponseReturnValue:
    """A change to the published request from a date (days, pickup, activities, or withdrawing)."""
    pupil = _own_pupil(pupil_id)
    term = service.current_term(pupil)
    if term is None:
        abort(404)
    form = _change_form(pupil, term, service.find_request(pupil, term))
    if form.validate_on_submit():
        assert form.effective_on.data is not None
        try:
            service.change_published_request(
                current_user, pupil, term, form.effective_on.data, withdraw=bool(form.withdraw.data),
                days=form.days.data or [], pickup=form.pickup_time.data,
                preferences=[f.data for f in form.preference_fields])
        except service.RequestError as error:
            for _path, message in error.problems:
                flash(str(message), "error")
        else:
            flash(_("Your change is recorded. It applies from %(date)s.", date=show_date(form.effective_on.data)),
                  "success")
            return redirect(url_for("parents.child", pupil_id=pupil.id))
    else:
        for errors in form.errors.values():
            for message in errors:
                flash(str(message), "error")
    return render_template("parents/change_refused.html", pupil=pupil), 422


@bp.route("/offers/<int:offer_id>/accept", methods=["POST"])
@parent_required
def accept_offer(offer_id: int) -> ResponseReturnValue:
    try:
        offer = offer_service.find_offer(offer_id, current_user)
        offer_service.accept_offer(offer_id, current_user)
    except offer_service.OfferNotFound:
        abort(404)
    except offer_service.OfferError as error:
        return render_template("parents/offer_closed.html", message=_(str(error)), pupil_id=offer.pupil_id), 409
    flash(_("The seat is yours. Your child's timetable now includes it."), "success")
    return redirect(url_for("parents.child", pupil_id=offer.pupil_id))


@bp.route("/offers/<int:offer_id>/decline", methods=["GET", "POST"])
@parent_required
def decline_offer(offer_id: int) -> ResponseReturnValue:
    """GET: ask to confirm; POST: decline (the day leaves the waiting list, the seat goes to the next family)."""
    try:
        offer = offer_service.find_offer(offer_id, current_user)
    except offer_service.OfferNotFound:
        abort(404)
    if request.method == "GET":
        return render_template("parents/decline.html", offer=offer, sessions=views.offer_sessions(offer))
    try:
        offer_service.decline_offer(offer_id, current_user)
    except offer_service.OfferNotFound:
        abort(404)
    except offer_service.OfferError as error:
        return render_template("parents/offer_closed.html", message=_(str(error)), pupil_id=offer.pupil_id), 409
    flash(_("You declined the offer. The day has left the waiting list."), "success")
    return redirect(url_for("parents.child", pupil_id=offer.pupil_id))


@bp.route("/child/<int:pupil_id>/withdraw", methods=["POST"])
@parent_required
def withdraw(pupil_id: int) -> ResponseReturnValue:
    pupil = _own_pupil(pupil_id)
    term = service.current_term(pupil)
    if term is None:
        abort(404)
    if request.form.get("confirmed") != "1":  # the child page's button leads to this confirmation step
        return render_template("parents/withdraw_confirm.html", pupil=pupil, term=term,
                               published=term.published_run_id is not None)
    try:
        service.withdraw_request(current_user, pupil, term)
    except service.RequestError as error:
        flash(str(error.message), "error")
    else:
        flash(_("Your request has been withdrawn."), "success")
    return redirect(url_for("parents.child", pupil_id=pupil_id))



@bp.route("/child/<int:pupil_id>/unlink", methods=["GET", "POST"])
@parent_required
def unlink(pupil_id: int) -> ResponseReturnValue:
    """GET: what unlinking does (the request stays with the school); POST: unlink and go home."""
    pupil = _own_pupil(pupil_id)
    form = UnlinkForm()
    if form.validate_on_submit():
        unlink_child(current_user, pupil)
        flash(_("%(name)s is no longer linked to your account.", name=pupil.name), "success")
        return redirect(url_for("parents.home"))
    term = service.current_term(pupil)
    request_row = service.find_request(pupil, term) if term is not None else None
    active = request_row is not None and request_row.status == "active"
    return render_template("parents/unlink.html", pupil=pupil, form=form, active_request=active)
