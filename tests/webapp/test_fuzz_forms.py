"""Property-based fuzzing of every HTML form: a valid CSRF token, then hostile field values.

Each form gets 1,000 generated submissions: unicode text (Chinese, right-to-left, emoji, control characters
without NUL), 10–100 KB strings, HTML/script payloads, numbers as text, empty values, lists where a single value
is expected, missing fields and unknown extra fields. Plausible values (valid ids, codes, phone numbers) are
mixed in so that deeper branches are reached too.

Checked for every submission: no server error (an exception in the view or a 5xx), the CSRF token was accepted,
no submitted value containing `<` comes back unescaped, and a refused submission (anything but a redirect)
leaves the form's tables exactly as they were.

The app, the school and the users are built once per test; the Hypothesis loop only posts. Passwords are hashed
with cheap argon2 parameters for the fuzzed app, so a login attempt costs milliseconds instead of ~50 ms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from werkzeug.test import TestResponse

import webapp.security as security
from tests.conftest import TEST_ENROLMENT_CODE, TEST_PASSWORD, _make_app, make_school
from tests.webapp.factories import create_user, csrf_token
from webapp.extensions import db
from webapp.models import CareRequest, Period, Pupil, Session, Teacher, Term, utcnow

pytestmark = pytest.mark.slow  # about 3 minutes for the 15 forms on 2 cores

FUZZ = settings(max_examples=1000, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

PARENT_PHONE = "13800000001"
ADMIN_LOGIN = "fuzz-admin"
SCRIPT = "<script>alert(1)</script>"
HTML_PAYLOADS = (
    SCRIPT,
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "<iframe src=javascript:alert(1)>",
    "{{ 7*7 }}<b>{% raw %}",
    "javascript:alert(1)//<a>",
)
NUMBERISH = ("0", "1", "-1", "2", "6", "7", "40", "2000", "2001", "1e309", "NaN", "inf", "1.5", "０", "١٢",
             "99999999999999999999999", "-0", " 3 ", "0x10", "1_000")
SPECIAL = ("", " ", "\t", "\u200f", "\u202e", "null", "None", "[]", "{}", "y", "on", "true", "false",
           "2026-09-01", "2026-09-01T08:00", "2026-13-45T25:61", "0001-01-01T00:00", "9999-12-31T23:59",
           "2026-02-30", "1:1", "1:999", "13800138000", "+86 138-0013-8000", "P001", "S11", "homework",
           "KM-TEST-0001", TEST_ENROLMENT_CODE, TEST_PASSWORD)

_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_unicode_text = st.text(alphabet=_chars, max_size=40)
_chinese = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=20)
_rtl = st.text(alphabet=st.characters(min_codepoint=0x0590, max_codepoint=0x06FF), min_size=1, max_size=20)
_emoji = st.text(alphabet=st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF), min_size=1, max_size=10)
_controls = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x1F), min_size=1, max_size=10)
_html = st.builds(lambda payload, before, after: before + payload + after,
                  st.sampled_from(HTML_PAYLOADS), _unicode_text, _unicode_text)
_huge = st.builds(lambda unit, size: (unit * (size // len(unit) + 1))[:size],
                  st.one_of(st.sampled_from(HTML_PAYLOADS), st.text(alphabet=_chars, min_size=1, max_size=8)),
                  st.integers(min_value=10_000, max_value=100_000))
_numbers = st.one_of(st.sampled_from(NUMBERISH), st.integers().map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(str))

SCALAR: st.SearchStrategy[str] = st.one_of(
    _unicode_text, _chinese, _rtl, _emoji, _controls, _html, _huge, _numbers, st.sampled_from(SPECIAL),
)
MISSING = object()


def field_value(plausible: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Any]:
    """A field's value: hostile scalar, a list of values (for a scalar field), missing, or a plausible value."""
    options: list[st.SearchStrategy[Any]] = [
        SCALAR, SCALAR, st.lists(SCALAR, min_size=2, max_size=3), st.just(MISSING),
    ]
    if plausible is not None:
        options += [plausible, plausible, st.lists(plausible, min_size=1, max_size=3)]
    return st.one_of(options)


_extra_key = st.text(alphabet=_chars, min_size=1, max_size=12).filter(lambda key: key != "csrf_token")
EXTRAS = st.dictionaries(_extra_key, st.one_of(SCALAR, st.lists(SCALAR, max_size=2)), max_size=3)


# ------------------------------------------------------------------------------------------ the world


@dataclass
class FuzzWorld:
    app: Flask
    ids: dict[str, int] = field(default_factory=dict)
    clients: dict[str, FlaskClient] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def fresh_client(self, role: str) -> FlaskClient:
        """A new client for `role` (signed in through the real form), with its CSRF token."""
        client = self.app.test_client()
        if role != "anonymous":
            login = PARENT_PHONE if role == "parent" else ADMIN_LOGIN
            token = csrf_token(client, "/login")
            response = client.post("/login", data={"login": login, "password": TEST_PASSWORD, "csrf_token": token})
            assert response.status_code == 302, response.get_data(as_text=True)[:500]
        self.clients[role] = client
        self.tokens[role] = csrf_token(client, "/login" if role == "anonymous" else "/account")
        return client


@pytest.fixture
def world(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FuzzWorld]:
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(security, "PASSWORD_HASHER", cheap)
    monkeypatch.setattr(security, "_DUMMY_HASH", cheap.hash("timing-equaliser-not-a-password"))
    app = _make_app(tmp_path)
    fuzz = FuzzWorld(app)
    with app.app_context():
        school = make_school("KM-TEST-0001")
        pupils = {p.number: p for p in db.session.scalars(select(Pupil).where(Pupil.school_id == school.id))}
        parent = create_user("parent", login=PARENT_PHONE, pupil=pupils["P001"])
        create_user("school_admin", login=ADMIN_LOGIN, school=school)
        term = db.session.scalar(select(Term).where(Term.school_id == school.id))
        assert term is not None
        periods = db.session.scalars(select(Period).where(Period.term_id == term.id)).all()
        # P002 (grade 4) asked for Monday and Tuesday until 17:30, so a pin on S12 or S22 can be valid.
        db.session.add(CareRequest(term_id=term.id, pupil_id=pupils["P002"].id, days=[1, 2], pickup_time="17:30",
                                   periods=[p.code for p in periods if p.code in ("P1", "P2")],
                                   preferences=["football"], status="active", submitted_by=parent.id,
                                   submitted_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
        session = db.session.scalar(select(Session).where(Session.term_id == term.id, Session.code == "S11"))
        teacher = db.session.scalar(select(Teacher).where(Teacher.school_id == school.id))
        assert session is not None and teacher is not None
        fuzz.ids.update({"pupil": pupils["P001"].id, "term": term.id, "session": session.id,
                         "teacher": teacher.id, "activity": session.activity_id,
                         "period": periods[0].id})
    for role in ("anonymous", "parent", "school_admin"):
        fuzz.fresh_client(role)
    yield fuzz
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# ------------------------------------------------------------------------------------------ the forms


@dataclass(frozen=True)
class FormSpec:
    role: str
    url: Callable[[dict[str, int]], str]
    fields: dict[str, st.SearchStrategy[str] | None]
    tables: tuple[str, ...]
    """Tables a refused submission must leave unchanged."""
    ok_statuses: frozenset[int] = frozenset({200, 302})
    accepted: Callable[[TestResponse], bool] = lambda response: response.status_code == 302
    """Whether the app took the submission (then the tables may change)."""
    """Submissions that hit a recorded bug (see the xfail test below); left out of the fuzzing."""


def _plausible(*values: str) -> st.SearchStrategy[str]:
    return st.sampled_from(values)


def _ints(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(min_value=low, max_value=high).map(str)


_codes = st.from_regex(r"\A[A-Za-z0-9_.\-]{1,12}\Z")
_strong_password = _plausible(TEST_PASSWORD, "Another-Strong-Pass-1", "長城永遠不倒1234", "short")
_slots = st.builds(lambda day, period: f"{day}:{period}", st.integers(0, 8), st.integers(0, 12))

FORMS: dict[str, FormSpec] = {
    "register": FormSpec("anonymous", lambda ids: "/register", {
        "phone": st.one_of(_plausible(PARENT_PHONE, "+86 139 0000 0000"),
                           st.from_regex(r"\A1[3-9]\d{9}\Z")),
        "display_name": _chinese, "password": _strong_password, "confirm": _strong_password,
        "consent": _plausible("y", "on", ""),
    }, ("users", "guardianships")),
    "login": FormSpec("anonymous", lambda ids: "/login", {
        "login": _plausible(PARENT_PHONE, ADMIN_LOGIN, "nobody"), "password": _plausible("wrong-password-1"),
    }, ("users",)),
    "link": FormSpec("parent", lambda ids: "/family/link", {
        "school_code": _plausible("KM-TEST-0001", "KM-TEST-9999"),
        "pupil_number": _plausible("P001", "P003", "P999"),
        "enrolment_code": _plausible("WRONG234", TEST_ENROLMENT_CODE.lower()),
        "relation": _plausible("mother", "father", "grandparent", "other", "robot"),
        "consent": _plausible("y", ""),
    }, ("guardianships", "pupils")),
    "child_request": FormSpec("parent", lambda ids: f"/family/child/{ids['pupil']}", {
        "days": _plausible("1", "2", "3", "7", "0"),
        "pickup_time": _plausible("16:30", "17:30", "18:30", "25:00", ""),
        "pref1": _plausible("homework", "football", "art", "care", "nope", ""),
        "pref2": _plausible("homework", "art", "care", ""),
        "pref3": _plausible("homework", "care", ""),
    }, ("care_requests",)),
    "password": FormSpec("parent", lambda ids: "/account/password", {
        "current": _plausible("wrong-password-1"), "password": _strong_password, "confirm": _strong_password,
    }, ("users",)),
    "password_reset": FormSpec("anonymous", lambda ids: "/password/reset", {
        "phone": _plausible(PARENT_PHONE, "+86 139 0000 0000", "nobody"), "code": _plausible("ABCDE-FGHJK", ""),
        "password": _strong_password, "confirm": _strong_password,
    }, ("users", "password_reset_codes"), ok_statuses=frozenset({200, 302, 422})),
    "school_contact": FormSpec("school_admin", lambda ids: "/admin/contact", {"contact": _chinese}, ("schools",)),
    "activity_new": FormSpec("school_admin", lambda ids: "/admin/activities/new", {
        "code": _codes, "name": _chinese, "category": _plausible("sports", "arts", ""),
        "qualification": _plausible("sports", ""), "description": _chinese,
    }, ("activities",)),
    "activity_edit": FormSpec("school_admin", lambda ids: f"/admin/activities/{ids['activity']}/edit", {
        "code": _plausible("homework", "football", "hw2"), "name": _chinese, "category": _plausible("homework"),
        "qualification": _plausible("", "sports"),
    }, ("activities",)),
    "session_new": FormSpec("school_admin", lambda ids: "/admin/sessions/new", {
        "code": _codes, "activity": _ints(0, 12), "day": _ints(0, 8), "period": _ints(0, 8),
        "room": _chinese, "capacity": _ints(-5, 2100), "grade_lo": _ints(0, 7), "grade_hi": _ints(0, 7),
        "pupils_per_teacher": _ints(0, 2100), "min_pupils": _ints(-1, 2100),
    }, ("sessions",)),
    "session_edit": FormSpec("school_admin", lambda ids: f"/admin/sessions/{ids['session']}/edit", {
        "code": _plausible("S11", "S12", "S11b"), "activity": _ints(0, 12), "day": _ints(0, 8),
        "period": _ints(0, 8), "room": _chinese, "capacity": _ints(-5, 2100), "grade_lo": _ints(0, 7),
        "grade_hi": _ints(0, 7), "pupils_per_teacher": _ints(0, 2100), "min_pupils": _ints(-1, 2100),
    }, ("sessions",)),
    "teacher_new": FormSpec("school_admin", lambda ids: "/admin/teachers/new", {
        "code": _codes, "name": _chinese, "qualifications": _plausible("sports, arts", "体育、美术", ""),
        "max_sessions": _ints(-1, 51), "active": _plausible("y", ""), "available": _slots,
    }, ("teachers", "teacher_availability")),
    "teacher_edit": FormSpec("school_admin", lambda ids: f"/admin/teachers/{ids['teacher']}/edit", {
        "code": _plausible("T1", "T2", "T9"), "name": _chinese, "qualifications": _plausible("sports", ""),
        "max_sessions": _ints(-1, 51), "active": _plausible("y", ""), "available": _slots,
    }, ("teachers", "teacher_availability")),
    "window": FormSpec("school_admin", lambda ids: "/admin/window", {
        "opens_at": _plausible("2026-09-01T08:00", "2026-09-10T08:00", ""),
        "closes_at": _plausible("2026-09-05T18:00", "2026-09-01T08:00", ""),
        "results_date": _plausible("2026-09-20", "2026-02-30", ""),
        "seat_policy": _plausible("spread", "whole_week", "first_come", ""),
    }, ("terms",)),
    "pins": FormSpec("school_admin", lambda ids: f"/admin/runs/term/{ids['term']}/pins", {
        "pupil_number": _plausible("P001", "P002", "P999", " P002 "),
        "session_code": _plausible("S11", "S12", "S13", "S22", "S99"),
    }, ("pins",)),
    "codes": FormSpec("school_admin", lambda ids: "/admin/codes", {
        "class_name": _plausible("", "3-1", "4-1", "9-9"), "confirm": _plausible("", "y"),
    }, ("pupils",), accepted=lambda response: 'name="confirm"' not in response.get_data(as_text=True)),
    "placement": FormSpec("school_admin", lambda ids: f"/admin/runs/term/{ids['term']}/offers", {
        "placement": _plausible("offer", "automatic", "lottery"), "hold_hours": _ints(-1, 400),
    }, ("terms", "schools"), frozenset({200, 302, 400, 409})),
    "child_change": FormSpec("parent", lambda ids: f"/family/child/{ids['pupil']}/change", {
        "change-effective_on": _plausible("2026-09-01", "2099-01-01", "2026-02-30", ""),
        "change-days": _plausible("1", "2", "7", "0"), "change-pickup_time": _plausible("16:30", "25:00", ""),
        "change-pref1": _plausible("homework", "nope", ""), "change-withdraw": _plausible("y", ""),
    }, ("care_requests", "change_requests"), frozenset({302, 422})),
    "choose_term": FormSpec("school_admin", lambda ids: "/admin/term", {
        "term_id": _plausible("1", "2", "999"),
    }, ("terms",), frozenset({200, 302, 404})),
}

def snapshot(app: Flask, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    with app.app_context():
        existing = set(db.inspect(db.engine).get_table_names())
        result = {}
        for name in tables:
            assert name in existing, f"no table {name}"
            rows = db.session.execute(text(f"SELECT * FROM {name} ORDER BY 1")).all()
            result[name] = [tuple(row) for row in rows]
        db.session.remove()
        return result


def _values(data: dict[str, Any]) -> Iterator[str]:
    for value in data.values():
        if isinstance(value, list):
            yield from value
        else:
            yield value


@pytest.mark.parametrize("name", sorted(FORMS))
def test_form_survives_fuzz(world: FuzzWorld, name: str) -> None:
    spec = FORMS[name]
    url = spec.url(world.ids)
    client = world.clients[spec.role]
    # What the page shows for harmless input: markup found there is not a reflection.
    baseline = client.get(url).get_data(as_text=True)
    baseline += client.post(url, data={"csrf_token": world.tokens[spec.role]}).get_data(as_text=True)
    fields = {key: field_value(plausible) for key, plausible in spec.fields.items()}

    @FUZZ
    @given(data=st.fixed_dictionaries(fields), extras=EXTRAS)
    def fuzz(data: dict[str, Any], extras: dict[str, Any]) -> None:
        form = {key: value for key, value in {**extras, **data}.items() if value is not MISSING}
        client = world.clients[spec.role]
        before = snapshot(world.app, spec.tables)
        response = client.post(url, data={**form, "csrf_token": world.tokens[spec.role]})
        body = response.get_data(as_text=True)
        assert response.status_code in spec.ok_statuses, (response.status_code, body[:300])
        for value in _values(form):
            if "<" in value and value not in baseline:
                assert value not in body, f"unescaped reflection of {value[:80]!r}"
        assert SCRIPT not in body
        if not spec.accepted(response):
            assert snapshot(world.app, spec.tables) == before, "a refused submission changed the database"
        if spec.role == "anonymous" and response.status_code == 302:
            world.fresh_client("anonymous")  # a successful sign-up signs the client in

    fuzz()


def test_choose_term_with_an_id_beyond_64_bits(world: FuzzWorld) -> None:
    response = world.clients["school_admin"].post(
        "/admin/term", data={"term_id": str(2**63), "csrf_token": world.tokens["school_admin"]})
    assert response.status_code == 404
    too_big = world.clients["school_admin"].get(f"/admin/sessions/{2**64}/edit")
    assert too_big.status_code == 404
