"""Allocation jobs on the local process pool: a full run, cancel (running and queued), crashes, dead workers."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from scheduler.validation import validate
from tests.conftest import _make_app
from tests.webapp.factories import build_instance, create_user, import_term, post_form, sign_in, wait_for_run
from webapp import jobs
from webapp.extensions import WORKER_GC_THRESHOLD, db
from webapp.jobs import runner
from webapp.models import AllocationRun, RunAssignment, RunStaffing, RunUnserved, Term, User, utcnow
from webapp.services import run_to_solution, term_to_instance


def _app(tmp_path: Any, **overrides: Any) -> Flask:
    config = {"ALLOCATION_TIME_LIMIT": 10.0, "ALLOCATION_SOLVER_WORKERS": 1, "ALLOCATION_WORKERS": 1}
    config.update(overrides)
    return _make_app(tmp_path, **config)


@pytest.fixture
def pool_app(tmp_path: Any) -> Iterator[Flask]:
    app = _app(tmp_path)
    yield app
    jobs.shutdown_pool(wait=True)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _setup(app: Flask, pupils: int = 40, days: int = 3, tight: float = 0.7) -> tuple[int, int]:
    with app.app_context():
        term = import_term(build_instance(pupils, seed=5, days=days, tight=tight))
        admin = create_user("school_admin", school=term.school, login="runs-admin")
        return term.id, admin.id


def _rows(app: Flask, run_id: int) -> int:
    with app.app_context():
        return sum(db.session.scalar(select(func.count()).select_from(model).where(model.run_id == run_id)) or 0
                   for model in (RunAssignment, RunStaffing, RunUnserved))


def _setup_generated(app: Flask, pupils: int = 60) -> int:
    """A generated school (scheduler.generate) when that module exists, else the fixture's own builder."""
    try:
        from scheduler.generate import generate
    except ImportError:
        instance = build_instance(pupils, seed=5, days=3, tight=0.7)
    else:
        instance = generate(pupils=pupils, seed=2)
    with app.app_context():
        term = import_term(instance)
        create_user("school_admin", school=term.school, login="runs-admin")
        return term.id


def test_full_run_through_the_pages(tmp_path: Any) -> None:
    pool_app = _app(tmp_path, ALLOCATION_TIME_LIMIT=4.0)
    try:
        _full_run(pool_app)
    finally:
        jobs.shutdown_pool(wait=True)


def _full_run(pool_app: Flask) -> None:
    term_id = _setup_generated(pool_app)
    client = pool_app.test_client()
    sign_in(client, "runs-admin")
    page = client.get(f"/admin/runs/term/{term_id}")
    assert page.status_code == 200
    response = post_form(client, f"/admin/runs/term/{term_id}/start", token_from=f"/admin/runs/term/{term_id}")
    assert response.status_code == 302
    run_url = response.headers["Location"]
    progress = client.get(run_url).get_data(as_text=True)
    assert "js/runs.js" in progress and "data-status-url" in progress and "<script>" not in progress
    run_id = int(run_url.rstrip("/").split("/")[-1])

    seen_stages: set[str] = set()
    deadline = time.monotonic() + 90
    while True:
        status = json.loads(client.get(f"/admin/runs/{run_id}/status").get_data(as_text=True))
        assert set(status) >= {"state", "stage", "progress", "best_coverage", "demand"}
        seen_stages.add(status["stage"])
        if status["finished"]:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["state"] == "done", status
    assert status["progress"] == 1.0 and status["best_coverage"] is not None and status["demand"] > 0

    with pool_app.app_context():
        run = db.session.get(AllocationRun, run_id)
        term = db.session.get(Term, term_id)
        assert run is not None and term is not None
        assert run.metrics is not None and run.metrics["demand"] == run.demand
        assert run.metrics["coverage"] == run.coverage and run.started_at and run.finished_at
        instance = term_to_instance(term)
        report = validate(instance, run_to_solution(run))
        assert not report.violations, report.violations
        assert report.objective.coverage == run.coverage
        assert db.session.scalar(select(func.count()).select_from(RunAssignment)
                                 .where(RunAssignment.run_id == run_id))
    detail = client.get(run_url).get_data(as_text=True)
    assert "发布" in detail and str(run.coverage) in detail


def _start(app: Flask, term_id: int, admin_id: int) -> int:
    with app.test_request_context():
        term = db.session.get(Term, term_id)
        admin = db.session.get(User, admin_id)
        assert term is not None and admin is not None
        return jobs.start_run(term, admin).id


def _cancel(app: Flask, run_id: int) -> str:
    with app.app_context():
        run = db.session.get(AllocationRun, run_id)
        assert run is not None
        return jobs.cancel_run(run)


@pytest.mark.slow
def test_cancel_running_and_queued(tmp_path: Any) -> None:
    app = _app(tmp_path, ALLOCATION_TIME_LIMIT=120.0)
    try:
        term_id, admin_id = _setup(app, pupils=150, days=5, tight=0.8)
        first = _start(app, term_id, admin_id)
        second = _start(app, term_id, admin_id)  # one pool worker: this one waits in the queue
        assert _cancel(app, second) == "cancelled"
        wait_for_run(app, first, states=("running",), timeout=60)
        deadline = time.monotonic() + 60
        while True:  # wait until the solver is really searching, then cancel
            with app.app_context():
                stage = db.session.scalar(select(AllocationRun.stage).where(AllocationRun.id == first))
            if stage not in ("queued", "building"):
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
        began = time.monotonic()
        assert _cancel(app, first) == "cancelling"
        run = wait_for_run(app, first, timeout=60)
        assert run.state == "cancelled", (run.state, run.error)
        assert time.monotonic() - began < 30
        assert _rows(app, first) == 0
        queued = wait_for_run(app, second)
        assert queued.state == "cancelled" and queued.started_at is None and _rows(app, second) == 0
    finally:
        jobs.shutdown_pool(wait=True)


@pytest.mark.parametrize("fail_at", ["solve", "commit"])
def test_crash_leaves_no_partial_run(tmp_path: Any, fail_at: str) -> None:
    app = _app(tmp_path, ALLOCATION_FAIL_AT=fail_at)
    try:
        term_id, admin_id = _setup(app, pupils=30, days=2)
        run_id = _start(app, term_id, admin_id)
        run = wait_for_run(app, run_id)
        assert run.state == "failed"
        assert run.error and "\n" not in run.error and "injected failure" in run.error
        assert "Traceback" not in run.error
        assert run.metrics is None and run.coverage is None
        assert _rows(app, run_id) == 0
    finally:
        jobs.shutdown_pool(wait=True)


def test_store_failure_in_process_rolls_back(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same job run in this process, with the final store broken after its inserts."""
    term_id, admin_id = _setup(app, pupils=30, days=2)
    import webapp.services as services

    real_insert = services.insert
    calls = {"n": 0}

    def flaky_insert(model: Any) -> Any:
        calls["n"] += 1
        if model is services.RunStaffing.__table__:
            raise RuntimeError("disk full")
        return real_insert(model)

    monkeypatch.setattr(services, "insert", flaky_insert)
    with app.app_context():
        run = AllocationRun(term_id=term_id, created_by=admin_id)
        db.session.add(run)
        db.session.commit()
        run_id = run.id
        url = jobs.database_url()
        assert jobs.run_allocation(run_id, url, time_limit=5.0) == "failed"
    with app.app_context():
        run = db.session.get(AllocationRun, run_id)
        assert run is not None and run.state == "failed" and run.error == "RuntimeError: disk full"
    assert calls["n"] >= 1
    assert _rows(app, run_id) == 0


def test_dead_worker_shows_as_failed(pool_app: Flask) -> None:
    term_id, admin_id = _setup(pool_app, pupils=10, days=1)
    with pool_app.app_context():
        old = utcnow() - timedelta(minutes=10)
        run = AllocationRun(term_id=term_id, created_by=admin_id, state="running", stage="coverage",
                            started_at=old, heartbeat_at=old)
        fresh = AllocationRun(term_id=term_id, created_by=admin_id, state="running", stage="coverage",
                              started_at=utcnow(), heartbeat_at=utcnow())
        db.session.add_all([run, fresh])
        db.session.commit()
        stale_id, fresh_id = run.id, fresh.id
    client = pool_app.test_client()
    sign_in(client, "runs-admin")
    status = client.get(f"/admin/runs/{stale_id}/status").get_json()
    assert status["state"] == "failed" and status["error"] and "Traceback" not in status["error"]
    assert client.get(f"/admin/runs/{fresh_id}/status").get_json()["state"] == "running"
    page = client.get(f"/admin/runs/term/{term_id}").get_data(as_text=True)
    assert page.count("badge-danger") == 1


def test_cancel_after_finish_changes_nothing(app: Flask) -> None:
    term_id, admin_id = _setup(app, pupils=20, days=2)
    with app.app_context():
        run = AllocationRun(term_id=term_id, created_by=admin_id)
        db.session.add(run)
        db.session.commit()
        assert jobs.run_allocation(run.id, jobs.database_url(), time_limit=5.0) == "done"
        db.session.refresh(run)
        assert jobs.cancel_run(run) == "done"


def test_solver_workers_share_the_cores(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 8)
    assert jobs.solver_threads(1) == 8 and jobs.solver_threads(2) == 4 and jobs.solver_threads(16) == 1
    with app.app_context():
        term = import_term(build_instance(5, seed=1, days=1))
        app.config["ALLOCATION_WORKERS"] = 2
        options = jobs.job_options(term)
    assert options["workers"] == 4 and "fail_at" not in options


def test_a_pool_worker_freezes_its_long_lived_heap_once_its_app_is_built(pool_app: Flask) -> None:
    """The pool's worker moves its app, mappers and modules out of the cyclic collector's sight after its first
    job built the app, and collects young objects less often; the process that submits jobs keeps its collector."""
    here = gc.get_freeze_count(), gc.get_threshold()
    term_id, admin_id = _setup(pool_app, pupils=10, days=1)
    with pool_app.app_context():
        pool = runner.local_pool()  # one worker (ALLOCATION_WORKERS=1): every call below lands in it
    assert pool.submit(gc.get_freeze_count).result(60) == 0  # no job yet, so no app and nothing frozen
    run = wait_for_run(pool_app, _start(pool_app, term_id, admin_id))
    assert run.state == "done", run.error
    assert pool.submit(gc.get_freeze_count).result(60) > 50_000
    assert pool.submit(gc.get_threshold).result(60) == WORKER_GC_THRESHOLD
    assert pool.submit(gc.isenabled).result(60)
    assert (gc.get_freeze_count(), gc.get_threshold()) == here
