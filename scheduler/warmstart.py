"""A concrete plan (pupils and teachers) as a point of a model over counts: a start the backend can build on.

Level 1 falls back on today's lottery (`scheduler.baselines`) when neither the days nor the week found a plan in
time: a valid plan that seats fewer pupils is better than none, and the week's model starts from it.
"""

from __future__ import annotations

from collections import defaultdict

from scheduler.domain import Solution
from scheduler.model import AllocationModel, staffing_group


def plan_values(built: AllocationModel, plan: Solution) -> list[float]:
    """Every variable of `built` (a model without hired teachers) at the value `plan` gives it, by index."""
    instance = built.instance
    where: dict[tuple[str, int], tuple[int, int]] = {}
    for k, day_class in enumerate(built.classes):
        for u, preference_group in enumerate(day_class.groups.values()):
            for pupils in preference_group.pupils_by_priority.values():
                for pupil in pupils:
                    where[(pupil, day_class.day)] = (k, u)
    values = [0.0] * built.solver.NumVariables()
    seats: dict[tuple[int, str], int] = defaultdict(int)
    seated: dict[tuple[int, int, str], int] = defaultdict(int)
    periods_of: dict[tuple[str, int], set[str]] = defaultdict(set)
    for pair in plan.assignments:
        session = instance.session_by_id[pair.session]
        k, u = where[(pair.pupil, session.day)]
        seats[(k, session.id)] += 1
        seated[(k, u, session.period)] += 1
        periods_of[(pair.pupil, session.day)].add(session.period)
    covered: dict[tuple[int, int, int], int] = defaultdict(int)
    for (pupil, day), periods in periods_of.items():
        k, u = where[(pupil, day)]
        if periods >= set(built.classes[k].periods):
            covered[(k, u, instance.pupil_by_id[pupil].priority)] += 1
    for key, var in built.seats.items():
        values[var.index()] = seats.get(key, 0)
    for seated_key, var in built.seated.items():
        values[var.index()] = seated.get(seated_key, 0)
    for covered_key, var in built.covered.items():
        values[var.index()] = covered.get(covered_key, 0)
    teachers: dict[str, int] = defaultdict(int)
    leads: dict[tuple[str, tuple[int, str, str]], int] = defaultdict(int)
    for staffing in plan.staffing:
        teachers[staffing.session] += 1
        leads[(staffing.teacher, staffing_group(instance, instance.session_by_id[staffing.session]))] += 1
    for session_id, var in built.teachers.items():
        values[var.index()] = teachers.get(session_id, 0)
    for session_id, var in built.runs.items():
        values[var.index()] = 1 if any(seats.get((k, session_id)) for k in range(len(built.classes))) else 0
    load: dict[str, int] = defaultdict(int)
    for (teacher_id, group), var in built.leads.items():
        values[var.index()] = leads.get((teacher_id, group), 0)
        load[teacher_id] += leads.get((teacher_id, group), 0)
    values[built.max_load.index()] = max(load.values(), default=0)
    return values
