"""The job-kind registry: unknown kinds are refused, and every kind runs through the same claim/store/finish."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from flask import Flask

from tests.webapp.factories import build_instance, create_user, import_term
from webapp import jobs
from webapp.extensions import db
from webapp.jobs import runner
from webapp.models import AllocationRun, CapacityAdvice, RunState

KIND_NAMES = ("allocation", "batch", "advice")


def _term(app: Flask) -> tuple[int, int]:
    """A tiny term and its admin: (term id, admin id)."""
    with app.app_context():
        term = import_term(build_instance(8, seed=4, days=1))
        return term.id, create_user("school_admin", school=term.school, login="kinds-admin").id


def _queued_row(app: Flask, kind: str, term: tuple[int, int]) -> int:
    """A queued row of the kind's table for `term`."""
    with app.app_context():
        row = runner.kind_of(kind).model(term_id=term[0], created_by=term[1], state=RunState.QUEUED)
        db.session.add(row)
        db.session.commit()
        return int(row.id)


def _state(app: Flask, kind: str, job_id: int) -> tuple[str, str | None]:
    with app.app_context():
        row = db.session.get(runner.kind_of(kind).model, job_id)
        assert row is not None
        return row.state, row.error


def test_the_registry_holds_the_three_kinds() -> None:
    assert set(KIND_NAMES) <= set(runner.KINDS)
    assert runner.kind_of("allocation").model is AllocationRun and runner.kind_of("batch").model is AllocationRun
    assert runner.kind_of("advice").model is CapacityAdvice
    assert runner.kind_of("allocation").heartbeat and not runner.kind_of("advice").heartbeat


def test_an_unknown_kind_is_refused(app: Flask) -> None:
    job_id = _queued_row(app, "allocation", _term(app))
    with app.test_request_context():
        url = runner.database_url()
        with pytest.raises(jobs.UnknownJobKind, match="no-such-kind"):
            runner.execute("no-such-kind", job_id, url)
        with pytest.raises(jobs.UnknownJobKind):
            runner.submit("no-such-kind", job_id, {})
        with pytest.raises(jobs.UnknownJobKind):
            runner.submit_local("no-such-kind", job_id, url, {})
        with pytest.raises(jobs.UnknownJobKind):
            runner.submit_celery([("no-such-kind", job_id, {})], url)
    assert _state(app, "allocation", job_id) == (RunState.QUEUED, None)  # nothing claimed, nothing queued
    assert not runner._futures


def test_a_kind_registers_once() -> None:
    kind = runner.JobKind("test-notify", CapacityAdvice, lambda job: None)
    try:
        assert runner.register(kind) is kind and runner.register(kind) is kind
        assert runner.kind_of("test-notify") is kind
        with pytest.raises(ValueError, match="registered already"):
            runner.register(dataclasses.replace(kind))
    finally:
        runner.KINDS.pop("test-notify", None)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_kind_goes_through_the_same_claim_and_finish(
    app: Flask, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The same runner claims, finishes failed or cancelled, and refuses to run a job twice, for each kind."""
    calls: list[tuple[str, int]] = []
    real = runner.kind_of(kind)

    def fail(job: runner.Job, **options: Any) -> None:
        with db.engine.connect() as conn:  # the runner claimed the row before the kind's body runs
            state = conn.scalar(db.select(real.model.state).where(real.model.id == job.id))
        calls.append((str(state), job.id))
        raise RuntimeError("broken body\nsecond line")

    def cancelled(job: runner.Job, **options: Any) -> None:
        calls.append(("cancel", job.id))
        raise runner.JobCancelled("asked")

    with app.app_context():
        url = runner.database_url()
    term = _term(app)
    failing = _queued_row(app, kind, term)
    monkeypatch.setitem(runner.KINDS, kind, dataclasses.replace(real, run=fail))
    outcome = runner.execute(kind, failing, url)
    assert outcome["state"] == RunState.FAILED and outcome["error"] == "RuntimeError: broken body"
    assert calls == [(RunState.RUNNING, failing)]
    assert _state(app, kind, failing) == (RunState.FAILED, "RuntimeError: broken body")
    again = runner.execute(kind, failing, url)  # not queued any more: not claimed, the body does not run
    assert again["state"] == RunState.FAILED and len(calls) == 1

    stopping = _queued_row(app, kind, term)
    monkeypatch.setitem(runner.KINDS, kind, dataclasses.replace(real, run=cancelled))
    assert runner.execute(kind, stopping, url)["state"] == RunState.CANCELLED
    assert _state(app, kind, stopping) == (RunState.CANCELLED, None)

    missing = runner.execute(kind, 10**9, url)
    assert missing["state"] == RunState.FAILED and "not found" in missing["error"]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_kind_runs_for_real_and_stores_done(app: Flask, kind: str) -> None:
    job_id = _queued_row(app, kind, _term(app))
    with app.app_context():
        outcome = runner.execute(kind, job_id, runner.database_url(), time_limit=5.0, workers=1)
        assert outcome["state"] == RunState.DONE, outcome
        row = db.session.get(runner.kind_of(kind).model, job_id)
        assert row is not None and row.state == RunState.DONE and row.finished_at is not None
        if kind == "advice":
            assert row.result is not None
        else:
            assert row.metrics is not None and row.coverage is not None
    if kind == "batch":
        assert outcome["school_code"] and outcome["demand"] is not None
