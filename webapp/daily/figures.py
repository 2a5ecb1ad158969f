"""The bureau's daily-service figures: attendance against placements, late pickups and signed agreements, per
school and rolled up by district and by city; counts only.

Nothing here names a child. For each school and each date up to today, the expected pupils come from the
roster (`load_roster`: seats of the plan in force on service days, reported absences not counted as expected),
the attended ones from the roll-call marks in force (present or late), and a late pickup is a handover more
than `LATE_GRACE_MINUTES` after the end of the pupil's last session that day. Signed agreements are the placed
pupils of the term running on the last day whose guardian signed the service notice in force
(`webapp.daily.notice.signed_share`). `rollup` adds school rows up by district or city: rates are recomputed from
the summed counts, never averaged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from webapp.daily.attendance import marks_in_force
from webapp.daily.layers import term_on
from webapp.daily.notice import signed_share
from webapp.daily.roster import load_roster
from webapp.extensions import db
from webapp.labels import to_local
from webapp.models import Handover, MarkStatus, School

LATE_GRACE_MINUTES = 10


@dataclass(frozen=True)
class SchoolFigures:
    school: School
    expected: int
    """Pupil-days placed and not reported absent."""
    attended: int
    reported_absent: int
    late_pickups: int
    signed: int = 0
    """Placed pupils whose guardian signed the notice in force (0 when the school publishes none)."""
    placed: int = 0
    """Placed pupils of the term running on the last day."""

    @property
    def rate(self) -> float | None:
        return self.attended / self.expected if self.expected else None

    @property
    def signed_rate(self) -> float | None:
        return self.signed / self.placed if self.placed else None


@dataclass(frozen=True)
class Rollup:
    """The sum of several schools' figures (a district, a city, or all in scope)."""

    label: str
    schools: int
    expected: int
    attended: int
    reported_absent: int
    late_pickups: int
    signed: int
    placed: int

    @property
    def rate(self) -> float | None:
        return self.attended / self.expected if self.expected else None

    @property
    def signed_rate(self) -> float | None:
        return self.signed / self.placed if self.placed else None


def rollup(rows: Iterable[SchoolFigures], key: Callable[[School], str]) -> list[Rollup]:
    """Sum school rows by `key(school)` (e.g. its district's name), in order of the key."""
    groups: dict[str, list[SchoolFigures]] = {}
    for row in rows:
        groups.setdefault(key(row.school), []).append(row)
    return [Rollup(label, len(group), sum(r.expected for r in group), sum(r.attended for r in group),
                   sum(r.reported_absent for r in group), sum(r.late_pickups for r in group),
                   sum(r.signed for r in group), sum(r.placed for r in group))
            for label, group in sorted(groups.items())]


def school_figures(school: School, first: date, last: date) -> SchoolFigures:
    expected = attended = reported = late = 0
    on = first
    while on <= last:
        term = term_on(school.id, on)
        roster = load_roster(term, on) if term is not None else None
        if roster is not None and roster.sessions:
            due: dict[int, str] = {}
            for entry in roster.sessions:
                for pupil_id in entry.expected:
                    due[pupil_id] = max(due.get(pupil_id, ""), entry.end)
            reported += len({p for e in roster.sessions for p in e.reported_absent} - set(due))
            expected += len(due)
            marks = marks_in_force(on, session_ids=[e.session_id for e in roster.sessions])
            attended += len({p for (p, _s), m in marks.items() if p in due
                             and m.status in (MarkStatus.PRESENT, MarkStatus.LATE)})
            for handover in db.session.scalars(select(Handover).where(Handover.day == on,
                                                                      Handover.pupil_id.in_(list(due)))):
                end = datetime.combine(on, datetime.strptime(due[handover.pupil_id], "%H:%M").time())
                if to_local(handover.at) > end + timedelta(minutes=LATE_GRACE_MINUTES):
                    late += 1
        on += timedelta(days=1)
    term = term_on(school.id, last)
    signed, placed = signed_share(term) if term is not None else (0, 0)
    return SchoolFigures(school, expected, attended, reported, late, signed, placed)
