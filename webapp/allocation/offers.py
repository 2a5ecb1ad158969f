"""Waitlist offers: a freed seat held for the next family in the queue until it answers or the time is up.

Offers are made by `webapp.allocation.seats.promote` whenever seats are freed in a term with
`Placement.OFFER` (the default), held for the school's `offer_hold_hours` (48 by default). The family accepts
(the seats become theirs: a new plan version) or declines; an offer left unanswered expires. A declined or
expired pupil-day leaves the queue and the seat is offered to the next one, in the same transaction.

Concurrency. Every function here that writes owns one transaction and takes the term's seat lock first
(`service._lock_seats`), then reads the offer again: an accept, a decline, an expiry sweep and a second freed
seat racing each other are serialised, so an offer is answered once and a seat is never given twice or lost.
Expiry is swept by `expire_offers` (the `flask expire-offers` command, run periodically) and also checked
whenever a family reads its offers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from webapp import audit
from webapp.allocation import seats
from webapp.allocation.service import (
    N_,
    AllocationError,
    _Amendment,
    _expire_due,
    _lock_seats,
    _refill,
    _transaction,
)
from webapp.extensions import db
from webapp.models import (
    AmendmentKind,
    CareRequest,
    Guardianship,
    OfferState,
    Placement,
    PlanAmendment,
    RunUnserved,
    Term,
    User,
    WaitlistOffer,
    clock,
)


class OfferError(AllocationError):
    """The offer cannot be answered; nothing was written."""


class OfferNotFound(OfferError, LookupError):
    """No such offer for this family (callers answer 404, whether it exists for another family or not)."""


class OfferClosed(OfferError):
    """The offer was already answered, expired or lapsed (callers answer 409)."""


def _own_offer(offer_id: int, user: User) -> WaitlistOffer:
    offer = db.session.get(WaitlistOffer, offer_id)
    if offer is None or user.role != "parent" or db.session.scalar(select(Guardianship.id).where(
            Guardianship.user_id == user.id, Guardianship.pupil_id == offer.pupil_id)) is None:
        raise OfferNotFound(N_("There is no such offer."))
    return offer


def find_offer(offer_id: int, user: User) -> WaitlistOffer:
    """The offer if it was made to one of `user`'s children; else `OfferNotFound` (read only)."""
    return _own_offer(offer_id, user)


def _still_open(offer: WaitlistOffer, term: Term, at: datetime) -> None:
    db.session.refresh(offer)
    if offer.state == OfferState.EXPIRED or (offer.state == OfferState.OPEN and offer.expires_at <= at):
        raise OfferClosed(N_("This offer has expired and the seat has passed to the next family."))
    if offer.state != OfferState.OPEN or offer.run_id != term.published_run_id:
        raise OfferClosed(N_("This offer has already been answered or withdrawn."))


def accept_offer(offer_id: int, user: User, *, at: datetime | None = None) -> PlanAmendment | None:
    """Give the family the offered seats, as a new plan version, in one transaction."""
    at = at or clock()
    offer = _own_offer(offer_id, user)
    with _transaction():
        term = _lock_seats(offer.term_id)
        _still_open(offer, term, at)
        change = _Amendment(term)
        offer.state = OfferState.ACCEPTED.value
        offer.decided_at = at
        db.session.flush()
        if not seats.seat_offer(term, offer):
            raise OfferClosed(N_("This seat can no longer be staffed; the school will contact you."))
        for row in db.session.scalars(select(RunUnserved).where(RunUnserved.run_id == offer.run_id,
                                                                RunUnserved.pupil_id == offer.pupil_id,
                                                                RunUnserved.day == offer.day)):
            db.session.delete(row)
        audit.record("offer.accept", f"offer:{offer.id}", {"term_id": term.id, "pupil_id": offer.pupil_id,
                                                           "day": offer.day}, user_id=user.id,
                     school_id=term.school_id)
        amendment = change.done(AmendmentKind.OFFER_ACCEPTED, user, f"offer {offer.id} accepted")
    return amendment


def decline_offer(offer_id: int, user: User, *, at: datetime | None = None) -> WaitlistOffer:
    """Decline an offer: the day leaves the waitlist and the seat is offered to the next family (one transaction)."""
    at = at or clock()
    offer = _own_offer(offer_id, user)
    with _transaction():
        term = _lock_seats(offer.term_id)
        _still_open(offer, term, at)
        change = _Amendment(term)
        offer.state = OfferState.DECLINED.value
        offer.decided_at = at
        audit.record("offer.decline", f"offer:{offer.id}", {"term_id": term.id, "pupil_id": offer.pupil_id,
                                                            "day": offer.day}, user_id=user.id,
                     school_id=term.school_id)
        db.session.flush()
        _refill(term, user)
        change.done(AmendmentKind.PROMOTION, user, f"offer {offer.id} declined", data_changed=False)
    return offer


def expire_offers(at: datetime | None = None, *, term_ids: list[int] | None = None) -> int:
    """Expire every offer whose time is up and pass its seats on; one transaction per term. Returns how many."""
    at = at or clock()
    query = select(WaitlistOffer.term_id).distinct().where(WaitlistOffer.state == OfferState.OPEN.value,
                                                           WaitlistOffer.expires_at <= at)
    if term_ids is not None:
        query = query.where(WaitlistOffer.term_id.in_(term_ids))
    due = sorted(db.session.scalars(query))
    db.session.commit()
    total = 0
    for term_id in due:
        with _transaction():
            term = _lock_seats(term_id)
            change = _Amendment(term)
            expired = _expire_due(term, at)
            if expired:
                _refill(term, None)
                change.done(AmendmentKind.PROMOTION, None, f"{expired} offers expired", data_changed=False)
            total += expired
    return total


def offers_for(user: User, *, at: datetime | None = None) -> list[WaitlistOffer]:
    """The offers made to `user`'s children, newest first, after expiring those whose time is up."""
    pupil_ids = list(db.session.scalars(select(Guardianship.pupil_id).where(Guardianship.user_id == user.id)))
    if not pupil_ids:
        return []
    terms = list(db.session.scalars(select(CareRequest.term_id).distinct().where(CareRequest.pupil_id.in_(pupil_ids))))
    expire_offers(at, term_ids=terms)
    return list(db.session.scalars(select(WaitlistOffer).where(WaitlistOffer.pupil_id.in_(pupil_ids))
                                   .order_by(WaitlistOffer.id.desc())))


def set_placement(term: Term, placement: Placement, hold_hours: int, *, actor: User) -> None:
    """Choose offers or automatic placement for the term and the school's hold time, in one transaction.

    Switching to automatic placement places every pupil-day it can at once (each family is notified).
    """
    if not 1 <= hold_hours <= 24 * 14:
        raise AllocationError(N_("The hold time must be between 1 hour and 14 days."))
    with _transaction():
        fresh = _lock_seats(term.id)
        change = _Amendment(fresh)
        fresh.placement = Placement(placement).value
        fresh.school.offer_hold_hours = hold_hours
        audit.record("term.placement", f"term:{fresh.id}", {"placement": fresh.placement, "hold_hours": hold_hours},
                     user_id=actor.id, school_id=fresh.school_id)
        if change.run is not None:
            _refill(fresh, actor)
            change.done(AmendmentKind.PROMOTION, actor, f"placement set to {fresh.placement}",
                        data_changed=False)
