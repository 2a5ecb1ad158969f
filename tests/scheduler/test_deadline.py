"""One deadline for the whole solve: phases are timed, and a level that starts after it gets no time."""

from __future__ import annotations

import time
from typing import Any

import pytest

from scheduler import validation
from scheduler.deadline import Deadline, OutOfTime
from scheduler.domain import Status
from scheduler.groups import build_day_classes
from scheduler.model import AllocationModel
from scheduler.solve import SolverConfig, solve
from tests.scheduler.builders import instance, pupil, request, session, teacher

PHASES = {"check", "group", "build", "fallback", "solve", "extract", "objective", "explain"}
"""A school this small goes to the week's search at once (`DAYWISE_MIN_VARIABLES`), from today's lottery, and its
first look proves it, so it needs no day-value rows (`scheduler.coverage.LOOK_SECONDS`; the rows' phase is timed in
`tests/scheduler/test_day_cuts.py`)."""


def _school() -> Any:
    """Two grades, art liked by some, more pupils than seats: every level has something to decide."""
    sessions = [session("S1", "homework", capacity=3), session("S2", "art", capacity=2, min_pupils=2),
                session("S3", "homework", 2, capacity=2)]
    pupils = [pupil(f"P{i}", 2 + i % 2, priority=i % 3) for i in range(7)]
    requests = [request(f"P{i}", (1, 2), preferences=("art",) if i % 2 else ()) for i in range(7)]
    return instance(sessions, [teacher("T1"), teacher("T2", qualifications=("arts",))], pupils, requests)


def test_every_phase_is_timed_and_the_levels_run_in_time() -> None:
    solution = solve(_school(), SolverConfig(time_limit=20, workers=1))
    assert solution.status == Status.OPTIMAL
    phases = solution.stats["phases"]
    assert set(phases) == PHASES and all(seconds >= 0 for seconds in phases.values())
    assert sum(phases.values()) <= solution.stats["seconds"] + 0.05
    assert not any(level["skipped"] for level in solution.stats["levels"])


def test_a_level_started_after_the_deadline_gets_no_time_and_the_plan_stays_valid() -> None:
    inst = _school()
    limit = 1.0
    skipped: list[str] = []

    def progress(stage: str, details: dict[str, Any]) -> None:
        if stage == "coverage":
            time.sleep(limit)  # whatever follows level 1 starts after the deadline
        if details.get("skipped"):
            skipped.append(stage)

    solution = solve(inst, SolverConfig(time_limit=limit, workers=1), progress)
    assert validation.validate(inst, solution).consistent
    levels = {level["name"]: level for level in solution.stats["levels"]}
    assert levels["coverage"]["status"] == Status.OPTIMAL and not levels["coverage"]["skipped"]
    assert skipped == ["preference", "max_load", "staffing"]
    for name in skipped:
        assert levels[name]["skipped"] and levels[name]["seconds"] == 0
    # The skipped levels report the plan's own values, against bounds that need no search.
    assert levels["preference"]["value"] == solution.objective.preference
    assert levels["preference"]["bound"] == 3 * 2 * 7
    assert levels["preference"]["status"] == Status.FEASIBLE
    assert levels["max_load"]["value"] == solution.objective.max_teacher_load > levels["max_load"]["bound"] == 0
    assert levels["staffing"]["value"] == len(solution.staffing)
    assert solution.status == Status.FEASIBLE
    assert solution.objective.coverage == solution.objective.coverage_bound
    phases = solution.stats["phases"]
    assert ("solve" in phases or "daywise" in phases) and "explain" in phases


def test_a_model_is_abandoned_while_it_is_built_once_the_deadline_has_passed() -> None:
    inst = _school()
    classes = build_day_classes(inst, by_preference=True, seed=0)
    with pytest.raises(OutOfTime):
        AllocationModel(inst, classes, deadline=Deadline(time.monotonic() - 1))
    assert AllocationModel(inst, classes, deadline=Deadline.after(60)).seats


def test_a_deadline_counts_down() -> None:
    deadline = Deadline.after(30)
    assert 29 < deadline.left() <= 30 and not deadline.passed
    assert deadline.earlier(31).passed and deadline.earlier(31).left() == 0
    with pytest.raises(OutOfTime):
        deadline.earlier(31).check()


def test_the_whole_solve_ends_within_the_limit_on_a_crowded_school() -> None:
    # The contract's allowance (10 % and one second past the limit) is the margin: building, the levels,
    # extraction and reasons all count, on a school short of seats and teachers.
    from bench.crowded import crowded

    inst = crowded(600, seed=2)
    limit = 1.5
    began = time.monotonic()
    solution = solve(inst, SolverConfig(time_limit=limit, workers=1))
    wall = time.monotonic() - began
    assert wall <= 1.1 * limit + 1.0
    assert solution.stats["seconds"] <= wall
    assert validation.validate(inst, solution).consistent


@pytest.mark.slow
@pytest.mark.parametrize("limit", [6.0, 12.0])
def test_a_short_limit_on_a_big_crowded_school_is_kept_end_to_end(limit: float) -> None:
    # 3,250 pupils, about 60,000 variables once preferences split the classes: grouping, every model built,
    # the days, level 4, extraction and reasons all within the contract's allowance.
    from bench.crowded import crowded

    inst = crowded(3250, seed=1)
    began = time.monotonic()
    solution = solve(inst, SolverConfig(time_limit=limit))
    wall = time.monotonic() - began
    phases = " ".join(f"{name} {seconds}" for name, seconds in solution.stats["phases"].items())
    assert wall <= 1.1 * limit + 1.0, f"{wall:.2f} s: {phases}"
    assert validation.validate(inst, solution).ok
    assert solution.objective.coverage > 0


@pytest.mark.slow
def test_the_flows_after_a_big_week_search_come_out_of_the_levels_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # The days do not answer level 3 (as on a loaded machine), so the week's 60,000-variable model is searched and
    # its plan, and level 1's, are seated by the flows afterwards (about a second in all): within the allowance.
    from bench.crowded import crowded
    from scheduler import solve as solve_module

    monkeypatch.setattr(solve_module, "preference_by_day", lambda *args, **kwargs: None)
    inst = crowded(3250, seed=1)
    limit = 12.0
    began = time.monotonic()
    solution = solve(inst, SolverConfig(time_limit=limit))
    wall = time.monotonic() - began
    phases = solution.stats["phases"]
    assert "daywise_preference" not in solution.stats and phases["reseat"] > 0
    assert wall <= 1.1 * limit + 1.0, f"{wall:.2f} s: {phases}"
    assert validation.validate(inst, solution).ok


def test_a_cap_on_the_later_levels_leaves_them_no_time_and_keeps_the_plan_valid() -> None:
    """`later_levels_limit=0` (a city batch's cap at its extreme): coverage is still solved and proven, every
    later level is skipped, and the plan is whole."""
    inst = _school()
    solution = solve(inst, SolverConfig(time_limit=20, workers=1, later_levels_limit=0.0))
    assert validation.validate(inst, solution).consistent
    levels = {level["name"]: level for level in solution.stats["levels"]}
    assert levels["coverage"]["status"] == Status.OPTIMAL and not levels["coverage"]["skipped"]
    assert all(levels[name]["skipped"] for name in ("preference", "max_load", "staffing"))
    assert solution.stats["later_levels_limit"] == 0.0
    assert solution.objective.coverage == solve(inst, SolverConfig(time_limit=20, workers=1)).objective.coverage
