"""City-scale allocation: small schools with the local pool, an injected failure, resume, Celery."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from bench.city import build_city, school_sizes
from tests.webapp.factories import break_school
from webapp import run_summary
from webapp.bureau.city import batch_filter, prepare_batch, print_summary
from webapp.extensions import db
from webapp.jobs import BATCH_KEY, CoverageProof, SchoolResult, run_local, solver_threads
from webapp.models import AllocationRun, School, Term

BAD_SCHOOL = "KM-0007"


def _city(app: Flask, schools: int, *, bad: bool = True) -> None:
    with app.app_context():
        build_city(schools, seed=3, sizes=[100 + (i * 37) % 101 for i in range(schools)], echo=lambda _: None)
        if bad:  # one school's instance cannot be built: the batch reports it and carries on
            break_school(BAD_SCHOOL)


def _batch_runs(app: Flask, batch_id: str) -> list[tuple[str, str, str | None]]:
    with app.app_context():
        return [
            (code, state, error)
            for code, state, error in db.session.execute(
                select(School.code, AllocationRun.state, AllocationRun.error)
                .join(Term, Term.id == AllocationRun.term_id)
                .join(School, School.id == Term.school_id)
                .where(batch_filter(batch_id))
                .order_by(School.code)
            )
        ]


def test_school_sizes_are_skewed_and_bounded() -> None:
    sizes = school_sizes(950, seed=1)
    assert min(sizes) >= 150 and max(sizes) <= 3000
    assert 480_000 <= sum(sizes) <= 520_000
    assert sorted(sizes)[len(sizes) // 2] < sum(sizes) / len(
        sizes
    )  # median below mean: a long tail of big schools
    assert solver_threads(1) == max(1, os.cpu_count() or 1)
    assert solver_threads(64) == 1


def test_allocate_needs_a_scope(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["allocate"])
    assert result.exit_code == 2 and "--all" in result.output
    result = app.test_cli_runner().invoke(args=["allocate", "--district", "无此区"])
    assert result.exit_code == 2 and "no district" in result.output


@pytest.mark.slow
def test_the_summary_says_how_far_the_unproven_schools_may_be_from_their_best() -> None:
    """`allocate` sums, over the schools whose coverage is not proven, their bound minus their coverage: how many
    weighted pupil-days the batch may still be short, at most. A failed school counts in neither."""
    def school(code: str, state: str, coverage: int | None, bound: int | None) -> SchoolResult:
        return SchoolResult(len(code), code, code, state, coverage=coverage, bound=bound)

    results = [school("KM-1", "done", 500, 500), school("KM-2", "done", 410, 417), school("KM-3", "done", 90, 92),
               school("KM-4", "failed", None, None), school("KM-5", "done", 300, 300)]
    assert [r.short for r in results] == [0, 7, 2, None, 0]
    assert [r.proven for r in results] == [True, False, False, False, True]
    assert CoverageProof.of([r.short for r in results]) == CoverageProof(done=4, proven=2, short=9)
    lines: list[str] = []
    print_summary(results, skipped=0, seconds=1.0, echo=lines.append)
    assert re.search(r"coverage proven optimal\s+2/4$", "\n".join(lines), re.M)
    assert re.search(r"coverage short, at most\s+9 weighted pupil-days at the 2 others$", "\n".join(lines), re.M)


def test_city_batch_isolates_a_failure_and_resumes_after_an_interruption(app: Flask) -> None:
    _city(app, 30)
    batch_id = "test-" + uuid.uuid4().hex[:8]
    with app.app_context():
        run_ids, skipped = prepare_batch(batch_id, scope="city")
        assert len(run_ids) == 30 and skipped == 0
        url = db.engine.url.render_as_string(hide_password=False)
        # The first ten schools finish, then the process is "killed": one run left running, the rest queued.
        first = run_local(run_ids[:10], url, pool_size=2, time_limit=2.0, on_result=lambda r: None)
        assert len(first) == 10
        db.session.execute(
            update(AllocationRun).where(AllocationRun.id == run_ids[10]).values(state="running")
        )
        db.session.commit()

    result = app.test_cli_runner().invoke(
        args=["allocate", "--all", "--resume", "--workers", "2", "--time-limit", "2"]
    )
    assert result.exit_code == 1, result.output
    assert f"batch {batch_id}" in result.output
    done_first = sum(1 for r in first if r.state == "done")
    assert any(r.school_code == BAD_SCHOOL and r.state == "failed" for r in first)
    assert re.search(rf"skipped \(done before\)\s+{done_first}\n", result.output)
    assert BAD_SCHOOL in result.output and "Traceback" not in result.output

    runs = _batch_runs(app, batch_id)
    codes = [code for code, _, _ in runs]
    assert (
        len(codes) == len(set(codes)) == 30
    )  # one run per school: resumed runs were re-queued, not duplicated
    failed = dict((code, error) for code, state, error in runs if state != "done")
    assert (failed.get(BAD_SCHOOL) or "").startswith("KeyError")
    # Any other failure would be a solver fault on a generated school; it must stay isolated and named.
    assert len(failed) <= 3, failed
    assert all(code in result.output for code in failed)
    with app.app_context():
        done = db.session.scalars(
            select(AllocationRun).where(batch_filter(batch_id), AllocationRun.state == "done")
        ).all()
        assert all(run.stats and run.stats[BATCH_KEY] == batch_id and not run.is_published for run in done)
        assert all(run.coverage is not None and run.demand for run in done)
        counted = run_summary.count(run.id for run in done)  # each worker stored its run's dashboard summary
        assert all(run_summary.is_current(run.summary) and run.summary == counted[run.id] for run in done)

    # Resuming a finished batch runs the failed school again only.
    again = app.test_cli_runner().invoke(
        args=["allocate", "--all", "--resume", "--batch", batch_id, "--workers", "2", "--time-limit", "2"]
    )
    assert again.exit_code == 1
    assert re.search(rf"skipped \(done before\)\s+{30 - len(failed)}\n", again.output)


def _redis_url() -> str | None:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("REQUIRE_SERVICES=1 but TEST_REDIS_URL is not set")
        print("skipping: TEST_REDIS_URL is not set")
        pytest.skip("TEST_REDIS_URL is not set")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as exc:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis at {url} is unreachable: {exc}")
        print(f"skipping: Redis at {url} is unreachable: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    return url


@pytest.mark.slow
@pytest.mark.redis
def test_city_batch_through_celery_with_a_real_worker(app: Flask, tmp_path: Path) -> None:
    url = _redis_url()
    assert url is not None
    _city(app, 8)
    queue = "bureau-test-" + uuid.uuid4().hex[:8]
    with app.app_context():
        database_url = db.engine.url.render_as_string(hide_password=False)
    celery_bin = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": url,
        "CELERY_QUEUE": queue,
        "SECRET_KEY": "test-secret",
    }
    worker = subprocess.Popen(
        [
            celery_bin,
            "-A",
            "webapp.celery_app",
            "worker",
            "--pool",
            "prefork",
            "-c",
            "2",
            "-Q",
            queue,
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env=env,
        cwd=str(Path(__file__).resolve().parents[3]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        app.config.update(CELERY_BROKER_URL=url, CELERY_RESULT_BACKEND=url, CELERY_QUEUE=queue)
        started = time.monotonic()
        result = app.test_cli_runner().invoke(
            args=["allocate", "--all", "--workers", "2", "--time-limit", "2"]
        )
        assert result.exit_code == 1, result.output
        assert "(Celery)" in result.output and BAD_SCHOOL in result.output
        assert time.monotonic() - started < 120
        batch_id = result.output.split()[1].rstrip(":")
        runs = _batch_runs(app, batch_id)
        assert len(runs) == 8
        states = {code: state for code, state, _ in runs}
        assert states.pop(BAD_SCHOOL) == "failed" and sum(s == "done" for s in states.values()) >= 6
        with app.app_context():
            done = db.session.scalars(
                select(AllocationRun).where(batch_filter(batch_id), AllocationRun.state == "done")
            ).all()
            counted = run_summary.count(run.id for run in done)
            assert done and all(run.summary == counted[run.id] for run in done)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()


def test_batch_from_the_page_with_progress(app: Any, client: Any, signed_in: Any) -> None:
    _city(app, 3, bad=False)
    app.config.update(JOBS_INLINE=True, BUREAU_TIME_LIMIT=2)
    signed_in("bureau")
    from tests.webapp.factories import post_form

    response = post_form(client, "/bureau/batches", {"district": ""}, token_from="/bureau/")
    assert response.status_code == 302 and "/bureau/batches/" in response.location
    page = client.get(response.location)
    assert page.status_code == 200 and "batch-progress" in page.get_data(as_text=True)
    status = client.get(response.location.rstrip("/") + "/status.json").get_json()
    # The login fixture adds its own test school (KM-TEST-0001) to the three generated ones.
    assert status["total"] == 4 and status["done"] == 4 and status["failed"] == 0 and status["finished"]
    assert client.get("/bureau/batches/no-such-batch/status.json").status_code == 404


def test_a_batch_caps_the_levels_after_coverage_as_configured(app: Flask) -> None:
    """Each school's job in a batch carries the cap on the levels after coverage; a negative setting lifts it."""
    from webapp.jobs.batch import LATER_LEVELS_SECONDS, batch_options

    with app.app_context():
        assert batch_options(3.0, 1) == {"time_limit": 3.0, "workers": 1, "later_levels_limit": LATER_LEVELS_SECONDS}
        app.config["BUREAU_LATER_LEVELS_SECONDS"] = 0.5
        assert batch_options(3.0, 2)["later_levels_limit"] == 0.5
        app.config["BUREAU_LATER_LEVELS_SECONDS"] = -1
        assert "later_levels_limit" not in batch_options(3.0, 2)
