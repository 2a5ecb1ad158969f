"""City-scale allocation: which schools a batch covers, its progress, and the `allocate` command.

A batch is a set of draft runs sharing `run.stats["batch"]`. `prepare_batch` records one queued run per school
(or, on resume, re-queues the batch's unfinished runs and skips schools whose run is done) in one transaction;
each run is then a job of kind "batch" on the one job runner (`webapp.jobs`), which owns claiming, heartbeats,
the single store transaction, failures and the backends: the local pool (`run_local`) or, when
`CELERY_BROKER_URL` is set, Celery over Redis (`run_celery`). One school's failure, even a dead worker process,
fails only that school's run.

`batch_history` lists the batches a bureau user may see and `batch_results` each school's result in one, with
the reason of a failure, for the batch pages.

`flask --app webapp allocate --all | --district NAME [--workers N] [--time-limit S] [--resume]`.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVarTuple

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import ColumnElement, Select, func, select, true

from webapp import run_summary
from webapp.extensions import db
from webapp.jobs import (
    BATCH_KEY,
    CoverageProof,
    SchoolResult,
    celery_broker,
    coverage_short,
    database_url,
    job_threads,
    refresh_stale,
    run_celery,
    run_local,
    solver_threads,
    submit,
)
from webapp.jobs.batch import KIND as BATCH_KIND
from webapp.jobs.batch import batch_options
from webapp.models import AllocationRun, District, RunState, School, Term, User, utcnow

DEFAULT_TIME_LIMIT = 30.0

__all__ = ["BATCH_KEY", "SchoolResult", "allocate_batch", "new_batch_id", "solver_threads"]


def new_batch_id() -> str:
    return utcnow().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


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
    for earlier in db.session.scalars(
        select(AllocationRun).where(batch_filter(batch_id)).order_by(AllocationRun.id)
    ):
        if existing.get(earlier.term_id) is None or existing[earlier.term_id].state != RunState.DONE:
            existing[earlier.term_id] = earlier
    run_ids: list[AllocationRun] = []
    skipped = 0
    for term in terms:
        run = existing.get(term.id)
        if run is not None and run.state == RunState.DONE:
            skipped += 1
            continue
        if run is None:
            run = AllocationRun(
                term_id=term.id, created_by=created_by, stats={BATCH_KEY: batch_id, "scope": scope}
            )
            db.session.add(run)
        run.state, run.stage, run.progress, run.error = RunState.QUEUED, RunState.QUEUED, 0.0, None
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


_Row = TypeVarTuple("_Row")


def _in_scope(query: Select[*_Row], where: ColumnElement[bool] | None) -> Select[*_Row]:
    """`query` over allocation runs, kept to the runs of `where`'s schools (every school when None)."""
    return (query.join(Term, Term.id == AllocationRun.term_id).join(School, School.id == Term.school_id)
            .where(true() if where is None else where))


def batch_progress(batch_id: str, where: ColumnElement[bool] | None = None) -> BatchProgress:
    """Counts of the batch's runs (in `where`'s schools) by state, and an ETA from the pace so far."""
    query = (
        _in_scope(select(AllocationRun.state, func.count(), func.min(AllocationRun.created_at)), where)
        .where(batch_filter(batch_id))
        .group_by(AllocationRun.state)
    )
    counts: dict[str, int] = {}
    started = None
    for state, count, first in db.session.execute(query):
        counts[state] = int(count)
        started = first if started is None or (first is not None and first < started) else started
    total = sum(counts.values())
    finished = sum(counts.get(state, 0) for state in RunState.final())
    eta = None
    if started is not None and 0 < finished < total:
        elapsed = (utcnow() - started).total_seconds()
        eta = elapsed / finished * (total - finished)
    elif total and finished >= total:
        eta = 0.0
    return BatchProgress(
        batch_id,
        total,
        counts.get(RunState.DONE, 0),
        counts.get(RunState.FAILED, 0) + counts.get(RunState.CANCELLED, 0),
        counts.get(RunState.RUNNING, 0) + counts.get(RunState.CANCELLING, 0),
        counts.get(RunState.QUEUED, 0),
        started,
        eta,
    )


# --------------------------------------------------------------------------- batch history


@dataclass
class BatchSummary:
    """One batch as the history lists it: when, by whom, over what, and how its schools ended."""

    batch_id: str
    scope: str
    started_at: Any
    started_by: str
    total: int
    done: int
    failed: int
    active: int
    proof: CoverageProof = field(default_factory=lambda: CoverageProof(0, 0, 0))
    """Whose coverage is proven the best among the finished schools, and how far the others may be."""


def batch_history(where: ColumnElement[bool] | None = None, limit: int = 50) -> list[BatchSummary]:
    """The newest batches with runs in `where`'s schools, newest first, counted over those schools only."""
    batch = AllocationRun.stats[BATCH_KEY].as_string()
    rows = db.session.execute(
        _in_scope(select(batch, AllocationRun.state, func.count(), func.min(AllocationRun.created_at),
                         func.min(AllocationRun.id), func.max(AllocationRun.id)), where)
        .where(batch.is_not(None))
        .group_by(batch, AllocationRun.state)
    ).all()
    batches: dict[str, BatchSummary] = {}
    first_run: dict[str, int] = {}
    newest: dict[str, int] = {}
    for batch_id, state, count, created, first_id, last_id in rows:
        entry = batches.setdefault(str(batch_id), BatchSummary(str(batch_id), "", created, "", 0, 0, 0, 0))
        entry.total += int(count)
        if state == RunState.DONE:
            entry.done += int(count)
        elif state in RunState.final():
            entry.failed += int(count)
        else:
            entry.active += int(count)
        if created is not None and (entry.started_at is None or created < entry.started_at):
            entry.started_at = created
        first_run[entry.batch_id] = min(first_run.get(entry.batch_id, first_id), first_id)
        newest[entry.batch_id] = max(newest.get(entry.batch_id, last_id), last_id)
    chosen = sorted(batches.values(), key=lambda b: newest[b.batch_id], reverse=True)[:limit]
    details = {
        run_id: (stats, display_name or username)
        for run_id, stats, display_name, username in db.session.execute(
            select(AllocationRun.id, AllocationRun.stats, User.display_name, User.username)
            .outerjoin(User, User.id == AllocationRun.created_by)
            .where(AllocationRun.id.in_([first_run[b.batch_id] for b in chosen]))
        )
    }
    for entry in chosen:
        stats, name = details.get(first_run[entry.batch_id], (None, None))
        entry.scope, entry.started_by = str((stats or {}).get("scope") or ""), name or ""
    shorts: dict[str, list[int | None]] = defaultdict(list)
    for batch_id, state, coverage, bound in db.session.execute(
        _in_scope(select(batch, AllocationRun.state, AllocationRun.coverage, AllocationRun.coverage_bound), where)
        .where(batch.in_([b.batch_id for b in chosen]), AllocationRun.state == RunState.DONE)
    ):
        shorts[str(batch_id)].append(coverage_short(state, coverage, bound))
    for entry in chosen:
        entry.proof = CoverageProof.of(shorts[entry.batch_id])
    return chosen


@dataclass
class SchoolRun:
    """One school's result in a batch."""

    run_id: int
    school_id: int
    school_code: str
    school_name: str
    district_name: str
    state: str
    published: bool
    coverage: float | None
    """Covered / requested pupil-days of the run (`webapp.run_summary`), for a finished run."""
    seconds: float | None
    error: str | None
    short: int | None
    """How many weighted pupil-days the run's coverage may be below the best possible, at most (0: proven the
    best; `webapp.jobs.coverage_short`)."""


def batch_results(batch_id: str, where: ColumnElement[bool] | None = None) -> list[SchoolRun]:
    """Each school's run in the batch (schools in `where`), failures first, then by district and school code.

    A run whose worker stopped sending heartbeats is marked failed first, so a dead worker shows as a failure.
    """
    rows = db.session.execute(
        _in_scope(select(AllocationRun, School.id, School.code, School.name, District.name), where)
        .outerjoin(District, District.id == School.district_id)
        .where(batch_filter(batch_id))
    ).all()
    runs = [row[0] for row in rows]
    refresh_stale([run for run in runs if run.state in RunState.active()])
    done = [run for run in runs if run.state == RunState.DONE]
    summaries = {run.id: run.summary for run in done if run_summary.is_current(run.summary)}
    summaries.update(run_summary.count(run.id for run in done if run.id not in summaries))
    results = []
    for run, school_id, code, name, district in rows:
        summary = summaries.get(run.id)
        coverage = None
        if summary is not None and summary["requested_days"]:
            coverage = summary["covered_days"] / summary["requested_days"]
        seconds = None
        if run.started_at is not None and run.finished_at is not None:
            seconds = (run.finished_at - run.started_at).total_seconds()
        results.append(SchoolRun(
            run.id, school_id, code, name, district or "", run.state, bool(run.is_published),
            coverage, seconds, run.error, coverage_short(run.state, run.coverage, run.coverage_bound),
        ))
    order: dict[str, int] = {RunState.FAILED: 0, RunState.CANCELLED: 1}
    return sorted(results, key=lambda r: (order.get(r.state, 2), r.district_name, r.school_code))


# --------------------------------------------------------------------------- a batch started from a page


def start_batch(where: ColumnElement[bool], *, user_id: int | None, scope: str) -> str:
    """Queue a batch from a page (`BUREAU_TIME_LIMIT` seconds per school); the pages follow its progress."""
    batch_id = new_batch_id()
    run_ids, _ = prepare_batch(batch_id, where, created_by=user_id, scope=scope)
    options = batch_options(float(current_app.config.get("BUREAU_TIME_LIMIT", DEFAULT_TIME_LIMIT)), job_threads())
    for run_id in run_ids:
        submit(BATCH_KIND, run_id, options)
    return batch_id


# --------------------------------------------------------------------------- the CLI


def print_summary(
    results: list[SchoolResult], *, skipped: int, seconds: float, echo: Callable[[str], None]
) -> None:
    done = [r for r in results if r.state == RunState.DONE]
    failed = [r for r in results if r.state != RunState.DONE]
    proof = CoverageProof.of([r.short for r in results])
    echo("")
    echo(f"{'schools':<28}{len(results) + skipped}")
    echo(f"{'done':<28}{len(done)}")
    echo(f"{'failed':<28}{len(failed)}")
    echo(f"{'skipped (done before)':<28}{skipped}")
    echo(f"{'coverage proven optimal':<28}{proof.proven}/{len(done)}")
    echo(f"{'coverage short, at most':<28}{proof.short} weighted pupil-days at the {len(done) - proof.proven} others")
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
    url = database_url()
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


@click.command("allocate")
@click.option("--all", "all_schools", is_flag=True, help="every school of the city")
@click.option("--district", "district_name", default=None, help="the schools of one district")
@click.option("--workers", type=int, default=None, help="schools solved side by side (default: cpu count)")
@click.option(
    "--time-limit", type=float, default=DEFAULT_TIME_LIMIT, show_default=True, help="seconds per school"
)
@click.option("--resume", is_flag=True, help="continue the latest batch, skipping schools already done")
@click.option("--batch", "batch_id", default=None, help="the batch to resume (default: the latest)")
@with_appcontext
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
    if any(r.state != RunState.DONE for r in results):
        sys.exit(1)
