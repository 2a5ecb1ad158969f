"""A pupil leaves the school: the pupil file's 在读状态 column and the pupil page's 办理离校, one service step.

The world (`_world`): session A (Monday P1, grades 3–6) has two seats and one teacher for two; S1 and S2 sit
there, W1 waits for Monday. The school offers freed seats (placement "offers"). S1's and W1's families have an
account. Tests that write run on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import make_school
from tests.webapp.admin.test_import_published import xlsx
from tests.webapp.allocation.test_waitlist import _pairs
from tests.webapp.daily.conftest import make_calendar
from tests.webapp.factories import (
    api_token,
    bearer,
    consistent,
    create_user,
    csrf_token,
    post_form,
    publish,
    pupil,
    request,
    session,
    sign_in,
    small_term,
    teacher,
)
from webapp.admin.importer import import_file
from webapp.allocation import service as allocation
from webapp.allocation.service import IMPORT_REASONS, Confirm
from webapp.daily.roster import load_roster
from webapp.extensions import db
from webapp.labels import amendment_reason
from webapp.models import (
    AuditLog,
    CareRequest,
    Notification,
    NotificationEvent,
    OfferState,
    Pin,
    PlanAmendment,
    Pupil,
    School,
    Session,
    Term,
    User,
    WaitlistOffer,
)
from webapp.rosters.data import load_rosters
from webapp.services import term_to_instance

HEADER = ["学号", "姓名", "年级", "班级", "优先级", "在读状态"]
FUTURE_MONDAY = date(2027, 1, 4)


def _world(*, published: bool = True) -> Term:
    people = [pupil("S1"), pupil("S2"), pupil("W1", priority=1)]
    term = small_term([session("A", capacity=2, ppt=2, grades=(3, 6))], [teacher("T1", [(1, "P1")])],
                      people, [request(p.id) for p in people], placement="offers")
    if published:
        publish(term, [("S1", "A"), ("S2", "A")], [("T1", "A")])
    create_user("school_admin", school=term.school, login="leave-admin")
    create_user("parent", login="13900000001", pupil=db.session.get(Pupil, _id("S1")))
    create_user("parent", login="13900000009", pupil=db.session.get(Pupil, _id("W1")))
    return term


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest) -> Flask:
    app: Flask = request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
    with app.app_context():
        _world()
    return app


def _id(number: str) -> int:
    found = db.session.scalar(select(Pupil.id).where(Pupil.number == number))
    assert found is not None
    return int(found)


def _session(code: str) -> int:
    found = db.session.scalar(select(Session.id).where(Session.code == code))
    assert found is not None
    return int(found)


def _admin() -> User:
    found = db.session.scalar(select(User).where(User.username == "leave-admin"))
    assert found is not None
    return found


def _term() -> Term:
    term = db.session.scalar(select(Term).join(School).where(School.code == "KM-WL-0001"))
    assert term is not None
    return term


def _file(status: dict[str, Any], grades: dict[str, int] | None = None) -> bytes:
    """The school's pupils as they stand, with the given 在读状态 cells (empty for the others)."""
    rows: list[list[Any]] = [HEADER]
    for p in db.session.scalars(select(Pupil).where(Pupil.school_id == _term().school_id).order_by(Pupil.number)):
        rows.append([p.number, p.name, (grades or {}).get(p.number, p.grade), p.class_name, p.priority,
                     status.get(p.number)])
    return xlsx(rows)


def _import(data: bytes, confirm: Confirm | None) -> Any:
    term = _term()
    return import_file("pupils", "pupils.xlsx", data, term.school, term, confirm=confirm)


def _state() -> dict[str, Any]:
    """Everything a refused or unconfirmed change must leave as it was."""
    db.session.expire_all()
    return {
        "version": _term().plan_version,
        "active": sorted(db.session.execute(select(Pupil.number, Pupil.active)).all()),
        "requests": sorted(db.session.execute(select(CareRequest.pupil_id, CareRequest.status)).all()),
        "seats": _pairs(int(_term().published_run_id or 0)),
        "offers": db.session.scalar(select(func.count()).select_from(WaitlistOffer)),
        "messages": db.session.scalar(select(func.count()).select_from(Notification)),
        "audit": db.session.scalar(select(func.count()).select_from(AuditLog)),
    }


def _told(number: str) -> list[str]:
    return list(db.session.scalars(select(Notification.event).where(Notification.pupil_id == _id(number))
                                   .order_by(Notification.id)))


def _open_offers() -> set[tuple[str, int]]:
    return set(db.session.execute(
        select(Pupil.number, WaitlistOffer.day).join(Pupil, Pupil.id == WaitlistOffer.pupil_id)
        .where(WaitlistOffer.state == OfferState.OPEN.value)).all())


# ------------------------------------------------------------------------------------------ the column


@pytest.fixture
def school(app: Flask) -> Any:
    with app.test_request_context("/admin/import/pupils"):
        yield make_school()


def test_the_status_column_takes_chinese_and_english_words_and_empty_means_on_the_roll(school: School) -> None:
    rows = [["学号", "姓名", "年级", "在读状态"], ["N1", "甲", 3, "在读"], ["N2", "乙", 3, "离校"],
            ["N3", "丙", 3, "Active"], ["N4", "丁", 3, "LEFT"], ["N5", "戊", 3, None], ["N6", "己", 3, " left "]]
    result = import_file("pupils", "p.xlsx", xlsx(rows), school, school.terms[0])
    assert result.ok, [p.text for p in result.problems]
    active = dict(db.session.execute(select(Pupil.number, Pupil.active).where(Pupil.number.like("N%"))).all())
    assert active == {"N1": True, "N2": False, "N3": True, "N4": False, "N5": True, "N6": False}
    back = import_file("pupils", "p.xlsx", xlsx([["学号", "姓名", "年级", "在读状态"], ["N2", "乙", 3, "在读"]]),
                       school, school.terms[0])
    assert back.ok and back.updated == 1
    assert db.session.scalar(select(Pupil.active).where(Pupil.number == "N2")) is True


def test_an_unknown_status_is_refused_with_its_row_and_column_and_nothing_written(school: School) -> None:
    before = db.session.scalar(select(func.count()).select_from(Pupil))
    rows = [["学号", "姓名", "年级", "在读状态"], ["N1", "甲", 3, "在读"], ["N2", "乙", 3, "转学"]]
    result = import_file("pupils", "p.xlsx", xlsx(rows), school, school.terms[0])
    assert [p.text for p in result.problems] == [
        "第 3 行，「在读状态」列：「转学」不是在读状态：请填写“在读”或“离校”（也可写英文 active 或 left）。"]
    assert db.session.scalar(select(func.count()).select_from(Pupil)) == before


def test_an_unknown_status_in_english(app: Flask) -> None:
    with app.test_request_context("/", headers={"Cookie": "lang=en"}):
        school = make_school()
        data = b"Pupil number,Name,Grade,Status\r\n1,Tom,3,moved away\r\n"
        result = import_file("pupils", "p.csv", data, school, school.terms[0])
        assert [p.text for p in result.problems] == [
            "Row 2, column “Status”: “moved away” is not a status: write 在读 (on the roll) or 离校 (left the "
            "school); English active or left is accepted too."]


# ------------------------------------------------------------------------------------------ under a published plan


def test_a_file_marking_a_pupil_left_is_previewed_then_frees_the_seats_as_one_amendment(world: Flask) -> None:
    with world.app_context():
        data = _file({"S1": "离校"})
        before = _state()
        previewed = _import(data, Confirm())
        assert previewed.confirmation is not None and not previewed.ok
        assert _state() == before, "a preview wrote something"
        preview = previewed.confirmation.preview
        assert [(m.number, m.sessions) for m in preview.leaving] == [("S1", ("A",))]
        assert [(m.number, m.day, m.sessions) for m in preview.lost] == [("S1", 1, ("A",))]
        assert [(m.number, m.day) for m in preview.offered] == [("W1", 1)]
        assert preview.families == 2

        done = _import(data, Confirm("学生转学", preview.token))
        assert done.ok and done.change is not None and done.change.lost == [(_id("S1"), _session("A"))]
        db.session.expire_all()
        term = _term()
        assert db.session.get(Pupil, _id("S1")).active is False  # type: ignore[union-attr]
        assert _pairs(int(term.published_run_id or 0)) == {("S2", "A")}
        assert _open_offers() == {("W1", 1)}
        request_of_s1 = db.session.scalar(select(CareRequest.status).where(CareRequest.pupil_id == _id("S1")))
        assert request_of_s1 == "withdrawn"
        amendment = db.session.scalar(select(PlanAmendment).where(PlanAmendment.version == term.plan_version))
        assert amendment is not None and amendment.kind == "import" and amendment.reason == "学生转学"
        assert [(c.pupil_id, c.gained) for c in amendment.changes] == [(_id("S1"), False)]
        assert _told("S1") == [NotificationEvent.PUPIL_LEFT.value]  # told why, not "timetable changed"
        assert _told("W1") == [NotificationEvent.OFFER_MADE.value]
        left = db.session.scalar(select(AuditLog).where(AuditLog.action == "pupil.leave"))
        assert left is not None and left.detail["freed_seats"] == 1 and left.detail["request_withdrawn"]
        assert consistent(term, objective=False) == []
        assert "S1" not in {p.id for p in term_to_instance(term).pupils}


def test_the_import_page_previews_the_leaving_and_applies_it_once_confirmed(world: Flask) -> None:
    client: FlaskClient = world.test_client()
    sign_in(client, "leave-admin")
    with world.app_context():
        data = _file({"S1": "离校"})
        before = _state()
    token = csrf_token(client, "/admin/import/pupils")
    shown = client.post("/admin/import/pupils", data={"csrf_token": token, "file": (io.BytesIO(data), "p.xlsx")},
                        content_type="multipart/form-data")
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "离校" in html and "将释放的名额" in html and "学生S1" in html
    held = re.search(r'name="held" value="([0-9a-f]{64})"', html)
    plan_token = re.search(r'name="plan_token" value="([^"]+)"', html)
    assert held is not None and plan_token is not None
    with world.app_context():
        assert _state() == before
    done = post_form(client, "/admin/import/pupils/confirm",
                     {"held": held.group(1), "plan_token": plan_token.group(1), "reason": "转学"},
                     token_from="/admin/import/pupils")
    assert done.status_code == 302
    with world.app_context():
        assert _pairs(int(_term().published_run_id or 0)) == {("S2", "A")} and _open_offers() == {("W1", 1)}
        assert _told("S1") == [NotificationEvent.PUPIL_LEFT.value]


def test_a_failure_midway_leaves_nothing_written(world: Flask) -> None:
    """Without the confirming screen, S2's new grade breaks its seat: the whole file is refused, S1's leaving
    (seats freed, request withdrawn, offer made, messages queued) included."""
    with world.app_context():
        before = _state()
        result = _import(_file({"S1": "离校"}, grades={"S2": 2}), None)
        assert not result.ok and result.confirmation is None and result.problems
        assert _state() == before


def test_without_the_confirming_screen_a_leaving_is_applied_with_its_reason(world: Flask) -> None:
    with world.app_context():
        result = _import(_file({"S1": "left"}), None)
        assert result.ok
        db.session.expire_all()
        amendment = db.session.scalar(select(PlanAmendment).where(PlanAmendment.version == _term().plan_version))
        assert amendment is not None and amendment.reason == IMPORT_REASONS["left"].stored
        assert amendment_reason(amendment.reason) == "学生离校"


# ------------------------------------------------------------------------------------------ the next run, rosters


def test_without_a_published_plan_the_pupil_is_only_set_inactive_and_left_out_of_the_next_run(app: Flask) -> None:
    with app.app_context():
        _world(published=False)
        db.session.add(Pin(term_id=_term().id, pupil_id=_id("S1"), session_id=_session("A")))
        db.session.commit()
        assert {p.id for p in term_to_instance(_term()).pupils} == {"S1", "S2", "W1"}
        assert _import(_file({"S1": "离校"}), Confirm()).ok
        db.session.expire_all()
        instance = term_to_instance(_term())
        assert {p.id for p in instance.pupils} == {"S2", "W1"}
        assert {r.pupil for r in instance.requests} == {"S2", "W1"} and instance.fixed == ()
        assert db.session.scalar(select(CareRequest.status).where(CareRequest.pupil_id == _id("S1"))) == "active"
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_a_pupil_who_left_is_on_no_roster(world: Flask) -> None:
    with world.app_context():
        make_calendar(_term().id)
        assert _id("S1") in load_roster(_term(), FUTURE_MONDAY).sessions[0].expected
        allocation.pupil_leaves(_term(), db.session.get(Pupil, _id("S1")), actor=_admin())  # type: ignore[arg-type]
        db.session.expire_all()
        term = _term()
        assert [s.expected for s in load_roster(term, FUTURE_MONDAY).sessions] == [(_id("S2"),)]
        rosters = load_rosters(term, term.published_run)  # type: ignore[arg-type]
        assert [p.number for sheet in rosters.sheets for p in sheet.pupils] == ["S2"]
        assert "S1" not in {row.pupil.number for c in rosters.classes for row in c.rows}


# ------------------------------------------------------------------------------------------ the pupil page


def test_the_pupil_page_records_a_pupil_as_left_and_back(world: Flask) -> None:
    client: FlaskClient = world.test_client()
    with world.app_context():
        s1, s2 = _id("S1"), _id("S2")
        create_user("school_admin", school=make_school("KM-TEST-0009"), login="other-admin")
    other, parent = world.test_client(), world.test_client()
    for who, login in ((client, "leave-admin"), (other, "other-admin"), (parent, "13900000001")):
        sign_in(who, login)
    with world.app_context():
        before = _state()
    page = client.get(f"/admin/pupils/{s1}").get_data(as_text=True)
    assert f'href="/admin/pupils/{s1}/leave"' in page and "办理离校" in page
    confirm = client.get(f"/admin/pupils/{s1}/leave").get_data(as_text=True)
    assert "将释放的名额" in confirm and "A" in confirm and "是，办理离校" in confirm

    assert client.post(f"/admin/pupils/{s1}/leave", data={"confirmed": "1"}).status_code == 400  # no CSRF token
    unconfirmed = post_form(client, f"/admin/pupils/{s1}/leave", {"reason": "转学"})
    assert unconfirmed.status_code == 200
    with world.app_context():
        assert _state() == before

    assert other.get(f"/admin/pupils/{s1}/leave").status_code == 404
    assert post_form(other, f"/admin/pupils/{s1}/leave", {"confirmed": "1"},
                     token_from="/admin/pupils").status_code == 404
    assert post_form(other, f"/admin/pupils/{s1}/return", token_from="/admin/pupils").status_code == 404
    assert post_form(parent, f"/admin/pupils/{s1}/leave", {"confirmed": "1"},
                     token_from="/family/").status_code in (302, 403)
    with world.app_context():
        assert _state() == before

    done = post_form(client, f"/admin/pupils/{s1}/leave", {"confirmed": "1", "reason": ""},
                     token_from=f"/admin/pupils/{s1}/leave")
    assert done.status_code == 302
    with world.app_context():
        term = _term()
        assert _pairs(int(term.published_run_id or 0)) == {("S2", "A")} and _open_offers() == {("W1", 1)}
        amendment = db.session.scalar(select(PlanAmendment).where(PlanAmendment.version == term.plan_version))
        assert amendment is not None and amendment.kind == "seat_removal"
        assert amendment.reason == IMPORT_REASONS["left"].stored
        assert _told("S1") == [NotificationEvent.PUPIL_LEFT.value]
        assert _told("W1") == [NotificationEvent.OFFER_MADE.value]

    shown = client.get(f"/admin/pupils/{s1}").get_data(as_text=True)
    assert "已离校" in shown and "不会恢复" in shown and f"/admin/pupils/{s1}/return" in shown
    listed = client.get("/admin/pupils?status=left").get_data(as_text=True)
    assert f"/admin/pupils/{s1}\"" in listed and f"/admin/pupils/{s2}\"" not in listed and "已离校" in listed
    on_roll = client.get("/admin/pupils?status=active").get_data(as_text=True)
    assert f"/admin/pupils/{s1}\"" not in on_roll and f"/admin/pupils/{s2}\"" in on_roll

    family = parent.get(f"/family/child/{s1}").get_data(as_text=True)
    assert "已登记" in family and "离校" in family and 'name="pickup_time"' not in family
    assert "离校" in parent.get("/family/").get_data(as_text=True)
    refused = world.test_client().put(f"/api/v1/children/{s1}/request", headers=bearer(api_token(
        world.test_client(), "13900000001")), json={"days": [1], "pickup_time": "16:30", "preferences": []})
    assert refused.status_code == 409 and refused.get_json()["error"] == "conflict"

    again = post_form(client, f"/admin/pupils/{s1}/return", token_from=f"/admin/pupils/{s1}")
    assert again.status_code == 302
    with world.app_context():
        assert db.session.get(Pupil, s1).active is True  # type: ignore[union-attr]
        assert _pairs(int(_term().published_run_id or 0)) == {("S2", "A")}  # seats do not come back
        assert db.session.scalar(select(CareRequest.status).where(CareRequest.pupil_id == s1)) == "withdrawn"
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "pupil.return")) is not None


def test_the_service_refuses_a_second_leaving(world: Flask) -> None:
    with world.app_context():
        s1 = db.session.get(Pupil, _id("S1"))
        assert s1 is not None
        allocation.pupil_leaves(_term(), s1, actor=_admin())
        before = _state()
        with pytest.raises(allocation.AlreadyLeft):
            allocation.pupil_leaves(_term(), s1, actor=_admin())
        assert _state() == before
