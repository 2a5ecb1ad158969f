"""One allocation through Celery: a real Redis broker and a real `celery worker` process started by the test."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from scheduler.validation import validate
from tests.conftest import _make_app
from tests.webapp.factories import build_instance, create_user, import_term, wait_for_run
from webapp.extensions import db
from webapp.jobs import runner, start_run
from webapp.models import AllocationRun, Term, User
from webapp.services import run_to_solution, term_to_instance

ROOT = Path(__file__).resolve().parents[3]


def _redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    required = os.environ.get("REQUIRE_SERVICES") == "1"
    if not url:
        if required:
            pytest.fail("REQUIRE_SERVICES=1 but TEST_REDIS_URL is not set")
        print("skipping: TEST_REDIS_URL is not set")
        pytest.skip("TEST_REDIS_URL is not set")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as exc:
        if required:
            pytest.fail(f"Redis at TEST_REDIS_URL is unreachable: {exc}")
        print(f"skipping: Redis unreachable: {exc}")
        pytest.skip("Redis unreachable")
    return url


@pytest.fixture
def celery_setup(tmp_path: Any) -> Iterator[tuple[Flask, subprocess.Popen[bytes], Path]]:
    broker = _redis_url()
    queue = f"runs-test-{uuid.uuid4().hex[:8]}"
    app = _make_app(tmp_path, CELERY_BROKER_URL=broker, CELERY_QUEUE=queue, ALLOCATION_TIME_LIMIT=10.0,
                    ALLOCATION_SOLVER_WORKERS=1)
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    log_path = tmp_path / "worker.log"
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": broker, "CELERY_QUEUE": queue,
           "SECRET_KEY": "celery-test-worker", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "webapp.celery_app", "worker", "--pool", "solo",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"{queue}@%h"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        yield app, worker, log_path
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        from webapp.celery_app import celery

        with celery.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.mark.slow
def test_one_allocation_through_celery(celery_setup: tuple[Flask, subprocess.Popen[bytes], Path]) -> None:
    app, worker, log_path = celery_setup
    with app.app_context():
        term = import_term(build_instance(30, seed=9, days=3, tight=0.8))
        admin = create_user("school_admin", school=term.school, login="celery-admin")
        term_id, admin_id = term.id, admin.id
    with app.test_request_context():
        term = db.session.get(Term, term_id)
        admin = db.session.get(User, admin_id)
        assert term is not None and admin is not None
        run_id = start_run(term, admin).id
    assert runner._futures.get((AllocationRun.__tablename__, run_id)) is None  # went to the broker, not the pool
    try:
        run = wait_for_run(app, run_id, timeout=90)
    except AssertionError:
        raise AssertionError(f"worker alive={worker.poll() is None}; log:\n{log_path.read_text()[-3000:]}") from None
    assert run.state == "done", (run.state, run.error, log_path.read_text()[-2000:])
    log = log_path.read_text()
    assert runner.TASK_NAME in log and f"allocation run {run_id} done" in log  # solved by the worker
    # The worker froze its long-lived heap once its app was built (`settle_worker_heap`), as pool workers do.
    settled = re.search(r"worker heap settled: (\d+) objects frozen", log)
    assert settled is not None and int(settled.group(1)) > 50_000, log[-2000:]
    with app.app_context():
        stored = db.session.get(AllocationRun, run_id)
        term = db.session.get(Term, term_id)
        assert stored is not None and term is not None and stored.metrics
        report = validate(term_to_instance(term), run_to_solution(stored))
        assert not report.violations
