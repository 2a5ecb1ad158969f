"""The daily service in the demo city: a calendar around today, a duty-teacher login and a day in progress.

Called by `webapp.demo.seed_demo` for the published school. Everything goes through the real services
(`webapp.daily.rollcall`), so the marks, the handover, the unreported-absence message and the audit rows are
the ones the app writes. Running it again changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from webapp.daily import rollcall
from webapp.daily.roster import calendar_of, load_roster
from webapp.daily.service import today
from webapp.extensions import db
from webapp.models import (
    Absence,
    CalendarDay,
    CalendarDayKind,
    ClassTeacher,
    DutyTeacher,
    Guardianship,
    PickupPerson,
    PickupWindow,
    Pupil,
    RollCallMark,
    SchoolCalendar,
    Teacher,
    Term,
    User,
)

DUTY_USERNAME = "duty"
DEMO_TEACHER_PHONE = "13900003333"
DEMO_MARKS = 12
"""Pupils of the day's first session the demo has already called."""


def seed_day(term: Term, password_hash: str) -> str:
    """Calendar, duty teacher and today's roll-call for `term`; returns a line for the seed report."""
    on = today()
    if calendar_of(term) is None:
        calendar = SchoolCalendar(term_id=term.id, first_day=on - timedelta(days=28),
                                  last_day=on + timedelta(days=112))
        weekday = on.isoweekday()
        if weekday > 5:  # a weekend demo still shows a school day: today is a 调休 day running Monday
            calendar.days.append(CalendarDay(day=on, kind=CalendarDayKind.MAKEUP, runs_weekday=1, note="调休"))
        calendar.days.append(CalendarDay(day=on + timedelta(days=14), kind=CalendarDayKind.HOLIDAY, note="校运会"))
        calendar.days.append(CalendarDay(day=on + timedelta(days=15), kind=CalendarDayKind.EARLY_CLOSE,
                                         pickup_time="16:30", note="教研活动"))
        calendar.pickup_windows.append(PickupWindow(starts_on=on + timedelta(days=60),
                                                    ends_on=on + timedelta(days=112), pickup_time="17:00",
                                                    note="冬季作息"))
        db.session.add(calendar)
        db.session.commit()
    user = db.session.scalar(select(User).where(User.username == DUTY_USERNAME))
    if user is None:
        teacher = db.session.scalars(select(Teacher).where(Teacher.school_id == term.school_id,
                                                           Teacher.active.is_(True)).order_by(Teacher.code)).first()
        if teacher is None:
            return "daily service: the school has no teacher for the duty login"
        user = User(role="duty_teacher", username=DUTY_USERNAME, password_hash=password_hash,
                    school_id=term.school_id, display_name=f"{teacher.name}（值班）")
        db.session.add(user)
        db.session.flush()
        db.session.add(DutyTeacher(user_id=user.id, teacher_id=teacher.id))
        db.session.commit()
    if db.session.scalar(select(RollCallMark.id).where(RollCallMark.day == on).limit(1)) is not None:
        return "daily service: today's roll-call is already there"
    return _day_in_progress(term, user)


def _day_in_progress(term: Term, user: User) -> str:
    on = today()
    teacher = rollcall.duty_teacher(user)
    assert teacher is not None
    roster = load_roster(term, on)
    if not roster.sessions:
        return "daily service: no pupils are expected today"
    first = roster.sessions[0]
    with_parents = set(db.session.scalars(select(Guardianship.pupil_id)))
    pupils = sorted(first.expected, key=lambda pid: (pid not in with_parents, pid))[:DEMO_MARKS]
    if len(pupils) < 6:
        return "daily service: too few pupils today for a day in progress"
    away = pupils[-1]
    db.session.add(Absence(pupil_id=away, first_day=on, last_day=on, reason="感冒"))
    db.session.commit()
    _lead_class_of(pupils[3], teacher)
    statuses = {pupils[2]: "late", pupils[3]: "absent"}  # pupils[3]: nobody reported it; family and class teacher told
    marked = 0
    for pupil_id in pupils[:-1]:  # the rest of the session's list is still to be called
        rollcall.mark(user, teacher, first.session_id, pupil_id, statuses.get(pupil_id, "present"),
                      f"demo-{on.isoformat()}-{pupil_id}")
        marked += 1
    rollcall.mark(user, teacher, first.session_id, away, "absent", f"demo-{on.isoformat()}-{away}")
    for pupil_id, name, relation, phone in ((pupils[1], "王秀英", "奶奶", "13900001111"),
                                            (pupils[4], "赵建国", "爷爷", "13900002222")):
        pupil = db.session.get(Pupil, pupil_id)
        if pupil is not None:
            db.session.add(PickupPerson(pupil_id=pupil_id, name=name, relation=relation, phone=phone))
    db.session.commit()
    person = db.session.scalar(select(PickupPerson.id).where(PickupPerson.pupil_id == pupils[1]))
    rollcall.hand_over(user, teacher, pupils[1], person_id=person)
    return (f"daily service: {marked + 1} of {len(first.expected) + len(first.reported_absent)} marked in the "
            f"first session today, one handed over, one unreported absence (its class teacher is the duty login's "
            f"teacher); duty login {DUTY_USERNAME}")


def _lead_class_of(pupil_id: int, teacher: Teacher) -> None:
    """The duty login's teacher becomes the class teacher of the pupil's class (with a demo number), so the demo
    shows the class teacher's alert on the duty page."""
    pupil = db.session.get(Pupil, pupil_id)
    if pupil is None or not pupil.class_name or db.session.scalar(select(ClassTeacher.id).where(
            ClassTeacher.school_id == pupil.school_id, ClassTeacher.grade == pupil.grade,
            ClassTeacher.class_name == pupil.class_name)) is not None:
        return
    db.session.add(ClassTeacher(school_id=pupil.school_id, grade=pupil.grade, class_name=pupil.class_name,
                                teacher_id=teacher.id))
    teacher.phone = teacher.phone or DEMO_TEACHER_PHONE
    db.session.commit()
