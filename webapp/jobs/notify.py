"""Notification delivery: the job kind "notify", one delivery pass of the outbox, and its periodic sweep.

A pass is a `NotificationSweep` row run by the one runner (claim, run, finish). The body is
`webapp.notifications.delivery.deliver_due`, which claims and marks each delivery in its own transactions
(its module docstring states that contract); the sweep row then stores what the pass did in the ONE
transaction opened by `Job.claim_store`. A failed pass leaves every delivery it finished marked as it was.

`sweep()` is what `flask --app webapp deliver-notifications` and the periodic task "notifications.deliver"
(every `NOTIFY_SWEEP_SECONDS`) call: when something is due it records a sweep and runs it in this process.
"""

from __future__ import annotations

from typing import Any

from webapp.extensions import db
from webapp.jobs.periodic import register_periodic
from webapp.jobs.runner import Job, JobKind, database_url, execute, register
from webapp.models import NotificationSweep, RunState, utcnow
from webapp.notifications.delivery import deliver_due, due_count

KIND = "notify"
PERIODIC_NAME = "notifications.deliver"
SWEEP_SECONDS = 60.0


def deliver(job: Job, *, limit: int | None = None) -> dict[str, Any]:
    report = deliver_due(limit)
    job.claim_store()
    row = db.session.get(NotificationSweep, job.id)
    assert row is not None
    row.sent, row.retried, row.failed = report.sent, report.retried, report.failed + report.interrupted
    row.state, row.finished_at = RunState.DONE, utcnow()
    db.session.commit()
    return report.as_dict()


NOTIFY = register(JobKind(KIND, NotificationSweep, deliver))


def sweep(limit: int | None = None, *, force: bool = False) -> dict[str, Any] | None:
    """One delivery pass in this process, through the runner; None when nothing was due (no row written)."""
    if not force and not due_count():
        db.session.rollback()
        return None
    row = NotificationSweep(state=RunState.QUEUED)
    db.session.add(row)
    db.session.commit()
    options: dict[str, Any] = {"limit": limit} if limit else {}
    return execute(KIND, row.id, database_url(), **options)


def _periodic_sweep() -> None:
    sweep()


register_periodic(PERIODIC_NAME, _periodic_sweep, config_key="NOTIFY_SWEEP_SECONDS", default_seconds=SWEEP_SECONDS)
