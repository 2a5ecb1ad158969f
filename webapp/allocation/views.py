"""Read-only queries for the pages and the API: what a publication would change, the plan's history, offers.

Nothing here writes; callers render what these return. Every function takes objects the caller has already
checked belong to the reader (the admin's school, the parent's child).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from webapp.allocation import plan
from webapp.extensions import db
from webapp.models import (
    AllocationRun,
    CareRequest,
    OfferState,
    PlanAmendment,
    PlanChange,
    Pupil,
    Session,
    Term,
    WaitlistOffer,
)


@dataclass
class PupilDiff:
    """One pupil's seats gained and lost (sessions), and the care days that come or go with them."""

    pupil: Pupil
    gained: list[Session] = field(default_factory=list)
    lost: list[Session] = field(default_factory=list)
    days_gained: list[int] = field(default_factory=list)
    days_lost: list[int] = field(default_factory=list)


@dataclass
class PublishPreview:
    """What publishing a run would change against the plan in force (for the confirmation page)."""

    first: bool
    """Nothing is published yet: every family with a request is told."""
    pupils: list[PupilDiff]
    days_gained: int
    days_lost: int
    notifications: int

    @property
    def families(self) -> int:
        return len(self.pupils)


def _days(seats: plan.Seats, days: dict[int, int]) -> dict[int, set[int]]:
    covered: dict[int, set[int]] = defaultdict(set)
    for pupil_id, session_id in seats:
        covered[pupil_id].add(days.get(session_id, 0))
    return covered


def publish_preview(run: AllocationRun) -> PublishPreview:
    """Compare `run` with the term's plan in force, pupil by pupil, as `publish_run` would record it."""
    term = run.term
    current = term.published_run if term.published_run is not None and term.published_run.is_published else None
    before = plan.snapshot(current.id if current is not None else None)
    after = plan.snapshot(run.id)
    sessions = {s.id: s for s in db.session.scalars(select(Session).where(Session.term_id == term.id))}
    days = {s.id: s.day for s in sessions.values()}
    diff = plan.seats_diff(before, after)
    pupils = {p.id: p for p in db.session.scalars(select(Pupil).where(Pupil.id.in_(list(diff))))} if diff else {}
    days_before, days_after = _days(before, days), _days(after, days)
    rows = []
    for pupil_id, change in diff.items():
        rows.append(PupilDiff(
            pupils[pupil_id], [sessions[s] for s in change["gained"] if s in sessions],
            [sessions[s] for s in change["lost"] if s in sessions],
            sorted(days_after[pupil_id] - days_before[pupil_id]), sorted(days_before[pupil_id] - days_after[pupil_id])))
    rows.sort(key=lambda r: r.pupil.number)
    first = current is None
    told = set(diff)
    if first:  # `plan.amend` tells every family with an active request about a first publication
        told |= set(db.session.scalars(select(CareRequest.pupil_id).where(
            CareRequest.term_id == term.id, CareRequest.status == "active")))
    return PublishPreview(first, rows, sum(len(r.days_gained) for r in rows), sum(len(r.days_lost) for r in rows),
                          len(told))


@dataclass
class Version:
    amendment: PlanAmendment
    changes: list[tuple[PlanChange, Pupil, Session | None]]


def history(term: Term) -> list[Version]:
    """Every version of the term's plan, newest first, each with its per-pupil seat changes."""
    amendments = list(db.session.scalars(select(PlanAmendment).where(PlanAmendment.term_id == term.id)
                                         .order_by(PlanAmendment.version.desc())))
    changes: dict[int, list[tuple[PlanChange, Pupil, Session | None]]] = defaultdict(list)
    if amendments:
        for change, pupil, session in db.session.execute(
            select(PlanChange, Pupil, Session).join(Pupil, Pupil.id == PlanChange.pupil_id)
            .outerjoin(Session, Session.id == PlanChange.session_id)
            .where(PlanChange.amendment_id.in_([a.id for a in amendments]))
            .order_by(Pupil.number, PlanChange.day, PlanChange.gained.desc())
        ):
            changes[change.amendment_id].append((change, pupil, session))
    return [Version(a, changes[a.id]) for a in amendments]


def pupil_changes(pupil: Pupil, term: Term, since_version: int = 0) -> list[dict[str, object]]:
    """The versions after `since_version` that changed `pupil`'s seats: version, time, kind, days gained/lost."""
    rows = db.session.execute(
        select(PlanAmendment, PlanChange).join(PlanChange, PlanChange.amendment_id == PlanAmendment.id)
        .where(PlanAmendment.term_id == term.id, PlanAmendment.version > since_version,
               PlanChange.pupil_id == pupil.id)
        .order_by(PlanAmendment.version, PlanChange.day)
    ).all()
    found: dict[int, dict[str, object]] = {}
    for amendment, change in rows:
        entry = found.setdefault(amendment.version, {"version": amendment.version, "at": amendment.at,
                                                     "kind": amendment.kind, "gained": [], "lost": []})
        target = entry["gained" if change.gained else "lost"]
        assert isinstance(target, list)
        target.append({"day": change.day, "session_id": change.session_id})
    return list(found.values())


def open_offers(pupil: Pupil, offers: list[WaitlistOffer]) -> list[WaitlistOffer]:
    """`offers` (from `offers.offers_for`) still open for `pupil`."""
    return [o for o in offers if o.pupil_id == pupil.id and o.state == OfferState.OPEN]


def offer_sessions(offer: WaitlistOffer) -> list[Session]:
    """The sessions an offer holds, in period order."""
    found = db.session.scalars(select(Session).where(Session.id.in_(list(offer.sessions or [])))).all()
    return sorted(found, key=lambda s: (s.period.start, s.code))


def term_offers(term: Term) -> list[tuple[WaitlistOffer, Pupil]]:
    """Every offer of the term, open ones first, then newest first."""
    rows = db.session.execute(select(WaitlistOffer, Pupil).join(Pupil, Pupil.id == WaitlistOffer.pupil_id)
                              .where(WaitlistOffer.term_id == term.id).order_by(WaitlistOffer.id.desc())).all()
    return sorted(((o, p) for o, p in rows), key=lambda row: row[0].state != OfferState.OPEN)

