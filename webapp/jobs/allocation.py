"""School allocation runs: the job kind "allocation" (a school admin's run) and its solve-and-store body.

`start_run` records a queued `AllocationRun` and submits it; the job (`solve_run`, also the body of the city
batch kind) reads the term, ends that read transaction, solves with the monitor reporting progress, and stores
the solution with its metrics in the ONE transaction opened by `Job.claim_store` (see `webapp.jobs.runner` for
the locking). Between solver levels the job checks the cancel flag the monitor read; the solver itself asks the
same flag through `SolverConfig.should_stop`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from flask import current_app
from sqlalchemy import event

from scheduler import domain
from scheduler.solve import SolveCancelled, SolverConfig, solve
from webapp import audit
from webapp.extensions import db
from webapp.jobs.runner import Job, JobCancelled, JobKind, execute, job_threads, register, submit
from webapp.models import AllocationRun, RunState, Term, User, utcnow
from webapp.run_metrics import compute_metrics
from webapp.services import store_solution, term_to_run_input

logger = logging.getLogger(__name__)

KIND = "allocation"
LEVEL_STAGES = ("coverage", "stability", "preference", "max_load", "staffing")


def job_options(term: Term) -> dict[str, Any]:
    """Keyword arguments for the job, read from the app config (plain values: they cross processes)."""
    config = current_app.config
    options: dict[str, Any] = {
        "time_limit": float(config.get("ALLOCATION_TIME_LIMIT", 60.0)),
        "workers": job_threads(),
        "seed": int(term.lottery_seed or 0) % (2**31),
    }
    if config.get("TESTING") and config.get("ALLOCATION_FAIL_AT"):
        options["fail_at"] = str(config["ALLOCATION_FAIL_AT"])
    return options


def start_run(term: Term, user: User) -> AllocationRun:
    """Record a queued run for `term`, commit, and start the job; returns at once."""
    run = AllocationRun(term_id=term.id, created_by=user.id, state=RunState.QUEUED, stage="queued", progress=0.0)
    db.session.add(run)
    db.session.flush()
    audit.record("run.start", f"run:{run.id}", {"term": term.name}, user_id=user.id, school_id=term.school_id)
    db.session.commit()
    submit(KIND, run.id, job_options(term))
    db.session.refresh(run)
    return run


def run_allocation(run_id: int, database_url: str, **options: Any) -> str:
    """Run one allocation job in this process; returns the run's final state."""
    return str(execute(KIND, run_id, database_url, **options)["state"])


class ProgressReporter:
    """Turns the solver's stage callbacks into a progress fraction and best coverage for the monitor."""

    def __init__(self, job: Job, instance: domain.Instance, time_limit: float) -> None:
        self.job, self.time_limit = job, max(time_limit, 0.1)
        self.levels = [s for s in LEVEL_STAGES if s != "stability" or instance.previous]
        self.done_levels = 0
        self.progress = 0.0

    def __call__(self, stage: str, info: dict[str, Any]) -> None:
        level_finished = "status" in info
        if level_finished and stage in self.levels:
            self.done_levels += 1
        by_levels = self.done_levels / len(self.levels)
        by_time = float(info.get("elapsed", 0.0)) / self.time_limit
        self.progress = min(0.99, max(self.progress, by_levels, by_time))
        values: dict[str, Any] = {"stage": stage, "progress": round(self.progress, 3)}
        if stage == "coverage" and "value" in info:
            values["best_coverage"] = int(info["value"])
        self.job.report(**values)
        # Between levels we are outside the MIP solver's search, so stopping here is safe and prompt.
        if level_finished and self.job.should_stop():
            raise SolveCancelled(stage)


def solve_run(job: Job, *, time_limit: float = 60.0, workers: int = 1, seed: int | None = None,
              later_levels_limit: float | None = None, fail_at: str | None = None) -> dict[str, Any]:
    """Solve the run's term and store the answer; returns the figures of the solution.

    `seed` defaults to the term's lottery seed. What the run's `stats` held before (a batch id, its scope) is
    kept in the stored stats. `fail_at` ("solve" or "commit") injects a failure for tests: after the solve, or
    inside the final commit.
    """
    run = db.session.get(AllocationRun, job.id)
    if run is None:
        raise LookupError(f"run {job.id} vanished")
    term = run.term
    kept = dict(run.stats or {})
    seed = int(term.lottery_seed or 0) % 2**31 if seed is None else seed
    run_input = term_to_run_input(term)
    instance = run_input.instance
    db.session.rollback()  # end the read transaction: the final write must not hold an old snapshot
    job.report(stage="coverage", progress=0.01, demand=instance.demand())
    config = SolverConfig(time_limit=time_limit, workers=workers, seed=seed, should_stop=job.should_stop,
                          later_levels_limit=later_levels_limit)
    solution = solve(instance, config, progress=ProgressReporter(job, instance, time_limit))
    if job.should_stop():
        raise JobCancelled("done")
    if fail_at == "solve":
        raise RuntimeError("injected failure after the solve")
    if kept:
        solution = dataclasses.replace(solution, stats={**solution.stats, **kept})

    job.claim_store()
    run = db.session.get(AllocationRun, job.id)
    assert run is not None
    run.metrics = compute_metrics(instance, solution, run_input.group_record())
    run.finished_at = run.heartbeat_at = utcnow()
    if fail_at == "commit":
        def fail(_session: Any) -> None:
            raise RuntimeError("injected failure in the final commit")

        event.listen(db.session(), "before_commit", fail, once=True)
    store_solution(run.term, solution, run, instance=instance)  # sets the state to done and commits
    logger.info("allocation run %s done: %s coverage %s/%s", job.id, solution.status,
                solution.objective.coverage, instance.demand())
    return {
        "status": solution.status,
        "coverage": solution.objective.coverage,
        "bound": solution.objective.coverage_bound,
        "demand": instance.demand(),
    }


ALLOCATION = register(JobKind(KIND, AllocationRun, solve_run, heartbeat=True))

