"""Plain builders for the webapp tests: forms and sign-in, a school's rows, instances, published runs, a city.

Every published run here goes through `webapp.allocation.service.publish_run`, so its version, waitlist numbers
and audit row are the ones the app writes. Call the builders inside an app context unless they take the app.
"""

from __future__ import annotations

import dataclasses
import io
import random
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import Workbook
from sqlalchemy import select, text
from werkzeug.test import TestResponse

from scheduler import domain
from scheduler.explain import explain_unserved
from scheduler.generate import generate
from scheduler.solve import SolverConfig, solve
from scheduler.validation import recompute_objective, validate
from tests.conftest import TEST_PASSWORD, make_school
from webapp.allocation.service import clock, publish_run
from webapp.extensions import db
from webapp.models import (
    Activity,
    AllocationRun,
    CareRequest,
    District,
    Guardianship,
    Period,
    Pin,
    Pupil,
    RunAssignment,
    RunStaffing,
    RunUnserved,
    School,
    Session,
    Teacher,
    Term,
    User,
    utcnow,
)
from webapp.security import hash_password
from webapp.services import (
    instance_to_term,
    run_to_solution,
    school_from_instance,
    store_solution,
    term_to_instance,
)

SCHOOL = "KM-TEST-0001"
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')

# ------------------------------------------------------------------------------------------ forms and sign-in


def csrf_token(client: FlaskClient, url: str = "/login") -> str:
    """The CSRF token embedded in the page at `url` (any page with a form or the header's language switch)."""
    page = client.get(url, follow_redirects=True).get_data(as_text=True)
    match = CSRF_RE.search(page)
    assert match, f"no csrf_token on {url}"
    return match.group(1) or match.group(2)


def post_form(client: FlaskClient, url: str, data: dict[str, Any] | None = None, *, token_from: str | None = None,
              follow_redirects: bool = False) -> TestResponse:
    """POST `data` to `url` with a valid CSRF token read from `token_from` (default: the same URL, else /login)."""
    source = token_from or url
    try:
        token = csrf_token(client, source)
    except AssertionError:
        token = csrf_token(client, "/login")
    return client.post(url, data={**(data or {}), "csrf_token": token}, follow_redirects=follow_redirects)


def sign_in(client: FlaskClient, login: str, password: str = TEST_PASSWORD) -> None:
    """Sign `client` in through the real login form, with its CSRF token; the one way tests sign in."""
    response = post_form(client, "/login", {"login": login, "password": password}, token_from="/login")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def create_user(role: str, *, school: School | None = None, login: str | None = None,
                password: str = TEST_PASSWORD, pupil: Pupil | None = None, district: District | None = None) -> User:
    """A user of `role`: parents get a phone number (and a link to `pupil`), others a username."""
    if role == "parent":
        user = User(role=role, phone=login or "13800138000", password_hash=hash_password(password),
                    consent_policy_version="2026-01", consent_at=utcnow())
    else:
        user = User(role=role, username=login or role, password_hash=hash_password(password),
                    school_id=school.id if school and role == "school_admin" else None,
                    district_id=district.id if district else None)
    db.session.add(user)
    db.session.flush()
    if pupil is not None:
        db.session.add(Guardianship(user_id=user.id, pupil_id=pupil.id, relation="母亲",
                                    consent_policy_version="2026-01", consent_at=utcnow()))
    db.session.commit()
    return user


def api_token(client: FlaskClient, phone: str, password: str = TEST_PASSWORD) -> str:
    response = client.post("/api/v1/tokens", json={"phone": phone, "password": password})
    assert response.status_code == 201, response.get_data(as_text=True)
    token: Any = response.get_json()["token"]
    return str(token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------------------------------ the test school's rows


@dataclasses.dataclass(frozen=True)
class SchoolIds:
    """The test school (KM-TEST-0001) and its term "2026-autumn", by id (the `school` fixture)."""

    id: int
    code: str
    term_id: int


def the_school() -> School:
    """The test school KM-TEST-0001 (`make_school`), made on first use."""
    return db.session.scalar(select(School).where(School.code == SCHOOL)) or make_school()


def pupil_id(number: str = "P001", school_code: str = SCHOOL) -> int:
    school = db.session.scalar(select(School).where(School.code == school_code))
    assert school is not None
    pupil = db.session.scalar(select(Pupil).where(Pupil.school_id == school.id, Pupil.number == number))
    assert pupil is not None
    return int(pupil.id)


def term_of(school_code: str = SCHOOL) -> Term:
    term = db.session.scalar(select(Term).join(School).where(School.code == school_code))
    assert term is not None
    return term


def requests_for(pupil: int) -> list[CareRequest]:
    return list(db.session.scalars(select(CareRequest).where(CareRequest.pupil_id == pupil)).all())


# ------------------------------------------------------------------------------------------ published runs


def publish_finished(run: AllocationRun) -> AllocationRun:
    """Publish a finished run as an administrator would, through the allocation service (from the command line).

    Publishing needs the request window closed, so it is closed for the publication; a window that was open is
    then opened again, as an admin may do, so tests can still send requests and changes after publication.
    """
    term = run.term
    close_at = term.requests_close_at
    if close_at is None or close_at > clock():
        term.requests_close_at = clock() - timedelta(minutes=1)
        db.session.commit()
    published = publish_run(run, None)
    if term.requests_close_at != close_at:
        term.requests_close_at = close_at
        db.session.commit()
    return published


def publish_for(pupil: int, *, with_params: bool = True) -> int:
    """Publish a run seating the pupil on Monday (homework then football) and leaving Tuesday uncovered.

    P004 (priority 1) also waits for Tuesday, so the service numbers the pupil second on Tuesday's waitlist.
    """
    term = term_of()
    ahead = pupil_id("P004")
    db.session.add(CareRequest(term_id=term.id, pupil_id=pupil, days=[1, 2], pickup_time="17:30",
                               periods=["P1", "P2"], preferences=["football"], status="active"))
    if not requests_for(ahead):
        db.session.add(CareRequest(term_id=term.id, pupil_id=ahead, days=[2], pickup_time="17:30",
                                   periods=["P2"], preferences=[], status="active"))
    run = AllocationRun(term_id=term.id, state="done", stage="done", progress=1.0, status="OPTIMAL")
    db.session.add(run)
    db.session.flush()
    sessions = {s.code: s for s in db.session.scalars(select(Session).where(Session.term_id == term.id))}
    teachers = {t.code: t for t in db.session.scalars(select(Teacher).where(Teacher.school_id == term.school_id))}
    for code in ("S11", "S12"):
        db.session.add(RunAssignment(run_id=run.id, pupil_id=pupil, session_id=sessions[code].id))
    db.session.add(RunStaffing(run_id=run.id, teacher_id=teachers["T3"].id, session_id=sessions["S11"].id))
    db.session.add(RunStaffing(run_id=run.id, teacher_id=teachers["T1"].id, session_id=sessions["S12"].id))
    params = {"day": 2, "period": "P2", "grade": 3, "seats": 20, "demand": 31}
    reason = "周二 P2：3年级可用座位 20 个，需求 31 人（已存）"
    for waiting in (ahead, pupil):
        db.session.add(RunUnserved(run_id=run.id, pupil_id=waiting, day=2, code="no_seat", reason=reason,
                                   params=params if with_params else None))
    term.results_date = date(2026, 8, 25)
    db.session.flush()
    return int(publish_finished(run).id)


def store_published(term: Term, solution: domain.Solution, instance: domain.Instance) -> AllocationRun:
    """Store `solution` as a finished run of `term` and publish it."""
    run = AllocationRun(term=term, state="running")
    db.session.add(run)
    db.session.commit()
    store_solution(term, solution, run, instance=instance)
    return publish_finished(run)


# ------------------------------------------------------------------------------------------ instances


PERIODS = (domain.Period("P1", "15:30", "16:30"), domain.Period("P2", "16:30", "17:30"),
           domain.Period("P3", "17:30", "18:30"))
ACTIVITIES = (
    domain.Activity("homework", "作业辅导", "homework", None),
    domain.Activity("football", "足球", "sports", "sports"),
    domain.Activity("art", "美术", "arts", "arts"),
    domain.Activity("care", "延时托管", "care", None),
)
SMALL_PERIODS = PERIODS[:2]
SMALL_ACTIVITIES = (ACTIVITIES[0], ACTIVITIES[2], ACTIVITIES[1])
GENERATED_SEED = 1


def build_instance(pupils: int = 60, seed: int = 1, *, code: str = "KM-RUNS-0001", days: int = 5,
                   tight: float = 1.0) -> domain.Instance:
    """A school with `pupils` requests over `days` weekdays; `tight` < 1 shrinks seats and teachers."""
    if code == "KM-RUNS-0001" and days == 5 and tight == 1.0:
        generated = generate(pupils=pupils, seed=seed)
        return dataclasses.replace(generated, school=dataclasses.replace(generated.school, id=code))
    rng = random.Random(seed)
    weekdays = tuple(range(1, days + 1))
    share = max(1, round(pupils * tight))
    sessions = []
    for day in weekdays:
        plan = [("homework", "P1", (1, 6), share // 2 + 2, 20), ("homework", "P1", (1, 6), share // 2 + 2, 20),
                ("football", "P2", (3, 6), share // 3 + 1, 15), ("art", "P2", (1, 6), share // 3 + 1, 15),
                ("homework", "P2", (1, 6), share // 3 + 1, 20), ("care", "P3", (1, 6), share // 2 + 1, 25)]
        for activity, period, grades, capacity, ratio in plan:
            session_code = f"D{day}-{len(sessions) + 1:03d}"
            sessions.append(domain.Session(session_code, activity, day, period, f"R{len(sessions)}", capacity, grades,
                                           ratio, 0))
    teachers = []
    n_teachers = max(3, round(len(sessions) / 4 * tight) + 2)
    for t in range(n_teachers):
        quals = frozenset({"sports"} if t % 3 == 0 else {"arts"} if t % 3 == 1 else set())
        slots = frozenset((d, p.id) for d in weekdays for p in PERIODS if rng.random() < 0.8)
        teachers.append(domain.Teacher(f"T{t + 1:02d}", f"教师{t + 1}", quals, slots, rng.randint(4, 8)))
    pupil_rows, requests = [], []
    for i in range(pupils):
        row = domain.Pupil(f"S{i + 1:04d}", f"学生{i + 1}", rng.randint(1, 6), f"{rng.randint(1, 6)}-1",
                           f"F{i // 2}" if rng.random() < 0.2 else None, rng.choice((0, 0, 0, 1, 2)))
        pupil_rows.append(row)
        req_days = tuple(d for d in weekdays if rng.random() < 0.75) or (weekdays[0],)
        k = rng.choice((1, 2, 2, 3))
        prefs = tuple(rng.sample([a.id for a in ACTIVITIES], rng.randint(0, 3)))
        requests.append(domain.Request(row.id, req_days, tuple(p.id for p in PERIODS[:k]), prefs))
    return domain.Instance(
        school=domain.School(code, f"测试小学{code[-4:]}", "五华区"), term="2026-autumn", weekdays=weekdays,
        periods=PERIODS, priority_weights={0: 1, 1: 2, 2: 4}, activities=ACTIVITIES, sessions=tuple(sessions),
        teachers=tuple(teachers), pupils=tuple(pupil_rows), requests=tuple(requests),
    )


def import_term(instance: domain.Instance) -> Term:
    """The instance as a term in the current app's database (inside an app context)."""
    school = school_from_instance(instance, city="昆明市")
    db.session.flush()
    term = instance_to_term(instance, school)
    term.requests_close_at = utcnow() - timedelta(days=1)  # publishing needs the request window closed
    return term


def wait_for_run(app: Flask, run_id: int, *, timeout: float = 60.0,
                 states: tuple[str, ...] = ("done", "failed", "cancelled")) -> AllocationRun:
    """Poll the database until the run reaches one of `states`."""
    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            run = db.session.get(AllocationRun, run_id)
            assert run is not None
            if run.state in states:
                db.session.expunge(run)
                return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run.state} ({run.stage}) after {timeout}s")
        time.sleep(0.2)


def run_ids(app: Flask, term_id: int) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(AllocationRun.id).where(AllocationRun.term_id == term_id)))


# ------------------------------------------------------------------------------------------ hand-made terms


def session(code: str, activity: str = "homework", *, day: int = 1, period: str = "P1", capacity: int = 10,
            grades: tuple[int, int] = (1, 6), ppt: int = 10, min_pupils: int = 0, room: str = ""
            ) -> domain.Session:
    return domain.Session(code, activity, day, period, room or f"{code}室", capacity, grades, ppt, min_pupils)


def teacher(code: str, slots: Iterable[tuple[int, str]], quals: Iterable[str] = (), max_sessions: int = 5
            ) -> domain.Teacher:
    return domain.Teacher(code, f"{code}老师", frozenset(quals), frozenset(slots), max_sessions)


def pupil(number: str, *, grade: int = 3, priority: int = 0, class_name: str = "") -> domain.Pupil:
    return domain.Pupil(number, f"学生{number}", grade, class_name or f"{grade}-1", None, priority)


def request(number: str, days: Sequence[int] = (1,), periods: Sequence[str] = ("P1",),
            preferences: Sequence[str] = ()) -> domain.Request:
    return domain.Request(number, tuple(days), tuple(periods), tuple(preferences))


def small_term(sessions: Sequence[domain.Session], teachers: Sequence[domain.Teacher],
               pupils: Sequence[domain.Pupil], requests: Sequence[domain.Request], *,
               code: str = "KM-WL-0001", seed: int = 4242, placement: str = "automatic") -> Term:
    """A hand-made term over two weekdays and periods P1–P2, so a test knows every seat."""
    instance = domain.Instance(
        school=domain.School(code, "候补小学", "五华区"), term="2026-autumn", weekdays=(1, 2),
        periods=SMALL_PERIODS, priority_weights={0: 1, 1: 2, 2: 4}, activities=SMALL_ACTIVITIES,
        sessions=tuple(sessions), teachers=tuple(teachers), pupils=tuple(pupils), requests=tuple(requests),
    )
    school = school_from_instance(instance, city="昆明市")
    db.session.flush()
    term = instance_to_term(instance, school)
    term.lottery_seed = seed
    term.placement = placement
    term.requests_close_at = utcnow() - timedelta(days=1)  # published plans follow a closed request window
    db.session.commit()
    return term


def publish(term: Term, assignments: Iterable[tuple[str, str]], staffing: Iterable[tuple[str, str]]
            ) -> AllocationRun:
    """Store `assignments` (pupil, session) and `staffing` (teacher, session) as the term's published run.

    Unserved pupil-days and objective values are worked out from the instance, as the solver would.
    """
    instance = term_to_instance(term)
    pairs = tuple(domain.Assignment(p, s) for p, s in assignments)
    staff = tuple(domain.Staffing(t, s) for t, s in staffing)
    draft = domain.Solution(instance.school.id, domain.Status.FEASIBLE, pairs, staff,
                            domain.Objective(0, instance.demand(), 0, 0, 0),
                            explain_unserved(instance, pairs, staff))
    objective = dataclasses.replace(recompute_objective(instance, draft), coverage_bound=instance.demand())
    return store_published(term, dataclasses.replace(draft, objective=objective), instance)


@lru_cache(maxsize=2)
def generated_solution(seed: int = GENERATED_SEED) -> tuple[domain.Instance, domain.Solution]:
    """A generated school of ~120 pupils and a valid solution for it (solved once per test session)."""
    instance = generate(pupils=120, seed=seed, tight=False)
    solution = solve(instance, SolverConfig(time_limit=8, workers=2, seed=1))
    report = validate(instance, solution)
    assert report.ok, report.violations
    return instance, solution


def generated_term(seed: int = GENERATED_SEED) -> tuple[Term, AllocationRun]:
    """A generated school (`scheduler.generate`, ~120 pupils) imported, solved once per session and published."""
    instance, solution = generated_solution(seed)
    school = school_from_instance(instance, city="昆明市")
    db.session.flush()
    term = instance_to_term(instance, school)
    term.lottery_seed = 97
    term.placement = "automatic"
    term.requests_close_at = utcnow() - timedelta(days=1)
    run = store_published(term, solution, instance)
    return term, run


def consistent(term: Term, *, objective: bool = True) -> list[str]:
    """Problems with the published run as it now stands, checked by the independent validator.

    `objective=False` skips the recorded objective values, for tests that free seats by hand without
    recomputing them.
    """
    assert term.published_run is not None
    instance = dataclasses.replace(term_to_instance(term), previous=())
    report = validate(instance, run_to_solution(term.published_run))
    problems = [v.message for v in report.violations] + list(report.unserved_mismatches)
    return problems + list(report.objective_mismatches) if objective else problems


# ------------------------------------------------------------------------------------------ a tiny city

# Figures worked out by hand (see bureau/test_bureau.py):
# - KM-TEST-0001 (五华区, 6 pupils, published run): 4 requesting, 6 requested pupil-days, 2 unserved, 3 served,
#   teachers T3 (2 sessions) and T1 (1 session).
# - KM-TEST-0002 (五华区, 4 pupils, draft run only): 2 requesting, 3 requested pupil-days, 1 unserved, 2 served,
#   teacher T3 (1 session).
# - KM-TEST-0003 (盘龙区, 3 pupils): term "2026-spring" (published, 1 of 1 covered) and the newer "2026-autumn"
#   with one request and no run yet.


def _ids(school: School) -> tuple[Term, dict[str, int], dict[str, int], dict[str, int]]:
    term = db.session.scalar(select(Term).where(Term.school_id == school.id).order_by(Term.id.desc()))
    assert term is not None
    pupils = {p.number: p.id for p in db.session.scalars(select(Pupil).where(Pupil.school_id == school.id))}
    sessions = {s.code: s.id for s in db.session.scalars(select(Session).where(Session.term_id == term.id))}
    teachers = {
        t.code: t.id for t in db.session.scalars(select(Teacher).where(Teacher.school_id == school.id))
    }
    return term, pupils, sessions, teachers


def _request(term: Term, pupil_id: int, days: list[int], periods: list[str], status: str = "active") -> None:
    db.session.add(
        CareRequest(
            term_id=term.id,
            pupil_id=pupil_id,
            days=days,
            periods=periods,
            preferences=[],
            pickup_time="17:30",
            status=status,
        )
    )


def _run(
    term: Term,
    pupils: dict[str, int],
    sessions: dict[str, int],
    teachers: dict[str, int],
    *,
    assignments: list[tuple[str, str]],
    unserved: list[tuple[str, int]],
    staffing: list[tuple[str, str]],
    publish: bool,
) -> AllocationRun:
    run = AllocationRun(
        term_id=term.id,
        state="done",
        stage="done",
        progress=1.0,
        status="OPTIMAL",
        stats={},
    )
    db.session.add(run)
    db.session.flush()
    for pupil, session in assignments:
        db.session.add(RunAssignment(run_id=run.id, pupil_id=pupils[pupil], session_id=sessions[session]))
    for pupil, day in unserved:
        db.session.add(
            RunUnserved(run_id=run.id, pupil_id=pupils[pupil], day=day, code="no_seat", reason="座位不足")
        )
    for teacher, session in staffing:
        db.session.add(RunStaffing(run_id=run.id, teacher_id=teachers[teacher], session_id=sessions[session]))
    db.session.flush()
    return publish_finished(run) if publish else run


def seed_city() -> dict[str, Any]:
    """Create the tiny city (call inside an app context); returns the schools by code and district ids."""
    a = make_school("KM-TEST-0001", district_name="五华区", n_pupils=6)
    b = make_school("KM-TEST-0002", district_name="五华区", n_pupils=4)
    c = make_school("KM-TEST-0003", district_name="盘龙区", n_pupils=3)

    term, pupils, sessions, teachers = _ids(a)
    _request(term, pupils["P001"], [1, 2], ["P1"])
    _request(term, pupils["P002"], [1, 2], ["P1", "P2"])
    _request(term, pupils["P003"], [1], ["P1", "P2", "P3"])
    _request(term, pupils["P004"], [2], ["P1"])
    _request(term, pupils["P005"], [1, 2], ["P1"], status="withdrawn")
    _run(
        term,
        pupils,
        sessions,
        teachers,
        assignments=[
            ("P001", "S11"),
            ("P001", "S21"),
            ("P002", "S11"),
            ("P002", "S12"),
            ("P002", "S21"),
            ("P004", "S21"),
        ],
        unserved=[("P002", 2), ("P003", 1)],
        staffing=[("T3", "S11"), ("T3", "S21"), ("T1", "S12")],
        publish=True,
    )

    term, pupils, sessions, teachers = _ids(b)
    _request(term, pupils["P001"], [1], ["P1"])
    _request(term, pupils["P002"], [1, 2], ["P1"])
    _run(
        term,
        pupils,
        sessions,
        teachers,
        assignments=[("P001", "S11"), ("P002", "S11")],
        unserved=[("P002", 2)],
        staffing=[("T3", "S11")],
        publish=False,
    )

    spring, pupils, sessions, teachers = _ids(c)
    spring.name = "2026-spring"
    spring.requests_open_at = utcnow() - timedelta(days=200)
    _request(spring, pupils["P001"], [1], ["P1"])
    _run(
        spring,
        pupils,
        sessions,
        teachers,
        assignments=[("P001", "S11")],
        unserved=[],
        staffing=[("T3", "S11")],
        publish=True,
    )
    autumn = Term(
        school_id=c.id,
        name="2026-autumn",
        requests_open_at=utcnow() - timedelta(days=1),
        weekdays=[1, 2, 3, 4, 5],
        priority_weights={"0": 1, "1": 2},
    )
    db.session.add(autumn)
    db.session.flush()
    period = Period(term_id=autumn.id, code="P1", start="15:30", end="16:30", position=0)
    activity = Activity(term_id=autumn.id, code="homework", name="作业辅导", category="homework")
    db.session.add_all([period, activity])
    db.session.flush()
    db.session.add(
        Session(
            term_id=autumn.id,
            code="S31",
            activity_id=activity.id,
            day=3,
            period_id=period.id,
            capacity=30,
            pupils_per_teacher=30,
        )
    )
    _request(autumn, pupils["P002"], [3], ["P1"])
    db.session.commit()
    return {
        "schools": {s.code: s.id for s in (a, b, c)},
        "districts": {s.district.name: s.district_id for s in (a, b, c) if s.district is not None},
    }


# ------------------------------------------------------------------------------------------ two families

# `two_families(app)` builds: school X (KM-TEST-0001, district 五华区) with parent A linked to P001 and parent B
# linked to P002; school Y (KM-TEST-0002, district 盘龙区) with parent C linked to its P001; an admin of each
# school; a district bureau user for 五华区 and a city-wide one. P001 of X has a published result.

PHONES = {"parent_a": "13800000001", "parent_b": "13800000002", "parent_c": "13800000003"}


@dataclasses.dataclass
class World:
    ids: dict[str, int] = dataclasses.field(default_factory=dict)
    logins: dict[str, str] = dataclasses.field(default_factory=dict)


def _pupil(school: School, number: str) -> Pupil:
    found = db.session.scalar(select(Pupil).where(Pupil.school_id == school.id, Pupil.number == number))
    assert found is not None
    return found


def _term(school: School) -> Term:
    term = db.session.scalar(select(Term).where(Term.school_id == school.id))
    assert term is not None
    return term


def two_families(app: Flask, *, publish: bool = True) -> World:
    world = World()
    with app.app_context():
        x = make_school("KM-TEST-0001", district_name="五华区")
        y = make_school("KM-TEST-0002", district_name="盘龙区")
        wuhua = db.session.scalar(select(District).where(District.name == "五华区"))
        users = {
            "parent_a": create_user("parent", login=PHONES["parent_a"], pupil=_pupil(x, "P001")),
            "parent_b": create_user("parent", login=PHONES["parent_b"], pupil=_pupil(x, "P002")),
            "parent_c": create_user("parent", login=PHONES["parent_c"], pupil=_pupil(y, "P001")),
            "admin_x": create_user("school_admin", login="admin-x", school=x),
            "admin_y": create_user("school_admin", login="admin-y", school=y),
            "bureau": create_user("bureau", login="bureau-wuhua", district=wuhua),
            "bureau_city": create_user("bureau", login="bureau-city"),
        }
        for name, user in users.items():
            world.ids[name] = user.id
            world.logins[name] = user.phone or user.username or ""
        world.ids.update({
            "school_x": x.id, "school_y": y.id,
            "pupil_a": _pupil(x, "P001").id, "pupil_b": _pupil(x, "P002").id, "pupil_c": _pupil(y, "P001").id,
            "term_x": _term(x).id, "term_y": _term(y).id,
        })
        if publish:
            world.ids["run_x"] = publish_for(world.ids["pupil_a"])
    return world


def break_school(code: str) -> None:
    """Make school `code`'s instance impossible to build (a pin on a session of another school's term: rows no
    form can make), for tests of how a batch reports one school's failure and carries on."""
    school = db.session.scalar(select(School).where(School.code == code))
    assert school is not None
    term_id = db.session.scalar(select(Term.id).where(Term.school_id == school.id).order_by(Term.id).limit(1))
    pupil_id = db.session.scalar(select(CareRequest.pupil_id).where(CareRequest.term_id == term_id)
                                 .order_by(CareRequest.pupil_id).limit(1))
    foreign = db.session.scalar(select(Session.id).join(Term, Term.id == Session.term_id)
                                .where(Term.school_id != school.id).order_by(Session.id).limit(1))
    assert term_id is not None and pupil_id is not None and foreign is not None
    db.session.add(Pin(term_id=term_id, pupil_id=pupil_id, session_id=foreign))
    db.session.commit()


def xlsx(rows: Iterable[Sequence[Any]]) -> bytes:
    """An .xlsx file of one sheet holding `rows` (the first row is the header when a test wants one)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@contextmanager
def empty_schema_app(pg_app: Flask) -> Iterator[Flask]:
    """An app on a new, empty schema of `pg_app`'s PostgreSQL server (for an upgrade test), dropped afterwards."""
    from webapp import create_app

    with pg_app.app_context():
        url = str(db.engine.url.render_as_string(hide_password=False))
    schema = f"upgrade_{uuid.uuid4().hex[:12]}"
    base, _, _ = url.partition("?")
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"{base}?options=-csearch_path%3D{schema}"})
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield app
    finally:
        with app.app_context():
            with db.engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            db.engine.dispose()
