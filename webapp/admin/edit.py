"""Edit screens: activities and sessions of the current term, teachers and their weekly availability.

Once a plan is published, an edit of a session or a teacher goes through the allocation service with a
`Confirm`: an edit that moves no seat is saved at once; one that would move published seats is worked out and
rolled back, and the admin sees who gains and who loses (`admin/confirm_edit.html`). Confirming posts the same
edit again with a reason and the preview's token; the service applies it only if it still does exactly that.
"""

from __future__ import annotations

import re

from flask import flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import delete, func, insert, select

from webapp.admin.forms import ActivityForm, SessionForm, TeacherForm, posted_confirm, posted_reason
from webapp.admin.routes import bp
from webapp.admin.scope import (
    admin_view,
    known_qualifications,
    mask_email,
    mask_phone,
    own_activity,
    own_session,
    own_teacher,
    term_view,
    unknown_qualification_message,
)
from webapp.allocation import service as allocation
from webapp.audit import record
from webapp.extensions import db
from webapp.labels import DAY_NAMES
from webapp.models import Activity, Period, Session, Teacher, TeacherAvailability, Term


def _confirm_page(needed: allocation.ConfirmationNeeded, *, title: str, back: str) -> ResponseReturnValue:
    """Who gains and who loses: the page that posts the same edit again with a reason and the preview's token."""
    carried = [(name, value) for name, values in request.form.lists() for value in values
               if name not in ("csrf_token", "reason", "plan_token", "submit")]
    reason = posted_reason()
    reason_error = _(str(needed)) if str(needed) == allocation.REASON_NEEDED else None
    return render_template("admin/confirm_edit.html", title=title, preview=needed.preview, stale=needed.stale,
                           message=_(str(needed)), action=request.path, carried=carried, reason=reason,
                           reason_error=reason_error, back=back), 409 if needed.stale else 200


def _refused(exc: allocation.AllocationError) -> None:
    flash(_(str(exc)), "error")
    if isinstance(exc, allocation.RuleBroken):
        for problem in exc.problems:
            flash(problem, "error")


# ------------------------------------------------------------------------------------------ activities


@bp.route("/activities")
@term_view
def activities() -> ResponseReturnValue:
    term: Term = g.term
    rows = db.session.scalars(
        select(Activity).where(Activity.term_id == term.id).order_by(Activity.code)).all()
    used = dict(db.session.execute(select(Session.activity_id, func.count(Session.id))
                                   .where(Session.term_id == term.id).group_by(Session.activity_id)).all())
    return render_template("admin/activities.html", activities=rows, used=used, term=term)


@bp.route("/activities/new", methods=["GET", "POST"])
@bp.route("/activities/<int:activity_id>/edit", methods=["GET", "POST"])
@term_view
def activity_form(activity_id: int | None = None) -> ResponseReturnValue:
    activity = own_activity(activity_id) if activity_id is not None else None
    term: Term = activity.term if activity else g.term
    form = ActivityForm(obj=activity)
    if form.validate_on_submit():
        clash = db.session.scalar(select(Activity.id).where(Activity.term_id == term.id,
                                                            Activity.code == form.code.data))
        if clash is not None and (activity is None or clash != activity.id):
            form.code.errors.append(_("Another activity of this term already has this code."))
        else:
            if activity is None:
                activity = Activity(term_id=term.id)
                db.session.add(activity)
            activity.code = form.code.data.strip()
            activity.name = form.name.data.strip()
            activity.category = (form.category.data or "").strip()
            activity.qualification = (form.qualification.data or "").strip() or None
            activity.description = (form.description.data or "").strip()
            db.session.flush()
            record("activity.save", f"activity:{activity.id}", {"code": activity.code})
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("admin.activities"))
    title = _("Edit activity") if activity else _("New activity")
    return render_template("admin/form.html", form=form, title=title, back=url_for("admin.activities"))


@bp.route("/activities/<int:activity_id>/delete", methods=["POST"])
@admin_view
def activity_delete(activity_id: int) -> ResponseReturnValue:
    activity = own_activity(activity_id)
    sessions = db.session.scalar(
        select(func.count(Session.id)).where(Session.activity_id == activity.id)) or 0
    if sessions:
        flash(_("Activity %(code)s still has %(n)d sessions; delete or move them first.", code=activity.code,
                n=sessions), "error")
    elif request.form.get("confirmed") != "1":  # the list's button leads to this confirmation step
        return render_template("admin/confirm_delete.html", action=request.path, back=url_for("admin.activities"),
                               title=_("Delete activity %(code)s %(name)s?", code=activity.code, name=activity.name),
                               detail=_("The activity has no sessions. Deleting it cannot be undone."))
    else:
        record("activity.delete", f"activity:{activity.id}", {"code": activity.code})
        db.session.delete(activity)
        db.session.commit()
        flash(_("Deleted."), "success")
    return redirect(url_for("admin.activities"))


# ------------------------------------------------------------------------------------------ sessions


@bp.route("/sessions")
@term_view
def sessions() -> ResponseReturnValue:
    term: Term = g.term
    rows = db.session.scalars(
        select(Session).join(Period, Period.id == Session.period_id).where(Session.term_id == term.id)
        .order_by(Session.day, Period.position, Session.code)).all()
    return render_template("admin/sessions.html", sessions=rows, term=term)


def _session_choices(form: SessionForm, term: Term) -> None:
    form.activity.choices = [(a.id, f"{a.name}（{a.code}）")
                             for a in sorted(term.activities, key=lambda a: a.code)]
    form.day.choices = [(day, DAY_NAMES.get(day, str(day))) for day in term.weekdays]
    form.period.choices = [(p.id, f"{p.code} {p.start}–{p.end}") for p in term.periods]


@bp.route("/sessions/new", methods=["GET", "POST"])
@bp.route("/sessions/<int:session_id>/edit", methods=["GET", "POST"])
@term_view
def session_form(session_id: int | None = None) -> ResponseReturnValue:
    found = own_session(session_id) if session_id is not None else None
    term: Term = found.term if found else g.term
    form = SessionForm(obj=found)
    _session_choices(form, term)
    if request.method == "GET":
        if found is not None:
            form.activity.data, form.period.data = found.activity_id, found.period_id
        else:
            form.grade_lo.data, form.grade_hi.data, form.min_pupils.data = 1, 6, 0
    if form.validate_on_submit():
        clash = db.session.scalar(select(Session.id).where(Session.term_id == term.id,
                                                           Session.code == form.code.data))
        if clash is not None and (found is None or clash != found.id):
            form.code.errors.append(_("Another session of this term already has this code."))
        else:
            values = {"code": form.code.data.strip(), "activity_id": form.activity.data, "day": form.day.data,
                      "period_id": form.period.data, "room": (form.room.data or "").strip()}
            for name in ("capacity", "grade_lo", "grade_hi", "pupils_per_teacher", "min_pupils"):
                values[name] = getattr(form, name).data
            title = _("Edit session %(code)s", code=found.code) if found else _("New session")
            try:
                _saved, change = allocation.save_session(term, found.id if found else None, values,
                                                    actor=current_user, confirm=posted_confirm())
            except allocation.ConfirmationNeeded as needed:
                return _confirm_page(needed, title=title, back=url_for("admin.sessions"))
            except allocation.AllocationError as exc:
                _refused(exc)
            else:
                flash(_("Saved.") if not change.lost else
                      _("Saved. The plan is amended: %(n)d seats were taken away.", n=len(change.lost)), "success")
                return redirect(url_for("admin.sessions"))
    title = _("Edit session") if session_id is not None else _("New session")
    return render_template("admin/form.html", form=form, title=title, back=url_for("admin.sessions"))


@bp.route("/sessions/<int:session_id>/delete", methods=["POST"])
@admin_view
def session_delete(session_id: int) -> ResponseReturnValue:
    found = own_session(session_id)
    try:
        allocation.delete_session(found.term, found.id, actor=current_user, confirm=posted_confirm())
    except allocation.ConfirmationNeeded as needed:
        return _confirm_page(needed, title=_("Delete session %(code)s", code=found.code),
                             back=url_for("admin.sessions"))
    except allocation.AllocationError as exc:
        _refused(exc)
    else:
        flash(_("Deleted."), "success")
    return redirect(url_for("admin.sessions"))


# ------------------------------------------------------------------------------------------ teachers


@bp.route("/teachers")
@admin_view
def teachers() -> ResponseReturnValue:
    rows = db.session.scalars(
        select(Teacher).where(Teacher.school_id == g.school.id).order_by(Teacher.code)).all()
    slots: dict[int, int] = {}
    if g.term is not None:
        slots = dict(db.session.execute(
            select(TeacherAvailability.teacher_id, func.count())
            .where(TeacherAvailability.term_id == g.term.id).group_by(TeacherAvailability.teacher_id)).all())
    return render_template("admin/teachers.html", teachers=rows, slots=slots, term=g.term, mask_phone=mask_phone,
                           mask_email=mask_email)


def _split_tags(value: str | list[str] | None) -> list[str]:
    """Qualification tags from the form's text; a form posted without the field keeps the teacher's own list."""
    text = "、".join(value) if isinstance(value, list) else (value or "")
    return sorted({tag for tag in re.split(r"[,，、;；\s]+", text) if tag})


@bp.route("/teachers/new", methods=["GET", "POST"])
@bp.route("/teachers/<int:teacher_id>/edit", methods=["GET", "POST"])
@admin_view
def teacher_form(teacher_id: int | None = None) -> ResponseReturnValue:
    teacher = own_teacher(teacher_id) if teacher_id is not None else None
    term: Term | None = g.term
    form = TeacherForm(obj=teacher)
    periods = list(term.periods) if term else []
    allowed = {f"{day}:{p.id}" for day in (term.weekdays if term else []) for p in periods}
    current: set[str] = set()
    if teacher is not None and term is not None:
        current = {f"{day}:{period_id}" for day, period_id in db.session.execute(
            select(TeacherAvailability.day, TeacherAvailability.period_id)
            .where(TeacherAvailability.teacher_id == teacher.id, TeacherAvailability.term_id == term.id))}
    if request.method == "GET":
        form.phone.data = form.email.data = None  # shown masked as a hint, never in full
        if teacher is not None:
            form.qualifications.data = "、".join(teacher.qualifications)
        else:
            form.max_sessions.data = 5
    checked = set(request.form.getlist("available")) & allowed if request.method == "POST" else current
    if form.validate_on_submit():
        clash = db.session.scalar(select(Teacher.id).where(Teacher.school_id == g.school.id,
                                                           Teacher.code == form.code.data))
        refused = (unknown_qualification_message(_split_tags(form.qualifications.data),
                                                 known_qualifications(g.school.id))
                   if isinstance(form.qualifications.data, str) else None)  # a list: the field was not posted
        if clash is not None and (teacher is None or clash != teacher.id):
            form.code.errors.append(_("Another teacher of this school already has this staff number."))
        elif refused is not None:
            form.qualifications.errors.append(refused)
        else:
            def apply(row: Teacher | None) -> Teacher:
                if row is None:
                    row = Teacher(school_id=g.school.id)
                    db.session.add(row)
                row.code = form.code.data.strip()
                row.name = form.name.data.strip()
                row.qualifications = _split_tags(form.qualifications.data)
                row.max_sessions = form.max_sessions.data
                row.active = bool(form.active.data)
                if form.clear_contact.data:
                    row.phone = row.email = None
                row.phone, row.email = form.phone.data or row.phone, form.email.data or row.email
                row.locale = form.locale.data
                db.session.flush()
                if term is not None and checked != current:
                    db.session.execute(delete(TeacherAvailability).where(
                        TeacherAvailability.teacher_id == row.id, TeacherAvailability.term_id == term.id))
                    rows = [{"teacher_id": row.id, "term_id": term.id, "day": int(day), "period_id": int(period)}
                            for day, period in (slot.split(":") for slot in sorted(checked))]
                    if rows:
                        db.session.execute(insert(TeacherAvailability), rows)
                    db.session.expire(row, ["availability"])
                record("teacher.save", f"teacher:{row.id}", {"slots": len(checked)})
                return row

            try:
                allocation.save_teacher(term, teacher.id if teacher else None, apply, actor=current_user,
                                        confirm=posted_confirm())
            except allocation.ConfirmationNeeded as needed:
                return _confirm_page(needed, title=_("Edit teacher %(name)s", name=form.name.data),
                                     back=url_for("admin.teachers"))
            except allocation.AllocationError as exc:
                _refused(exc)
            else:
                flash(_("Saved."), "success")
                return redirect(url_for("admin.teachers"))
    title = _("Edit teacher") if teacher_id is not None else _("New teacher")
    return render_template("admin/teacher_form.html", form=form, title=title, term=term, periods=periods,
                           checked=checked, known_tags=known_qualifications(g.school.id), teacher=teacher,
                           mask_phone=mask_phone, mask_email=mask_email)


@bp.route("/teachers/<int:teacher_id>/delete", methods=["POST"])
@admin_view
def teacher_delete(teacher_id: int) -> ResponseReturnValue:
    teacher = own_teacher(teacher_id)
    try:
        allocation.delete_teacher(g.term, teacher.id, actor=current_user, confirm=posted_confirm())
    except allocation.ConfirmationNeeded as needed:
        return _confirm_page(needed, title=_("Delete teacher %(name)s", name=teacher.name),
                             back=url_for("admin.teachers"))
    except allocation.AllocationError as exc:
        _refused(exc)
    else:
        flash(_("Deleted."), "success")
    return redirect(url_for("admin.teachers"))
