"""Roster pages and downloads for a school admin: own school only, the published run or a chosen draft."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from webapp.admin.scope import newest_term, school_term
from webapp.allocation import service as allocation
from webapp.allocation.waitlist import waitlist
from webapp.audit import record
from webapp.extensions import db
from webapp.inputs import int_arg
from webapp.labels import DAY_NAMES_LONG
from webapp.models import AllocationRun, RunState, Term
from webapp.rosters.data import Rosters, load_rosters
from webapp.rosters.exports import (
    XLSX_MIMETYPE,
    classes_workbook,
    export_filename,
    instance_json,
    sessions_workbook,
    solution_json,
    teachers_workbook,
)
from webapp.rosters.html import attendance_rows, dismissal_rows
from webapp.security import school_admin_required

bp = Blueprint("rosters", __name__, url_prefix="/admin/rosters")



@bp.app_context_processor
def _roster_globals() -> dict[str, object]:
    return {"roster_day_names": DAY_NAMES_LONG, "dismissal_rows": dismissal_rows}


def _run(term: Term, *, required: bool = True) -> AllocationRun | None:
    """`?run=ID` (a finished run of this term) or else the published run."""
    run_id = int_arg("run")
    if run_id is not None:
        run: AllocationRun | None = db.session.scalar(select(AllocationRun).where(AllocationRun.id == run_id,
                                                            AllocationRun.term_id == term.id,
                                                            AllocationRun.state == RunState.DONE))
        if run is None:
            abort(404)
        return run
    if term.published_run is None and required:
        abort(404)
    published: AllocationRun | None = term.published_run
    return published


def _rosters(term_id: int) -> Rosters:
    term = school_term(term_id)
    run = _run(term)
    assert run is not None
    return load_rosters(term, run)


def _run_args(rosters: Rosters) -> dict[str, int]:
    """Query arguments that keep a chosen draft run across links."""
    return {} if rosters.run.id == rosters.term.published_run_id else {"run": rosters.run.id}


def _download(body: bytes | str, filename: str, mimetype: str, *, kind: str, term: Term,
              run: AllocationRun | None, item: str = "") -> Response:
    record("roster.export", f"term:{term.id}",
           {"kind": kind, "item": item, "run_id": run.id if run else None, "school": term.school.code,
            "filename": filename}, school_id=term.school_id, commit=True)
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
@school_admin_required
def home() -> ResponseReturnValue:
    term = newest_term()
    if term is None:
        return render_template("rosters/no_run.html", term=None)
    return redirect(url_for("rosters.index", term_id=term.id))


@bp.get("/<int:term_id>/")
@school_admin_required
def index(term_id: int) -> ResponseReturnValue:
    term = school_term(term_id)
    run = _run(term, required=False)
    if run is None:
        return render_template("rosters/no_run.html", term=term)
    rosters = load_rosters(term, run)
    drafts = db.session.scalars(select(AllocationRun).where(AllocationRun.term_id == term.id,
                                                            AllocationRun.state == RunState.DONE)
                                .order_by(AllocationRun.id.desc())).all()
    return render_template("rosters/index.html", rosters=rosters, runs=drafts, args=_run_args(rosters),
                           waiting=len(waitlist(term)))


@bp.get("/<int:term_id>/sessions")
@school_admin_required
def sessions(term_id: int) -> ResponseReturnValue:
    """One weekday's attendance sheets (`?day=N`, by default the first day with sessions), or `?day=all`: a
    big school runs hundreds of sessions a week, and an office prints a day's sheets at a time."""
    rosters = _rosters(term_id)
    days = sorted({sheet.session.day for sheet in rosters.sheets})
    chosen = request.args.get("day", "")
    day: int | None = None
    if chosen == "all":
        sheets = rosters.sheets
    else:
        day = int(chosen) if chosen.isdigit() and int(chosen) in days else (days[0] if days else None)
        sheets = [sheet for sheet in rosters.sheets if sheet.session.day == day]
    return render_template("rosters/sessions.html", rosters=rosters, sheets=sheets, days=days, day=day,
                           whole_week=chosen == "all", args=_run_args(rosters), pupil_rows=attendance_rows(sheets))


@bp.get("/<int:term_id>/sessions/<int:session_id>")
@school_admin_required
def session_sheet(term_id: int, session_id: int) -> ResponseReturnValue:
    rosters = _rosters(term_id)
    sheet = rosters.sheet(session_id) or abort(404)
    return render_template("rosters/sessions.html", rosters=rosters, sheets=[sheet], args=_run_args(rosters),
                           single=sheet, pupil_rows=attendance_rows([sheet]))


@bp.get("/<int:term_id>/classes")
@school_admin_required
def classes(term_id: int) -> ResponseReturnValue:
    rosters = _rosters(term_id)
    return render_template("rosters/classes.html", rosters=rosters, classes=rosters.classes,
                           args=_run_args(rosters))


@bp.get("/<int:term_id>/classes/<class_name>")
@school_admin_required
def class_list(term_id: int, class_name: str) -> ResponseReturnValue:
    rosters = _rosters(term_id)
    found = rosters.class_list(class_name) or abort(404)
    return render_template("rosters/classes.html", rosters=rosters, classes=[found], args=_run_args(rosters),
                           single=found)


@bp.get("/<int:term_id>/teachers")
@school_admin_required
def teachers(term_id: int) -> ResponseReturnValue:
    rosters = _rosters(term_id)
    return render_template("rosters/teachers.html", rosters=rosters, tables=rosters.timetables,
                           args=_run_args(rosters))


@bp.get("/<int:term_id>/teachers/<int:teacher_id>")
@school_admin_required
def teacher_timetable(term_id: int, teacher_id: int) -> ResponseReturnValue:
    rosters = _rosters(term_id)
    found = rosters.timetable(teacher_id) or abort(404)
    return render_template("rosters/teachers.html", rosters=rosters, tables=[found], args=_run_args(rosters),
                           single=found)


@bp.get("/<int:term_id>/<any(sessions, classes, teachers):kind>.xlsx")
@school_admin_required
def workbook(term_id: int, kind: str) -> ResponseReturnValue:
    """The whole kind, or one item with `?id=` (a session or teacher id, or a class name)."""
    rosters = _rosters(term_id)
    item = request.args.get("id", "")
    if item and kind != "classes" and not item.isdigit():
        abort(404)
    if kind == "sessions":
        sheets = [rosters.sheet(int(item)) or abort(404)] if item.isdigit() else rosters.sheets
        body = sessions_workbook(sheets)
    elif kind == "classes":
        found = [rosters.class_list(item) or abort(404)] if item else rosters.classes
        body = classes_workbook(rosters, found)
    else:
        tables = [rosters.timetable(int(item)) or abort(404)] if item.isdigit() else rosters.timetables
        body = teachers_workbook(rosters, tables)
    name = export_filename(rosters.term, kind + (f"-{item}" if item else ""), "xlsx", rosters.run)
    return _download(body, name, XLSX_MIMETYPE, kind=f"{kind}.xlsx", term=rosters.term, run=rosters.run,
                     item=item)


@bp.get("/<int:term_id>/instance.json")
@school_admin_required
def instance_export(term_id: int) -> ResponseReturnValue:
    term = school_term(term_id)
    name = export_filename(term, "instance", "json")
    return _download(instance_json(term), name, "application/json", kind="instance.json", term=term, run=None)


@bp.get("/<int:term_id>/solution.json")
@school_admin_required
def solution_export(term_id: int) -> ResponseReturnValue:
    term = school_term(term_id)
    run = _run(term)
    assert run is not None
    name = export_filename(term, "solution", "json", run)
    return _download(solution_json(run), name, "application/json", kind="solution.json", term=term, run=run)


@bp.get("/<int:term_id>/waitlist")
@school_admin_required
def waitlist_page(term_id: int) -> ResponseReturnValue:
    term = school_term(term_id)
    entries = waitlist(term)
    by_day: dict[int, list[object]] = {day: [] for day in sorted(term.weekdays)}
    for entry in entries:
        by_day.setdefault(entry.day, []).append(entry)
    return render_template("rosters/waitlist.html", term=term, by_day=by_day, total=len(entries))


@bp.post("/<int:term_id>/waitlist/fill")
@school_admin_required
def waitlist_fill(term_id: int) -> ResponseReturnValue:
    term = school_term(term_id)
    if term.published_run_id is None:
        flash(_("There is no published allocation yet."), "warning")
    else:
        promoted = allocation.fill_freed_seats(term, actor=current_user.id)
        if promoted:
            flash(_("%(n)d pupil-days were given a freed seat.", n=len(promoted)), "success")
        else:
            flash(_("No waiting pupil could be placed without moving someone else."), "info")
    return redirect(url_for("rosters.waitlist_page", term_id=term_id))
