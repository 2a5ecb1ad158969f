"""Why a requested pupil-day is not covered, in words a school admin can act on.

For each requested period the pupil does not sit in, the slot is examined in a fixed order (no session for
the grade, no teacher, no seat / lost to priority, too few pupils to open); the first period that fails gives
the reason. When no period fails on its own the day is `partial_day` (some periods covered) or
`not_assigned` (room was left, the allocation chose otherwise). The slot analysis depends only on
(slot, grade), so it is computed once per pair and the whole pass stays linear in pupils x days.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from scheduler.domain import Assignment, Instance, Session, Slot, Staffing, Unserved
from scheduler.weekdays import weekday_name

REASON_ZH: dict[str, str] = {
    "no_session": "{day_name} {period}：没有面向{grade}年级的课后服务课程班",
    "no_teacher": "{day_name} {period}：{grade}年级可参加的课程班未开班，"
                  "该时段没有空闲的合格教师",
    "no_seat": "{day_name} {period}：{grade}年级可用名额 {seats} 个，需求 {demand} 人",
    "min_pupils": "{day_name} {period}：{activity}至少 {min_pupils} 人才开班（容量 {capacity} 人），"
                  "该时段符合条件的申请 {demand} 人",
    "lost_to_priority": "{day_name} {period}：名额已全部分给优先级更高的学生"
                        "（{grade}年级可用名额 {seats} 个，需求 {demand} 人）",
    "partial_day": "{day_name}：已安排部分时段，{period} 没有安排，当天未能全程托管",
    "not_assigned": "{day_name} {period}：该时段仍可安排，但本次分配没有安排，可手动调整",
}
"""The admin UI's wording (Chinese); `{day_name}` and friends are filled from the explanation's params."""

REASON_EN: dict[str, str] = {
    "no_session": "{day_name} {period}: no after-school session for grade {grade}",
    "no_teacher": "{day_name} {period}: no session for grade {grade} is open and no qualified teacher "
                  "is free",
    "no_seat": "{day_name} {period}: {seats} seats for grade {grade}, {demand} pupils asked",
    "min_pupils": "{day_name} {period}: {activity} opens only with {min_pupils} pupils (capacity "
                  "{capacity}), {demand} eligible pupils asked",
    "lost_to_priority": "{day_name} {period}: every seat went to pupils of higher priority "
                        "({seats} seats for grade {grade}, {demand} pupils asked)",
    "partial_day": "{day_name}: only part of the afternoon is covered, {period} is missing",
    "not_assigned": "{day_name} {period}: room was left but the allocation did not place the pupil; adjust "
                    "by hand",
}
"""English gloss of every reason, same parameters."""

CODES = tuple(REASON_ZH)
Params = dict[str, str | int]


def reason_text(code: str, params: Mapping[str, str | int], lang: str = "zh") -> str:
    """The reason for `code` in `lang` ("zh" or "en"), with `day` turned into a day name."""
    templates = REASON_EN if lang == "en" else REASON_ZH
    day = params.get("day")
    values = dict(params)
    values["day_name"] = weekday_name(day, lang) if isinstance(day, int) else str(day)
    return templates[code].format(**values)


@dataclass(frozen=True)
class Explanation:
    pupil: str
    day: int
    code: str
    params: Params = field(default_factory=dict)

    def text(self, lang: str = "zh") -> str:
        return reason_text(self.code, self.params, lang)

    def unserved(self, lang: str = "zh") -> Unserved:
        return Unserved(self.pupil, self.day, self.text(lang), self.code, dict(self.params))


@dataclass(frozen=True)
class _SlotVerdict:
    """What stops a pupil of one grade from sitting at one slot, or `code=None` when nothing does."""

    code: str | None
    params: Params
    lowest_occupant_weight: int | None = None
    """For full slots: the smallest priority weight among seated pupils (decides `lost_to_priority`)."""


class _Analysis:
    def __init__(self, instance: Instance, assignments: Iterable[Assignment],
                 staffing: Iterable[Staffing]) -> None:
        self.instance = instance
        sessions = instance.session_by_id
        pupils = instance.pupil_by_id
        self.seated: dict[str, set[Slot]] = defaultdict(set)
        self.enrolment: Counter[str] = Counter()
        self.occupant_weight: dict[str, int] = {}
        for a in set(assignments):
            session = sessions.get(a.session)
            pupil = pupils.get(a.pupil)
            if session is None or pupil is None:
                continue
            self.seated[a.pupil].add(session.slot)
            self.enrolment[a.session] += 1
            weight = instance.weight(pupil)
            self.occupant_weight[a.session] = min(weight, self.occupant_weight.get(a.session, weight))
        self.staffed: Counter[str] = Counter()
        self.busy: set[tuple[str, Slot]] = set()
        self.load: Counter[str] = Counter()
        for s in set(staffing):
            session = sessions.get(s.session)
            if session is None or s.teacher not in instance.teacher_by_id:
                continue
            self.staffed[s.session] += 1
            self.busy.add((s.teacher, session.slot))
            self.load[s.teacher] += 1
        # Pupils asking for each (slot, grade): the demand side of seat counts.
        self.asking: Counter[tuple[Slot, int]] = Counter()
        for request in instance.requests:
            grade = pupils[request.pupil].grade
            for day in request.days:
                for period in request.periods:
                    self.asking[((day, period), grade)] += 1
        self.free_teachers: dict[Slot, list[str]] = {}
        self.verdicts: dict[tuple[Slot, int], _SlotVerdict] = {}

    def _free_teachers(self, slot: Slot) -> list[str]:
        """Teachers available at `slot`, not leading anything then, with sessions to spare this week."""
        if slot not in self.free_teachers:
            self.free_teachers[slot] = [
                t.id for t in self.instance.teachers
                if slot in t.available and (t.id, slot) not in self.busy and self.load[t.id] < t.max_sessions
            ]
        return self.free_teachers[slot]

    def _teacher_free_for(self, session: Session) -> bool:
        activity = self.instance.activity_by_id[session.activity]
        teachers = self.instance.teacher_by_id
        return any(teachers[t].can_lead(activity) for t in self._free_teachers(session.slot))

    def _demand(self, slot: Slot, eligible: list[Session]) -> int:
        grades = {g for s in eligible for g in range(s.grades[0], s.grades[1] + 1)}
        return sum(self.asking[(slot, g)] for g in grades)

    def verdict(self, slot: Slot, grade: int) -> _SlotVerdict:
        key = (slot, grade)
        if key not in self.verdicts:
            self.verdicts[key] = self._judge(slot, grade)
        return self.verdicts[key]

    def _judge(self, slot: Slot, grade: int) -> _SlotVerdict:
        day, period = slot
        base: Params = {"day": day, "period": period, "grade": grade}
        eligible = [s for s in self.instance.sessions_by_slot.get(slot, []) if s.admits_grade(grade)]
        if not eligible:
            return _SlotVerdict("no_session", base)
        open_sessions = [s for s in eligible if self.enrolment[s.id] > 0]
        demand = self._demand(slot, eligible)
        unplaced = max(0, demand - sum(self.enrolment[s.id] for s in open_sessions))
        # Closed sessions a free qualified teacher could open now, with room.
        openable = [s for s in eligible
                    if self.enrolment[s.id] == 0 and s.capacity > 0 and self._teacher_free_for(s)]
        if any(s.min_pupils <= min(s.capacity, max(1, unplaced)) for s in openable):
            return _SlotVerdict(None, base)
        if not open_sessions:
            if openable:
                smallest = min(openable, key=lambda s: (s.min_pupils, s.id))
                activity = self.instance.activity_by_id[smallest.activity].name
                return _SlotVerdict("min_pupils", {**base, "activity": activity,
                                                   "min_pupils": smallest.min_pupils,
                                                   "capacity": smallest.capacity, "demand": demand})
            if any(s.capacity > 0 for s in eligible):
                return _SlotVerdict("no_teacher", base)
            return _SlotVerdict("no_seat", {**base, "seats": 0, "demand": demand})
        seats = 0
        for s in open_sessions:
            usable = s.capacity
            if not self._teacher_free_for(s):
                usable = min(usable, self.staffed[s.id] * s.pupils_per_teacher)
            if self.enrolment[s.id] < usable:
                return _SlotVerdict(None, base)
            seats += usable
        lowest = min(self.occupant_weight[s.id] for s in open_sessions)
        return _SlotVerdict("no_seat", {**base, "seats": seats, "demand": demand}, lowest)

    def explain_day(self, pupil_id: str, day: int, periods: tuple[str, ...]) -> Explanation:
        pupil = self.instance.pupil_by_id[pupil_id]
        seated = self.seated.get(pupil_id, set())
        order = self.instance.period_index
        missing = sorted((p for p in periods if (day, p) not in seated), key=lambda p: order.get(p, 0))
        for period in missing:
            verdict = self.verdict((day, period), pupil.grade)
            if verdict.code is None:
                continue
            code = verdict.code
            if (code == "no_seat" and verdict.lowest_occupant_weight is not None
                    and verdict.lowest_occupant_weight > self.instance.weight(pupil)):
                code = "lost_to_priority"
            return Explanation(pupil_id, day, code, dict(verdict.params))
        first = missing[0]
        code = "partial_day" if len(missing) < len(periods) else "not_assigned"
        return Explanation(pupil_id, day, code, {"day": day, "period": first, "grade": pupil.grade})


def explain(instance: Instance, assignments: Iterable[Assignment],
            staffing: Iterable[Staffing]) -> tuple[Explanation, ...]:
    """One explanation per requested pupil-day left uncovered, ordered by (pupil id, day)."""
    analysis = _Analysis(instance, assignments, staffing)
    explanations = []
    for request in sorted(instance.requests, key=lambda r: r.pupil):
        if not request.periods:
            continue
        seated = analysis.seated.get(request.pupil, set())
        for day in sorted(request.days):
            if all((day, period) in seated for period in request.periods):
                continue
            explanations.append(analysis.explain_day(request.pupil, day, request.periods))
    return tuple(explanations)


def explain_unserved(instance: Instance, assignments: Iterable[Assignment], staffing: Iterable[Staffing],
                     lang: str = "zh") -> tuple[Unserved, ...]:
    """`Unserved` entries (reason in `lang`, Chinese by default) for every uncovered requested pupil-day."""
    return tuple(e.unserved(lang) for e in explain(instance, assignments, staffing))
