"""Allocation runs as background jobs: a local process pool by default, Celery on Redis when configured.

`start_run` records a queued run and hands `run_allocation(run_id, database_url, ...)` to a backend; both
backends call that same plain function in another process. The job talks to the database in three ways:

- a monitor thread writes the latest stage, progress and best coverage (at most twice a second), refreshes the
  heartbeat every few seconds and reads the cancel flag (state "cancelling") every half second;
- the solver asks `should_stop`, which only returns what the monitor last read;
- the answer is written with `services.store_solution` plus the metrics in ONE transaction, so a crash or a
  cancel leaves no assignments behind.

A run still "running" whose heartbeat is older than `RUN_STALE_SECONDS` is shown as failed (the worker died).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, select, update
from sqlalchemy.engine import Engine

from scheduler import domain
from scheduler.solve import SolveCancelled, SolverConfig, solve
from webapp import audit
from webapp.extensions import db
from webapp.models import AllocationRun, Term, User, utcnow
from webapp.runs.metrics import compute_metrics

logger = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "running", "cancelling")
FINAL_STATES = ("done", "failed", "cancelled")
STALE_ERROR = "stale"
"""`AllocationRun.error` for a run whose worker stopped sending heartbeats (shown translated)."""

MONITOR_INTERVAL = 0.5
HEARTBEAT_INTERVAL = 3.0
LEVEL_STAGES = ("coverage", "stability", "preference", "max_load", "staffing")


# ------------------------------------------------------------------------------------------ configuration


def _config_int(name: str, default: int) -> int:
    return int(current_app.config.get(name) or os.environ.get(name) or default)


def pool_workers() -> int:
    return max(1, _config_int("ALLOCATION_WORKERS", 1))


def solver_workers(parallel_jobs: int) -> int:
    """CP-SAT threads per job, so that the jobs running side by side do not oversubscribe the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, parallel_jobs))


def celery_broker() -> str:
    return str(current_app.config.get("CELERY_BROKER_URL") or os.environ.get("CELERY_BROKER_URL") or "")


def job_options(term: Term) -> dict[str, Any]:
    """Keyword arguments for `run_allocation`, read from the app config (plain values: they cross processes)."""
    config = current_app.config
    parallel = pool_workers() if not celery_broker() else _config_int("CELERY_WORKER_CONCURRENCY", 1)
    options: dict[str, Any] = {
        "time_limit": float(config.get("ALLOCATION_TIME_LIMIT", 60.0)),
        "workers": int(config.get("ALLOCATION_SOLVER_WORKERS") or solver_workers(parallel)),
        "seed": int(term.lottery_seed or 0) % (2**31),
    }
    if config.get("TESTING") and config.get("ALLOCATION_FAIL_AT"):
        options["fail_at"] = str(config["ALLOCATION_FAIL_AT"])
    return options


# ------------------------------------------------------------------------------------------ starting


_pool: ProcessPoolExecutor | None = None
_pool_pid: int | None = None
_futures: dict[int, Future[str]] = {}
_pool_lock = threading.Lock()


def _local_pool(renew: bool = False) -> ProcessPoolExecutor:
    """The app process's pool, created on first use (and again after a fork or a broken pool)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid() or renew:
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False, cancel_futures=True)
            _pool = ProcessPoolExecutor(max_workers=pool_workers(), mp_context=multiprocessing.get_context("spawn"))
            _pool_pid = os.getpid()
        return _pool


def shutdown_pool(wait: bool = True) -> None:
    """Stop the local pool (tests and shutdown); a later `start_run` creates a new one."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=wait, cancel_futures=True)
        _pool, _pool_pid = None, None
        _futures.clear()


def _forget(run_id: int) -> Any:
    def done(future: Future[str]) -> None:
        _futures.pop(run_id, None)
        if not future.cancelled() and future.exception() is not None:
            logger.error("allocation run %s: the worker failed: %s", run_id, future.exception())

    return done


def database_url() -> str:
    return db.engine.url.render_as_string(hide_password=False)


def submit(run_id: int, options: dict[str, Any]) -> None:
    """Hand the run to Celery when a broker is configured, else to the local process pool."""
    url = database_url()
    if celery_broker():
        from webapp.celery_app import submit_allocation

        submit_allocation(current_app._get_current_object(), run_id, url, options)  # type: ignore[attr-defined]
        return
    try:
        future = _local_pool().submit(run_allocation, run_id, url, **options)
    except (BrokenProcessPool, RuntimeError):
        future = _local_pool(renew=True).submit(run_allocation, run_id, url, **options)
    _futures[run_id] = future
    future.add_done_callback(_forget(run_id))


def start_run(term: Term, user: User) -> AllocationRun:
    """Record a queued run for `term`, commit, and start the job; returns at once."""
    run = AllocationRun(term_id=term.id, created_by=user.id, state="queued", stage="queued", progress=0.0)
    db.session.add(run)
    db.session.flush()
    audit.record("run.start", f"run:{run.id}", {"term": term.name}, user_id=user.id, school_id=term.school_id)
    db.session.commit()
    options = job_options(term)
    try:
        submit(run.id, options)
    except Exception as exc:  # the broker is down, the pool cannot start: say so on the run, not with a 500
        logger.exception("allocation run %s could not be started", run.id)
        db.session.rollback()
        _finish(db.engine, run.id, "failed", _one_line(exc), from_states=("queued",))
    db.session.refresh(run)
    return run


def cancel_run(run: AllocationRun) -> str:
    """Ask a run to stop: a queued run is cancelled at once, a running one at the job's next check.

    Returns the run's state afterwards ("cancelled", "cancelling", or a final state it had already reached).
    """
    engine = db.engine
    with engine.begin() as conn:
        now = utcnow()
        cancelled = conn.execute(
            update(AllocationRun).where(AllocationRun.id == run.id, AllocationRun.state == "queued")
            .values(state="cancelled", stage="cancelled", finished_at=now)
        ).rowcount
        if not cancelled:
            conn.execute(
                update(AllocationRun).where(AllocationRun.id == run.id, AllocationRun.state == "running")
                .values(state="cancelling")
            )
    future = _futures.get(run.id)
    if cancelled and future is not None:
        future.cancel()
    db.session.refresh(run)
    return run.state


# ------------------------------------------------------------------------------------------ reading state


def stale_after() -> timedelta:
    return timedelta(seconds=float(current_app.config.get("RUN_STALE_SECONDS", 60)))


def refresh_stale(runs: list[AllocationRun]) -> None:
    """Mark failed every running run whose worker stopped sending heartbeats (it was killed or crashed)."""
    limit = utcnow() - stale_after()
    changed = False
    for run in runs:
        if run.state not in ("running", "cancelling"):
            continue
        last = run.heartbeat_at or run.started_at or run.created_at
        if last is not None and last < limit:
            _finish(db.engine, run.id, "failed", STALE_ERROR, from_states=("running", "cancelling"),
                    before=limit)
            changed = True
    if changed:
        for run in runs:
            db.session.refresh(run)


# ------------------------------------------------------------------------------------------ the job


_worker_apps: dict[str, Flask] = {}


@contextlib.contextmanager
def app_context(url: str) -> Iterator[Flask]:
    """An app context on `url`: the current one when it already points there, else a worker app."""
    from webapp import create_app, normalise_database_url

    url = normalise_database_url(url)
    if has_app_context() and current_app.config["SQLALCHEMY_DATABASE_URI"] == url:
        yield current_app._get_current_object()  # type: ignore[attr-defined]
        return
    app = _worker_apps.get(url)
    if app is None:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secrets.token_hex(16)})
        _worker_apps[url] = app
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()


class _Monitor(threading.Thread):
    """Writes progress and heartbeats, reads the cancel flag; the only thread of the job that polls."""

    def __init__(self, engine: Engine, run_id: int) -> None:
        super().__init__(name=f"run-{run_id}-monitor", daemon=True)
        self.engine, self.run_id = engine, run_id
        self.cancel_requested = False
        self._latest: dict[str, Any] = {}
        self._written: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._last_heartbeat = 0.0

    def report(self, **values: Any) -> None:
        with self._lock:
            self._latest.update(values)

    def should_stop(self) -> bool:
        return self.cancel_requested

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()

    def run(self) -> None:
        while not self._stop_event.wait(MONITOR_INTERVAL):
            try:
                self.tick()
            except Exception:  # a busy database must not kill the job; the next tick tries again
                logger.warning("run %s: progress update failed", self.run_id, exc_info=True)

    def tick(self) -> None:
        with self._lock:
            changes = {k: v for k, v in self._latest.items() if self._written.get(k) != v}
        now = time.monotonic()
        if changes or now - self._last_heartbeat >= HEARTBEAT_INTERVAL:
            with self.engine.begin() as conn:
                conn.execute(update(AllocationRun).where(
                    AllocationRun.id == self.run_id, AllocationRun.state.in_(("running", "cancelling"))
                ).values(heartbeat_at=utcnow(), **changes))
            self._written.update(changes)
            self._last_heartbeat = now
        with self.engine.connect() as conn:
            state = conn.scalar(select(AllocationRun.state).where(AllocationRun.id == self.run_id))
        if state == "cancelling":
            self.cancel_requested = True


class _ProgressReporter:
    """Turns the solver's stage callbacks into a progress fraction and best coverage for the monitor."""

    def __init__(self, monitor: _Monitor, instance: domain.Instance, time_limit: float) -> None:
        self.monitor, self.time_limit = monitor, max(time_limit, 0.1)
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
        self.monitor.report(**values)
        # Between levels we are outside CP-SAT's search, so stopping here is safe and prompt.
        if level_finished and self.monitor.should_stop():
            raise SolveCancelled(stage)


def run_allocation(run_id: int, database_url: str, *, time_limit: float = 60.0, workers: int = 1, seed: int = 0,
                   fail_at: str | None = None) -> str:
    """The job: solve the run's term and store the answer; returns the run's final state.

    `fail_at` ("solve" or "commit") injects a failure for tests: after the solve, or inside the final commit.
    """
    with app_context(database_url):
        engine = db.engine
        now = utcnow()
        with engine.begin() as conn:
            claimed = conn.execute(
                update(AllocationRun).where(AllocationRun.id == run_id, AllocationRun.state == "queued")
                .values(state="running", stage="building", started_at=now, heartbeat_at=now)
            ).rowcount
        if not claimed:  # cancelled while queued, or already taken
            with engine.connect() as conn:
                return str(conn.scalar(select(AllocationRun.state).where(AllocationRun.id == run_id)))

        monitor = _Monitor(engine, run_id)
        monitor.start()
        try:
            run = db.session.get(AllocationRun, run_id)
            if run is None:
                raise LookupError(f"run {run_id} vanished")
            instance = _build_instance(run.term)
            monitor.report(stage="coverage", progress=0.01, demand=instance.demand())
            reporter = _ProgressReporter(monitor, instance, time_limit)
            config = SolverConfig(time_limit=time_limit, workers=workers, seed=seed, should_stop=monitor.should_stop)
            solution = solve(instance, config, progress=reporter)
            if monitor.should_stop():
                raise SolveCancelled("done")
            if fail_at == "solve":
                raise RuntimeError("injected failure after the solve")
            monitor.stop()
            return _store(run_id, instance, solution, fail_at=fail_at)
        except SolveCancelled:
            monitor.stop()
            db.session.rollback()
            logger.info("allocation run %s cancelled", run_id)
            _finish(engine, run_id, "cancelled", None, from_states=("running", "cancelling"))
            return "cancelled"
        except Exception as exc:
            monitor.stop()
            db.session.rollback()
            logger.exception("allocation run %s failed", run_id)
            _finish(engine, run_id, "failed", _one_line(exc), from_states=("running", "cancelling"))
            return "failed"
        finally:
            monitor.stop()


def _build_instance(term: Term) -> domain.Instance:
    instance = term_to_instance_for_run(term)
    db.session.rollback()  # end the read transaction: the final write must not hold an old snapshot
    return instance


def term_to_instance_for_run(term: Term) -> domain.Instance:
    from webapp.services import term_to_instance

    return term_to_instance(term)


def _store(run_id: int, instance: domain.Instance, solution: domain.Solution, *, fail_at: str | None) -> str:
    """Write the solution and metrics in one transaction, unless the run was cancelled meanwhile."""
    from webapp.services import store_solution

    session = db.session
    # The first write takes the row (and on SQLite the database) for this transaction; a cancel that
    # arrives later finds the run done, one that came earlier wins here.
    claimed = rowcount(session.execute(
        update(AllocationRun).where(AllocationRun.id == run_id, AllocationRun.state == "running")
        .values(stage="storing").execution_options(synchronize_session=False)
    ))
    if not claimed:
        session.rollback()
        _finish(db.engine, run_id, "cancelled", None, from_states=("running", "cancelling"))
        return "cancelled"
    run = session.get(AllocationRun, run_id)
    assert run is not None
    run.metrics = compute_metrics(instance, solution)
    run.finished_at = run.heartbeat_at = utcnow()
    if fail_at == "commit":
        def fail(_session: Any) -> None:
            raise RuntimeError("injected failure in the final commit")

        event.listen(session(), "before_commit", fail, once=True)
    store_solution(run.term, solution, run, instance=instance)
    logger.info("allocation run %s done: %s coverage %s/%s", run_id, solution.status,
                solution.objective.coverage, instance.demand())
    return "done"


def _finish(engine: Engine, run_id: int, state: str, error: str | None, *, from_states: tuple[str, ...],
            before: Any = None) -> None:
    query = update(AllocationRun).where(AllocationRun.id == run_id, AllocationRun.state.in_(from_states))
    if before is not None:
        query = query.where(
            db.func.coalesce(AllocationRun.heartbeat_at, AllocationRun.started_at, AllocationRun.created_at) < before
        )
    with engine.begin() as conn:
        conn.execute(query.values(state=state, stage=state, error=error, finished_at=utcnow()))


def rowcount(result: Any) -> int:
    """Rows matched by an UPDATE or DELETE (ORM `execute` types its result without `rowcount`)."""
    return int(result.rowcount)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
