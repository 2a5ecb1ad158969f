"""City-scale allocation: every school's current term solved as a batch, plus the bureau's background jobs.

A batch is a set of draft runs sharing `run.stats["batch"]`. `prepare_batch` records one queued run per school
(or, on resume, re-queues the batch's unfinished runs and skips schools whose run is done); the runs are then
solved by a local process pool (`run_local`) or, when `CELERY_BROKER_URL` is set, by Celery tasks over Redis
(`run_celery`). Each school is solved by the same plain function, `allocate_school`, in another process: it
catches every error of its school, so one school never stops the others. A worker process that dies takes only
the school it was solving with it (that run is marked failed; the queued ones go to a fresh pool).

`flask --app webapp allocate --all | --district NAME [--workers N] [--time-limit S] [--resume]`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import click
from flask import current_app
from sqlalchemy import ColumnElement, func, select, true, update

from webapp.bureau import bp
from webapp.extensions import db
from webapp.models import AllocationRun, CapacityAdvice, District, School, Term, utcnow
from webapp.runs.jobs import app_context

BATCH_KEY = "batch"
HEARTBEAT_SECONDS = 5.0
DEFAULT_TIME_LIMIT = 30.0
TASK_NAME = "webapp.bureau.allocate_school"


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
    def proven(self) -> bool:
        """Coverage proven optimal (later levels may still be only feasible)."""
        return self.state == "done" and self.coverage is not None and self.coverage == self.bound


def new_batch_id() -> str:
    return utcnow().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def solver_threads(pool_size: int) -> int:
    """CP-SAT threads per school so that `pool_size` schools solved side by side do not oversubscribe."""
    return max(1, (os.cpu_count() or 1) // max(1, pool_size))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:300]


# --------------------------------------------------------------------------- batches in the database


def current_terms(where: ColumnElement[bool] | None = None) -> list[Term]:
    """Each school's current (newest) term, for schools matching `where`, in school-code order."""
    newest = select(func.max(Term.id)).join(School, School.id == Term.school_id)
    newest = newest.where(true() if where is None else where).group_by(Term.school_id)
    return list(
        db.session.scalars(
            select(Term)
            .join(School, School.id == Term.school_id)
            .where(Term.id.in_(newest))
            .order_by(School.code)
        )
    )


def batch_filter(batch_id: str) -> ColumnElement[bool]:
    return AllocationRun.stats[BATCH_KEY].as_string() == batch_id


def latest_batch_id() -> str | None:
    value = db.session.scalar(
        select(AllocationRun.stats[BATCH_KEY].as_string())
        .where(AllocationRun.stats[BATCH_KEY].as_string().is_not(None))
        .order_by(AllocationRun.id.desc())
        .limit(1)
    )
    return str(value) if value else None


def prepare_batch(
    batch_id: str, where: ColumnElement[bool] | None = None, *, created_by: int | None = None, scope: str = ""
) -> tuple[list[int], int]:
    """Queued runs for the schools in `where` without a done run in this batch: (run ids, skipped)."""
    terms = current_terms(where)
    existing: dict[int, AllocationRun] = {}
    for run in db.session.scalars(
        select(AllocationRun).where(batch_filter(batch_id)).order_by(AllocationRun.id)
    ):
        if existing.get(run.term_id) is None or existing[run.term_id].state != "done":
            existing[run.term_id] = run
    run_ids: list[AllocationRun] = []
    skipped = 0
    for term in terms:
        run = existing.get(term.id)
        if run is not None and run.state == "done":
            skipped += 1
            continue
        if run is None:
            run = AllocationRun(
                term_id=term.id, created_by=created_by, stats={BATCH_KEY: batch_id, "scope": scope}
            )
            db.session.add(run)
        run.state, run.stage, run.progress, run.error = "queued", "queued", 0.0, None
        run.started_at = run.finished_at = run.heartbeat_at = None
        run_ids.append(run)
    db.session.commit()
    return [run.id for run in run_ids], skipped


@dataclass
class BatchProgress:
    batch_id: str
    total: int
    done: int
    failed: int
    running: int
    queued: int
    started_at: Any
    eta_seconds: float | None

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done + self.failed >= self.total

    def as_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch_id,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "running": self.running,
            "queued": self.queued,
            "finished": self.finished,
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
        }


def batch_progress(batch_id: str, where: ColumnElement[bool] | None = None) -> BatchProgress:
    """Counts of the batch's runs (in `where`'s schools) by state, and an ETA from the pace so far."""
    query = (
        select(AllocationRun.state, func.count(), func.min(AllocationRun.created_at))
        .join(Term, Term.id == AllocationRun.term_id)
        .join(School, School.id == Term.school_id)
        .where(batch_filter(batch_id), true() if where is None else where)
        .group_by(AllocationRun.state)
    )
    counts: dict[str, int] = {}
    started = None
    for state, count, first in db.session.execute(query):
        counts[state] = int(count)
        started = first if started is None or (first is not None and first < started) else started
    total = sum(counts.values())
    finished = counts.get("done", 0) + counts.get("failed", 0) + counts.get("cancelled", 0)
    eta = None
    if started is not None and 0 < finished < total:
        elapsed = (utcnow() - started).total_seconds()
        eta = elapsed / finished * (total - finished)
    elif total and finished >= total:
        eta = 0.0
    return BatchProgress(
        batch_id,
        total,
        counts.get("done", 0),
        counts.get("failed", 0) + counts.get("cancelled", 0),
        counts.get("running", 0),
        counts.get("queued", 0),
        started,
        eta,
    )


# --------------------------------------------------------------------------- the per-school job


class _Heartbeat(threading.Thread):
    """Refreshes the run's heartbeat so the runs page does not take a long solve for a dead worker."""

    def __init__(self, run_id: int) -> None:
        super().__init__(name=f"batch-run-{run_id}", daemon=True)
        self.engine, self.run_id, self.halt = db.engine, run_id, threading.Event()

    def run(self) -> None:
        while not self.halt.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(Exception), self.engine.begin() as conn:
                conn.execute(
                    update(AllocationRun).where(AllocationRun.id == self.run_id).values(heartbeat_at=utcnow())
                )

    def stop(self) -> None:
        self.halt.set()
        self.join()


def allocate_school(
    run_id: int, database_url: str, time_limit: float = DEFAULT_TIME_LIMIT, workers: int = 1
) -> dict[str, Any]:
    """Solve one queued batch run and store it as a draft; never raises for the school's own errors."""
    from scheduler.solve import SolverConfig, solve
    from webapp.services import store_solution, term_to_instance

    started = time.monotonic()
    with app_context(database_url):
        engine = db.engine
        now = utcnow()
        with engine.begin() as conn:
            claimed = conn.execute(
                update(AllocationRun)
                .where(AllocationRun.id == run_id, AllocationRun.state == "queued")
                .values(state="running", stage="building", started_at=now, heartbeat_at=now)
            ).rowcount
        run = db.session.get(AllocationRun, run_id)
        if run is None:
            return dataclasses.asdict(SchoolResult(run_id, "", "", "failed", error="run not found"))
        school = run.term.school
        result = SchoolResult(run_id, school.code, school.name, run.state)
        if not claimed:
            return dataclasses.asdict(result)
        heartbeat = _Heartbeat(run_id)
        heartbeat.start()
        try:
            term = run.term
            batch = (run.stats or {}).get(BATCH_KEY)
            instance = term_to_instance(term)
            db.session.rollback()
            config = SolverConfig(
                time_limit=time_limit, workers=workers, seed=int(term.lottery_seed or 0) % 2**31
            )
            solution = solve(instance, config)
            solution = dataclasses.replace(solution, stats={**solution.stats, BATCH_KEY: batch})
            run = db.session.get(AllocationRun, run_id)
            assert run is not None
            try:
                from webapp.runs.metrics import compute_metrics
            except ImportError:
                pass
            else:
                run.metrics = compute_metrics(instance, solution)
            run.finished_at = utcnow()
            store_solution(run.term, solution, run, instance=instance)
            result.state, result.status = "done", solution.status
            result.coverage, result.bound = solution.objective.coverage, solution.objective.coverage_bound
            result.demand = instance.demand()
        except Exception as exc:  # this school's data or solve failed: record it, keep the batch going
            db.session.rollback()
            result.state, result.error = "failed", _one_line(exc)
            with engine.begin() as conn:
                conn.execute(
                    update(AllocationRun)
                    .where(AllocationRun.id == run_id)
                    .values(state="failed", stage="failed", error=result.error, finished_at=utcnow())
                )
        finally:
            heartbeat.stop()
        result.seconds = round(time.monotonic() - started, 2)
        return dataclasses.asdict(result)


# --------------------------------------------------------------------------- backends


def _mark_failed(run_ids: list[int], error: str) -> None:
    if run_ids:
        db.session.execute(
            update(AllocationRun)
            .where(AllocationRun.id.in_(run_ids))
            .values(state="failed", stage="failed", error=error, finished_at=utcnow())
        )
        db.session.commit()


def _result_of(run_id: int, error: str) -> SchoolResult:
    run = db.session.get(AllocationRun, run_id)
    school = run.term.school if run is not None else None
    return SchoolResult(
        run_id, school.code if school else "", school.name if school else "", "failed", error=error
    )


def run_local(
    run_ids: list[int],
    database_url: str,
    *,
    pool_size: int,
    time_limit: float,
    on_result: Callable[[SchoolResult], None],
) -> list[SchoolResult]:
    """Solve the runs in a local process pool of `pool_size`, reporting each school as it finishes."""
    threads = solver_threads(pool_size)
    results: list[SchoolResult] = []
    todo = list(run_ids)
    while todo:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=pool_size, mp_context=context) as pool:
            pending: dict[Future[dict[str, Any]], int] = {
                pool.submit(allocate_school, run_id, database_url, time_limit, threads): run_id
                for run_id in todo
            }
            todo = []
            broken = False
            while pending:
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in finished:
                    run_id = pending.pop(future)
                    try:
                        result = SchoolResult(**future.result())
                    except BrokenProcessPool:
                        broken = True
                        todo.append(run_id)
                        continue
                    except Exception as exc:
                        result = _result_of(run_id, _one_line(exc))
                        _mark_failed([run_id], result.error)
                    results.append(result)
                    on_result(result)
            if broken:
                # The runs a dead worker had claimed failed with it; the ones still queued go to a fresh pool.
                db.session.expire_all()
                states = dict(
                    db.session.execute(
                        select(AllocationRun.id, AllocationRun.state).where(AllocationRun.id.in_(todo))
                    ).all()
                )
                dead = [run_id for run_id in todo if states.get(run_id) == "running"]
                _mark_failed(dead, "the worker process died")
                for run_id in dead:
                    result = _result_of(run_id, "the worker process died")
                    results.append(result)
                    on_result(result)
                for run_id in todo:
                    if states.get(run_id) not in ("running", "queued"):
                        run = db.session.get(AllocationRun, run_id)
                        result = _result_of(run_id, run.error or "") if run else _result_of(run_id, "")
                        if run is not None and run.state == "done":
                            result.state = "done"
                        results.append(result)
                        on_result(result)
                todo = [run_id for run_id in todo if states.get(run_id) == "queued"]
    return results


def celery_task() -> Any:
    """The Celery task solving one school, registered on `webapp.celery_app.celery` (None without Celery)."""
    return _CELERY_TASK


def _register_celery_task() -> Any:
    try:
        from webapp.celery_app import celery
    except ImportError:
        return None

    @celery.task(name=TASK_NAME)  # type: ignore[misc]
    def allocate_school_task(
        run_id: int, database_url: str, time_limit: float, workers: int
    ) -> dict[str, Any]:
        return allocate_school(run_id, database_url, time_limit, workers)

    return allocate_school_task


_CELERY_TASK = _register_celery_task()


def celery_broker() -> str:
    return str(current_app.config.get("CELERY_BROKER_URL") or os.environ.get("CELERY_BROKER_URL") or "")


def submit_celery(run_ids: list[int], database_url: str, *, time_limit: float, workers: int) -> list[Any]:
    """Queue one task per school on the configured broker; returns the Celery results."""
    from celery import group

    from webapp.celery_app import celery, configure

    task = celery_task()
    if task is None:
        raise RuntimeError("Celery is not available (webapp.celery_app is missing)")
    configure(celery, current_app.config)
    signatures = [task.s(run_id, database_url, time_limit, workers) for run_id in run_ids]
    return list(group(signatures).apply_async().results)


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
    """Solve the runs as a Celery group (a task per school) and wait, reporting each school as it finishes."""
    pending = dict(
        zip(
            submit_celery(run_ids, database_url, time_limit=time_limit, workers=workers), run_ids, strict=True
        )
    )
    results: list[SchoolResult] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    while pending:
        for async_result in [r for r in pending if r.ready()]:
            run_id = pending.pop(async_result)
            try:
                result = SchoolResult(**async_result.get(propagate=True))
            except Exception as exc:
                result = _result_of(run_id, _one_line(exc))
                _mark_failed([run_id], result.error)
            results.append(result)
            on_result(result)
        if pending:
            if deadline is not None and time.monotonic() > deadline:
                for run_id in pending.values():
                    result = _result_of(run_id, "no Celery worker finished this school in time")
                    results.append(result)
                    on_result(result)
                _mark_failed(list(pending.values()), "no Celery worker finished this school in time")
                break
            time.sleep(poll)
    return results


# --------------------------------------------------------------------------- background jobs for pages


_pool: ProcessPoolExecutor | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()


def background_pool() -> ProcessPoolExecutor:
    """The web process's pool for batch runs and advice, created on first use (again after a fork)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            size = int(current_app.config.get("BUREAU_POOL_SIZE") or max(1, (os.cpu_count() or 1) // 2))
            _pool = ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context("spawn"))
            _pool_pid = os.getpid()
        return _pool


def shutdown_background_pool() -> None:
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=True, cancel_futures=True)
        _pool, _pool_pid = None, None


def _database_url() -> str:
    return db.engine.url.render_as_string(hide_password=False)


def start_batch(where: ColumnElement[bool], *, user_id: int | None, scope: str) -> str:
    """Queue a batch from a page: Celery when configured, else the local pool (inline in tests)."""
    batch_id = new_batch_id()
    run_ids, _ = prepare_batch(batch_id, where, created_by=user_id, scope=scope)
    time_limit = float(current_app.config.get("BUREAU_TIME_LIMIT", DEFAULT_TIME_LIMIT))
    url = _database_url()
    if current_app.config.get("BUREAU_INLINE_JOBS"):
        for run_id in run_ids:
            allocate_school(run_id, url, time_limit, 1)
    elif celery_broker():
        submit_celery(run_ids, url, time_limit=time_limit, workers=1)
    else:
        pool = background_pool()
        threads = solver_threads(pool._max_workers)
        for run_id in run_ids:
            pool.submit(allocate_school, run_id, url, time_limit, threads)
    return batch_id


def compute_advice(
    advice_id: int, database_url: str, time_limit: float = DEFAULT_TIME_LIMIT, workers: int = 1
) -> str:
    """The advice job: what-if advice for the term, stored as JSON; returns the final state."""
    from scheduler.solve import SolverConfig
    from scheduler.whatif import advice_to_json, advise
    from webapp.services import term_to_instance

    with app_context(database_url):
        with db.engine.begin() as conn:
            claimed = conn.execute(
                update(CapacityAdvice)
                .where(CapacityAdvice.id == advice_id, CapacityAdvice.state == "queued")
                .values(state="running")
            ).rowcount
        if not claimed:
            return "skipped"
        try:
            row = db.session.get(CapacityAdvice, advice_id)
            assert row is not None
            instance = term_to_instance(row.term)
            db.session.rollback()
            advice = advise(instance, SolverConfig(time_limit=time_limit, workers=workers))
            row = db.session.get(CapacityAdvice, advice_id)
            assert row is not None
            row.result, row.state, row.finished_at = advice_to_json(advice), "done", utcnow()
            db.session.commit()
            return "done"
        except Exception as exc:  # shown on the advice page as a failed computation
            db.session.rollback()
            with db.engine.begin() as conn:
                conn.execute(
                    update(CapacityAdvice)
                    .where(CapacityAdvice.id == advice_id)
                    .values(state="failed", error=_one_line(exc), finished_at=utcnow())
                )
            return "failed"


def start_advice(term: Term, user_id: int | None) -> CapacityAdvice:
    row = CapacityAdvice(term_id=term.id, created_by=user_id, state="queued")
    db.session.add(row)
    db.session.commit()
    time_limit = float(current_app.config.get("BUREAU_ADVICE_TIME_LIMIT", DEFAULT_TIME_LIMIT))
    if current_app.config.get("BUREAU_INLINE_JOBS"):
        compute_advice(row.id, _database_url(), time_limit, 1)
    else:
        pool = background_pool()
        pool.submit(compute_advice, row.id, _database_url(), time_limit, solver_threads(pool._max_workers))
    db.session.refresh(row)
    return row


# --------------------------------------------------------------------------- the CLI


def print_summary(
    results: list[SchoolResult], *, skipped: int, seconds: float, echo: Callable[[str], None]
) -> None:
    done = [r for r in results if r.state == "done"]
    failed = [r for r in results if r.state != "done"]
    proven = sum(1 for r in done if r.proven)
    echo("")
    echo(f"{'schools':<28}{len(results) + skipped}")
    echo(f"{'done':<28}{len(done)}")
    echo(f"{'failed':<28}{len(failed)}")
    echo(f"{'skipped (done before)':<28}{skipped}")
    echo(f"{'coverage proven optimal':<28}{proven}/{len(done)}")
    echo(f"{'wall time':<28}{seconds:.1f} s")
    if failed:
        echo("")
        echo(f"{'school':<20} {'run':>6}  error")
        for r in sorted(failed, key=lambda r: r.school_code):
            echo(f"{r.school_code:<20} {r.run_id:>6}  {r.error or r.state}")


def allocate_batch(
    where: ColumnElement[bool], *, batch_id: str, pool_size: int, time_limit: float, scope: str
) -> tuple[list[SchoolResult], int]:
    """Prepare and solve a batch with a terminal progress bar; returns (results, schools skipped)."""
    run_ids, skipped = prepare_batch(batch_id, where, scope=scope)
    url = _database_url()
    results: list[SchoolResult] = []
    with click.progressbar(
        length=len(run_ids),
        label="allocating",
        show_eta=True,
        show_pos=True,
        file=sys.stderr,
        item_show_func=lambda r: r,
    ) as bar:

        def report(result: SchoolResult) -> None:
            bar.update(1, f"{result.school_code} {result.state}")

        if celery_broker():
            results = run_celery(
                run_ids, url, time_limit=time_limit, workers=solver_threads(pool_size), on_result=report
            )
        else:
            results = run_local(run_ids, url, pool_size=pool_size, time_limit=time_limit, on_result=report)
    return results, skipped


@bp.cli.command("allocate")
@click.option("--all", "all_schools", is_flag=True, help="every school of the city")
@click.option("--district", "district_name", default=None, help="the schools of one district")
@click.option("--workers", type=int, default=None, help="schools solved side by side (default: cpu count)")
@click.option(
    "--time-limit", type=float, default=DEFAULT_TIME_LIMIT, show_default=True, help="seconds per school"
)
@click.option("--resume", is_flag=True, help="continue the latest batch, skipping schools already done")
@click.option("--batch", "batch_id", default=None, help="the batch to resume (default: the latest)")
def allocate_command(
    all_schools: bool,
    district_name: str | None,
    workers: int | None,
    time_limit: float,
    resume: bool,
    batch_id: str | None,
) -> None:
    """Allocate every school's current term (draft runs), in parallel, with a summary at the end."""
    if all_schools == bool(district_name):
        raise click.UsageError("give exactly one of --all or --district NAME")
    where: ColumnElement[bool] = true()
    scope = "city"
    if district_name:
        district = db.session.scalar(select(District).where(District.name == district_name))
        if district is None:
            raise click.UsageError(f"no district named {district_name!r}")
        where, scope = School.district_id == district.id, f"district:{district.id}"
    if resume:
        batch_id = batch_id or latest_batch_id()
        if batch_id is None:
            raise click.UsageError("--resume: no earlier batch to resume")
    else:
        batch_id = batch_id or new_batch_id()
    pool_size = max(1, workers or os.cpu_count() or 1)
    click.echo(
        f"batch {batch_id}: {pool_size} schools at a time, {solver_threads(pool_size)} solver thread(s) "
        f"each, {time_limit:g} s per school" + (" (Celery)" if celery_broker() else "")
    )
    started = time.monotonic()
    results, skipped = allocate_batch(
        where, batch_id=batch_id, pool_size=pool_size, time_limit=time_limit, scope=scope
    )
    print_summary(results, skipped=skipped, seconds=time.monotonic() - started, echo=click.echo)
    if any(r.state != "done" for r in results):
        sys.exit(1)
