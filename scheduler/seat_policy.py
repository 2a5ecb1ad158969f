"""Who among interchangeable pupils gets the seats: the school's seat policy (PROBLEM.md, "Among equals").

The model decides how many pupils of each bucket (day class, preference group, priority level) are covered; any
choice of which pupils leaves every objective level where it is. The draw alone would cover the first n of every
bucket; as the draw is the same every day, the same pupils would win every day and other families would get
nothing. The policy decides instead:

- `spread` (default): as few requesting families (a pupil without a family is a family of one) as possible left
  with no covered day at all. Exact, as a min-cost flow: family -> bucket (capacity 1) -> sink (the bucket's
  count); among the largest such flows the families earliest in the draw are chosen, each where the draw would
  have seated it anyway when it can. The other covered seats of each bucket go to siblings of the families placed
  there, then in the order of the draw.
- `whole_week`: as many pupils as possible covered on every day they asked for: a 0/1 model (CP-SAT) over the
  pupils whose buckets are short, ties to the earlier draw, within a time limit (`proven` says whether it ended);
  the other covered seats in the order of the draw.

Siblings share one draw (`scheduler.groups.lottery_key`), so they stand next to each other in every order used
here. `choose` is the one place that turns a bucket's count into pupils.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ortools.graph.python import min_cost_flow
from ortools.sat.python import cp_model

from scheduler.deadline import Deadline
from scheduler.domain import DEFAULT_SEAT_POLICY, SEAT_POLICIES, Assignment, Instance
from scheduler.fairness import family_key
from scheduler.groups import build_day_classes, lottery_order

__all__ = ["DEFAULT_SEAT_POLICY", "SEAT_POLICIES", "Bucket", "Choice", "choose", "draw", "reseat"]

SPREAD, WHOLE_WEEK = SEAT_POLICIES

WHOLE_WEEK_SHARE = 0.5
"""`whole_week`'s model may use this share of the time left before the solve's deadline ..."""
WHOLE_WEEK_FLOOR = 0.2
"""... and never less than this many seconds (a plan exists before it starts: the draw's own)."""


@dataclass(frozen=True)
class Bucket:
    """Interchangeable pupils (in the order of the draw) of whom `covered` are covered."""

    pupils: tuple[str, ...]
    covered: int


@dataclass(frozen=True)
class Choice:
    """Per bucket, the covered pupils in the order of the draw; `proven` when the policy's aim is met exactly."""

    covered: tuple[tuple[str, ...], ...]
    policy: str
    proven: bool
    seconds: float


def choose(policy: str, buckets: Sequence[Bucket], family: Mapping[str, str], rank: Mapping[str, int],
           deadline: Deadline | None = None, workers: int = 1) -> Choice:
    """Which pupils of each bucket are covered under `policy`.

    `family` maps every pupil to its family key (siblings share one; a pupil without a family has its own),
    `rank` every pupil to its place in the draw; `deadline` bounds `whole_week`'s search.
    """
    began = time.monotonic()
    if policy == SPREAD:
        covered, proven = _spread(buckets, family, rank), True
    elif policy == WHOLE_WEEK:
        covered, proven = _whole_week(buckets, rank, deadline, workers)
    else:
        raise ValueError(f"unknown seat policy {policy!r}; choose one of {', '.join(SEAT_POLICIES)}")
    return Choice(tuple(covered), policy, proven, round(time.monotonic() - began, 3))


def draw(instance: Instance, seed: int) -> tuple[dict[str, str], dict[str, int]]:
    """Every pupil's family key and place in the draw (`seed` unless the instance names its own): what `choose`
    needs besides the buckets."""
    family = {p.id: family_key(p) for p in instance.pupils}
    rank = {r.pupil: i for i, r in enumerate(lottery_order(instance, seed))}
    return family, rank


def reseat(instance: Instance, assignments: Sequence[Assignment], policy: str, seed: int = 0,
           deadline: Deadline | None = None, workers: int = 1) -> tuple[tuple[Assignment, ...], Choice]:
    """A plan's pairs with its seats handed out again among equals under `policy`: each pupil's seats of a day
    go as a whole to another pupil of the same bucket, so every objective level keeps its value. Lets the two
    policies be compared on one solve (`bench.solver`)."""
    sessions = instance.session_by_id
    seats_of: dict[tuple[str, int], list[str]] = defaultdict(list)
    for pair in assignments:
        seats_of[(pair.pupil, sessions[pair.session].day)].append(pair.session)
    buckets: list[Bucket] = []
    # Per bucket, the seats of its covered pupils and (longest first) those of the others.
    held_seats: list[tuple[list[tuple[str, ...]], list[tuple[str, ...]]]] = []
    for day_class in build_day_classes(instance, by_preference=True, seed=seed):
        for group in day_class.groups.values():
            for pupils in group.pupils_by_priority.values():
                held = [tuple(seats_of.pop((p, day_class.day), ())) for p in pupils]
                whole = [seats for seats in held if len(seats) == len(day_class.periods)]
                part = sorted((seats for seats in held if len(seats) < len(day_class.periods)), key=len, reverse=True)
                buckets.append(Bucket(tuple(pupils), len(whole)))
                held_seats.append((whole, part))
    if seats_of:
        raise ValueError("the plan seats pupils on days they did not ask for; it cannot be reseated")
    family, rank = draw(instance, seed)
    choice = choose(policy, buckets, family, rank, deadline, workers)
    pairs: list[Assignment] = []
    for bucket, covered, (whole, part) in zip(buckets, choice.covered, held_seats, strict=True):
        taken = set(covered)
        others = [p for p in bucket.pupils if p not in taken]
        for pupil, seats in [*zip(covered, whole, strict=True), *zip(others, part, strict=True)]:
            pairs += [Assignment(pupil, session) for session in seats]
    return tuple(sorted(pairs, key=lambda a: (a.pupil, a.session))), choice


def _fill(bucket: Bucket, chosen: Sequence[str], first: Sequence[str] = ()) -> tuple[str, ...]:
    """`chosen`, then pupils of `first`, then the rest in the order of the draw, up to the bucket's count."""
    taken = list(dict.fromkeys(chosen))
    given = set(taken)
    ahead = set(first)
    for pupil in [p for p in bucket.pupils if p in ahead] + list(bucket.pupils):
        if len(taken) >= bucket.covered:
            break
        if pupil not in given:
            taken.append(pupil)
            given.add(pupil)
    order = {pupil: i for i, pupil in enumerate(bucket.pupils)}
    return tuple(sorted(taken, key=order.__getitem__))


def _spread(buckets: Sequence[Bucket], family: Mapping[str, str], rank: Mapping[str, int]) -> list[tuple[str, ...]]:
    # A family with a pupil in a bucket where everyone is covered has a day already.
    served = {family[p] for b in buckets if b.covered >= len(b.pupils) for p in b.pupils}
    short = [i for i, b in enumerate(buckets) if 0 < b.covered < len(b.pupils)]
    # Per family and short bucket, the family's pupil first in the draw there, and whether the draw seats it.
    options: dict[str, dict[int, tuple[str, bool]]] = defaultdict(dict)
    for i in short:
        bucket = buckets[i]
        for place, pupil in enumerate(bucket.pupils):
            key = family[pupil]
            if key not in served and i not in options[key]:
                options[key][i] = (pupil, place < bucket.covered)
    families = sorted(options, key=lambda key: min(rank[p] for p, _ in options[key].values()))
    placed: dict[int, list[str]] = defaultdict(list)
    if families:
        flow = min_cost_flow.SimpleMinCostFlow()
        source, sink = 0, 1
        bucket_node = {i: 2 + n for n, i in enumerate(short)}
        family_node = {key: 2 + len(short) + n for n, key in enumerate(families)}
        # Earlier families in the draw first (a matroid: the smallest sum of places is the greedy choice), and
        # among those, seats the draw would have given anyway: weight their place above every second cost.
        weight = len(families) + 1
        arcs: dict[int, tuple[int, str]] = {}
        for place, key in enumerate(families):
            flow.add_arc_with_capacity_and_unit_cost(source, family_node[key], 1, place * weight)
            for i, (pupil, wins) in options[key].items():
                arc = flow.add_arc_with_capacity_and_unit_cost(family_node[key], bucket_node[i], 1, 0 if wins else 1)
                arcs[arc] = (i, pupil)
        for i in short:
            flow.add_arc_with_capacity_and_unit_cost(bucket_node[i], sink, buckets[i].covered, 0)
        flow.set_node_supply(source, len(families))
        flow.set_node_supply(sink, -len(families))
        if flow.solve_max_flow_with_min_cost() != flow.OPTIMAL:
            raise RuntimeError("the seat policy's flow could not be solved")
        for arc, (i, pupil) in arcs.items():
            if flow.flow(arc) > 0:
                placed[i].append(pupil)
    chosen: list[tuple[str, ...]] = []
    for i, bucket in enumerate(buckets):
        mine = {family[p] for p in placed.get(i, [])}
        siblings = [p for p in bucket.pupils if family[p] in mine]
        chosen.append(_fill(bucket, placed.get(i, []), siblings))
    return chosen


def _whole_week(buckets: Sequence[Bucket], rank: Mapping[str, int], deadline: Deadline | None,
                workers: int) -> tuple[list[tuple[str, ...]], bool]:
    where: dict[str, list[int]] = defaultdict(list)
    for i, bucket in enumerate(buckets):
        for pupil in bucket.pupils:
            where[pupil].append(i)
    # Pupils with a day where nobody of their bucket is covered cannot be served every day; pupils all of whose
    # buckets are covered whole are served anyway. The rest compete for the short buckets' seats.
    candidates = sorted((p for p, mine in where.items()
                         if all(buckets[i].covered > 0 for i in mine)
                         and any(buckets[i].covered < len(buckets[i].pupils) for i in mine)), key=rank.__getitem__)
    if not candidates:
        return [_fill(b, ()) for b in buckets], True
    model = cp_model.CpModel()
    x = {p: model.new_bool_var(f"whole_{p}") for p in candidates}
    members: dict[int, list[str]] = defaultdict(list)
    for p in candidates:
        for i in where[p]:
            if buckets[i].covered < len(buckets[i].pupils):
                members[i].append(p)
    for i, pupils in members.items():
        if len(pupils) > buckets[i].covered:
            model.add(sum(x[p] for p in pupils) <= buckets[i].covered)
    # One more pupil served outweighs any order among them; among equal counts, the earlier draws win.
    size = len(candidates)
    weight = size * size
    model.maximize(sum((weight - place) * x[p] for place, p in enumerate(candidates)))
    # The draw's own greedy choice is a plan from the start, and the answer when the search finds none in time.
    left = {i: b.covered for i, b in enumerate(buckets)}
    greedy = []
    for p in candidates:
        short = [i for i in where[p] if i in members]
        if all(left[i] > 0 for i in short):
            greedy.append(p)
            for i in short:
                left[i] -= 1
    hinted = set(greedy)
    for p in candidates:
        model.add_hint(x[p], p in hinted)
    solver = cp_model.CpSolver()
    seconds = WHOLE_WEEK_FLOOR if deadline is None else max(WHOLE_WEEK_FLOOR, WHOLE_WEEK_SHARE * deadline.left())
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = max(1, workers)
    status = solver.solve(model)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        whole = [p for p in candidates if solver.value(x[p])]
    else:
        whole = greedy
    chosen: dict[int, list[str]] = defaultdict(list)
    for p in whole:
        for i in where[p]:
            chosen[i].append(p)
    return [_fill(b, chosen.get(i, ())) for i, b in enumerate(buckets)], status == cp_model.OPTIMAL
