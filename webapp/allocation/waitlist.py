"""The waitlist of a term's published run: who is offered a freed seat first, and each family's place in it.

The rule. Every pupil-day the published run leaves uncovered (a `RunUnserved` row) waits in one queue, but only
while the family still asks for it: the request is active, the pupil is active and the day is still one of the
request's days. Within the queue, a higher priority weight (`webapp.services.effective_weights`: priority-group tags
that still count, else the pupil's level) comes first, then the term's lottery (siblings share
one draw, see `webapp.allocation.lottery`); a pupil's days keep weekday order. Positions count per weekday.
A pupil-day whose offer of a freed seat was declined or expired leaves the queue: the family said no, or did
not answer in time, and the seat passed on (`webapp.allocation.offers`).

Why only live requests. An earlier copy of this order counted every uncovered row, withdrawn or not. A family
that has withdrawn will never take a seat, so counting it would give the families behind it a position worse
than the truth, and offer freed seats to nobody. The run keeps its record of the withdrawn pupil-day (it is part
of what was published); it just no longer holds a place, and its `waitlist_position` is cleared.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from webapp.allocation.lottery import lottery_key, lottery_number
from webapp.extensions import db
from webapp.models import CareRequest, OfferState, Pupil, RunUnserved, Term, WaitlistOffer
from webapp.services import effective_weights


@dataclass(frozen=True)
class WaitlistEntry:
    """One uncovered pupil-day in the queue; `position` counts within its day, `rank` over the whole queue."""

    unserved_id: int
    pupil: Pupil
    day: int
    position: int
    rank: int
    reason: str
    code: str
    weight: int
    lottery: str
    params: dict[str, Any] | None = None
    """What the reason names, so it can be said in the reader's language (`labels.unserved_reason`)."""


def waitlist(term: Term) -> list[WaitlistEntry]:
    """The published run's uncovered pupil-days still asked for, in the order seats are offered."""
    run_id = term.published_run_id
    if run_id is None:
        return []
    rows = db.session.execute(
        select(RunUnserved, Pupil, CareRequest.days)
        .join(Pupil, Pupil.id == RunUnserved.pupil_id)
        .join(CareRequest, (CareRequest.pupil_id == RunUnserved.pupil_id) & (CareRequest.term_id == term.id))
        .where(RunUnserved.run_id == run_id, CareRequest.status == "active", Pupil.active)
    ).all()
    refused = set(db.session.execute(
        select(WaitlistOffer.pupil_id, WaitlistOffer.day).where(
            WaitlistOffer.run_id == run_id,
            WaitlistOffer.state.in_((OfferState.DECLINED.value, OfferState.EXPIRED.value))))
    )
    weights = effective_weights(term, {pupil.id: pupil for _, pupil, _ in rows}.values())
    seed = int(term.lottery_seed or 0)
    keyed = []
    for unserved, pupil, days in rows:
        if unserved.day not in (days or []) or (pupil.id, unserved.day) in refused:
            continue
        weight = weights[pupil.id]
        keyed.append(((-weight, lottery_key(seed, pupil), unserved.day, unserved.id), unserved, pupil, weight))
    keyed.sort(key=lambda item: item[0])
    per_day: Counter[int] = Counter()
    entries = []
    for rank, (_, unserved, pupil, weight) in enumerate(keyed, start=1):
        per_day[unserved.day] += 1
        entries.append(WaitlistEntry(unserved.id, pupil, unserved.day, per_day[unserved.day], rank,
                                     unserved.reason, unserved.code, weight, lottery_number(seed, pupil),
                                     unserved.params))
    return entries


def positions(term: Term) -> dict[int, int]:
    """Write each uncovered row's place within its day (None for rows off the list), in the caller's transaction.

    Returns the positions by `RunUnserved.id`.
    """
    placed = {entry.unserved_id: entry.position for entry in waitlist(term)}
    if term.published_run_id is None:
        return placed
    for row in db.session.scalars(select(RunUnserved).where(RunUnserved.run_id == term.published_run_id)):
        wanted = placed.get(row.id)
        if row.waitlist_position != wanted:
            row.waitlist_position = wanted
    return placed
