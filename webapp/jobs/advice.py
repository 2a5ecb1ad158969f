"""Capacity advice: the job kind "advice", what-if advice for one term (`scheduler.whatif.advise`).

`start_advice` records a queued `CapacityAdvice` row and submits it; `start_advice_batch` does so for several
terms at once (a district), queueing every row in one transaction. The job reads the term, ends that read
transaction, computes the advice, and writes the result with the state done in the ONE transaction opened by
`Job.claim_store` (see `webapp.jobs.runner`). Advice rows have no heartbeat: no monitor thread runs, and a
failure is shown on the advice page as a failed computation.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from scheduler.solve import SolverConfig
from scheduler.whatif import advice_to_json, advise
from webapp.extensions import db
from webapp.jobs.runner import Job, JobKind, job_threads, register, submit
from webapp.models import CapacityAdvice, RunState, Term, utcnow
from webapp.services import term_to_instance

KIND = "advice"
DEFAULT_TIME_LIMIT = 60.0
"""Seconds one school's advice may take (`BUREAU_ADVICE_TIME_LIMIT` overrides): the fewest teachers to hire is
proven in about a second, the fewest seats on a 3,000-pupil school takes the rest and is shown with its bound
when not proven (`docs/benchmarks.md`, capacity advice)."""


def compute_advice(job: Job, *, time_limit: float = DEFAULT_TIME_LIMIT, workers: int = 1) -> dict[str, Any]:
    row = db.session.get(CapacityAdvice, job.id)
    if row is None:
        raise LookupError(f"advice {job.id} vanished")
    instance = term_to_instance(row.term)
    db.session.rollback()  # end the read transaction before the long computation
    advice = advise(instance, SolverConfig(time_limit=time_limit, workers=workers))
    job.claim_store()
    row = db.session.get(CapacityAdvice, job.id)
    assert row is not None
    row.result, row.state, row.finished_at = advice_to_json(advice), RunState.DONE, utcnow()
    db.session.commit()
    return {}


def start_advice(term: Term, user_id: int | None) -> tuple[CapacityAdvice, bool]:
    """Queue advice for `term` and start the job (`BUREAU_ADVICE_TIME_LIMIT` seconds), one transaction.

    Returns (row, started). While advice for the term is still pending, that row comes back with `started`
    False and nothing new is queued: a unique index on pending rows makes this hold for concurrent requests too.
    """
    pending = _pending(term.id)
    if pending is not None:
        return pending, False
    row = CapacityAdvice(term_id=term.id, created_by=user_id, state=RunState.QUEUED)
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # another request queued it a moment ago
        db.session.rollback()
        pending = _pending(term.id)
        if pending is None:
            raise
        return pending, False
    time_limit = float(current_app.config.get("BUREAU_ADVICE_TIME_LIMIT", DEFAULT_TIME_LIMIT))
    submit(KIND, row.id, {"time_limit": time_limit, "workers": job_threads()})
    db.session.refresh(row)
    return row, True


def start_advice_batch(terms: list[Term], user_id: int | None) -> tuple[list[CapacityAdvice], list[CapacityAdvice]]:
    """Queue advice for every term in one transaction and start a job for each; returns (started, joined).

    A term whose advice is still pending joins that computation instead (the one-pending-per-term rule): it is
    in `joined`, and nothing new is queued for it. When another request queues one of these terms meanwhile,
    the unique index refuses the whole transaction and it is tried once more without that term.
    """
    for _attempt in range(3):
        term_ids = [term.id for term in terms]
        joined = list(db.session.scalars(select(CapacityAdvice).where(
            CapacityAdvice.term_id.in_(term_ids), CapacityAdvice.state.in_(RunState.active()))))
        busy = {row.term_id for row in joined}
        started = [CapacityAdvice(term_id=term_id, created_by=user_id, state=RunState.QUEUED)
                   for term_id in term_ids if term_id not in busy]
        db.session.add_all(started)
        try:
            db.session.commit()
        except IntegrityError:  # another request queued one of them a moment ago: look again
            db.session.rollback()
            continue
        break
    else:
        raise RuntimeError("advice could not be queued: the terms kept changing")
    time_limit = float(current_app.config.get("BUREAU_ADVICE_TIME_LIMIT", DEFAULT_TIME_LIMIT))
    for row in started:
        submit(KIND, row.id, {"time_limit": time_limit, "workers": job_threads()})
    for row in started:
        db.session.refresh(row)
    return started, joined


def _pending(term_id: int) -> CapacityAdvice | None:
    return db.session.scalar(select(CapacityAdvice).where(
        CapacityAdvice.term_id == term_id, CapacityAdvice.state.in_(RunState.active())))


ADVICE = register(JobKind(KIND, CapacityAdvice, compute_advice))
