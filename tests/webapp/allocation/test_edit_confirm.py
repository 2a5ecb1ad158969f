"""Admin edits after publication: seats an edit breaks are taken away only once the admin confirmed exactly that.

The world is the test school's published run (`publish_for`): P001 sits in S11 (homework, Monday P1, led by T3)
and S12 (football, Monday P2, led by T1); Tuesday is uncovered for P004 (first) and P001 (second). Both
families have an account, so every message is counted. Each test runs on SQLite and, when TEST_DATABASE_URL is
set, on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.webapp.factories import (
    create_user,
    publish,
    publish_for,
    pupil,
    pupil_id,
    request,
    session,
    small_term,
    teacher,
    term_of,
    the_school,
)
from webapp.allocation import service
from webapp.allocation.lottery import lottery_key
from webapp.allocation.service import Confirm, ConfirmationNeeded
from webapp.extensions import db
from webapp.models import (
    AuditLog,
    Notification,
    PlanAmendment,
    PlanChange,
    Pupil,
    RunAssignment,
    RunStaffing,
    Session,
    Teacher,
    TeacherAvailability,
    Term,
    User,
    WaitlistOffer,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest) -> Flask:
    app: Flask = request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
    with app.app_context():
        the_school()
        publish_for(pupil_id("P001"))
        for number, phone in (("P001", "13800000001"), ("P004", "13800000004")):
            create_user("parent", login=phone, pupil=db.session.get(Pupil, pupil_id(number)))
        create_user("school_admin", school=the_school(), login="edit-admin")
    return app


def _admin() -> User:
    found = db.session.scalar(select(User).where(User.username == "edit-admin"))
    assert found is not None
    return found


def _session(code: str) -> Session:
    found = db.session.scalar(select(Session).where(Session.term_id == term_of().id, Session.code == code))
    assert found is not None
    return found


def _teacher(code: str) -> Teacher:
    found = db.session.scalar(select(Teacher).where(Teacher.code == code, Teacher.school_id == the_school().id))
    assert found is not None
    return found


def _state() -> dict[str, Any]:
    """Everything an unconfirmed edit must leave as it was."""
    db.session.expire_all()
    term = term_of()
    return {
        "version": term.plan_version,
        "seats": sorted(db.session.execute(select(RunAssignment.pupil_id, RunAssignment.session_id)).all()),
        "staffing": sorted(db.session.execute(select(RunStaffing.teacher_id, RunStaffing.session_id)).all()),
        "sessions": sorted(db.session.execute(select(Session.id, Session.capacity, Session.grade_lo)).all()),
        "teachers": sorted(db.session.execute(select(Teacher.id, Teacher.qualifications)).all()),
        "offers": db.session.scalar(select(func.count()).select_from(WaitlistOffer)),
        "messages": db.session.scalar(select(func.count()).select_from(Notification)),
        "audit": db.session.scalar(select(func.count()).select_from(AuditLog)),
    }


def _preview(call: Callable[[Confirm], Any]) -> service.EditPreview:
    before = _state()
    with pytest.raises(ConfirmationNeeded) as needed:
        call(Confirm())
    assert not needed.value.stale
    assert _state() == before, "a preview wrote something"
    return needed.value.preview


def _lower_s12(confirm: Confirm) -> Any:
    return service.save_session(term_of(), _session("S12").id, {"capacity": 0}, actor=_admin(), confirm=confirm)


def test_lowering_a_capacity_previews_the_loss_and_the_offers_then_applies_exactly_that(world: Flask) -> None:
    with world.app_context():
        preview = _preview(_lower_s12)
        assert [(m.number, m.day, m.sessions) for m in preview.lost] == [("P001", 1, ("S12",))]
        assert preview.gained == [] and preview.withdrawn == []
        # The freed Tuesday seats go to the waitlist in its order (offers, the term's default policy).
        assert [(m.number, m.day) for m in preview.offered] == [("P001", 2), ("P004", 2)]
        assert (preview.days_lost, preview.families, preview.version) == (1, 2, 1)
        assert preview.notifications == 3  # P001: plan amended + offer; P004: offer

        _lower_s12(Confirm("队伍人数不足，足球课取消", preview.token))
        db.session.expire_all()
        term = term_of()
        assert term.plan_version == 2
        amendment = db.session.scalar(select(PlanAmendment).where(PlanAmendment.version == 2))
        assert amendment is not None and amendment.reason == "队伍人数不足，足球课取消"
        assert amendment.kind == "session_edit" and amendment.actor_id == _admin().id
        assert [(c.pupil_id, c.session_id, c.gained) for c in amendment.changes] == [
            (pupil_id("P001"), _session("S12").id, False)]
        assert db.session.scalar(select(func.count()).select_from(PlanAmendment)) == 2  # one new version
        events = sorted(db.session.execute(select(Notification.pupil_id, Notification.event)
                                           .where(Notification.term_id == term.id)).all())
        assert sorted(e for p, e in events if e != "results_published") == [
            "offer_made", "offer_made", "plan_amended"]
        assert (pupil_id("P001"), _session("S12").id) not in set(db.session.execute(
            select(RunAssignment.pupil_id, RunAssignment.session_id)).all())
        assert not db.session.scalars(select(RunStaffing).where(RunStaffing.session_id == _session("S12").id)).all()


def test_a_stale_token_shows_the_new_preview_and_writes_nothing(world: Flask) -> None:
    with world.app_context():
        preview = _preview(_lower_s12)
        ahead = db.session.get(Pupil, pupil_id("P004"))
        row = db.session.scalar(select(service.CareRequest).where(service.CareRequest.pupil_id == ahead.id))
        assert row is not None
        service.withdraw_request(row, actor=_admin(), at=service.clock())  # the queue moves meanwhile
        before = _state()
        with pytest.raises(ConfirmationNeeded) as needed:
            _lower_s12(Confirm("reason", preview.token))
        assert needed.value.stale and _state() == before
        fresh = needed.value.preview
        assert fresh.token != preview.token
        assert [(m.number, m.day) for m in fresh.lost] == [("P001", 1)]
        assert "P004" not in {m.number for m in fresh.offered}
        _lower_s12(Confirm("reason", fresh.token))
        assert term_of().plan_version == 2


def test_a_reason_is_required_to_confirm(world: Flask) -> None:
    with world.app_context():
        preview = _preview(_lower_s12)
        before = _state()
        with pytest.raises(ConfirmationNeeded) as needed:
            _lower_s12(Confirm("   ", preview.token))
        assert str(needed.value) == service.REASON_NEEDED and _state() == before


def test_an_edit_that_moves_no_seat_saves_at_once(world: Flask) -> None:
    with world.app_context():
        before = _state()
        found, change = service.save_session(term_of(), _session("S12").id, {"room": "新操场", "capacity": 25},
                                             actor=_admin(), confirm=Confirm())
        assert found.room == "新操场" and change.lost == []
        after = _state()
        assert after["version"] == before["version"] and after["seats"] == before["seats"]


def test_a_grade_range_change_takes_the_seats_of_pupils_outside_it(world: Flask) -> None:
    with world.app_context():
        def narrow(confirm: Confirm) -> Any:
            return service.save_session(term_of(), _session("S12").id, {"grade_lo": 5, "grade_hi": 6},
                                        actor=_admin(), confirm=confirm)

        preview = _preview(narrow)  # P001 is in grade 3
        assert [(m.number, m.sessions) for m in preview.lost] == [("P001", ("S12",))]
        narrow(Confirm("只收高年级", preview.token))
        assert term_of().plan_version == 2


def test_a_teacher_losing_a_qualification_nobody_else_has_costs_the_seats(world: Flask) -> None:
    with world.app_context():
        t1 = _teacher("T1").id

        def unqualify(confirm: Confirm) -> Any:
            def apply(teacher: Teacher | None) -> Teacher:
                assert teacher is not None
                teacher.qualifications = []
                return teacher
            return service.save_teacher(term_of(), t1, apply, actor=_admin(), confirm=confirm)

        preview = _preview(unqualify)
        assert [(m.number, m.sessions) for m in preview.lost] == [("P001", ("S12",))]
        assert ("李老师", "S12", False) in preview.staffing
        unqualify(Confirm("资格证过期", preview.token))
        db.session.expire_all()
        assert _teacher("T1").qualifications == [] and term_of().plan_version == 2


def test_a_teacher_losing_a_slot_is_replaced_by_an_idle_one_without_confirmation(world: Flask) -> None:
    with world.app_context():
        t3 = _teacher("T3").id
        monday_p1 = (1, _session("S11").period_id)

        def apply(teacher: Teacher | None) -> Teacher:
            assert teacher is not None
            for slot in list(teacher.availability):
                if (slot.day, slot.period_id) == monday_p1 and slot.term_id == term_of().id:
                    db.session.delete(slot)
            return teacher

        seats_before = _state()["seats"]
        service.save_teacher(term_of(), t3, apply, actor=_admin(), confirm=Confirm())
        db.session.expire_all()
        leads = set(db.session.scalars(select(RunStaffing.teacher_id).where(
            RunStaffing.session_id == _session("S11").id)))
        assert leads == {_teacher("T2").id}  # idle, available, no qualification needed for homework
        assert _state()["seats"] == seats_before
        assert term_of().plan_version == 1
        assert db.session.scalar(select(TeacherAvailability).where(
            TeacherAvailability.teacher_id == t3, TeacherAvailability.day == 1,
            TeacherAvailability.period_id == monday_p1[1])) is None


def test_a_teacher_edit_of_name_contact_or_language_only_just_saves(world: Flask) -> None:
    """No part of the plan: saved without the amendment (which would offer the free Tuesday seats to the
    waitlist); the weekly cap is part of it, and its edit goes through the amendment."""
    with world.app_context():
        t1 = _teacher("T1").id
        before = _state()

        def contact(teacher: Teacher | None) -> Teacher:
            assert teacher is not None
            teacher.name, teacher.phone, teacher.email, teacher.locale = "李明", "13900000001", "li@x.example", "en"
            return teacher

        service.save_teacher(term_of(), t1, contact, actor=_admin(), confirm=Confirm())
        assert _state() == before
        saved = _teacher("T1")
        assert (saved.name, saved.phone, saved.email, saved.locale) == ("李明", "13900000001", "li@x.example", "en")

        def cap(teacher: Teacher | None) -> Teacher:
            assert teacher is not None
            teacher.max_sessions = 4
            return teacher

        service.save_teacher(term_of(), t1, cap, actor=_admin(), confirm=Confirm())
        assert _state()["offers"] == 2 and _teacher("T1").max_sessions == 4


def test_deleting_a_session_with_pupils_is_an_amendment(world: Flask) -> None:
    with world.app_context():
        s12 = _session("S12").id

        def remove(confirm: Confirm) -> Any:
            return service.delete_session(term_of(), s12, actor=_admin(), confirm=confirm)

        preview = _preview(remove)
        assert [(m.number, m.sessions) for m in preview.lost] == [("P001", ("S12",))]
        remove(Confirm("场地维修", preview.token))
        db.session.expire_all()
        assert db.session.get(Session, s12) is None
        lost = db.session.scalars(select(PlanChange).where(PlanChange.gained.is_(False))).all()
        assert [(c.pupil_id, c.day, c.session_id) for c in lost] == [(pupil_id("P001"), 1, None)]
        assert term_of().plan_version == 2


def test_deleting_a_teacher_nobody_can_replace_is_an_amendment(world: Flask) -> None:
    with world.app_context():
        t1 = _teacher("T1").id

        def remove(confirm: Confirm) -> Any:
            return service.delete_teacher(term_of(), t1, actor=_admin(), confirm=confirm)

        preview = _preview(remove)
        assert [(m.number, m.sessions) for m in preview.lost] == [("P001", ("S12",))]
        remove(Confirm("老师离职", preview.token))
        db.session.expire_all()
        assert db.session.get(Teacher, t1) is None and term_of().plan_version == 2
        assert db.session.get(Term, term_of().id) is not None


def test_deleting_an_unused_session_needs_no_confirmation(world: Flask) -> None:
    with world.app_context():
        s14 = _session("S14").id
        change = service.delete_session(term_of(), s14, actor=_admin(), confirm=Confirm())
        assert change.lost == [] and db.session.get(Session, s14) is None and term_of().plan_version == 1


def test_a_cut_capacity_takes_the_seats_at_the_end_of_the_waitlist_order(app: Flask) -> None:
    """Of four pupils in a session cut to two seats, the two the queue ranks last lose (weight, then lottery)."""
    with app.app_context():
        numbers = ("A1", "A2", "A3", "A4")
        term = small_term([session("A", capacity=4, ppt=10)], [teacher("T1", [(1, "P1")])],
                          [pupil("A1", priority=2), pupil("A2"), pupil("A3"), pupil("A4")],
                          [request(n) for n in numbers], placement="offer")
        publish(term, [(n, "A") for n in numbers], [("T1", "A")])
        admin = create_user("school_admin", school=term.school, login="cut-admin")
        found = db.session.scalar(select(Session).where(Session.term_id == term.id))
        assert found is not None
        pupils = {p.number: p for p in db.session.scalars(select(Pupil).where(Pupil.school_id == term.school_id))}
        seed = int(term.lottery_seed)
        expected = sorted(("A2", "A3", "A4"), key=lambda n: lottery_key(seed, pupils[n]))[-2:]

        def cut(confirm: Confirm) -> Any:
            return service.save_session(term, found.id, {"capacity": 2}, actor=admin, confirm=confirm)

        with pytest.raises(ConfirmationNeeded) as needed:
            cut(Confirm())
        preview = needed.value.preview
        assert sorted(m.number for m in preview.lost) == sorted(expected)  # A1 (weight 4) always stays
        cut(Confirm("教室变小", preview.token))
        seated = set(db.session.scalars(select(Pupil.number).join(RunAssignment, RunAssignment.pupil_id == Pupil.id)
                                        .where(RunAssignment.run_id == term.published_run_id)))
        assert seated == set(numbers) - set(expected)
