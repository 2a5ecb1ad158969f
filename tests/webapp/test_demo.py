"""`flask seed-demo` on a temporary SQLite: the promised city, a published school, demo logins, idempotence."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from tests.webapp.factories import post_form
from webapp.demo import DEMO_ENROLMENT_CODE, DEMO_PASSWORD, DEMO_USERNAMES, PARENT_PHONES, SCHOOLS, demo_logins
from webapp.extensions import db
from webapp.models import (
    Activity,
    AllocationRun,
    CareRequest,
    District,
    Pupil,
    RunAssignment,
    RunUnserved,
    School,
    Term,
    User,
    utcnow,
)


def counts() -> dict[str, int]:
    return {model.__name__: int(db.session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (District, School, Term, Pupil, CareRequest, AllocationRun, RunAssignment, User)}


@pytest.mark.slow
def test_seed_demo_builds_the_city_once(app: Flask, runner: FlaskCliRunner) -> None:
    started = time.monotonic()
    result = runner.invoke(args=["seed-demo", "--time-limit", "6"])
    seconds = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "12 schools" in result.output and DEMO_PASSWORD in result.output
    assert seconds < 60

    with app.app_context():
        districts = db.session.scalars(select(District.name).order_by(District.name)).all()
        assert sorted(districts) == sorted(["五华区", "盘龙区", "官渡区"])
        sizes = dict(db.session.execute(
            select(School.code, func.count(Pupil.id)).join(Pupil).group_by(School.code)).all())
        assert len(sizes) == 12 and min(sizes.values()) == 400 and max(sizes.values()) == 3000
        assert all(name.endswith("小学") for name in db.session.scalars(select(School.name)))
        assert all(contact.startswith("课后服务办公室") for contact in db.session.scalars(select(School.contact)))
        assert all(db.session.scalars(select(Activity.description)))  # parents read what each activity is
        now = utcnow()
        terms = db.session.scalars(select(Term)).all()
        assert {t.name for t in terms} == {"2026-autumn"}
        open_terms = [t for t in terms if t.requests_open(now)]
        assert 8 <= len(open_terms) < 12
        for term in open_terms:
            assert term.requests_close_at is not None
            assert timedelta(days=13) < term.requests_close_at - now <= timedelta(days=14)
        assert db.session.scalar(select(func.count(CareRequest.id))) > 10_000

        published = [t for t in terms if t.published_run_id is not None]
        assert len(published) == 1
        run = db.session.get(AllocationRun, published[0].published_run_id)
        assert run is not None and run.is_published and run.status in ("OPTIMAL", "FEASIBLE")
        assert run.coverage and run.demand and run.coverage <= run.demand
        assert db.session.scalar(select(func.count()).where(RunAssignment.run_id == run.id)) > 500
        unserved = db.session.scalars(select(RunUnserved).where(RunUnserved.run_id == run.id)).all()
        assert unserved and all(u.params for u in unserved)
        assert {u.waitlist_position for u in unserved} - {None}

        names = set(db.session.scalars(select(User.username).where(User.username.is_not(None))))
        assert set(DEMO_USERNAMES) <= names
        assert {f"admin-{s.number:04d}" for s in SCHOOLS} <= names
        rows = demo_logins()
        assert {role for role, _, _ in rows} == {"parent", "school_admin", "bureau"}
        parent = db.session.scalar(select(User).where(User.phone == PARENT_PHONES[0]))
        assert parent is not None
        children = parent.pupils
        assert len(children) == 2 and len({c.grade for c in children}) == 2
        assert {c.school_id for c in children} == {published[0].school_id}
        before = counts()

    client = app.test_client()
    assert post_form(client, "/login", {"login": PARENT_PHONES[0], "password": DEMO_PASSWORD}).status_code == 302
    home = client.get("/family/").get_data(as_text=True)
    assert home.count("结果已公布") == 2
    pages = [client.get(f"/family/child/{c.id}").get_data(as_text=True) for c in children]
    assert all("每周课表" in page for page in pages)
    assert any("候补第" in page for page in pages)

    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0, again.output
    assert "already there" in again.output
    with app.app_context():
        assert counts() == before

    reset = runner.invoke(args=["seed-demo", "--reset", "--time-limit", "6"])
    assert reset.exit_code == 0, reset.output
    with app.app_context():
        after = counts()
        assert after["School"] == 12 and after["User"] == before["User"] and after["Pupil"] == before["Pupil"]
        assert after["AllocationRun"] == 1
        pupil = db.session.scalar(select(Pupil).join(School).where(School.code == SCHOOLS[0].code))
        from webapp.family import enrolment_code_matches

        assert pupil is not None and enrolment_code_matches(pupil, DEMO_ENROLMENT_CODE)
