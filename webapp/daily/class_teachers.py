"""Class teachers (班主任): who leads each class of a school (grade and class name, as the pupils carry them).

A school admin records them on `/daily/class-teachers` or in the teachers' import (`webapp.admin.importer`);
the roll-call's absence alert (`webapp.daily.alerts`) looks them up. A class teacher is one of the school's
teacher records; they need no account, and are reached on the phone and e-mail of that record.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from webapp.allocation.service import N_
from webapp.audit import AuditAction, record
from webapp.daily.service import DailyError
from webapp.extensions import db
from webapp.models import ClassTeacher, Pupil, School, Teacher, User


@dataclass(frozen=True)
class SchoolClass:
    grade: int
    class_name: str
    pupils: int
    teacher: Teacher | None


def school_classes(school_id: int) -> list[SchoolClass]:
    """Every class of the school's active pupils (and every class with a class teacher), in grade order."""
    counts = {(grade, name): int(n) for grade, name, n in db.session.execute(
        select(Pupil.grade, Pupil.class_name, func.count()).where(
            Pupil.school_id == school_id, Pupil.active.is_(True), Pupil.class_name != "")
        .group_by(Pupil.grade, Pupil.class_name))}
    leads = {(row.grade, row.class_name): row.teacher for row in db.session.scalars(
        select(ClassTeacher).where(ClassTeacher.school_id == school_id))}
    return [SchoolClass(grade, name, counts.get((grade, name), 0), leads.get((grade, name)))
            for grade, name in sorted(set(counts) | set(leads))]


def class_teacher_of(pupil: Pupil) -> Teacher | None:
    """The active class teacher of the pupil's class, or None (no class, nobody recorded, or inactive)."""
    if not pupil.class_name:
        return None
    teacher = db.session.scalar(select(Teacher).join(ClassTeacher, ClassTeacher.teacher_id == Teacher.id).where(
        ClassTeacher.school_id == pupil.school_id, ClassTeacher.grade == pupil.grade,
        ClassTeacher.class_name == pupil.class_name))
    return teacher if teacher is not None and teacher.active else None


def set_class_teacher(user: User, school: School, grade: int, class_name: str, teacher_id: int | None) -> None:
    """Record (or, with None, remove) the class teacher of a class; one transaction with its audit row."""
    class_name = class_name.strip()
    if not any(c.grade == grade and c.class_name == class_name for c in school_classes(school.id)):
        raise DailyError(N_("Choose a class of the school."), "invalid", 422)
    teacher = None
    if teacher_id is not None:
        teacher = db.session.scalar(select(Teacher).where(Teacher.id == teacher_id, Teacher.school_id == school.id))
        if teacher is None:
            raise DailyError(N_("Choose a teacher of this school."), "invalid", 422)
    row = db.session.scalar(select(ClassTeacher).where(
        ClassTeacher.school_id == school.id, ClassTeacher.grade == grade, ClassTeacher.class_name == class_name))
    if teacher is None and row is not None:
        db.session.delete(row)
    elif teacher is not None and row is None:
        db.session.add(ClassTeacher(school_id=school.id, grade=grade, class_name=class_name, teacher_id=teacher.id))
    elif teacher is not None and row is not None:
        row.teacher_id = teacher.id
    record(AuditAction.CLASS_TEACHER_SET, f"school:{school.id}",
           {"grade": grade, "class": class_name, "teacher": teacher_id}, user_id=user.id, school_id=school.id)
    db.session.commit()

