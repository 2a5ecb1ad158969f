"""Term calendars the city or a district publishes for schools to inherit (`/bureau/calendars`).

Every bureau user reads the city's calendars and those of the districts in their scope (another district's is a
404); a city-wide user changes the city's, a district user their own district's (anything else is a 403). The
rules and writes are `webapp.daily.calendar_edit`; what a school ends up with is `webapp.daily.layers`.
"""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from webapp.admin.importer import ImportRejected, Problem
from webapp.bureau.routes import bp
from webapp.daily.calendar_edit import (
    CalendarError,
    add_entry,
    create_calendar,
    import_bureau_calendar,
    may_edit,
    publish,
    readable,
    readable_one,
    remove_entry,
)
from webapp.daily.calendar_import import MAX_UPLOAD_BYTES, template_file
from webapp.daily.forms import BureauCalendarForm, BureauCalendarImportForm, CalendarEntryForm, add_form_error
from webapp.extensions import db
from webapp.models import BureauCalendar
from webapp.security import bureau_required
from webapp.tabular import XLSX_MIMETYPE


def _list_page(form: BureauCalendarForm, import_form: BureauCalendarImportForm,
               problems: list[Problem] | None = None) -> str:
    return render_template("bureau/calendars.html", calendars=readable(current_user), form=form,
                           import_form=import_form, problems=problems or [], may_edit=may_edit)


@bp.route("/calendars", methods=["GET", "POST"])
@bureau_required
def calendars() -> ResponseReturnValue:
    """The calendars in scope, and a new draft of the user's own scope (the city's, or their district's)."""
    form = BureauCalendarForm()
    if form.validate_on_submit():
        try:
            calendar = create_calendar(current_user, form.term_name.data, form.first_day.data, form.last_day.data)
        except CalendarError as error:
            db.session.rollback()
            add_form_error(form, error.field, error.message)
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("bureau.calendar", calendar_id=calendar.id))
        return _list_page(form, BureauCalendarImportForm(formdata=None)), 400
    status = 400 if form.is_submitted() else 200
    return _list_page(form, BureauCalendarImportForm(formdata=None)), status


@bp.route("/calendars/import", methods=["POST"])
@bureau_required
def calendar_import() -> ResponseReturnValue:
    """The calendar for a term name from a spreadsheet: a new draft, or it replaces the one of that name."""
    import_form = BureauCalendarImportForm()
    problems: list[Problem] = []
    if import_form.validate_on_submit():
        upload = import_form.file.data
        try:
            calendar = import_bureau_calendar(current_user, import_form.term_name.data, upload.filename or "",
                                              upload.stream.read(MAX_UPLOAD_BYTES + 1))
        except ImportRejected as rejected:
            db.session.rollback()
            problems = rejected.problems
        except CalendarError as error:
            db.session.rollback()
            add_form_error(import_form, error.field, error.message)
        else:
            flash(_("The calendar is imported."), "success")
            return redirect(url_for("bureau.calendar", calendar_id=calendar.id))
    return _list_page(BureauCalendarForm(formdata=None), import_form, problems), 422 if problems else 400


@bp.route("/calendars/template.xlsx")
@bureau_required
def calendar_template() -> ResponseReturnValue:
    """The schools' calendar template: the bureau fills in the same columns."""
    response = Response(template_file(), mimetype=XLSX_MIMETYPE)
    response.headers["Content-Disposition"] = "attachment; filename=calendar-template.xlsx"
    return response


def _calendar_or_404(calendar_id: int) -> BureauCalendar:
    calendar = readable_one(current_user, calendar_id)
    if calendar is None:
        abort(404)
    return calendar


def _page(calendar: BureauCalendar, entry_form: CalendarEntryForm) -> str:
    return render_template("bureau/calendar.html", calendar=calendar, entry_form=entry_form,
                           can_edit=may_edit(current_user, calendar))


@bp.route("/calendars/<int:calendar_id>", methods=["GET", "POST"])
@bureau_required
def calendar(calendar_id: int) -> ResponseReturnValue:
    """One calendar's entries; its own bureau adds entries here (a POST from anyone else is a 403)."""
    found = _calendar_or_404(calendar_id)
    entry_form = CalendarEntryForm()
    if not entry_form.is_submitted():
        return _page(found, CalendarEntryForm(formdata=None))
    if not may_edit(current_user, found):
        abort(403)
    if entry_form.validate():
        try:
            add_entry(current_user, found, entry_form.kind.data, entry_form.first_day.data, entry_form.last_day.data,
                      runs_weekday=entry_form.runs_weekday.data or None, pickup=entry_form.pickup_time.data or None,
                      note=entry_form.note.data or "")
        except CalendarError as error:
            db.session.rollback()
            add_form_error(entry_form, error.field, error.message)
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("bureau.calendar", calendar_id=calendar_id))
    return _page(found, entry_form), 400


@bp.route("/calendars/<int:calendar_id>/<any(day, window):what>/<int:entry_id>/remove", methods=["POST"])
@bureau_required
def calendar_entry_remove(calendar_id: int, what: str, entry_id: int) -> ResponseReturnValue:
    found = _calendar_or_404(calendar_id)
    if not may_edit(current_user, found):
        abort(403)
    if not remove_entry(current_user, found, what, entry_id):
        abort(404)
    flash(_("Removed."), "success")
    return redirect(url_for("bureau.calendar", calendar_id=calendar_id))


@bp.route("/calendars/<int:calendar_id>/publish", methods=["POST"])
@bureau_required
def calendar_publish(calendar_id: int) -> ResponseReturnValue:
    """Schools' terms of this name inherit the calendar from now on."""
    found = _calendar_or_404(calendar_id)
    if not may_edit(current_user, found):
        abort(403)
    publish(current_user, found)
    flash(_("Published: schools' terms called %(name)s now use this calendar.", name=found.term_name), "success")
    return redirect(url_for("bureau.calendar", calendar_id=calendar_id))
