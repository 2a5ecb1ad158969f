"""Forms of the notification pages."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SubmitField
from wtforms.validators import Length, Optional, Regexp

EMAIL_RE = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*"
                      r"[A-Za-z0-9])?)+$")
EMAIL_MAX = 254


class EmailForm(FlaskForm):
    """An optional e-mail address for notifications; empty removes it."""

    email = EmailField(_l("E-mail address"), filters=[lambda value: (value or "").strip() or None],
                       validators=[Optional(), Length(max=EMAIL_MAX, message=_l("At most %(max)d characters.")),
                                   Regexp(EMAIL_RE, message=_l("Enter an e-mail address such as name@example.com."))])
    submit = SubmitField(_l("Save"))
