"""What an allocation achieved, computed from the instance and the solution alone (no database).

The result is plain JSON (stored in `AllocationRun.metrics`) so a run page, a comparison and an export all
read the same numbers. Keys of nested maps are strings because JSON has no other kind.

`metrics["fairness"]` is `scheduler.fairness.fairness(...).to_dict()`, churn counted against the instance's
previous plan (the one published when the run was counted). It names pupils and families (envy cases, the
worst served, split families), so only the school's own pages read it whole; `fairness_counts` is the part without
names, for the bureau, and `without_names` is what a run keeps of it once its term's personal data is purged.

Priority groups. The solver sees levels, not groups, so a run records beside its metrics the group each pupil's
weight came from when the run was made (`metrics["priority_groups"]`, from `webapp.services.RunInput`):

    {"on": "2026-09-01", "pupils": {"P001": 3, "P007": 1}}    # pupil number -> group id; the others: no group

and `metrics["fairness"]["served_by_group"]` splits `served` by it: `{"3": {"fully": 2, "partly": 0,
"not_at_all": 1}, ..., "none": {...}}` (group ids as keys; names are looked up when shown). A recount of the metrics
(an amendment of the plan) reuses the record, so tags added, expired or removed after the run never move its
figures; a pupil who asked after the run counts under no group there. The record names pupils: `without_names`
drops it and keeps the split. Metrics counted before groups were recorded have neither.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from statistics import mean
from typing import Any

from scheduler import validation
from scheduler.domain import Instance, Solution
from scheduler.fairness import fairness, served_by

NO_GROUP = "none"
"""The key of pupils who counted under no priority group, in `served_by_group`."""
RANKS = ("1", "2", "3", "unlisted")
"""Choice ranks of the histogram: first, second, third choice, or an activity the pupil did not list."""


def _rank_label(preferences: tuple[str, ...], activity: str) -> str:
    try:
        index = preferences.index(activity)
    except ValueError:
        return "unlisted"
    return str(index + 1) if index < 3 else "unlisted"


def _activities_by_slot_and_grade(instance: Instance) -> dict[tuple[int, str, int], set[str]]:
    offered: dict[tuple[int, str, int], set[str]] = defaultdict(set)
    for session in instance.sessions:
        for grade in range(session.grades[0], session.grades[1] + 1):
            offered[(session.day, session.period, grade)].add(session.activity)
    return offered


def compute_metrics(instance: Instance, solution: Solution,
                    groups: dict[str, Any] | None = None) -> dict[str, Any]:
    """Coverage, seats by day and period, choice ranks, teacher loads, solver figures and unserved reasons; with
    the run's record of priority `groups` (see the module docstring), the record and `served` split by group."""
    assignments = solution.assignments
    pupils = instance.pupil_by_id
    sessions = instance.session_by_id
    requests = [r for r in instance.requests if r.periods and r.pupil in pupils]

    demand = instance.demand()
    covered_days = validation.covered_pupil_days(instance, assignments)
    coverage = validation.weighted_days(instance, covered_days)
    requested_days = sum(len(r.days) for r in requests)
    requesting_pupils = {r.pupil for r in requests}
    served_pupils = {pupil for pupil, _ in covered_days}

    # Seats by weekday x period: pupils seated against pupils who asked for that slot.
    seated: Counter[tuple[int, str]] = Counter()
    for a in set(assignments):
        session = sessions.get(a.session)
        if session is not None:
            seated[session.slot] += 1
    asked: Counter[tuple[int, str]] = Counter()
    for r in requests:
        for day in r.days:
            for period in r.periods:
                asked[(day, period)] += 1
    by_slot = {
        str(day): {p.id: {"seated": seated[(day, p.id)], "requested": asked[(day, p.id)]} for p in instance.periods}
        for day in instance.weekdays
    }

    # Choice ranks, counted only where the pupil listed preferences and had a real choice of activity.
    offered = _activities_by_slot_and_grade(instance)
    request_of = instance.request_by_pupil
    ranks: Counter[str] = Counter({rank: 0 for rank in RANKS})
    for a in set(assignments):
        session, request, pupil = sessions.get(a.session), request_of.get(a.pupil), pupils.get(a.pupil)
        if session is None or request is None or pupil is None or not request.preferences:
            continue
        if len(offered[(session.day, session.period, pupil.grade)]) < 2:
            continue
        ranks[_rank_label(request.preferences, session.activity)] += 1

    loads = validation.teacher_loads(instance, solution.staffing)
    load_values = list(loads.values())
    distribution = Counter(load_values)

    objective = solution.objective
    bound = objective.coverage_bound
    gap = (bound - objective.coverage) / bound if bound > 0 else 0.0
    reasons = Counter(u.code or "unknown" for u in solution.unserved)

    return {
        "demand": demand,
        "coverage": coverage,
        "coverage_pct": _pct(coverage, demand),
        "requested_pupil_days": requested_days,
        "covered_pupil_days": len(covered_days),
        "pupil_days_pct": _pct(len(covered_days), requested_days),
        "pupils_requesting": len(requesting_pupils),
        "pupils_served": len(served_pupils & requesting_pupils),
        "by_slot": by_slot,
        "periods": [p.id for p in instance.periods],
        "weekdays": list(instance.weekdays),
        "choice_ranks": {rank: ranks[rank] for rank in RANKS},
        "teacher_load": {
            "max": max(load_values, default=0),
            "mean": round(mean(load_values), 2) if load_values else 0.0,
            "distribution": {str(load): distribution[load] for load in sorted(distribution)},
            "teachers": len(load_values),
        },
        "solver": {
            "status": solution.status,
            "coverage_bound": bound,
            "gap": round(gap, 4),
            "seconds": float(solution.stats.get("seconds", 0.0)),
            "stability": objective.stability,
            "preference": objective.preference,
        },
        "unserved_count": len(solution.unserved),
        "unserved_by_reason": dict(sorted(reasons.items())),
        "fairness": _fairness(instance, solution, groups),
        **({"priority_groups": groups} if groups is not None else {}),
    }


def _fairness(instance: Instance, solution: Solution, groups: dict[str, Any] | None) -> dict[str, Any]:
    previous = dataclasses.replace(solution, assignments=instance.previous) if instance.previous else None
    report = fairness(instance, solution, previous).to_dict()
    if groups is not None:
        report["served_by_group"] = served_by_group(instance, solution, groups["pupils"])
    return report


def served_by_group(instance: Instance, solution: Solution, group_of: dict[str, int]) -> dict[str, Any]:
    """Requesting pupils served on every / some / no requested day, by the group id they counted under
    (`group_of`: pupil number -> group id), pupils of no group under `NO_GROUP`."""
    split = served_by(instance, solution, lambda pupil: int(group_of.get(pupil.id, 0)))
    return {str(group) if group else NO_GROUP: dataclasses.asdict(counts) for group, counts in split.items()}


def fairness_counts(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The fairness figures of stored metrics as counts and shares only, no pupil or family named (None for
    metrics counted before fairness was)."""
    if (metrics or {}).get("fairness_counts"):
        return dict((metrics or {})["fairness_counts"])
    data = (metrics or {}).get("fairness")
    if not data:
        return None
    return {
        "served": data["served"],
        "served_by_priority": data["served_by_priority"],
        "served_by_grade": data["served_by_grade"],
        "served_by_group": data.get("served_by_group"),
        "choices": data["choices"],
        "justified_envy": data["justified_envy"]["count"],
        "idle_seats": data["idle_seats"]["seats"],
        "split_families": len(data["split_families"]),
        "churn": data["churn"],
        "families": data.get("families"),
    }


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


DELTA_KEYS = ("coverage", "coverage_pct", "covered_pupil_days", "pupil_days_pct", "pupils_served",
              "unserved_count")


def metric_deltas(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Side-by-side rows for the headline numbers of two runs' metrics (missing values stay None)."""
    before, after = before or {}, after or {}
    rows = []
    for key in DELTA_KEYS:
        a, b = before.get(key), after.get(key)
        delta = round(b - a, 2) if isinstance(a, int | float) and isinstance(b, int | float) else None
        rows.append({"key": key, "a": a, "b": b, "delta": delta})
    for key in ("max", "mean"):
        a = (before.get("teacher_load") or {}).get(key)
        b = (after.get("teacher_load") or {}).get(key)
        delta = round(b - a, 2) if isinstance(a, int | float) and isinstance(b, int | float) else None
        rows.append({"key": f"teacher_load_{key}", "a": a, "b": b, "delta": delta})
    for rank in RANKS:
        a = (before.get("choice_ranks") or {}).get(rank)
        b = (after.get("choice_ranks") or {}).get(rank)
        delta = b - a if isinstance(a, int) and isinstance(b, int) else None
        rows.append({"key": f"rank_{rank}", "a": a, "b": b, "delta": delta})
    fair_a, fair_b = fairness_counts(before) or {}, fairness_counts(after) or {}
    for key, read in FAIRNESS_ROWS:
        a, b = _read(read, fair_a), _read(read, fair_b)
        delta = round(b - a, 2) if a is not None and b is not None else None
        rows.append({"key": key, "a": a, "b": b, "delta": delta})
    return rows


def without_names(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """`metrics` with the fairness report replaced by its counts (`fairness_counts`) and without the record of
    priority groups, so nothing names a pupil."""
    if not metrics or ("fairness" not in metrics and "priority_groups" not in metrics):
        return metrics
    counts = fairness_counts(metrics)
    kept = {key: value for key, value in metrics.items() if key not in ("fairness", "priority_groups")}
    return {**kept, "fairness_counts": counts} if counts else kept


FAIRNESS_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("served_fully", ("served", "fully")),
    ("served_partly", ("served", "partly")),
    ("served_none", ("served", "not_at_all")),
    ("choice_first_pct", ("choices", "first")),
    ("choice_top_pct", ("choices", "top")),
    ("choice_none_pct", ("choices", "none")),
    ("justified_envy", ("justified_envy",)),
    ("idle_seats", ("idle_seats",)),
    ("split_families", ("split_families",)),
    ("families_with_nothing", ("families", "with_nothing")),
)
"""Comparison rows of the fairness figures: row key and the path into `fairness_counts`. Shares read as %."""


def _read(path: tuple[str, ...], data: dict[str, Any]) -> float | None:
    value: Any = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if not isinstance(value, int | float):
        return None
    return round(100.0 * value, 1) if path[0] == "choices" else value
