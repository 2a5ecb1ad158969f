"""`flask seed-demo` on a temporary SQLite: a working city (most schools published, two drafts, one window open)
that every role's first screen shows, demo logins, idempotence, reset."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from tests.webapp.factories import post_form
from webapp.bureau.city import batch_history
from webapp.daily.layers import Source, effective_calendar
from webapp.daily.notice import signature_report
from webapp.daily.roster import calendar_rules
from webapp.demo import (
    DEMO_ENROLMENT_CODE,
    DEMO_PASSWORD,
    DEMO_USERNAMES,
    OPEN_SCHOOL,
    PARENT_PHONES,
    SCHOOLS,
    Stage,
    demo_logins,
    reset_demo,
)
from webapp.extensions import db
from webapp.models import (
    Activity,
    AllocationRun,
    CareRequest,
    District,
    PriorityTag,
    Pupil,
    RunAssignment,
    RunUnserved,
    School,
    Term,
    User,
    utcnow,
)
from webapp.services import school_today


def counts() -> dict[str, int]:
    return {model.__name__: int(db.session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (District, School, Term, Pupil, CareRequest, AllocationRun, RunAssignment, User)}


@pytest.mark.slow
def test_seed_demo_builds_the_city_once(app: Flask, runner: FlaskCliRunner) -> None:
    started = time.monotonic()
    result = runner.invoke(args=["seed-demo"])
    seconds = time.monotonic() - started
    print(f"seed-demo: {seconds:.1f} s")  # measured, not asserted: timings belong in benchmarks
    assert result.exit_code == 0, result.output
    assert "12 schools" in result.output and DEMO_PASSWORD in result.output
    assert "9 schools published, 2 left as drafts, 0 failed" in result.output

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
        terms = {t.school.code: t for t in db.session.scalars(select(Term))}
        assert {t.name for t in terms.values()} == {"2026-autumn"}
        open_terms = [code for code, t in terms.items() if t.requests_open(now)]
        assert open_terms == [OPEN_SCHOOL.code]
        open_term = terms[OPEN_SCHOOL.code]
        assert open_term.requests_close_at is not None
        assert timedelta(days=13) < open_term.requests_close_at - now <= timedelta(days=14)
        assert not open_term.runs and open_term.published_run_id is None
        assert db.session.scalar(select(func.count(CareRequest.id))) > 10_000

        stages = {s.code: s.stage for s in SCHOOLS}
        for code, term in terms.items():
            if stages[code] == Stage.OPEN:
                continue
            runs = [r for r in term.runs if r.state == "done" and r.coverage]
            assert runs, code
            run = max(runs, key=lambda r: r.id)
            assert run.status in ("OPTIMAL", "FEASIBLE") and run.demand
            assert 0.5 * run.demand < run.coverage <= run.demand, code
            assert (term.published_run_id == run.id) == (stages[code] == Stage.PUBLISHED), code
        published = [t for t in terms.values() if t.published_run_id is not None]
        assert len(published) == 9
        first = terms[SCHOOLS[0].code]
        run = db.session.get(AllocationRun, first.published_run_id)
        assert run is not None and run.is_published
        assert db.session.scalar(select(func.count()).where(RunAssignment.run_id == run.id)) > 500
        unserved = db.session.scalars(select(RunUnserved).where(RunUnserved.run_id == run.id)).all()
        assert unserved and all(u.params for u in unserved)
        assert {u.waitlist_position for u in unserved} - {None}
        [batch] = batch_history()  # the eleven closed schools were allocated as one city batch
        assert batch.done >= 11 and batch.failed == 0 and batch.started_by == "昆明市教育体育局"

        names = set(db.session.scalars(select(User.username).where(User.username.is_not(None))))
        assert set(DEMO_USERNAMES) <= names
        assert {f"admin-{s.number:04d}" for s in SCHOOLS} <= names
        rows = demo_logins()
        assert {role for role, _, _ in rows} == {"parent", "school_admin", "bureau", "duty_teacher"}
        parent = db.session.scalar(select(User).where(User.phone == PARENT_PHONES[0]))
        assert parent is not None
        children = parent.pupils
        assert len(children) == 2 and len({c.grade for c in children}) == 2
        assert {c.school_id for c in children} == {first.school_id}
        # The daily service: the city's published calendar covers today and every demo school inherits it; the
        # term's service notice is signed for some placed pupils, not all.
        for term in terms.values():
            rules = calendar_rules(term)
            assert rules is not None and rules.first_day <= school_today() <= rules.last_day, term.school.code
        effective = effective_calendar(first)
        assert effective is not None and {e.source for e in effective.entries} == set(Source)
        report = signature_report(first)
        assert report.notice is not None and 0 < report.signed < len(report.rows)
        tags = db.session.scalars(select(PriorityTag).join(Pupil).where(Pupil.school_id == first.school_id)).all()
        assert len(tags) == 6 and all(t.group.weight == {1: 2, 2: 4}[t.pupil.priority] for t in tags)
        before = counts()

    # Every role's first screen shows a working city.
    client = app.test_client()
    assert post_form(client, "/login", {"login": PARENT_PHONES[0], "password": DEMO_PASSWORD}).status_code == 302
    home = client.get("/family/").get_data(as_text=True)
    assert home.count("结果已公布") == 2
    pages = [client.get(f"/family/child/{c.id}").get_data(as_text=True) for c in children]
    assert all("每周课表" in page for page in pages)
    assert any("候补第" in page for page in pages)

    bureau = app.test_client()
    assert post_form(bureau, "/login", {"login": "bureau", "password": DEMO_PASSWORD}).status_code == 302
    city = bureau.get("/bureau/").get_data(as_text=True)
    assert "以下为已发布分配结果的 9 所学校的数据" in city
    assert "2 所学校的分配结果为草稿" in city and "1 所学校尚未分配" in city
    coverage = float(city.split("<dt>覆盖率</dt><dd>", 1)[1].split("%", 1)[0])
    assert 80 <= coverage < 100

    admin = app.test_client()
    assert post_form(admin, "/login", {"login": "admin-0005", "password": DEMO_PASSWORD}).status_code == 302
    assert admin.get("/admin/", follow_redirects=True).status_code == 200

    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0, again.output
    assert "already there" in again.output
    with app.app_context():
        assert counts() == before
        pupil = db.session.scalar(select(Pupil).join(School).where(School.code == SCHOOLS[0].code))
        from webapp.family import enrolment_code_matches

        assert pupil is not None and enrolment_code_matches(pupil, DEMO_ENROLMENT_CODE)

        # --reset starts from nothing: everything the seed made is gone (the re-seed is the run above).
        reset_demo()
        after = counts()
        assert after["School"] == after["Pupil"] == after["AllocationRun"] == after["Term"] == 0
        assert after["User"] == 0 and after["District"] == 0
