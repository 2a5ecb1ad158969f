"""Publishing: one transaction, rising versions, waitlist order, and one winner when two admins publish at once."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from tests.conftest import _make_app
from tests.webapp.factories import build_instance, create_user, import_term, post_form, sign_in
from webapp import jobs
from webapp.allocation import service
from webapp.allocation.lottery import lottery_key
from webapp.allocation.service import PublishConflict, PublishError, publish_run
from webapp.extensions import db
from webapp.models import AllocationRun, AuditLog, Pupil, RunUnserved, Term, User


def _term_with_runs(app: Flask, n_runs: int = 2, *, pupils: int = 20, tight: float = 0.5) -> tuple[int, int, list[int]]:
    """A term, its admin and `n_runs` finished runs (solved in this process)."""
    with app.app_context():
        term = import_term(build_instance(pupils, seed=11, days=3, tight=tight))
        term.lottery_seed = 0
        db.session.commit()
        admin = create_user("school_admin", school=term.school, login="pub-admin")
        run_ids = []
        for _ in range(n_runs):
            run = AllocationRun(term_id=term.id, created_by=admin.id)
            db.session.add(run)
            db.session.commit()
            assert jobs.run_allocation(run.id, jobs.database_url(), time_limit=5.0) == "done"
            run_ids.append(run.id)
        return term.id, admin.id, run_ids


def _publish(app: Flask, run_id: int, admin_id: int, **kwargs: Any) -> int | None:
    """Publish and return the new version number."""
    with app.app_context():
        run, admin = db.session.get(AllocationRun, run_id), db.session.get(User, admin_id)
        assert run is not None and admin is not None
        return publish_run(run, admin, **kwargs).version


def _snapshot(app: Flask, term_id: int) -> dict[str, Any]:
    with app.app_context():
        term = db.session.get(Term, term_id)
        assert term is not None
        return {
            "published": term.published_run_id,
            "seed": term.lottery_seed,
            "versions": sorted((r.id, r.version, r.is_published) for r in term.runs),
            "positions": db.session.scalar(select(func.count()).select_from(RunUnserved)
                                           .where(RunUnserved.waitlist_position.is_not(None))),
            "audit": db.session.scalar(select(func.count()).select_from(AuditLog)
                                       .where(AuditLog.action == "run.publish")),
        }


def test_publish_sets_version_waitlist_and_audit(app: Flask) -> None:
    term_id, admin_id, (first, second) = _term_with_runs(app)
    assert _publish(app, first, admin_id) == 1
    with app.app_context():
        term = db.session.get(Term, term_id)
        assert term is not None and term.published_run_id == first and term.lottery_seed > 0
        weights = {int(k): v for k, v in term.priority_weights.items()}
        rows = db.session.execute(select(RunUnserved, Pupil).join(Pupil).where(RunUnserved.run_id == first)
                                  .order_by(RunUnserved.day, RunUnserved.waitlist_position)).all()
        assert rows, "the test term should leave some pupil-days unserved"
        for day in {r.day for r, _ in rows}:  # one queue per weekday, in priority-then-lottery order
            queue = [(r, p) for r, p in rows if r.day == day]
            assert [r.waitlist_position for r, _ in queue] == list(range(1, len(queue) + 1))
            keys = [(-weights[p.priority], lottery_key(term.lottery_seed, p)) for _, p in queue]
            assert keys == sorted(keys)
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "run.publish"))
        assert entry is not None and entry.detail and entry.detail["version"] == 1 and entry.user_id == admin_id

    assert _publish(app, second, admin_id) == 2
    snap = _snapshot(app, term_id)
    assert snap["published"] == second
    assert snap["versions"] == [(first, 1, True), (second, 2, True)]  # the older run keeps its number
    with pytest.raises(PublishError):
        _publish(app, second, admin_id)  # already the published version
    with pytest.raises(PublishError):
        _publish(app, first, admin_id)  # was published before: keeps version 1
    assert _snapshot(app, term_id) == snap


def test_unfinished_or_empty_runs_are_refused(app: Flask) -> None:
    term_id, admin_id, _ = _term_with_runs(app, n_runs=0)
    with app.app_context():
        failed = AllocationRun(term_id=term_id, created_by=admin_id, state="failed")
        infeasible = AllocationRun(term_id=term_id, created_by=admin_id, state="done", status="INFEASIBLE")
        db.session.add_all([failed, infeasible])
        db.session.commit()
        ids = [failed.id, infeasible.id]
    for run_id in ids:
        with pytest.raises(PublishError):
            _publish(app, run_id, admin_id)
    assert _snapshot(app, term_id)["published"] is None


@pytest.mark.parametrize("where", ["audit", "waitlist"])
def test_failure_inside_the_transaction_changes_nothing(app: Flask, monkeypatch: pytest.MonkeyPatch,
                                                        where: str) -> None:
    term_id, admin_id, (first, second) = _term_with_runs(app)
    _publish(app, first, admin_id)
    before = _snapshot(app, term_id)

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    if where == "audit":
        monkeypatch.setattr(service.audit, "record", boom)
    else:
        monkeypatch.setattr(service, "positions", boom)
    with pytest.raises(RuntimeError):
        _publish(app, second, admin_id)
    after = _snapshot(app, term_id)
    assert after == before
    with app.app_context():
        run = db.session.get(AllocationRun, second)
        assert run is not None and run.version is None and not run.is_published and run.published_at is None
        assert not db.session.scalar(select(func.count()).select_from(RunUnserved).where(
            RunUnserved.run_id == second, RunUnserved.waitlist_position.is_not(None)))


def _race(app: Flask, term_id: int, admin_id: int, run_ids: list[int]) -> list[object]:
    with app.app_context():
        term = db.session.get(Term, term_id)
        assert term is not None
        expected = term.published_run_id
    barrier = threading.Barrier(len(run_ids))
    results: list[object] = [None] * len(run_ids)

    def attempt(i: int) -> None:
        with app.app_context():
            run, admin = db.session.get(AllocationRun, run_ids[i]), db.session.get(User, admin_id)
            assert run is not None and admin is not None
            barrier.wait()
            try:
                results[i] = publish_run(run, admin, expected=expected).version
            except Exception as exc:  # noqa: BLE001 - collected for the assertions below
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(run_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _assert_one_winner(app: Flask, term_id: int, run_ids: list[int], results: list[object], old: int) -> None:
    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if not isinstance(r, int)]
    assert winners == [old + 1], results
    assert all(isinstance(r, PublishConflict) for r in losers), results
    snap = _snapshot(app, term_id)
    winner = run_ids[results.index(old + 1)]
    assert snap["published"] == winner
    assert [v for _, v, _ in snap["versions"] if v is not None] == list(range(1, old + 2))


def test_two_admins_publish_at_once_on_sqlite(app: Flask) -> None:
    term_id, admin_id, run_ids = _term_with_runs(app, n_runs=3)
    _publish(app, run_ids[0], admin_id)
    results = _race(app, term_id, admin_id, run_ids[1:])
    _assert_one_winner(app, term_id, run_ids[1:], results, old=1)


@pytest.fixture
def pg_app(tmp_path: Any) -> Iterator[Flask]:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("REQUIRE_SERVICES=1 but TEST_DATABASE_URL is not set")
        print("skipping: TEST_DATABASE_URL is not set")
        pytest.skip("TEST_DATABASE_URL is not set")
    from webapp import normalise_database_url

    url = normalise_database_url(url)
    schema = f"runs_test_{uuid.uuid4().hex[:10]}"
    try:
        admin_engine = create_engine(url)
        with admin_engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {exc}")
        print(f"skipping: PostgreSQL unreachable: {exc}")
        pytest.skip("PostgreSQL unreachable")
    app = _make_app(tmp_path, SQLALCHEMY_DATABASE_URI=url, SQLALCHEMY_ENGINE_OPTIONS={
        "pool_pre_ping": True, "connect_args": {"options": f"-csearch_path={schema}"}})
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        with admin_engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()


def test_two_admins_publish_at_once_on_postgresql(pg_app: Flask) -> None:
    term_id, admin_id, run_ids = _term_with_runs(pg_app, n_runs=3)
    _publish(pg_app, run_ids[0], admin_id)
    results = _race(pg_app, term_id, admin_id, run_ids[1:])
    _assert_one_winner(pg_app, term_id, run_ids[1:], results, old=1)


def test_publish_button_and_stale_page(app: Flask) -> None:
    term_id, admin_id, (first, second) = _term_with_runs(app)
    client = app.test_client()
    sign_in(client, "pub-admin")
    page_b = f"/admin/runs/{second}/publish"  # the confirmation page carries the version the admin saw
    token_page = client.get(page_b).get_data(as_text=True)
    assert 'name="expected"' in token_page
    # Another admin publishes the first run after this page was loaded...
    _publish(app, first, admin_id)
    # ...so publishing from the stale page is refused with a clear message.
    from tests.webapp.factories import CSRF_RE

    match = CSRF_RE.search(token_page)
    assert match
    response = client.post(f"/admin/runs/{second}/publish", data={"csrf_token": match.group(1) or match.group(2),
                                                                   "expected": ""}, follow_redirects=True)
    assert "其他管理员刚刚发布了一个版本" in response.get_data(as_text=True)
    assert _snapshot(app, term_id)["published"] == first
    response = post_form(client, f"/admin/runs/{second}/publish", {"expected": str(first)}, token_from=page_b,
                         follow_redirects=True)
    assert response.status_code == 200
    with app.app_context():
        term = db.session.get(Term, term_id)
        assert term is not None and term.published_run_id == second
    assert "第 2 版已发布" in response.get_data(as_text=True)
