"""What a parent may do with a child's care request, as plain functions the web pages and the API share.

Nothing here reads Flask's request or form objects. Bad input raises `RequestError` carrying every problem
found (field path + message); a child the user is not a guardian of raises `NotYourChild`, which callers turn
into 404 so the existence of other families' children is never revealed. Times are naive UTC from the app
clock (`webapp.models.clock`, which tests freeze through `app.config["NOW"]`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask_babel import LazyString, force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from webapp.allocation import service as allocation
from webapp.allocation.changes import ChangeError, request_change
from webapp.audit import record
from webapp.daily.notice import unsigned_notice
from webapp.extensions import db
from webapp.labels import period_clocks, unserved_reason
from webapp.models import (
    Activity,
    AllocationRun,
    CareRequest,
    ChangeRequest,
    Guardianship,
    Period,
    Pupil,
    RunAssignment,
    RunStaffing,
    RunUnserved,
    Session,
    Teacher,
    Term,
    User,
    clock,
)
from webapp.parents.timetable import WeekGrid, plain_reason, waitlist_text, week_grid
from webapp.security import parent_owns_pupil
from webapp.services import periods_for_pickup

MAX_PREFERENCES = 3


class RequestError(Exception):
    """Input a parent must correct. `field` is the first problem's field path (e.g. "preferences[1]")."""

    def __init__(self, field: str, message: str | LazyString,
                 problems: Sequence[tuple[str, str | LazyString]] | None = None, *, link: str = "") -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message
        self.link = link
        """Where the parent can put it right (the service notice to sign), when there is such a page."""
        self.problems: list[tuple[str, str | LazyString]] = list(problems or [(field, message)])

    def __str__(self) -> str:
        """The message in the current language (translated only now: lazy messages need a locale)."""
        return f"{self.field}: {self.message}"


class NotYourChild(LookupError):
    """The user is not a guardian of this pupil (or the pupil does not exist): answer 404."""



# ------------------------------------------------------------------------------------------ terms and window


def current_term(pupil: Pupil) -> Term | None:
    """The term a parent deals with now: the school's term whose request window opened last (newest first)."""
    terms = db.session.scalars(select(Term).where(Term.school_id == pupil.school_id)).all()
    if not terms:
        return None
    return max(terms, key=lambda t: (t.requests_open_at or datetime.min, t.id))


@dataclass(frozen=True)
class WindowState:
    """Whether requests may be made: "not_open" (before opens_at), "open", or "closed" (from closes_at on)."""

    state: str
    opens_at: datetime | None
    closes_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.state == "open"


def window_state(term: Term, at: datetime | None = None) -> WindowState:
    """Open at exactly `requests_open_at`, closed at exactly `requests_close_at`."""
    at = at or clock()
    if term.requests_open_at is not None and at < term.requests_open_at:
        state = "not_open"
    elif term.requests_close_at is not None and at >= term.requests_close_at:
        state = "closed"
    else:
        state = "open"
    return WindowState(state, term.requests_open_at, term.requests_close_at)


def is_published(term: Term) -> bool:
    run = term.published_run
    return run is not None and bool(run.is_published)


# ------------------------------------------------------------------------------------------ choices


def term_periods(term: Term) -> list[Period]:
    return sorted(term.periods, key=lambda p: p.position)


def pickup_times(term: Term) -> list[str]:
    """The clock times a child can be collected at: the end of each period, earliest first."""
    return sorted({p.end for p in term.periods})


def offered_activities(term: Term, grade: int, periods: Iterable[str] | None = None) -> list[Activity]:
    """Activities with a session open to `grade` on a service day in one of `periods` (all periods if None)."""
    wanted = None if periods is None else set(periods)
    query = (
        select(Activity).join(Session, Session.activity_id == Activity.id).join(Period, Period.id == Session.period_id)
        .where(Session.term_id == term.id, Session.grade_lo <= grade, Session.grade_hi >= grade,
               Session.day.in_(list(term.weekdays)))
        .distinct().order_by(Activity.id)
    )
    if wanted is not None:
        query = query.where(Period.code.in_(sorted(wanted)))
    return list(db.session.scalars(query).all())


def find_request(pupil: Pupil, term: Term) -> CareRequest | None:
    return db.session.scalar(
        select(CareRequest).where(CareRequest.term_id == term.id, CareRequest.pupil_id == pupil.id)
    )


# ------------------------------------------------------------------------------------------ checks


def ensure_guardian(user: User, pupil: Pupil | None) -> Pupil:
    if pupil is None:
        raise NotYourChild()
    if not _guardian_known(user, pupil.id):
        if not parent_owns_pupil(user, pupil.id):
            raise NotYourChild()
        _remember_guardian(user, pupil.id)
    return pupil


def own_pupil(user: User, pupil_id: int) -> Pupil:
    """The pupil `pupil_id` if `user` is a parent and one of its guardians (one query), else `NotYourChild`."""
    pupil = None
    if user.is_authenticated and user.role == "parent":
        pupil = db.session.scalar(
            select(Pupil).join(Guardianship, Guardianship.pupil_id == Pupil.id)
            .where(Pupil.id == pupil_id, Guardianship.user_id == user.id)
        )
    if pupil is None:
        raise NotYourChild()
    _remember_guardian(user, pupil.id)
    return pupil


def own_pupils(user: User) -> list[Pupil]:
    """The children `user` is a guardian of, with their schools, in one query (school, grade, name order)."""
    if not user.is_authenticated or user.role != "parent":
        return []
    pupils = db.session.scalars(
        select(Pupil).join(Guardianship, Guardianship.pupil_id == Pupil.id).where(Guardianship.user_id == user.id)
        .options(joinedload(Pupil.school))
    ).all()
    for pupil in pupils:
        _remember_guardian(user, pupil.id)
    return sorted(pupils, key=lambda p: (p.school_id, p.grade, p.name, p.id))


_GUARDIANS_CHECKED = "parents.guardians_checked"


def _remember_guardian(user: User, pupil_id: int) -> None:
    """A guardianship read in this transaction need not be read again before it ends."""
    checked = db.session.info.setdefault(_GUARDIANS_CHECKED, {})
    checked[(user.id, pupil_id)] = db.session().get_transaction()


def _guardian_known(user: User, pupil_id: int) -> bool:
    transaction = db.session().get_transaction()
    checked = db.session.info.get(_GUARDIANS_CHECKED, {})
    return transaction is not None and checked.get((user.id, pupil_id)) is transaction


def _check_term(pupil: Pupil, term: Term) -> None:
    if term.school_id != pupil.school_id:
        raise NotYourChild()


def _check_on_roll(pupil: Pupil) -> None:
    """A child the school recorded as having left takes no new request or change (withdrawing stays possible)."""
    if not pupil.active:
        raise RequestError("form", _l("The school recorded this child as having left the school, so no request "
                                       "can be made. If this is a mistake, please contact the school."))


def _check_open(term: Term, at: datetime) -> None:
    window = window_state(term, at)
    if window.state == "not_open":
        raise RequestError("window", _l("Requests for this term are not open yet."))
    if window.state == "closed":
        raise RequestError("window", _l("Requests for this term are closed."))


@dataclass
class CleanRequest:
    days: list[int]
    pickup_time: str
    periods: list[str]
    preferences: list[str]


def clean_request(pupil: Pupil, term: Term, days: Iterable[Any], pickup: str | None,
                  preferences: Iterable[str | None]) -> CleanRequest:
    """Check a request against the term; return it normalised or raise `RequestError` listing every problem."""
    problems: list[tuple[str, str | LazyString]] = []

    chosen_days: list[int] = []
    for value in days:
        try:
            day = int(value)
        except (TypeError, ValueError):
            day = -1
        if day not in term.weekdays:
            problems.append(("days", _l("Choose only days on which the school offers care.")))
            break
        if day not in chosen_days:
            chosen_days.append(day)
    if not chosen_days and not problems:
        problems.append(("days", _l("Choose at least one day.")))

    pickup = (pickup or "").strip()
    periods: list[str] = []
    if pickup not in pickup_times(term):
        problems.append(("pickup_time", _l("Choose a pickup time from the list.")))
    else:
        periods = periods_until(term, pickup)

    ranked = [(i, (code or "").strip()) for i, code in enumerate(preferences)]
    codes = [code for _, code in ranked if code]
    if len(codes) > MAX_PREFERENCES:
        problems.append(("preferences", _l("Choose at most %(n)d activities.", n=MAX_PREFERENCES)))
    elif codes:
        offered = {a.code for a in offered_activities(term, pupil.grade, periods or None)}
        seen: set[str] = set()
        for index, code in ranked:
            if not code:
                continue
            if code in seen:
                problems.append((f"preferences[{index}]", _l("This activity is already one of your choices.")))
            elif code not in offered:
                problems.append((f"preferences[{index}]",
                                 _l("This activity is not offered to your child's grade at the chosen times.")))
            seen.add(code)

    if problems:
        raise RequestError(problems[0][0], problems[0][1], problems)
    return CleanRequest(sorted(chosen_days), pickup, periods, codes)


def periods_until(term: Term, pickup: str) -> list[str]:
    return periods_for_pickup(term_periods(term), pickup)


# ------------------------------------------------------------------------------------------ save / withdraw


def save_request(user: User, pupil: Pupil, term: Term, days: Iterable[Any], pickup: str | None,
                 preferences: Iterable[str | None], *, at: datetime | None = None) -> CareRequest:
    """Create or update the pupil's one request for `term` while the window is open; commit; return it."""
    return store_request(user, pupil, term, days, pickup, preferences, at=at)[0]


def store_request(user: User, pupil: Pupil, term: Term, days: Iterable[Any], pickup: str | None,
                  preferences: Iterable[str | None], *, at: datetime | None = None) -> tuple[CareRequest, bool]:
    """`save_request`, also telling whether this call created the request (True) or updated it (False).

    Updating keeps `submitted_at` and sets `updated_at`. A double submit stores one request: when a
    concurrent insert wins the unique (term, pupil) race, this one becomes an update of that row. The request
    and its audit record are committed together; the returned request and `term` stay loaded (not expired), so
    answering with what was stored costs no further query.
    """
    ensure_guardian(user, pupil)
    _check_term(pupil, term)
    _check_on_roll(pupil)
    at = at or clock()
    _check_open(term, at)
    due = unsigned_notice(pupil, term)
    if due is not None:
        raise RequestError("notice", due.message, link=due.url)
    clean = clean_request(pupil, term, days, pickup, preferences)
    pupil_id, term_id, user_id, school_id = pupil.id, term.id, user.id, term.school_id

    existing = find_request(pupil, term)
    if existing is None:
        row = CareRequest(term_id=term_id, pupil_id=pupil_id, submitted_at=at, updated_at=at)
        _fill(row, clean, user_id, at)
        db.session.add(row)
        record("request.submit", f"pupil:{pupil_id}", {"term_id": term_id, "days": clean.days},
               user_id=user_id, school_id=school_id)
        try:
            _commit_unexpired()
            return row, True
        except IntegrityError:
            db.session.rollback()
        existing = db.session.scalar(
            select(CareRequest).where(CareRequest.term_id == term_id, CareRequest.pupil_id == pupil_id)
        )
        if existing is None:  # the conflicting row vanished again: nothing sensible left but to retry once
            raise RequestError("form", _l("Your request could not be saved. Please try again."))
    if is_published(term) and existing.status == "active":
        # After publication a change is a change request, effective today: the plan in force follows it.
        try:
            request_change(existing, actor=user, effective_on=at.date(), days=clean.days,
                           pickup_time=clean.pickup_time, periods=clean.periods, preferences=clean.preferences)
        except allocation.AllocationError as exc:
            raise RequestError("form", _l(str(exc))) from None
        db.session.refresh(existing)
        return existing, False
    _fill(existing, clean, user_id, at)
    record("request.update", f"pupil:{pupil_id}", {"term_id": term_id, "days": clean.days},
           user_id=user_id, school_id=school_id)
    _commit_unexpired()
    return existing, False


def _commit_unexpired() -> None:
    """Commit without expiring what the session holds: the caller answers with the values it has just written."""
    session = db.session()
    expire = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def _fill(row: CareRequest, clean: CleanRequest, user_id: int, at: datetime) -> None:
    row.days = clean.days
    row.pickup_time = clean.pickup_time
    row.periods = clean.periods
    row.preferences = clean.preferences
    row.status = "active"
    row.submitted_by = user_id
    row.updated_at = at


def withdraw_request(user: User, pupil: Pupil, term: Term, *, at: datetime | None = None) -> CareRequest:
    """Withdraw the pupil's request; after publication the child's seats go to the waitlist (one transaction).

    The seats and the waitlist are `webapp.allocation.service.withdraw_request`'s. Returns the withdrawn
    request; raises `RequestError` when there is no active request.
    """
    ensure_guardian(user, pupil)
    _check_term(pupil, term)
    at = at or clock()
    row = find_request(pupil, term)
    if row is None or row.status != "active":
        raise RequestError("form", _l("There is no active request to withdraw."))
    try:
        allocation.withdraw_request(row, actor=user, at=at)
    except allocation.NotWithdrawable:
        raise RequestError("form", _l("There is no active request to withdraw.")) from None
    return row


def change_published_request(user: User, pupil: Pupil, term: Term, effective_on: date, *, withdraw: bool = False,
                             days: Iterable[Any] = (), pickup: str | None = None,
                             preferences: Iterable[str | None] = ()) -> ChangeRequest:
    """A change to the published request from `effective_on` (withdrawing, or new days, pickup, preferences).

    Checks the values like a request, then hands them to `webapp.allocation.changes.request_change` (one
    transaction). Raises `RequestError` ("form" when there is nothing to change, "effective_on" for the date).
    """
    ensure_guardian(user, pupil)
    _check_term(pupil, term)
    _check_on_roll(pupil)
    row = find_request(pupil, term)
    if row is None or row.status != "active" or not is_published(term):
        raise RequestError("form", _l("There is no published request to change."))
    clean = None if withdraw else clean_request(pupil, term, days, pickup, preferences)
    try:
        if clean is None:
            return request_change(row, actor=user, effective_on=effective_on, withdraw=True)
        return request_change(row, actor=user, effective_on=effective_on, days=clean.days,
                              pickup_time=clean.pickup_time, periods=clean.periods, preferences=clean.preferences)
    except ChangeError as error:
        raise RequestError("effective_on", gettext(str(error))) from None


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Slot:
    day: int
    start: str
    end: str
    activity: str
    room: str
    teachers: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class UncoveredDay:
    """A requested day not covered: why, in plain words with clock times, and the waiting-list place if any."""

    day: int
    reason: str
    waitlist_position: int | None
    code: str = ""
    waitlist_note: str = ""


@dataclass(frozen=True)
class ChildResult:
    """The published allocation for one child: weekly timetable and why requested days are not covered."""

    run_id: int
    published_at: datetime | None
    timetable: list[Slot]
    uncovered: list[UncoveredDay]
    requested_days: list[int]
    covered_days: list[int] = field(default_factory=list)
    plan_version: int = 0
    grid: WeekGrid | None = None
    """The timetable as days × clock times (None when nothing is requested)."""


def child_result(pupil: Pupil, term: Term, lang: str = "zh") -> ChildResult | None:
    """The child's published result, or None while nothing is published."""
    if not is_published(term) or term.published_run_id is None:
        return None
    run: AllocationRun | None = term.published_run
    assert run is not None
    run_id = run.id
    rows = db.session.execute(
        select(Session, Activity, Period)
        .select_from(RunAssignment)
        .join(Session, Session.id == RunAssignment.session_id)
        .join(Activity, Activity.id == Session.activity_id)
        .join(Period, Period.id == Session.period_id)
        .where(RunAssignment.run_id == run_id, RunAssignment.pupil_id == pupil.id)
        .order_by(Session.day, Period.position)
    ).all()
    session_ids = [s.id for s, _, _ in rows]
    teachers: dict[int, list[str]] = {}
    if session_ids:
        for session_id, name in db.session.execute(
            select(RunStaffing.session_id, Teacher.name).join(Teacher, Teacher.id == RunStaffing.teacher_id)
            .where(RunStaffing.run_id == run_id, RunStaffing.session_id.in_(session_ids)).order_by(Teacher.name)
        ):
            teachers.setdefault(session_id, []).append(name)
    # The timetable never shows more than the family asks for now: a day, period or pickup time dropped since
    # the plan was made is left out even if a seat is still on record (the allocation service frees those).
    request = find_request(pupil, term)
    requested = sorted(request.days) if request is not None and request.status == "active" else []
    needed = set(request.periods) if request is not None and request.status == "active" else set()
    shown = [(s, activity, p) for s, activity, p in rows if s.day in requested and p.code in needed]
    timetable = [Slot(s.day, p.start, p.end, activity.name, s.room, tuple(teachers.get(s.id, [])),
                      activity.description or "")
                 for s, activity, p in shown]

    unserved = db.session.scalars(
        select(RunUnserved).where(RunUnserved.run_id == run_id, RunUnserved.pupil_id == pupil.id)
        .order_by(RunUnserved.day)
    ).all()
    periods = term_periods(term)
    clocks = period_clocks(periods)
    with force_locale(lang):
        uncovered = [UncoveredDay(u.day, plain_reason(u.code, u.params, u.day, clocks, unserved_reason(u, lang),
                                                   lang),
                                  u.waitlist_position, u.code,
                                  waitlist_text(u.waitlist_position, u.day, lang) if u.waitlist_position else "")
                     for u in unserved if u.day in requested]
    seated: dict[int, set[str]] = {}
    for s, _, p in shown:
        seated.setdefault(s.day, set()).add(p.code)
    covered = [d for d in requested if needed and needed <= seated.get(d, set())]
    grid = week_grid(timetable, requested, periods, sorted(needed),
                     [d for d in requested if d not in covered]) if requested else None
    return ChildResult(run_id, run.published_at, timetable, uncovered, requested, covered,
                       plan_version=int(term.plan_version or 0), grid=grid)


