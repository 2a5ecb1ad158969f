"""What happened (or is planned) for a child on each date: the status the family sees, read-only.

The status of a day, in order of precedence: `no_service` (no seat in a session that runs), `picked_up`
(a handover is recorded), the roll-call mark in force (`late`, `present`, `absent`), `reported_absent`, and
otherwise `scheduled`. The mark in force for a pupil, session and day is the newest row (corrections are
new rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from webapp.daily.layers import term_on
from webapp.daily.roster import load_roster
from webapp.extensions import db
from webapp.models import Handover, MarkStatus, Pupil, RollCallMark, Session

MAX_RANGE_DAYS = 62


@dataclass(frozen=True)
class SessionInfo:
    session_id: int
    activity: str
    start: str
    end: str
    room: str


@dataclass(frozen=True)
class ChildDay:
    on: date
    status: str
    sessions: tuple[SessionInfo, ...]
    checked_in_at: datetime | None
    picked_up_at: datetime | None
    picked_up_by: str | None


def marks_in_force(day: date, pupil_ids: list[int] | None = None,
                   session_ids: list[int] | None = None) -> dict[tuple[int, int], RollCallMark]:
    """The newest mark per (pupil, session) on `day`."""
    query = select(RollCallMark).where(RollCallMark.day == day)
    if pupil_ids is not None:
        query = query.where(RollCallMark.pupil_id.in_(pupil_ids))
    if session_ids is not None:
        query = query.where(RollCallMark.session_id.in_(session_ids))
    found: dict[tuple[int, int], RollCallMark] = {}
    for mark in db.session.scalars(query.order_by(RollCallMark.id)):
        found[(mark.pupil_id, mark.session_id)] = mark
    return found


def handover_name(handover: Handover) -> str:
    if handover.pickup_person is not None:
        return handover.pickup_person.name
    return handover.delegate.name if handover.delegate is not None else ""


def child_days(pupil: Pupil, first: date, last: date) -> list[ChildDay]:
    """One `ChildDay` per date from `first` to `last` (at most `MAX_RANGE_DAYS`)."""
    handovers = {h.day: h for h in db.session.scalars(select(Handover).where(
        Handover.pupil_id == pupil.id, Handover.day >= first, Handover.day <= last))}
    marks: dict[date, list[RollCallMark]] = {}
    for mark in db.session.scalars(select(RollCallMark).where(
            RollCallMark.pupil_id == pupil.id, RollCallMark.day >= first, RollCallMark.day <= last)
            .order_by(RollCallMark.id)):
        marks.setdefault(mark.day, []).append(mark)
    days = []
    on = first
    while on <= last:
        term = term_on(pupil.school_id, on)
        roster = load_roster(term, on, pupil_id=pupil.id) if term is not None else None
        seats = roster.sessions_of(pupil.id) if roster is not None else []
        sessions = _session_info([s.session_id for s in seats], {s.session_id: s.end for s in seats})
        latest: dict[int, RollCallMark] = {m.session_id: m for m in marks.get(on, [])}
        handover = handovers.get(on)
        arrived = [m.marked_at for m in latest.values() if m.status in (MarkStatus.PRESENT, MarkStatus.LATE)]
        if not seats:
            status = "no_service"
        elif handover is not None:
            status = "picked_up"
        elif latest:
            statuses = {m.status for m in latest.values()}
            status = next(s for s in (MarkStatus.LATE, MarkStatus.PRESENT, MarkStatus.ABSENT) if s in statuses)
        elif roster is not None and roster.reported_absent(pupil.id):
            status = "reported_absent"
        else:
            status = "scheduled"
        days.append(ChildDay(on, str(status), sessions, min(arrived) if arrived else None,
                             handover.at if handover is not None else None,
                             handover_name(handover) if handover is not None else None))
        on += timedelta(days=1)
    return days


def _session_info(session_ids: list[int], ends: dict[int, str]) -> tuple[SessionInfo, ...]:
    if not session_ids:
        return ()
    rows = db.session.scalars(select(Session).where(Session.id.in_(session_ids))).all()
    return tuple(sorted((SessionInfo(s.id, s.activity.name, s.period.start, ends.get(s.id, s.period.end),
                                     s.room or "") for s in rows), key=lambda s: (s.start, s.session_id)))
