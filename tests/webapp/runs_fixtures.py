"""Terms for the runs tests: a realistic small school built as an instance and imported with the services."""

from __future__ import annotations

import random
import time
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from scheduler import domain
from webapp.extensions import db
from webapp.models import AllocationRun, School, Term, User, utcnow
from webapp.security import hash_password
from webapp.services import instance_to_term, school_from_instance

PASSWORD = "correct-horse-battery"
PERIODS = (domain.Period("P1", "15:30", "16:30"), domain.Period("P2", "16:30", "17:30"),
           domain.Period("P3", "17:30", "18:30"))
ACTIVITIES = (
    domain.Activity("homework", "作业辅导", "homework", None),
    domain.Activity("football", "足球", "sports", "sports"),
    domain.Activity("art", "美术", "arts", "arts"),
    domain.Activity("care", "延时托管", "care", None),
)


def build_instance(pupils: int = 60, seed: int = 1, *, code: str = "KM-RUNS-0001", days: int = 5,
                   tight: float = 1.0) -> domain.Instance:
    """A school with `pupils` requests over `days` weekdays; `tight` < 1 shrinks seats and teachers."""
    try:
        from scheduler.generate import generate  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        generate = None
    if generate is not None and code == "KM-RUNS-0001" and days == 5 and tight == 1.0:
        try:
            return _renamed(generate(pupils=pupils, seed=seed), code)  # type: ignore[no-any-return,unused-ignore]
        except TypeError:
            pass
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
        pupil = domain.Pupil(f"S{i + 1:04d}", f"学生{i + 1}", rng.randint(1, 6), f"{rng.randint(1, 6)}-1",
                             f"F{i // 2}" if rng.random() < 0.2 else None, rng.choice((0, 0, 0, 1, 2)))
        pupil_rows.append(pupil)
        req_days = tuple(d for d in weekdays if rng.random() < 0.75) or (weekdays[0],)
        k = rng.choice((1, 2, 2, 3))
        prefs = tuple(rng.sample([a.id for a in ACTIVITIES], rng.randint(0, 3)))
        requests.append(domain.Request(pupil.id, req_days, tuple(p.id for p in PERIODS[:k]), prefs))
    return domain.Instance(
        school=domain.School(code, f"测试小学{code[-4:]}", "五华区"), term="2026-autumn", weekdays=weekdays,
        periods=PERIODS, priority_weights={0: 1, 1: 2, 2: 4}, activities=ACTIVITIES, sessions=tuple(sessions),
        teachers=tuple(teachers), pupils=tuple(pupil_rows), requests=tuple(requests),
    )


def _renamed(instance: domain.Instance, code: str) -> domain.Instance:
    import dataclasses

    school = dataclasses.replace(instance.school, id=code)
    return dataclasses.replace(instance, school=school)


def import_term(instance: domain.Instance) -> Term:
    """The instance as a term in the current app's database (inside an app context)."""
    school = school_from_instance(instance, city="昆明市")
    db.session.flush()
    term = instance_to_term(instance, school)
    term.requests_close_at = utcnow() - timedelta(days=1)  # publishing needs the request window closed
    return term


def make_admin(school: School, username: str) -> User:
    user = User(role="school_admin", username=username, password_hash=hash_password(PASSWORD), school_id=school.id)
    db.session.add(user)
    db.session.commit()
    return user


def login(client: FlaskClient, username: str) -> None:
    from tests.conftest import post_form

    response = post_form(client, "/login", {"login": username, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)


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


