"""Concrete pupils and teachers from the counts a solved model holds.

The model decides how many pupils of each group sit where; here the school's seat policy and the draw decide
who they are (`scheduler.seat_policy`), and a max-flow over the model's teacher side decides which teacher
leads what.
"""

from __future__ import annotations

from collections import defaultdict

from ortools.graph.python import max_flow

from scheduler.deadline import Deadline
from scheduler.domain import Assignment, Staffing
from scheduler.lexicographic import LexicographicSolver
from scheduler.model import StaffingGroup, staffing_group
from scheduler.seat_policy import DEFAULT_SEAT_POLICY, Bucket, Choice, choose, draw


def assign_pupils(labels: LexicographicSolver, seats: LexicographicSolver, *, policy: str = DEFAULT_SEAT_POLICY,
                  seed: int = 0, deadline: Deadline | None = None) -> tuple[tuple[Assignment, ...], Choice]:
    """Turn counts into pupils: the label model says how many of each bucket are covered and how many sit in a
    liked activity, the seat policy (`scheduler.seat_policy`) which pupils are covered, the draw (`seed` unless
    the instance names its own) who of the others has a seat in some periods; the seat model says how many of
    each class sit in each session. Returns the pairs and the policy's choice."""
    label_model, seat_model = labels.built, seats.built
    instance = label_model.instance
    weights = instance.priority_weights
    buckets: list[Bucket] = []
    where: dict[tuple[int, int, int], int] = {}
    for k, day_class in enumerate(label_model.classes):
        for u, group in enumerate(day_class.groups.values()):
            levels = sorted(group.pupils_by_priority.items(), key=lambda item: -weights[item[0]])
            counts = {level: labels.value(label_model.covered[(k, u, level)]) for level, _ in levels}
            # Seats in every period beyond the covered count cover pupils too (the draw's first waiting ones,
            # highest weight first): they count as covered here, so the policy chooses them as well.
            spare = min(labels.value(label_model.seated[(k, u, period)]) for period in day_class.periods)
            spare -= sum(counts.values())
            for level, pupils in levels:
                extra = max(0, min(spare, len(pupils) - counts[level]))
                spare -= extra
                where[(k, u, level)] = len(buckets)
                buckets.append(Bucket(tuple(pupils), counts[level] + extra))
    family, rank = draw(instance, seed)
    choice = choose(policy, buckets, family, rank, deadline, labels.config.workers)
    pairs: list[Assignment] = []
    for k, day_class in enumerate(label_model.classes):
        labelled: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
        for u, group in enumerate(day_class.groups.values()):
            covered: list[str] = []
            waiting: list[str] = []
            for level, pupils in sorted(group.pupils_by_priority.items(), key=lambda item: -weights[item[0]]):
                chosen = choice.covered[where[(k, u, level)]]
                taken = set(chosen)
                covered += chosen
                waiting += [p for p in pupils if p not in taken]
            for period in day_class.periods:
                seated = covered + waiting[: labels.value(label_model.seated[(k, u, period)]) - len(covered)]
                cursor = 0
                for activity, _score in sorted(group.scores, key=lambda item: -item[1]):
                    liked = label_model.liked.get((k, u, period, activity))
                    n = labels.value(liked) if liked is not None else 0
                    labelled[period] += [(activity, pupil) for pupil in seated[cursor:cursor + n]]
                    cursor += n
                labelled[period] += [(None, pupil) for pupil in seated[cursor:]]
        for period, sessions in day_class.eligible.items():
            free = {s.id: seats.value(seat_model.seats[(k, s.id)]) for s in sessions}
            # Pupils who count a liked activity go to its sessions first; everyone else fills what is left.
            queue = sorted(labelled[period], key=lambda item: item[0] is None)
            for liked_activity, pupil in queue:
                choice_id = next((s.id for s in sessions if free[s.id] > 0 and s.activity == liked_activity), None)
                if choice_id is None:
                    choice_id = next(s.id for s in sessions if free[s.id] > 0)
                free[choice_id] -= 1
                pairs.append(Assignment(pupil, choice_id))
    return tuple(sorted(pairs, key=lambda a: (a.pupil, a.session))), choice


def assign_teachers(lexi: LexicographicSolver) -> tuple[Staffing, ...]:
    """Whole teachers from the flow: a max-flow with the levels' integral demands and load cap.

    The model's `leads` may be fractional at an optimal vertex-free point; the flow network with integral
    capacities has an integral maximum flow of the same value, which is what hands out real teachers.
    """
    built = lexi.built
    instance = built.instance
    need: dict[StaffingGroup, int] = defaultdict(int)
    for session_id, var in built.teachers.items():
        need[staffing_group(instance, instance.session_by_id[session_id])] += lexi.value(var)
    cap = lexi.value(built.max_load)
    flow = max_flow.SimpleMaxFlow()
    source, sink = 0, 1
    nodes: dict[object, int] = {}

    def node(key: object) -> int:
        if key not in nodes:
            nodes[key] = len(nodes) + 2
        return nodes[key]

    arcs: dict[int, tuple[str, StaffingGroup]] = {}
    for teacher in instance.teachers:
        groups = [g for (t, g) in built.leads if t == teacher.id and need.get(g, 0) > 0]
        if not groups:
            continue
        flow.add_arc_with_capacity(source, node(teacher.id), min(teacher.max_sessions, cap))
        for group in sorted(groups):
            slot = (teacher.id, group[0], group[1])
            if slot not in nodes:
                flow.add_arc_with_capacity(node(teacher.id), node(slot), 1)
            arc = flow.add_arc_with_capacity(node(slot), node(group), 1)
            arcs[arc] = (teacher.id, group)
    for group, count in sorted(need.items()):
        if count:
            flow.add_arc_with_capacity(node(group), sink, count)
    status = flow.solve(source, sink)
    if status != flow.OPTIMAL or flow.optimal_flow() != sum(need.values()):
        raise RuntimeError("the staffing flow could not be completed; the model and the flow disagree")
    teachers_by_group: dict[StaffingGroup, list[str]] = defaultdict(list)
    for arc, (teacher_id, group) in arcs.items():
        if flow.flow(arc) > 0:
            teachers_by_group[group].append(teacher_id)
    pairs: list[Staffing] = []
    for session_id, var in sorted(built.teachers.items()):
        group = staffing_group(instance, instance.session_by_id[session_id])
        for _ in range(lexi.value(var)):
            pairs.append(Staffing(teachers_by_group[group].pop(), session_id))
    return tuple(sorted(pairs, key=lambda s: (s.session, s.teacher)))
