"""Typed SQLAlchemy 2 models for the whole system: schools, terms, requests, allocation runs and users.

Conventions:
- Every datetime is stored *naive UTC* (`utcnow()` below); convert to Asia/Shanghai only for display.
- Codes that appear in the instance JSON (school code, period/activity/session codes, teacher staff number,
  pupil number) are the stable external ids; integer primary keys never leave the database.
- A teacher's availability is per term: one `TeacherAvailability` row per (teacher, term, day, period).
  Import replaces a teacher's rows for the term; edits add or delete single rows.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from flask import current_app, has_app_context
from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db

ROLES = ("parent", "school_admin", "bureau", "duty_teacher")
REQUEST_STATUSES = ("active", "withdrawn")


class RunState(StrEnum):
    """The state of a background job's row (`AllocationRun.state`, `CapacityAdvice.state`).

    A `str` enum: members compare equal to, and are stored as, the plain strings below, so the column values
    are unchanged. queued -> running -> done | failed | cancelled; a cancel asked while running goes through
    cancelling. Capacity advice uses queued, running, done and failed only.
    """

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def active(cls) -> tuple[RunState, ...]:
        """States of a job that has not finished yet."""
        return (cls.QUEUED, cls.RUNNING, cls.CANCELLING)

    @classmethod
    def final(cls) -> tuple[RunState, ...]:
        """States a job never leaves."""
        return (cls.DONE, cls.FAILED, cls.CANCELLED)


def utcnow() -> datetime:
    """The current time as naive UTC, the only form datetimes take in the database."""
    return datetime.now(UTC).replace(tzinfo=None)


def clock() -> datetime:
    """The app's clock: now as naive UTC, or the app's frozen `NOW` (a datetime or a callable) in tests."""
    frozen = current_app.config.get("NOW") if has_app_context() else None
    if frozen is None:
        return utcnow()
    return frozen() if callable(frozen) else frozen


# Every model's `# type: ignore[name-defined]`: `db.Model` is a class Flask-SQLAlchemy makes at run time (from
# `Base`), and mypy accepts no variable as a base class.
class District(db.Model):  # type: ignore[name-defined]
    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    city: Mapped[str] = mapped_column(String(100), default="")

    schools: Mapped[list[School]] = relationship(back_populates="district")


class School(db.Model):  # type: ignore[name-defined]
    __tablename__ = "schools"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id", ondelete="SET NULL"), index=True)
    offer_hold_hours: Mapped[int] = mapped_column(Integer, default=48, server_default="48")
    """How long a waitlist offer is held for a family before it passes on."""
    contact: Mapped[str] = mapped_column(String(200), default="", server_default="")
    """Who families call or write to about after-school care (a person, a phone number, an office)."""

    district: Mapped[District | None] = relationship(back_populates="schools")
    terms: Mapped[list[Term]] = relationship(back_populates="school", cascade="all, delete-orphan")
    teachers: Mapped[list[Teacher]] = relationship(back_populates="school", cascade="all, delete-orphan")
    pupils: Mapped[list[Pupil]] = relationship(back_populates="school", cascade="all, delete-orphan")


class Term(db.Model):  # type: ignore[name-defined]
    __tablename__ = "terms"
    __table_args__ = (UniqueConstraint("school_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    requests_open_at: Mapped[datetime | None] = mapped_column(DateTime)
    requests_close_at: Mapped[datetime | None] = mapped_column(DateTime)
    results_date: Mapped[date | None] = mapped_column(Date)
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=lambda: [1, 2, 3, 4, 5])
    priority_weights: Mapped[dict[str, int]] = mapped_column(JSON, default=lambda: {"0": 1})
    lottery_seed: Mapped[int] = mapped_column(Integer, default=0)
    published_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("allocation_runs.id", ondelete="SET NULL", use_alter=True), index=True
    )
    ends_on: Mapped[date | None] = mapped_column(Date)
    """The last day of care this term; change requests dated after it are refused."""
    plan_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The version of the plan in force: 1 at the first publication, +1 with every amendment (0: unpublished)."""
    placement: Mapped[str] = mapped_column(String(16), default="offer", server_default="offer")
    """What a freed seat becomes: a `Placement.OFFER` the family answers, or `Placement.AUTOMATIC` placement."""
    seat_policy: Mapped[str] = mapped_column(String(16), default="spread", server_default="spread")
    """Who among equals gets the seats in a run: `spread` or `whole_week` (`scheduler.seat_policy`)."""

    school: Mapped[School] = relationship(back_populates="terms")
    periods: Mapped[list[Period]] = relationship(
        back_populates="term", cascade="all, delete-orphan", order_by="Period.position"
    )
    activities: Mapped[list[Activity]] = relationship(back_populates="term", cascade="all, delete-orphan")
    sessions: Mapped[list[Session]] = relationship(back_populates="term", cascade="all, delete-orphan")
    requests: Mapped[list[CareRequest]] = relationship(back_populates="term", cascade="all, delete-orphan")
    runs: Mapped[list[AllocationRun]] = relationship(
        back_populates="term", cascade="all, delete-orphan", foreign_keys="AllocationRun.term_id"
    )
    pins: Mapped[list[Pin]] = relationship(back_populates="term", cascade="all, delete-orphan")
    availability: Mapped[list[TeacherAvailability]] = relationship(
        back_populates="term", cascade="all, delete-orphan"
    )
    published_run: Mapped[AllocationRun | None] = relationship(foreign_keys=[published_run_id], post_update=True)

    def requests_open(self, now: datetime | None = None) -> bool:
        """Whether parents may submit or change requests at `now` (naive UTC)."""
        now = now or utcnow()
        if self.requests_open_at is not None and now < self.requests_open_at:
            return False
        return self.requests_close_at is None or now < self.requests_close_at


class Period(db.Model):  # type: ignore[name-defined]
    __tablename__ = "periods"
    __table_args__ = (UniqueConstraint("term_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    start: Mapped[str] = mapped_column(String(5))
    end: Mapped[str] = mapped_column(String(5))
    position: Mapped[int] = mapped_column(Integer, default=0)

    term: Mapped[Term] = relationship(back_populates="periods")


class Activity(db.Model):  # type: ignore[name-defined]
    __tablename__ = "activities"
    __table_args__ = (UniqueConstraint("term_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(64), default="")
    qualification: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    """What the children do, in a sentence or two for parents."""

    term: Mapped[Term] = relationship(back_populates="activities")


class Session(db.Model):  # type: ignore[name-defined]
    """One group meeting once a week at one (day, period)."""

    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("term_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), index=True)
    day: Mapped[int] = mapped_column(Integer)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id", ondelete="CASCADE"), index=True)
    room: Mapped[str] = mapped_column(String(100), default="")
    capacity: Mapped[int] = mapped_column(Integer)
    grade_lo: Mapped[int] = mapped_column(Integer, default=1)
    grade_hi: Mapped[int] = mapped_column(Integer, default=6)
    pupils_per_teacher: Mapped[int] = mapped_column(Integer)
    min_pupils: Mapped[int] = mapped_column(Integer, default=0)

    term: Mapped[Term] = relationship(back_populates="sessions")
    activity: Mapped[Activity] = relationship()
    period: Mapped[Period] = relationship()


class Teacher(db.Model):  # type: ignore[name-defined]
    __tablename__ = "teachers"
    __table_args__ = (UniqueConstraint("school_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    qualifications: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_sessions: Mapped[int] = mapped_column(Integer, default=5)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    """A mainland mobile number the school's messages reach the teacher on (class teacher's alerts)."""
    email: Mapped[str | None] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(10), default="zh", server_default="zh")
    """The language of the messages the teacher gets (a class teacher's alerts), as `User.locale` for accounts."""

    school: Mapped[School] = relationship(back_populates="teachers")
    availability: Mapped[list[TeacherAvailability]] = relationship(
        back_populates="teacher", cascade="all, delete-orphan"
    )


class TeacherAvailability(db.Model):  # type: ignore[name-defined]
    __tablename__ = "teacher_availability"

    teacher_id: Mapped[int] = mapped_column(ForeignKey("teachers.id", ondelete="CASCADE"), primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), primary_key=True, index=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)

    teacher: Mapped[Teacher] = relationship(back_populates="availability")
    term: Mapped[Term] = relationship(back_populates="availability")
    period: Mapped[Period] = relationship()


class Pupil(db.Model):  # type: ignore[name-defined]
    __tablename__ = "pupils"
    __table_args__ = (UniqueConstraint("school_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    grade: Mapped[int] = mapped_column(Integer)
    class_name: Mapped[str] = mapped_column(String(64), default="")
    family_code: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    enrolment_code_hash: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    school: Mapped[School] = relationship(back_populates="pupils")
    guardianships: Mapped[list[Guardianship]] = relationship(
        back_populates="pupil", cascade="all, delete-orphan"
    )


def new_session_secret() -> str:
    """A random per-account value that every session of the account carries (see `webapp.security`)."""
    return secrets.token_hex(16)


def _city_wide_default(context: Any) -> bool:
    """A bureau account created without a district covers the city; one with a district never does, even if
    the district row later disappears (its `district_id` then becomes NULL and it sees nothing)."""
    values = context.get_current_parameters()
    return values.get("role") == "bureau" and values.get("district_id") is None


class User(UserMixin, db.Model):  # type: ignore[name-defined]
    """An account. Ids are never reused (AUTOINCREMENT on SQLite, sequences elsewhere), and `session_secret`
    is checked at every request, so a cookie of a deleted account can never sign in as a later one."""

    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), index=True)
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id", ondelete="SET NULL"), index=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id", ondelete="SET NULL"), index=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    locale: Mapped[str | None] = mapped_column(String(10))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    session_secret: Mapped[str] = mapped_column(String(64), default=new_session_secret)
    city_wide: Mapped[bool] = mapped_column(Boolean, default=_city_wide_default)
    consent_policy_version: Mapped[str | None] = mapped_column(String(32))
    consent_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)

    school: Mapped[School | None] = relationship()
    district: Mapped[District | None] = relationship()
    guardianships: Mapped[list[Guardianship]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    @property
    def pupils(self) -> list[Pupil]:
        return [g.pupil for g in self.guardianships]

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


class Guardianship(db.Model):  # type: ignore[name-defined]
    __tablename__ = "guardianships"
    __table_args__ = (UniqueConstraint("user_id", "pupil_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    relation: Mapped[str] = mapped_column(String(32), default="")
    consent_policy_version: Mapped[str | None] = mapped_column(String(32))
    consent_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship(back_populates="guardianships")
    pupil: Mapped[Pupil] = relationship(back_populates="guardianships")


class CareRequest(db.Model):  # type: ignore[name-defined]
    __tablename__ = "care_requests"
    __table_args__ = (UniqueConstraint("term_id", "pupil_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), index=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    days: Mapped[list[int]] = mapped_column(JSON, default=list)
    pickup_time: Mapped[str] = mapped_column(String(5))
    periods: Mapped[list[str]] = mapped_column(JSON, default=list)
    preferences: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    submitted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    term: Mapped[Term] = relationship(back_populates="requests")
    pupil: Mapped[Pupil] = relationship()


class AllocationRun(db.Model):  # type: ignore[name-defined]
    __tablename__ = "allocation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default=RunState.QUEUED.value, index=True)
    stage: Mapped[str] = mapped_column(String(64), default="")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    best_coverage: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str | None] = mapped_column(String(16))
    coverage: Mapped[int | None] = mapped_column(Integer)
    coverage_bound: Mapped[int | None] = mapped_column(Integer)
    demand: Mapped[int | None] = mapped_column(Integer)
    objective: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """Coverage figures counted from the run's rows for the bureau (`webapp.run_summary`); None until counted."""
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(DateTime)
    version: Mapped[int | None] = mapped_column(Integer)
    is_published: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    """Refreshed every few seconds by a running job; a stale heartbeat means the worker died."""

    term: Mapped[Term] = relationship(back_populates="runs", foreign_keys=[term_id])
    assignments: Mapped[list[RunAssignment]] = relationship(back_populates="run", cascade="all, delete-orphan")
    staffing: Mapped[list[RunStaffing]] = relationship(back_populates="run", cascade="all, delete-orphan")
    unserved: Mapped[list[RunUnserved]] = relationship(back_populates="run", cascade="all, delete-orphan")


class RunAssignment(db.Model):  # type: ignore[name-defined]
    __tablename__ = "run_assignments"
    __table_args__ = (Index("ix_run_assignments_run_session", "run_id", "session_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("allocation_runs.id", ondelete="CASCADE"), primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), primary_key=True,
                                          index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)

    run: Mapped[AllocationRun] = relationship(back_populates="assignments")
    pupil: Mapped[Pupil] = relationship()
    session: Mapped[Session] = relationship()


class RunStaffing(db.Model):  # type: ignore[name-defined]
    __tablename__ = "run_staffing"

    run_id: Mapped[int] = mapped_column(ForeignKey("allocation_runs.id", ondelete="CASCADE"), primary_key=True)
    teacher_id: Mapped[int] = mapped_column(ForeignKey("teachers.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)

    run: Mapped[AllocationRun] = relationship(back_populates="staffing")
    teacher: Mapped[Teacher] = relationship()
    session: Mapped[Session] = relationship()


class RunUnserved(db.Model):  # type: ignore[name-defined]
    __tablename__ = "run_unserved"
    __table_args__ = (Index("ix_run_unserved_run_day", "run_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("allocation_runs.id", ondelete="CASCADE"), index=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    day: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """What the reason names (period, seats, demand ...), so `explain.reason_text` can say it in any language."""
    waitlist_position: Mapped[int | None] = mapped_column(Integer)

    run: Mapped[AllocationRun] = relationship(back_populates="unserved")
    pupil: Mapped[Pupil] = relationship()


class Pin(db.Model):  # type: ignore[name-defined]
    __tablename__ = "pins"
    __table_args__ = (UniqueConstraint("term_id", "pupil_id", "session_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), index=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    term: Mapped[Term] = relationship(back_populates="pins")
    pupil: Mapped[Pupil] = relationship()
    session: Mapped[Session] = relationship()


class Placement(StrEnum):
    """What a seat freed in a published plan becomes (`Term.placement`)."""

    OFFER = "offer"
    AUTOMATIC = "automatic"


class AmendmentKind(StrEnum):
    """Why a plan version was made (`PlanAmendment.kind`)."""

    PUBLISH = "publish"
    REPUBLISH = "republish"
    SEAT_REMOVAL = "seat_removal"
    SESSION_EDIT = "session_edit"
    TEACHER_EDIT = "teacher_edit"
    WITHDRAWAL = "withdrawal"
    CHANGE_REQUEST = "change_request"
    PROMOTION = "promotion"
    OFFER_ACCEPTED = "offer_accepted"
    IMPORT = "import"
    """A spreadsheet of sessions, teachers or pupils imported after publication."""


class PlanAmendment(db.Model):  # type: ignore[name-defined]
    """One version of a term's published plan: when, by whom, why, and (in `changes`) who gained or lost seats."""

    __tablename__ = "plan_amendments"
    __table_args__ = (UniqueConstraint("term_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("allocation_runs.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    violations: Mapped[list[str] | None] = mapped_column(JSON)
    """Hard-rule problems a family's own change left (a session under its minimum); None when there are none."""

    changes: Mapped[list[PlanChange]] = relationship(back_populates="amendment", cascade="all, delete-orphan",
                                                     order_by="PlanChange.id")
    actor: Mapped[User | None] = relationship()


class PlanChange(db.Model):  # type: ignore[name-defined]
    """One seat one pupil gained (`gained` True) or lost in an amendment."""

    __tablename__ = "plan_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    amendment_id: Mapped[int] = mapped_column(ForeignKey("plan_amendments.id", ondelete="CASCADE"), index=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"))
    day: Mapped[int] = mapped_column(Integer)
    gained: Mapped[bool] = mapped_column(Boolean)

    amendment: Mapped[PlanAmendment] = relationship(back_populates="changes")
    pupil: Mapped[Pupil] = relationship()
    session: Mapped[Session | None] = relationship()


class OfferState(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    LAPSED = "lapsed"
    """The family no longer asks for the day (or the plan changed under it): closed without an answer."""


class WaitlistOffer(db.Model):  # type: ignore[name-defined]
    """A freed seat held for one waitlisted pupil-day until `expires_at`: the sessions (and any extra teacher)."""

    __tablename__ = "waitlist_offers"
    __table_args__ = (Index("ix_waitlist_offers_term_state", "term_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("allocation_runs.id", ondelete="CASCADE"), index=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    day: Mapped[int] = mapped_column(Integer)
    sessions: Mapped[list[int]] = mapped_column(JSON, default=list)
    teachers: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    """[teacher_id, session_id] pairs the seat needs besides the session's present staff."""
    rank: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default=OfferState.OPEN.value, index=True)
    offered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)

    pupil: Mapped[Pupil] = relationship()
    term: Mapped[Term] = relationship()


class ChangeRequest(db.Model):  # type: ignore[name-defined]
    """A family's change to its request after publication, effective from a date (the original stays in audit)."""

    __tablename__ = "change_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), index=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    effective_on: Mapped[date] = mapped_column(Date)
    withdraw: Mapped[bool] = mapped_column(Boolean, default=False)
    days: Mapped[list[int]] = mapped_column(JSON, default=list)
    pickup_time: Mapped[str] = mapped_column(String(5), default="")
    periods: Mapped[list[str]] = mapped_column(JSON, default=list)
    preferences: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    """pending (dated in the future), applied, or superseded by a later change."""
    applied_at: Mapped[datetime | None] = mapped_column(DateTime)
    amendment_id: Mapped[int | None] = mapped_column(ForeignKey("plan_amendments.id", ondelete="SET NULL"))


PENDING_ADVICE = "state IN ('queued', 'running', 'cancelling')"


class CapacityAdvice(db.Model):  # type: ignore[name-defined]
    """What-if capacity advice for one term (`scheduler.whatif.advise`), computed in the background."""

    __tablename__ = "capacity_advice"
    __table_args__ = (
        # One pending computation per term: a second request joins it instead of queueing another solve.
        Index("uq_capacity_advice_pending", "term_id", unique=True,
              sqlite_where=text(PENDING_ADVICE), postgresql_where=text(PENDING_ADVICE)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(16), default=RunState.QUEUED.value)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)

    term: Mapped[Term] = relationship()


class ApiToken(db.Model):  # type: ignore[name-defined]
    """A bearer token for the JSON API. Only its SHA-256 is stored; the plain token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship()


class AuditLog(db.Model):  # type: ignore[name-defined]
    """Who did what. `detail` never holds phone numbers or passwords (see `webapp.audit.record`)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class NotificationEvent(StrEnum):
    """What a family is told about (the message is worded per event in the family's language)."""

    RESULTS_PUBLISHED = "results_published"
    PLAN_AMENDED = "plan_amended"
    OFFER_MADE = "offer_made"
    OFFER_EXPIRING = "offer_expiring"
    OFFER_EXPIRED = "offer_expired"
    OFFER_WITHDRAWN = "offer_withdrawn"
    """An admin's edit left an open offer unable to hold its seat (`params["reason"]` says why)."""
    CHANGE_APPLIED = "change_applied"
    ABSENCE_UNREPORTED = "absence_unreported"
    """The duty teacher marked the pupil absent and the family had reported no absence (daily service)."""
    ABSENCE_ARRIVED = "absence_arrived"
    """The unreported absence was a mistake: the mark was corrected to present or late (to the family)."""
    CLASS_ABSENCE = "class_absence"
    """To the class teacher (a teacher record): a pupil of the class is absent and nobody reported it."""
    CLASS_ARRIVED = "class_arrived"
    """To the class teacher: the absence of `CLASS_ABSENCE` was corrected, the pupil is there."""
    PUPIL_LEFT = "pupil_left"
    """The school recorded the pupil as having left: the child's seats and request in the plan were withdrawn."""


class Notification(db.Model):  # type: ignore[name-defined]
    """One message to one account, written in the same transaction as the change it reports (an outbox row).

    The in-app inbox reads these rows directly; other channels deliver them later (see `webapp.notifications`).
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_unread", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    """The account told (a guardian), or None for a message to a teacher record (`teacher_id`)."""
    teacher_id: Mapped[int | None] = mapped_column(ForeignKey("teachers.id", ondelete="CASCADE"), index=True)
    """A teacher without an account, reached on the contact of their teacher record (the class teacher)."""
    pupil_id: Mapped[int | None] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    term_id: Mapped[int | None] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User | None] = relationship()
    teacher: Mapped[Teacher | None] = relationship()
    pupil: Mapped[Pupil | None] = relationship()
    deliveries: Mapped[list[NotificationDelivery]] = relationship(
        back_populates="notification", cascade="all, delete-orphan", order_by="NotificationDelivery.channel")


class DeliveryChannel(StrEnum):
    """Channels a notification is delivered on besides the in-app inbox (which is the `Notification` row)."""

    EMAIL = "email"
    SMS = "sms"


class DeliveryState(StrEnum):
    """pending -> sending -> sent | failed; a failed attempt that may be retried goes back to pending."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class NotificationDelivery(db.Model):  # type: ignore[name-defined]
    """One notification on one channel: written by `notify()` with the notification, sent by the delivery job.

    `claim_token` names the worker that holds the row while it is `sending`, until `lease_until`.
    """

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "channel"),
        Index("ix_notification_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    notification: Mapped[Notification] = relationship(back_populates="deliveries")


class NotificationSweep(db.Model):  # type: ignore[name-defined]
    """One pass of the delivery job (job kind "notify"): a job row for the one runner, with what it did."""

    __tablename__ = "notification_sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default=RunState.QUEUED, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    retried: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


# ===========================================================================================================

# Daily service (issue 15): term calendar, absences, pickup persons, delegates, roll-call marks, handovers.
# Rules live in `webapp.daily`; rows here are only ever added (marks, handovers) or closed with a timestamp
# (absences, pickup persons, delegates), never edited in place, so the day's record stays what happened.
# ==================================================================================================================


class CalendarDayKind(StrEnum):
    """What a dated calendar entry changes (`CalendarDay.kind`)."""

    HOLIDAY = "holiday"
    """No school and no after-school service."""
    MAKEUP = "makeup"
    """调休: a working day (often a Saturday or Sunday) that runs another weekday's timetable (`runs_weekday`)."""
    EARLY_CLOSE = "early_close"
    """School runs, but the service ends by `pickup_time`."""


class SchoolCalendar(db.Model):  # type: ignore[name-defined]
    """A school's own layer of a term's calendar: its dates (or None to inherit them), the parents' absence
    cutoff, and its own dated exceptions on top of what the city and the district publish."""

    __tablename__ = "school_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), unique=True)
    first_day: Mapped[date | None] = mapped_column(Date)
    last_day: Mapped[date | None] = mapped_column(Date)
    """None: the term's dates come from the bureau's calendars (`webapp.daily.layers`)."""
    absence_cutoff: Mapped[str] = mapped_column(String(5), default="12:00", server_default="12:00")
    """Local time (HH:MM) on the day itself after which parents can no longer report or cancel an absence."""
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    term: Mapped[Term] = relationship()
    days: Mapped[list[CalendarDay]] = relationship(back_populates="calendar", cascade="all, delete-orphan",
                                                   order_by="CalendarDay.day")
    pickup_windows: Mapped[list[PickupWindow]] = relationship(
        back_populates="calendar", cascade="all, delete-orphan", order_by="PickupWindow.starts_on")


CITY_CALENDAR = "district_id IS NULL"


class BureauCalendar(db.Model):  # type: ignore[name-defined]
    """A calendar the city (`district_id` None) or a district publishes for every school's term of that name.

    A draft until `published_at`; schools inherit published ones only, and changes after publication reach
    them at once (their effective calendar is computed when read, `webapp.daily.layers`)."""

    __tablename__ = "bureau_calendars"
    __table_args__ = (
        UniqueConstraint("district_id", "term_name"),
        Index("uq_bureau_calendars_city_term", "term_name", unique=True,
              sqlite_where=text(CITY_CALENDAR), postgresql_where=text(CITY_CALENDAR)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"), index=True)
    term_name: Mapped[str] = mapped_column(String(64))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    published_at: Mapped[datetime | None] = mapped_column(DateTime)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    district: Mapped[District | None] = relationship()
    days: Mapped[list[CalendarDay]] = relationship(back_populates="bureau_calendar", cascade="all, delete-orphan",
                                                   order_by="CalendarDay.day")
    pickup_windows: Mapped[list[PickupWindow]] = relationship(
        back_populates="bureau_calendar", cascade="all, delete-orphan", order_by="PickupWindow.starts_on")


class CalendarDay(db.Model):  # type: ignore[name-defined]
    """One dated exception to the weekly rhythm: a holiday, a 调休 make-up day or an early-close day."""

    __tablename__ = "calendar_days"
    __table_args__ = (UniqueConstraint("calendar_id", "day"), UniqueConstraint("bureau_calendar_id", "day"))

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("school_calendars.id", ondelete="CASCADE"),
                                                    index=True)
    """The school's calendar the entry belongs to, or None when it is a bureau calendar's."""
    bureau_calendar_id: Mapped[int | None] = mapped_column(ForeignKey("bureau_calendars.id", ondelete="CASCADE"),
                                                           index=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    runs_weekday: Mapped[int | None] = mapped_column(Integer)
    """For a make-up day: the weekday (1 = Monday) whose timetable runs."""
    pickup_time: Mapped[str] = mapped_column(String(5), default="")
    """For an early-close day: the service ends by this local time (HH:MM)."""
    note: Mapped[str] = mapped_column(String(100), default="")

    calendar: Mapped[SchoolCalendar | None] = relationship(back_populates="days")
    bureau_calendar: Mapped[BureauCalendar | None] = relationship(back_populates="days")


class PickupWindow(db.Model):  # type: ignore[name-defined]
    """A seasonal timetable: from `starts_on` to `ends_on` (inclusive) the service ends by `pickup_time`."""

    __tablename__ = "pickup_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("school_calendars.id", ondelete="CASCADE"),
                                                    index=True)
    bureau_calendar_id: Mapped[int | None] = mapped_column(ForeignKey("bureau_calendars.id", ondelete="CASCADE"),
                                                           index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    pickup_time: Mapped[str] = mapped_column(String(5))
    note: Mapped[str] = mapped_column(String(100), default="")

    calendar: Mapped[SchoolCalendar | None] = relationship(back_populates="pickup_windows")
    bureau_calendar: Mapped[BureauCalendar | None] = relationship(back_populates="pickup_windows")


ACTIVE_ABSENCE = "cancelled_at IS NULL"


class Absence(db.Model):  # type: ignore[name-defined]
    """A family's report that a pupil will not attend from `first_day` to `last_day`; cancelled, never deleted."""

    __tablename__ = "absences"
    __table_args__ = (
        # The same absence reported twice (a retry, a double tap) is one row.
        Index("uq_absences_active", "pupil_id", "first_day", "last_day", unique=True,
              sqlite_where=text(ACTIVE_ABSENCE), postgresql_where=text(ACTIVE_ABSENCE)),
        Index("ix_absences_pupil_days", "pupil_id", "first_day", "last_day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(200), default="")
    reported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    pupil: Mapped[Pupil] = relationship()


class PickupPerson(db.Model):  # type: ignore[name-defined]
    """An adult the family authorises to collect the pupil. Removal closes the row so past handovers keep it."""

    __tablename__ = "pickup_persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    relation: Mapped[str] = mapped_column(String(20))
    phone: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime)

    pupil: Mapped[Pupil] = relationship()


class PickupDelegate(db.Model):  # type: ignore[name-defined]
    """A one-off person collecting the pupil on `valid_on` with a single-use code; only the code's HMAC is kept."""

    __tablename__ = "pickup_delegates"

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    valid_on: Mapped[date] = mapped_column(Date)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)

    pupil: Mapped[Pupil] = relationship()


class MarkStatus(StrEnum):
    """A roll-call mark (`RollCallMark.status`)."""

    PRESENT = "present"
    ABSENT = "absent"
    LATE = "late"


class RollCallMark(db.Model):  # type: ignore[name-defined]
    """One roll-call mark. The newest row for (pupil, session, day) is in force; a correction is a new row
    naming the one it corrects and why. `client_id` comes from the phone, so a retried post is one row."""

    __tablename__ = "roll_call_marks"
    __table_args__ = (Index("ix_roll_call_marks_day_session", "day", "session_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    marked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    marked_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("roll_call_marks.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(200), default="")


class Handover(db.Model):  # type: ignore[name-defined]
    """The moment a pupil left the service with an authorised adult: one per pupil and day."""

    __tablename__ = "handovers"
    __table_args__ = (UniqueConstraint("pupil_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date, index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    pickup_person_id: Mapped[int | None] = mapped_column(ForeignKey("pickup_persons.id", ondelete="SET NULL"))
    delegate_id: Mapped[int | None] = mapped_column(ForeignKey("pickup_delegates.id", ondelete="SET NULL"))
    handed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    pickup_person: Mapped[PickupPerson | None] = relationship()
    delegate: Mapped[PickupDelegate | None] = relationship()


class DutyTeacher(db.Model):  # type: ignore[name-defined]
    """Links a `duty_teacher` account to its teacher record (and so to one school)."""

    __tablename__ = "duty_teachers"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    teacher_id: Mapped[int] = mapped_column(ForeignKey("teachers.id", ondelete="CASCADE"), unique=True)

    user: Mapped[User] = relationship()
    teacher: Mapped[Teacher] = relationship()


class ClassTeacher(db.Model):  # type: ignore[name-defined]
    """The class teacher (班主任) of one class (grade and class name, as the pupils carry them) of a school."""

    __tablename__ = "class_teachers"
    __table_args__ = (UniqueConstraint("school_id", "grade", "class_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"))
    grade: Mapped[int] = mapped_column(Integer)
    class_name: Mapped[str] = mapped_column(String(64))
    teacher_id: Mapped[int] = mapped_column(ForeignKey("teachers.id", ondelete="CASCADE"), index=True)

    teacher: Mapped[Teacher] = relationship()


class AlertProblem(StrEnum):
    """Why the class teacher could not be told of an unreported absence (`AbsenceAlert.problem`)."""

    NO_CLASS_TEACHER = "no_class_teacher"
    NO_CONTACT = "no_contact"


class AbsenceAlert(db.Model):  # type: ignore[name-defined]
    """An absence nobody reported, raised by the duty teacher's first `absent` of the day for a pupil: one per
    pupil and day. It names the class teacher told (or why nobody was) and, once the mark is corrected to
    present or late, when the follow-up went out."""

    __tablename__ = "absence_alerts"
    __table_args__ = (UniqueConstraint("pupil_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date, index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"))
    mark_id: Mapped[int | None] = mapped_column(ForeignKey("roll_call_marks.id", ondelete="SET NULL"))
    raised_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    raised_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    class_teacher_id: Mapped[int | None] = mapped_column(ForeignKey("teachers.id", ondelete="SET NULL"),
                                                         index=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id", ondelete="SET NULL"))
    """The class teacher's message (its deliveries say whether it reached them)."""
    problem: Mapped[str | None] = mapped_column(String(32))
    """An `AlertProblem` when the class teacher could not be told."""
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime)
    """When a correction to present or late sent the follow-up (once)."""

    pupil: Mapped[Pupil] = relationship()
    session: Mapped[Session | None] = relationship()
    class_teacher: Mapped[Teacher | None] = relationship()
    notification: Mapped[Notification | None] = relationship()


# ============================================================================================ end of daily service
# ------------------------------------------------------------------------------------------ password reset codes


class ResetCodeKind(StrEnum):
    """How a password reset code reached the family."""

    SLIP = "slip"
    """Printed by the school admin and handed to the family, like an enrolment code."""
    SMS = "sms"
    """Sent by text message to the account's phone."""


class PasswordResetCode(db.Model):  # type: ignore[name-defined]
    """A one-time code that lets a parent choose a new password. Only its keyed hash is stored.

    A code is good once, until `expires_at`, and for at most `MAX_ATTEMPTS` wrong guesses
    (`webapp.auth.recovery`); issuing a new code of the same kind ends the older ones.
    """

    __tablename__ = "password_reset_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


# ============================================================================================ priority groups


class PriorityGroup(db.Model):  # type: ignore[name-defined]
    """A city-wide priority group the bureau defines (特殊教育需要, 留守儿童, ...) and the coverage weight it gives."""

    __tablename__ = "priority_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64), unique=True)
    name_en: Mapped[str] = mapped_column(String(64), unique=True)
    weight: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PriorityTag(db.Model):  # type: ignore[name-defined]
    """A school admin's finding that a pupil belongs to a priority group, on evidence seen, until a date."""

    __tablename__ = "priority_tags"
    __table_args__ = (UniqueConstraint("pupil_id", "group_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("priority_groups.id", ondelete="RESTRICT"), index=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    """The evidence the admin saw (a certificate's kind and number, never a scan)."""
    expires_on: Mapped[date] = mapped_column(Date, index=True)
    """The last day the tag counts."""
    tagged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    pupil: Mapped[Pupil] = relationship()
    group: Mapped[PriorityGroup] = relationship()


# ============================================================================================ end of priority groups


# ==================================================================================================================
# Daily service: the service notice and safety agreement (告家长书). A notice version is only ever added (a new
# version supersedes the old); a guardian's signature names the version it agrees to, for one pupil.
# ==================================================================================================================


class ServiceNotice(db.Model):  # type: ignore[name-defined]
    """One published version of a term's notice to families; the highest version of the term is in force."""

    __tablename__ = "service_notices"
    __table_args__ = (UniqueConstraint("term_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("terms.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    hours: Mapped[str] = mapped_column(String(200))
    safety: Mapped[str] = mapped_column(Text)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    published_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class NoticeSignature(db.Model):  # type: ignore[name-defined]
    """A guardian's agreement to one notice version for one pupil: one per (version, pupil)."""

    __tablename__ = "notice_signatures"
    __table_args__ = (UniqueConstraint("notice_id", "pupil_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("service_notices.id", ondelete="CASCADE"))
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id", ondelete="CASCADE"), index=True)
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    signed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# ================================================================================ end of the daily service notice
