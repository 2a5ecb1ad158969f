"""Stored run summaries: counted when a run's rows change, equal to a fresh count, and read by the dashboard."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import delete, select, update

from tests.webapp.factories import (
    create_user,
    post_form,
    publish,
    pupil,
    request,
    seed_city,
    session,
    small_term,
    teacher,
)
from webapp import run_summary
from webapp.allocation.service import fill_freed_seats
from webapp.bureau.stats import city_stats
from webapp.extensions import db
from webapp.models import AllocationRun, Pupil, RunAssignment, RunUnserved, Term, User
from webapp.parents.service import withdraw_request


def _stored(run_id: int) -> dict[str, Any] | None:
    db.session.expire_all()
    return db.session.scalar(select(AllocationRun.summary).where(AllocationRun.id == run_id))


def _fresh(run_id: int) -> dict[str, Any]:
    return run_summary.count([run_id])[run_id]


def _figures() -> dict[str, Any]:
    stats = city_stats()
    return {s.school_code: (s.figures.as_row(), sorted(s.figures.slots.items())) for s in stats.schools} | {
        "city": [(f.as_row(), sorted(f.slots.items())) for f in stats.rollup.parts],
        "trend": [(name, [f.as_row() for f in r.parts]) for name, r in stats.trend],
    }


def test_every_run_stores_a_summary_equal_to_a_fresh_count(app: Flask) -> None:
    with app.app_context():
        seed_city()
        run_ids = db.session.scalars(select(AllocationRun.id).where(AllocationRun.state == "done")).all()
        assert len(run_ids) >= 3
        for run_id in run_ids:
            stored = _stored(run_id)
            assert stored is not None and stored["v"] == run_summary.VERSION
            assert stored == _fresh(run_id)


def test_dashboard_figures_are_the_same_without_stored_summaries(app: Flask) -> None:
    with app.app_context():
        seed_city()
        with_summaries = _figures()
        db.session.execute(update(AllocationRun).values(summary=None))
        db.session.commit()
        assert _stored(db.session.scalar(select(AllocationRun.id))) is None
        assert _figures() == with_summaries  # counted from the rows instead


def test_summarize_runs_command_fills_missing_summaries(app: Flask, runner: FlaskCliRunner) -> None:
    with app.app_context():
        seed_city()
        expected = {r.id: r.summary for r in db.session.scalars(select(AllocationRun))}
        db.session.execute(update(AllocationRun).values(summary=None))
        db.session.commit()
    result = runner.invoke(args=["summarize-runs"])
    assert result.exit_code == 0, result.output
    assert f"{len(expected)} run" in result.output
    with app.app_context():
        assert {r.id: r.summary for r in db.session.scalars(select(AllocationRun))} == expected


def _two_seat_term() -> tuple[Term, AllocationRun]:
    """Session A has 2 seats, both taken; W1 and W2 wait for day 1."""
    pupils = [pupil("S1"), pupil("S2"), pupil("W1"), pupil("W2")]
    term = small_term([session("A", capacity=2, ppt=2)], [teacher("T1", [(1, "P1")])], pupils,
                      [request(p.id) for p in pupils])
    run = publish(term, [("S1", "A"), ("S2", "A")], [("T1", "A")])
    return term, run


def test_withdrawal_and_waitlist_promotion_recount_the_published_run(app: Flask) -> None:
    with app.app_context():
        term, run = _two_seat_term()
        before = _stored(run.id)
        assert before is not None
        assert (before["requesting"], before["served"], before["covered_days"]) == (4, 2, 2)

        seated = db.session.scalar(select(Pupil).where(Pupil.number == "S1"))
        assert seated is not None
        parent = create_user("parent", pupil=seated)
        withdraw_request(parent, seated, term)  # also promotes W1 (or W2) into the freed seat
        after = _stored(run.id)
        assert after == _fresh(run.id)
        assert (after["requesting"], after["served"], after["covered_days"]) == (3, 2, 2)
        assert after["slots"] == [[1, "P1", 3, 2]]
        unserved = db.session.scalars(select(RunUnserved).where(RunUnserved.run_id == run.id)).all()
        assert len(unserved) == 1


def test_a_seat_freed_by_hand_then_promoted_is_counted(app: Flask) -> None:
    with app.app_context():
        term, run = _two_seat_term()
        s1 = db.session.scalar(select(Pupil.id).where(Pupil.number == "S1"))
        db.session.execute(update(Pupil).where(Pupil.id == s1).values(active=False))
        db.session.execute(delete(RunAssignment).where(RunAssignment.run_id == run.id,
                                                       RunAssignment.pupil_id == s1))
        run_summary.mark_changed(db.session, run.id)
        db.session.commit()
        assert _stored(run.id) == _fresh(run.id)
        assert _stored(run.id)["slots"] == [[1, "P1", 3, 1]]  # type: ignore[index]
        promoted = fill_freed_seats(db.session.get(Term, term.id))  # ORM adds: marked without being told
        assert len(promoted) == 1
        assert _stored(run.id) == _fresh(run.id)
        assert _stored(run.id)["slots"] == [[1, "P1", 3, 2]]  # type: ignore[index]


def test_a_rolled_back_change_leaves_the_summary_alone(app: Flask) -> None:
    with app.app_context():
        _, run = _two_seat_term()
        before = _stored(run.id)
        db.session.execute(delete(RunAssignment).where(RunAssignment.run_id == run.id))
        run_summary.mark_changed(db.session, run.id)
        db.session.rollback()
        assert _stored(run.id) == before
        db.session.commit()  # nothing is left marked
        assert _stored(run.id) == before == _fresh(run.id)


def test_an_admin_removing_a_seat_recounts(app: Flask, client: Any) -> None:
    from tests.conftest import TEST_PASSWORD

    with app.app_context():
        term, run = _two_seat_term()
        admin = create_user("school_admin", school=term.school, login="summary-admin")
        assert isinstance(admin, User)
        pair = db.session.execute(select(RunAssignment.pupil_id, RunAssignment.session_id)
                                  .where(RunAssignment.run_id == run.id)).first()
        assert pair is not None
        run_id = run.id
    response = post_form(client, "/login", {"login": "summary-admin", "password": TEST_PASSWORD})
    assert response.status_code == 302
    response = post_form(client, f"/admin/runs/{run_id}/assignments/{pair[0]}/{pair[1]}/remove",
                         token_from=f"/admin/runs/{run_id}")
    assert response.status_code == 302
    with app.app_context():
        stored = _stored(run_id)
        assert stored == _fresh(run_id)
        assert stored is not None and stored["slots"][0][3] == 2  # the freed seat went to the waitlist


@pytest.mark.parametrize("stale", [False, True])
def test_a_term_without_a_run_shows_live_requests(app: Flask, stale: bool) -> None:
    with app.app_context():
        seed_city()
        if stale:
            db.session.execute(update(AllocationRun).values(summary={"v": -1}))  # an old format is recounted
            db.session.commit()
        by_code = {s.school_code: s for s in city_stats().schools}
        newer = by_code["KM-TEST-0003"]
        assert newer.source == "none" and newer.figures.requesting == 1
        assert by_code["KM-TEST-0001"].figures.requested_days == 6


@pytest.mark.postgres
def test_summaries_on_postgresql(request: pytest.FixtureRequest) -> None:
    with request.getfixturevalue("pg_app").app_context():
        seed_city()
        run_ids = db.session.scalars(select(AllocationRun.id).where(AllocationRun.state == "done")).all()
        for run_id in run_ids:
            assert _stored(run_id) == _fresh(run_id)
        figures = {s.school_code: s.figures for s in city_stats().schools}["KM-TEST-0001"]
        assert (figures.requesting, figures.served, figures.requested_days, figures.covered_days) == (4, 3, 6, 4)
        assert (figures.teachers, figures.teacher_sessions, figures.max_load) == (2, 3, 2)
        with_summaries = _figures()
        db.session.execute(update(AllocationRun).values(summary=None))
        db.session.commit()
        assert _figures() == with_summaries


def test_the_trend_keeps_a_purged_terms_figures(app: Flask) -> None:
    """Purging a past term's personal data deletes its rows; the run's summary (aggregates only) stays."""
    from datetime import timedelta

    from webapp.privacy import expired_terms, purge

    with app.app_context():
        seed_city()
        before = dict((name, r.published.as_row()) for name, r in city_stats().trend)
        later = max(t.requests_open_at for t in db.session.scalars(select(Term)) if t.requests_open_at)
        at = later + timedelta(days=3 * 365)
        expired = {t.name for t in expired_terms(at - timedelta(days=30))}
        assert expired
        report = purge(30, at=at)
        assert report.counts["run assignments"] > 0
        assert db.session.scalar(select(RunAssignment.run_id)) is None
        after = dict((name, r.published.as_row()) for name, r in city_stats().trend)
        for name in expired:
            assert after[name]["covered_days"] == before[name]["covered_days"] > 0
            assert after[name]["served"] == before[name]["served"]
