"""Background jobs: one runner (`webapp.jobs.runner`) and the kinds of job it runs.

- "allocation" (`webapp.jobs.allocation`): a school admin's allocation run;
- "batch" (`webapp.jobs.batch`): one school's run in a city batch, and waiting for a whole batch;
- "advice" (`webapp.jobs.advice`): what-if capacity advice for a term;
- "notify" (`webapp.jobs.notify`): one delivery pass of the notification outbox.

Periodic tasks (the notification sweep; offer expiry and due change requests, `webapp.jobs.offers`) are
registered with `register_periodic` in `webapp.jobs.periodic`, run by Celery beat when Celery is configured and
by a local scheduler thread otherwise.

A new kind is a `JobKind` (its table, its `run(job, **options)`) passed to `register`; it then runs through the
same claim, monitor, store and finish, on the local pool, inline or on the one Celery task `webapp.jobs.run`.
The concurrency contract (who locks what, which transaction owns the write) is in `webapp.jobs.runner`.
Importing this package registers every kind, in the web app, in pool workers and in Celery workers alike.
"""

from __future__ import annotations

from webapp.jobs.advice import start_advice, start_advice_batch
from webapp.jobs.allocation import job_options, run_allocation, start_run
from webapp.jobs.batch import (
    BATCH_KEY,
    CoverageProof,
    SchoolResult,
    allocate_school,
    coverage_short,
    run_celery,
    run_local,
)
from webapp.jobs.notify import sweep
from webapp.jobs.offers import settle_due
from webapp.jobs.periodic import PERIODIC, register_periodic, run_periodic
from webapp.jobs.runner import (
    KINDS,
    STALE_ERROR,
    TASK_NAME,
    Job,
    JobCancelled,
    JobKind,
    UnknownJobKind,
    cancel_run,
    celery_broker,
    database_url,
    execute,
    job_threads,
    kind_of,
    one_line,
    refresh_stale,
    register,
    rowcount,
    shutdown_pool,
    solver_threads,
    submit,
)
from webapp.jobs.uploads import sweep_held

__all__ = [
    "BATCH_KEY",
    "CoverageProof",
    "KINDS",
    "PERIODIC",
    "STALE_ERROR",
    "TASK_NAME",
    "Job",
    "JobCancelled",
    "JobKind",
    "SchoolResult",
    "UnknownJobKind",
    "allocate_school",
    "cancel_run",
    "coverage_short",
    "celery_broker",
    "database_url",
    "execute",
    "job_options",
    "job_threads",
    "kind_of",
    "one_line",
    "refresh_stale",
    "register",
    "register_periodic",
    "rowcount",
    "run_allocation",
    "run_celery",
    "run_local",
    "run_periodic",
    "shutdown_pool",
    "solver_threads",
    "start_advice",
    "sweep_held",
    "start_advice_batch",
    "start_run",
    "submit",
    "settle_due",
    "sweep",
]
