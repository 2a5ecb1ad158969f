"""A pupil's page for the school admin: placement in the plan in force, waitlist places, whether a family has
linked; placing a waitlisted pupil-day by hand, and recording that the pupil left the school (办理离校) or is
back on the roll, each through the allocation service after a confirmation step."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from webapp.admin.forms import LeaveForm, PlaceForm
from webapp.admin.routes import bp
from webapp.admin.scope import admin_view, mask_phone, own_pupil
from webapp.admin.tags import pupil_groups_context
from webapp.allocation import service as allocation
from webapp.allocation.waitlist import WaitlistEntry, waitlist
from webapp.extensions import db
from webapp.inputs import int_arg
from webapp.models import Activity, CareRequest, Period, Pupil, RunAssignment, Session, Term


@dataclass(frozen=True)
class Seat:
    session: Session
    activity: Activity
    period: Period


def placement(term: Term, pupil: Pupil) -> list[Seat]:
    """The pupil's seats in the term's plan in force, by day and period (empty before publication)."""
    run = term.published_run
    if run is None or not run.is_published:
        return []
    rows = db.session.execute(
        select(Session, Activity, Period).join(RunAssignment, RunAssignment.session_id == Session.id)
        .join(Activity, Activity.id == Session.activity_id).join(Period, Period.id == Session.period_id)
        .where(RunAssignment.run_id == run.id, RunAssignment.pupil_id == pupil.id)).all()
    return sorted((Seat(*row) for row in rows), key=lambda seat: (seat.session.day, seat.period.position))


def waiting(term: Term, pupil: Pupil) -> list[WaitlistEntry]:
    """The pupil's uncovered days in the plan in force, with their places in the waitlist."""
    if term.published_run_id is None:
        return []
    return [entry for entry in waitlist(term) if entry.pupil.id == pupil.id]


@bp.route("/pupils/<int:pupil_id>")
@admin_view
def pupil_detail(pupil_id: int) -> ResponseReturnValue:
    pupil = own_pupil(pupil_id)
    term: Term | None = g.term
    care_request = None
    if term is not None:
        care_request = db.session.scalar(select(CareRequest).where(
            CareRequest.term_id == term.id, CareRequest.pupil_id == pupil.id))
    guardians = [{"name": link.user.display_name, "relation": link.relation,
                  "phone": mask_phone(link.user.phone), "user_id": link.user_id}
                 for link in pupil.guardianships]
    return render_template("admin/pupil.html", pupil=pupil, guardians=guardians, care_request=care_request,
                           term=term, seats=placement(term, pupil) if term else [],
                           waiting=waiting(term, pupil) if term else [],
                           **pupil_groups_context(pupil))


@bp.route("/pupils/<int:pupil_id>/place", methods=["GET", "POST"])
@admin_view
def place_pupil(pupil_id: int) -> ResponseReturnValue:
    """GET `?day=`: the confirmation step; POST with `confirmed` and a reason: place through the service."""
    pupil = own_pupil(pupil_id)
    term: Term | None = g.term
    day = int_arg("day")
    entry = next((e for e in waiting(term, pupil) if e.day == day), None) if term is not None else None
    if term is None or entry is None:
        abort(404)
    form = PlaceForm()
    if request.method == "POST" and form.validate_on_submit() and form.confirmed.data == "1":
        try:
            allocation.place_from_waitlist(term, pupil.id, entry.day, actor=current_user,
                                           reason=form.reason.data)
        except allocation.RuleBroken as exc:
            flash(_(str(exc)) + " " + "; ".join(exc.problems), "error")
        except allocation.AllocationError as exc:
            flash(_(str(exc)), "error")
        else:
            flash(_("%(name)s is placed; the family is told.", name=pupil.name), "success")
        return redirect(url_for("admin.pupil_detail", pupil_id=pupil.id))
    return render_template("admin/place.html", pupil=pupil, entry=entry, form=form, term=term)


@bp.route("/pupils/<int:pupil_id>/leave", methods=["GET", "POST"])
@admin_view
def pupil_leave(pupil_id: int) -> ResponseReturnValue:
    """GET: what leaving takes away; POST with `confirmed`: record it through the allocation service."""
    pupil = own_pupil(pupil_id)
    term: Term | None = g.term
    if not pupil.active:
        return redirect(url_for("admin.pupil_detail", pupil_id=pupil.id))
    form = LeaveForm()
    if request.method == "POST" and form.validate_on_submit() and form.confirmed.data == "1":
        try:
            change = allocation.pupil_leaves(term, pupil, actor=current_user, reason=form.reason.data or "")
        except allocation.RuleBroken as exc:
            flash(_(str(exc)) + " " + "; ".join(exc.problems), "error")
        except allocation.AllocationError as exc:
            flash(_(str(exc)), "error")
        else:
            if change.published:
                flash(_("%(name)s is recorded as having left the school: %(n)d seats were withdrawn and offered "
                        "to the waitlist, and the family is told.", name=pupil.name, n=len(change.lost)),
                      "success")
            else:
                flash(_("%(name)s is recorded as having left the school and will not be in the next allocation "
                        "run.", name=pupil.name), "success")
        return redirect(url_for("admin.pupil_detail", pupil_id=pupil.id))
    published = term is not None and term.published_run_id is not None
    return render_template("admin/leave.html", pupil=pupil, form=form, term=term, published=published,
                           seats=placement(term, pupil) if term else [],
                           waiting=waiting(term, pupil) if term else [])


@bp.route("/pupils/<int:pupil_id>/return", methods=["POST"])
@admin_view
def pupil_return(pupil_id: int) -> ResponseReturnValue:
    """Put a pupil recorded as having left back on the roll (the seats given up do not come back)."""
    pupil = own_pupil(pupil_id)
    try:
        allocation.pupil_returns(g.term, pupil, actor=current_user)
    except allocation.AllocationError as exc:
        flash(_(str(exc)), "error")
    else:
        flash(_("%(name)s is back on the school's roll. Seats given up when the pupil left do not come back: "
                "the family asks again, or you place the pupil from the waitlist.", name=pupil.name), "success")
    return redirect(url_for("admin.pupil_detail", pupil_id=pupil.id))
