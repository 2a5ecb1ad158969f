"""The run page says what the solver proved about each objective level: value, bound, and how good."""

from __future__ import annotations

import re

from flask import Flask

from tests.webapp.factories import build_instance, create_user, import_term, sign_in
from webapp.extensions import db
from webapp.jobs import database_url, run_allocation
from webapp.models import AllocationRun
from webapp.runs.routes import solver_levels


def _solved_run(app: Flask) -> int:
    with app.app_context():
        term = import_term(build_instance(20, seed=3, days=3, tight=0.5, code="KM-LEVELS-0001"))
        user = create_user("school_admin", school=term.school, login="levels-admin")
        run = AllocationRun(term_id=term.id, created_by=user.id)
        db.session.add(run)
        db.session.commit()
        assert run_allocation(run.id, database_url(), time_limit=5.0) == "done"
        return run.id


def test_each_level_of_a_run_is_shown_with_its_bound_and_whether_it_is_proven(app: Flask) -> None:
    run_id = _solved_run(app)
    with app.app_context():
        run = db.session.get(AllocationRun, run_id)
        assert run is not None and run.stats is not None and run.metrics is not None
        levels = solver_levels(run.stats)
        # The small school's levels are proven within the 5 s; the plan's coverage is the metrics' own.
        assert [level["name"] for level in levels][:2] == ["coverage", "preference"]
        assert levels[0]["state"] == "proven" and levels[0]["value"] == levels[0]["bound"] == run.metrics["coverage"]
    client = app.test_client()
    sign_in(client, "levels-admin")
    page = client.get(f"/admin/runs/{run_id}").get_data(as_text=True)
    assert "求解结果：各目标是否已证明最优" in page and "志愿得分" in page and "已证明最优" in page
    client.set_cookie("lang", "en")
    english = client.get(f"/admin/runs/{run_id}").get_data(as_text=True)
    assert "What the solver proved" in english and "Preference points" in english and "Proven best" in english


def test_a_level_not_proven_shows_its_gap_and_a_level_out_of_time_says_so(app: Flask) -> None:
    run_id = _solved_run(app)
    with app.app_context():
        run = db.session.get(AllocationRun, run_id)
        assert run is not None
        run.stats = {**(run.stats or {}), "levels": [
            {"name": "coverage", "status": "OPTIMAL", "value": 120, "bound": 120, "seconds": 0.1},
            {"name": "preference", "status": "FEASIBLE", "value": 400, "bound": 410, "seconds": 2.0},
            {"name": "max_load", "status": "FEASIBLE", "value": 8, "bound": 6, "seconds": 1.0},
            {"name": "staffing", "status": "UNKNOWN", "value": 0, "bound": 0, "seconds": 0.0, "skipped": True},
        ]}
        db.session.commit()
        states = [(level["name"], level["state"], level["gap_pct"]) for level in solver_levels(run.stats)]
        assert states == [("coverage", "proven", 0.0), ("preference", "gap", 2.5), ("max_load", "gap", 25.0),
                          ("staffing", "skipped", 0.0)]
    client = app.test_client()
    sign_in(client, "levels-admin")
    page = client.get(f"/admin/runs/{run_id}").get_data(as_text=True)
    assert "比最好的方案至多低 2.5%" in page  # preferences: the bound is the most any plan reaches
    assert "比最好的方案至多高 25.0%" in page  # teacher load: the bound is the least any plan needs
    # A level the deadline left unsearched has no value of its own to show, only that it was not searched.
    assert re.search(r"教师总课时（节）</strong>\s*未求解：没有剩余时间</li>", page)
    assert solver_levels(None) == [] and solver_levels({"levels": [{"name": "something else"}]}) == []
