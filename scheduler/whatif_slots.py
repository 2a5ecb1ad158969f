"""What-if advice slot by slot: bounds on hiring and seats, and a plan of the week when the slots' plans fit.

Advice asks for every requested pupil-day to be covered, so every pupil sits in every period they requested: at
full coverage the week falls apart into one small problem per weekday x period (who sits where at that slot,
which sessions run, who leads them). Only the teachers' weekly caps (`max_sessions`, and `hire_sessions` for a
hired teacher) join the slots. Hence:

1. Every plan of the week, looked at in one slot, is a plan of that slot with no more hired teachers (and no
   more of them qualified) than the week's. So the most hires any one slot needs bounds the week's hires, and the
   seats each slot needs at least, summed, bound the week's seats.
2. When the slots' plans staff together within every weekly cap (a max-flow, teacher -> free slot -> staffing
   group), they form one plan of the week that meets the bound: it is the fewest seats, proven.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from ortools.graph.python import max_flow

from scheduler.deadline import Deadline, OutOfTime
from scheduler.domain import Instance, Slot, Status
from scheduler.groups import DayClass, PreferenceGroup
from scheduler.lexicographic import LexicographicSolver, SolverConfig, hold
from scheduler.model import AllocationModel, StaffingGroup, total


@dataclass
class SlotPlan:
    """One slot's classes (each merging the week's classes that sit there alike) and the plan found for it."""

    slot: Slot
    classes: list[DayClass]
    members: list[list[int]]
    """The week's class indices each of `classes` merges."""
    model: AllocationModel
    values: list[float]
    status: str
    value: int
    bound: int

    def value_of(self, var: object) -> int:
        return int(round(self.values[var.index()]))  # type: ignore[attr-defined]


def slot_classes(week: AllocationModel, slot: Slot) -> tuple[list[DayClass], list[list[int]]]:
    """The week's classes needing `slot`, merged where grade, pin and previous session at the slot agree."""
    day, period = slot
    merged: dict[tuple[object, ...], tuple[DayClass, list[int]]] = {}
    for k, day_class in enumerate(week.classes):
        if day_class.day != day or period not in day_class.periods:
            continue
        eligible = day_class.eligible[period]
        here = {s.id for s in eligible}
        fixed = tuple(s for s in day_class.fixed if s in here)
        previous = tuple(s for s in day_class.previous if s in here)
        key = (day_class.grade, fixed, previous)
        if key not in merged:
            merged[key] = (DayClass(day, day_class.grade, (period,), fixed, previous, {period: eligible},
                                    {(): PreferenceGroup(())}), [])
        target, members = merged[key]
        group = target.groups[()]
        for source in day_class.groups.values():
            for level, pupils in source.pupils_by_priority.items():
                group.pupils_by_priority.setdefault(level, []).extend(pupils)
        members.append(k)
    return [c for c, _ in merged.values()], [m for _, m in merged.values()]


def solve_slot(week: AllocationModel, slot: Slot, objective: str, seconds: float, config: SolverConfig, *,
               most_hired: int | None = None, most_qualified: int | None = None,
               instance: Instance | None = None, hired_by_tag: dict[str, int] | None = None) -> SlotPlan | None:
    """One slot at full coverage, minimising `objective` ("hired", "hired_qualified" or "seats") with at most
    `most_hired` hired teachers (`most_qualified` of them qualified, `hired_by_tag` of each tag), the school's
    teachers as in `instance` (the week's by default); None when it found nothing in time."""
    began = time.monotonic()
    built = build_slot(week, slot, seconds, config, most_hired=most_hired, most_qualified=most_qualified,
                       instance=instance, hired_by_tag=hired_by_tag)
    if built is None:
        return None
    classes, members, model = built
    lexi = LexicographicSolver(model, config, began, None)
    expr = level_expr(model, objective)
    result = lexi.optimise(objective, expr, maximise=False, seconds=seconds - (time.monotonic() - began))
    if lexi.values is None:
        return None
    return SlotPlan(slot, classes, members, model, lexi.values, result.status, result.value, result.bound)


def build_slot(week: AllocationModel, slot: Slot, seconds: float, config: SolverConfig, *,
               most_hired: int | None = None, most_qualified: int | None = None, instance: Instance | None = None,
               hired_by_tag: dict[str, int] | None = None
               ) -> tuple[list[DayClass], list[list[int]], AllocationModel] | None:
    """The model of one slot at full coverage (see `solve_slot`), not yet solved."""
    classes, members = slot_classes(week, slot)
    if not classes:
        return None
    try:
        model = AllocationModel(instance or week.instance, classes, backend=config.backend,
                                hire_sessions=week.hire_sessions, deadline=Deadline.after(seconds))
    except OutOfTime:
        return None
    demand = sum(week.instance.priority_weights[level] * len(pupils)
                 for c in classes for g in c.groups.values() for level, pupils in g.pupils_by_priority.items())
    hold(model, {"coverage": demand})
    if most_hired is not None:
        model.solver.Add(total(list(model.hired.values())) <= most_hired)
    if most_qualified is not None:
        model.solver.Add(total([v for tag, v in model.hired.items() if tag]) <= most_qualified)
    for tag, var in model.hired.items():
        if hired_by_tag is not None:
            var.SetUb(hired_by_tag.get(tag, 0))
    return classes, members, model


def level_expr(built: AllocationModel, name: str) -> object:
    """The advice's own levels over a model with new rooms and hired teachers."""
    if name == "hired":
        return total(list(built.hired.values()))
    if name == "hired_qualified":
        return total([var for tag, var in built.hired.items() if tag])
    if name == "seats":
        return total([var for s, seats in built.enrolment.items() if is_new_room(s) for var in seats])
    if name == "hired_leads":
        return total(list(built.hired_leads.values()))
    return built.level(name)


NEW_ROOM_PREFIX = "__extra__"


def is_new_room(session_id: str) -> bool:
    return session_id.startswith(NEW_ROOM_PREFIX)


def slot_bound(week: AllocationModel, objective: str, deadline: Deadline, config: SolverConfig, *,
               most_hired: int | None = None, most_qualified: int | None = None
               ) -> tuple[int, str, list[SlotPlan]]:
    """(bound, status, plans): the max ("hired", "hired_qualified") or sum ("seats") of the slots' proven
    bounds. Status is OPTIMAL when every slot proved its optimum, UNKNOWN when a slot found nothing."""
    slots = _slots(week)
    plans: list[SlotPlan] = []
    for i, slot in enumerate(slots):
        plan = solve_slot(week, slot, objective, deadline.left() / (len(slots) - i), config,
                          most_hired=most_hired, most_qualified=most_qualified)
        if plan is None:
            return 0, Status.UNKNOWN, plans
        plans.append(plan)
    bounds = [plan.bound for plan in plans]
    bound = sum(bounds) if objective == "seats" else max(bounds, default=0)
    proven = all(plan.status == Status.OPTIMAL for plan in plans)
    return bound, Status.OPTIMAL if proven else Status.FEASIBLE, plans


def join(week: AllocationModel, plans: list[SlotPlan], hired: dict[str, int]) -> list[float] | None:
    """The slots' plans as one point of the week's model, staffed within every weekly cap with `hired` teachers
    by tag; None when the teachers do not stretch that far."""
    instance = week.instance
    values = [0.0] * week.solver.NumVariables()
    need: dict[StaffingGroup, int] = defaultdict(int)
    for plan in plans:
        _seats_into_week(week, plan, values)
        for session_id, var in plan.model.teachers.items():
            values[week.teachers[session_id].index()] = count = plan.value_of(var)
            if count:
                need[_group_of(instance, session_id)] += count
        for session_id, var in plan.model.runs.items():
            values[week.runs[session_id].index()] = plan.value_of(var)
    leads = _weekly_flow(week, need, hired)
    if leads is None:
        return None
    load: dict[str, int] = defaultdict(int)
    for key, count in leads.items():
        if key[0] == "teacher":
            values[week.leads[(key[1], key[2])].index()] = count
            load[key[1]] += count
        else:
            values[week.hired_leads[(key[2], key[1])].index()] = count
    for tag, var in week.hired.items():
        values[var.index()] = hired.get(tag, 0)
    values[week.max_load.index()] = max(load.values(), default=0)
    return values


def fewer_teachers(plan: SlotPlan, seconds: float, config: SolverConfig) -> SlotPlan:
    """Among the slot's plans with its fewest seats (held), one that needs the fewest teachers: it leaves more of
    their weekly caps to the other slots."""
    lexi = LexicographicSolver(plan.model, config, time.monotonic(), None)
    lexi.hint(plan.values)
    lexi.optimise("staffing", plan.model.staffing_level(), maximise=False, seconds=seconds)
    if lexi.values is None:
        return plan
    return SlotPlan(plan.slot, plan.classes, plan.members, plan.model, lexi.values, plan.status, plan.value,
                    plan.bound)


def from_week(week: AllocationModel, values: list[float], deadline: Deadline, config: SolverConfig,
              hired: dict[str, int]) -> list[SlotPlan] | None:
    """Each slot's fewest seats with the teachers a plan of the week (`values`) has at that slot: the plans
    join into a plan of the week with no more seats than it; None when a slot found nothing in time."""
    at_slot: dict[Slot, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (teacher_id, group), var in week.leads.items():
        if values[var.index()] > 1e-6:
            at_slot[(group[0], group[1])][teacher_id] = 1
    hired_at_slot: dict[Slot, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (group, tag), var in week.hired_leads.items():
        hired_at_slot[(group[0], group[1])][tag] += round(values[var.index()])
    slots = _slots(week)
    plans = []
    for i, slot in enumerate(slots):
        plan = _seats_within(week, slot, at_slot[slot], hired, hired_at_slot[slot],
                             deadline.left() / (len(slots) - i), config)
        if plan is None:
            return None
        plans.append(plan)
    return plans


def _slots(week: AllocationModel) -> list[Slot]:
    return sorted({(c.day, q) for c in week.classes for q in c.periods})


def _seats_within(week: AllocationModel, slot: Slot, caps: dict[str, int], hired: dict[str, int],
                  hired_left: dict[str, int], seconds: float, config: SolverConfig) -> SlotPlan | None:
    """The slot's fewest seats with each teacher leading at most `caps` sessions there (0 or 1 matter)."""
    instance = week.instance
    capped = instance.with_weekly_caps({t.id: max(0, caps.get(t.id, 0)) for t in instance.teachers})
    by_tag = {tag: max(0, min(count, hired_left.get(tag, 0))) for tag, count in hired.items()}
    return solve_slot(week, slot, "seats", seconds, config, instance=capped, hired_by_tag=by_tag)


def _group_of(instance: Instance, session_id: str) -> StaffingGroup:
    session = instance.session_by_id[session_id]
    tag = instance.activity_by_id[session.activity].qualification
    return (session.day, session.period, tag or "")


def _seats_into_week(week: AllocationModel, plan: SlotPlan, values: list[float]) -> None:
    """Each merged class's seats handed out to the week's classes it merges: all of them sit at the slot."""
    period = plan.slot[1]
    for j, merged in enumerate(plan.classes):
        free = [(s.id, plan.value_of(plan.model.seats[(j, s.id)])) for s in merged.eligible[period]]
        for k in plan.members[j]:
            day_class = week.classes[k]
            want = day_class.size
            for i, (session_id, seats) in enumerate(free):
                n = min(want, seats)
                if n:
                    values[week.seats[(k, session_id)].index()] += n
                    free[i] = (session_id, seats - n)
                    want -= n
            for u, group in enumerate(day_class.groups.values()):
                values[week.seated[(k, u, period)].index()] = group.size
                for level, pupils in group.pupils_by_priority.items():
                    values[week.covered[(k, u, level)].index()] = len(pupils)


def _weekly_flow(week: AllocationModel, need: dict[StaffingGroup, int],
                 hired: dict[str, int]) -> dict[tuple[str, str, StaffingGroup], int] | None:
    """Whole teachers (the school's and `hired`) for every staffing group within their weekly caps."""
    instance = week.instance
    flow = max_flow.SimpleMaxFlow()
    nodes: dict[object, int] = {}

    def node(key: object) -> int:
        return nodes.setdefault(key, len(nodes) + 2)

    arcs: dict[int, tuple[str, str, StaffingGroup]] = {}
    caps = {t.id: t.max_sessions for t in instance.teachers}
    for teacher_id, group in week.leads:
        if need.get(group, 0) <= 0:
            continue
        if ("t", teacher_id) not in nodes:
            flow.add_arc_with_capacity(0, node(("t", teacher_id)), caps[teacher_id])
        slot = ("ts", teacher_id, group[0], group[1])
        if slot not in nodes:
            flow.add_arc_with_capacity(node(("t", teacher_id)), node(slot), 1)
        arcs[flow.add_arc_with_capacity(node(slot), node(("g", group)), 1)] = ("teacher", teacher_id, group)
    for group, tag in week.hired_leads:
        count = hired.get(tag, 0)
        if need.get(group, 0) <= 0 or count <= 0:
            continue
        if ("h", tag) not in nodes:
            flow.add_arc_with_capacity(0, node(("h", tag)), count * week.hire_sessions)
        slot = ("hs", tag, group[0], group[1])
        if slot not in nodes:
            flow.add_arc_with_capacity(node(("h", tag)), node(slot), count)
        arcs[flow.add_arc_with_capacity(node(slot), node(("g", group)), count)] = ("hired", tag, group)
    for group, count in need.items():
        flow.add_arc_with_capacity(node(("g", group)), 1, count)
    if flow.solve(0, 1) != flow.OPTIMAL or flow.optimal_flow() != sum(need.values()):
        return None
    return {key: flow.flow(arc) for arc, key in arcs.items() if flow.flow(arc)}
