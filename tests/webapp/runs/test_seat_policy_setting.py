"""The term's seat policy: set on the request window page, carried into the solver, shown on the run page."""

from __future__ import annotations

import dataclasses

from flask import Flask
from sqlalchemy import select

from tests.webapp.factories import build_instance, create_user, import_term, post_form, sign_in
from webapp.extensions import db
from webapp.jobs import database_url, run_allocation
from webapp.models import AllocationRun, AuditLog, Term
from webapp.services import term_to_instance


def _school(app: Flask) -> tuple[int, int]:
    with app.app_context():
        term = import_term(build_instance(20, seed=3, days=3, tight=0.5, code="KM-SEAT-0001"))
        user = create_user("school_admin", school=term.school, login="seat-admin")
        db.session.commit()
        return term.id, user.id


def _run(app: Flask, term_id: int, admin_id: int) -> int:
    with app.app_context():
        run = AllocationRun(term_id=term_id, created_by=admin_id)
        db.session.add(run)
        db.session.commit()
        assert run_allocation(run.id, database_url(), time_limit=5.0) == "done"
        return run.id


def test_the_policy_set_on_the_window_page_reaches_the_solver_and_the_run_page(app: Flask) -> None:
    term_id, admin_id = _school(app)
    client = app.test_client()
    sign_in(client, "seat-admin")
    form = client.get("/admin/window").get_data(as_text=True)
    assert "名额分配方式" in form and "尽量每户都有" in form and "尽量整周" in form
    assert '<option selected value="spread">' in form

    spread_run = _run(app, term_id, admin_id)
    page = client.get(f"/admin/runs/{spread_run}").get_data(as_text=True)
    assert "名额分配方式" in page and "尽量每户都有" in page and "一天名额也没有的户数" in page

    response = post_form(client, "/admin/window", {"seat_policy": "whole_week"})
    assert response.status_code == 302
    with app.app_context():
        term = db.session.get(Term, term_id)
        assert term is not None and term.seat_policy == "whole_week"
        assert term_to_instance(term).seat_policy == "whole_week"
        entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "window.set")).one()
        assert entry.detail is not None and entry.detail["seat_policy"] == "whole_week"
    whole_run = _run(app, term_id, admin_id)
    with app.app_context():
        run = db.session.get(AllocationRun, whole_run)
        first = db.session.get(AllocationRun, spread_run)
        assert run is not None and first is not None and run.stats is not None and first.stats is not None
        assert run.stats["seat_policy"]["policy"] == "whole_week"
        assert first.stats["seat_policy"]["policy"] == "spread"
        assert run.metrics is not None and first.metrics is not None
        assert run.metrics["coverage"] == first.metrics["coverage"]
        assert run.metrics["fairness"]["families"]["requesting"] > 0
    page = client.get(f"/admin/runs/{whole_run}").get_data(as_text=True)
    assert "尽量整周" in page
    client.set_cookie("lang", "en")
    english = client.get(f"/admin/runs/{whole_run}").get_data(as_text=True)
    assert "Seat policy" in english and "As many pupils as possible get the whole week" in english


def test_an_unknown_policy_is_refused_with_a_form_error(app: Flask) -> None:
    term_id, _ = _school(app)
    client = app.test_client()
    sign_in(client, "seat-admin")
    response = post_form(client, "/admin/window", {"seat_policy": "first_come"})
    assert response.status_code == 200 and 'class="error"' in response.get_data(as_text=True)
    with app.app_context():
        term = db.session.get(Term, term_id)
        assert term is not None and term.seat_policy == "spread"
    assert post_form(client, "/admin/window", {"seat_policy": "whole_week"}).status_code == 302
    # A form posted without the choice (only the window's dates) keeps the policy.
    assert post_form(client, "/admin/window", {"opens_at": "2026-09-01T08:00"}).status_code == 302
    with app.app_context():
        term = db.session.get(Term, term_id)
        assert term is not None and term.seat_policy == "whole_week"


def test_an_imported_instance_sets_the_terms_policy(app: Flask) -> None:
    with app.app_context():
        instance = dataclasses.replace(build_instance(10, seed=2, days=2, tight=0.5, code="KM-SEAT-0002"),
                                       seat_policy="whole_week")
        term = import_term(instance)
        db.session.commit()
        assert term.seat_policy == "whole_week" and term_to_instance(term).seat_policy == "whole_week"
