"""City batches: the job kind "batch" (one school's run in a batch) and waiting for a whole batch.

A batch is a set of draft runs sharing `run.stats["batch"]`, prepared by `webapp.bureau.city.prepare_batch`.
Each school is one job of kind "batch": the same body as a school admin's run (`solve_run`, so the same claim,
monitor, single store transaction and finish), whose outcome also names the school and its figures
(`SchoolResult`). A job catches every error of its school, so one school never stops the others.

`run_local` waits for a batch in the local pool and `run_celery` for one on Celery, reporting each school as it
finishes. A worker process that dies takes only the school it was solving with it: that run is still running
in the database, so it is marked failed; the runs still queued go to a fresh pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, fields
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from webapp.extensions import db
from webapp.jobs.allocation import solve_run
from webapp.jobs.runner import (
    JobKind,
    execute,
    one_line,
    register,
    shutdown_pool,
    solver_threads,
    submit_celery,
    submit_local,
)
from webapp.models import AllocationRun, RunState, utcnow

KIND = "batch"
LATER_LEVELS_SECONDS = 1.0
"""Seconds a school in a batch spends on preferences and teacher load once coverage is settled: the bureau's
figures are coverage; a school re-runs on its own page for a plan polished on every level."""
BATCH_KEY = "batch"
DEAD_WORKER = "the worker process died"
NO_WORKER = "no Celery worker finished this school in time"


def coverage_short(state: str, coverage: int | None, bound: int | None) -> int | None:
    """How far a finished run's coverage may be below the best any plan reaches: its proven bound minus its value
    (weighted pupil-days), 0 when the coverage is proven the best; None for a run not finished or without figures."""
    if state != RunState.DONE or coverage is None or bound is None:
        return None
    return max(0, bound - coverage)


@dataclass(frozen=True)
class CoverageProof:
    """A batch's coverage as proven: schools done, those whose coverage is proven the best, and how many weighted
    pupil-days the others may still be short of their best, at most, in all (`coverage_short` summed)."""

    done: int
    proven: int
    short: int

    @classmethod
    def of(cls, shorts: list[int | None]) -> CoverageProof:
        known = [short for short in shorts if short is not None]
        return cls(len(known), sum(1 for short in known if short == 0), sum(known))


@dataclass
class SchoolResult:
    run_id: int
    school_code: str
    school_name: str
    state: str
    status: str = ""
    coverage: int | None = None
    bound: int | None = None
    demand: int | None = None
    seconds: float = 0.0
    error: str = ""

    @property
    def short(self) -> int | None:
        """`coverage_short` of the school's run."""
        return coverage_short(self.state, self.coverage, self.bound)

    @property
    def proven(self) -> bool:
        """Coverage proven optimal (later levels may still be only feasible)."""
        return self.short == 0

    @classmethod
    def from_outcome(cls, outcome: dict[str, Any]) -> SchoolResult:
        """The school's result from a job outcome (`webapp.jobs.runner.execute`)."""
        names = {f.name for f in fields(cls)} - {"run_id"}
        values = {"school_code": "", "school_name": "", **{k: v for k, v in outcome.items() if k in names}}
        values["error"] = values.get("error") or ""
        return cls(run_id=int(outcome["id"]), **values)


def describe_school(run_id: int) -> dict[str, Any]:
    run = db.session.get(AllocationRun, run_id)
    if run is None:
        return {}
    school = run.term.school
    return {"school_code": school.code, "school_name": school.name}


BATCH = register(JobKind(KIND, AllocationRun, solve_run, describe=describe_school, heartbeat=True))


def allocate_school(run_id: int, database_url: str, time_limit: float, workers: int = 1) -> SchoolResult:
    """Solve one queued batch run in this process and store it as a draft."""
    return SchoolResult.from_outcome(execute(KIND, run_id, database_url, time_limit=time_limit, workers=workers))


def _mark_failed(run_ids: list[int], error: str) -> None:
    if run_ids:
        db.session.execute(
            update(AllocationRun)
            .where(AllocationRun.id.in_(run_ids))
            .values(state=RunState.FAILED, stage=RunState.FAILED, error=error, finished_at=utcnow())
        )
        db.session.commit()


def _result_of(run_id: int, error: str) -> SchoolResult:
    run = db.session.get(AllocationRun, run_id)
    school = run.term.school if run is not None else None
    return SchoolResult(
        run_id, school.code if school else "", school.name if school else "", RunState.FAILED, error=error
    )


def batch_options(time_limit: float, workers: int) -> dict[str, Any]:
    """One school's job options in a batch: its time limit, solver threads, and the cap on the levels after
    coverage (`BUREAU_LATER_LEVELS_SECONDS`, default `LATER_LEVELS_SECONDS`; a negative value lifts the cap)."""
    later = float(current_app.config.get("BUREAU_LATER_LEVELS_SECONDS", LATER_LEVELS_SECONDS))
    options: dict[str, Any] = {"time_limit": time_limit, "workers": workers}
    if later >= 0:
        options["later_levels_limit"] = later
    return options


def run_local(
    run_ids: list[int],
    database_url: str,
    *,
    pool_size: int,
    time_limit: float,
    on_result: Callable[[SchoolResult], None],
) -> list[SchoolResult]:
    """Solve the runs in the local pool sized `pool_size`, reporting each school as it finishes."""
    options = batch_options(time_limit, solver_threads(pool_size))
    results: list[SchoolResult] = []
    todo = list(run_ids)
    try:
        while todo:
            pending: dict[Future[dict[str, Any]], int] = {
                submit_local(KIND, run_id, database_url, options, pool_size=pool_size): run_id for run_id in todo
            }
            todo = []
            broken = False
            while pending:
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in finished:
                    run_id = pending.pop(future)
                    try:
                        result = SchoolResult.from_outcome(future.result())
                    except BrokenProcessPool:
                        broken = True
                        todo.append(run_id)
                        continue
                    except Exception as exc:
                        result = _result_of(run_id, one_line(exc))
                        _mark_failed([run_id], result.error)
                    results.append(result)
                    on_result(result)
            if broken:
                shutdown_pool(wait=True)
                todo = _after_dead_worker(todo, results, on_result)
    finally:
        shutdown_pool(wait=True)
    return results


def _after_dead_worker(
    todo: list[int], results: list[SchoolResult], on_result: Callable[[SchoolResult], None]
) -> list[int]:
    """The runs a dead worker had claimed failed with it; returns the ones still queued, for a fresh pool."""
    db.session.expire_all()
    states = dict(
        db.session.execute(select(AllocationRun.id, AllocationRun.state).where(AllocationRun.id.in_(todo))).all()
    )
    dead = [run_id for run_id in todo if states.get(run_id) == RunState.RUNNING]
    _mark_failed(dead, DEAD_WORKER)
    for run_id in dead:
        result = _result_of(run_id, DEAD_WORKER)
        results.append(result)
        on_result(result)
    for run_id in todo:
        if states.get(run_id) not in (RunState.RUNNING, RunState.QUEUED):
            run = db.session.get(AllocationRun, run_id)
            result = _result_of(run_id, run.error or "") if run else _result_of(run_id, "")
            if run is not None and run.state == RunState.DONE:
                result.state = RunState.DONE
            results.append(result)
            on_result(result)
    return [run_id for run_id in todo if states.get(run_id) == RunState.QUEUED]


def run_celery(
    run_ids: list[int],
    database_url: str,
    *,
    time_limit: float,
    workers: int,
    on_result: Callable[[SchoolResult], None],
    poll: float = 0.5,
    timeout: float | None = None,
) -> list[SchoolResult]:
    """Solve the runs as Celery tasks (one per school) and wait, reporting each school as it finishes."""
    options = batch_options(time_limit, workers)
    async_results = submit_celery([(KIND, run_id, options) for run_id in run_ids], database_url)
    pending = dict(zip(async_results, run_ids, strict=True))
    results: list[SchoolResult] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    while pending:
        for async_result in [r for r in pending if r.ready()]:
            run_id = pending.pop(async_result)
            try:
                result = SchoolResult.from_outcome(async_result.get(propagate=True))
            except Exception as exc:
                result = _result_of(run_id, one_line(exc))
                _mark_failed([run_id], result.error)
            results.append(result)
            on_result(result)
        if pending:
            if deadline is not None and time.monotonic() > deadline:
                for run_id in pending.values():
                    result = _result_of(run_id, NO_WORKER)
                    results.append(result)
                    on_result(result)
                _mark_failed(list(pending.values()), NO_WORKER)
                break
            time.sleep(poll)
    return results
