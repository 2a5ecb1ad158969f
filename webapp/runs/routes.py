"""Run pages for a school admin: every view checks that the term or run belongs to the admin's school."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from scheduler.domain import Status, relative_gap
from scheduler.model import MAXIMISED
from webapp import audit
from webapp.admin.scope import mask_phone, newest_term, school_term
from webapp.allocation import service as allocation
from webapp.allocation import views
from webapp.allocation.offers import set_placement
from webapp.extensions import db
from webapp.inputs import int_arg
from webapp.jobs import STALE_ERROR, cancel_run, refresh_stale, start_run
from webapp.models import (
    AllocationRun,
    AmendmentKind,
    OfferState,
    Pin,
    Placement,
    Pupil,
    RunAssignment,
    RunState,
    RunUnserved,
    Session,
    Term,
    clock,
)
from webapp.priority_groups import group_name
from webapp.run_metrics import metric_deltas
from webapp.runs.forms import PinForm, PlacementForm, PublishForm
from webapp.security import school_admin_required
from webapp.services import pupil_groups

bp = Blueprint("runs", __name__, url_prefix="/admin/runs")

STAGE_LABELS: dict[str, Any] = {
    RunState.QUEUED: _l("Waiting to start"),
    "building": _l("Preparing data"),
    "coverage": _l("Coverage"),
    "stability": _l("Stability"),
    "preference": _l("Preferences"),
    "max_load": _l("Teacher load"),
    "staffing": _l("Teacher load"),
    "storing": _l("Saving the result"),
    RunState.DONE: _l("Finished"),
    RunState.FAILED: _l("Failed"),
    RunState.CANCELLED: _l("Cancelled"),
    "imported": _l("Imported"),
}
STATE_LABELS: dict[str, Any] = {
    RunState.QUEUED: _l("Queued"),
    RunState.RUNNING: _l("Running"),
    RunState.CANCELLING: _l("Cancelling"),
    RunState.DONE: _l("Done"),
    RunState.FAILED: _l("Failed"),
    RunState.CANCELLED: _l("Cancelled"),
}
REASON_LABELS = {
    "no_session": _l("No session for the grade"),
    "no_teacher": _l("No free qualified teacher"),
    "no_seat": _l("Not enough seats"),
    "min_pupils": _l("Too few pupils to open"),
    "lost_to_priority": _l("Seats went to higher priority"),
    "partial_day": _l("Only part of the day"),
    "not_assigned": _l("Not assigned"),
    "unknown": _l("Other"),
}
METRIC_LABELS = {
    "coverage": _l("Weighted coverage"),
    "coverage_pct": _l("Coverage (% of weighted demand)"),
    "covered_pupil_days": _l("Covered pupil-days"),
    "pupil_days_pct": _l("Pupil-days covered (%)"),
    "pupils_served": _l("Pupils served at least one day"),
    "unserved_count": _l("Unserved pupil-days"),
    "teacher_load_max": _l("Largest teacher load"),
    "teacher_load_mean": _l("Mean teacher load"),
    "rank_1": _l("Seats at 1st choice"),
    "rank_2": _l("Seats at 2nd choice"),
    "rank_3": _l("Seats at 3rd choice"),
    "rank_unlisted": _l("Seats at an unlisted activity"),
    "served_fully": _l("Pupils served every requested day"),
    "served_partly": _l("Pupils served some requested days"),
    "served_none": _l("Pupils served no requested day"),
    "choice_first_pct": _l("Placements in the 1st choice (%)"),
    "choice_top_pct": _l("Placements in a top-3 choice (%)"),
    "choice_none_pct": _l("Placements in no listed choice (%)"),
    "justified_envy": _l("Justified envy (pupil-days)"),
    "idle_seats": _l("Empty seats while pupils wait"),
    "split_families": _l("Families split on a day"),
    "families_with_nothing": _l("Families with no day"),
}

KIND_LABELS = {
    AmendmentKind.PUBLISH: _l("First publication"),
    AmendmentKind.REPUBLISH: _l("New run published"),
    AmendmentKind.SEAT_REMOVAL: _l("Seat removed by the school"),
    AmendmentKind.SESSION_EDIT: _l("Session edited"),
    AmendmentKind.TEACHER_EDIT: _l("Teacher edited"),
    AmendmentKind.WITHDRAWAL: _l("Family withdrew"),
    AmendmentKind.CHANGE_REQUEST: _l("Family changed its request"),
    AmendmentKind.PROMOTION: _l("Freed seats placed from the waitlist"),
    AmendmentKind.OFFER_ACCEPTED: _l("Offer accepted"),
    AmendmentKind.IMPORT: _l("Spreadsheet imported"),
}
OFFER_STATE_LABELS = {
    OfferState.OPEN: _l("Waiting for an answer"),
    OfferState.ACCEPTED: _l("Accepted"),
    OfferState.DECLINED: _l("Declined"),
    OfferState.EXPIRED: _l("Expired"),
    OfferState.LAPSED: _l("No longer wanted"),
}


LEVEL_LABELS = {
    "coverage": _l("Coverage (pupil-days, weighted by priority)"),
    "stability": _l("Seats kept from the plan before"),
    "preference": _l("Preference points"),
    "max_load": _l("Largest teacher load (sessions a week)"),
    "staffing": _l("Teacher-sessions in all"),
}


def solver_levels(stats: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What the solver proved about each objective level of a run, in the contract's order (`stats["levels"]`):
    the plan's value, the proven bound (the most any plan reaches for a level maximised, the least for one
    minimised), and whether the value is proven best, within a gap of the bound, or not reached in time (the
    value of a level not reached is not the plan's, so the page shows only that)."""
    rows = []
    for level in (stats or {}).get("levels") or []:
        name, value, bound = level.get("name"), level.get("value", 0), level.get("bound", 0)
        if name not in LEVEL_LABELS:
            continue
        if level.get("skipped"):
            state = "skipped"
        elif level.get("status") == Status.OPTIMAL:
            state = "proven"
        elif level.get("status") == Status.FEASIBLE:
            state = "gap"
        else:
            state = "none"
        rows.append({"name": name, "label": LEVEL_LABELS[name], "value": value, "bound": bound, "state": state,
                     "maximised": name in MAXIMISED,
                     "gap_pct": round(100 * relative_gap(value, bound), 2)})
    return rows


def _labels() -> dict[str, Any]:
    return {"stage_labels": STAGE_LABELS, "state_labels": STATE_LABELS,
            "reason_labels": REASON_LABELS, "metric_labels": METRIC_LABELS, "stale_error": STALE_ERROR,
            "kind_labels": KIND_LABELS, "offer_state_labels": OFFER_STATE_LABELS}



def _run_or_404(run_id: int) -> AllocationRun:
    run = db.session.get(AllocationRun, run_id)
    if run is None or run.term.school_id != g.school.id:
        abort(404)
    refresh_stale([run])
    return run


def _term_runs(term: Term) -> list[AllocationRun]:
    runs = list(db.session.scalars(
        select(AllocationRun).where(AllocationRun.term_id == term.id).order_by(AllocationRun.id.desc())))
    refresh_stale(runs)
    return runs


@bp.get("/")
@school_admin_required
def index() -> ResponseReturnValue:
    term = newest_term()
    if term is None:
        return render_template("runs/no_term.html")
    return redirect(url_for("runs.term_runs", term_id=term.id))


@bp.get("/term/<int:term_id>")
@school_admin_required
def term_runs(term_id: int) -> ResponseReturnValue:
    term = school_term(term_id)
    terms = db.session.scalars(select(Term).where(Term.school_id == g.school.id).order_by(Term.id.desc())).all()
    runs = _term_runs(term)
    done = [r for r in runs if r.state == RunState.DONE]
    return render_template("runs/index.html", term=term, terms=terms, runs=runs, done_runs=done,
                           busy=any(r.state in RunState.active() for r in runs), **_labels())


@bp.post("/term/<int:term_id>/start")
@school_admin_required
def start(term_id: int) -> ResponseReturnValue:
    term = school_term(term_id)
    busy = [r for r in _term_runs(term) if r.state in RunState.active()]
    if busy:
        flash(_("A run for this term is still in progress."), "warning")
        return redirect(url_for("runs.detail", run_id=busy[0].id))
    allocation.draw_lottery_seed(term)
    run = start_run(term, current_user)
    if run.state == RunState.FAILED:
        flash(_("The allocation could not be started. Please try again later."), "error")
    return redirect(url_for("runs.detail", run_id=run.id))


@bp.get("/<int:run_id>/status")
@school_admin_required
def status(run_id: int) -> ResponseReturnValue:
    run = _run_or_404(run_id)
    db.session.refresh(run)
    return jsonify(_status(run))


def _status(run: AllocationRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "state": run.state,
        "state_label": str(STATE_LABELS.get(run.state, run.state)),
        "stage": run.stage,
        "stage_label": str(STAGE_LABELS.get(run.stage, run.stage)),
        "progress": round(float(run.progress or 0.0), 3),
        "best_coverage": run.best_coverage,
        "demand": run.demand,
        "finished": run.state not in RunState.active(),
        "error": _error_text(run),
    }


def _error_text(run: AllocationRun) -> str | None:
    if run.state != RunState.FAILED or not run.error:
        return None
    if run.error == STALE_ERROR:
        return str(_("The allocation stopped unexpectedly (the worker process ended). Please run it again."))
    return str(_("The allocation failed: %(error)s", error=run.error))


@bp.post("/<int:run_id>/cancel")
@school_admin_required
def cancel(run_id: int) -> ResponseReturnValue:
    run = _run_or_404(run_id)
    state = cancel_run(run)
    if state in (RunState.CANCELLED, RunState.CANCELLING):
        audit.record("run.cancel", f"run:{run.id}", {"state": state}, commit=True)
        flash(_("The run is being cancelled."), "info")
    else:
        flash(_("The run had already finished."), "info")
    return redirect(url_for("runs.detail", run_id=run.id))


@bp.get("/<int:run_id>")
@school_admin_required
def detail(run_id: int) -> ResponseReturnValue:
    run = _run_or_404(run_id)
    term = run.term
    if run.state in RunState.active():
        return render_template("runs/progress.html", run=run, term=term, status=_status(run), **_labels())

    reason = request.args.get("reason", "")
    day = int_arg("day", high=7)
    query = (select(RunUnserved, Pupil).join(Pupil, Pupil.id == RunUnserved.pupil_id)
             .where(RunUnserved.run_id == run.id).order_by(Pupil.number, RunUnserved.day))
    if reason:
        query = query.where(RunUnserved.code == reason)
    if day:
        query = query.where(RunUnserved.day == day)
    unserved = db.session.execute(query).all()

    rows = db.session.execute(
        select(Session, Pupil).select_from(RunAssignment)
        .join(Session, Session.id == RunAssignment.session_id).join(Pupil, Pupil.id == RunAssignment.pupil_id)
        .where(RunAssignment.run_id == run.id).order_by(Session.day, Session.code, Pupil.number)
    ).all()
    by_session: dict[int, dict[str, Any]] = {}
    for session, pupil in rows:
        entry = by_session.setdefault(session.id, {"session": session, "pupils": []})
        entry["pupils"].append(pupil)

    published = term.published_run_id == run.id
    form = PublishForm(expected=str(term.published_run_id or ""))
    fair = (run.metrics or {}).get("fairness")
    worst = [item for item in (fair or {}).get("worst_served", []) if item["covered_days"] < item["requested_days"]]
    fair_pupils = _fairness_pupils(term, fair)
    return render_template(
        "runs/detail.html", run=run, term=term, metrics=run.metrics or {}, unserved=unserved,
        fair=fair, fair_pupils=fair_pupils, worst=worst,
        fair_groups=pupil_groups(p.id for p in fair_pupils.values()), group_name=group_name,
        sessions=list(by_session.values()), reason=reason, day=day, published=published, form=form,
        infeasible=(run.stats or {}).get("infeasible_fixed") or [], error_text=_error_text(run),
        seat_policy=(run.stats or {}).get("seat_policy"), levels=solver_levels(run.stats), **_labels())


def _fairness_pupils(term: Term, fair: dict[str, Any] | None) -> dict[str, Pupil]:
    """The school's pupils named by the fairness figures (worst served, envy cases), by pupil number."""
    if not fair:
        return {}
    numbers = {item["pupil"] for item in fair.get("worst_served", [])}
    for case in (fair.get("justified_envy") or {}).get("examples", []):
        numbers.update((case["pupil"], case["holder"]))
    if not numbers:
        return {}
    return {p.number: p for p in db.session.scalars(
        select(Pupil).where(Pupil.school_id == term.school_id, Pupil.number.in_(numbers)))}


@bp.route("/<int:run_id>/publish", methods=["GET", "POST"])
@school_admin_required
def publish(run_id: int) -> ResponseReturnValue:
    """GET: what publishing would change against the plan in force; POST: publish."""
    run = _run_or_404(run_id)
    term = run.term
    if request.method == "GET":
        problem = allocation.publish_problem(run, term)
        preview = views.publish_preview(run) if run.state == RunState.DONE else None
        form = PublishForm(expected=str(term.published_run_id or ""))
        return render_template("runs/publish.html", run=run, term=term, form=form, preview=preview,
                               problem=_(problem) if problem else None, **_labels())
    form = PublishForm()
    if not form.validate_on_submit():
        abort(400)
    expected_text = (form.expected.data or "").strip()
    expected = int(expected_text) if expected_text.isdigit() else None
    try:
        allocation.publish_run(run, current_user, expected=expected)
    except allocation.PublishError as exc:
        flash(_(str(exc)), "error")
        return redirect(url_for("runs.publish", run_id=run.id))
    flash(_("Version %(version)d is published. Parents can now see it.", version=run.version or 0), "success")
    return redirect(url_for("runs.detail", run_id=run.id))


@bp.get("/history")
@school_admin_required
def history_index() -> ResponseReturnValue:
    term = newest_term()
    if term is None:
        return render_template("runs/no_term.html")
    return redirect(url_for("runs.history", term_id=term.id))


@bp.get("/term/<int:term_id>/history")
@school_admin_required
def history(term_id: int) -> ResponseReturnValue:
    """Every version of the term's published plan with who gained and lost which seats."""
    term = school_term(term_id)
    return render_template("runs/history.html", term=term, versions=views.history(term), mask_phone=mask_phone,
                           **_labels())


@bp.route("/term/<int:term_id>/offers", methods=["GET", "POST"])
@school_admin_required
def offers(term_id: int) -> ResponseReturnValue:
    """Offers outstanding for the term, and the form choosing offers or automatic placement and the hold time."""
    term = school_term(term_id)
    form = PlacementForm(placement=term.placement, hold_hours=term.school.offer_hold_hours)
    status = 200
    if form.validate_on_submit():
        try:
            set_placement(term, Placement(form.placement.data), int(form.hold_hours.data or 0), actor=current_user)
        except allocation.AllocationError as exc:
            flash(_(str(exc)), "error")
            status = 409
        else:
            flash(_("The placement settings are saved."), "success")
            return redirect(url_for("runs.offers", term_id=term.id))
    elif form.is_submitted():
        status = 400
    return render_template("runs/offers.html", term=term, form=form, rows=views.term_offers(term),
                           session_codes=_session_codes(term), now=clock(), **_labels()), status


def _session_codes(term: Term) -> dict[int, Session]:
    return {s.id: s for s in db.session.scalars(select(Session).where(Session.term_id == term.id))}


@bp.get("/compare")
@school_admin_required
def compare() -> ResponseReturnValue:
    first = _run_or_404(int_arg("a", 0))
    second = _run_or_404(int_arg("b", 0))
    if first.term_id != second.term_id:
        abort(404)
    seats: dict[int, dict[int, set[str]]] = {first.id: defaultdict(set), second.id: defaultdict(set)}
    names: dict[int, Pupil] = {}
    for run_id, pupil, code in db.session.execute(
        select(RunAssignment.run_id, Pupil, Session.code).select_from(RunAssignment)
        .join(Pupil, Pupil.id == RunAssignment.pupil_id).join(Session, Session.id == RunAssignment.session_id)
        .where(RunAssignment.run_id.in_((first.id, second.id)))
    ):
        seats[run_id][pupil.id].add(code)
        names[pupil.id] = pupil
    changed = []
    for pupil_id in sorted(names, key=lambda i: names[i].number):
        a, b = seats[first.id].get(pupil_id, set()), seats[second.id].get(pupil_id, set())
        if a != b:
            changed.append({"pupil": names[pupil_id], "removed": sorted(a - b), "added": sorted(b - a)})
    return render_template("runs/compare.html", first=first, second=second, term=first.term,
                           rows=metric_deltas(first.metrics, second.metrics), changed=changed, **_labels())


@bp.route("/term/<int:term_id>/pins", methods=["GET", "POST"])
@school_admin_required
def pins(term_id: int) -> ResponseReturnValue:
    term = school_term(term_id)
    form = PinForm(term)
    if form.validate_on_submit():
        assert form.pupil is not None and form.session is not None
        allocation.add_pin(term, form.pupil, form.session, actor=current_user)
        flash(_("Pinned %(pupil)s to %(session)s. The next run keeps this seat.",
                pupil=form.pupil.number, session=form.session.code), "success")
        return redirect(url_for("runs.pins", term_id=term.id))
    rows = db.session.scalars(select(Pin).where(Pin.term_id == term.id).order_by(Pin.id)).all()
    return render_template("runs/pins.html", term=term, form=form, pins=rows, **_labels())


@bp.post("/pins/<int:pin_id>/delete")
@school_admin_required
def delete_pin(pin_id: int) -> ResponseReturnValue:
    pin = db.session.get(Pin, pin_id)
    if pin is None or pin.term.school_id != g.school.id:
        abort(404)
    term_id = pin.term_id
    allocation.remove_pin(pin, actor=current_user)
    flash(_("The pin is removed."), "success")
    return redirect(url_for("runs.pins", term_id=term_id))


@bp.post("/<int:run_id>/assignments/<int:pupil_id>/<int:session_id>/remove")
@school_admin_required
def remove_assignment(run_id: int, pupil_id: int, session_id: int) -> ResponseReturnValue:
    run = _run_or_404(run_id)
    if run.state != RunState.DONE:
        abort(404)
    try:
        change = allocation.remove_seat(run, pupil_id, session_id, actor=current_user)
    except allocation.SeatNotFound:
        abort(404)
    flash(_("The seat is removed."), "success")
    if change.promoted:
        flash(_("%(n)d waitlisted pupil-days were offered the freed seat.", n=len(change.promoted)), "info")
    return redirect(url_for("runs.detail", run_id=run_id))
