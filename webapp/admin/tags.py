"""A school admin tags their pupils with the city's priority groups, removes tags and reviews expiring ones."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length

from webapp.admin.routes import bp
from webapp.admin.scope import admin_view, own_pupil
from webapp.extensions import db
from webapp.models import PriorityGroup, PriorityTag, Pupil
from webapp.priority_groups import (
    REVIEW_AHEAD,
    GroupError,
    city_groups,
    group_name,
    pupil_tags,
    remove_tag,
    tag_pupil,
    tags_to_review,
)
from webapp.services import effective_weights, school_today


class TagForm(FlaskForm):
    group = SelectField(_l("Priority group"), coerce=int, validators=[InputRequired(_l("Choose a group."))])
    note = StringField(_l("Evidence seen"), validators=[
        DataRequired(_l("Say what evidence you saw, for example the kind and number of a certificate.")),
        Length(max=200)])
    expires_on = DateField(_l("Counts until"), validators=[InputRequired(_l("Enter a date."))])
    submit = SubmitField(_l("Add tag"))


def _tag_form() -> TagForm:
    form = TagForm(prefix="tag")
    form.group.choices = [(group.id, f"{group_name(group)} ({group.weight})") for group in city_groups(True)]
    return form


def pupil_groups_context(pupil: Pupil) -> dict[str, Any]:
    """What the pupil page's priority-group section shows: tags, the weight the allocation uses, the form."""
    today = school_today()
    weight = effective_weights(g.term, [pupil], today)[pupil.id] if g.term is not None else None
    return {"priority_tags": pupil_tags(pupil), "priority_weight": weight, "priority_today": today,
            "tag_form": _tag_form(), "group_name": group_name}


@bp.route("/pupils/<int:pupil_id>/tags", methods=["POST"])
@admin_view
def pupil_tag_add(pupil_id: int) -> ResponseReturnValue:
    pupil = own_pupil(pupil_id)
    form = _tag_form()
    back = redirect(url_for("admin.pupil_detail", pupil_id=pupil.id, _anchor="priority-groups"))
    if not form.validate():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return back
    group = db.session.get(PriorityGroup, form.group.data)
    if group is None:
        flash(_("Choose a group."), "error")
        return back
    try:
        tag_pupil(pupil, group, note=form.note.data, expires_on=form.expires_on.data, today=school_today(),
                  user_id=current_user.id)
    except GroupError as error:
        db.session.rollback()
        flash(str(error), "error")
        return back
    flash(_("Tagged %(name)s as %(group)s.", name=pupil.name, group=group_name(group)), "success")
    return back


@bp.route("/pupils/<int:pupil_id>/tags/<int:tag_id>/delete", methods=["POST"])
@admin_view
def pupil_tag_remove(pupil_id: int, tag_id: int) -> ResponseReturnValue:
    pupil = own_pupil(pupil_id)
    tag = db.session.get(PriorityTag, tag_id)
    if tag is None or tag.pupil_id != pupil.id:
        abort(404)
    remove_tag(tag, user_id=current_user.id)
    flash(_("Tag removed."), "success")
    return redirect(url_for("admin.pupil_detail", pupil_id=pupil.id, _anchor="priority-groups"))


@bp.route("/priority-review")
@admin_view
def priority_review() -> ResponseReturnValue:
    today = school_today()
    review = tags_to_review(g.school.id, today)
    return render_template("admin/priority_review.html", review=review, today=today,
                           ahead_days=REVIEW_AHEAD.days, group_name=group_name)
