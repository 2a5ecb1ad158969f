"""The mixed-integer model: integer seat counts per group of interchangeable pupils, and a teacher flow.

Decision variables
- `seats[k, s]`: how many pupils of day class k sit in session s;
- `seated[k, u, q]`: how many pupils of preference group u (inside k) have a seat in period q;
- `covered[k, u, level]`: how many pupils of u at that priority level have a seat in every period they need;
- `liked[k, u, q, a]`: how many pupils of u sit, in period q, in an activity a they ranked;
- `teachers[s]`: how many teachers lead s (an integer);
- `leads[t, g]`: whether teacher t leads one session of staffing group g = (day, period, qualification).

Once `teachers[s]` is integral the teacher side is a network flow (teacher -> free slot -> staffing group), whose
polytope has integral vertices: `leads` can stay continuous without changing the optimum, and `scheduler.solve`
recovers whole teachers with a max-flow afterwards. That keeps the integer part of the model small.

Which sessions get teachers is the decision everything else follows from: once `teachers` and `runs` are whole,
what is left is close to a flow, and its relaxation is nearly whole. The backend branches on them first
(`STAFFING_PRIORITY`; SCIP honours branching priorities, HiGHS ignores them). On schools short of teachers, SCIP
left to choose among all the integers closed the gap far more slowly (`docs/benchmarks.md`).

The pupil side is a flow too once `seats` and `covered` are whole: in each class and period, pupils of each
preference group (at least the covered ones, at most the group) flow to the activities they ranked or to any
seat, and the seats of each activity cap what reaches it. So `liked`, and `seated` where a class has several
groups, are continuous as well, which leaves the backend a few thousand integers per day instead of tens of
thousands on a school where preferences split every class; `whole_counts` turns a point of the relaxed model into
whole pupils by a min-cost flow per class and period, never lowering level 3. With the staffing whole and held as
well, seating every class of a slot is one flow: `seating_within_staffing` seats a plan's pupils for the most
preference points its staffing allows, each session within the range its teachers give it (`enrolment_range`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ortools.graph.python import min_cost_flow
from ortools.linear_solver import pywraplp

from scheduler.deadline import Deadline
from scheduler.domain import Instance, Session, Slot, Teacher
from scheduler.groups import DayClass

StaffingGroup = tuple[int, str, str]
"""(day, period, qualification tag; "" when any teacher may lead)."""

Var = Any
"""A pywraplp variable (the SWIG wrapper has no usable type)."""
Expr = Any
"""A pywraplp linear expression."""


STAFFING_PRIORITY = 10
"""Branching priority of `teachers[s]` and `runs[s]` (every other variable keeps 0, so these are branched on first)."""


def staffing_group(instance: Instance, session: Session) -> StaffingGroup:
    tag = instance.activity_by_id[session.activity].qualification
    return (session.day, session.period, tag or "")


def _by_slot(groups: Iterable[StaffingGroup]) -> dict[Slot, list[StaffingGroup]]:
    """Staffing groups by the slot (day, period) they are in, in the order given."""
    by_slot: dict[Slot, list[StaffingGroup]] = defaultdict(list)
    for group in groups:
        by_slot[(group[0], group[1])].append(group)
    return by_slot


def total(terms: list[Any]) -> Expr:
    """A flat linear sum (Python's `sum` would nest one node per term), still an expression when empty."""
    return pywraplp.SumArray(terms)


LEVELS = ("coverage", "stability", "preference", "max_load", "staffing")
"""The objective levels of PROBLEM.md in their strict order; level 4 (teacher load) is two steps."""
MAXIMISED = frozenset({"coverage", "stability", "preference"})
"""Levels that are maximised; the others are minimised."""


class AllocationModel:
    """Builds every hard rule of PROBLEM.md over counts of interchangeable pupils."""

    def __init__(self, instance: Instance, classes: list[DayClass], *, backend: str = "SCIP",
                 hire_sessions: int = 0, deadline: Deadline | None = None) -> None:
        """`hire_sessions > 0` lets the model hire teachers (what-if advice), each leading that many a week.
        With a `deadline`, building raises `OutOfTime` once it has passed (checked every day class)."""
        solver = pywraplp.Solver.CreateSolver(backend)
        if solver is None:
            raise ValueError(f"the {backend} solver is not available in this OR-Tools build")
        self.solver = solver
        self.backend = backend
        self.instance = instance
        self.classes = classes
        self.hire_sessions = hire_sessions
        self.deadline = deadline
        self.seats: dict[tuple[int, str], Var] = {}
        self.seated: dict[tuple[int, int, str], Var] = {}
        self.covered: dict[tuple[int, int, int], Var] = {}
        self.liked: dict[tuple[int, int, str, str], Var] = {}
        self.enrolment: dict[str, list[Var]] = defaultdict(list)
        self.teachers: dict[str, Var] = {}
        self.runs: dict[str, Var] = {}
        self.leads: dict[tuple[str, StaffingGroup], Var] = {}
        self.load: dict[str, list[Var]] = {}
        self.hired: dict[str, Var] = {}
        self.hired_leads: dict[tuple[StaffingGroup, str], Var] = {}
        self.week_caps: dict[str, pywraplp.Constraint] = {}
        """Each teacher's weekly cap row, over `load[teacher id]` (and `staff_also`'s leads)."""
        self.enrolment_rows: dict[str, list[pywraplp.Constraint]] = defaultdict(list)
        """Per session, the rows over its enrolment (and its `teachers` and `runs`): held staffing reads them as
        the enrolment's range (`enrolment_range`)."""
        self._variables: list[Var] = []

        self._add_seats_per_period()
        self._add_coverage_needs_every_period()
        self._add_pins()
        self._add_liked_activities()
        self._add_session_capacity_and_minimum()
        self._add_teacher_flow()
        self._add_max_teacher_load()

    def variables(self) -> list[Var]:
        """The solver's variables by index. `solver.variables()` builds a new list of every variable on each
        call; this one is kept until the model gains a variable."""
        if len(self._variables) != self.solver.NumVariables():
            self._variables = self.solver.variables()
        return self._variables

    def hint(self, variables: Sequence[Var], values: Sequence[float]) -> None:
        """Start the next search from `values` of `variables`. HiGHS gets no start: OR-Tools' HiGHS interface
        (9.15) ends the process with a segmentation fault on any hint, so it searches from scratch."""
        if self.backend != "HIGHS":
            self.solver.SetHint(list(variables), list(values))

    def variable_days(self) -> list[int | None]:
        """The day of each variable, by index; None for one of the whole week (`max_load`, hired teachers). Rows
        over one day's variables are that day's own: only the teachers' weekly caps, their largest load and what a
        level holds over the week tie the days together."""
        days: list[int | None] = [None] * self.solver.NumVariables()
        for by_class in (self.seats, self.seated, self.covered, self.liked):
            for key, var in by_class.items():
                days[var.index()] = self.classes[key[0]].day
        sessions = self.instance.session_by_id
        for by_session in (self.teachers, self.runs):
            for session_id, var in by_session.items():
                days[var.index()] = sessions[session_id].day
        for (_, group), var in self.leads.items():
            days[var.index()] = group[0]
        for (group, _), var in self.hired_leads.items():
            days[var.index()] = group[0]
        return days

    def row(self, terms: Sequence[tuple[Var, float]], lower: float | None, upper: float | None,
             name: str = "") -> pywraplp.Constraint:
        """`lower <= sum(coefficient * var) <= upper` (None: unbounded), written straight into the backend's rows:
        building expression objects first cost more than half of building a model. Each variable appears once."""
        infinity = self.solver.infinity()
        row = self.solver.Constraint(-infinity if lower is None else lower, infinity if upper is None else upper, name)
        for var, coefficient in terms:
            row.SetCoefficient(var, coefficient)
        return row

    def _check_time(self) -> None:
        if self.deadline is not None:
            self.deadline.check()

    def _in_time(self, classes: list[DayClass]) -> Iterable[tuple[int, DayClass]]:
        """`enumerate(classes)`, checking the deadline before each class."""
        for k, day_class in enumerate(classes):
            self._check_time()
            yield k, day_class

    def _add_seats_per_period(self) -> None:
        """A pupil sits in at most one session per period, and only in eligible sessions of requested periods."""
        solver = self.solver
        for k, day_class in self._in_time(self.classes):
            for period, sessions in day_class.eligible.items():
                seats = []
                for session in sessions:
                    var = solver.IntVar(0, min(day_class.size, session.capacity),
                                        f"seats_{day_class.name}_{session.id}")
                    self.seats[(k, session.id)] = var
                    self.enrolment[session.id].append(var)
                    seats.append(var)
                seated = []
                # One group is seated exactly as the class's seats: a count the backend may as well branch on
                # (so the coarse model of levels 1 and 2 stays as it was); several are split by a flow.
                count = solver.IntVar if len(day_class.groups) == 1 else solver.NumVar
                for u, group in enumerate(day_class.groups.values()):
                    var = count(0, group.size if seats else 0, f"seated_{day_class.name}_u{u}_{period}")
                    self.seated[(k, u, period)] = var
                    seated.append(var)
                self.row([(var, 1) for var in seated] + [(var, -1) for var in seats], 0, 0,
                          f"seated_{day_class.name}_{period}")

    def _add_coverage_needs_every_period(self) -> None:
        """A pupil-day counts as covered only when the pupil has a seat in every period requested that day."""
        solver = self.solver
        for k, day_class in self._in_time(self.classes):
            for u, group in enumerate(day_class.groups.values()):
                covered = []
                for level, pupils in sorted(group.pupils_by_priority.items()):
                    var = solver.IntVar(0, len(pupils), f"covered_{day_class.name}_u{u}_prio{level}")
                    self.covered[(k, u, level)] = var
                    covered.append(var)
                for period in day_class.periods:
                    self.row([(var, 1) for var in covered] + [(self.seated[(k, u, period)], -1)], None, 0)

    def _add_pins(self) -> None:
        """Every pupil an admin pinned to a session sits in it."""
        for k, day_class in enumerate(self.classes):
            for session_id in day_class.fixed:
                self.row([(self.seats[(k, session_id)], 1)], day_class.size, day_class.size,
                          f"pin_{day_class.name}_{session_id}")

    def _add_liked_activities(self) -> None:
        """Pupils counted as sitting in a ranked activity do sit in a session of it, at most one per period."""
        solver = self.solver
        for k, day_class in self._in_time(self.classes):
            for period, sessions in day_class.eligible.items():
                offered = {s.activity for s in sessions}
                liked_by_activity: dict[str, list[Var]] = defaultdict(list)
                for u, group in enumerate(day_class.groups.values()):
                    liked = []
                    for activity, _score in group.scores:
                        if activity not in offered:
                            continue
                        var = solver.NumVar(0, group.size, f"liked_{day_class.name}_u{u}_{period}_{activity}")
                        self.liked[(k, u, period, activity)] = var
                        liked_by_activity[activity].append(var)
                        liked.append(var)
                    if liked:
                        self.row([(var, 1) for var in liked] + [(self.seated[(k, u, period)], -1)], None, 0)
                for activity, liked in liked_by_activity.items():
                    seats = [self.seats[(k, s.id)] for s in sessions if s.activity == activity]
                    self.row([(var, 1) for var in liked] + [(var, -1) for var in seats], None, 0)

    def _add_session_capacity_and_minimum(self) -> None:
        """Enrolment stays within capacity, reaches min_pupils if the session runs, and sets the teachers needed."""
        self._check_time()
        solver = self.solver
        for session in self.instance.sessions:
            seats = self.enrolment.get(session.id)
            if not seats:
                continue
            enrolment = [(var, 1) for var in seats]
            minus = [(var, -1) for var in seats]
            rows = self.enrolment_rows[session.id]
            rows.append(self.row(enrolment, None, session.capacity, f"capacity_{session.id}"))
            if session.min_pupils > 1:
                runs = self.runs[session.id] = solver.BoolVar(f"runs_{session.id}")
                runs.SetBranchingPriority(STAFFING_PRIORITY)
                rows.append(self.row([*enrolment, (runs, -session.min_pupils)], 0, None, f"min_pupils_{session.id}"))
                rows.append(self.row([*enrolment, (runs, -session.capacity)], None, 0))
            # No more pupils can ever sit in the session than its room holds or its eligible classes count
            # (a homework room of a grade whose few pupils request that period, a care room on a quiet day).
            most_pupils = min(session.capacity, sum(int(var.ub()) for var in seats))
            ratio = session.pupils_per_teacher
            teachers = solver.IntVar(0, -(-most_pupils // ratio), f"teachers_{session.id}")
            teachers.SetBranchingPriority(STAFFING_PRIORITY)
            rows.append(self.row([(teachers, ratio), *minus], 0, None, f"ratio_{session.id}"))
            # The last teacher a session needs may serve fewer than pupils_per_teacher pupils (a room smaller
            # than the ratio, or a session with fewer eligible pupils, needs a whole teacher for one pupil): the
            # convex hull of the ratio rule over 0..most_pupils says so. Where most_pupils < ratio it reads
            # enrolment <= most_pupils * teachers, which the linear relaxation otherwise lets a sliver of a
            # teacher earn ratio pupils a whole.
            full, rest = divmod(most_pupils, ratio)
            if rest:
                rows.append(self.row([(teachers, rest), *minus], rest * full - full * ratio, None,
                                     f"last_teacher_{session.id}"))
            rows.append(self.row([(teachers, 1), *minus], None, 0))
            self.teachers[session.id] = teachers

    def _add_teacher_flow(self) -> None:
        """Teachers lead only what they are qualified and available for, one session a slot, within their cap."""
        self._check_time()
        demand: dict[StaffingGroup, list[Var]] = defaultdict(list)
        for session_id, teachers in self.teachers.items():
            demand[staffing_group(self.instance, self.instance.session_by_id[session_id])].append(teachers)
        groups_by_slot = _by_slot(demand)
        supply: dict[StaffingGroup, list[Var]] = defaultdict(list)
        for teacher in self.instance.teachers:
            mine = self._leads_of(teacher, groups_by_slot, "leads")
            for group, var in mine.items():
                self.leads[(teacher.id, group)] = var
                supply[group].append(var)
            if mine:
                leads = list(mine.values())
                self.week_caps[teacher.id] = self.row([(var, 1) for var in leads], None, teacher.max_sessions,
                                                      f"week_cap_{teacher.id}")
                self.load[teacher.id] = leads
        if self.hire_sessions:
            self._add_hired_teachers(list(demand), supply)
        for group, needed in demand.items():
            self.row([(var, 1) for var in needed] + [(var, -1) for var in supply.get(group, [])], 0, 0,
                      f"staff_{group[0]}_{group[1]}_{group[2]}")

    def _leads_of(self, teacher: Teacher, groups_by_slot: Mapping[Slot, list[StaffingGroup]],
                  prefix: str) -> dict[StaffingGroup, Var]:
        """Whether `teacher` leads one session of each staffing group they are free and qualified for (a
        continuous variable by group, in slot order), at most one a slot."""
        mine: dict[StaffingGroup, Var] = {}
        for slot in sorted(teacher.available):
            in_slot = []
            for group in groups_by_slot.get(slot, []):
                if group[2] and group[2] not in teacher.qualifications:
                    continue
                var = self.solver.NumVar(0, 1, f"{prefix}_{teacher.id}_{group[0]}_{group[1]}_{group[2] or 'any'}")
                mine[group] = var
                in_slot.append(var)
            if len(in_slot) > 1:
                self.row([(var, 1) for var in in_slot], None, 1)
        return mine

    def staff_also(self, needs: Mapping[StaffingGroup, int]) -> dict[tuple[str, StaffingGroup], Var]:
        """Keep `needs` staffed too: sessions to lead in slots outside this model's classes (another day's,
        say), by the same teachers within the same weekly caps, whoever leads them. What a teacher leads there
        counts towards their cap only (not towards `max_load`, which is this model's own). Returns the leads
        added, by (teacher id, staffing group); their flow is whole when the model's staffing is."""
        groups_by_slot = _by_slot(group for group, count in needs.items() if count > 0)
        added: dict[tuple[str, StaffingGroup], Var] = {}
        by_group: dict[StaffingGroup, list[Var]] = defaultdict(list)
        for teacher in self.instance.teachers:
            mine = self._leads_of(teacher, groups_by_slot, "also_leads")
            if not mine:
                continue
            for group, var in mine.items():
                added[(teacher.id, group)] = var
                by_group[group].append(var)
            cap = self.week_caps.get(teacher.id)
            if cap is None:
                self.week_caps[teacher.id] = self.row([(var, 1) for var in mine.values()], None,
                                                      teacher.max_sessions, f"week_cap_{teacher.id}")
            else:
                for var in mine.values():
                    cap.SetCoefficient(var, 1)
        for group, count in needs.items():
            if count > 0:
                self.row([(var, 1) for var in by_group[group]], count, count,
                         f"also_staff_{group[0]}_{group[1]}_{group[2]}")
        return added

    def _add_max_teacher_load(self) -> None:
        """No teacher leads more sessions than `max_teacher_load`, the number level 4 brings down."""
        most = max((t.max_sessions for t in self.instance.teachers), default=0)
        self.max_load = self.solver.IntVar(0, most, "max_teacher_load")
        for teacher_id, leads in self.load.items():
            self.row([(var, 1) for var in leads] + [(self.max_load, -1)], None, 0, f"max_load_{teacher_id}")

    def _add_hired_teachers(self, groups: list[StaffingGroup], supply: dict[StaffingGroup, list[Var]]) -> None:
        """A hired teacher with qualification X leads X or unqualified sessions, one a slot, `hire_sessions` a week."""
        solver = self.solver
        tags = sorted({group[2] for group in groups} | {""})
        sessions = self.instance.session_by_id
        most = sum(-(-sessions[s].capacity // sessions[s].pupils_per_teacher) for s in self.teachers)
        by_slot_tag: dict[tuple[int, str, str], list[Var]] = defaultdict(list)
        for tag in tags:
            self.hired[tag] = solver.IntVar(0, most, f"hired_{tag or 'any'}")
        for group in groups:
            for tag in tags:
                if group[2] not in ("", tag):
                    continue
                var = solver.IntVar(0, most, f"hired_leads_{group[0]}_{group[1]}_{group[2] or 'any'}_{tag}")
                self.hired_leads[(group, tag)] = var
                supply[group].append(var)
                by_slot_tag[(group[0], group[1], tag)].append(var)
        for (_, _, tag), leads in by_slot_tag.items():
            solver.Add(total(leads) <= self.hired[tag])
        for tag, hired in self.hired.items():
            week = [var for (_, t), var in self.hired_leads.items() if t == tag]
            solver.Add(total(week) <= self.hire_sessions * hired)

    # ------------------------------------------------------------ whole pupils

    def whole_counts(self, values: list[float]) -> list[float]:
        """`values` (a point of this model by variable index, whole `seats` and `covered`) with `seated` and
        `liked` made whole: per class and period, the most points the seats allow, by a min-cost flow. A point
        whose counts are whole already comes back as it is."""
        counts = [*self.seated.values(), *self.liked.values()]
        if all(values[v.index()] == round(values[v.index()]) for v in counts):
            return values
        if all(abs(values[v.index()] - round(values[v.index()])) < 1e-6 for v in counts):
            whole = list(values)
            for var in counts:
                whole[var.index()] = round(values[var.index()])
            return whole
        return self.best_seating(values)

    def best_seating(self, values: list[float]) -> list[float]:
        """`values` with `seated` and `liked` at the most points that its seats and covered pupils allow."""
        best = list(values)
        for k, day_class in enumerate(self.classes):
            for period, sessions in day_class.eligible.items():
                self._whole_period(k, day_class, period, sessions, best)
        return best

    def _whole_period(self, k: int, day_class: DayClass, period: str, sessions: list[Session],
                      values: list[float]) -> None:
        """One class and period: spare seats -> group (covered pupils first) -> ranked activity or any seat."""
        seats_of: dict[str, int] = defaultdict(int)
        for session in sessions:
            seats_of[session.activity] += round(values[self.seats[(k, session.id)].index()])
        filled = sum(seats_of.values())
        groups = list(day_class.groups.values())
        covered = [sum(round(values[self.covered[(k, u, level)].index()]) for level in group.pupils_by_priority)
                   for u, group in enumerate(groups)]
        flow = min_cost_flow.SimpleMinCostFlow()
        spare, sink, anywhere = 0, 1, 2
        activity_node = {activity: 3 + i for i, activity in enumerate(sorted(seats_of))}
        first_group = 3 + len(activity_node)
        flow.set_node_supply(spare, filled - sum(covered))
        flow.set_node_supply(sink, -filled)
        for activity, node in activity_node.items():
            flow.add_arc_with_capacity_and_unit_cost(node, sink, seats_of[activity], 0)
        flow.add_arc_with_capacity_and_unit_cost(anywhere, sink, filled, 0)
        into: dict[int, int] = {}
        liked_arcs: dict[int, Var] = {}
        for u, group in enumerate(groups):
            node = first_group + u
            flow.set_node_supply(node, covered[u])
            into[u] = flow.add_arc_with_capacity_and_unit_cost(spare, node, group.size - covered[u], 0)
            flow.add_arc_with_capacity_and_unit_cost(node, anywhere, group.size, 0)
            for activity, score in group.scores:
                var = self.liked.get((k, u, period, activity))
                if var is not None:
                    arc = flow.add_arc_with_capacity_and_unit_cost(node, activity_node[activity], group.size, -score)
                    liked_arcs[arc] = var
        if flow.solve() != flow.OPTIMAL:
            raise RuntimeError(f"no whole seating of class {day_class.name} in period {period}: the point breaks "
                               "the model")
        for u in range(len(groups)):
            values[self.seated[(k, u, period)].index()] = covered[u] + flow.flow(into[u])
        for arc, var in liked_arcs.items():
            values[var.index()] = flow.flow(arc)

    def enrolment_range(self, session_id: str, values: Sequence[float]) -> tuple[int, int]:
        """How many pupils `session_id` may seat with its `teachers` and `runs` at `values`, read off its rows
        (capacity, minimum, ratio, last teacher): each is `±enrolment + staffing terms` within bounds."""
        lowest, highest = 0.0, math.inf
        probe = self.enrolment[session_id][0]
        staffing = [var for var in (self.teachers.get(session_id), self.runs.get(session_id)) if var is not None]
        for row in self.enrolment_rows[session_id]:
            sign = row.GetCoefficient(probe)
            rest = sum(row.GetCoefficient(var) * values[var.index()] for var in staffing)
            low, up = row.lb() - rest, row.ub() - rest
            if sign < 0:
                low, up = -up, -low
            lowest, highest = max(lowest, low), min(highest, up)
        return math.ceil(lowest - 1e-6), math.floor(highest + 1e-6)

    def seating_within_staffing(self, values: list[float]) -> list[float]:
        """`values` (a whole point of this model) with its pupils seated again for the most preference points
        that its staffing and its covered pupils allow: per slot, one min-cost flow over every class sitting
        there, so seats move between sessions and classes within each session's range (`enrolment_range`).
        Staffing, teachers' leads and covered pupils stay, so every earlier level keeps its value; classes with
        pinned or previous sessions keep their seats (seated as `best_seating` does). Never fewer points than
        `values`."""
        best = list(values)
        by_slot: dict[Slot, list[int]] = defaultdict(list)
        for k, day_class in enumerate(self.classes):
            for period in day_class.eligible:
                by_slot[(day_class.day, period)].append(k)
        for (_, period), classes in by_slot.items():
            self._seat_slot(period, classes, best)
        return best

    def _seat_slot(self, period: str, classes: list[int], values: list[float]) -> None:
        """One slot of `seating_within_staffing`: source -> preference group (at least its covered pupils) ->
        its class's ranked activity (scored) or any seat -> session (within its range) -> sink -> source."""
        kept: dict[str, int] = defaultdict(int)
        free = []
        for k in classes:
            day_class = self.classes[k]
            if day_class.fixed or day_class.previous:  # its seats stay; its pupils take the best of them
                for session in day_class.eligible[period]:
                    kept[session.id] += round(values[self.seats[(k, session.id)].index()])
                self._whole_period(k, day_class, period, day_class.eligible[period], values)
            else:
                free.append(k)
        if not free:
            return
        flow = min_cost_flow.SimpleMinCostFlow()
        supply: dict[int, int] = defaultdict(int)
        nodes = iter(range(2, 1 << 30))
        source, sink = 0, 1

        def arc(tail: int, head: int, lower: int, upper: int) -> int:
            """An arc carrying at least `lower`: that much is sent up front, the rest is the arc's to carry."""
            supply[tail] -= lower
            supply[head] += lower
            return int(flow.add_arc_with_capacity_and_unit_cost(tail, head, upper - lower, 0))

        session_node: dict[str, int] = {}
        for k in free:
            for session in self.classes[k].eligible[period]:
                if session.id not in session_node:
                    node = session_node[session.id] = next(nodes)
                    lowest, highest = self.enrolment_range(session.id, values)
                    taken = kept[session.id]
                    arc(node, sink, max(0, lowest - taken), max(0, highest - taken))
        seat_arcs: dict[Var, list[int]] = defaultdict(list)
        group_arcs: dict[int, tuple[Var, int]] = {}
        liked_arcs: dict[int, Var] = {}
        most = 0
        for k in free:
            day_class = self.classes[k]
            anywhere = next(nodes)
            activity_node: dict[str, int] = {}
            for session in day_class.eligible[period]:
                seats = self.seats[(k, session.id)]
                into = session_node[session.id]
                seat_arcs[seats].append(flow.add_arc_with_capacity_and_unit_cost(anywhere, into, int(seats.ub()), 0))
                if session.activity not in activity_node:
                    activity_node[session.activity] = next(nodes)
                seat_arcs[seats].append(flow.add_arc_with_capacity_and_unit_cost(
                    activity_node[session.activity], into, int(seats.ub()), 0))
            for u, group in enumerate(day_class.groups.values()):
                node = next(nodes)
                covered = sum(round(values[self.covered[(k, u, level)].index()]) for level in group.pupils_by_priority)
                group_arcs[arc(source, node, covered, group.size)] = (self.seated[(k, u, period)], covered)
                most += group.size
                flow.add_arc_with_capacity_and_unit_cost(node, anywhere, group.size, 0)
                for activity, score in group.scores:
                    var = self.liked.get((k, u, period, activity))
                    if var is not None:
                        liked_arcs[flow.add_arc_with_capacity_and_unit_cost(node, activity_node[activity],
                                                                            group.size, -score)] = var
        flow.add_arc_with_capacity_and_unit_cost(sink, source, most, 0)
        for node, amount in supply.items():
            flow.set_node_supply(node, amount)
        if flow.solve() != flow.OPTIMAL:
            return  # a point of the model is a flow of this network, so this is not expected: keep the point
        for seats, arcs in seat_arcs.items():
            values[seats.index()] = sum(flow.flow(a) for a in arcs)
        for a, (var, covered) in group_arcs.items():
            values[var.index()] = covered + flow.flow(a)
        for a, var in liked_arcs.items():
            values[var.index()] = flow.flow(a)

    # ------------------------------------------------------------ objective levels

    def level(self, name: str) -> Expr:
        """The objective level called `name` (one of `LEVELS`) as a linear expression."""
        levels = {"coverage": self.coverage_level, "stability": self.stability_level,
                  "preference": self.preference_level, "max_load": self.max_load_level,
                  "staffing": self.staffing_level}
        return levels[name]()

    def coverage_level(self) -> Expr:
        """Level 1, coverage: requested pupil-days with a seat in every requested period, weighted by priority."""
        weights = self.instance.priority_weights
        return total([weights[level] * var for (_, _, level), var in self.covered.items()])

    def stability_level(self) -> Expr:
        """Level 2, stability: pairs of the previous allocation that are kept."""
        kept = []
        for k, day_class in enumerate(self.classes):
            kept += [self.seats[(k, s)] for s in day_class.previous if (k, s) in self.seats]
        return total(kept)

    def preference_level(self) -> Expr:
        """Level 3, preference: `rank_points[i]` for every pupil sitting in the activity they ranked i-th."""
        points = []
        for k, day_class in enumerate(self.classes):
            for u, group in enumerate(day_class.groups.values()):
                for activity, score in group.scores:
                    for period in day_class.periods:
                        liked = self.liked.get((k, u, period, activity))
                        if liked is not None:
                            points.append(score * liked)
        return total(points)

    def max_load_level(self) -> Expr:
        """Level 4, teacher load, first: the largest number of sessions any one teacher leads."""
        return self.max_load + 0

    def staffing_level(self) -> Expr:
        """Level 4, teacher load, then: the number of staffing pairs."""
        return total(list(self.teachers.values()))
