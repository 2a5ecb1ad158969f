"""Priority groups: the city's list (the bureau's) and the tags school admins put on pupils.

A group carries a coverage weight; a tag says a pupil belongs to a group, on evidence the admin saw, until an
expiry date. How tags become the solver's weights is one rule, `webapp.services.effective_weights`. This module
keeps the writes (each one transaction, audited) and the review list of tags that expired or soon will.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select

from webapp.audit import AuditAction, record
from webapp.extensions import db
from webapp.models import PriorityGroup, PriorityTag, Pupil

REVIEW_AHEAD = timedelta(days=30)
"""Tags that end within this many days are listed for review beside those that already ended."""
MAX_WEIGHT = 100


class GroupError(ValueError):
    """A write refused, with a sentence the reader can act on (already translated)."""


def city_groups(active_only: bool = False) -> list[PriorityGroup]:
    query = select(PriorityGroup).order_by(PriorityGroup.weight.desc(), PriorityGroup.id)
    if active_only:
        query = query.where(PriorityGroup.active)
    return list(db.session.scalars(query))


def group_by_name(name: str) -> PriorityGroup | None:
    """The group called `name` in Chinese or English (case-insensitive for English)."""
    name = name.strip()
    return db.session.scalar(select(PriorityGroup).where(
        (PriorityGroup.name_zh == name) | (func.lower(PriorityGroup.name_en) == name.lower())))


def save_group(group: PriorityGroup | None, *, name_zh: str, name_en: str, weight: int, active: bool,
               user_id: int | None) -> PriorityGroup:
    """Create (`group` None) or change a group; names stay unique in both languages."""
    name_zh, name_en = name_zh.strip(), name_en.strip()
    for column, value in ((PriorityGroup.name_zh, name_zh), (PriorityGroup.name_en, name_en)):
        clash = db.session.scalar(select(PriorityGroup.id).where(column == value))
        if clash is not None and (group is None or clash != group.id):
            raise GroupError(_("A group called %(name)s already exists.", name=value))
    if not 1 <= weight <= MAX_WEIGHT:
        raise GroupError(_("The weight must be a whole number from 1 to %(max)d.", max=MAX_WEIGHT))
    if group is None:
        group = PriorityGroup(name_zh=name_zh, name_en=name_en, weight=weight, active=active)
        db.session.add(group)
        db.session.flush()
        before = None
    else:
        before = {"name_zh": group.name_zh, "name_en": group.name_en, "weight": group.weight, "active": group.active}
        group.name_zh, group.name_en, group.weight, group.active = name_zh, name_en, weight, active
    record(AuditAction.PRIORITY_GROUP_SAVE, f"priority_group:{group.id}",
           {"before": before, "name_zh": name_zh, "name_en": name_en, "weight": weight, "active": active},
           user_id=user_id)
    db.session.commit()
    return group


def pupil_tags(pupil: Pupil) -> list[PriorityTag]:
    return list(db.session.scalars(select(PriorityTag).join(PriorityGroup)
                                   .where(PriorityTag.pupil_id == pupil.id)
                                   .order_by(PriorityGroup.weight.desc(), PriorityTag.id)))


def tag_pupil(pupil: Pupil, group: PriorityGroup, *, note: str, expires_on: date, today: date,
              user_id: int | None, commit: bool = True) -> PriorityTag:
    """Tag `pupil` with `group` until `expires_on`; tagging again with the same group renews the tag."""
    if not group.active:
        raise GroupError(_("The group %(name)s is no longer in use.", name=group.name_zh))
    if expires_on < today:
        raise GroupError(_("The expiry date has already passed."))
    tag = db.session.scalar(select(PriorityTag).where(PriorityTag.pupil_id == pupil.id,
                                                       PriorityTag.group_id == group.id))
    renewed = tag is not None
    if tag is None:
        tag = PriorityTag(pupil_id=pupil.id, group_id=group.id)
        db.session.add(tag)
    tag.note, tag.expires_on, tag.tagged_by = note.strip(), expires_on, user_id
    db.session.flush()
    record(AuditAction.PRIORITY_TAG_ADD, f"pupil:{pupil.id}",
           {"group": group.name_en, "weight": group.weight, "expires_on": expires_on.isoformat(),
            "renewed": renewed}, user_id=user_id, school_id=pupil.school_id)
    if commit:
        db.session.commit()
    return tag


def remove_tag(tag: PriorityTag, *, user_id: int | None) -> None:
    record(AuditAction.PRIORITY_TAG_REMOVE, f"pupil:{tag.pupil_id}",
           {"group": tag.group.name_en, "expires_on": tag.expires_on.isoformat()},
           user_id=user_id, school_id=tag.pupil.school_id)
    db.session.delete(tag)
    db.session.commit()


@dataclass(frozen=True)
class ReviewList:
    expired: list[PriorityTag]
    expiring: list[PriorityTag]


def tags_to_review(school_id: int, today: date) -> ReviewList:
    """A school's tags that no longer count (ended before `today`) and those ending within `REVIEW_AHEAD`."""
    tags = db.session.scalars(
        select(PriorityTag).join(Pupil, Pupil.id == PriorityTag.pupil_id)
        .where(Pupil.school_id == school_id, PriorityTag.expires_on <= today + REVIEW_AHEAD)
        .order_by(PriorityTag.expires_on, Pupil.number)
    ).all()
    return ReviewList([t for t in tags if t.expires_on < today], [t for t in tags if t.expires_on >= today])


def group_name(group: PriorityGroup) -> str:
    """The group's name in the reader's language."""
    from webapp.labels import current_language

    return group.name_zh if current_language().startswith("zh") else group.name_en
