"""Bureau pages: coverage city -> district -> school, xlsx exports, capacity advice, hiring plan, batches.

What the figures mean (published headline, drafts apart, "not yet allocated" never 0 %) is in docs/bureau.md.

Every view is scoped with `bureau_scope`: a district user sees only their district's schools (others are
404), a city-wide user sees all, and a user whose district is gone sees nothing (`bureau_required` says
why). Only aggregates reach these pages: no pupil name, number or phone.
The advice page of a school is also open to that school's own admins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import ColumnElement, and_, select

from webapp import audit
from webapp.bureau.city import (
    batch_history,
    batch_progress,
    batch_results,
    current_terms,
    start_batch,
)
from webapp.bureau.exports import SOURCE_LABELS, coverage_sheets, workbook, xlsx_response
from webapp.bureau.stats import (
    CityStats,
    Figures,
    GroupRow,
    HiringPlan,
    ShownPage,
    Source,
    TermStats,
    advice_counts,
    city_stats,
    latest_advice,
    mark_text,
    min_cell,
    rollup_advice,
    shown_area,
    shown_by_level,
    shown_page,
    shown_slot,
)
from webapp.extensions import db
from webapp.inputs import int_arg
from webapp.jobs import STALE_ERROR, CoverageProof, start_advice, start_advice_batch
from webapp.labels import DAY_NAMES
from webapp.models import AllocationRun, CapacityAdvice, District, RunState, School
from webapp.priority_groups import city_groups
from webapp.run_metrics import fairness_counts
from webapp.security import bureau_required, bureau_scope, role_required

bp = Blueprint("bureau", __name__, url_prefix="/bureau")

QUALIFICATION_LABELS = {
    "": _l("any subject"),
    "sports": _l("sports"),
    "arts": _l("arts"),
    "music": _l("music"),
    "dance": _l("dance"),
    "science": _l("science"),
    "computing": _l("computing"),
    "chess": _l("chess"),
    "reading": _l("reading"),
}
ADVICE_STATES = {
    RunState.QUEUED: _l("Waiting to start"),
    RunState.RUNNING: _l("Computing"),
    RunState.DONE: _l("Done"),
    RunState.FAILED: _l("Failed"),
}
BATCH_STATES = {
    RunState.QUEUED: _l("Waiting to start"),
    RunState.RUNNING: _l("Computing"),
    RunState.CANCELLING: _l("Stopping"),
    RunState.DONE: _l("Done"),
    RunState.FAILED: _l("Failed"),
    RunState.CANCELLED: _l("Cancelled"),
}
BATCH_ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")


# --------------------------------------------------------------------------- helpers


def _scope() -> ColumnElement[bool]:
    return bureau_scope(current_user)


def _district_or_404(district_id: int) -> District:
    district = db.session.get(District, district_id)
    if district is None or (not current_user.city_wide and current_user.district_id != district_id):
        abort(404)
    return district


def _school_in_scope_or_404(school_id: int) -> School:
    school = db.session.scalar(select(School).where(School.id == school_id, _scope()))
    if school is None:
        abort(404)
    return school


def pct(value: float | str | None) -> str:
    """A share as "66.7%"; "–" when there is none; a hidden one is already its mark's text ("hidden")."""
    if isinstance(value, str):
        return value
    return "–" if value is None else f"{value * 100:.1f}%"


def rate_text(figures: Figures, value: float | str | None) -> str:
    """A rate of `figures` as shown: "not yet allocated" when nothing there is allocated, never "0.0%"."""
    return pct(value) if figures.allocated else str(_("Not yet allocated"))


def failure_text(error: str | None) -> str:
    """Why a school's run in a batch failed, in the reader's language."""
    if error == STALE_ERROR:
        return str(_("The computation stopped unexpectedly (its worker process ended); start the batch again."))
    return str(_("The allocation failed: %(error)s", error=error or _("no reason recorded")))


def heat_colour(value: float | str | None) -> str:
    """A sequential scale from pale (no coverage) to deep teal (full coverage); grey when nobody asked or when the
    coverage is hidden (its colour would tell it)."""
    if value is None or isinstance(value, str):
        return "#e5e7eb"
    value = max(0.0, min(1.0, value))
    low, high = (254, 226, 226), (13, 115, 119)
    mid = (250, 204, 21)
    if value < 0.5:
        a, b, t = low, mid, value / 0.5
    else:
        a, b, t = mid, high, (value - 0.5) / 0.5
    r, g, bl = (round(a[i] + (b[i] - a[i]) * t) for i in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


def text_colour(value: float | str | None) -> str:
    return "#ffffff" if isinstance(value, float | int) and value >= 0.75 else "#111827"


def qualification_label(tag: str) -> str:
    label = QUALIFICATION_LABELS.get(tag)
    return str(label) if label is not None else tag


def _join(parts: Iterable[str]) -> str:
    return _(", ").join(parts)


def advice_line(item: dict[str, Any], periods: dict[str, str] | None = None) -> str:
    """ "周三 P3：+1 名教师（体育），+25 个名额，可多覆盖 23 人日（按优先级加权）" for one advice item."""
    parts = []
    for tag, count in sorted((item.get("extra_teachers") or {}).items()):
        parts.append(_("+%(n)d teacher(s) (%(tag)s)", n=int(count), tag=qualification_label(tag)))
    if item.get("extra_seats"):
        parts.append(_("+%(n)d seats", n=int(item["extra_seats"])))
    if "pupil_days_covered" in item:
        if item["pupil_days_covered"]:
            parts.append(_("%(n)d more pupil-days covered (weighted)", n=int(item["pupil_days_covered"])))
    elif item.get("pupils_covered"):  # advice computed before pupil-days were counted once
        parts.append(_("%(n)d more pupils covered", n=int(item["pupils_covered"])))
    period = str(item.get("period", ""))
    return _(
        "%(day)s %(period)s: %(what)s",
        day=str(DAY_NAMES.get(int(item.get("day", 0)), item.get("day"))),
        period=(periods or {}).get(period, period),
        what=_join(parts),
    )


def advice_levels(result: dict[str, Any]) -> list[str]:
    """One sentence per level of the advice: the value, and whether it is proven the fewest or how far the
    proof got ("至少 X，找到的方案需要 Y")."""
    lines = []
    for level in result.get("levels") or []:
        name, value, bound = level.get("name"), int(level.get("value", 0)), int(level.get("bound", 0))
        proven = level.get("status") == "OPTIMAL"
        if name == "coverage":
            lines.append(_("Coverage after: %(n)d, the most possible (proven)", n=value) if proven else
                         _("Coverage after: at most %(bound)d; the plan found reaches %(n)d", bound=bound, n=value))
        elif name == "hired":
            lines.append(_("Teachers to hire: %(n)d, the fewest possible (proven)", n=value) if proven else
                         _("Teachers to hire: at least %(bound)d; the plan found needs %(n)d", bound=bound, n=value))
        elif name == "hired_qualified":
            lines.append(_("Of them with a qualification: %(n)d, the fewest possible (proven)", n=value) if proven
                         else _("Of them with a qualification: at least %(bound)d; the plan found needs %(n)d",
                                bound=bound, n=value))
        elif name == "seats":
            lines.append(_("Seats to add: %(n)d, the fewest possible (proven)", n=value) if proven else
                         _("Seats to add: at least %(bound)d; the plan found adds %(n)d", bound=bound, n=value))
    return lines


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {
        "bureau_pct": pct,
        "bureau_min_cell": min_cell,
        "bureau_mark": mark_text,
        "bureau_shown": shown_area,
        "bureau_slot": shown_slot,
        "bureau_rate": rate_text,
        "heat_colour": heat_colour,
        "text_colour": text_colour,
        "source_labels": SOURCE_LABELS,
        "qualification_label": qualification_label,
        "advice_line": advice_line,
        "advice_levels": advice_levels,
    }


def _sorted_by_coverage(schools: Sequence[TermStats]) -> list[TermStats]:
    """Allocated schools (published or draft) with the lowest coverage first; schools not yet allocated have
    no coverage to rank."""
    allocated = [s for s in schools if s.figures.allocated]
    return sorted(
        allocated, key=lambda s: (s.figures.coverage if s.figures.coverage is not None else 2.0, s.school_code)
    )


def _by_group(page: ShownPage) -> dict[str, list[GroupRow] | None]:
    """Served by priority group of the page's area, published allocations and drafts apart, small counts hidden
    beside the headline and beside the other areas' tables (`shown_groups`)."""
    return {source: page.groups(source) for source in (Source.PUBLISHED, Source.DRAFT)}


def _scope_stats(stats: CityStats | None = None) -> CityStats:
    """The figures of the reader's whole scope, whose tables decide what each area of it hides (`shown_page`);
    `stats` when they are those already."""
    return stats if stats is not None else city_stats(_scope())


# --------------------------------------------------------------------------- dashboard


@bp.route("/")
@bureau_required
def dashboard() -> ResponseReturnValue:
    if not current_user.city_wide:
        return redirect(url_for("bureau.district", district_id=current_user.district_id))
    stats = city_stats(_scope())
    districts = db.session.scalars(select(District).order_by(District.name)).all()
    page = shown_page(stats, stats, groups=city_groups())
    return render_template(
        "bureau/city.html", stats=stats, worst=_sorted_by_coverage(stats.schools)[:20], districts=districts,
        by_group=_by_group(page), shown=page,
    )


@bp.route("/district/<int:district_id>")
@bureau_required
def district(district_id: int) -> ResponseReturnValue:
    district = _district_or_404(district_id)
    where = and_(_scope(), School.district_id == district.id)
    stats = city_stats(where)
    page = shown_page(_scope_stats(), stats, district_id=district.id, groups=city_groups())
    return render_template(
        "bureau/district.html", district=district, stats=stats, advice=advice_counts(where),
        by_group=_by_group(page), shown=page,
    )


@bp.route("/school/<int:school_id>")
@bureau_required
def school(school_id: int) -> ResponseReturnValue:
    school = _school_in_scope_or_404(school_id)
    stats = city_stats(School.id == school.id)
    current = stats.schools[0] if stats.schools else None
    run = db.session.get(AllocationRun, current.run_id) if current and current.run_id else None
    fairness = fairness_counts(run.metrics) if run else None
    page = shown_page(_scope_stats(), stats, school_id=school.id)
    levels = []
    if current is not None and fairness:
        levels = shown_by_level(current.figures, fairness["served_by_priority"], page.schools[school.id])
    return render_template("bureau/school.html", school=school, stats=stats, current=current,
                           fairness=fairness, levels=levels, shown=page)


# --------------------------------------------------------------------------- exports


@bp.route("/export.xlsx")
@bureau_required
def export() -> ResponseReturnValue:
    where = _scope()
    name = "coverage"
    school_id, district_id = int_arg("school"), int_arg("district")
    scope, groups = city_stats(where), city_groups()
    stats, page = scope, shown_page(scope, scope, groups=groups)
    if school_id:
        school = _school_in_scope_or_404(school_id)
        name, stats = f"coverage-{school.code}", city_stats(School.id == school.id)
        page = shown_page(scope, stats, school_id=school.id, groups=groups)
    elif district_id:
        district = _district_or_404(district_id)
        name, stats = f"coverage-district-{district.id}", city_stats(and_(where, School.district_id == district.id))
        page = shown_page(scope, stats, district_id=district.id, groups=groups)
    return xlsx_response(workbook(coverage_sheets(stats, groups, page)), f"{name}.xlsx")


# --------------------------------------------------------------------------- capacity advice


def _advice_school_or_abort(school_id: int) -> School:
    """Bureau users in scope, and admins of this very school; everyone else is refused."""
    if current_user.role == "school_admin":
        if current_user.school_id != school_id:
            abort(403)
        school = db.session.get(School, school_id)
        if school is None:
            abort(404)
        return school
    return _school_in_scope_or_404(school_id)


@bp.route("/advice/<int:school_id>")
@role_required("bureau", "school_admin")
def advice(school_id: int) -> ResponseReturnValue:
    school = _advice_school_or_abort(school_id)
    terms = current_terms(School.id == school.id)
    term = terms[0] if terms else None
    rows: list[CapacityAdvice] = []
    if term is not None:
        rows = list(
            db.session.scalars(
                select(CapacityAdvice)
                .where(CapacityAdvice.term_id == term.id)
                .order_by(CapacityAdvice.id.desc())
                .limit(10)
            )
        )
    latest = next((row for row in rows if row.state == RunState.DONE), None)
    pending = next((row for row in rows if row.state in (RunState.QUEUED, RunState.RUNNING)), None)
    periods = {p.code: p.code for p in term.periods} if term is not None else {}
    return render_template(
        "bureau/advice.html",
        school=school,
        term=term,
        latest=latest,
        pending=pending,
        history=rows,
        periods=periods,
        states=ADVICE_STATES,
    )


@bp.route("/advice/<int:school_id>/compute", methods=["POST"])
@role_required("bureau", "school_admin")
def compute_advice(school_id: int) -> ResponseReturnValue:
    school = _advice_school_or_abort(school_id)
    terms = current_terms(School.id == school.id)
    if not terms:
        flash(_("This school has no term yet."), "error")
        return redirect(url_for("bureau.advice", school_id=school.id))
    row, started = start_advice(terms[0], current_user.id)
    if started:  # the page says so while it is pending: computed inline, it is done already
        audit.record("advice.start", f"advice:{row.id}", {"term": terms[0].name}, commit=True)
    else:
        flash(_("Advice for this school is already being computed; this page shows it when it is ready."), "info")
    return redirect(url_for("bureau.advice", school_id=school.id))


@bp.route("/district/<int:district_id>/advice", methods=["POST"])
@bureau_required
def district_advice(district_id: int) -> ResponseReturnValue:
    """Capacity advice for the current term of every school of the district, queued as one batch of jobs."""
    district = _district_or_404(district_id)
    terms = current_terms(and_(_scope(), School.district_id == district.id))
    if not terms:
        flash(_("No school of this district has a term yet."), "error")
        return redirect(url_for("bureau.district", district_id=district.id))
    started, joined = start_advice_batch(terms, current_user.id)
    audit.record("advice.start", f"district:{district.id}",
                 {"schools": len(terms), "started": len(started), "joined": len(joined)}, commit=True)
    if joined:  # the page says how many are pending: computed inline, the ones started here are done already
        flash(_("Advice for %(joined)d of these schools was already being computed; this page counts each one when "
                "it is ready.", joined=len(joined)), "info")
    return redirect(url_for("bureau.district", district_id=district.id))


def _hiring(
    where: ColumnElement[bool],
) -> tuple[list[tuple[int, str, str, str, dict[str, Any]]], dict[str, HiringPlan], HiringPlan]:
    entries = latest_advice(where)
    by_district, total = rollup_advice((district, result) for _, _, _, district, result in entries)
    return entries, by_district, total


def _plan_slots(plan: HiringPlan) -> tuple[list[int], list[str]]:
    days = sorted({day for day, _ in plan.seats} | {day for day, _ in plan.teachers_by_slot}) or [
        1,
        2,
        3,
        4,
        5,
    ]
    periods = sorted(
        {p for _, p in plan.seats} | {p for _, p in plan.teachers_by_slot}, key=lambda p: (len(p), p)
    )
    return days, periods


@bp.route("/hiring")
@bureau_required
def hiring() -> ResponseReturnValue:
    entries, by_district, total = _hiring(_scope())
    days, periods = _plan_slots(total)
    max_seats = max(total.seats.values(), default=0)
    return render_template(
        "bureau/hiring.html",
        entries=entries,
        by_district=by_district,
        total=total,
        days=days,
        periods=periods,
        max_seats=max_seats,
    )


@bp.route("/hiring.xlsx")
@bureau_required
def hiring_export() -> ResponseReturnValue:
    entries, by_district, total = _hiring(_scope())
    tags = sorted(total.teachers)
    teacher_rows = [
        [
            name or _("No district"),
            plan.schools,
            *[plan.teachers.get(t, 0) for t in tags],
            plan.total_teachers,
            plan.total_seats,
            plan.pupil_days_covered,
        ]
        for name, plan in by_district.items()
    ]
    teacher_rows.append(
        [
            _("Total"),
            total.schools,
            *[total.teachers.get(t, 0) for t in tags],
            total.total_teachers,
            total.total_seats,
            total.pupil_days_covered,
        ]
    )
    seat_rows = []
    for name, plan in [*by_district.items(), (str(_("Total")), total)]:
        for (day, period), seats in sorted(plan.seats.items()):
            hires = plan.teachers_by_slot.get((day, period), {})
            seat_rows.append(
                [
                    name or _("No district"),
                    str(DAY_NAMES.get(day, day)),
                    period,
                    seats,
                    _join(f"{qualification_label(t)} {n}" for t, n in sorted(hires.items())),
                ]
            )
    school_rows = []
    for _sid, code, school_name, district_name, result in entries:
        school_plan = HiringPlan()
        school_plan.add(result)
        school_rows.append(
            [
                district_name,
                code,
                school_name,
                school_plan.total_teachers,
                school_plan.total_seats,
                school_plan.pupil_days_covered,
                result.get("demand"),
                result.get("coverage_now"),
                result.get("coverage_after"),
            ]
        )
    data = workbook(
        [
            (
                _("Teachers by district"),
                [
                    _("District"),
                    _("Schools"),
                    *[qualification_label(t) for t in tags],
                    _("Teachers to hire"),
                    _("Seats to add"),
                    _("More pupil-days covered (weighted)"),
                ],
                teacher_rows,
            ),
            (
                _("Seats by weekday x period"),
                [
                    _("District"),
                    _("Weekday"),
                    _("Period"),
                    _("Seats to add"),
                    _("Teachers working this slot"),
                ],
                seat_rows,
            ),
            (
                _("Schools"),
                [
                    _("District"),
                    _("School code"),
                    _("School"),
                    _("Teachers to hire"),
                    _("Seats to add"),
                    _("More pupil-days covered (weighted)"),
                    _("Weighted demand"),
                    _("Coverage now"),
                    _("Coverage after"),
                ],
                school_rows,
            ),
        ]
    )
    return xlsx_response(data, "hiring-plan.xlsx")


# --------------------------------------------------------------------------- allocation batches


@bp.route("/batches", methods=["POST"])
@bureau_required
def start_batch_view() -> ResponseReturnValue:
    where, scope = (
        _scope(),
        "city" if current_user.city_wide else f"district:{current_user.district_id}",
    )
    district_id = int_arg("district", source=request.form)
    if district_id:
        district = _district_or_404(district_id)
        where, scope = and_(where, School.district_id == district.id), f"district:{district.id}"
    batch_id = start_batch(where, user_id=current_user.id, scope=scope)
    audit.record("batch.start", f"batch:{batch_id}", {"scope": scope}, commit=True)
    return redirect(url_for("bureau.batch", batch_id=batch_id))


def _batch_or_404(batch_id: str) -> Any:
    if not BATCH_ID.match(batch_id):
        abort(404)
    progress = batch_progress(batch_id, _scope())
    if progress.total == 0:
        abort(404)
    return progress


@bp.route("/batches", methods=["GET"])
@bureau_required
def batches() -> ResponseReturnValue:
    """Every batch with runs in the user's scope, newest first."""
    return render_template("bureau/batches.html", history=batch_history(_scope()), scope_label=_scope_label)


def _scope_label(scope: str) -> str:
    """ "city" or "district:<id>" (as a batch records it) as a name."""
    if scope.startswith("district:"):
        number = scope.removeprefix("district:")
        district = db.session.get(District, int(number)) if number.isdigit() else None
        return district.name if district is not None else str(_("A district"))
    return str(_("The whole city"))


@bp.route("/batches/<batch_id>")
@bureau_required
def batch(batch_id: str) -> ResponseReturnValue:
    progress = _batch_or_404(batch_id)
    results = batch_results(batch_id, _scope())
    return render_template(
        "bureau/batch.html", progress=progress, results=results, proof=CoverageProof.of([r.short for r in results]),
        states=BATCH_STATES, failure_text=failure_text,
    )


@bp.route("/batches/<batch_id>/status.json")
@bureau_required
def batch_status(batch_id: str) -> ResponseReturnValue:
    return jsonify(_batch_or_404(batch_id).as_json())
