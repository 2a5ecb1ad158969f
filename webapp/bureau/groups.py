"""The city's priority groups: every bureau user reads the list, only city-wide bureau users change it."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, IntegerField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from webapp.bureau.routes import bp
from webapp.extensions import db
from webapp.models import PriorityGroup, PriorityTag
from webapp.priority_groups import MAX_WEIGHT, GroupError, city_groups, save_group
from webapp.security import bureau_required


class PriorityGroupForm(FlaskForm):
    name_zh = StringField(_l("Name in Chinese"), validators=[DataRequired(_l("Enter a name.")), Length(max=64)])
    name_en = StringField(_l("Name in English"), validators=[DataRequired(_l("Enter a name.")), Length(max=64)])
    weight = IntegerField(_l("Weight (an ordinary pupil-day counts 1)"), validators=[
        InputRequired(_l("Enter a whole number.")),
        NumberRange(min=1, max=MAX_WEIGHT, message=_l("Enter a whole number from %(min)s to %(max)s.")),
    ])
    active = BooleanField(_l("In use"), default=True)
    submit = SubmitField(_l("Save"))


def _city_wide_or_403() -> None:
    if not current_user.city_wide:
        abort(403)


def _save(group: PriorityGroup | None, form: PriorityGroupForm) -> bool:
    try:
        save_group(group, name_zh=form.name_zh.data, name_en=form.name_en.data, weight=form.weight.data,
                   active=form.active.data, user_id=current_user.id)
    except GroupError as error:
        db.session.rollback()
        form.name_zh.errors = [*form.name_zh.errors, str(error)]
        return False
    flash(_("Saved."), "success")
    return True


def _page(form: PriorityGroupForm, **extra: Any) -> str:
    tagged = dict(db.session.execute(
        select(PriorityTag.group_id, func.count(PriorityTag.id)).group_by(PriorityTag.group_id)).all())
    return render_template("bureau/groups.html", groups=city_groups(), tagged=tagged, form=form,
                           can_edit=bool(current_user.city_wide), **extra)


@bp.route("/groups", methods=["GET", "POST"])
@bureau_required
def groups() -> ResponseReturnValue:
    form = PriorityGroupForm()
    if form.is_submitted():
        _city_wide_or_403()
        if form.validate() and _save(None, form):
            return redirect(url_for("bureau.groups"))
        return _page(form), 400
    return _page(form)


@bp.route("/groups/<int:group_id>", methods=["GET", "POST"])
@bureau_required
def group_edit(group_id: int) -> ResponseReturnValue:
    _city_wide_or_403()
    group = db.session.get(PriorityGroup, group_id)
    if group is None:
        abort(404)
    form = PriorityGroupForm(obj=group)
    if form.is_submitted():
        if form.validate() and _save(group, form):
            return redirect(url_for("bureau.groups"))
        return render_template("bureau/group_form.html", form=form, group=group), 400
    return render_template("bureau/group_form.html", form=form, group=group)
