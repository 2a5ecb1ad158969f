"""The school admin's dashboard, spreadsheet import, request window, pupil list and enrolment codes."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, or_, select

from webapp import held_uploads
from webapp.admin.forms import (
    CodesForm,
    ImportForm,
    SchoolContactForm,
    WindowForm,
    WindowNowForm,
    posted_confirm,
    posted_reason,
)
from webapp.admin.importer import (
    COLUMNS,
    KINDS,
    ImportResult,
    import_file,
    template_file,
)
from webapp.admin.scope import (
    TERM_KEY,
    admin_view,
    from_china,
    mask_phone,
    own_pupil,
    school_term,
    term_view,
    to_china,
)
from webapp.allocation.service import REASON_NEEDED, Confirm
from webapp.audit import record
from webapp.auth.recovery import SLIP_VALID_HOURS, issue_slip_code, show_slip_code
from webapp.extensions import db
from webapp.family import issue_enrolment_code
from webapp.inputs import int_arg
from webapp.models import CareRequest, Guardianship, Pupil, Session, Teacher, Term, utcnow
from webapp.priority_groups import group_name
from webapp.services import pupil_groups

bp = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZE = 50
MAX_PAGE = 100_000  # far past any school; keeps the offset a small integer


def window_state(term: Term, now: datetime | None = None) -> str:
    """"unset", "scheduled", "open" or "closed": what parents see right now."""
    now = now or utcnow()
    if term.requests_open_at is None and term.requests_close_at is None:
        return "unset"
    if term.requests_open_at is not None and now < term.requests_open_at:
        return "scheduled"
    return "open" if term.requests_open(now) else "closed"


@bp.route("/")
@admin_view
def dashboard() -> ResponseReturnValue:
    school = g.school
    term: Term | None = g.term
    pupils = db.session.scalar(
        select(func.count(Pupil.id)).where(Pupil.school_id == school.id, Pupil.active)) or 0
    teachers = db.session.scalar(
        select(func.count(Teacher.id)).where(Teacher.school_id == school.id, Teacher.active)) or 0
    summary: dict[str, object] = {"pupils": pupils, "teachers": teachers}
    seats: dict[tuple[int, int], int] = defaultdict(int)
    if term is not None:
        rows = db.session.execute(
            select(Session.day, Session.period_id, func.count(Session.id), func.sum(Session.capacity))
            .where(Session.term_id == term.id).group_by(Session.day, Session.period_id)).all()
        for day, period_id, _count, capacity in rows:
            seats[(day, period_id)] = int(capacity or 0)
        summary["sessions"] = sum(int(count) for _d, _p, count, _c in rows)
        requests = db.session.scalar(
            select(func.count(CareRequest.id)).join(Pupil, Pupil.id == CareRequest.pupil_id)
            .where(CareRequest.term_id == term.id, CareRequest.status == "active", Pupil.active)) or 0
        summary["requests"] = requests
        summary["request_share"] = round(100 * requests / pupils) if pupils else 0
        summary["window"] = window_state(term)
    terms = db.session.scalars(select(Term).where(Term.school_id == school.id).order_by(Term.id.desc())).all()
    return render_template("admin/dashboard.html", school=school, term=term, terms=terms, summary=summary,
                           seats=seats, to_china=to_china)


@bp.route("/term", methods=["POST"])
@admin_view
def choose_term() -> ResponseReturnValue:
    term_id = int_arg("term_id", 0, source=request.form) or 0
    if not term_id:
        abort(404)
    term = school_term(term_id)
    session[TERM_KEY] = term.id
    return redirect(url_for("admin.dashboard"))


# ------------------------------------------------------------------------------------------ import


@bp.route("/import/<kind>", methods=["GET", "POST"])
@admin_view
def import_data(kind: str) -> ResponseReturnValue:
    """Upload a file; after publication a file that moves published seats is previewed for confirmation."""
    if kind not in KINDS:
        abort(404)
    form = ImportForm()
    result = None
    if form.validate_on_submit():
        upload = form.file.data
        data = upload.stream.read(5 * 1024 * 1024 + 1)
        filename = upload.filename or ""
        result = import_file(kind, filename, data, g.school, g.term, confirm=Confirm())
        if result.confirmation is not None:
            held_uploads.hold(g.school.id, filename, data)
            return _confirm_import(kind, result)
        if result.ok:
            return _imported(kind, result)
    status = 422 if result is not None and not result.ok else 200
    return render_template("admin/import.html", kind=kind, form=form, result=result, columns=COLUMNS[kind],
                           term=g.term), status


@bp.route("/import/<kind>/confirm", methods=["POST"])
@admin_view
def import_confirm(kind: str) -> ResponseReturnValue:
    """Apply a held file whose preview the admin confirmed (with a reason and the preview's token)."""
    if kind not in KINDS:
        abort(404)
    digest = (request.form.get("held") or "").strip()
    held = held_uploads.held(g.school.id, digest)
    if held is None:
        flash(_("The uploaded file is no longer kept. Please upload it again."), "error")
        return redirect(url_for("admin.import_data", kind=kind))
    filename, data = held
    result = import_file(kind, filename, data, g.school, g.term, confirm=posted_confirm())
    if result.confirmation is not None:
        return _confirm_import(kind, result)
    if not result.ok:
        return render_template("admin/import.html", kind=kind, form=ImportForm(), result=result,
                               columns=COLUMNS[kind], term=g.term), 422
    held_uploads.release(g.school.id, digest)
    return _imported(kind, result)


def _imported(kind: str, result: ImportResult) -> ResponseReturnValue:
    flash(_("Imported %(rows)d rows: %(created)d new, %(updated)d updated, %(unchanged)d unchanged.",
            rows=result.rows, created=result.created, updated=result.updated,
            unchanged=result.unchanged), "success")
    if result.change is not None and result.change.lost:
        flash(_("The plan is amended: %(n)d seats were taken away.", n=len(result.change.lost)), "success")
    return redirect(url_for("admin.import_data", kind=kind))


def _confirm_import(kind: str, result: ImportResult) -> ResponseReturnValue:
    """Who gains and who loses if this file is imported: the page confirms it with a reason (the file is held)."""
    needed = result.confirmation
    assert needed is not None
    reason = posted_reason()
    reason_error = _(str(needed)) if str(needed) == REASON_NEEDED else None
    titles = {"pupils": _("Import pupils"), "teachers": _("Import teachers"), "sessions": _("Import sessions")}
    summary = _("The file has %(rows)d rows: %(created)d new, %(updated)d updated, %(unchanged)d unchanged.",
                rows=result.rows, created=result.created, updated=result.updated, unchanged=result.unchanged)
    return render_template("admin/confirm_edit.html", title=titles[kind], preview=needed.preview,
                           stale=needed.stale, message=_(str(needed)), summary=summary,
                           action=url_for("admin.import_confirm", kind=kind), carried=[("held", result.digest)],
                           reason=reason, reason_error=reason_error,
                           back=url_for("admin.import_data", kind=kind)), 409 if needed.stale else 200


@bp.route("/import/<kind>/template.<fmt>")
@admin_view
def import_template(kind: str, fmt: str) -> ResponseReturnValue:
    if kind not in KINDS or fmt not in ("xlsx", "csv"):
        abort(404)
    mimetype = ("text/csv; charset=utf-8" if fmt == "csv"
                else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response = Response(template_file(kind, fmt), mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename={kind}-template.{fmt}"
    return response


# ------------------------------------------------------------------------------------------ request window


@bp.route("/window", methods=["GET", "POST"])
@term_view
def window() -> ResponseReturnValue:
    term: Term = g.term
    form = WindowForm()
    if request.method == "GET":
        form.opens_at.data = to_china(term.requests_open_at)
        form.closes_at.data = to_china(term.requests_close_at)
        form.results_date.data = term.results_date
        form.seat_policy.data = term.seat_policy
    elif "seat_policy" not in request.form:  # a form posted without the choice keeps the term's policy
        form.seat_policy.data = term.seat_policy
    if form.validate_on_submit():
        term.requests_open_at = from_china(form.opens_at.data)
        term.requests_close_at = from_china(form.closes_at.data)
        term.results_date = form.results_date.data
        term.seat_policy = form.seat_policy.data
        record("window.set", f"term:{term.id}", {
            "opens_at": term.requests_open_at.isoformat() if term.requests_open_at else None,
            "closes_at": term.requests_close_at.isoformat() if term.requests_close_at else None,
            "results_date": term.results_date.isoformat() if term.results_date else None,
            "seat_policy": term.seat_policy,
        })
        db.session.commit()
        flash(_("The request window was saved."), "success")
        return redirect(url_for("admin.dashboard"))
    return render_template("admin/window.html", form=form, term=term, state=window_state(term))


@bp.route("/window/<any(open, close):action>", methods=["GET", "POST"])
@term_view
def window_now(action: str) -> ResponseReturnValue:
    """GET: what opening or closing now changes; POST from that page (with `confirmed`): do it.

    Opening keeps the dates the window had: an opening time already past stays, a closing time still ahead
    stays, and a closing time already past is replaced by the new one the admin enters (never erased).
    """
    term: Term = g.term
    now = utcnow()
    form = WindowNowForm()
    needs_close = action == "open" and term.requests_close_at is not None and term.requests_close_at <= now
    if request.method == "POST" and form.validate_on_submit() and form.confirmed.data == "1":
        if action == "close":
            term.requests_close_at = now
            if term.requests_open_at is not None and term.requests_open_at > now:
                term.requests_open_at = now
            flash(_("Requests are closed now."), "success")
        else:
            closes = from_china(form.closes_at.data) if needs_close else term.requests_close_at
            if needs_close and (closes is None or closes <= now):
                form.closes_at.errors.append(_("Enter a new closing time in the future."))
            elif needs_close and closes is not None and term.results_date is not None \
                    and term.results_date <= (to_china(closes) or closes).date():
                form.closes_at.errors.append(_("The closing time must be before the results date (%(date)s).",
                                               date=term.results_date.isoformat()))
            else:
                if term.requests_open_at is None or term.requests_open_at > now:
                    term.requests_open_at = now
                term.requests_close_at = closes
                flash(_("Requests are open now."), "success")
        if not form.closes_at.errors:
            record(f"window.{action}", f"term:{term.id}", {
                "opens_at": term.requests_open_at.isoformat() if term.requests_open_at else None,
                "closes_at": term.requests_close_at.isoformat() if term.requests_close_at else None})
            db.session.commit()
            return redirect(url_for("admin.dashboard"))
    return render_template("admin/window_confirm.html", form=form, action=action, term=term,
                           needs_close=needs_close, state=window_state(term), to_china=to_china)


# ------------------------------------------------------------------------------------------ pupils


@bp.route("/pupils")
@admin_view
def pupils() -> ResponseReturnValue:
    query = request.args.get("q", "").strip()[:64]
    class_name = request.args.get("class", "").strip()[:64]
    status = request.args.get("status", "")
    status = status if status in PUPIL_STATUSES else ""
    page = int_arg("page", 1, low=1, high=MAX_PAGE) or 1
    conditions = [Pupil.school_id == g.school.id]
    if status:
        conditions.append(Pupil.active.is_(status == "active"))
    if query:
        pattern = f"%{query}%"
        conditions.append(or_(Pupil.number.ilike(pattern), Pupil.name.ilike(pattern)))
    if class_name:
        conditions.append(Pupil.class_name == class_name)
    total = db.session.scalar(select(func.count(Pupil.id)).where(*conditions)) or 0
    rows = db.session.scalars(select(Pupil).where(*conditions)
                              .order_by(Pupil.grade, Pupil.class_name, Pupil.number)
                              .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    requested: set[int] = set()
    if g.term is not None and rows:
        requested = set(db.session.scalars(select(CareRequest.pupil_id).where(
            CareRequest.term_id == g.term.id, CareRequest.status == "active",
            CareRequest.pupil_id.in_([p.id for p in rows]))))
    classes = school_classes()
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template("admin/pupils.html", pupils=rows, total=total, page=page, pages=pages, q=query,
                           class_name=class_name, classes=classes, requested=requested, status=status,
                           groups=pupil_groups(p.id for p in rows), group_name=group_name)


PUPIL_STATUSES = ("active", "left")
"""The pupils list's filter: on the roll, or recorded as having left the school (empty: both)."""


def school_classes() -> list[str]:
    return [name for name in db.session.scalars(
        select(Pupil.class_name).where(Pupil.school_id == g.school.id, Pupil.active).distinct()
        .order_by(Pupil.class_name)) if name]


# ------------------------------------------------------------------------------------------ school contact


@bp.route("/contact", methods=["GET", "POST"])
@admin_view
def school_contact() -> ResponseReturnValue:
    """The contact families see on their child's page."""
    form = SchoolContactForm(obj=g.school)
    if form.validate_on_submit():
        g.school.contact = (form.contact.data or "").strip()
        record("school.contact", f"school:{g.school.id}")
        db.session.commit()
        flash(_("Saved."), "success")
        return redirect(url_for("admin.dashboard"))
    return render_template("admin/form.html", form=form, title=_("Contact for families"),
                           back=url_for("admin.dashboard"))


# ------------------------------------------------------------------------------------------ enrolment codes


@bp.route("/pupils/<int:pupil_id>/guardians/<int:user_id>/reset-code", methods=["POST"])
@admin_view
def reset_code(pupil_id: int, user_id: int) -> ResponseReturnValue:
    """Print a one-time password reset slip for a parent linked to one of the school's pupils."""
    pupil = own_pupil(pupil_id)
    link = db.session.scalar(select(Guardianship).where(Guardianship.pupil_id == pupil.id,
                                                        Guardianship.user_id == user_id))
    if link is None or link.user.role != "parent":
        abort(404)
    code = issue_slip_code(link.user, current_user, g.school.id)
    hours = int(current_app.config.get("PASSWORD_RESET_SLIP_HOURS", SLIP_VALID_HOURS))
    response = Response(render_template("admin/reset_print.html", school=g.school, pupil=pupil, link=link,
                                        phone=mask_phone(link.user.phone), code=show_slip_code(code), hours=hours))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/codes", methods=["GET", "POST"])
@admin_view
def codes() -> ResponseReturnValue:
    form = CodesForm()
    classes = school_classes()
    form.class_name.choices = [("", _("Whole school"))] + [(name, name) for name in classes]
    if form.validate_on_submit():
        conditions = [Pupil.school_id == g.school.id, Pupil.active]
        if form.class_name.data:
            conditions.append(Pupil.class_name == form.class_name.data)
        chosen = db.session.scalars(select(Pupil).where(*conditions)
                                    .order_by(Pupil.class_name, Pupil.number)).all()
        slips = [(pupil, issue_enrolment_code(pupil)) for pupil in chosen]
        record("codes.issue", f"school:{g.school.id}",
               {"class": form.class_name.data or "*", "count": len(slips)})
        db.session.commit()
        by_class: dict[str, list[tuple[Pupil, str]]] = defaultdict(list)
        for pupil, plain in slips:
            by_class[pupil.class_name].append((pupil, plain))
        response = Response(render_template("admin/codes_print.html", school=g.school, by_class=by_class,
                                            count=len(slips)))
        response.headers["Cache-Control"] = "no-store"
        return response
    counts = {name: (total, with_code) for name, total, with_code in db.session.execute(
        select(Pupil.class_name, func.count(Pupil.id), func.count(Pupil.enrolment_code_hash))
        .where(Pupil.school_id == g.school.id, Pupil.active).group_by(Pupil.class_name)
        .order_by(Pupil.class_name))}
    return render_template("admin/codes.html", form=form, counts=counts)
