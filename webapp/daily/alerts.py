"""The absence nobody reported: the family and the class teacher are told, and told again if it was a mistake.

`raise_alert` runs inside the roll-call's transaction (`webapp.daily.rollcall.mark`, which holds the pupil's
lock): the first `absent` of the day for a pupil whose family reported nothing writes one `AbsenceAlert` (unique
per pupil and day) and queues, through the notifications outbox, `absence_unreported` to the family and
`class_absence` to the class teacher's teacher record (SMS and e-mail by the contact on file). The delivery job
sends them on its next pass (every `NOTIFY_SWEEP_SECONDS`, 60 by default). When the class has no class teacher,
or the class teacher has no contact the switched-on channels reach, the alert keeps the reason (`problem`):
the duty teacher's page says so and the school admin's overview lists it as not delivered.

`follow_up` runs when a correction turns that absence into present or late: `absence_arrived` to the family,
`class_arrived` to the same class teacher, once (`arrived_at`). A retried mark (same client id) never reaches
either function, so nothing is sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload, selectinload

from webapp.audit import AuditAction, record
from webapp.daily.class_teachers import class_teacher_of
from webapp.extensions import db
from webapp.models import (
    AbsenceAlert,
    AlertProblem,
    DeliveryState,
    DutyTeacher,
    Notification,
    NotificationEvent,
    Pupil,
    RollCallMark,
    Session,
    Teacher,
    User,
    clock,
)
from webapp.notifications import notify, notify_teacher


@dataclass(frozen=True)
class Marker:
    """Who marked the absence, as plain values: the pupil's lock expires the loaded rows, these need no reload."""

    user_id: int
    school_id: int
    name: str
    """The duty teacher's name."""

    @classmethod
    def of(cls, user: User, duty: Teacher) -> Marker:
        return cls(user.id, duty.school_id, duty.name)


def _params(label: str, on: date, pupil: Pupil, duty: Marker, mark: RollCallMark) -> dict[str, object]:
    return {"session": label, "date": on.isoformat(), "grade": pupil.grade, "class": pupil.class_name,
            "at": mark.marked_at, "duty_teacher": duty.name}


def raise_alert(duty: Marker, pupil: Pupil, session: Session, label: str, mark: RollCallMark,
                on: date) -> AbsenceAlert:
    """Tell the family and the class teacher of an unreported absence. The caller has read, under the pupil's
    lock, that the pupil has no alert that day (`webapp.daily.roster.load_seat`): once a day, and the unique
    (pupil, day) index stands behind it.

    In the caller's transaction; no commit.
    """
    notify(NotificationEvent.ABSENCE_UNREPORTED, pupil_id=pupil.id, term_id=session.term_id,
           params={"session": label, "date": on.isoformat()})
    alert = AbsenceAlert(pupil_id=pupil.id, day=on, session_id=session.id, mark_id=mark.id, raised_by=duty.user_id,
                         raised_at=clock())
    lead = class_teacher_of(pupil)
    if lead is None:
        alert.problem = AlertProblem.NO_CLASS_TEACHER
    else:
        alert.class_teacher = lead
        message = notify_teacher(NotificationEvent.CLASS_ABSENCE, lead, pupil_id=pupil.id, term_id=session.term_id,
                                 params=_params(label, on, pupil, duty, mark))
        alert.notification = message
        if not message.deliveries:
            alert.problem = AlertProblem.NO_CONTACT
    db.session.add(alert)
    db.session.flush()
    record(AuditAction.ABSENCE_ALERT, f"pupil:{pupil.id}",
           {"alert": alert.id, "class_teacher": alert.class_teacher_id, "problem": alert.problem},
           user_id=duty.user_id, school_id=duty.school_id)
    return alert


def follow_up(duty: Marker, pupil: Pupil, session: Session, label: str, mark: RollCallMark, on: date,
              alert: AbsenceAlert) -> None:
    """After a correction from absent to present or late: "arrived" to the family and the class teacher told
    of the absence `alert` (the pupil's of `on`, not yet followed up, read by the caller under the pupil's lock).
    No commit."""
    alert.arrived_at = clock()
    notify(NotificationEvent.ABSENCE_ARRIVED, pupil_id=pupil.id, term_id=session.term_id,
           params={"session": label, "date": on.isoformat()})
    lead = alert.class_teacher
    if lead is not None:
        notify_teacher(NotificationEvent.CLASS_ARRIVED, lead, pupil_id=pupil.id, term_id=session.term_id,
                       params=_params(label, on, pupil, duty, mark))
    record(AuditAction.ABSENCE_ARRIVED, f"pupil:{pupil.id}", {"alert": alert.id, "mark": mark.id},
           user_id=duty.user_id, school_id=duty.school_id)


@dataclass(frozen=True)
class AlertNote:
    """What the duty teacher's roll-call row says of a pupil's alert (plain values, usable after the commit)."""

    problem: str | None
    """An `AlertProblem`, or None when the class teacher was told."""
    class_teacher: str
    """The name of the class teacher told (or without a contact), empty when the class has none."""


def note_of(alert: AbsenceAlert) -> AlertNote:
    """The alert's note; its class teacher is read from the session's identity map when loaded with it."""
    return AlertNote(alert.problem or None, alert.class_teacher.name if alert.class_teacher is not None else "")


# ------------------------------------------------------------------------------------------ reading alerts


class AlertState:
    """How far the class teacher's message got (`alert_state`)."""

    SENT = "sent"
    WAITING = "waiting"
    FAILED = "failed"
    NO_CLASS_TEACHER = AlertProblem.NO_CLASS_TEACHER.value
    NO_CONTACT = AlertProblem.NO_CONTACT.value
    UNDELIVERED = (FAILED, NO_CLASS_TEACHER, NO_CONTACT)


def alert_state(alert: AbsenceAlert) -> str:
    """sent (a channel delivered it), waiting, failed (every channel failed), or the alert's problem."""
    if alert.problem:
        return alert.problem
    states = {d.state for d in alert.notification.deliveries} if alert.notification is not None else set()
    if DeliveryState.SENT in states:
        return AlertState.SENT
    if states and states <= {DeliveryState.FAILED}:
        return AlertState.FAILED
    return AlertState.WAITING


@dataclass(frozen=True)
class AlertRow:
    alert: AbsenceAlert
    state: str
    duty_teacher: str
    """The name of the duty teacher who marked the absence."""


def _rows(alerts: list[AbsenceAlert]) -> list[AlertRow]:
    users = {a.raised_by for a in alerts if a.raised_by is not None}
    names = dict(db.session.execute(
        select(DutyTeacher.user_id, Teacher.name).join(Teacher, Teacher.id == DutyTeacher.teacher_id)
        .where(DutyTeacher.user_id.in_(users))).all()) if users else {}
    return [AlertRow(a, alert_state(a), names.get(a.raised_by, "") if a.raised_by else "") for a in alerts]


def _query(on: date) -> Select[tuple[AbsenceAlert]]:
    return (select(AbsenceAlert).join(Pupil, Pupil.id == AbsenceAlert.pupil_id).where(AbsenceAlert.day == on)
            .options(selectinload(AbsenceAlert.pupil), selectinload(AbsenceAlert.session).selectinload(
                Session.activity), selectinload(AbsenceAlert.class_teacher),
                selectinload(AbsenceAlert.notification).selectinload(Notification.deliveries))
            .order_by(AbsenceAlert.raised_at, AbsenceAlert.id))


def school_alerts(school_id: int, on: date) -> list[AlertRow]:
    """The school's absence alerts of a day, oldest first: the school admin's overview."""
    return _rows(list(db.session.scalars(_query(on).where(Pupil.school_id == school_id))))


def class_teacher_alerts(teacher: Teacher, on: date) -> list[AlertRow]:
    """The alerts of a day about the classes `teacher` leads: shown on their daily page when they have a
    duty-teacher account."""
    return _rows(list(db.session.scalars(_query(on).where(AbsenceAlert.class_teacher_id == teacher.id,
                                                          Pupil.school_id == teacher.school_id))))


def pupils_alerts(pupil_ids: list[int], on: date) -> dict[int, AlertNote]:
    """Today's alert of each of these pupils that has one, as the roll-call row shows it: the duty teacher's
    session page (one statement)."""
    if not pupil_ids:
        return {}
    return {alert.pupil_id: note_of(alert) for alert in db.session.scalars(select(AbsenceAlert).where(
        AbsenceAlert.day == on, AbsenceAlert.pupil_id.in_(pupil_ids)).options(
        joinedload(AbsenceAlert.class_teacher)))}
