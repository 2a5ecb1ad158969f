"""Run pages: access rules, both languages, metrics, pins (and pins that make a run infeasible), compare, edits."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from scheduler import domain
from scheduler.solve import SolverConfig, solve
from tests.webapp.factories import build_instance, create_user, import_term, post_form, sign_in
from webapp.allocation.service import publish_run
from webapp.extensions import db
from webapp.jobs import database_url, run_allocation
from webapp.models import (
    AllocationRun,
    AuditLog,
    Pin,
    PriorityGroup,
    PriorityTag,
    Pupil,
    RunAssignment,
    Session,
    Term,
    User,
)
from webapp.run_metrics import compute_metrics, fairness_counts, metric_deltas
from webapp.services import term_to_instance


def _term(app: Flask, code: str = "KM-RUNS-0001", admin: str = "runs-admin") -> tuple[int, int]:
    with app.app_context():
        term = import_term(build_instance(20, seed=3, days=3, tight=0.5, code=code))
        user = create_user("school_admin", school=term.school, login=admin)
        return term.id, user.id


def _finished_run(app: Flask, term_id: int, admin_id: int) -> int:
    with app.app_context():
        run = AllocationRun(term_id=term_id, created_by=admin_id)
        db.session.add(run)
        db.session.commit()
        assert run_allocation(run.id, database_url(), time_limit=5.0) == "done"
        return run.id


def _urls(term_id: int, run_id: int, other_run: int, pin_id: int, pupil_id: int, session_id: int) -> dict[str, str]:
    return {
        f"/admin/runs/term/{term_id}": "GET",
        f"/admin/runs/term/{term_id}/start": "POST",
        f"/admin/runs/{run_id}": "GET",
        f"/admin/runs/{run_id}/status": "GET",
        f"/admin/runs/{run_id}/cancel": "POST",
        f"/admin/runs/{run_id}/publish": "POST",
        f"/admin/runs/compare?a={run_id}&b={other_run}": "GET",
        f"/admin/runs/term/{term_id}/pins": "GET",
        f"/admin/runs/pins/{pin_id}/delete": "POST",
        f"/admin/runs/{run_id}/assignments/{pupil_id}/{session_id}/remove": "POST",
    }


@pytest.fixture
def two_schools(app_no_csrf: Flask) -> dict[str, Any]:
    app = app_no_csrf
    term_id, admin_id = _term(app)
    run_id = _finished_run(app, term_id, admin_id)
    other_run = _finished_run(app, term_id, admin_id)
    with app.app_context():
        pair = db.session.execute(select(RunAssignment.pupil_id, RunAssignment.session_id)
                                  .where(RunAssignment.run_id == run_id)).first()
        assert pair is not None
        pin = Pin(term_id=term_id, pupil_id=pair[0], session_id=pair[1])
        db.session.add(pin)
        db.session.commit()
        pin_id = pin.id
    _term(app, code="KM-RUNS-0002", admin="other-admin")
    return {"app": app, "term": term_id, "run": run_id, "other_run": other_run,
            "urls": _urls(term_id, run_id, other_run, pin_id, pair[0], pair[1])}


def test_other_school_admin_gets_404_everywhere(two_schools: dict[str, Any]) -> None:
    app = two_schools["app"]
    client = app.test_client()
    sign_in(client, "other-admin")
    for url, method in two_schools["urls"].items():
        response = client.get(url) if method == "GET" else client.post(url, data={"expected": ""})
        assert response.status_code == 404, (url, response.status_code)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AllocationRun)) == 2
        assert db.session.scalar(select(func.count()).select_from(Pin)) == 1
        term = db.session.get(Term, two_schools["term"])
        assert term is not None and term.published_run_id is None


def test_parents_and_strangers_are_kept_out(two_schools: dict[str, Any]) -> None:
    app = two_schools["app"]
    anonymous = app.test_client()
    for url, method in two_schools["urls"].items():
        response = anonymous.get(url) if method == "GET" else anonymous.post(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    with app.app_context():
        pupil = db.session.scalar(select(Pupil))
        create_user("parent", pupil=pupil)
        create_user("bureau", login="bureau-user")
    for login_name in ("13800138000", "bureau-user"):
        client = app.test_client()
        response = client.post("/login", data={"login": login_name, "password": "correct-horse-battery"})
        assert response.status_code == 302
        for url, method in two_schools["urls"].items():
            response = client.get(url) if method == "GET" else client.post(url)
            assert response.status_code == 403, (login_name, url, response.status_code)


def test_pages_render_in_both_languages(two_schools: dict[str, Any]) -> None:
    app, run_id, other = two_schools["app"], two_schools["run"], two_schools["other_run"]
    client = app.test_client()
    sign_in(client, "runs-admin")
    pages = [f"/admin/runs/term/{two_schools['term']}", f"/admin/runs/{run_id}",
             f"/admin/runs/compare?a={run_id}&b={other}", f"/admin/runs/term/{two_schools['term']}/pins"]
    for url in pages:
        zh = client.get(url)
        assert zh.status_code == 200, url
        text = zh.get_data(as_text=True)
        assert "分配" in text or "固定安排" in text, url
        assert "<script>" not in text and "onclick" not in text
    assert client.get("/admin/runs/").status_code == 302
    client.set_cookie("lang", "en")
    for url in pages:
        text = client.get(url).get_data(as_text=True)
        assert "Allocation" in text or "Pins" in text, url
        assert "分配运行" not in text
    detail = client.get(f"/admin/runs/{run_id}").get_data(as_text=True)
    assert "Unserved pupil-days" in detail and "Seated / requested by day and period" in detail


def test_metrics_match_the_solution(app: Flask) -> None:
    instance = build_instance(20, seed=3, days=3, tight=0.5)
    solution = solve(instance, SolverConfig(time_limit=5, workers=1))
    metrics = compute_metrics(instance, solution)
    assert metrics["coverage"] == solution.objective.coverage and metrics["demand"] == instance.demand()
    requested = sum(len(r.days) for r in instance.requests)
    assert metrics["requested_pupil_days"] == requested
    assert metrics["covered_pupil_days"] + len(solution.unserved) == requested
    assert sum(metrics["unserved_by_reason"].values()) == len(solution.unserved)
    seated = sum(cell["seated"] for day in metrics["by_slot"].values() for cell in day.values())
    assert seated == len(solution.assignments)
    assert sum(metrics["choice_ranks"].values()) <= len(solution.assignments)
    assert metrics["teacher_load"]["teachers"] == len(instance.teachers)
    assert sum(metrics["teacher_load"]["distribution"].values()) == len(instance.teachers)
    assert metrics["solver"]["status"] == solution.status
    rows = {r["key"]: r for r in metric_deltas(metrics, {**metrics, "coverage": metrics["coverage"] - 3})}
    assert rows["coverage"]["delta"] == -3 and rows["pupils_served"]["delta"] == 0


def test_metrics_rank_histogram_on_a_tiny_case() -> None:
    instance = domain.Instance(
        school=domain.School("X", "X", ""), term="t", weekdays=(1,), periods=(domain.Period("P1", "15:30", "16:30"),),
        priority_weights={0: 1},
        activities=(domain.Activity("a", "A", "", None), domain.Activity("b", "B", "", None)),
        sessions=(domain.Session("S1", "a", 1, "P1", "", 5, (1, 6), 5, 0),
                  domain.Session("S2", "b", 1, "P1", "", 5, (1, 6), 5, 0)),
        teachers=(domain.Teacher("T1", "t", frozenset(), frozenset({(1, "P1")}), 1),
                  domain.Teacher("T2", "t", frozenset(), frozenset({(1, "P1")}), 1)),
        pupils=tuple(domain.Pupil(f"P{i}", "p", 3, "", None, 0) for i in range(3)),
        requests=(domain.Request("P0", (1,), ("P1",), ("a", "b")), domain.Request("P1", (1,), ("P1",), ("a", "b")),
                  domain.Request("P2", (1,), ("P1",), ())),
    )
    solution = domain.Solution("X", "OPTIMAL", (domain.Assignment("P0", "S1"), domain.Assignment("P1", "S2"),
                                                domain.Assignment("P2", "S1")),
                               (domain.Staffing("T1", "S1"), domain.Staffing("T2", "S2")),
                               domain.Objective(3, 3, 0, 3, 1))
    metrics = compute_metrics(instance, solution)
    assert metrics["choice_ranks"] == {"1": 1, "2": 1, "3": 0, "unlisted": 0}
    assert metrics["pupils_served"] == 3 and metrics["coverage_pct"] == 100.0
    assert metrics["by_slot"]["1"]["P1"] == {"seated": 3, "requested": 3}
    assert metrics["teacher_load"] == {"max": 1, "mean": 1.0, "distribution": {"1": 2}, "teachers": 2}


def _request_slot(app: Flask, term_id: int) -> tuple[str, str, str]:
    """A pupil number, a session they may be pinned to, and a session of another day they did not ask for."""
    with app.app_context():
        term = db.session.get(Term, term_id)
        assert term is not None
        instance = term_to_instance(term)
        for request in instance.requests:
            pupil = instance.pupil_by_id[request.pupil]
            good = [s for s in instance.sessions if s.day in request.days and s.period in request.periods
                    and s.admits_grade(pupil.grade)]
            bad = [s for s in instance.sessions if s.day not in request.days]
            if good and bad:
                return pupil.id, good[0].id, bad[0].id
    raise AssertionError("no suitable pupil")


def test_pins_are_validated_and_used_by_the_next_run(app: Flask) -> None:
    term_id, admin_id = _term(app)
    client = app.test_client()
    sign_in(client, "runs-admin")
    pupil, good, bad = _request_slot(app, term_id)
    url = f"/admin/runs/term/{term_id}/pins"
    refused = post_form(client, url, {"pupil_number": pupil, "session_code": bad})
    assert refused.status_code == 200 and "没有申请这个课程班所在星期和时段" in refused.get_data(as_text=True)
    unknown = post_form(client, url, {"pupil_number": "NOPE", "session_code": good})
    assert "本校没有这个学号的学生" in unknown.get_data(as_text=True)
    assert post_form(client, url, {"pupil_number": pupil, "session_code": good}).status_code == 302
    twice = post_form(client, url, {"pupil_number": pupil, "session_code": good})
    assert "这个固定安排已经存在" in twice.get_data(as_text=True)

    run_id = _finished_run(app, term_id, admin_id)
    with app.app_context():
        row = db.session.scalar(select(RunAssignment).join(Pupil).join(Session).where(
            RunAssignment.run_id == run_id, Pupil.number == pupil, Session.code == good))
        assert row is not None and row.pinned
        assert db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "pin.add")) == 1


def test_pins_that_cannot_hold_are_named(app: Flask) -> None:
    term_id, admin_id = _term(app)
    pupil, good, bad = _request_slot(app, term_id)
    with app.app_context():
        # Written directly (the form would refuse it): a pin on a day the pupil did not request.
        pupil_row = db.session.scalar(select(Pupil).where(Pupil.number == pupil))
        session_row = db.session.scalar(select(Session).where(Session.term_id == term_id, Session.code == bad))
        assert pupil_row is not None and session_row is not None
        db.session.add(Pin(term_id=term_id, pupil_id=pupil_row.id, session_id=session_row.id))
        db.session.commit()
    run_id = _finished_run(app, term_id, admin_id)
    client = app.test_client()
    sign_in(client, "runs-admin")
    page = client.get(f"/admin/runs/{run_id}").get_data(as_text=True)
    assert "没有符合规则的方案" in page and "以下固定安排不能同时满足" in page and f"{pupil} → {bad}" in page
    assert "发布本次分配" not in page


def test_compare_lists_changed_pupils(app: Flask) -> None:
    term_id, admin_id = _term(app)
    first = _finished_run(app, term_id, admin_id)
    second = _finished_run(app, term_id, admin_id)
    with app.app_context():
        row = db.session.scalar(select(RunAssignment).where(RunAssignment.run_id == second))
        assert row is not None
        number = row.pupil.number
        db.session.delete(row)
        db.session.commit()
    client = app.test_client()
    sign_in(client, "runs-admin")
    page = client.get(f"/admin/runs/compare?a={first}&b={second}").get_data(as_text=True)
    assert "名额有变化的学生 (1)" in page and number in page


def _remove_first_seat(app: Flask, client: FlaskClient, run_id: int) -> tuple[int, int]:
    with app.app_context():
        pair = db.session.execute(select(RunAssignment.pupil_id, RunAssignment.session_id)
                                  .where(RunAssignment.run_id == run_id)).first()
        assert pair is not None
    response = post_form(client, f"/admin/runs/{run_id}/assignments/{pair[0]}/{pair[1]}/remove",
                         token_from=f"/admin/runs/{run_id}")
    assert response.status_code == 302
    return pair[0], pair[1]


def test_removing_a_seat_from_draft_and_published_runs(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    term_id, admin_id = _term(app)
    draft = _finished_run(app, term_id, admin_id)
    published = _finished_run(app, term_id, admin_id)
    with app.app_context():
        run, admin = db.session.get(AllocationRun, published), db.session.get(User, admin_id)
        assert run is not None and admin is not None
        publish_run(run, admin)
    calls: list[int] = []
    monkeypatch.setattr("webapp.allocation.seats.promote", lambda term, **_:  calls.append(term.id) or [])
    client = app.test_client()
    sign_in(client, "runs-admin")
    with app.app_context():
        before = db.session.get(AllocationRun, draft)
        assert before is not None
        coverage_before = before.coverage
    _remove_first_seat(app, client, draft)
    assert calls == []  # a draft frees no seat anyone can see
    _remove_first_seat(app, client, published)
    assert calls == [term_id]
    with app.app_context():
        run = db.session.get(AllocationRun, draft)
        assert run is not None and run.coverage is not None and coverage_before is not None
        assert run.coverage <= coverage_before and run.metrics and run.metrics["coverage"] == run.coverage
        assert db.session.scalar(select(func.count()).select_from(AuditLog)
                                 .where(AuditLog.action == "run.remove_assignment")) == 2


def test_metrics_carry_fairness_and_the_bureau_part_names_nobody(app: Flask) -> None:
    instance = build_instance(20, seed=3, days=3, tight=0.5)
    solution = solve(instance, SolverConfig(time_limit=5, workers=1))
    metrics = compute_metrics(instance, solution)
    fair = metrics["fairness"]
    served = fair["served"]
    assert served["fully"] + served["partly"] + served["not_at_all"] == metrics["pupils_requesting"]
    assert served["fully"] + served["partly"] == metrics["pupils_served"]
    assert fair["churn"] is None, "no previous plan, no churn"
    counts = fairness_counts(metrics)
    assert counts is not None and counts["served"] == served
    assert counts["justified_envy"] == fair["justified_envy"]["count"]
    text = json.dumps(counts)
    assert not any(f'"{p.id}"' in text for p in instance.pupils), "the bureau's part names no pupil"
    assert fairness_counts({"coverage": 1}) is None, "metrics counted before fairness have none"

    moved = dataclasses.replace(instance, previous=solution.assignments[1:])
    churn = compute_metrics(moved, solution)["fairness"]["churn"]
    assert churn == {"kept": len(solution.assignments) - 1, "lost": 0, "new": 1}

    worse = {**metrics, "fairness": {**fair, "served": {**served, "fully": served["fully"] - 2}}}
    rows = {r["key"]: r for r in metric_deltas(metrics, worse)}
    assert rows["served_fully"]["delta"] == -2 and rows["justified_envy"]["delta"] == 0
    assert rows["choice_top_pct"]["a"] == round(100 * fair["choices"]["top"], 1)
    assert rows["served_none"]["b"] == served["not_at_all"]
    assert {r["key"]: r for r in metric_deltas({}, metrics)}["idle_seats"]["delta"] is None


def test_run_page_shows_fairness_and_names_the_worst_served(app: Flask) -> None:
    term_id, admin_id = _term(app)
    run_id = _finished_run(app, term_id, admin_id)
    with app.app_context():
        run = db.session.get(AllocationRun, run_id)
        assert run is not None and run.metrics is not None
        fair = run.metrics["fairness"]
        worst = [w for w in fair["worst_served"] if w["covered_days"] < w["requested_days"]]
        names = dict(db.session.execute(select(Pupil.number, Pupil.name)).all())
    assert worst, "a tight school leaves someone short"
    with app.app_context():  # the worst served pupil's priority groups: one that counts, one expired
        ids = dict(db.session.execute(select(Pupil.number, Pupil.id)).all())
        sen = PriorityGroup(name_zh="特殊教育需要", name_en="Special educational needs", weight=8)
        working = PriorityGroup(name_zh="双职工", name_en="Both parents working", weight=2)
        db.session.add_all([sen, working])
        db.session.flush()
        first = ids[worst[0]["pupil"]]
        db.session.add_all([PriorityTag(pupil_id=first, group_id=sen.id, expires_on=date(2099, 1, 31)),
                            PriorityTag(pupil_id=first, group_id=working.id, expires_on=date(2000, 1, 31))])
        db.session.commit()
    client = app.test_client()
    sign_in(client, "runs-admin")
    page = client.get(f"/admin/runs/{run_id}").get_data(as_text=True)
    section = page[page.index('id="fairness"'):page.index('id="unserved"')]
    assert "公平性" in section and "服务最少的学生" in section and "优先群体" in section
    served = fair["served"]
    assert f"{served['fully']} / {served['partly']} / {served['not_at_all']}" in section
    rows = section.split("<tr>")
    for item in worst:
        assert f"{item['pupil']} {names[item['pupil']]}" in section
        assert f"{item['covered_days']} / {item['requested_days']}" in section
        [row] = [r for r in rows if f"<td>{item['pupil']} " in r]
        if item is worst[0]:
            assert '<span class="badge">特殊教育需要</span>' in row
            assert '<span class="badge badge-warn">双职工 · 已过期</span>' in row
        else:
            assert "<td>—</td>" in row

    second = _finished_run(app, term_id, admin_id)
    compare = client.get(f"/admin/runs/compare?a={run_id}&b={second}").get_data(as_text=True)
    assert "合理嫉妒" in compare and "每个申请日都有托管的学生" in compare


def test_fairness_is_stored_and_shown_on_postgresql(pg_app: Flask) -> None:  # noqa: F811
    """The whole way on PostgreSQL: a real run stores its fairness report in JSON and the run page reads it."""
    term_id, admin_id = _term(pg_app, code="KM-RUNS-PG01", admin="runs-admin-pg")
    run_id = _finished_run(pg_app, term_id, admin_id)
    with pg_app.app_context():
        run = db.session.get(AllocationRun, run_id)
        assert run is not None and run.metrics is not None
        served = run.metrics["fairness"]["served"]
        assert sum(served.values()) == run.metrics["pupils_requesting"]
    client = pg_app.test_client()
    sign_in(client, "runs-admin-pg")
    page = client.get(f"/admin/runs/{run_id}").get_data(as_text=True)
    assert f"{served['fully']} / {served['partly']} / {served['not_at_all']}" in page
