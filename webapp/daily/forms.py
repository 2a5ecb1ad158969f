"""Forms of the daily service, and the one check of a pickup person's details (shared with the API)."""

from __future__ import annotations

from typing import Any

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp

from webapp.inputs import control_character
from webapp.labels import DAY_NAMES
from webapp.security import PHONE_RE, normalise_phone

NAME_MAX = 50
RELATION_MAX = 20


def clean_person(values: dict[str, Any]) -> tuple[dict[str, str], dict[str, LazyString]]:
    """A pickup person's name, relation and phone, trimmed and checked: (values, problems by field)."""
    cleaned: dict[str, str] = {}
    problems: dict[str, LazyString] = {}
    for key, limit in (("name", NAME_MAX), ("relation", RELATION_MAX)):
        value = values.get(key)
        text = value.strip() if isinstance(value, str) else ""
        if not text or len(text) > limit or control_character(text):
            problems[key] = _l("Enter 1 to %(n)d characters.", n=limit)
        cleaned[key] = text
    phone = values.get("phone")
    number = normalise_phone(phone.strip()) if isinstance(phone, str) and len(phone) <= 32 else ""
    if not PHONE_RE.match(number):
        problems["phone"] = _l("Enter an 11-digit mainland mobile number.")
    cleaned["phone"] = number
    return cleaned, problems


def add_form_error(form: FlaskForm, field: str, message: str) -> None:
    """Show a service's refusal on the field it is about, or above the form when it names none."""
    if field and field in form:
        form[field].errors = [*form[field].errors, message]
    else:
        form.form_errors.append(message)


class AbsenceForm(FlaskForm):
    first_day = DateField(_l("First day away"), validators=[InputRequired(message=_l("Choose a date."))])
    last_day = DateField(_l("Until (optional)"), validators=[Optional()])
    reason = StringField(_l("Reason"), validators=[DataRequired(message=_l("Give a reason.")), Length(max=200)])
    submit = SubmitField(_l("Report absence"))


class PickupPersonForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=NAME_MAX)])
    relation = StringField(_l("Relation to the child"), validators=[DataRequired(), Length(max=RELATION_MAX)])
    phone = StringField(_l("Mobile number"), validators=[DataRequired(), Length(max=32)])
    submit = SubmitField(_l("Add pickup person"))


class DelegateForm(FlaskForm):
    name = StringField(_l("Name of the person collecting"), validators=[DataRequired(), Length(max=NAME_MAX)])
    valid_on = DateField(_l("Date"), validators=[InputRequired(message=_l("Choose a date."))])
    submit = SubmitField(_l("Create one-off code"))


class MarkForm(FlaskForm):
    """One tap on the roll-call page: the pupil, the session and the mark; `client_id` makes a retry harmless."""

    pupil_id = HiddenField(validators=[InputRequired()])
    session_id = HiddenField(validators=[InputRequired()])
    client_id = HiddenField(validators=[InputRequired(), Length(min=8, max=64)])
    status = RadioField(choices=[SelectChoice("present", _l("Mark present")), SelectChoice("late", _l("Mark late")),
                                 SelectChoice("absent", _l("Mark absent"))], validators=[InputRequired()])
    reason = StringField(_l("Reason for the correction"), validators=[Optional(), Length(max=200)])


class HandoverForm(FlaskForm):
    pupil_id = HiddenField(validators=[InputRequired()])
    person_id = HiddenField()
    code = StringField(_l("One-off code"), validators=[Optional(), Length(max=32)])


class CalendarImportForm(FlaskForm):
    file = FileField(_l("Calendar spreadsheet (.xlsx or .csv)"),
                     validators=[FileRequired(_l("Choose a file to upload."))])
    submit = SubmitField(_l("Check and import the calendar"))


ENTRY_KINDS = (SelectChoice("holiday", _l("No service (holiday)")), SelectChoice("makeup", _l("Make-up day")),
               SelectChoice("early_close", _l("Early close")), SelectChoice("season", _l("Seasonal pickup time")))


class CalendarEntryForm(FlaskForm):
    """One entry of a term calendar, for a school's own layer or a city or district calendar."""

    kind = SelectField(_l("Kind"), choices=list(ENTRY_KINDS), validators=[InputRequired()])
    first_day = DateField(_l("First day"), validators=[InputRequired(_l("Enter a date."))])
    last_day = DateField(_l("Last day (a range of holidays, a season; leave empty for one day)"),
                         validators=[Optional()])
    runs_weekday = SelectField(_l("Timetable of (make-up day)"), coerce=int, validators=[Optional()])
    pickup_time = StringField(_l("Pickup by (early close, season), e.g. 16:30"),
                              validators=[Optional(), Regexp(r"^([01]\d|2[0-3]):[0-5]\d$",
                                                             message=_l("give a time like 16:30."))])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=100)])
    submit = SubmitField(_l("Add"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runs_weekday.choices = [SelectChoice(0, "—")] + [SelectChoice(day, DAY_NAMES[day]) for day in range(1, 6)]


class BureauCalendarForm(FlaskForm):
    """A new city or district calendar: the term's name as schools call it, and its first and last day."""

    term_name = StringField(_l("Term name (as the schools' terms are called)"),
                            validators=[DataRequired(_l("Enter a name.")), Length(max=64)])
    first_day = DateField(_l("First day"), validators=[InputRequired(_l("Enter a date."))])
    last_day = DateField(_l("Last day"), validators=[InputRequired(_l("Enter a date."))])
    submit = SubmitField(_l("Create the draft"))


class BureauCalendarImportForm(FlaskForm):
    term_name = StringField(_l("Term name (as the schools' terms are called)"),
                            validators=[DataRequired(_l("Enter a name.")), Length(max=64)])
    file = FileField(_l("Calendar spreadsheet (.xlsx or .csv)"),
                     validators=[FileRequired(_l("Choose a file to upload."))])
    submit = SubmitField(_l("Check and import the calendar"))


class NoticeForm(FlaskForm):
    """A new version of the service notice and safety agreement (告家长书); it supersedes the one in force."""

    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=100)])
    content = TextAreaField(_l("Notice to families"), validators=[DataRequired(), Length(max=20000)])
    hours = StringField(_l("Service hours"), validators=[DataRequired(), Length(max=200)])
    safety = TextAreaField(_l("Safety arrangements"), validators=[DataRequired(), Length(max=20000)])
    submit = SubmitField(_l("Publish this version"))

    def validate(self, extra_validators: Any = None) -> bool:
        ok = bool(super().validate(extra_validators))
        for field in (self.title, self.hours):
            if field.data and control_character(field.data):
                field.errors = [*field.errors, _l("Enter text without control characters.")]
                ok = False
        return ok


class SignForm(FlaskForm):
    """A guardian's agreement to the version shown (`notice_id`), for one child."""

    notice_id = HiddenField(validators=[InputRequired()])
    agree = BooleanField(_l("I have read the notice and agree to the safety arrangements."),
                         validators=[DataRequired(message=_l("Tick the box to agree."))])
    submit = SubmitField(_l("Sign"))


class ClassTeacherForm(FlaskForm):
    """The class teacher of one class: the class in hidden fields, the teacher chosen (or none)."""

    grade = HiddenField(validators=[InputRequired()])
    class_name = HiddenField(validators=[InputRequired(), Length(max=64)])
    teacher_id = SelectField(_l("Class teacher"), choices=[], validate_choice=True)
    submit = SubmitField(_l("Save"))
