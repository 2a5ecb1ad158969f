"""The solver: correct on crafted cases, equal to an independent optimum on random ones, honest about status."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import io, validation
from scheduler.domain import Assignment, Instance, Session, Status, Teacher
from scheduler.groups import build_day_classes
from scheduler.model import STAFFING_PRIORITY, AllocationModel
from scheduler.solve import LexicographicSolver, SolveCancelled, SolverConfig, coverage_time, solve
from tests.scheduler.random_instances import random_instance
from tests.scheduler.reference import reference_optimum

SPEC = Path(__file__).resolve().parents[2] / "docs" / "spec"

FAST = SolverConfig(time_limit=20, workers=1)


@pytest.fixture
def example() -> Instance:
    return io.load_instance(SPEC / "example-instance.json")


def solve_checked(instance: Instance, config: SolverConfig = FAST):
    solution = solve(instance, config)
    if solution.has_allocation:
        report = validation.validate(instance, solution)
        assert report.violations == ()
        assert report.objective.coverage == solution.objective.coverage
        assert report.objective.preference == solution.objective.preference
        assert report.objective.stability == solution.objective.stability
        assert report.objective.max_teacher_load == solution.objective.max_teacher_load
    return solution


def replace_session(instance: Instance, session_id: str, **changes: object) -> Instance:
    sessions = tuple(dataclasses.replace(s, **changes) if s.id == session_id else s for s in instance.sessions)
    return dataclasses.replace(instance, sessions=sessions)


def test_worked_example_is_optimal(example: Instance) -> None:
    solution = solve_checked(example)
    assert solution.status == Status.OPTIMAL
    assert solution.objective.coverage == solution.objective.coverage_bound == 9
    assert solution.objective.preference == 7
    assert solution.objective.max_teacher_load == 2
    # art needs two pupils, so P003 (who can only be covered in art) takes someone along; football keeps one
    art = {a.pupil for a in solution.assignments if a.session == "S3"}
    assert "P003" in art and len(art) == 2
    assert solution.unserved == ()


def test_rank_points_weigh_the_preference_level(example: Instance) -> None:
    # with a second choice worth as much as a first, art for P001 and P003 scores 3 each, football for P002 3
    solution = solve_checked(dataclasses.replace(example, rank_points=(3, 3)))
    assert solution.status == Status.OPTIMAL
    assert solution.objective.coverage == 9
    assert solution.objective.preference == 9


def test_capacity_limits_coverage(example: Instance) -> None:
    tight = replace_session(example, "S1", capacity=3)
    solution = solve_checked(tight)
    assert solution.status == Status.OPTIMAL
    enrolled = sum(1 for a in solution.assignments if a.session == "S1")
    assert enrolled == 3
    # the priority-2 pupil (weight 4) keeps the seat; two priority-1 pupils keep theirs
    assert Assignment("P004", "S1") in solution.assignments
    assert len(solution.unserved) == 1


def test_grade_range_excludes_pupils(example: Instance) -> None:
    solution = solve_checked(replace_session(example, "S1", grades=(4, 6)))
    assert not any(a.session == "S1" for a in solution.assignments)
    assert solution.objective.coverage == 0  # every request needs P1, only S1 offers it


def test_min_pupils_closes_session_or_fills_it(example: Instance) -> None:
    solution = solve_checked(replace_session(example, "S3", min_pupils=3))
    assert solution.status == Status.OPTIMAL
    art = [a for a in solution.assignments if a.session == "S3"]
    assert len(art) in (0, 3)
    assert solution.objective.coverage == 9  # P001, P002 and P003 all take art; football stays empty


def test_no_qualified_teacher_means_no_session(example: Instance) -> None:
    teachers = tuple(dataclasses.replace(t, qualifications=frozenset()) if t.id == "T1" else t
                     for t in example.teachers)
    solution = solve_checked(dataclasses.replace(example, teachers=teachers))
    assert not any(a.session == "S2" for a in solution.assignments)
    assert not any(s.session == "S2" for s in solution.staffing)


def test_teacher_weekly_cap_and_availability(example: Instance) -> None:
    capped = {"T3": {"max_sessions": 1}, "T1": {"available": frozenset({(1, "P2")})},
              "T2": {"available": frozenset({(1, "P2")})}}
    teachers = tuple(dataclasses.replace(t, **capped.get(t.id, {})) for t in example.teachers)  # type: ignore[arg-type]
    solution = solve_checked(dataclasses.replace(example, teachers=teachers))
    loads = validation.teacher_loads(example, solution.staffing)
    assert loads.get("T3", 0) <= 1
    # S1 (P1) and S4 (P3) both need T3, the only teacher free then: the P3 request of P002 loses its day
    assert any(s.session == "S1" for s in solution.staffing)
    assert solution.objective.coverage == 9 - 2


def test_teachers_per_ratio(example: Instance) -> None:
    ratio = replace_session(example, "S1", pupils_per_teacher=2)
    extra = Teacher("T4", "周老师", frozenset(), frozenset({(1, "P1")}), 5)
    solution = solve_checked(dataclasses.replace(ratio, teachers=(*ratio.teachers, extra)))
    staff = [s for s in solution.staffing if s.session == "S1"]
    enrolled = sum(1 for a in solution.assignments if a.session == "S1")
    assert len(staff) * 2 >= enrolled
    assert enrolled == 4


def test_fixed_pair_is_honoured(example: Instance) -> None:
    pinned = dataclasses.replace(example, fixed=(Assignment("P003", "S2"),))
    solution = solve_checked(pinned)
    assert Assignment("P003", "S2") in solution.assignments
    assert solution.objective.coverage == 9  # P001 and P002 fill art instead
    assert {a.pupil for a in solution.assignments if a.session == "S3"} == {"P001", "P002"}


def test_fixed_pair_breaking_a_rule_is_infeasible(example: Instance) -> None:
    pinned = dataclasses.replace(example, fixed=(Assignment("P004", "S2"),))  # P004 did not request P2
    solution = solve(pinned, FAST)
    assert solution.status == Status.INFEASIBLE
    assert solution.stats["infeasible_fixed"][0]["pupil"] == "P004"
    assert "rule 2" in solution.stats["infeasible_fixed"][0]["reason"]


def test_fixed_pairs_that_cannot_be_staffed_are_infeasible(example: Instance) -> None:
    sessions = (*example.sessions, Session("S5", "football", 1, "P2", "操场2", 10, (3, 3), 25, 0))
    pinned = dataclasses.replace(example, sessions=sessions,
                                 fixed=(Assignment("P001", "S2"), Assignment("P003", "S5")))
    solution = solve(pinned, FAST)  # one sports teacher cannot lead two P2 sessions
    assert solution.status == Status.INFEASIBLE
    assert solution.assignments == ()
    assert {p["pupil"] for p in solution.stats["infeasible_fixed"]} == {"P001", "P003"}


def test_previous_allocation_is_kept_when_nothing_changed(example: Instance) -> None:
    first = solve_checked(example)
    rerun = dataclasses.replace(example, previous=first.assignments)
    second = solve_checked(rerun)
    assert second.objective.stability == len(first.assignments)
    assert set(second.assignments) == set(first.assignments)


def test_deterministic_for_seed_and_workers() -> None:
    instance = random_instance(7, pupils=14, days=3)
    config = SolverConfig(time_limit=20, workers=2, seed=3)
    a, b = solve(instance, config), solve(instance, config)
    assert a.assignments == b.assignments
    assert a.staffing == b.staffing


def test_progress_and_cancel(example: Instance) -> None:
    stages: list[str] = []
    solve(example, FAST, progress=lambda stage, info: stages.append(stage))
    assert stages[0] == "coverage" and stages[-1] == "done"
    with pytest.raises(SolveCancelled):
        solve(example, dataclasses.replace(FAST, should_stop=lambda: True))


def test_infeasible_nothing_requested_is_still_an_answer(example: Instance) -> None:
    solution = solve_checked(dataclasses.replace(example, requests=()))
    assert solution.status == Status.OPTIMAL
    assert solution.objective.coverage == 0
    assert solution.assignments == ()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fixed=st.booleans(), previous=st.booleans())
def test_every_level_equals_an_independent_optimum(seed: int, fixed: bool, previous: bool) -> None:
    instance = random_instance(seed, with_fixed=fixed, with_previous=previous)
    solution = solve_checked(instance)
    expected = reference_optimum(instance)
    if expected is None:
        assert solution.status == Status.INFEASIBLE
        return
    assert solution.status == Status.OPTIMAL
    assert solution.objective.coverage == solution.objective.coverage_bound == expected["coverage"]
    assert solution.objective.stability == expected["stability"]
    assert solution.objective.preference == expected["preference"]
    assert solution.objective.max_teacher_load == expected["max_load"]
    assert len(solution.staffing) == expected["staffing"]


def test_model_variables_name_their_day_class(example: Instance) -> None:
    pinned = dataclasses.replace(example, fixed=(Assignment("P003", "S3"),))
    built = AllocationModel(pinned, build_day_classes(pinned, by_preference=False, seed=0))
    names = {var.name() for var in built.solver.variables()}
    assert "seats_d1_g3_P1-P2_S1" in names  # P001: grade 3, Monday, P1 and P2
    assert "seats_d1_g3_P1-P2_pin-S3_S3" in names  # P003, pinned to art
    assert "covered_d1_g3_P1_u0_prio2" in names  # P004


def test_a_model_keeps_its_variables_until_it_gains_one(example: Instance) -> None:
    """`AllocationModel.variables()` is the solver's own list, by index, built again only when a variable is
    added."""
    built = AllocationModel(example, build_day_classes(example, by_preference=False, seed=0))
    first = built.variables()
    assert built.variables() is first
    assert [v.index() for v in first] == list(range(built.solver.NumVariables()))
    added = built.solver.IntVar(0, 1, "extra")
    again = built.variables()
    assert again is not first and again[-1].index() == added.index() == len(first)
    assert [v.name() for v in again] == [v.name() for v in built.solver.variables()]


def test_the_backend_branches_on_staffing_first(example: Instance) -> None:
    """Which sessions get teachers (and run) is branched on before any seat count (`STAFFING_PRIORITY`)."""
    built = AllocationModel(example, build_day_classes(example, by_preference=False, seed=0))
    staffing = {var.index() for var in [*built.teachers.values(), *built.runs.values()]}
    assert built.runs and staffing
    for var in built.solver.variables():
        if var.index() in staffing:
            assert var.branching_priority() == STAFFING_PRIORITY > 0
        else:
            assert var.branching_priority() == 0


def test_the_highs_backend_solves_the_worked_example_without_a_start(example: Instance) -> None:
    """OR-Tools' HiGHS interface crashes the process on a hint, so HiGHS searches without one. Run in a child
    process, where a crash fails this test instead of ending the test run."""
    script = (
        "import json, sys\n"
        "from scheduler.io import load_instance\n"
        "from scheduler.solve import SolverConfig, solve\n"
        "solution = solve(load_instance(sys.argv[1]), SolverConfig(backend='HIGHS', time_limit=20, workers=1))\n"
        "print(json.dumps([solution.status, solution.objective.coverage, solution.objective.preference]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(SPEC / "example-instance.json")], capture_output=True,
                          text=True, timeout=120, cwd=SPEC.parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    status, coverage, preference = json.loads(done.stdout.strip().splitlines()[-1])
    expected = solve_checked(example)
    assert status == Status.OPTIMAL == expected.status
    assert (coverage, preference) == (expected.objective.coverage, expected.objective.preference)


def test_level_1_takes_what_capped_later_levels_cannot_use() -> None:
    """Level 1 gets its share of the levels' time; with the later levels capped (a city batch), all but their cap
    when that is more, so a school whose coverage is not proven does not leave the rest of its limit idle; never
    less than the floor that gives it a plan. A school with a previous plan keeps the share: level 2, which keeps
    that plan's seats, is not under the cap."""
    assert coverage_time(10.0, SolverConfig(), previous=False) == pytest.approx(8.0)
    assert coverage_time(27.0, SolverConfig(later_levels_limit=1.0), previous=False) == pytest.approx(26.0)
    assert coverage_time(5.0, SolverConfig(later_levels_limit=0.75), previous=False) == pytest.approx(4.25)
    assert coverage_time(10.0, SolverConfig(later_levels_limit=5.0), previous=False) == pytest.approx(8.0)
    assert coverage_time(10.0, SolverConfig(later_levels_limit=-1.0), previous=False) == pytest.approx(10.0)
    assert coverage_time(0.0, SolverConfig(later_levels_limit=0.75), previous=False) == pytest.approx(0.1)
    assert coverage_time(27.0, SolverConfig(later_levels_limit=1.0), previous=True) == pytest.approx(21.6)


def test_a_batch_school_seats_level_1s_staffing_by_preference_before_the_whole_search() -> None:
    """At a city batch's settings a 787-pupil school has well under a second for level 3: too little for its days
    or for the whole week's search to get past level 1's plan. Level 1's staffing is searched first, level 1's plan
    seated by preference within that staffing (a flow per slot) is the level's floor, and the plan keeps every
    rule."""
    from scheduler.generate import generate

    inst = generate(787, 100_019)
    solution = solve(inst, SolverConfig(time_limit=6, workers=1, later_levels_limit=0.75))
    assert solution.stats["preference_model"]["variables"] > 5_500
    assert solution.stats["preference_within_staffing"] == "first"
    assert "daywise_preference" not in solution.stats
    levels = {level["name"]: level for level in solution.stats["levels"]}
    assert levels["preference"]["status"] in (Status.OPTIMAL, Status.FEASIBLE)
    assert solution.objective.preference == levels["preference"]["value"] > 0
    start = solution.stats["preference_seated_start"]
    assert levels["preference"]["value"] >= start["seated"] > start["plan"]
    report = validation.validate(inst, solution)
    assert report.violations == () and report.objective_mismatches == ()


def test_a_big_batch_school_takes_level_1s_plan_seated_by_preference() -> None:
    """A 2,145-pupil school's level-3 model is too big to be searched in a batch's fraction of a second, and the
    level used to be skipped with level 1's seating. Level 1's plan seated by preference within its staffing is
    the level's answer now: far more points, its bound the one that needs no search, every rule kept."""
    from scheduler.generate import generate

    inst = generate(2145, 100_127)
    solution = solve(inst, SolverConfig(time_limit=6, workers=1, later_levels_limit=0.75))
    assert solution.stats["preference_model"]["variables"] > 20_000
    assert "preference_within_staffing" not in solution.stats
    levels = {level["name"]: level for level in solution.stats["levels"]}
    preference = levels["preference"]
    assert not preference["skipped"] and preference["status"] == Status.FEASIBLE
    start = solution.stats["preference_seated_start"]
    assert preference["value"] == start["seated"] > 1.5 * start["plan"]
    assert solution.objective.preference >= preference["value"]  # the extraction may seat more by preference
    assert preference["bound"] > preference["value"]
    report = validation.validate(inst, solution)
    assert report.violations == () and report.objective_mismatches == ()


def test_a_level_3_search_that_finds_nothing_leaves_level_1s_plan_seated_by_preference(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch school's level-3 search may find nothing in its fraction of a second (3 or 4 of a city's 950
    schools). Level 1's plan, seated by preference within its staffing, is then the level's answer, instead of level
    1's seating with no preference groups at all."""
    import scheduler.solve as solve_module
    from scheduler.generate import generate
    from scheduler.lexicographic import LevelResult

    searched = solve_module._LevelPlan._optimise

    def finds_nothing(plan: object, solver: LexicographicSolver, name: str, seconds: float) -> LevelResult:
        if name != "preference":
            return searched(plan, solver, name, seconds)  # type: ignore[arg-type]
        result = LevelResult(name, Status.UNKNOWN, 0, 0, seconds)
        solver.results.append(result)
        return result

    monkeypatch.setattr(solve_module._LevelPlan, "_optimise", finds_nothing)
    inst = generate(300, 11)
    solution = solve(inst, SolverConfig(time_limit=6, workers=1, later_levels_limit=0.75))
    preference = {level["name"]: level for level in solution.stats["levels"]}["preference"]
    start = solution.stats["preference_seated_start"]
    assert solution.stats["preference_seated_after"] == {"searched": None, "seated": start["seated"]}
    assert preference["status"] == Status.FEASIBLE and preference["bound"] > preference["value"]
    assert preference["value"] == start["seated"] > start["plan"]
    # Level 4 and the extraction keep each class's seats per activity, and may seat more pupils by preference.
    assert solution.objective.preference >= preference["value"]
    report = validation.validate(inst, solution)
    assert report.violations == () and report.objective_mismatches == ()


def test_level_4_builds_no_model_when_no_step_could_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no time left for the levels after coverage, level 4's steps are skipped without building their model:
    the coarse grouping gets only coverage's model."""
    import scheduler.solve as solve_module
    from scheduler.generate import generate

    inst = generate(300, 11)
    built: list[list[object]] = []

    class Counted(AllocationModel):
        def __init__(self, instance: Instance, classes: list, **kwargs: object) -> None:  # type: ignore[type-arg]
            built.append(classes)
            super().__init__(instance, classes, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(solve_module, "AllocationModel", Counted)
    solution = solve(inst, SolverConfig(time_limit=6, workers=1, later_levels_limit=0.0))
    levels = {level["name"]: level for level in solution.stats["levels"]}
    assert levels["max_load"]["skipped"] and levels["staffing"]["skipped"]
    assert len(built) == 1  # coverage's; the preference level was skipped too, and level 4 built nothing
    assert validation.validate(inst, solution).consistent
