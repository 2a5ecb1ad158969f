"""The duty teacher's side of the daily service: today's sessions, roll-call marks, handovers, the late board.

A duty teacher works for one school (through its teacher record) and only on today's roster. Each write
here is one transaction with its audit row. Refusals (a pupil not expected, someone not authorised, a wrong
or used code) write nothing but an audit row of the attempt, then raise `DailyError`.

Idempotence and races. A mark carries a `client_id` made when the page was drawn: the same form posted
twice (a retry on bad Wi-Fi) finds the row by that unique id, and a concurrent duplicate loses on the unique
index and returns the winner. A handover is unique per pupil and day, so two teachers releasing the same
child at once produce one handover and one clear refusal. A delegate code is spent with a conditional
UPDATE (`used_at IS NULL`), so it can be used once even when two phones check it at the same moment.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Date, Integer, Select, String, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError

from webapp.allocation.service import N_
from webapp.audit import AuditAction, record
from webapp.daily import alerts
from webapp.daily.attendance import marks_in_force
from webapp.daily.layers import term_on
from webapp.daily.roster import Roster, RosterSession, SeatToday, load_roster, load_seat, roster_for
from webapp.daily.service import DailyError, lock_pupil
from webapp.extensions import db
from webapp.family import hash_enrolment_code
from webapp.labels import to_local
from webapp.models import (
    DutyTeacher,
    Guardianship,
    Handover,
    MarkStatus,
    PickupDelegate,
    PickupPerson,
    Pupil,
    RollCallMark,
    Session,
    Teacher,
    Term,
    User,
    clock,
)
from webapp.services import school_today


def duty_teacher(user: User) -> Teacher | None:
    """The active teacher record linked to a duty-teacher account, or None."""
    if user.role != "duty_teacher":
        return None
    teacher = db.session.scalar(select(Teacher).join(DutyTeacher, DutyTeacher.teacher_id == Teacher.id)
                                .where(DutyTeacher.user_id == user.id))
    return teacher if teacher is not None and teacher.active else None


@dataclass(frozen=True)
class Today:
    on: date
    term: Term | None
    roster: Roster


def today_of(school_id: int, pupil_id: int | None = None, session_id: int | None = None) -> Today:
    """Today's roster at the school (only `pupil_id`'s seats, or session `session_id`'s, when given: one pupil's
    check and one session's page stay cheap)."""
    on = school_today()
    term = term_on(school_id, on)
    if term is None:
        return Today(on, None, roster_for(on, None, (), (), ()))
    return Today(on, term, load_roster(term, on, pupil_id=pupil_id, session_id=session_id))


def _refuse(action: AuditAction, user: User, teacher: Teacher, target: str, error: DailyError,
            detail: dict[str, object]) -> None:
    db.session.rollback()
    record(action, target, {**detail, "refused": error.code}, user_id=user.id, school_id=teacher.school_id,
           commit=True)
    raise error


def session_today(teacher: Teacher, session_id: int,
                  pupil_id: int | None = None) -> tuple[Today, RosterSession, Session] | None:
    """Session `session_id` if it runs today at the teacher's school, with today's roster (of `pupil_id` only
    when given: then None also when the pupil has no seat in it)."""
    now = today_of(teacher.school_id, pupil_id, session_id)
    entry = now.roster.session(session_id)
    row = db.session.get(Session, session_id) if entry is not None else None
    if entry is None or row is None or now.term is None or row.term_id != now.term.id:
        return None
    return now, entry, row


# ------------------------------------------------------------------------------------------ marks


@dataclass(frozen=True)
class RollCallRow:
    """A pupil's row on the session page as a mark leaves it (plain values, usable after the commit)."""

    id: int
    name: str
    grade: int
    class_name: str
    reported_absent: bool
    status: str
    alert: alerts.AlertNote | None = None
    """Today's absence alert of the pupil, if one was raised: the row shows it under an `absent` mark."""


@dataclass(frozen=True)
class Marked:
    mark: RollCallMark
    created: bool
    row: RollCallRow | None = None
    """The pupil's row now, when the mark was read with its seat and the pupil has not left; else None."""
    alert: alerts.AlertNote | None = None
    """The absence alert this mark raised (the family and the class teacher told), if it raised one."""


def mark(user: User, teacher: Teacher, session_id: int, pupil_id: int, status: str, client_id: str,
         reason: str = "") -> Marked:
    """Record a roll-call mark; a changed mark is a correction (a new row naming the old one, with a reason).

    The first `absent` of the day for a pupil whose family reported nothing tells the family and the class
    teacher; correcting that absence to present or late tells them again (`webapp.daily.alerts`). Under the
    pupil's lock (against a concurrent cancel of the family's absence, `webapp.daily.service`), one statement
    reads the pupil's marks in the session today (with this form's, if it was already stored) and one the
    pupil's seat in the session today with today's alert (`load_seat`); then the mark and its audit row are
    written, and the alert's rows when one is raised or followed up.
    """
    status = MarkStatus(status)
    marker = alerts.Marker.of(user, teacher)  # the lock expires loaded rows: no reload for these
    user_id, school_id = marker.user_id, marker.school_id
    target = f"pupil:{pupil_id}"
    detail: dict[str, object] = {"session": session_id, "status": status.value}
    on = school_today()
    lock_pupil(pupil_id)
    existing, previous = _marks_of(pupil_id, session_id, on, client_id)
    if existing is not None:
        db.session.commit()  # the same form again (a retry): nothing to write; end the lock
        if existing.pupil_id != pupil_id or existing.session_id != session_id:
            raise DailyError(N_("This form was already used for another pupil. Reload the page."), "conflict")
        return Marked(existing, False)
    seat = load_seat(school_id, on, session_id, pupil_id)
    if seat is None and session_today(teacher, session_id) is None:
        _refuse(AuditAction.ROLLCALL_REFUSE, user, teacher, target,
                DailyError(N_("This session does not run today."), "not_today", 404), detail)
    if seat is None:
        _refuse(AuditAction.ROLLCALL_REFUSE, user, teacher, target,
                DailyError(N_("This pupil is not expected in this session today."), "not_expected"), detail)
    assert seat is not None
    reported = pupil_id in seat.entry.reported_absent
    pupil = seat.pupil
    note = alerts.note_of(seat.alert) if seat.alert is not None else None

    def row_now(alert: alerts.AlertNote | None) -> RollCallRow | None:
        return None if seat.handover is not None else RollCallRow(pupil_id, pupil.name, pupil.grade,
                                                                   pupil.class_name, reported, status.value, alert)

    if previous is not None and previous.status == status:
        row = row_now(note)
        db.session.commit()  # nothing to write: end the transaction and its lock
        return Marked(previous, False, row)
    if previous is not None and not reason.strip():
        db.session.rollback()
        raise DailyError(N_("Give a reason to change a mark."), "reason_required", 422)
    added = RollCallMark(client_id=client_id, pupil_id=pupil_id, session_id=session_id, day=on,
                         status=status.value, marked_by=user_id, marked_at=clock(),
                         corrects_id=previous.id if previous is not None else None, reason=reason.strip()[:200])
    db.session.add(added)
    try:
        db.session.flush()
    except IntegrityError:  # the same form from a concurrent retry
        db.session.rollback()
        winner = db.session.scalar(select(RollCallMark).where(RollCallMark.client_id == client_id))
        assert winner is not None
        return Marked(winner, False)
    record(AuditAction.ROLLCALL_CORRECT if previous is not None else AuditAction.ROLLCALL_MARK, target,
           {**detail, "mark": added.id, "corrects": added.corrects_id}, user_id=user_id, school_id=school_id)
    raised = None
    if status == MarkStatus.ABSENT and not reported and seat.alert is None:
        alert = alerts.raise_alert(marker, pupil, seat.session, _label(seat), added, on)
        raised = note = alerts.note_of(alert)
    elif (previous is not None and previous.status == MarkStatus.ABSENT and seat.alert is not None
          and seat.alert.arrived_at is None):
        alerts.follow_up(marker, pupil, seat.session, _label(seat), added, on, seat.alert)
    row = row_now(note)
    db.session.commit()
    return Marked(added, True, row, raised)


def _label(seat: SeatToday) -> str:
    """The session as the family's and the class teacher's messages name it."""
    return f"{seat.entry.start} {seat.session.activity.name}"


@cache
def _marks_statement() -> Select[Any]:
    """`_marks_of`'s statement, built once (parameters `client_id`, `pupil_id`, `on`, `session_id`)."""
    return select(RollCallMark).where(or_(
        RollCallMark.client_id == bindparam("client_id", type_=String),
        and_(RollCallMark.pupil_id == bindparam("pupil_id", type_=Integer),
             RollCallMark.day == bindparam("on", type_=Date),
             RollCallMark.session_id == bindparam("session_id", type_=Integer)))).order_by(RollCallMark.id)


def _marks_of(pupil_id: int, session_id: int, on: date,
              client_id: str) -> tuple[RollCallMark | None, RollCallMark | None]:
    """In one statement: the mark stored with `client_id` (a retried form) and the pupil's mark in force in the
    session on `on` (whether the day's absence was told is the alert's, read with the seat)."""
    existing = previous = None
    for row in db.session.scalars(_marks_statement(), {"client_id": client_id, "pupil_id": pupil_id, "on": on,
                                                        "session_id": session_id}):
        if row.client_id == client_id:
            existing = row
        if row.pupil_id == pupil_id and row.day == on and row.session_id == session_id:
            previous = row
    return existing, previous


# ------------------------------------------------------------------------------------------ handovers


def pupil_today(teacher: Teacher, pupil_id: int) -> tuple[Today, Pupil] | None:
    """The pupil if it has a seat in a session running today at the teacher's school."""
    now = today_of(teacher.school_id, pupil_id)
    pupil = db.session.get(Pupil, pupil_id)
    if pupil is None or pupil.school_id != teacher.school_id or not now.roster.sessions_of(pupil_id):
        return None
    return now, pupil


def hand_over(user: User, teacher: Teacher, pupil_id: int, *, person_id: int | None = None,
              code: str = "") -> Handover:
    """Record that the pupil left with an authorised person or with today's delegate (by code)."""
    target = f"pupil:{pupil_id}"
    detail: dict[str, object] = {"person": person_id, "by_code": bool(code)}
    found = pupil_today(teacher, pupil_id)
    if found is None:
        _refuse(AuditAction.HANDOVER_REFUSE, user, teacher, target,
                DailyError(N_("This pupil is not expected here today."), "not_expected", 404), detail)
    assert found is not None
    now, pupil = found
    if db.session.scalar(select(Handover.id).where(Handover.pupil_id == pupil_id, Handover.day == now.on)):
        _refuse(AuditAction.HANDOVER_REFUSE, user, teacher, target,
                DailyError(N_("This pupil has already been picked up today."), "already_picked_up"), detail)
    handover = Handover(pupil_id=pupil_id, day=now.on, at=clock(), handed_by=user.id,
                        session_id=now.roster.sessions_of(pupil_id)[-1].session_id)
    if person_id is not None:
        person = db.session.scalar(select(PickupPerson).where(
            PickupPerson.id == person_id, PickupPerson.pupil_id == pupil_id, PickupPerson.removed_at.is_(None)))
        if person is None:
            _refuse(AuditAction.HANDOVER_REFUSE, user, teacher, target,
                    DailyError(N_("This person is not authorised to collect this pupil."), "not_authorised"),
                    detail)
        handover.pickup_person_id = person_id
    elif code.strip():
        delegate = _spend_code(pupil_id, now.on, code)
        if delegate is None:
            _refuse(AuditAction.HANDOVER_REFUSE, user, teacher, target,
                    DailyError(N_("The code is wrong, already used, or not for today."), "bad_code"), detail)
        assert delegate is not None
        handover.delegate_id = delegate.id
    else:
        raise DailyError(N_("Choose the person collecting, or enter their one-off code."), "invalid", 422)
    db.session.add(handover)
    try:
        db.session.flush()
    except IntegrityError:  # another phone released the pupil a moment ago
        _refuse(AuditAction.HANDOVER_REFUSE, user, teacher, target,
                DailyError(N_("This pupil has already been picked up today."), "already_picked_up"), detail)
    record(AuditAction.HANDOVER_RECORD, target, {**detail, "handover": handover.id}, user_id=user.id,
           school_id=teacher.school_id)
    db.session.commit()
    return handover


def _spend_code(pupil_id: int, on: date, code: str) -> PickupDelegate | None:
    """Today's unused delegate of the pupil whose code matches, marked used (once, even under a race)."""
    wanted = hash_enrolment_code(code)
    for delegate in db.session.scalars(select(PickupDelegate).where(
            PickupDelegate.pupil_id == pupil_id, PickupDelegate.valid_on == on, PickupDelegate.used_at.is_(None))):
        if hmac.compare_digest(delegate.code_hash, wanted):
            spent = db.session.execute(update(PickupDelegate).where(
                PickupDelegate.id == delegate.id, PickupDelegate.used_at.is_(None)).values(used_at=clock()))
            return delegate if getattr(spent, "rowcount", 0) == 1 else None
    return None


# ------------------------------------------------------------------------------------------ the late board


@dataclass(frozen=True)
class Waiting:
    pupil: Pupil
    due: str
    """The time the pupil should have been collected by (local HH:MM)."""
    contacts: list[tuple[str, str]]
    """(who, phone) of the family: guardians' accounts and authorised pickup persons."""


def still_here(teacher: Teacher, at: datetime | None = None) -> list[Waiting]:
    """Pupils marked present or late today, not handed over, whose last session has ended by now."""
    now = today_of(teacher.school_id)
    clock_time = to_local(at or clock()).strftime("%H:%M")
    last_end: dict[int, str] = {}
    for entry in now.roster.sessions:
        for pupil_id in entry.expected + entry.reported_absent:
            last_end[pupil_id] = max(last_end.get(pupil_id, ""), entry.end)
    marks = marks_in_force(now.on, list(last_end))
    arrived = {p for (p, _s), m in marks.items() if m.status in (MarkStatus.PRESENT, MarkStatus.LATE)}
    gone = set(db.session.scalars(select(Handover.pupil_id).where(Handover.day == now.on)))
    due = sorted((end, pid) for pid, end in last_end.items() if pid in arrived and pid not in gone
                 and end <= clock_time)
    if not due:
        return []
    pupils = {p.id: p for p in db.session.scalars(select(Pupil).where(Pupil.id.in_([pid for _e, pid in due])))}
    contacts: dict[int, list[tuple[str, str]]] = {}
    for pupil_id, name, phone in db.session.execute(
            select(Guardianship.pupil_id, User.display_name, User.phone).join(User, User.id == Guardianship.user_id)
            .where(Guardianship.pupil_id.in_(list(pupils)), User.phone.is_not(None))):
        if phone is not None:  # always, by the query's filter
            contacts.setdefault(pupil_id, []).append((name or "", phone))
    for person in db.session.scalars(select(PickupPerson).where(
            PickupPerson.pupil_id.in_(list(pupils)), PickupPerson.removed_at.is_(None))):
        contacts.setdefault(person.pupil_id, []).append((f"{person.name}（{person.relation}）", person.phone))
    return [Waiting(pupils[pid], end, contacts.get(pid, [])) for end, pid in due]
