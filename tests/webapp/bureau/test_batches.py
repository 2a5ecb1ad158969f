"""Bureau figures that must not mislead, batch history with each school's result, and district-wide advice."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import Workbook
from sqlalchemy import event, func, select, update

from tests.webapp.factories import break_school, create_user, post_form, seed_city, sign_in
from webapp.bureau.city import batch_filter, batch_history, batch_results
from webapp.bureau.stats import city_stats
from webapp.extensions import db
from webapp.jobs import STALE_ERROR, start_advice_batch
from webapp.models import (
    AllocationRun,
    AuditLog,
    CapacityAdvice,
    District,
    RunState,
    School,
    Term,
    utcnow,
)
from webapp.tabular import PERCENT_FORMAT, Percent, csv_bytes, set_cell


@pytest.fixture
def city(app: Flask) -> dict[str, Any]:
    with app.app_context():
        return seed_city()


def _district(app: Flask, name: str) -> District:
    with app.app_context():
        found = db.session.scalar(select(District).where(District.name == name))
        assert found is not None
        return found


def _current_term(code: str) -> Term:
    school = db.session.scalar(select(School).where(School.code == code))
    assert school is not None
    return max(school.terms, key=lambda t: t.id)


def _rows(page: str) -> dict[str, str]:
    """School code -> the text of its row in the batch page's school table."""
    body = page.split('id="batch-schools"', 1)[1]
    return {re.search(r"KM-TEST-\d{4}", row).group(0): row  # type: ignore[union-attr]
            for row in re.findall(r"<tr data-run=.*?</tr>", body, re.S)}


# --------------------------------------------------------------------------- figures


def test_pages_never_show_a_school_not_yet_allocated_as_zero(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    signed_in("bureau")
    page = client.get("/bureau/").get_data(as_text=True)
    assert "1 所学校尚未分配" in page and "1 所学校的分配结果为草稿" in page
    zero = re.compile(r"(?<![\d.])0\.0%")
    coverage, fairness = page.split('id="fairness"', 1)
    [panlong_row] = [row for row in re.findall(r"<tr>.*?</tr>", coverage, re.S) if "盘龙区" in row]
    assert "尚未分配" in panlong_row and not zero.search(panlong_row)
    [panlong_fairness] = [row for row in re.findall(r"<tr>.*?</tr>", fairness, re.S) if "盘龙区" in row]
    assert "–" in panlong_fairness and not zero.search(panlong_fairness)
    worst = page.split("覆盖率最低的学校", 1)[1].split("</section>", 1)[0]
    assert "测试小学0003" not in worst  # nothing to rank before it is allocated

    panlong = client.get(f"/bureau/district/{city['districts']['盘龙区']}").get_data(as_text=True)
    assert "尚未分配" in panlong and "暂无已发布的分配结果" in panlong and not zero.search(panlong)
    school = client.get(f"/bureau/school/{city['schools']['KM-TEST-0003']}").get_data(as_text=True)
    assert "本校当前学期尚未分配" in school and not zero.search(school) and "heatmap" not in school

    post_form(client, "/lang/en", {"next": "/bureau/"}, token_from="/bureau/")
    english = client.get(f"/bureau/district/{city['districts']['盘龙区']}").get_data(as_text=True)
    assert "Not yet allocated" in english and not zero.search(english)


def test_a_school_whose_requests_are_all_unmet_is_zero_not_unallocated(app: Flask, city: dict[str, Any]) -> None:
    """0 % is a real answer once a school is allocated: it is never confused with "not yet allocated"."""
    with app.app_context():
        run = db.session.get(AllocationRun, _current_term("KM-TEST-0002").runs[0].id)
        assert run is not None
        run.summary = {**run.summary, "covered_days": 0, "served": 0}
        db.session.commit()
        draft = {s.school_code: s for s in city_stats().schools}["KM-TEST-0002"]
        assert draft.source == "draft" and draft.figures.allocated == 1
        assert draft.figures.coverage == 0.0 and draft.figures.unmet_days == 3


# --------------------------------------------------------------------------- batches


def test_batch_history_shows_each_school_with_its_failure(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    app.config.update(JOBS_INLINE=True, BUREAU_TIME_LIMIT=2)
    with app.app_context():
        break_school("KM-TEST-0002")
        headline = city_stats().rollup.published.coverage
    signed_in("bureau")
    response = post_form(client, "/bureau/batches", {"district": ""}, token_from="/bureau/")
    assert response.status_code == 302
    batch_url = response.location
    batch_id = batch_url.rstrip("/").rsplit("/", 1)[1]

    page = client.get(batch_url).get_data(as_text=True)
    rows = _rows(page)
    assert set(rows) == {"KM-TEST-0001", "KM-TEST-0002", "KM-TEST-0003"}
    failed = rows["KM-TEST-0002"]
    assert 'data-state="failed"' in failed and "分配失败：KeyError" in failed
    for code in ("KM-TEST-0001", "KM-TEST-0003"):
        assert 'data-state="done"' in rows[code] and "草稿" in rows[code], rows[code]
    assert list(rows) [0] == "KM-TEST-0002"  # failures first

    history = client.get("/bureau/batches").get_data(as_text=True)
    assert batch_id in history and "全市" in history
    with app.app_context():
        [entry] = batch_history()
        assert (entry.batch_id, entry.total, entry.done, entry.failed, entry.active) == (batch_id, 3, 2, 1, 0)
        assert entry.scope == "city" and entry.started_by
        # The batch's drafts never enter the published headline; they are counted apart.
        stats = city_stats()
        assert stats.rollup.published.coverage == headline
        assert stats.rollup.draft.schools == 2 and stats.rollup.not_allocated.schools == 0
        assert db.session.scalar(select(func.count()).select_from(AuditLog)
                                 .where(AuditLog.action == "batch.start")) == 1

    # A district user sees the batch, but only their district's schools in it.
    with app.app_context():
        create_user("bureau", login="bureau-panlong", district=_district(app, "盘龙区"))
    district_client = app.test_client()
    sign_in(district_client, "bureau-panlong")
    rows = _rows(district_client.get(batch_url).get_data(as_text=True))
    assert set(rows) == {"KM-TEST-0003"}
    assert district_client.get("/bureau/batches/no-such-batch").status_code == 404


def test_the_batch_page_says_whose_coverage_is_proven_and_how_far_the_others_may_be(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    """A run's status is proven only when every level is, and a batch caps the levels after coverage, so it is not
    what the bureau needs: each finished school says whether its coverage is proven the best, or how far below the
    best it may be (its bound minus its value), and the page sums that over the batch."""
    app.config.update(JOBS_INLINE=True, BUREAU_TIME_LIMIT=2)
    signed_in("bureau")
    batch_url = post_form(client, "/bureau/batches", {"district": ""}, token_from="/bureau/").location
    with app.app_context():
        runs = {code: run for run, code in db.session.execute(
            select(AllocationRun, School.code).join(Term, Term.id == AllocationRun.term_id)
            .join(School, School.id == Term.school_id).where(batch_filter(batch_url.rstrip("/").rsplit("/", 1)[1]))
        )}
        assert set(runs) == {"KM-TEST-0001", "KM-TEST-0002", "KM-TEST-0003"}
        assert all(run.state == RunState.DONE and run.coverage == run.coverage_bound for run in runs.values())
        # As a school whose search ran out of time leaves it: a plan, and a bound above it.
        runs["KM-TEST-0002"].coverage_bound = runs["KM-TEST-0002"].coverage + 7
        runs["KM-TEST-0003"].coverage_bound = runs["KM-TEST-0003"].coverage + 5
        db.session.commit()
    page = client.get(batch_url).get_data(as_text=True)
    rows = _rows(page)
    assert "覆盖已证明最优" in rows["KM-TEST-0001"] and "至多差" not in rows["KM-TEST-0001"]
    assert "覆盖距最优至多差 7 人日" in rows["KM-TEST-0002"] and "覆盖距最优至多差 5 人日" in rows["KM-TEST-0003"]
    assert "已完成的 3 所学校中，1 所的覆盖已证明为最优。" in page
    assert "合计距各自的最优至多相差 12 人日（按优先级加权）" in page

    # The list of batches counts the same, over the schools its reader may see.
    history = client.get("/bureau/batches").get_data(as_text=True)
    assert 'data-proven="1" data-short="12">1 / 3' in history and "其余至多差 12 人日" in history
    with app.app_context():
        create_user("bureau", login="bureau-panlong", district=_district(app, "盘龙区"))  # KM-TEST-0003 only
    district_client = app.test_client()
    sign_in(district_client, "bureau-panlong")
    history = district_client.get("/bureau/batches").get_data(as_text=True)
    assert 'data-proven="0" data-short="5">0 / 1' in history and "其余至多差 5 人日" in history


def test_a_dead_worker_shows_as_a_failure_with_its_reason(app: Flask, city: dict[str, Any]) -> None:
    with app.app_context():
        term = _current_term("KM-TEST-0003")
        old = AllocationRun(term_id=term.id, state=RunState.RUNNING, stats={"batch": "b-dead", "scope": "city"})
        db.session.add(old)
        db.session.commit()
        db.session.execute(update(AllocationRun).where(AllocationRun.id == old.id)
                           .values(heartbeat_at=old.created_at - timedelta(hours=1),
                                   started_at=old.created_at - timedelta(hours=1)))
        db.session.commit()
        [result] = batch_results("b-dead")
        assert (result.state, result.error) == (RunState.FAILED, STALE_ERROR)
        assert db.session.scalar(select(func.count()).select_from(AllocationRun).where(batch_filter("b-dead"))) == 1


# --------------------------------------------------------------------------- district advice


def test_district_advice_queues_every_school_once(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    app.config.update(JOBS_INLINE=True, BUREAU_ADVICE_TIME_LIMIT=2)
    wuhua = city["districts"]["五华区"]
    with app.app_context():
        pending = CapacityAdvice(term_id=_current_term("KM-TEST-0001").id, state=RunState.QUEUED)
        db.session.add(pending)
        db.session.commit()
        pending_id = pending.id
    signed_in("bureau")
    before = client.get(f"/bureau/district/{wuhua}").get_data(as_text=True)
    assert "2 所学校中 0 所已有当前学期的建议。" in before and "正在为 1 所学校计算建议" in before

    response = post_form(client, f"/bureau/district/{wuhua}/advice", token_from=f"/bureau/district/{wuhua}",
                         follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "其中 1 所学校的建议已在计算中" in page  # the pending one joined; the other was computed inline
    assert "2 所学校中 1 所已有当前学期的建议。" in page and page.count("正在为 1 所学校计算建议") == 1
    with app.app_context():
        rows = db.session.execute(select(School.code, CapacityAdvice.id, CapacityAdvice.state)
                                  .join(Term, Term.id == CapacityAdvice.term_id)
                                  .join(School, School.id == Term.school_id).order_by(School.code)).all()
        # KM-TEST-0001 joined its pending advice (one pending per term); KM-TEST-0002 was computed; 盘龙区 untouched.
        assert [(code, state) for code, _, state in rows] == [("KM-TEST-0001", "queued"), ("KM-TEST-0002", "done")]
        assert rows[0][1] == pending_id
        audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "advice.start"))
        assert audit is not None and audit.target == f"district:{wuhua}"
    hiring = client.get("/bureau/hiring").get_data(as_text=True)
    assert "测试小学0002" in hiring

    # Again: the pending one is still joined, the finished one gets fresh advice.
    post_form(client, f"/bureau/district/{wuhua}/advice", token_from=f"/bureau/district/{wuhua}")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CapacityAdvice)) == 3


COMPUTING = "所学校计算建议"


def test_the_district_page_says_advice_is_being_computed_only_while_it_is(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    """Queued or running advice is counted in the page's notice; failed or finished advice is not. Computed
    inline, the request that started every school's advice lands on a page where nothing is being computed."""
    wuhua = city["districts"]["五华区"]
    signed_in("bureau")
    with app.app_context():
        rows = [CapacityAdvice(term_id=_current_term(code).id, state=state)
                for code, state in (("KM-TEST-0001", RunState.QUEUED), ("KM-TEST-0002", RunState.RUNNING))]
        db.session.add_all(rows)
        db.session.commit()
        ids = [row.id for row in rows]
    page = client.get(f"/bureau/district/{wuhua}").get_data(as_text=True)
    assert "正在为 2 所学校计算建议" in page and page.count('id="district-advice-pending"') == 1
    with app.app_context():
        db.session.execute(update(CapacityAdvice).where(CapacityAdvice.id.in_(ids)).values(state=RunState.FAILED))
        db.session.commit()
    page = client.get(f"/bureau/district/{wuhua}").get_data(as_text=True)
    assert COMPUTING not in page and 'id="district-advice-pending"' not in page

    app.config.update(JOBS_INLINE=True, BUREAU_ADVICE_TIME_LIMIT=2)
    done = post_form(client, f"/bureau/district/{wuhua}/advice", token_from=f"/bureau/district/{wuhua}",
                     follow_redirects=True)
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "2 所学校中 2 所已有当前学期的建议。" in page
    assert COMPUTING not in page and 'id="district-advice-pending"' not in page
    assert 'class="flashes"' not in page  # no message left behind saying something is being computed


def test_district_advice_stays_in_scope(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    app.config.update(JOBS_INLINE=True, BUREAU_ADVICE_TIME_LIMIT=2)
    signed_in("bureau", district=_district(app, "盘龙区"))
    wuhua = city["districts"]["五华区"]
    response = post_form(client, f"/bureau/district/{wuhua}/advice",
                         token_from=f"/bureau/district/{city['districts']['盘龙区']}")
    assert response.status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CapacityAdvice)) == 0


def test_district_advice_joins_a_computation_queued_meanwhile(app: Flask, city: dict[str, Any]) -> None:
    """Another request queues one of the terms between our look and our commit: the unique index refuses our row,
    and the batch is queued again with that term joined, in one transaction."""
    app.config.update(JOBS_INLINE=True, BUREAU_ADVICE_TIME_LIMIT=2)
    with app.app_context():
        terms = [_current_term("KM-TEST-0001"), _current_term("KM-TEST-0002")]
        racing_term = terms[0].id

        def queue_elsewhere(session: Any) -> None:
            with db.engine.begin() as other:
                other.execute(CapacityAdvice.__table__.insert().values(
                    term_id=racing_term, state=RunState.QUEUED, created_at=utcnow()))

        event.listen(db.session(), "before_commit", queue_elsewhere, once=True)
        started, joined = start_advice_batch(terms, None)
        assert [row.term_id for row in joined] == [racing_term]
        assert [(row.term_id, row.state) for row in started] == [(terms[1].id, "done")]
        pending = db.session.scalars(select(CapacityAdvice).where(CapacityAdvice.term_id == racing_term)).all()
        assert len(pending) == 1 and pending[0].state == "queued"


# --------------------------------------------------------------------------- the percent cell


def test_percent_is_a_number_with_a_percent_format() -> None:
    sheet = Workbook().active
    assert sheet is not None
    cell = set_cell(sheet, 1, 1, Percent(0.256))
    assert (cell.value, cell.data_type, cell.number_format) == (0.256, "n", PERCENT_FORMAT)
    text = set_cell(sheet, 1, 2, "=1+1")
    assert (text.data_type, text.number_format) == ("s", "General")
    assert Percent.of(None) is None and Percent.of(2 / 3) == Percent(0.6667)
    assert csv_bytes([[Percent(0.5), "x"]]).endswith(b"0.5,x\r\n")


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_batches_advice_and_figures_on_postgresql(request: pytest.FixtureRequest) -> None:
    app: Flask = request.getfixturevalue("pg_app")
    app.config.update(JOBS_INLINE=True, BUREAU_TIME_LIMIT=2, BUREAU_ADVICE_TIME_LIMIT=2)
    with app.app_context():
        city = seed_city()
        break_school("KM-TEST-0002")
        create_user("bureau", login="bureau-city")
        stats = city_stats()
        assert (stats.rollup.published.schools, stats.rollup.draft.schools, stats.rollup.not_allocated.schools) == (
            1, 1, 1)
    client = app.test_client()
    sign_in(client, "bureau-city")
    response = post_form(client, "/bureau/batches", {"district": ""}, token_from="/bureau/")
    assert response.status_code == 302
    rows = _rows(client.get(response.location).get_data(as_text=True))
    assert 'data-state="failed"' in rows["KM-TEST-0002"] and "KeyError" in rows["KM-TEST-0002"]
    assert client.get("/bureau/batches").status_code == 200
    wuhua = city["districts"]["五华区"]
    post_form(client, f"/bureau/district/{wuhua}/advice", token_from=f"/bureau/district/{wuhua}")
    with app.app_context():
        [entry] = batch_history()
        assert (entry.total, entry.done, entry.failed, entry.proof.done) == (3, 2, 1, 2)
        states = dict(db.session.execute(select(School.code, CapacityAdvice.state)
                                         .join(Term, Term.id == CapacityAdvice.term_id)
                                         .join(School, School.id == Term.school_id)).all())
        assert states == {"KM-TEST-0001": "done", "KM-TEST-0002": "failed"}  # its instance cannot be built
    assert client.get("/bureau/export.xlsx").status_code == 200
    assert "2 所学校的分配结果为草稿" in client.get("/bureau/").get_data(as_text=True)
