"""The one background job runner: claim -> run -> store -> finish, the same for every kind of job.

A job is a row whose `state` is a `RunState` (an `AllocationRun`, a `CapacityAdvice`) plus a registered
`JobKind` that says what to do with it. `submit(kind, id, options)` hands `execute(kind, id, database_url,
**options)` to a backend: the Celery task `webapp.jobs.run` when `CELERY_BROKER_URL` is set, else this process's
pool of spawned worker processes (`ALLOCATION_WORKERS` of them), or this very process when `JOBS_INLINE` is set
(tests). Every backend calls that same plain function, which never raises for the job's own errors: they end as
a failed row with a one-line `error` (`one_line`), so one school's failure never stops the others.

Concurrency contract (who locks what, which transaction owns which write):

- claim: `UPDATE ... SET state='running' WHERE id=? AND state='queued'`, alone in its transaction. The row lock
  of that UPDATE picks the one worker that runs the job; a job cancelled while queued, or already taken by
  another worker, matches no row and is left alone.
- monitor (kinds with `heartbeat`): one thread per job writes the latest stage, progress and best coverage (at
  most twice a second) and the heartbeat (every few seconds) in short transactions guarded by `state IN
  ('running','cancelling')`, and reads the cancel flag (`cancelling`) every half second. The solver only asks
  `Job.should_stop`, which returns what the monitor last read: no other thread polls the database.
- store: a kind writes its answer in ONE transaction of the app's session, opened by `Job.claim_store`: the
  monitor is stopped, then `UPDATE ... WHERE id=? AND state='running'` takes the row lock (on SQLite the
  database lock) until the commit, so a cancel that comes later finds the job done and one that came earlier
  wins there (`JobCancelled`). A crash or a cancel therefore leaves no partial answer behind.
- finish: failed and cancelled are written by `finish` in their own transaction, guarded by the states the job
  may still be in, so a final state is never overwritten.
- cancel (`cancel_run`): `queued -> cancelled` at once (the local future is dropped too), `running ->
  cancelling` for the monitor to read; each a single guarded UPDATE.
- stale heartbeat (`refresh_stale`): a job still running whose heartbeat is older than `RUN_STALE_SECONDS` is
  marked failed with `STALE_ERROR` (its worker died), guarded by that same old heartbeat so a job that has just
  beaten stays running.

The solver is a MIP on OR-Tools' linear solver wrapper (SCIP by default, which runs single-threaded; HiGHS uses
the threads it is given): `solver_threads` shares the cores among the jobs that run side by side.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import group
from celery.result import AsyncResult
from flask import Flask, current_app, has_app_context
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from scheduler.solve import SolveCancelled
from webapp.celery_app import celery, configure
from webapp.extensions import db, new_app, normalise_database_url, settle_worker_heap
from webapp.models import AllocationRun, RunState, utcnow

logger = logging.getLogger(__name__)

TASK_NAME = "webapp.jobs.run"
STALE_ERROR = "stale"
"""`error` of a job whose worker stopped sending heartbeats (shown translated)."""

MONITOR_INTERVAL = 0.5
HEARTBEAT_INTERVAL = 3.0
STILL_RUNNING = (RunState.RUNNING, RunState.CANCELLING)


# ------------------------------------------------------------------------------------------ kinds


class UnknownJobKind(LookupError):
    """A job kind nobody registered: refused before anything is queued or claimed."""


class JobCancelled(Exception):
    """Raised inside a job whose cancel was asked (the solver raises its own `SolveCancelled`, treated alike)."""


def _no_details(job_id: int) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class JobKind:
    """What one kind of job does; the runner does the rest (claim, monitor, finish, errors, backends).

    `run(job, **options)` builds, computes and stores (through `job.claim_store()`, then one commit that sets
    the row's state to done); it may return details for the outcome. `describe(job_id)` adds details known
    before the job runs (also for a job that was not claimed). `model` is the table of the job's rows: it has
    `id`, `state`, `error` and `finished_at`; kinds with `heartbeat` also need `stage`, `progress` and
    `heartbeat_at`.
    """

    name: str
    model: Any
    run: Callable[..., dict[str, Any] | None]
    describe: Callable[[int], dict[str, Any]] = _no_details
    heartbeat: bool = False

    def columns(self, **values: Any) -> dict[str, Any]:
        """The `values` whose columns the kind's table has."""
        table = self.model.__table__.columns
        return {name: value for name, value in values.items() if name in table}


KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    """Add a kind to the registry (once per name)."""
    known = KINDS.get(kind.name)
    if known is not None and known is not kind:
        raise ValueError(f"job kind {kind.name!r} is registered already")
    KINDS[kind.name] = kind
    return kind


def kind_of(name: str) -> JobKind:
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownJobKind(f"no job kind {name!r} (known: {', '.join(sorted(KINDS))})") from None


# ------------------------------------------------------------------------------------------ configuration


def _config_int(name: str, default: int) -> int:
    return int(current_app.config.get(name) or os.environ.get(name) or default)


def pool_workers() -> int:
    """Jobs the local pool runs side by side (`ALLOCATION_WORKERS`, default 1)."""
    return max(1, _config_int("ALLOCATION_WORKERS", 1))


def celery_broker() -> str:
    return str(current_app.config.get("CELERY_BROKER_URL") or os.environ.get("CELERY_BROKER_URL") or "")


def inline_jobs() -> bool:
    """`JOBS_INLINE`: run each job in the submitting process, before `submit` returns (tests)."""
    return bool(current_app.config.get("JOBS_INLINE"))


def solver_threads(parallel_jobs: int) -> int:
    """Solver threads per job, so that `parallel_jobs` jobs running side by side do not oversubscribe the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, parallel_jobs))


def job_threads() -> int:
    """Solver threads for a job submitted from this app: `ALLOCATION_SOLVER_WORKERS`, else a share of the cores
    among the jobs that run side by side (the local pool's size, or `CELERY_WORKER_CONCURRENCY`)."""
    parallel = pool_workers() if not celery_broker() else _config_int("CELERY_WORKER_CONCURRENCY", 1)
    return int(current_app.config.get("ALLOCATION_SOLVER_WORKERS") or solver_threads(parallel))


def database_url() -> str:
    return db.engine.url.render_as_string(hide_password=False)


# ------------------------------------------------------------------------------------------ small helpers


def rowcount(result: Any) -> int:
    """Rows matched by an UPDATE or DELETE (ORM `execute` types its result without `rowcount`)."""
    return int(result.rowcount)


def one_line(exc: BaseException) -> str:
    """An error as one short line for the job's row: the type and the first line of the message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:300]


# ------------------------------------------------------------------------------------------ the row's states


def claim(engine: Engine, kind: JobKind, job_id: int) -> bool:
    """queued -> running, in its own transaction; False when the job is not (or no longer) queued."""
    model, now = kind.model, utcnow()
    with engine.begin() as conn:
        return bool(conn.execute(
            update(model).where(model.id == job_id, model.state == RunState.QUEUED)
            .values(state=RunState.RUNNING, **kind.columns(stage="building", started_at=now, heartbeat_at=now))
        ).rowcount)


def finish(engine: Engine, model: Any, job_id: int, state: RunState, error: str | None, *,
           from_states: tuple[RunState, ...] = STILL_RUNNING, before: Any = None) -> bool:
    """Write a final state (failed or cancelled) if the job is still in one of `from_states`."""
    query = update(model).where(model.id == job_id, model.state.in_(from_states))
    if before is not None:
        query = query.where(db.func.coalesce(model.heartbeat_at, model.started_at, model.created_at) < before)
    values: dict[str, Any] = {"state": state, "error": error, "finished_at": utcnow()}
    if "stage" in model.__table__.columns:
        values["stage"] = state
    with engine.begin() as conn:
        return bool(conn.execute(query.values(**values)).rowcount)


def cancel_run(run: AllocationRun) -> str:
    """Ask a run to stop: a queued run is cancelled at once, a running one at the job's next check.

    Returns the run's state afterwards ("cancelled", "cancelling", or a final state it had already reached).
    """
    with db.engine.begin() as conn:
        cancelled = conn.execute(
            update(AllocationRun).where(AllocationRun.id == run.id, AllocationRun.state == RunState.QUEUED)
            .values(state=RunState.CANCELLED, stage=RunState.CANCELLED, finished_at=utcnow())
        ).rowcount
        if not cancelled:
            conn.execute(
                update(AllocationRun).where(AllocationRun.id == run.id, AllocationRun.state == RunState.RUNNING)
                .values(state=RunState.CANCELLING)
            )
    future = _futures.get((AllocationRun.__tablename__, run.id))
    if cancelled and future is not None:
        future.cancel()
    db.session.refresh(run)
    return run.state


def stale_after() -> timedelta:
    return timedelta(seconds=float(current_app.config.get("RUN_STALE_SECONDS", 60)))


def refresh_stale(runs: list[AllocationRun]) -> None:
    """Mark failed every running run whose worker stopped sending heartbeats (it was killed or crashed)."""
    limit = utcnow() - stale_after()
    changed = False
    for run in runs:
        if run.state not in STILL_RUNNING:
            continue
        last = run.heartbeat_at or run.started_at or run.created_at
        if last is not None and last < limit:
            finish(db.engine, AllocationRun, run.id, RunState.FAILED, STALE_ERROR, before=limit)
            changed = True
    if changed:
        for run in runs:
            db.session.refresh(run)


# ------------------------------------------------------------------------------------------ the job


_worker_apps: dict[str, Flask] = {}


@contextlib.contextmanager
def app_context(url: str) -> Iterator[Flask]:
    """An app context on `url`: the current one when it already points there, else a worker app."""
    url = normalise_database_url(url)
    if has_app_context() and current_app.config["SQLALCHEMY_DATABASE_URI"] == url:
        yield current_app._get_current_object()  # type: ignore[attr-defined]
        return
    app = _worker_apps.get(url)
    if app is None:
        app = new_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secrets.token_hex(16)})
        _worker_apps[url] = app
        if _pool_worker:
            settle_worker_heap()
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()


class Monitor(threading.Thread):
    """Writes progress and heartbeats, reads the cancel flag; the only thread of the job that polls."""

    def __init__(self, engine: Engine, model: Any, job_id: int) -> None:
        super().__init__(name=f"{model.__tablename__}-{job_id}-monitor", daemon=True)
        self.engine, self.model, self.job_id = engine, model, job_id
        self.cancel_requested = False
        self._latest: dict[str, Any] = {}
        self._written: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._last_heartbeat = 0.0

    def report(self, **values: Any) -> None:
        with self._lock:
            self._latest.update(values)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()

    def run(self) -> None:
        while not self._stop_event.wait(MONITOR_INTERVAL):
            try:
                self.tick()
            except Exception:  # a busy database must not kill the job; the next tick tries again
                logger.warning("%s %s: progress update failed", self.model.__tablename__, self.job_id,
                               exc_info=True)

    def tick(self) -> None:
        model = self.model
        with self._lock:
            changes = {k: v for k, v in self._latest.items() if self._written.get(k) != v}
        now = time.monotonic()
        if changes or now - self._last_heartbeat >= HEARTBEAT_INTERVAL:
            with self.engine.begin() as conn:
                conn.execute(update(model).where(model.id == self.job_id, model.state.in_(STILL_RUNNING))
                             .values(heartbeat_at=utcnow(), **changes))
            self._written.update(changes)
            self._last_heartbeat = now
        with self.engine.connect() as conn:
            state = conn.scalar(select(model.state).where(model.id == self.job_id))
        if state == RunState.CANCELLING:
            self.cancel_requested = True


@dataclass
class Job:
    """A claimed job as its kind sees it."""

    kind: JobKind
    id: int
    engine: Engine
    monitor: Monitor | None = field(default=None, repr=False)

    def report(self, **values: Any) -> None:
        """Progress columns (stage, progress, best_coverage, demand) for the monitor to write."""
        if self.monitor is not None:
            self.monitor.report(**values)

    def should_stop(self) -> bool:
        return self.monitor is not None and self.monitor.cancel_requested

    def stop_monitor(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()

    def claim_store(self) -> None:
        """Open the transaction that stores the answer: the row stays locked until the kind commits.

        Raises `JobCancelled` when the job was cancelled meanwhile (nothing is written then).
        """
        self.stop_monitor()
        model = self.kind.model
        claimed = rowcount(db.session.execute(
            update(model).where(model.id == self.id, model.state == RunState.RUNNING)
            .values(state=RunState.RUNNING, **self.kind.columns(stage="storing"))
            .execution_options(synchronize_session=False)
        ))
        if not claimed:
            db.session.rollback()
            raise JobCancelled("cancelled before the answer was stored")


def execute(kind_name: str, job_id: int, database_url: str, **options: Any) -> dict[str, Any]:
    """Claim, run, store and finish one job; returns its outcome (plain values: it crosses processes).

    The outcome has `kind`, `id`, `state` (the row's state afterwards), `error`, `seconds`, and the kind's own
    details. A job that was not queued is left alone and reported in the state it has.
    """
    kind = kind_of(kind_name)
    started = time.monotonic()
    with app_context(database_url):
        engine = db.engine
        claimed = claim(engine, kind, job_id)
        outcome: dict[str, Any] = {"kind": kind.name, "id": job_id, "error": "", **kind.describe(job_id)}
        if not claimed:  # cancelled while queued, taken by another worker, or gone
            with engine.connect() as conn:
                state = conn.scalar(select(kind.model.state).where(kind.model.id == job_id))
            if state is None:
                outcome.update(state=RunState.FAILED.value, error=f"{kind.name} job {job_id} not found")
            else:
                outcome["state"] = str(state)
            return outcome
        job = Job(kind, job_id, engine, Monitor(engine, kind.model, job_id) if kind.heartbeat else None)
        if job.monitor is not None:
            job.monitor.start()
        try:
            outcome.update(kind.run(job, **options) or {})
            outcome["state"] = RunState.DONE.value
        except (JobCancelled, SolveCancelled):
            job.stop_monitor()
            db.session.rollback()
            logger.info("%s job %s cancelled", kind.name, job_id)
            finish(engine, kind.model, job_id, RunState.CANCELLED, None)
            outcome["state"] = RunState.CANCELLED.value
        except Exception as exc:  # the job's own failure: recorded on its row, never raised to the backend
            job.stop_monitor()
            db.session.rollback()
            logger.exception("%s job %s failed", kind.name, job_id)
            outcome.update(state=RunState.FAILED.value, error=one_line(exc))
            finish(engine, kind.model, job_id, RunState.FAILED, outcome["error"])
        finally:
            job.stop_monitor()
        outcome["seconds"] = round(time.monotonic() - started, 2)
        return outcome


# ------------------------------------------------------------------------------------------ backends


_pool: ProcessPoolExecutor | None = None
_pool_pid: int | None = None
_pool_worker = False
"""True in a process of the local pool (set by `_pool_worker_started`): its worker apps settle its heap."""
_pool_size = 0
_futures: dict[tuple[str, int], Future[dict[str, Any]]] = {}
_pool_lock = threading.Lock()


def local_pool(size: int | None = None, *, renew: bool = False) -> ProcessPoolExecutor:
    """This process's pool of spawned workers, created on first use and again after a fork, a broken pool,
    or when `size` (default `pool_workers()`) changes."""
    global _pool, _pool_pid, _pool_size
    size = size or pool_workers()
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid() or renew or size != _pool_size:
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False, cancel_futures=True)
            _pool = ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_pool_worker_started)
            _pool_pid, _pool_size = os.getpid(), size
        return _pool


def _pool_worker_started() -> None:
    global _pool_worker
    _pool_worker = True


def shutdown_pool(wait: bool = True) -> None:
    """Stop the local pool (tests, the end of a CLI batch); the next job creates a new one."""
    global _pool, _pool_pid, _pool_size
    with _pool_lock:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=wait, cancel_futures=True)
        _pool, _pool_pid, _pool_size = None, None, 0
        _futures.clear()


def _forget(key: tuple[str, int]) -> Callable[[Future[dict[str, Any]]], None]:
    def done(future: Future[dict[str, Any]]) -> None:
        _futures.pop(key, None)
        if not future.cancelled() and future.exception() is not None:
            logger.error("job %s %s: the worker failed: %s", *key, future.exception())

    return done


def submit_local(kind_name: str, job_id: int, url: str, options: dict[str, Any], *,
                 pool_size: int | None = None) -> Future[dict[str, Any]]:
    """Run the job in the local pool; the future's result is the job's outcome."""
    kind = kind_of(kind_name)
    try:
        future = local_pool(pool_size).submit(execute, kind.name, job_id, url, **options)
    except (BrokenProcessPool, RuntimeError):
        future = local_pool(pool_size, renew=True).submit(execute, kind.name, job_id, url, **options)
    key = (kind.model.__tablename__, job_id)
    _futures[key] = future
    future.add_done_callback(_forget(key))
    return future


@celery.task(name=TASK_NAME)  # type: ignore[untyped-decorator,unused-ignore]
def run_job_task(kind_name: str, job_id: int, database_url: str, options: dict[str, Any]) -> dict[str, Any]:
    """The one Celery task: any kind of job, run by the same `execute` as the local pool."""
    return execute(kind_name, job_id, database_url, **options)


def submit_celery(jobs: list[tuple[str, int, dict[str, Any]]], url: str) -> list[AsyncResult]:
    """Queue the jobs (kind, id, options) on the broker named by the app's config; returns their results."""
    for kind_name, _, _ in jobs:
        kind_of(kind_name)
    configure(celery, current_app.config)
    signatures = [run_job_task.s(kind_name, job_id, url, options) for kind_name, job_id, options in jobs]
    return list(group(signatures).apply_async().results)


def submit(kind_name: str, job_id: int, options: dict[str, Any]) -> None:
    """Hand one queued job to the configured backend: inline, Celery, or the local pool.

    When the backend cannot take it (the broker is down, the pool cannot start), the job is marked failed
    with the reason, instead of staying queued for ever.
    """
    kind = kind_of(kind_name)
    url = database_url()
    try:
        if inline_jobs():
            execute(kind.name, job_id, url, **options)
        elif celery_broker():
            submit_celery([(kind.name, job_id, options)], url)
        else:
            submit_local(kind.name, job_id, url, options)
    except Exception as exc:
        logger.exception("%s job %s could not be started", kind.name, job_id)
        db.session.rollback()
        finish(db.engine, kind.model, job_id, RunState.FAILED, one_line(exc), from_states=(RunState.QUEUED,))
