"""Publishing a run: the version parents see, its waitlist order and the audit entry, in one transaction.

Concurrency: the publish compares the term's published run with the one the admin saw (`expected`) in a
conditional UPDATE that is the transaction's first write. On PostgreSQL the term row is locked first with
SELECT ... FOR UPDATE; on SQLite the first write takes the database's write lock (later reads see the
winner's commit). Of two admins publishing at once, one wins and the version rises by one; the other gets
`PublishConflict` and nothing of theirs is written.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, select, update

from webapp import audit
from webapp.extensions import db
from webapp.models import AllocationRun, Pupil, RunUnserved, Term, User, utcnow
from webapp.runs.jobs import rowcount

UNSET: Any = object()


def N_(message: str) -> str:
    """Marks a msgid for extraction; the route translates it when it shows the error."""
    return message


class PublishError(Exception):
    """The run cannot be published; the message is an English msgid the route translates."""


class PublishConflict(PublishError):
    """Someone else published this term after the admin loaded the page."""


def lottery_key(seed: int, pupil_id: int) -> str:
    """A pupil's lottery number for a term: the waitlist's own (`webapp.rosters.waitlist.lottery_number`)."""
    from webapp.rosters.waitlist import lottery_number

    return lottery_number(seed, pupil_id)


def draw_lottery_seed() -> int:
    return secrets.randbelow(2**31 - 1) + 1


def waitlist_order(term: Term, rows: list[tuple[RunUnserved, Pupil]]) -> list[tuple[RunUnserved, int]]:
    """Unserved pupil-days in waitlist order with their place in that day's queue: higher priority weight first,
    then the term's lottery (the same order `webapp.rosters.waitlist` offers freed seats in)."""
    weights = {int(level): int(weight) for level, weight in (term.priority_weights or {}).items()}
    seed = int(term.lottery_seed)

    def key(item: tuple[RunUnserved, Pupil]) -> tuple[int, str, int, int]:
        row, pupil = item
        return (-weights.get(pupil.priority, 1), lottery_key(seed, pupil.id), row.day, row.id)

    per_day: dict[int, int] = {}
    ordered = []
    for row, _ in sorted(rows, key=key):
        per_day[row.day] = per_day.get(row.day, 0) + 1
        ordered.append((row, per_day[row.day]))
    return ordered


def publish_run(run: AllocationRun, user: User, *, expected: int | None = UNSET) -> AllocationRun:
    """Publish `run` for its term and return it, or raise `PublishError` having written nothing.

    `expected` is the term's published run id the admin saw (None when nothing was published); left out,
    the value read now is used.
    """
    session = db.session
    try:
        term = session.get(Term, run.term_id)
        if term is None:
            raise PublishError(N_("This run does not belong to a term."))
        if run.state != "done" or run.status not in ("OPTIMAL", "FEASIBLE"):
            raise PublishError(N_("Only a finished run with an allocation can be published."))
        if term.published_run_id == run.id:
            raise PublishError(N_("This run is already the published version."))
        if run.version is not None:
            raise PublishError(N_("This run was published before. Start a new run to publish a new version."))
        if expected is UNSET:
            expected = term.published_run_id

        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(Term.id).where(Term.id == term.id).with_for_update())
        same = Term.published_run_id.is_(None) if expected is None else Term.published_run_id == expected
        won = rowcount(session.execute(
            update(Term).where(Term.id == term.id, same).values(published_run_id=run.id)
            .execution_options(synchronize_session=False)
        ))
        if not won:
            raise PublishConflict(N_("Another administrator published a version meanwhile. Please reload and check."))

        session.refresh(term)
        session.refresh(run)
        if run.state != "done" or run.term_id != term.id:
            raise PublishError(N_("Only a finished run with an allocation can be published."))
        latest = session.scalar(select(func.max(AllocationRun.version)).where(AllocationRun.term_id == term.id))
        previous_id = expected
        run.version = (latest or 0) + 1
        run.is_published = True
        run.published_at = utcnow()
        if not term.lottery_seed:
            term.lottery_seed = draw_lottery_seed()

        rows = session.execute(
            select(RunUnserved, Pupil).join(Pupil, Pupil.id == RunUnserved.pupil_id)
            .where(RunUnserved.run_id == run.id)
        ).all()
        for row, position in waitlist_order(term, list(rows)):
            row.waitlist_position = position

        audit.record("run.publish", f"run:{run.id}",
                     {"term": term.name, "version": run.version, "previous_run": previous_id,
                      "waitlist": len(rows), "coverage": run.coverage, "demand": run.demand},
                     user_id=user.id, school_id=term.school_id)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return run
