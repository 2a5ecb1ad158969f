"""Terms with a published run, for the waitlist and roster tests.

`small_term` builds a hand-made term from scheduler domain objects and `publish` stores a hand-written
allocation as its published run, so a test knows every seat. `generated_term` imports a generated school
(`scheduler.generate`, ~120 pupils), solves it once per test session and publishes the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import lru_cache

from scheduler import domain
from scheduler.explain import explain_unserved
from scheduler.generate import generate
from scheduler.solve import SolverConfig, solve
from scheduler.validation import recompute_objective, validate
from webapp.extensions import db
from webapp.models import AllocationRun, Term, utcnow
from webapp.services import instance_to_term, school_from_instance, store_solution, term_to_instance

PERIODS = (domain.Period("P1", "15:30", "16:30"), domain.Period("P2", "16:30", "17:30"))
ACTIVITIES = (
    domain.Activity("homework", "作业辅导", "homework", None),
    domain.Activity("art", "美术", "arts", "arts"),
    domain.Activity("football", "足球", "sports", "sports"),
)
GENERATED_SEED = 1


def session(code: str, activity: str = "homework", *, day: int = 1, period: str = "P1", capacity: int = 10,
            grades: tuple[int, int] = (1, 6), ppt: int = 10, min_pupils: int = 0, room: str = ""
            ) -> domain.Session:
    return domain.Session(code, activity, day, period, room or f"{code}室", capacity, grades, ppt, min_pupils)


def teacher(code: str, slots: Iterable[tuple[int, str]], quals: Iterable[str] = (), max_sessions: int = 5
            ) -> domain.Teacher:
    return domain.Teacher(code, f"{code}老师", frozenset(quals), frozenset(slots), max_sessions)


def pupil(number: str, *, grade: int = 3, priority: int = 0, class_name: str = "") -> domain.Pupil:
    return domain.Pupil(number, f"学生{number}", grade, class_name or f"{grade}-1", None, priority)


def request(number: str, days: Sequence[int] = (1,), periods: Sequence[str] = ("P1",),
            preferences: Sequence[str] = ()) -> domain.Request:
    return domain.Request(number, tuple(days), tuple(periods), tuple(preferences))


def small_term(sessions: Sequence[domain.Session], teachers: Sequence[domain.Teacher],
               pupils: Sequence[domain.Pupil], requests: Sequence[domain.Request], *,
               code: str = "KM-WL-0001", seed: int = 4242, placement: str = "automatic") -> Term:
    instance = domain.Instance(
        school=domain.School(code, "候补小学", "五华区"), term="2026-autumn", weekdays=(1, 2),
        periods=PERIODS, priority_weights={0: 1, 1: 2, 2: 4}, activities=ACTIVITIES,
        sessions=tuple(sessions), teachers=tuple(teachers), pupils=tuple(pupils), requests=tuple(requests),
    )
    school = school_from_instance(instance, city="昆明市")
    db.session.flush()
    term = instance_to_term(instance, school)
    term.lottery_seed = seed
    term.placement = placement
    term.requests_close_at = utcnow() - timedelta(days=1)  # published plans follow a closed request window
    db.session.commit()
    return term


def publish(term: Term, assignments: Iterable[tuple[str, str]], staffing: Iterable[tuple[str, str]]
            ) -> AllocationRun:
    """Store `assignments` (pupil, session) and `staffing` (teacher, session) as the term's published run.

    Unserved pupil-days and objective values are worked out from the instance, as the solver would.
    """
    instance = term_to_instance(term)
    pairs = tuple(domain.Assignment(p, s) for p, s in assignments)
    staff = tuple(domain.Staffing(t, s) for t, s in staffing)
    draft = domain.Solution(instance.school.id, domain.Status.FEASIBLE, pairs, staff,
                            domain.Objective(0, instance.demand(), 0, 0, 0),
                            explain_unserved(instance, pairs, staff))
    objective = dataclasses.replace(recompute_objective(instance, draft), coverage_bound=instance.demand())
    return store_published(term, dataclasses.replace(draft, objective=objective), instance)


def store_published(term: Term, solution: domain.Solution, instance: domain.Instance) -> AllocationRun:
    run = AllocationRun(term=term, state="running")
    db.session.add(run)
    db.session.commit()
    store_solution(term, solution, run, instance=instance)
    run.is_published = True
    run.version = 1
    run.published_at = utcnow()
    term.published_run_id = run.id
    db.session.commit()
    return run


@lru_cache(maxsize=2)
def generated_solution(seed: int = GENERATED_SEED) -> tuple[domain.Instance, domain.Solution]:
    """A generated school of ~120 pupils and a valid solution for it (solved once per test session)."""
    instance = generate(pupils=120, seed=seed, tight=False)
    solution = solve(instance, SolverConfig(time_limit=8, workers=2, seed=1))
    report = validate(instance, solution)
    assert report.ok, report.violations
    return instance, solution


def generated_term(seed: int = GENERATED_SEED) -> tuple[Term, AllocationRun]:
    instance, solution = generated_solution(seed)
    school = school_from_instance(instance, city="昆明市")
    db.session.flush()
    term = instance_to_term(instance, school)
    term.lottery_seed = 97
    term.placement = "automatic"
    term.requests_close_at = utcnow() - timedelta(days=1)
    run = store_published(term, solution, instance)
    return term, run


def consistent(term: Term, *, objective: bool = True) -> list[str]:
    """Problems with the published run as it now stands, checked by the independent validator.

    `objective=False` skips the recorded objective values, for tests that free seats by hand without
    recomputing them.
    """
    from webapp.services import run_to_solution

    assert term.published_run is not None
    instance = dataclasses.replace(term_to_instance(term), previous=())
    report = validate(instance, run_to_solution(term.published_run))
    problems = [v.message for v in report.violations] + list(report.unserved_mismatches)
    return problems + list(report.objective_mismatches) if objective else problems
