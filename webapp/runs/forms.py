from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, IntegerField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from webapp.extensions import db
from webapp.models import CareRequest, Pin, Placement, Pupil, Session, Term


class PinForm(FlaskForm):
    """Pin a pupil to a session for the next runs: the pupil must have asked for that day and period."""

    pupil_number = StringField(_l("Pupil number"), validators=[DataRequired(), Length(max=64)])
    session_code = StringField(_l("Session code"), validators=[DataRequired(), Length(max=64)])
    submit = SubmitField(_l("Add pin"))

    def __init__(self, term: Term, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.term = term
        self.pupil: Pupil | None = None
        self.session: Session | None = None

    def validate_pupil_number(self, field: StringField) -> None:
        number = (field.data or "").strip()
        self.pupil = db.session.scalar(
            select(Pupil).where(Pupil.school_id == self.term.school_id, Pupil.number == number, Pupil.active)
        )
        if self.pupil is None:
            raise ValidationError(_l("No pupil with this number at your school."))

    def validate_session_code(self, field: StringField) -> None:
        code = (field.data or "").strip()
        self.session = db.session.scalar(select(Session).where(Session.term_id == self.term.id, Session.code == code))
        if self.session is None:
            raise ValidationError(_l("No session with this code in this term."))

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        pupil, session = self.pupil, self.session
        assert pupil is not None and session is not None
        request = db.session.scalar(select(CareRequest).where(
            CareRequest.term_id == self.term.id, CareRequest.pupil_id == pupil.id, CareRequest.status == "active"))
        errors: list[Any] = []
        if request is None:
            errors.append(_l("This pupil has no active request for this term."))
        elif session.day not in request.days or session.period.code not in request.periods:
            errors.append(_l("The pupil did not ask for care on this session's day and period."))
        if not session.grade_lo <= pupil.grade <= session.grade_hi:
            errors.append(_l("The session is for grades %(lo)d–%(hi)d; the pupil is in grade %(grade)d.",
                             lo=session.grade_lo, hi=session.grade_hi, grade=pupil.grade))
        pins = db.session.scalars(select(Pin).where(Pin.term_id == self.term.id, Pin.pupil_id == pupil.id)).all()
        for pin in pins:
            if pin.session_id == session.id:
                errors.append(_l("This pin already exists."))
            elif pin.session.day == session.day and pin.session.period_id == session.period_id:
                errors.append(_l("The pupil is already pinned to %(code)s at the same time.", code=pin.session.code))
        if errors:
            self.session_code.errors = list(self.session_code.errors) + errors
            return False
        return True


class PublishForm(FlaskForm):
    expected = HiddenField()
    submit = SubmitField(_l("Publish this run"))


HOLD_HOURS_MAX = 24 * 14


class PlacementForm(FlaskForm):
    """What a freed seat becomes in this term (an offer the family answers, or a seat given at once)."""

    placement = SelectField(_l("Freed seats"), choices=[
        SelectChoice(Placement.OFFER.value, _l("Offer to the next family, who accepts or declines")),
        SelectChoice(Placement.AUTOMATIC.value, _l("Give to the next family at once")),
    ])
    hold_hours = IntegerField(_l("Hours a family has to answer an offer"), validators=[
        InputRequired(message=_l("Enter a number of hours.")),
        NumberRange(min=1, max=HOLD_HOURS_MAX, message=_l("The hold time must be between 1 hour and 14 days."))])
    submit = SubmitField(_l("Save"))
