"""Run pages for a school admin: every view checks that the term or run belongs to the admin's school."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import delete, select

from webapp import audit, run_summary
from webapp.extensions import db
from webapp.inputs import int_arg
from webapp.models import AllocationRun, Pin, Pupil, RunAssignment, RunUnserved, Session, Term
from webapp.runs.forms import PinForm, PublishForm
from webapp.runs.jobs import ACTIVE_STATES, STALE_ERROR, cancel_run, refresh_stale, rowcount, start_run
from webapp.runs.metrics import compute_metrics, metric_deltas
from webapp.runs.publish import PublishError, publish_run
from webapp.security import school_admin_required

bp = Blueprint("runs", __name__, url_prefix="/admin/runs")

STAGE_LABELS = {
    "queued": _l("Waiting to start"),
    "building": _l("Preparing data"),
    "coverage": _l("Coverage"),
    "stability": _l("Stability"),
    "preference": _l("Preferences"),
    "max_load": _l("Teacher load"),
    "staffing": _l("Teacher load"),
    "storing": _l("Saving the result"),
    "done": _l("Finished"),
    "failed": _l("Failed"),
    "cancelled": _l("Cancelled"),
    "imported": _l("Imported"),
}
STATE_LABELS = {
    "queued": _l("Queued"),
    "running": _l("Running"),
    "cancelling": _l("Cancelling"),
    "done": _l("Done"),
    "failed": _l("Failed"),
    "cancelled": _l("Cancelled"),
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
}


def _labels() -> dict[str, Any]:
    return {"stage_labels": STAGE_LABELS, "state_labels": STATE_LABELS,
            "reason_labels": REASON_LABELS, "metric_labels": METRIC_LABELS, "stale_error": STALE_ERROR}


def _term_or_404(term_id: int) -> Term:
    term = db.session.get(Term, term_id)
    if term is None or term.school_id != g.school.id:
        abort(404)
    return term


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
    term = db.session.scalar(select(Term).where(Term.school_id == g.school.id).order_by(Term.id.desc()))
    if term is None:
        return render_template("runs/no_term.html")
    return redirect(url_for("runs.term_runs", term_id=term.id))


@bp.get("/term/<int:term_id>")
@school_admin_required
def term_runs(term_id: int) -> ResponseReturnValue:
    term = _term_or_404(term_id)
    terms = db.session.scalars(select(Term).where(Term.school_id == g.school.id).order_by(Term.id.desc())).all()
    runs = _term_runs(term)
    done = [r for r in runs if r.state == "done"]
    return render_template("runs/index.html", term=term, terms=terms, runs=runs, done_runs=done,
                           busy=any(r.state in ACTIVE_STATES for r in runs), **_labels())


@bp.post("/term/<int:term_id>/start")
@school_admin_required
def start(term_id: int) -> ResponseReturnValue:
    term = _term_or_404(term_id)
    busy = [r for r in _term_runs(term) if r.state in ACTIVE_STATES]
    if busy:
        flash(_("A run for this term is still in progress."), "warning")
        return redirect(url_for("runs.detail", run_id=busy[0].id))
    run = start_run(term, current_user)
    if run.state == "failed":
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
        "finished": run.state not in ACTIVE_STATES,
        "error": _error_text(run),
    }


def _error_text(run: AllocationRun) -> str | None:
    if run.state != "failed" or not run.error:
        return None
    if run.error == STALE_ERROR:
        return str(_("The allocation stopped unexpectedly (the worker process ended). Please run it again."))
    return str(_("The allocation failed: %(error)s", error=run.error))


@bp.post("/<int:run_id>/cancel")
@school_admin_required
def cancel(run_id: int) -> ResponseReturnValue:
    run = _run_or_404(run_id)
    state = cancel_run(run)
    if state in ("cancelled", "cancelling"):
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
    if run.state in ACTIVE_STATES:
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
    return render_template(
        "runs/detail.html", run=run, term=term, metrics=run.metrics or {}, unserved=unserved,
        sessions=list(by_session.values()), reason=reason, day=day, published=published, form=form,
        infeasible=(run.stats or {}).get("infeasible_fixed") or [], error_text=_error_text(run), **_labels())


@bp.post("/<int:run_id>/publish")
@school_admin_required
def publish(run_id: int) -> ResponseReturnValue:
    run = _run_or_404(run_id)
    form = PublishForm()
    if not form.validate_on_submit():
        abort(400)
    expected_text = (form.expected.data or "").strip()
    expected = int(expected_text) if expected_text.isdigit() else None
    try:
        publish_run(run, current_user, expected=expected)
    except PublishError as exc:
        flash(_(str(exc)), "error")
    else:
        flash(_("Version %(version)d is published. Parents can now see it.", version=run.version or 0), "success")
    return redirect(url_for("runs.detail", run_id=run.id))


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
    term = _term_or_404(term_id)
    form = PinForm(term)
    if form.validate_on_submit():
        assert form.pupil is not None and form.session is not None
        pin = Pin(term_id=term.id, pupil_id=form.pupil.id, session_id=form.session.id, created_by=current_user.id)
        db.session.add(pin)
        audit.record("pin.add", f"term:{term.id}", {"pupil": form.pupil.number, "session": form.session.code})
        db.session.commit()
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
    audit.record("pin.remove", f"term:{term_id}", {"pupil": pin.pupil.number, "session": pin.session.code})
    db.session.delete(pin)
    db.session.commit()
    flash(_("The pin is removed."), "success")
    return redirect(url_for("runs.pins", term_id=term_id))


@bp.post("/<int:run_id>/assignments/<int:pupil_id>/<int:session_id>/remove")
@school_admin_required
def remove_assignment(run_id: int, pupil_id: int, session_id: int) -> ResponseReturnValue:
    run = _run_or_404(run_id)
    if run.state != "done":
        abort(404)
    term = run.term
    removed = rowcount(db.session.execute(delete(RunAssignment).where(
        RunAssignment.run_id == run.id, RunAssignment.pupil_id == pupil_id, RunAssignment.session_id == session_id
    )))
    run_summary.mark_changed(db.session, run.id)
    if not removed:
        db.session.rollback()
        abort(404)
    pupil, session = db.session.get(Pupil, pupil_id), db.session.get(Session, session_id)
    _refresh_metrics(run)
    audit.record("run.remove_assignment", f"run:{run.id}",
                 {"pupil": pupil.number if pupil else pupil_id, "session": session.code if session else session_id,
                  "published": term.published_run_id == run.id})
    db.session.commit()
    flash(_("The seat is removed."), "success")
    if term.published_run_id == run.id:
        _offer_freed_seats(term)
    return redirect(url_for("runs.detail", run_id=run.id))


def _refresh_metrics(run: AllocationRun) -> None:
    """Recount a run's coverage and metrics after a hand edit (the caller commits)."""
    from webapp.services import run_to_solution, term_to_instance

    db.session.flush()
    instance = term_to_instance(run.term)
    solution = run_to_solution(run)
    metrics = compute_metrics(instance, solution)
    run.metrics = metrics
    run.coverage = metrics["coverage"]
    objective = dict(run.objective or {})
    objective["coverage"] = metrics["coverage"]
    run.objective = objective


def _offer_freed_seats(term: Term) -> None:
    try:
        from webapp.rosters.waitlist import fill_freed_seats
    except ImportError:
        return
    try:
        promoted = fill_freed_seats(term, actor=current_user.id)
    except Exception:  # the seat is already freed; a waitlist failure must not undo or hide that
        current_app.logger.exception("waitlist after removing a seat failed for term %s", term.id)
        db.session.rollback()
        return
    if promoted:
        flash(_("%(n)d waitlisted pupil-days were offered the freed seat.", n=len(promoted)), "info")
