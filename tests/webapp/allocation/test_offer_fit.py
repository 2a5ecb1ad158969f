"""One test of whether an open offer still fits an edited session, and the family's message when it lapses.

Session A (Monday P1) seats S1 and S2; W1–W3 wait for Monday. S2 withdraws, so A's freed seat is offered to
the first of them. An unconfirmed edit that the offer no longer fits is refused (`RuleBroken`); the same edit on
the confirming screens closes the offer (`repair.lapse_unfit_offers`); both ask `repair.unfit_offers`. The
family whose offer lapses is told why, with its waitlist place.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.webapp.factories import create_user, publish, pupil, session, small_term, teacher
from tests.webapp.factories import request as care_request
from webapp.allocation import repair, service
from webapp.allocation.service import Confirm, ConfirmationNeeded
from webapp.extensions import db
from webapp.models import (
    AuditLog,
    CareRequest,
    Notification,
    NotificationEvent,
    OfferState,
    Period,
    Pupil,
    RunUnserved,
    Session,
    Term,
    User,
    WaitlistOffer,
    utcnow,
)
from webapp.notifications.messages import render


def _id(number: str) -> int:
    found = db.session.scalar(select(Pupil.id).where(Pupil.number == number))
    assert found is not None
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def offered(request: pytest.FixtureRequest) -> Flask:
    app: Flask = request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
    with app.app_context():
        seated, waiting = [pupil("S1"), pupil("S2")], [pupil(f"W{i}") for i in (1, 2, 3)]
        everyone = seated + waiting
        term = small_term([session("A", capacity=2, ppt=5), session("B", day=2, capacity=99, ppt=99)],
                          [teacher("T1", [(1, "P1"), (1, "P2"), (2, "P1")])], everyone,
                          [care_request(p.id, days=(1, 2)) for p in everyone], placement="offer")
        publish(term, [(p.id, "A") for p in seated] + [(p.id, "B") for p in everyone], [("T1", "A"), ("T1", "B")])
        parents = {n: create_user("parent", login=f"139{i:08d}", pupil=db.session.get(Pupil, _id(n)))
                   for i, n in enumerate(["S2", "W1", "W2", "W3"])}
        create_user("school_admin", school=term.school, login="fit-admin")
        withdrawn = db.session.scalar(select(CareRequest).where(CareRequest.pupil_id == _id("S2")))
        assert withdrawn is not None
        service.withdraw_request(withdrawn, actor=parents["S2"], at=utcnow())
    return app


def _term() -> Term:
    found = db.session.scalar(select(Term))
    assert found is not None
    return found


def _admin() -> User:
    found = db.session.scalar(select(User).where(User.username == "fit-admin"))
    assert found is not None
    return found


def _offer() -> WaitlistOffer:
    found = db.session.scalar(select(WaitlistOffer).where(WaitlistOffer.state == OfferState.OPEN.value))
    assert found is not None
    return found


def _session_a() -> Session:
    found = db.session.scalar(select(Session).where(Session.code == "A"))
    assert found is not None
    return found


def _p2() -> int:
    found = db.session.scalar(select(Period.id).where(Period.code == "P2"))
    assert found is not None
    return found


EDITS: list[tuple[str, dict[str, Any], repair.Unfit | None]] = [
    ("fewer seats", {"capacity": 1}, repair.Unfit.FULL),
    ("another day", {"day": 2}, repair.Unfit.MOVED),
    ("a period nobody asks for", {"period_id": "P2"}, repair.Unfit.MOVED),
    ("grades above the holder's", {"grade_lo": 4}, repair.Unfit.GRADE),
    ("more seats", {"capacity": 3}, None),
    ("another room", {"room": "A202"}, None),
]


@pytest.mark.parametrize(("label", "values", "reason"), EDITS, ids=[e[0] for e in EDITS])
def test_the_refusal_and_the_lapse_ask_the_same_question(offered: Flask, label: str, values: dict[str, Any],
                                                         reason: repair.Unfit | None) -> None:
    with offered.app_context():
        values = {k: (_p2() if v == "P2" else v) for k, v in values.items()}
        offer, term, session_a = _offer(), _term(), _session_a()
        for name, value in values.items():  # the predicate itself, on the edited row, then undone
            setattr(session_a, name, value)
        assert term.published_run_id is not None
        found = repair.unfit_offers(term, term.published_run_id, sessions={session_a.id})
        assert [(u.offer.id, u.reason, u.session_code) for u in found] == \
            ([(offer.id, reason, "A")] if reason is not None else [])
        db.session.rollback()

        if reason is None:
            service.save_session(_term(), _session_a().id, values, actor=_admin())
            assert _offer().id == offer.id
            return
        with pytest.raises(service.RuleBroken) as refused:
            service.save_session(_term(), _session_a().id, values, actor=_admin())
        assert "open waitlist offer" in " ".join(refused.value.problems)
        with pytest.raises(ConfirmationNeeded) as needed:
            service.save_session(_term(), _session_a().id, values, actor=_admin(), confirm=Confirm())
        assert [(m.pupil_id, m.day) for m in needed.value.preview.withdrawn] == [(offer.pupil_id, 1)]
        assert _offer().id == offer.id  # the preview wrote nothing


def test_a_lapsed_offer_tells_the_family_why_and_its_waitlist_place(offered: Flask) -> None:
    with offered.app_context():
        offer = _offer()
        holder = offer.pupil_id
        before = db.session.scalar(select(func.max(Notification.id))) or 0
        with pytest.raises(ConfirmationNeeded) as needed:
            service.save_session(_term(), _session_a().id, {"capacity": 1}, actor=_admin(), confirm=Confirm())
        preview = needed.value.preview
        service.save_session(_term(), _session_a().id, {"capacity": 1}, actor=_admin(),
                             confirm=Confirm("教室维修，容量减少", preview.token))
        db.session.expire_all()
        lapsed = db.session.get(WaitlistOffer, offer.id)
        assert lapsed is not None and lapsed.state == OfferState.LAPSED.value and lapsed.decided_at is not None
        new = list(db.session.scalars(select(Notification).where(Notification.id > before)))
        assert len(new) == preview.notifications
        [told] = [n for n in new if n.event == NotificationEvent.OFFER_WITHDRAWN.value]
        assert told.pupil_id == holder and told.params["reason"] == "full" and told.params["session"] == "A"
        place = db.session.scalar(select(RunUnserved.waitlist_position).where(
            RunUnserved.pupil_id == holder, RunUnserved.day == 1))
        assert place is not None and place >= 1 and told.params["position"] == place
        chinese, english = render(told, "zh"), render(told, "en")
        assert english.title == "Your offer was withdrawn"
        assert "Mon" in english.body and "session A now has fewer places" in english.body
        assert f"keeps place {place} on the waiting list" in english.body
        assert "撤回" in chinese.title and "周一" in chinese.body and "课程班 A" in chinese.body
        assert f"第 {place} 位" in chinese.body
        others = {_id(n) for n in ("W1", "W2", "W3")} - {holder}
        for other in db.session.scalars(select(Notification).where(Notification.pupil_id.in_(others))):
            assert other.event != NotificationEvent.OFFER_WITHDRAWN.value
        audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "offer.withdraw"))
        assert audit is not None and audit.target == f"offer:{offer.id}"


def test_deleting_the_session_withdraws_the_offer_as_cancelled(offered: Flask) -> None:
    with offered.app_context():
        offer = _offer()
        with pytest.raises(ConfirmationNeeded) as needed:
            service.delete_session(_term(), _session_a().id, actor=_admin(), confirm=Confirm())
        service.delete_session(_term(), _session_a().id, actor=_admin(),
                               confirm=Confirm("课程班取消", needed.value.preview.token))
        told = db.session.scalar(select(Notification).where(
            Notification.event == NotificationEvent.OFFER_WITHDRAWN.value, Notification.pupil_id == offer.pupil_id))
        assert told is not None and told.params["reason"] == "gone"
        assert "cancelled the session A" in render(told, "en").body


def test_an_import_asks_the_same_question(offered: Flask) -> None:
    """A file lowering A's seats under the offer: refused without the confirming screen, previewed with it."""
    with offered.app_context():
        offer = _offer()

        def write() -> service.Imported:
            session_a = _session_a()
            session_a.capacity = 1
            return service.Imported(sessions=frozenset({session_a.id}))

        with pytest.raises(service.RuleBroken) as refused:
            service.import_rows(_term(), "sessions", write, actor=_admin())
        assert "open waitlist offer" in " ".join(refused.value.problems)
        with pytest.raises(ConfirmationNeeded) as needed:
            service.import_rows(_term(), "sessions", write, actor=_admin(), confirm=Confirm(), digest="f" * 64)
        assert [m.pupil_id for m in needed.value.preview.withdrawn] == [offer.pupil_id]
        db.session.expire_all()
        assert _session_a().capacity == 2 and _offer().id == offer.id
