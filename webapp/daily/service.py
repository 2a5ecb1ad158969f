"""The family's side of the daily service: absences, authorised pickup persons and one-off delegates.

Views (`webapp.daily.routes`, `webapp.daily.api`) parse input, call one function here and answer. Each
function owns one transaction: it commits its rows with their audit row, or raises `DailyError` having
written nothing but (for refusals the rules call for) an audit row of the attempt in its own transaction.
Callers pass a pupil they have already checked is the user's own child.

Concurrency. Cancelling an absence and the duty teacher's mark for the same pupil both take the pupil's lock
(`lock_pupil`: the SQLite write lock, or SELECT ... FOR UPDATE on the pupil row) and read again after it. So
either the cancel commits first and the teacher's `absent` then finds no reported absence (the family is told),
or the mark commits first and the cancel is refused because the roll-call has begun: never a cancelled absence
with a silent `absent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.allocation.service import N_
from webapp.audit import AuditAction, record
from webapp.daily.calendar import CalendarRules, cutoff_passed
from webapp.daily.layers import term_on
from webapp.daily.roster import calendar_rules, load_roster
from webapp.extensions import db
from webapp.family import hash_enrolment_code, make_enrolment_code
from webapp.models import Absence, PickupDelegate, PickupPerson, Pupil, RollCallMark, Term, User, clock
from webapp.services import school_today

MAX_ABSENCE_DAYS = 31
MAX_PICKUP_PERSONS = 10


class DailyError(Exception):
    """A request the rules refuse; `message` is an English msgid to translate, `code` a stable API code."""

    def __init__(self, message: str, code: str = "conflict", status: int = 409, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.params = params


def lock_pupil(pupil_id: int) -> None:
    """Serialise this transaction's writes about one pupil's day with every other (see the module docstring)."""
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        db.session.execute(select(Pupil.id).where(Pupil.id == pupil_id).with_for_update()).all()
    db.session.expire_all()


def _refuse(action: AuditAction, user: User, pupil: Pupil, error: DailyError, detail: Mapping[str, object]) -> None:
    db.session.rollback()
    record(action, f"pupil:{pupil.id}", {**detail, "refused": error.code}, user_id=user.id,
           school_id=pupil.school_id, commit=True)
    raise error


def _service_dates(term: Term, pupil: Pupil, first: date, last: date) -> list[date]:
    """The dates from `first` to `last` on which the pupil has a seat in a session that runs."""
    found = []
    day = first
    while day <= last:
        if load_roster(term, day, pupil_id=pupil.id).sessions_of(pupil.id):
            found.append(day)
        day += timedelta(days=1)
    return found


def _term_and_rules(pupil: Pupil, on: date) -> tuple[Term, CalendarRules] | None:
    term = term_on(pupil.school_id, on)
    rules = calendar_rules(term) if term is not None else None
    return (term, rules) if term is not None and rules is not None else None


# ------------------------------------------------------------------------------------------ absences


@dataclass(frozen=True)
class Reported:
    absence: Absence
    created: bool


def report_absence(user: User, pupil: Pupil, first_day: date, last_day: date | None, reason: str) -> Reported:
    """Record that the pupil will be away from `first_day` to `last_day` (one day when None).

    Refused (and audited) after the first day's cutoff, or when no date in the range has service for the
    pupil. The same range reported again returns the row already there (`created` False).
    """
    last_day = last_day or first_day
    detail = {"first_day": first_day.isoformat(), "last_day": last_day.isoformat()}
    if last_day < first_day:
        raise DailyError(N_("The last day comes before the first day."), "invalid", 422)
    if (last_day - first_day).days >= MAX_ABSENCE_DAYS:
        raise DailyError(N_("Report at most %(n)d days at once."), "invalid", 422, n=MAX_ABSENCE_DAYS)
    found = _term_and_rules(pupil, first_day)
    if found is None:
        _refuse(AuditAction.ABSENCE_REFUSE, user, pupil,
                DailyError(N_("There is no after-school service on this date."), "no_service"), detail)
    assert found is not None
    term, rules = found
    if cutoff_passed(rules, first_day, clock()):
        _refuse(AuditAction.ABSENCE_REFUSE, user, pupil,
                DailyError(N_("Absences for this date had to be reported before %(time)s that day."),
                           "cutoff_passed", time=rules.absence_cutoff), detail)
    if not _service_dates(term, pupil, first_day, min(last_day, rules.last_day)):
        _refuse(AuditAction.ABSENCE_REFUSE, user, pupil,
                DailyError(N_("Your child has no after-school service on these dates."), "no_service"), detail)
    existing = _same_absence(pupil, first_day, last_day)
    if existing is not None:
        db.session.commit()
        return Reported(existing, False)
    absence = Absence(pupil_id=pupil.id, first_day=first_day, last_day=last_day, reason=reason.strip()[:200],
                      reported_by=user.id, created_at=clock())
    db.session.add(absence)
    try:
        db.session.flush()
        record(AuditAction.ABSENCE_REPORT, f"pupil:{pupil.id}", {**detail, "absence": absence.id},
               user_id=user.id, school_id=pupil.school_id)
        db.session.commit()
    except IntegrityError:  # the same report from a concurrent request (a double tap on bad Wi-Fi)
        db.session.rollback()
        existing = _same_absence(pupil, first_day, last_day)
        assert existing is not None
        return Reported(existing, False)
    return Reported(absence, True)


def _same_absence(pupil: Pupil, first_day: date, last_day: date) -> Absence | None:
    return db.session.scalar(select(Absence).where(
        Absence.pupil_id == pupil.id, Absence.first_day == first_day, Absence.last_day == last_day,
        Absence.cancelled_at.is_(None)))


def pupil_absence(pupil: Pupil, absence_id: int) -> Absence | None:
    return db.session.scalar(select(Absence).where(Absence.id == absence_id, Absence.pupil_id == pupil.id))


def cancel_absence(user: User, pupil: Pupil, absence_id: int) -> Absence:
    """Cancel a reported absence before its first day's cutoff (cancelling twice is fine)."""
    absence = pupil_absence(pupil, absence_id)
    if absence is None:
        raise DailyError(N_("There is no such absence."), "not_found", 404)
    if absence.cancelled_at is not None:
        return absence
    detail = {"absence": absence.id, "first_day": absence.first_day.isoformat()}
    found = _term_and_rules(pupil, absence.first_day)
    if found is not None and cutoff_passed(found[1], absence.first_day, clock()):
        _refuse(AuditAction.ABSENCE_REFUSE, user, pupil,
                DailyError(N_("It is past %(time)s on the first day: the absence can no longer be cancelled."),
                           "cutoff_passed", time=found[1].absence_cutoff), detail)
    pupil_id, user_id = pupil.id, user.id
    lock_pupil(pupil_id)
    absence = db.session.get(Absence, absence_id)
    assert absence is not None
    if absence.cancelled_at is not None:
        db.session.commit()
        return absence
    if db.session.scalar(select(RollCallMark.id).where(
            RollCallMark.pupil_id == pupil_id, RollCallMark.day == absence.first_day).limit(1)) is not None:
        _refuse(AuditAction.ABSENCE_REFUSE, user, pupil,
                DailyError(N_("The roll-call for this day has begun: please contact the school."),
                           "already_marked"), detail)
    absence.cancelled_at, absence.cancelled_by = clock(), user_id
    record(AuditAction.ABSENCE_CANCEL, f"pupil:{pupil_id}", detail, user_id=user_id, school_id=pupil.school_id)
    db.session.commit()
    return absence


def absences_of(pupil: Pupil, since: date) -> list[Absence]:
    """The pupil's absences not cancelled that end on or after `since`, soonest first."""
    return list(db.session.scalars(select(Absence).where(
        Absence.pupil_id == pupil.id, Absence.cancelled_at.is_(None), Absence.last_day >= since)
        .order_by(Absence.first_day, Absence.id)))


def absence_cutoff(pupil: Pupil, on: date) -> str | None:
    """The local time on `on` by which the pupil's family reports an absence (None: no service calendar)."""
    found = _term_and_rules(pupil, on)
    return found[1].absence_cutoff if found is not None else None


def can_cancel(absence: Absence) -> bool:
    found = _term_and_rules(absence.pupil, absence.first_day)
    return found is None or not cutoff_passed(found[1], absence.first_day, clock())


# ------------------------------------------------------------------------------------------ pickup persons


def pickup_persons(pupil: Pupil) -> list[PickupPerson]:
    return list(db.session.scalars(select(PickupPerson).where(
        PickupPerson.pupil_id == pupil.id, PickupPerson.removed_at.is_(None)).order_by(PickupPerson.id)))


def add_pickup_person(user: User, pupil: Pupil, name: str, relation: str, phone: str) -> PickupPerson:
    """Authorise an adult to collect the pupil (values already checked by the caller)."""
    if len(pickup_persons(pupil)) >= MAX_PICKUP_PERSONS:
        raise DailyError(N_("A child can have at most %(n)d pickup persons."), "too_many", 409,
                         n=MAX_PICKUP_PERSONS)
    person = PickupPerson(pupil_id=pupil.id, name=name, relation=relation, phone=phone, created_by=user.id,
                          created_at=clock())
    db.session.add(person)
    db.session.flush()
    record(AuditAction.PICKUP_ADD, f"pupil:{pupil.id}", {"person": person.id, "relation": relation},
           user_id=user.id, school_id=pupil.school_id)
    db.session.commit()
    return person


def remove_pickup_person(user: User, pupil: Pupil, person_id: int) -> PickupPerson:
    person = db.session.scalar(select(PickupPerson).where(
        PickupPerson.id == person_id, PickupPerson.pupil_id == pupil.id, PickupPerson.removed_at.is_(None)))
    if person is None:
        raise DailyError(N_("There is no such pickup person."), "not_found", 404)
    person.removed_at = clock()
    record(AuditAction.PICKUP_REMOVE, f"pupil:{pupil.id}", {"person": person.id}, user_id=user.id,
           school_id=pupil.school_id)
    db.session.commit()
    return person


# ------------------------------------------------------------------------------------------ delegates


@dataclass(frozen=True)
class IssuedDelegate:
    delegate: PickupDelegate
    code: str
    """Shown to the family once; only its HMAC is stored."""


def create_delegate(user: User, pupil: Pupil, name: str, valid_on: date) -> IssuedDelegate:
    """A single-use code for `name` to collect the pupil on `valid_on` (today or later, a service day)."""
    if valid_on < school_today():
        raise DailyError(N_("Choose today or a later date."), "invalid", 422)
    found = _term_and_rules(pupil, valid_on)
    if found is None or not _service_dates(found[0], pupil, valid_on, valid_on):
        raise DailyError(N_("Your child has no after-school service on this date."), "no_service", 409)
    code = make_enrolment_code()
    delegate = PickupDelegate(pupil_id=pupil.id, name=name, valid_on=valid_on, code_hash=hash_enrolment_code(code),
                              created_by=user.id, created_at=clock())
    db.session.add(delegate)
    db.session.flush()
    record(AuditAction.DELEGATE_CREATE, f"pupil:{pupil.id}",
           {"delegate": delegate.id, "valid_on": valid_on.isoformat()}, user_id=user.id, school_id=pupil.school_id)
    db.session.commit()
    return IssuedDelegate(delegate, code)
