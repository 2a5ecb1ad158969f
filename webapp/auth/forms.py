from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from webapp.security import PASSWORD_MAX, PHONE_RE, normalise_phone, password_problem


class LoginForm(FlaskForm):
    login = StringField(_l("Phone number or username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=PASSWORD_MAX)])
    submit = SubmitField(_l("Log in"))


class RegisterForm(FlaskForm):
    """Whether the number is already registered is not the form's business: the view answers both alike."""

    phone = StringField(_l("Mobile phone number"), validators=[DataRequired()])
    display_name = StringField(_l("Your name (optional)"), validators=[Optional(), Length(max=100)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The two passwords do not match."))],
    )
    consent = BooleanField(
        _l("I agree that the school and the education bureau process my and my child's data "
           "to arrange after-school care."),
        validators=[DataRequired(message=_l("Please agree to the data policy to continue."))],
    )
    submit = SubmitField(_l("Register"))

    def validate_phone(self, field: StringField) -> None:
        phone = normalise_phone(field.data or "")
        if not PHONE_RE.match(phone):
            raise ValidationError(_l("Enter an 11-digit mainland mobile number starting with 1."))
        field.data = phone

    def validate_password(self, field: PasswordField) -> None:
        problem = password_problem(field.data or "")
        if problem:
            raise ValidationError(str(problem))


class EmptyForm(FlaskForm):
    """A form with only the CSRF token: for POST buttons such as log out and the language switch."""

    submit = SubmitField(_l("Submit"))


class PasswordChangeForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=PASSWORD_MAX)])
    password = PasswordField(_l("New password"), validators=[DataRequired()])
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The two passwords do not match."))],
    )
    submit = SubmitField(_l("Change password"))

    def validate_password(self, field: PasswordField) -> None:
        problem = password_problem(field.data or "")
        if problem:
            raise ValidationError(str(problem))
        if field.data == self.current.data:
            raise ValidationError(_l("Choose a password different from the current one."))


class ResetSmsForm(FlaskForm):
    phone = StringField(_l("Mobile phone number"), validators=[DataRequired(), Length(max=20)])
    submit = SubmitField(_l("Send me a code"))


class ResetPasswordForm(FlaskForm):
    """Phone, reset code and a new password; whether the number has an account is not the form's business."""

    phone = StringField(_l("Mobile phone number"), validators=[DataRequired(), Length(max=20)])
    code = StringField(_l("Reset code"), validators=[DataRequired(), Length(max=32)])
    password = PasswordField(_l("New password"), validators=[DataRequired()])
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The two passwords do not match."))],
    )
    submit = SubmitField(_l("Set new password"))

    def validate_password(self, field: PasswordField) -> None:
        problem = password_problem(field.data or "")
        if problem:
            raise ValidationError(str(problem))


class DeleteAccountForm(FlaskForm):
    password = PasswordField(_l("Your password"), validators=[DataRequired(), Length(max=PASSWORD_MAX)])
    confirm = BooleanField(
        _l("I understand that my account, my links to my children and my messages are deleted for good."),
        validators=[DataRequired(message=_l("Tick the box to confirm."))],
    )
    submit = SubmitField(_l("Delete my account"))
