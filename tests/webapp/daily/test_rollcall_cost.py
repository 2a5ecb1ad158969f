"""What a roll-call tap costs, in SQL statements (deterministic, unlike timings), on SQLite and PostgreSQL;
the row a tap sent by the page's script gets back; and `load_seat` read in one statement giving what
`load_roster` gives for one pupil and session (and a calendar read for one date, as the whole calendar).

`python -m bench.load.rollcall_cost` measures the same taps' CPU time on the 3,000-pupil bench school.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from tests.conftest import make_school
from tests.webapp.daily.conftest import (
    EARLY_CLOSE,
    HOLIDAY,
    MAKEUP_SATURDAY,
    MONDAY,
    TUESDAY,
    WINTER_MONDAY,
    make_calendar,
    make_duty_teacher,
    utc,
)
from tests.webapp.factories import create_user, csrf_token, publish_for, pupil_id, sign_in, term_of
from webapp.daily.calendar import service_day
from webapp.daily.roster import calendar_rules, calendar_rules_on, load_roster, load_seat
from webapp.extensions import db
from webapp.models import (
    Absence,
    ChangeRequest,
    Notification,
    PickupWindow,
    Pupil,
    RollCallMark,
    SchoolCalendar,
    Session,
    Term,
)

MARK_STATEMENTS = 7
"""Per tap, whether first mark or correction, fetched or posted as a form (the redirect's page not counted):
the signed-in user, the duty teacher, the pupil's lock, the pupil's marks today, the seat today, the mark
and its audit row."""
TOLD_STATEMENTS = 4
"""More for the first unreported `absent` of the day, which tells the family: the activity's name, the
guardians, their inbox row and its delivery."""
PAGE_STATEMENTS = 13
"""The session page of the roll-call (the reload after a tap without the script)."""
FETCH = {"X-Requested-With": "fetch"}
CLIENT_ID_RE = re.compile(r'name="client_id" value="([^"]+)"')


@contextmanager
def counted(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine executes inside the block."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _world(app: Flask) -> tuple[int, int, int]:
    """The test school's published plan, its calendar and a duty teacher: (S11, S12, P001)."""
    with app.app_context():
        school = make_school()
        pupil = pupil_id("P001")
        publish_for(pupil)
        make_calendar(term_of().id)
        make_duty_teacher(school.id)
        create_user("parent", login="13800000001", pupil=db.session.get(Pupil, pupil))
        s11, s12 = (db.session.scalar(select(Session.id).where(Session.code == code)) for code in ("S11", "S12"))
        assert s11 is not None and s12 is not None
        return s11, s12, pupil


def _tap(client: FlaskClient, token: str, session_id: int, pupil: int, status: str, client_id: str,
         reason: str = "", *, fetch: bool = True) -> Any:
    return client.post(f"/daily/duty/sessions/{session_id}/mark", headers=FETCH if fetch else {},
                       data={"csrf_token": token, "pupil_id": pupil, "session_id": session_id,
                             "client_id": client_id, "status": status, "reason": reason})


def _check_statements(app: Flask) -> None:
    s11, s12, pupil = _world(app)
    app.config["NOW"] = utc(MONDAY, "15:40")
    client = app.test_client()
    sign_in(client, "duty-x")
    page = f"/daily/duty/sessions/{s11}"
    token = csrf_token(client, page)
    with counted(app) as seen:
        assert client.get(page).status_code == 200
    assert len(seen) <= PAGE_STATEMENTS, seen
    # a mark and a correction, each fetched and as a plain form; then the family is told of an absence
    taps = [(s11, "present", "", True, 0), (s11, "late", "迟到", True, 0), (s12, "present", "", False, 0),
            (s12, "late", "迟到", False, 0), (s12, "absent", "早退", True, TOLD_STATEMENTS),
            (s11, "absent", "没来", True, 0)]
    for number, (session_id, status, reason, fetch, more) in enumerate(taps):
        with counted(app) as seen:
            answer = _tap(client, token, session_id, pupil, status, f"bounded-{number}", reason, fetch=fetch)
        assert answer.status_code == (200 if fetch else 302), answer.get_data(as_text=True)[:300]
        assert len(seen) <= MARK_STATEMENTS + more, "\n".join(seen)
    with app.app_context():
        assert [m.status for m in db.session.scalars(select(RollCallMark).order_by(RollCallMark.id))] == [
            "present", "late", "present", "late", "absent", "absent"]
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 1  # once a day


def test_statements_per_mark_are_bounded_sqlite(app: Flask) -> None:
    _check_statements(app)


@pytest.mark.postgres
def test_statements_per_mark_are_bounded_postgresql(pg_app: Flask) -> None:
    _check_statements(pg_app)


def test_a_tap_from_the_page_script_gets_its_row_back(app: Flask) -> None:
    s11, _s12, pupil = _world(app)
    app.config["NOW"] = utc(MONDAY, "15:40")
    client = app.test_client()
    sign_in(client, "duty-x")
    token = csrf_token(client, f"/daily/duty/sessions/{s11}")
    answer = _tap(client, token, s11, pupil, "present", "row-back-1")
    row = answer.get_data(as_text=True)
    assert answer.status_code == 200 and len(row) < 3000 and "<html" not in row
    assert row.strip().startswith(f'<li id="pupil-{pupil}">') and "已到" in row
    assert 'value="present" class="btn chosen"' in row and 'name="reason"' in row  # a change needs a reason
    found = CLIENT_ID_RE.search(row)
    assert found is not None and found.group(1) != "row-back-1"  # the next tap is a new mark
    refused = _tap(client, token, s11, pupil, "late", "row-back-2")
    assert refused.status_code == 422 and refused.mimetype == "text/plain"
    assert refused.get_data(as_text=True) == "修改考勤须填写原因。"
    again = _tap(client, token, s11, pupil, "present", "row-back-1")  # the same form again: the page reloads
    assert again.status_code == 204
    with app.app_context():
        stranger = pupil_id("P002")
    assert _tap(client, token, s11, stranger, "present", "row-back-3").status_code == 409
    assert _tap(client, "forged", s11, pupil, "late", "row-back-4", "x").status_code == 400
    with app.app_context():
        assert [m.client_id for m in db.session.scalars(select(RollCallMark))] == ["row-back-1"]


def test_load_seat_is_load_roster_for_one_pupil_and_session(app: Flask) -> None:
    s11, s12, pupil = _world(app)
    late_autumn = date(2026, 11, 16)  # a Monday in two seasonal windows: the later-starting one applies
    with app.app_context():
        term = db.session.get(Term, term_of().id)
        assert term is not None
        calendar = db.session.scalar(select(SchoolCalendar).where(SchoolCalendar.term_id == term.id))
        assert calendar is not None
        db.session.add(PickupWindow(calendar_id=calendar.id, starts_on=date(2026, 11, 15),
                                    ends_on=date(2026, 11, 30), pickup_time="16:45", note="期末"))
        db.session.add(Absence(pupil_id=pupil, first_day=MONDAY, last_day=MONDAY, reason="看牙"))
        db.session.add(ChangeRequest(term_id=term.id, pupil_id=pupil, effective_on=date(2026, 9, 14),
                                     withdraw=False, days=[1], periods=["P1"], state="pending"))
        db.session.add(ChangeRequest(term_id=term.id, pupil_id=pupil, effective_on=date(2026, 9, 21),
                                     withdraw=False, days=[1], periods=["P1", "P2"], state="pending"))
        db.session.add(ChangeRequest(term_id=term.id, pupil_id=pupil, effective_on=date(2026, 12, 7),
                                     withdraw=True, state="pending"))
        db.session.commit()
        school_id = term.school_id
        days = [MONDAY, TUESDAY, date(2026, 9, 14), date(2026, 9, 21), HOLIDAY, MAKEUP_SATURDAY, EARLY_CLOSE,
                WINTER_MONDAY, late_autumn, date(2026, 12, 7), date(2027, 3, 1)]
        seen = set()
        for on in days:
            for session_id in (s11, s12):
                assert service_day(calendar_rules_on(term, on), on) == service_day(calendar_rules(term), on)
                seat = load_seat(school_id, on, session_id, pupil)
                whole = load_roster(term, on, pupil_id=pupil, session_id=session_id).session(session_id)
                assert (seat.entry if seat is not None else None) == whole, (on, session_id)
                if seat is not None:
                    assert seat.pupil.id == pupil and seat.session.id == session_id and seat.handover is None
                    seen.add((bool(seat.entry.reported_absent), seat.entry.end))
        assert seen == {(True, "16:30"), (True, "17:30"), (False, "16:30"), (False, "17:30"), (False, "17:00"),
                        (False, "16:45")}
        other = make_school("KM-TEST-0002")
        stranger = db.session.scalar(select(Pupil.id).where(Pupil.school_id == other.id))
        assert stranger is not None and load_seat(other.id, MONDAY, s11, stranger) is None
        assert load_seat(school_id, MONDAY, s11, stranger) is None
