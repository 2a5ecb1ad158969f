"""The bureau's daily-service figures: attendance against placements and late pickups, per school, counts only.

Nothing here names a child. For each school and each date up to today, the expected pupils come from the
roster (`load_roster`: seats of the plan in force on service days, reported absences not counted as expected),
the attended ones from the roll-call marks in force (present or late), and a late pickup is a handover more
than `LATE_GRACE_MINUTES` after the end of the pupil's last session that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from webapp.daily.attendance import marks_in_force
from webapp.daily.calendar import local_now
from webapp.daily.roster import load_roster, term_on
from webapp.extensions import db
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

    @property
    def rate(self) -> float | None:
        return self.attended / self.expected if self.expected else None


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
                if local_now(handover.at) > end + timedelta(minutes=LATE_GRACE_MINUTES):
                    late += 1
        on += timedelta(days=1)
    return SchoolFigures(school, expected, attended, reported, late)
