"""The CP-SAT model: integer seat counts per group of interchangeable pupils, and a teacher flow.

Decision variables
- `seats[k, s]`: how many pupils of day class k sit in session s;
- `seated[k, u, q]`: how many pupils of preference group u (inside k) have a seat in period q;
- `covered[k, u, level]`: how many pupils of u at that priority level have a seat in every period they need;
- `liked[k, u, q, a]`: how many pupils of u sit, in period q, in an activity a they ranked;
- `teachers[s]`: how many teachers lead s; `leads[t, g]`: teacher t leads one session of staffing group g =
  (day, period, qualification). With integral `teachers[s]` the teacher side is a flow, so no per-session
  teacher variables are needed; `scheduler.solve` hands out concrete teachers afterwards.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ortools.sat.python import cp_model

from scheduler.domain import Instance, Session, Slot
from scheduler.groups import DayClass

StaffingGroup = tuple[int, str, str]
"""(day, period, qualification tag; "" when any teacher may lead)."""


def staffing_group(instance: Instance, session: Session) -> StaffingGroup:
    tag = instance.activity_by_id[session.activity].qualification
    return (session.day, session.period, tag or "")


@dataclass(frozen=True)
class Levels:
    """The objective levels as linear expressions over the model's variables."""

    coverage: cp_model.LinearExprT
    stability: cp_model.LinearExprT
    preference: cp_model.LinearExprT
    max_load: cp_model.LinearExprT
    staffing: cp_model.LinearExprT


class AllocationModel:
    """Builds every hard rule of PROBLEM.md over counts of interchangeable pupils."""

    def __init__(self, instance: Instance, classes: list[DayClass], *, hire_sessions: int = 0) -> None:
        """`hire_sessions > 0` lets the model hire teachers (what-if advice), each leading that many a week."""
        self.instance = instance
        self.classes = classes
        self.hire_sessions = hire_sessions
        self.hired: dict[str, cp_model.IntVar] = {}
        self.hired_leads: dict[tuple[StaffingGroup, str], cp_model.IntVar] = {}
        self.model = cp_model.CpModel()
        self.seats: dict[tuple[int, str], cp_model.IntVar] = {}
        self.seated: dict[tuple[int, int, str], cp_model.IntVar] = {}
        self.covered: dict[tuple[int, int, int], cp_model.IntVar] = {}
        self.liked: dict[tuple[int, int, str, str], cp_model.IntVar] = {}
        self.enrolment: dict[str, list[cp_model.IntVar]] = defaultdict(list)
        self.teachers: dict[str, cp_model.IntVar] = {}
        self.leads: dict[tuple[str, StaffingGroup], cp_model.IntVar] = {}
        self.load: dict[str, list[cp_model.IntVar]] = {}

        self._add_seats_per_period()
        self._add_coverage_needs_every_period()
        self._add_pins()
        self._add_liked_activities()
        self._add_session_capacity_and_minimum()
        self._add_teacher_flow()
        self.max_load = self.model.new_int_var(0, max((t.max_sessions for t in instance.teachers), default=0),
                                               "max_teacher_load")
        for teacher_id, leads in self.load.items():
            self.model.add(sum(leads) <= self.max_load).with_name(f"max_load_{teacher_id}")

    def _add_seats_per_period(self) -> None:
        """A pupil sits in at most one session per period, and only in eligible sessions of requested periods."""
        for k, day_class in enumerate(self.classes):
            for period, sessions in day_class.eligible.items():
                seats = []
                for session in sessions:
                    var = self.model.new_int_var(0, min(day_class.size, session.capacity),
                                                 f"seats_{day_class.name}_{k}_{session.id}")
                    self.seats[(k, session.id)] = var
                    self.enrolment[session.id].append(var)
                    seats.append(var)
                seated = []
                for u, group in enumerate(day_class.groups.values()):
                    var = self.model.new_int_var(0, group.size if seats else 0, f"seated_{k}_{u}_{period}")
                    self.seated[(k, u, period)] = var
                    seated.append(var)
                self.model.add(sum(seated) == sum(seats))

    def _add_coverage_needs_every_period(self) -> None:
        """A pupil-day counts as covered only when the pupil has a seat in every period requested that day."""
        for k, day_class in enumerate(self.classes):
            for u, group in enumerate(day_class.groups.values()):
                covered = []
                for level, pupils in sorted(group.pupils_by_priority.items()):
                    var = self.model.new_int_var(0, len(pupils), f"covered_{k}_{u}_prio{level}")
                    self.covered[(k, u, level)] = var
                    covered.append(var)
                for period in day_class.periods:
                    self.model.add(sum(covered) <= self.seated[(k, u, period)])

    def _add_pins(self) -> None:
        """Every pupil an admin pinned to a session sits in it."""
        for k, day_class in enumerate(self.classes):
            for session_id in day_class.fixed:
                self.model.add(self.seats[(k, session_id)] == day_class.size).with_name(f"pin_{k}_{session_id}")

    def _add_liked_activities(self) -> None:
        """Pupils counted as sitting in a ranked activity do sit in a session of it, at most one per period."""
        for k, day_class in enumerate(self.classes):
            for period, sessions in day_class.eligible.items():
                liked_by_activity: dict[str, list[cp_model.IntVar]] = defaultdict(list)
                for u, group in enumerate(day_class.groups.values()):
                    offered = {s.activity for s in sessions}
                    liked = []
                    for activity, _score in group.scores:
                        if activity not in offered:
                            continue
                        var = self.model.new_int_var(0, group.size, f"liked_{k}_{u}_{period}_{activity}")
                        self.liked[(k, u, period, activity)] = var
                        liked_by_activity[activity].append(var)
                        liked.append(var)
                    if liked:
                        self.model.add(sum(liked) <= self.seated[(k, u, period)])
                for activity, liked in liked_by_activity.items():
                    seats = [self.seats[(k, s.id)] for s in sessions if s.activity == activity]
                    self.model.add(sum(liked) <= sum(seats))

    def _add_session_capacity_and_minimum(self) -> None:
        """Enrolment stays within capacity, reaches min_pupils when the session runs, and sets the teachers needed."""
        for session in self.instance.sessions:
            seats = self.enrolment.get(session.id)
            if not seats:
                continue
            enrolment = sum(seats)
            self.model.add(enrolment <= session.capacity).with_name(f"capacity_{session.id}")
            if session.min_pupils > 1:
                running = self.model.new_bool_var(f"runs_{session.id}")
                self.model.add(enrolment >= session.min_pupils).only_enforce_if(running)
                self.model.add(enrolment == 0).only_enforce_if(~running)
            most = -(-session.capacity // session.pupils_per_teacher)
            teachers = self.model.new_int_var(0, most, f"teachers_{session.id}")
            self.model.add(session.pupils_per_teacher * teachers >= enrolment).with_name(f"ratio_{session.id}")
            self.model.add(teachers <= enrolment)
            self.teachers[session.id] = teachers

    def _add_teacher_flow(self) -> None:
        """Teachers lead only what they are qualified and available for, one session a slot, within their cap."""
        demand: dict[StaffingGroup, list[cp_model.IntVar]] = defaultdict(list)
        for session_id, teachers in self.teachers.items():
            demand[staffing_group(self.instance, self.instance.session_by_id[session_id])].append(teachers)
        groups_by_slot: dict[Slot, list[StaffingGroup]] = defaultdict(list)
        for group in demand:
            groups_by_slot[(group[0], group[1])].append(group)
        supply: dict[StaffingGroup, list[cp_model.IntVar]] = defaultdict(list)
        for teacher in self.instance.teachers:
            leads = []
            for slot in sorted(teacher.available):
                in_slot = []
                for group in groups_by_slot.get(slot, []):
                    if group[2] and group[2] not in teacher.qualifications:
                        continue
                    var = self.model.new_bool_var(f"leads_{teacher.id}_{group[0]}_{group[1]}_{group[2] or 'any'}")
                    self.leads[(teacher.id, group)] = var
                    supply[group].append(var)
                    in_slot.append(var)
                if len(in_slot) > 1:
                    self.model.add_at_most_one(in_slot)
                leads += in_slot
            if leads:
                self.model.add(sum(leads) <= teacher.max_sessions).with_name(f"week_cap_{teacher.id}")
                self.load[teacher.id] = leads
        if self.hire_sessions:
            self._add_hired_teachers(list(demand), supply)
        for group, needed in demand.items():
            self.model.add(sum(needed) == sum(supply.get(group, []))).with_name(f"staff_{group}")

    def _add_hired_teachers(self, groups: list[StaffingGroup],
                            supply: dict[StaffingGroup, list[cp_model.IntVar]]) -> None:
        """A hired teacher with qualification X leads X or unqualified sessions, one a slot, `hire_sessions` a week."""
        tags = sorted({group[2] for group in groups} | {""})
        sessions = self.instance.session_by_id
        most = sum(-(-sessions[s].capacity // sessions[s].pupils_per_teacher) for s in self.teachers)
        by_slot_tag: dict[tuple[int, str, str], list[cp_model.IntVar]] = defaultdict(list)
        for tag in tags:
            self.hired[tag] = self.model.new_int_var(0, most, f"hired_{tag or 'any'}")
        for group in groups:
            for tag in tags:
                if group[2] not in ("", tag):
                    continue
                var = self.model.new_int_var(0, most, f"hired_leads_{group[0]}_{group[1]}_{group[2] or 'any'}_{tag}")
                self.hired_leads[(group, tag)] = var
                supply[group].append(var)
                by_slot_tag[(group[0], group[1], tag)].append(var)
        for (_, _, tag), leads in by_slot_tag.items():
            self.model.add(sum(leads) <= self.hired[tag])
        for tag, hired in self.hired.items():
            week = [var for (_, t), var in self.hired_leads.items() if t == tag]
            self.model.add(sum(week) <= self.hire_sessions * hired)

    def levels(self) -> Levels:
        instance = self.instance
        coverage = []
        for (_, _, level), var in self.covered.items():
            coverage.append(instance.priority_weights[level] * var)
        stability = []
        for k, day_class in enumerate(self.classes):
            stability += [self.seats[(k, s)] for s in day_class.previous if (k, s) in self.seats]
        preference = []
        for k, day_class in enumerate(self.classes):
            for u, group in enumerate(day_class.groups.values()):
                for activity, score in group.scores:
                    for period in day_class.periods:
                        liked = self.liked.get((k, u, period, activity))
                        if liked is not None:
                            preference.append(score * liked)
        return Levels(
            coverage=sum(coverage),
            stability=sum(stability),
            preference=sum(preference),
            max_load=self.max_load,
            staffing=sum(self.teachers.values()),
        )

    def all_variables(self) -> list[cp_model.IntVar]:
        return [
            *self.seats.values(), *self.seated.values(), *self.covered.values(), *self.liked.values(),
            *self.teachers.values(), *self.leads.values(), self.max_load,
            *self.hired.values(), *self.hired_leads.values(),
        ]
