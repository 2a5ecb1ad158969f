"""The daily service in the demo city: the city's published calendar around today (the district's and the school's
own entries on top), the term's service notice signed by some families, a duty-teacher login and a day in
progress.

Called by `webapp.demo.seed_demo` for the published school. Everything goes through the real services
(`webapp.daily.rollcall`), so the marks, the handover, the unreported-absence message and the audit rows are
the ones the app writes. Running it again changes nothing.
"""

from __future__ import annotations

from datetime import date, timedelta

from flask import current_app
from sqlalchemy import select

from webapp.daily import notice, rollcall
from webapp.daily.layers import school_calendar
from webapp.daily.roster import load_roster
from webapp.extensions import db
from webapp.models import (
    Absence,
    BureauCalendar,
    CalendarDay,
    CalendarDayKind,
    ClassTeacher,
    DutyTeacher,
    Guardianship,
    PickupPerson,
    PickupWindow,
    Pupil,
    RollCallMark,
    School,
    SchoolCalendar,
    Teacher,
    Term,
    User,
    clock,
)
from webapp.services import school_today

DUTY_USERNAME = "duty"
DEMO_TEACHER_PHONE = "13900003333"
DEMO_MARKS = 12
"""Pupils of the day's first session the demo has already called."""
SIGNING_PHONES = tuple(f"137000001{n:02d}" for n in range(6))
"""Demo guardians of placed pupils who have signed the service notice (the other placed pupils' have not)."""


def seed_day(term: Term, password_hash: str) -> str:
    """Calendars, the service notice, duty teacher and today's roll-call for `term`; a line for the seed report."""
    on = school_today()
    _calendars(term, on)
    signed = _notice(term, password_hash)
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
    return f"{_day_in_progress(term, user)}; {signed}"


def _calendars(term: Term, on: date) -> None:
    """The city's published calendar for the term's name around today (today a 调休 day when seeded at a
    weekend), the district's early-close day, and the school's own sports day: the school inherits the first
    two and adds the third."""
    if db.session.scalar(select(BureauCalendar.id).where(BureauCalendar.term_name == term.name).limit(1)):
        return
    published_at = clock()
    city = BureauCalendar(district_id=None, term_name=term.name, first_day=on - timedelta(days=28),
                          last_day=on + timedelta(days=112), published_at=published_at)
    if on.isoweekday() > 5:  # a weekend demo still shows a school day: today runs Monday's timetable
        city.days.append(CalendarDay(day=on, kind=CalendarDayKind.MAKEUP, runs_weekday=1, note="调休"))
    city.days += [CalendarDay(day=on + timedelta(days=d), kind=CalendarDayKind.HOLIDAY, note="法定节假日")
                  for d in (21, 22, 23)]
    city.pickup_windows.append(PickupWindow(starts_on=on + timedelta(days=60), ends_on=on + timedelta(days=112),
                                            pickup_time="17:00", note="冬季作息"))
    db.session.add(city)
    school = db.session.get(School, term.school_id)
    if school is not None and school.district_id is not None:
        db.session.add(BureauCalendar(
            district_id=school.district_id, term_name=term.name, first_day=city.first_day, last_day=city.last_day,
            published_at=published_at, days=[CalendarDay(day=on + timedelta(days=15),
                                                         kind=CalendarDayKind.EARLY_CLOSE, pickup_time="16:30",
                                                         note="全区教研活动")]))
    if school_calendar(term) is None:
        db.session.add(SchoolCalendar(term_id=term.id, first_day=None, last_day=None, days=[
            CalendarDay(day=on + timedelta(days=14), kind=CalendarDayKind.HOLIDAY, note="校运会")]))
    db.session.commit()


def _notice(term: Term, password_hash: str) -> str:
    """The term's service notice (告家长书), signed for a few placed pupils by their demo guardians, not all."""
    if notice.notice_in_force(term.id) is not None:
        return "service notice already there"
    admin = db.session.scalars(select(User).where(User.role == "school_admin", User.school_id == term.school_id)
                               .order_by(User.id)).first()
    if admin is None:
        return "no school admin to publish the service notice"
    current = notice.publish_notice(
        admin, term, "课后服务告家长书",
        "本学期课后服务在放学后于校内开展，家长自愿参加。请阅读服务时间与安全约定后签署。",
        "周一至周五 15:30–17:30（冬季作息 17:00 前接走）",
        "学生由家长或家长授权的接送人接走；临时代接请在当天生成代接码。请假请在当天 12:00 前提交。")
    taken = set(db.session.scalars(select(Guardianship.pupil_id)))
    placed = sorted(pid for pid in notice.placed_pupil_ids(term) if pid not in taken)
    signed = 0
    consent = current_app.config["CONSENT_POLICY_VERSION"]
    for phone, pupil_id in zip(SIGNING_PHONES, placed, strict=False):
        pupil = db.session.get(Pupil, pupil_id)
        if pupil is None or db.session.scalar(select(User.id).where(User.phone == phone)) is not None:
            continue
        guardian = User(role="parent", phone=phone, password_hash=password_hash, display_name=f"{pupil.name}家长",
                        consent_policy_version=consent, consent_at=clock())
        db.session.add(guardian)
        db.session.flush()
        db.session.add(Guardianship(user_id=guardian.id, pupil_id=pupil_id, relation="mother",
                                    consent_policy_version=consent, consent_at=clock()))
        db.session.flush()
        notice.sign_notice(guardian, pupil, current.id)
        signed += 1
    return f"service notice signed for {signed} of {len(notice.placed_pupil_ids(term))} placed pupils"


def _day_in_progress(term: Term, user: User) -> str:
    on = school_today()
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
