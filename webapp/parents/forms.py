"""Forms of the parents' area. Choices depend on the child's term and grade and are set by the route."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from webapp.labels import RELATION_LABELS

RELATIONS = tuple(SelectChoice(code, label) for code, label in RELATION_LABELS.items())


class ConsentForm(FlaskForm):
    consent = BooleanField(
        _l("I agree that the school and the education bureau process my and my child's data "
           "to arrange after-school care."),
        validators=[DataRequired(message=_l("Please agree to the data policy to continue."))],
    )
    submit = SubmitField(_l("Agree and continue"))


class LinkChildForm(FlaskForm):
    school_code = StringField(_l("School code"), validators=[DataRequired(), Length(max=64)])
    pupil_number = StringField(_l("Pupil number"), validators=[DataRequired(), Length(max=64)])
    enrolment_code = StringField(_l("Enrolment code"), validators=[DataRequired(), Length(max=32)])
    relation = SelectField(_l("You are the child's"), choices=list(RELATIONS), default="mother")
    consent = BooleanField(
        _l("I am this child's guardian and agree that the school processes the child's data to arrange "
           "after-school care."),
        validators=[DataRequired(message=_l("Please agree to continue."))],
    )
    submit = SubmitField(_l("Link child"))


class CheckboxesField(SelectMultipleField):
    """Several choices as a list of checkboxes; the service, not WTForms, decides which values are valid."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form: Any) -> None:
        return None


class RequestForm(FlaskForm):
    days = CheckboxesField(_l("Days"), coerce=str, validate_choice=False)
    pickup_time = SelectField(_l("Pickup time"), validate_choice=False)
    pref1 = SelectField(_l("1st choice"), validate_choice=False)
    pref2 = SelectField(_l("2nd choice"), validate_choice=False)
    pref3 = SelectField(_l("3rd choice"), validate_choice=False)
    submit = SubmitField(_l("Submit request"))

    @property
    def preference_fields(self) -> list[SelectField]:
        return [self.pref1, self.pref2, self.pref3]


class ChangeForm(RequestForm):
    """A change to the published request, from a date: new days, pickup or activities, or withdrawing."""

    effective_on = DateField(_l("From"), validators=[InputRequired(message=_l("Enter the date from which the "
                                                                                "change applies."))])
    withdraw = BooleanField(_l("Withdraw from this date instead (give up all seats)"))
    submit = SubmitField(_l("Request the change"))


class UnlinkForm(FlaskForm):
    """The confirmation step of unlinking a child: only the CSRF token and the button."""

    submit = SubmitField(_l("Unlink"))
