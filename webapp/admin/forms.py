"""Forms of the school admin's edit screens; checks that need the database live in the views."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from scheduler.domain import DEFAULT_SEAT_POLICY
from webapp.allocation.service import Confirm
from webapp.labels import SEAT_POLICY_LABELS
from webapp.notifications.forms import EMAIL_MAX, EMAIL_RE
from webapp.security import PHONE_RE, normalise_phone

REASON_MAX = 500
"""The longest reason an admin may give for an amendment (the confirmation form's limit)."""


def posted_confirm() -> Confirm:
    """The reason and preview token posted with an edit or an import (both absent on the first post)."""
    token = (request.form.get("plan_token") or "").strip() or None
    return Confirm((request.form.get("reason") or "").strip()[:REASON_MAX], token)


def posted_reason() -> str:
    """The reason as posted, for showing the confirmation page again."""
    return (request.form.get("reason") or "").strip()[:REASON_MAX]

CODE_PATTERN = Regexp(r"^[A-Za-z0-9_.\-]+$",
                      message=_l("Use letters, digits, dots, dashes or underscores only."))


class ImportForm(FlaskForm):
    file = FileField(_l("Spreadsheet (.xlsx or .csv, at most 5 MB)"),
                     validators=[FileRequired(_l("Choose a file to upload."))])
    submit = SubmitField(_l("Check and import"))


class ActivityForm(FlaskForm):
    code = StringField(_l("Code"),
                       validators=[DataRequired(_l("Enter a code.")), Length(max=64), CODE_PATTERN])
    name = StringField(_l("Activity name"), validators=[DataRequired(_l("Enter a name.")), Length(max=100)])
    category = StringField(_l("Category"), validators=[Optional(), Length(max=64)])
    qualification = StringField(_l("Qualification a teacher needs (empty: any teacher)"),
                                validators=[Optional(), Length(max=64)])
    description = TextAreaField(_l("What the children do, for parents (optional)"),
                                validators=[Optional(), Length(max=1000)])
    submit = SubmitField(_l("Save"))


def _int_field(label: Any, low: int, high: int) -> IntegerField:
    return IntegerField(label, validators=[
        InputRequired(_l("Enter a whole number.")),
        NumberRange(min=low, max=high, message=_l("Enter a whole number from %(min)s to %(max)s.")),
    ])


class SessionForm(FlaskForm):
    code = StringField(_l("Code"),
                       validators=[DataRequired(_l("Enter a code.")), Length(max=64), CODE_PATTERN])
    activity = SelectField(_l("Activity"), coerce=int, validators=[InputRequired()])
    day = SelectField(_l("Day"), coerce=int, validators=[InputRequired()])
    period = SelectField(_l("Period"), coerce=int, validators=[InputRequired()])
    room = StringField(_l("Room"), validators=[Optional(), Length(max=100)])
    capacity = _int_field(_l("Capacity"), 0, 2000)
    grade_lo = _int_field(_l("Lowest grade"), 1, 6)
    grade_hi = _int_field(_l("Highest grade"), 1, 6)
    pupils_per_teacher = _int_field(_l("Pupils per teacher"), 1, 2000)
    min_pupils = _int_field(_l("Minimum pupils to open"), 0, 2000)
    submit = SubmitField(_l("Save"))

    def validate_grade_hi(self, field: IntegerField) -> None:
        if self.grade_lo.data is not None and field.data is not None and self.grade_lo.data > field.data:
            raise ValidationError(_l("The highest grade must not be below the lowest grade."))


class TeacherForm(FlaskForm):
    code = StringField(_l("Staff number"),
                       validators=[DataRequired(_l("Enter a staff number.")), Length(max=64), CODE_PATTERN])
    name = StringField(_l("Name"), validators=[DataRequired(_l("Enter a name.")), Length(max=100)])
    qualifications = StringField(_l("Qualifications (separated by commas)"),
                                 validators=[Optional(), Length(max=500)])
    max_sessions = _int_field(_l("Most sessions per week"), 0, 50)
    active = BooleanField(_l("Active"), default=True)
    # The contact is never shown back in full (staff views mask it): an empty field keeps what is on file.
    phone = StringField(_l("Mobile number (for class teachers' messages)"),
                        filters=[lambda value: normalise_phone(value.strip()) if value else None],
                        validators=[Optional(),
                                    Regexp(PHONE_RE, message=_l("Enter an 11-digit mainland mobile number."))])
    email = StringField(_l("E-mail address"), filters=[lambda value: (value or "").strip() or None],
                        validators=[Optional(), Length(max=EMAIL_MAX, message=_l("At most %(max)d characters.")),
                                    Regexp(EMAIL_RE, message=_l("Enter an e-mail address such as name@example.com."))])
    clear_contact = BooleanField(_l("Remove the phone and e-mail on file"))
    locale = SelectField(_l("Language of messages"), default="zh",
                         choices=lambda: [(code, name, {"lang": "zh-CN" if code == "zh" else code})
                                          for code, name in current_app.config["LANGUAGES"].items()])
    """Each language named in itself, so marked as written in that language."""
    submit = SubmitField(_l("Save"))


class WindowForm(FlaskForm):
    opens_at = DateTimeLocalField(_l("Requests open"), format="%Y-%m-%dT%H:%M",
                                  validators=[Optional()])
    closes_at = DateTimeLocalField(_l("Requests close"), format="%Y-%m-%dT%H:%M",
                                   validators=[Optional()])
    results_date = DateField(_l("Date parents see the results"), validators=[Optional()])
    seat_policy = SelectField(
        _l("Seat policy"), choices=[SelectChoice(value, label) for value, label in SEAT_POLICY_LABELS.items()],
        default=DEFAULT_SEAT_POLICY)
    seat_policy_hint = _l("Among pupils who are equal under every rule, the lottery decides who gets a seat. Either "
                          "as many families as possible get at least one day, or as many pupils as possible get "
                          "every day they asked for. Coverage, kept seats and choices met are the same either way.")
    submit = SubmitField(_l("Save"))

    def validate_closes_at(self, field: DateTimeLocalField) -> None:
        if self.opens_at.data and field.data and field.data <= self.opens_at.data:
            raise ValidationError(_l("The closing time must be after the opening time."))

    def validate_results_date(self, field: DateField) -> None:
        if self.closes_at.data and field.data and field.data <= self.closes_at.data.date():
            raise ValidationError(_l("Parents cannot see results before requests close: choose a results date "
                                     "after the closing date."))


class WindowNowForm(FlaskForm):
    """The confirmation step of opening or closing requests now; reopening after the closing time asks for a
    new closing time instead of leaving the window open without end."""

    confirmed = HiddenField()
    closes_at = DateTimeLocalField(_l("Requests close"), format="%Y-%m-%dT%H:%M",
                                   validators=[Optional()])


class CodesForm(FlaskForm):
    class_name = SelectField(_l("Pupils"), validators=[Optional()])
    confirm = BooleanField(_l("I understand that codes issued before for these pupils stop working."),
                           validators=[DataRequired(_l("Please confirm first."))])
    submit = SubmitField(_l("Issue codes and print"))


class PlaceForm(FlaskForm):
    """The confirmation step of placing a waitlisted pupil-day by hand: why, kept with the plan version."""

    confirmed = HiddenField()
    reason = StringField(_l("Reason (kept in the plan's history)"),
                         validators=[DataRequired(_l("Give a reason.")), Length(max=200)])


class LeaveForm(FlaskForm):
    """The confirmation step of recording a pupil as having left the school (办理离校)."""

    confirmed = HiddenField()
    reason = StringField(_l("Note for the plan's history (optional)"), validators=[Length(max=200)])


class SchoolContactForm(FlaskForm):
    """Who families contact about after-school care; shown on every child's page."""

    contact = StringField(_l("Contact for families (a person, an office, a phone number)"),
                          validators=[Optional(), Length(max=200)])
    submit = SubmitField(_l("Save"))
