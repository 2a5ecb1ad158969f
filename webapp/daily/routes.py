"""Pages of the daily service (phone pages): the family's absences, pickup persons and one-off delegates;
the duty teacher's sessions of today, roll-call, sign-out and the "still here" board; the school admin's
term calendar import; the bureau's attendance figures (counts only).

Views parse the form, call one function of `webapp.daily.service` and redirect; a refusal is flashed in the
user's language and nothing is written (the service audits the attempt where the rules ask for it).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import date, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from webapp.admin.importer import ImportRejected, Problem
from webapp.admin.scope import mask_phone, newest_term
from webapp.daily import alerts, class_teachers, notice, rollcall, service
from webapp.daily.attendance import child_days, marks_in_force
from webapp.daily.calendar_edit import CalendarError, add_entry, own_calendar, remove_entry
from webapp.daily.calendar_import import MAX_UPLOAD_BYTES, import_calendar, template_file
from webapp.daily.figures import rollup, school_figures
from webapp.daily.forms import (
    AbsenceForm,
    CalendarEntryForm,
    CalendarImportForm,
    ClassTeacherForm,
    DelegateForm,
    HandoverForm,
    MarkForm,
    NoticeForm,
    PickupPersonForm,
    SignForm,
    add_form_error,
    clean_person,
)
from webapp.daily.hours import hours_workbook
from webapp.daily.layers import SOURCE_NAMES, effective_calendar, school_calendar
from webapp.daily.roster import RosterSession
from webapp.extensions import db
from webapp.labels import class_label, show_time
from webapp.models import AlertProblem, Handover, Pupil, School, Session, Teacher, Term
from webapp.parents import service as parents
from webapp.security import bureau_required, bureau_scope, parent_required, role_required, school_admin_required
from webapp.services import school_today
from webapp.tabular import XLSX_MIMETYPE

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint("daily", __name__, url_prefix="/daily")

UPCOMING_DAYS = 14


def _own(pupil_id: int) -> Pupil:
    try:
        return parents.own_pupil(current_user, pupil_id)
    except parents.NotYourChild:
        abort(404)


def _child_page(pupil: Pupil, *, absence: AbsenceForm | None = None, person: PickupPersonForm | None = None,
                delegate: DelegateForm | None = None) -> str:
    today = school_today()
    absences = service.absences_of(pupil, today)
    return render_template(
        "daily/child.html", pupil=pupil, days=child_days(pupil, today, today + timedelta(days=UPCOMING_DAYS - 1)),
        absences=[(a, service.can_cancel(a)) for a in absences], persons=service.pickup_persons(pupil),
        cutoff=service.absence_cutoff(pupil, today),
        absence_form=absence or AbsenceForm(formdata=None, first_day=today),
        person_form=person or PickupPersonForm(formdata=None),
        delegate_form=delegate or DelegateForm(formdata=None, valid_on=today))


def int_form(value: str | None) -> int | None:
    """A positive database id from a hidden form field, else None."""
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and 0 < len(text) <= 18 else None


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


@bp.route("/children/<int:pupil_id>/notice", methods=["GET", "POST"])
@parent_required
def notice_sign(pupil_id: int) -> ResponseReturnValue:
    """The service notice in force for the child's term, and the guardian's signature of it."""
    pupil = _own(pupil_id)
    term = parents.current_term(pupil)
    current = notice.notice_in_force(term.id) if term is not None else None
    form = SignForm()
    if current is not None and form.validate_on_submit():
        notice_id = int_form(form.notice_id.data)
        try:
            _signed, created = notice.sign_notice(current_user, pupil, notice_id or 0)
        except service.DailyError as error:
            _refused(error)
            return redirect(url_for("daily.notice_sign", pupil_id=pupil.id))
        flash(_("Thank you: the agreement is signed.") if created else _("The agreement was already signed."),
              "success")
        return redirect(url_for("parents.child", pupil_id=pupil.id))
    if current is not None and not form.is_submitted():
        form.notice_id.data = str(current.id)
    signature = notice.signature_of(current, pupil.id) if current is not None else None
    return render_template("daily/notice_sign.html", pupil=pupil, notice=current, signature=signature,
                           form=form), 422 if form.errors else 200


# ------------------------------------------------------------------------------------------ duty teacher


def duty_teacher_required(view: F) -> F:
    """A duty-teacher account linked to an active teacher record, loaded into `g.teacher`; others 403."""

    @wraps(view)
    @role_required("duty_teacher")
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        teacher = rollcall.duty_teacher(current_user)
        if teacher is None:
            abort(403)
        g.teacher = teacher
        return view(*args, **kwargs)

    return cast(F, wrapped)


@bp.route("/duty")
@duty_teacher_required
def duty() -> ResponseReturnValue:
    """Today's sessions at the teacher's school, with how many pupils are expected and marked."""
    now = rollcall.today_of(g.teacher.school_id)
    sessions = {s.id: s for s in db.session.scalars(select(Session).where(
        Session.id.in_([e.session_id for e in now.roster.sessions])))}
    marks = marks_in_force(now.on, session_ids=list(sessions))
    rows = [(entry, sessions[entry.session_id], sum(1 for (_p, sid) in marks if sid == entry.session_id))
            for entry in now.roster.sessions]
    return render_template("daily/duty.html", now=now, rows=rows, late=len(rollcall.still_here(g.teacher)),
                           my_alerts=alerts.class_teacher_alerts(g.teacher, now.on), class_label=class_label)


@bp.route("/duty/sessions/<int:session_id>")
@duty_teacher_required
def duty_session(session_id: int) -> ResponseReturnValue:
    found = rollcall.session_today(g.teacher, session_id)
    if found is None:
        abort(404)
    return _session_page(*found)


def _session_page(now: rollcall.Today, entry: RosterSession, session: Session) -> ResponseReturnValue:
    pupil_ids = list(entry.expected + entry.reported_absent)
    pupils = {p.id: p for p in db.session.scalars(select(Pupil).where(Pupil.id.in_(pupil_ids)))}
    marks = marks_in_force(now.on, pupil_ids, [session.id])
    gone = {h.pupil_id: h for h in db.session.scalars(select(Handover).where(
        Handover.day == now.on, Handover.pupil_id.in_(pupil_ids)))}
    rows = [(pupils[pid], pid in entry.reported_absent, marks.get((pid, session.id)), gone.get(pid))
            for pid in sorted(pupil_ids, key=lambda p: (pupils[p].class_name, pupils[p].name))]
    return render_template("daily/duty_session.html", now=now, entry=entry, session=session, rows=rows,
                           alerts=alerts.pupils_alerts(pupil_ids, now.on), class_label=class_label,
                           new_client_id=lambda: secrets.token_urlsafe(16))


FETCHED = "fetch"
"""`X-Requested-With` of a mark sent by the roll-call page's script (`js/rollcall.js`)."""


@bp.route("/duty/sessions/<int:session_id>/mark", methods=["POST"])
@duty_teacher_required
def mark(session_id: int) -> ResponseReturnValue:
    """One tap: present, late or absent. A retried post (same client id) changes nothing.

    The plain form is answered with a redirect to the session page (at the pupil's row). Sent by the page's
    script, the answer is the pupil's row alone (200), 204 when the page should be reloaded instead (a retried
    form, a pupil already collected), or the refusal as plain text with its status.
    """
    fetched = request.headers.get("X-Requested-With") == FETCHED
    form = MarkForm()
    pupil_id = int_form(form.pupil_id.data)
    if not form.validate_on_submit() or pupil_id is None:
        message = _("The mark was not understood. Reload the page and try again.")
        if fetched:
            return Response(message, 400, mimetype="text/plain")
        flash(message, "error")
        return redirect(url_for("daily.duty_session", session_id=session_id))
    try:
        marked = rollcall.mark(current_user, g.teacher, session_id, pupil_id, form.status.data or "",
                               form.client_id.data or "", form.reason.data or "")
    except service.DailyError as error:
        if fetched:
            return Response(_(error.message, **error.params), error.status, mimetype="text/plain")
        _refused(error)
        if error.status == 404:
            return redirect(url_for("daily.duty"))
    else:
        if fetched and marked.row is None:
            return "", 204
        if fetched:  # the row shows the alert's note: no flash
            return render_template("daily/rollcall_row.html", row=marked.row, session_id=session_id,
                                   class_label=class_label, new_client_id=lambda: secrets.token_urlsafe(16))
        if marked.alert is not None:
            _flash_alert(marked.alert, marked.row or db.session.get(Pupil, pupil_id))
    return redirect(url_for("daily.duty_session", session_id=session_id) + f"#pupil-{pupil_id}")


def _flash_alert(alert: alerts.AlertNote, pupil: rollcall.RollCallRow | Pupil | None) -> None:
    """Tell the duty teacher who was told of the absence, or that the class teacher could not be."""
    label = class_label(pupil.grade, pupil.class_name) if pupil is not None and pupil.class_name else _("no class")
    if alert.problem == AlertProblem.NO_CLASS_TEACHER:
        flash(_("The family is told. No class teacher is recorded for %(class_name)s: tell the class teacher "
                "yourself.", class_name=label), "warning")
    elif alert.problem == AlertProblem.NO_CONTACT:
        flash(_("The family is told. The class teacher %(name)s has no phone or e-mail on file: tell them "
                "yourself.", name=alert.class_teacher), "warning")
    else:
        flash(_("The family and the class teacher %(name)s are told.",
                name=alert.class_teacher), "success")


@bp.route("/duty/pupils/<int:pupil_id>/handover")
@duty_teacher_required
def handover_page(pupil_id: int) -> ResponseReturnValue:
    """Sign-out: the authorised persons with their full numbers (the one staff view that shows them)."""
    found = rollcall.pupil_today(g.teacher, pupil_id)
    if found is None:
        abort(404)
    now, pupil = found
    done = db.session.scalar(select(Handover).where(Handover.pupil_id == pupil_id, Handover.day == now.on))
    return render_template("daily/handover.html", now=now, pupil=pupil, done=done,
                           persons=service.pickup_persons(pupil), form=HandoverForm(formdata=None))


@bp.route("/duty/pupils/<int:pupil_id>/handover", methods=["POST"])
@duty_teacher_required
def handover(pupil_id: int) -> ResponseReturnValue:
    form = HandoverForm()
    person_id = int_form(form.person_id.data)
    if not form.validate_on_submit():
        flash(_("The handover was not understood. Reload the page and try again."), "error")
        return redirect(url_for("daily.handover_page", pupil_id=pupil_id))
    try:
        done = rollcall.hand_over(current_user, g.teacher, pupil_id, person_id=person_id,
                                  code=form.code.data or "")
    except service.DailyError as error:
        _refused(error)
        if error.status == 404:
            return redirect(url_for("daily.duty"))
        return redirect(url_for("daily.handover_page", pupil_id=pupil_id))
    flash(_("Handed over at %(time)s.", time=show_time(done.at)), "success")
    return redirect(url_for("daily.duty_session", session_id=done.session_id) if done.session_id
                    else url_for("daily.duty"))


@bp.route("/duty/still-here")
@duty_teacher_required
def still_here() -> ResponseReturnValue:
    """Pupils still waiting after their pickup time, with the family's numbers to call."""
    return render_template("daily/still_here.html", now=rollcall.today_of(g.teacher.school_id),
                           waiting=rollcall.still_here(g.teacher))


# ------------------------------------------------------------------------------------------ school admin


@bp.route("/calendar", methods=["GET", "POST"])
@school_admin_required
def calendar() -> ResponseReturnValue:
    """The newest term's effective calendar (what the city and the district publish, and the school's own
    entries), and the import of the school's own entries from a spreadsheet (which replaces them)."""
    term = newest_term()
    form = CalendarImportForm()
    problems: list[Problem] = []
    if term is not None and form.validate_on_submit():
        upload = form.file.data
        try:
            import_calendar(term, upload.filename or "", upload.stream.read(MAX_UPLOAD_BYTES + 1))
        except ImportRejected as rejected:
            db.session.rollback()
            problems = rejected.problems
        else:
            flash(_("The calendar is imported."), "success")
            return redirect(url_for("daily.calendar"))
    return _calendar_page(term, form, CalendarEntryForm(formdata=None), problems), 422 if problems else 200


def _calendar_page(term: Term | None, form: CalendarImportForm, entry_form: CalendarEntryForm,
                   problems: list[Problem]) -> str:
    effective = effective_calendar(term) if term is not None else None
    return render_template("daily/calendar.html", term=term, own=school_calendar(term) if term else None,
                           effective=effective, form=form, entry_form=entry_form, problems=problems,
                           sources=SOURCE_NAMES)


@bp.route("/calendar/entries", methods=["POST"])
@school_admin_required
def calendar_entry_add() -> ResponseReturnValue:
    """Add one of the school's own entries (a sports day, a school holiday) on top of the inherited calendar."""
    term = newest_term()
    if term is None:
        abort(404)
    entry_form = CalendarEntryForm()
    if entry_form.validate_on_submit():
        try:
            add_entry(current_user, own_calendar(term), entry_form.kind.data, entry_form.first_day.data,
                      entry_form.last_day.data, runs_weekday=entry_form.runs_weekday.data or None,
                      pickup=entry_form.pickup_time.data or None, note=entry_form.note.data or "", term=term)
        except CalendarError as error:
            db.session.rollback()
            add_form_error(entry_form, error.field, error.message)
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("daily.calendar"))
    return _calendar_page(term, CalendarImportForm(formdata=None), entry_form, []), 400


@bp.route("/calendar/<any(day, window):what>/<int:entry_id>/remove", methods=["POST"])
@school_admin_required
def calendar_entry_remove(what: str, entry_id: int) -> ResponseReturnValue:
    """Remove one of the school's own entries; the inherited ones are the bureau's (404 here)."""
    term = newest_term()
    own = school_calendar(term) if term is not None else None
    if own is None or not remove_entry(current_user, own, what, entry_id):
        abort(404)
    flash(_("Removed."), "success")
    return redirect(url_for("daily.calendar"))


@bp.route("/calendar/template.xlsx")
@school_admin_required
def calendar_template() -> ResponseReturnValue:
    response = Response(template_file(), mimetype=XLSX_MIMETYPE)
    response.headers["Content-Disposition"] = "attachment; filename=calendar-template.xlsx"
    return response


@bp.route("/notice", methods=["GET", "POST"])
@school_admin_required
def notice_admin() -> ResponseReturnValue:
    """The newest term's service notice: the version in force, earlier versions, and a new version's form."""
    term = newest_term()
    current = notice.notice_in_force(term.id) if term is not None else None
    form = NoticeForm()
    if term is not None and form.validate_on_submit():
        try:
            published = notice.publish_notice(current_user, term, form.title.data.strip(), form.content.data,
                                              form.hours.data.strip(), form.safety.data)
        except service.DailyError as error:
            _refused(error)
        else:
            flash(_("Version %(version)d is published and in force; families sign it before requesting care.",
                    version=published.version), "success")
            return redirect(url_for("daily.notice_admin"))
    elif current is not None and not form.is_submitted():
        form.title.data, form.content.data = current.title, current.content
        form.hours.data, form.safety.data = current.hours, current.safety
    versions = notice.notice_versions(term.id) if term is not None else []
    return render_template("daily/notice_admin.html", term=term, notice=current, versions=versions,
                           form=form), 422 if form.errors else 200


@bp.route("/notice/report")
@school_admin_required
def notice_report() -> ResponseReturnValue:
    """Every placed pupil and whether a guardian signed the version in force; the unsigned listed first."""
    term = newest_term()
    report = notice.signature_report(term) if term is not None else None
    return render_template("daily/notice_report.html", term=term, report=report)


@bp.route("/class-teachers", methods=["GET", "POST"])
@school_admin_required
def class_teacher_list() -> ResponseReturnValue:
    """Every class of the school with its class teacher (班主任), who is told of an absence nobody reported."""
    teachers = list(db.session.scalars(select(Teacher).where(Teacher.school_id == g.school.id, Teacher.active)
                                       .order_by(Teacher.code)))
    form = ClassTeacherForm()
    form.teacher_id.choices = [("", _("(none)"))] + [(str(t.id), f"{t.name} ({t.code})") for t in teachers]
    if form.is_submitted():
        grade = int_form(form.grade.data)
        if not form.validate() or grade is None:
            flash(_("The class teacher was not understood. Reload the page and try again."), "error")
        else:
            try:
                class_teachers.set_class_teacher(current_user, g.school, grade, form.class_name.data or "",
                                                 int_form(form.teacher_id.data))
            except service.DailyError as error:
                _refused(error)
            else:
                flash(_("Saved."), "success")
        return redirect(url_for("daily.class_teacher_list"))
    return render_template("daily/class_teachers.html", classes=class_teachers.school_classes(g.school.id),
                           choices=form.teacher_id.choices, class_label=class_label, mask_phone=mask_phone)


@bp.route("/alerts")
@school_admin_required
def alert_overview() -> ResponseReturnValue:
    """Today's absences nobody reported (`?day=YYYY-MM-DD` for another day): who was told, what did not arrive."""
    text = request.args.get("day", "")
    try:
        on = date.fromisoformat(text) if text else school_today()
    except ValueError:
        abort(400)
    rows = alerts.school_alerts(g.school.id, on)
    undelivered = sum(1 for row in rows if row.state in alerts.AlertState.UNDELIVERED)
    return render_template("daily/alerts.html", rows=rows, on=on, undelivered=undelivered,
                           class_label=class_label, undelivered_states=alerts.AlertState.UNDELIVERED)


# ------------------------------------------------------------------------------------------ bureau


BUREAU_DAYS = 14


@bp.route("/bureau")
@bureau_required
def bureau() -> ResponseReturnValue:
    """Attendance against placements, late pickups and signed agreements over the last two weeks, per school in
    scope and rolled up by district and city (counts and rates, never a name)."""
    last = school_today()
    first = last - timedelta(days=BUREAU_DAYS - 1)
    schools = db.session.scalars(select(School).where(bureau_scope(current_user))
                                 .order_by(School.district_id, School.code)).all()
    rows = [school_figures(school, first, last) for school in schools]
    active = [r for r in rows if r.expected or r.reported_absent or r.placed]
    no_district, no_city = _("(no district)"), _("(no city)")
    return render_template(
        "daily/bureau.html", rows=active, first=first, last=last, quiet=len(rows) - len(active),
        cities=rollup(active, lambda s: s.district.city or no_city if s.district else no_city),
        districts=rollup(active, lambda s: s.district.name if s.district else no_district),
        total=rollup(active, lambda s: "")[0] if active else None)


def _month(text: str) -> date | None:
    """The first day of a month written YYYY-MM, else None."""
    if not re.fullmatch(r"\d{4}-\d{2}", text):
        return None
    try:
        return date(int(text[:4]), int(text[5:]), 1)
    except ValueError:
        return None


@bp.route("/hours.xlsx")
@school_admin_required
def teacher_hours() -> ResponseReturnValue:
    """`?month=YYYY-MM` (default: this month): the teachers' lessons for payroll as .xlsx."""
    text = request.args.get("month", "")
    first = _month(text) if text else school_today().replace(day=1)
    if first is None:
        abort(400)
    response = Response(hours_workbook(g.school, first), mimetype=XLSX_MIMETYPE)
    response.headers["Content-Disposition"] = f"attachment; filename=teacher-hours-{first:%Y-%m}.xlsx"
    return response
