"""The bureau's fairness aggregates: per district and for the city, published and drafts apart, from the stored
run summaries; pages in both languages, the workbook's sheet, scope, no pupil named, bounded queries."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import event, select

from tests.conftest import make_school
from tests.webapp.factories import post_form, publish_finished, seed_city
from webapp.bureau.stats import Fairness, city_stats
from webapp.extensions import db
from webapp.models import (
    AllocationRun,
    CareRequest,
    District,
    Pupil,
    RunAssignment,
    RunStaffing,
    School,
    Session,
    Teacher,
    Term,
    User,
)
from webapp.run_metrics import compute_metrics
from webapp.services import run_to_solution, term_to_run_input

# Hand count over the tiny city of `seed_city` (see tests/webapp/factories.py), with the changes `fair_city` makes:
# KM-TEST-0001 (五华区, published): P001 [1,2] P1 -> S11, S21 (homework, ranked first); P002 [1,2] P1+P2 ranks art,
#   football -> S11, S12 (football), S21, day 2 unserved; P003 [1] P1-P3 -> nothing; P004 [2] P1 -> S21.
#   Served every / some / no day: P001, P004 / P002 / P003 = 2 / 1 / 1. Ranked placements: P001 x2 (first),
#   P002 x3 (homework unranked twice, football second) = 5: first 2/5, top-3 3/5, unranked 2/5.
#   Justified envy 0 (nobody holds the same periods as P003 or P002 on their missing days). Empty seats while a
#   pupil waits: S11 40-2 and S12 20-1 (P003, grade 5, waits on day 1 for P1 and P2) = 57. P001 and P003 are one
#   family: on day 1 P001 sits, P003 does not -> 1 family split.
# KM-TEST-0002 (五华区, draft): P001 [1] P1 -> S11; P002 (priority 1) [1,2] P1 -> S11, day 2 unserved; P003
#   (priority 0) [2] P1 -> S21 (added here). Served 2 / 1 / 0; nobody ranked anything; P002 is left out on day 2
#   while P003, of lower priority, sits in S21 -> envy 1; S21 has 40-1 = 39 empty seats while P002 waits.
# KM-TEST-0003 (盘龙区): its current term is not yet allocated; its spring term (published) is only in the trend.
A = {"schools": 1, "fully": 2, "partly": 1, "not_at_all": 1, "first": 0.4, "top": 0.6, "unlisted": 0.4,
     "justified_envy": 0, "idle_seats": 57, "split_families": 1}
B = {"schools": 1, "fully": 2, "partly": 1, "not_at_all": 0, "first": None, "top": None, "unlisted": None,
     "justified_envy": 1, "idle_seats": 39, "split_families": 0}
NOTHING = {"schools": 0, "fully": None, "partly": None, "not_at_all": None, "first": None, "top": None,
           "unlisted": None, "justified_envy": None, "idle_seats": None, "split_families": None}


def _ids(school_id: int) -> tuple[Term, dict[str, int]]:
    term = db.session.scalar(select(Term).where(Term.school_id == school_id).order_by(Term.id.desc()))
    assert term is not None
    return term, {p.number: p.id for p in db.session.scalars(select(Pupil).where(Pupil.school_id == school_id))}


def _teacher(term: Term, code: str) -> int:
    found = db.session.scalar(select(Teacher.id).where(Teacher.school_id == term.school_id, Teacher.code == code))
    assert found is not None
    return int(found)


def _count_fairness(term: Term, groups: bool = True) -> None:
    """Store the metrics of every finished run of `term`, as the allocation job does (`groups` False: as it did
    before runs recorded each pupil's priority group)."""
    for run in db.session.scalars(select(AllocationRun).where(AllocationRun.term_id == term.id)):
        run_input = term_to_run_input(term)
        run.metrics = compute_metrics(run_input.instance, run_to_solution(run),
                                      run_input.group_record() if groups else None)
    db.session.commit()


def add_fairness(ids: dict[str, Any]) -> None:
    """Give the tiny city's runs the preferences, family and seat of the hand count above, and their metrics."""
    a_term, a = _ids(ids["schools"]["KM-TEST-0001"])
    for request in db.session.scalars(select(CareRequest).where(CareRequest.term_id == a_term.id)):
        request.preferences = {a["P001"]: ["homework"], a["P002"]: ["art", "football"]}.get(request.pupil_id, [])
    for number in ("P001", "P003"):
        pupil = db.session.get(Pupil, a[number])
        assert pupil is not None
        pupil.family_code = "F-1"
    db.session.commit()
    _count_fairness(a_term)

    b_term, b = _ids(ids["schools"]["KM-TEST-0002"])
    run = db.session.scalar(select(AllocationRun).where(AllocationRun.term_id == b_term.id))
    s21 = db.session.scalar(select(Session.id).where(Session.term_id == b_term.id, Session.code == "S21"))
    assert run is not None and s21 is not None
    db.session.add(CareRequest(term_id=b_term.id, pupil_id=b["P003"], days=[2], periods=["P1"], preferences=[],
                               pickup_time="16:30", status="active"))
    db.session.add(RunAssignment(run_id=run.id, pupil_id=b["P003"], session_id=s21))
    db.session.add(RunStaffing(run_id=run.id, teacher_id=_teacher(b_term, "T3"), session_id=s21))
    db.session.commit()
    _count_fairness(b_term)

    spring = db.session.scalar(select(Term).where(Term.school_id == ids["schools"]["KM-TEST-0003"],
                                                  Term.name == "2026-spring"))
    assert spring is not None
    _count_fairness(spring)


@pytest.fixture
def fair_city(app: Flask) -> dict[str, Any]:
    with app.app_context():
        ids = seed_city()
        add_fairness(ids)
        return ids


def _row(fairness: Fairness) -> dict[str, Any]:
    row = fairness.as_row()
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in row.items()}


def _bureau(app: Flask, signed_in: Callable[..., User], district: str | None = None) -> User:
    with app.app_context():
        found = db.session.scalar(select(District).where(District.name == district)) if district else None
        return signed_in("bureau", district=found)


def _section(page: str, anchor: str = 'id="fairness"') -> str:
    section = page[page.index(anchor):]
    return section[:section.index("</section>")]


# --------------------------------------------------------------------------- figures


def test_fairness_aggregates_equal_the_hand_count(app: Flask, fair_city: dict[str, Any]) -> None:
    with app.app_context():
        stats = city_stats()
        by_code = {s.school_code: s for s in stats.schools}
        assert _row(by_code["KM-TEST-0001"].figures.fairness) == A
        assert _row(by_code["KM-TEST-0002"].figures.fairness) == B
        assert _row(by_code["KM-TEST-0003"].figures.fairness) == NOTHING  # not yet allocated
        districts = {d.name: d.rollup for d in stats.districts}
        assert _row(districts["五华区"].published.fairness) == A
        assert _row(districts["五华区"].draft.fairness) == B, "drafts are summed apart, never into the headline"
        assert _row(districts["盘龙区"].published.fairness) == NOTHING
        assert _row(stats.rollup.published.fairness) == A, "the spring term of KM-TEST-0003 is history, not now"
        assert _row(stats.rollup.draft.fairness) == B
        assert _row(dict(stats.trend)["2026-spring"].published.fairness)["fully"] == 1

        # Publish the draft: the district's headline is now the sum of both schools.
        b_term = db.session.scalar(select(Term).where(Term.school_id == fair_city["schools"]["KM-TEST-0002"]))
        assert b_term is not None
        publish_finished(db.session.scalars(select(AllocationRun).where(AllocationRun.term_id == b_term.id)).one())
        districts = {d.name: d.rollup for d in city_stats().districts}
        # KM-TEST-0002 has no ranked placement, so the shares stay those of KM-TEST-0001's five.
        assert _row(districts["五华区"].published.fairness) == {
            "schools": 2, "fully": 4, "partly": 2, "not_at_all": 1, "first": 0.4, "top": 0.6, "unlisted": 0.4,
            "justified_envy": 1, "idle_seats": 96, "split_families": 1}
        assert _row(districts["五华区"].draft.fairness) == NOTHING


def test_the_summary_keeps_fairness_when_metrics_lose_their_names(app: Flask, fair_city: dict[str, Any]) -> None:
    """A purge replaces the metrics by their counts and deletes the rows: the bureau's figures stay."""
    from webapp.run_metrics import without_names
    from webapp.run_summary import count

    with app.app_context():
        run = db.session.scalar(select(AllocationRun).join(Term, Term.id == AllocationRun.term_id).where(
            Term.school_id == fair_city["schools"]["KM-TEST-0001"], AllocationRun.is_published))
        assert run is not None and run.summary is not None
        before = dict(run.summary)
        assert before["fairness"]["served"] == {"fully": 2, "partly": 1, "not_at_all": 1}
        assert count([run.id])[run.id]["fairness"] == before["fairness"], "a full count reads the same figures"
        run.metrics = without_names(run.metrics)
        db.session.commit()
        db.session.refresh(run)
        assert run.summary == before
        # Metrics from a new count (here: none at all) refresh the summary's fairness, and only that.
        run.metrics = {**(run.metrics or {}), "fairness_counts": None}
        db.session.commit()
        db.session.refresh(run)
        assert run.summary == {**before, "fairness": None}


def test_summarize_runs_adds_fairness_to_older_summaries(app: Flask, fair_city: dict[str, Any]) -> None:
    with app.app_context():
        runs = db.session.scalars(select(AllocationRun).where(AllocationRun.metrics.is_not(None))).all()
        expected = {run.id: run.summary["fairness"] for run in runs}
        for run in runs:  # as counted before fairness was stored
            run.summary = {key: value for key, value in run.summary.items() if key != "fairness"}
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["summarize-runs"])
    assert result.exit_code == 0, result.output
    assert f"0 run(s) summarized, {len(expected)} given their fairness figures" in result.output
    with app.app_context():
        assert {run_id: db.session.get(AllocationRun, run_id).summary["fairness"]  # type: ignore[union-attr]
                for run_id in expected} == expected


# --------------------------------------------------------------------------- pages and workbook


def test_city_and_district_pages_show_fairness_in_both_languages(
    app: Flask, client: FlaskClient, signed_in: Any, fair_city: dict[str, Any]
) -> None:
    _bureau(app, signed_in)
    city = _section(client.get("/bureau/").get_data(as_text=True))
    assert "公平性" in city and "各区公平性" in city
    headline, drafts = city.split("badge-warn", 1)
    # Counts of 1 to 4 are "<5", and shares of 2 and 3 of 5 placements hidden (the figures: the hand count above).
    assert "&lt;5 / &lt;5 / &lt;5" in headline and "不公开 / 不公开 / 不公开" in headline and "<dd>57</dd>" in headline
    assert "&lt;5 / &lt;5 / 0" in drafts and "<dd>39</dd>" in drafts
    [wuhua] = [row for row in re.findall(r"<tr>.*?</tr>", city, re.S) if "五华区" in row]
    assert "1 / 1" in wuhua and "&lt;5 / &lt;5 / &lt;5" in wuhua and "57" in wuhua
    [panlong] = [row for row in re.findall(r"<tr>.*?</tr>", city, re.S) if "盘龙区" in row]
    assert "0 / 0" in panlong and "–" in panlong

    district = _section(client.get(f"/bureau/district/{fair_city['districts']['五华区']}").get_data(as_text=True))
    assert "各校公平性" in district
    rows = {code: row for row in re.findall(r"<tr>.*?</tr>", district, re.S)
            for code in re.findall(r"KM-TEST-\d{4}", row)}
    assert set(rows) == {"KM-TEST-0001", "KM-TEST-0002"}
    assert "已发布" in rows["KM-TEST-0001"] and "57" in rows["KM-TEST-0001"]
    assert "草稿" in rows["KM-TEST-0002"] and "&lt;5 / &lt;5 / 0" in rows["KM-TEST-0002"]
    assert "– / – / –" in rows["KM-TEST-0002"], "no ranked placement: no share, never 0 %"

    panlong = _section(client.get(f"/bureau/district/{fair_city['districts']['盘龙区']}").get_data(as_text=True))
    assert "已发布的分配结果暂无公平性数据" in panlong and "本区尚无学校完成分配" in panlong

    post_form(client, "/lang/en", {"next": "/bureau/"}, token_from="/bureau/")
    english = _section(client.get("/bureau/").get_data(as_text=True))
    assert "Fairness by district" in english and "Pupils served every / some / no requested day" in english
    assert "Figures of 1 of the 1 schools whose allocation is published" in english
    english_district = client.get(f"/bureau/district/{fair_city['districts']['五华区']}").get_data(as_text=True)
    assert "Fairness by school" in english_district and "&lt;5 / &lt;5 / &lt;5" in english_district


def _workbook(data: bytes) -> dict[str, list[list[Any]]]:
    book = load_workbook(io.BytesIO(data))
    return {sheet.title: [[cell for cell in row] for row in sheet.iter_rows(values_only=True)]
            for sheet in book.worksheets}


def fairness_blocks(sheets: dict[str, list[list[Any]]]) -> tuple[list[list[Any]], list[list[Any]]]:
    """The 公平性 sheet's two tables: by area and school (with its header), then by priority group (with its own),
    split at the empty row between them."""
    rows = sheets["公平性"]
    blank = next(i for i, row in enumerate(rows) if all(cell is None for cell in row))
    return rows[:blank], rows[blank + 1:]


def test_the_workbook_has_the_fairness_sheet(
    app: Flask, client: FlaskClient, signed_in: Any, fair_city: dict[str, Any]
) -> None:
    _bureau(app, signed_in)
    sheets = _workbook(client.get("/bureau/export.xlsx").data)
    header, *rows = fairness_blocks(sheets)[0]
    assert header[:5] == ["区", "学校代码", "学校", "数据来源", "有公平性数据的学校"]
    assert header[5:] == ["每个申请日都有托管的学生", "部分申请日有托管的学生", "没有一个申请日有托管的学生",
                          "安排在第一志愿的比例（%）", "安排在前三志愿的比例（%）", "安排在所填志愿之外的比例（%）",
                          "合理嫉妒（人·天）",
                          "有学生候补时的空名额", "同日兄弟姐妹被拆开的家庭"]
    order = list(NOTHING)

    def figures(row: list[Any]) -> dict[str, Any]:
        return dict(zip(order, row[4:], strict=True))

    by_label = {(row[0], row[1], row[3]): figures(row) for row in rows}
    # A and B as the pages show them: counts of 1 to 4 as "<5", the shares they would tell as "不公开".
    a = {**A, "fully": "<5", "partly": "<5", "not_at_all": "<5", "first": "不公开", "top": "不公开",
         "unlisted": "不公开", "split_families": "<5"}
    b = {**B, "fully": "<5", "partly": "<5", "justified_envy": "<5"}
    assert by_label[("合计", None, "已发布")] == a
    assert by_label[("合计", None, "草稿")] == b
    assert by_label[("五华区", None, "已发布")] == a and by_label[("五华区", None, "草稿")] == b
    assert by_label[("盘龙区", None, "已发布")] == NOTHING
    assert by_label[("五华区", "KM-TEST-0001", "已发布")] == a
    assert by_label[("五华区", "KM-TEST-0002", "草稿")] == b
    assert ("盘龙区", "KM-TEST-0003", "尚未分配") not in by_label, "a school not yet allocated has no fairness row"
    book = load_workbook(io.BytesIO(client.get("/bureau/export.xlsx").data))
    share = book["公平性"]["I2"]
    assert share.value == "不公开" and share.data_type == "s", "the text, never the number"


# --------------------------------------------------------------------------- scope and privacy


def test_a_district_user_sees_only_their_districts_fairness(
    app: Flask, client: FlaskClient, signed_in: Any, fair_city: dict[str, Any]
) -> None:
    _bureau(app, signed_in, district="盘龙区")
    assert client.get(f"/bureau/district/{fair_city['districts']['五华区']}").status_code == 404
    assert client.get(f"/bureau/export.xlsx?district={fair_city['districts']['五华区']}").status_code == 404
    own = _section(client.get(f"/bureau/district/{fair_city['districts']['盘龙区']}").get_data(as_text=True))
    assert "已发布的分配结果暂无公平性数据" in own and "57" not in own and "五华区" not in own
    rows = fairness_blocks(_workbook(client.get("/bureau/export.xlsx").data))[0][1:]
    assert {row[0] for row in rows} == {"合计", "盘龙区"}
    assert all(row[4] == 0 for row in rows), "nothing of 五华区 reaches a 盘龙区 user, not even in the total"


def test_no_pupil_is_named_on_the_bureaus_pages_or_workbook(
    app: Flask, client: FlaskClient, signed_in: Any, fair_city: dict[str, Any]
) -> None:
    with app.app_context():
        pupils = db.session.execute(select(Pupil.name, Pupil.number, Pupil.family_code)).all()
        named = {str(value) for pupil in pupils for value in pupil if value}
    _bureau(app, signed_in)
    district = fair_city["districts"]["五华区"]
    pages = [client.get(url).get_data(as_text=True) for url in ("/bureau/", f"/bureau/district/{district}")]
    cells = [str(cell) for url in ("/bureau/export.xlsx", f"/bureau/export.xlsx?district={district}")
             for rows in _workbook(client.get(url).data).values() for row in rows for cell in row if cell]
    assert "F-1" in named and "学生1" in named
    for text in named:
        assert all(text not in page for page in pages), text
        assert text not in cells, text


# --------------------------------------------------------------------------- speed


def _statements(app: Flask, client: FlaskClient, url: str) -> list[str]:
    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_the_district_page_reads_stored_figures_in_a_bounded_number_of_queries(
    app: Flask, client: FlaskClient, signed_in: Any, fair_city: dict[str, Any]
) -> None:
    _bureau(app, signed_in)
    url = f"/bureau/district/{fair_city['districts']['五华区']}"
    small = _statements(app, client, url)
    with app.app_context():  # three more published schools with fairness figures in the district
        for n in range(4, 7):
            school = make_school(f"KM-TEST-000{n}", district_name="五华区", n_pupils=3)
            term, pupils = _ids(school.id)
            db.session.add(CareRequest(term_id=term.id, pupil_id=pupils["P001"], days=[1], periods=["P1"],
                                       preferences=[], pickup_time="16:30", status="active"))
            run = AllocationRun(term_id=term.id, state="done", stage="done", progress=1.0, status="OPTIMAL",
                                stats={})
            db.session.add(run)
            db.session.flush()
            s11 = db.session.scalar(select(Session.id).where(Session.term_id == term.id, Session.code == "S11"))
            db.session.add(RunAssignment(run_id=run.id, pupil_id=pupils["P001"], session_id=s11))
            db.session.add(RunStaffing(run_id=run.id, teacher_id=_teacher(term, "T3"), session_id=s11))
            db.session.commit()
            publish_finished(run)
            _count_fairness(term)
    large = _statements(app, client, url)
    page = client.get(url).get_data(as_text=True)
    assert page.count("KM-TEST-000") >= 5 and "不公开 / &lt;5 / &lt;5" in _section(page)  # 5 / 1 / 1
    assert len(large) == len(small), "no query per school"
    reads = " ".join(large).lower()
    assert "run_assignments" not in reads and "metrics" not in reads, "the page reads the stored summaries only"
    with app.app_context():
        assert db.session.scalar(select(School.id).where(School.code == "KM-TEST-0006")) is not None


@pytest.mark.postgres
def test_fairness_aggregates_on_postgresql(request: pytest.FixtureRequest) -> None:
    """The whole way on PostgreSQL: metrics stored in JSON, their counts copied into the summary by the commit
    hook, summed per district, and kept when a purge-style rewrite drops the names."""
    from webapp.run_metrics import without_names

    app: Flask = request.getfixturevalue("pg_app")
    with app.app_context():
        ids = seed_city()
        add_fairness(ids)
        districts = {d.name: d.rollup for d in city_stats().districts}
        assert _row(districts["五华区"].published.fairness) == A
        assert _row(districts["五华区"].draft.fairness) == B
        for run in db.session.scalars(select(AllocationRun).where(AllocationRun.metrics.is_not(None))):
            run.metrics = without_names(run.metrics)
        db.session.commit()
        districts = {d.name: d.rollup for d in city_stats().districts}
        assert _row(districts["五华区"].published.fairness) == A and _row(districts["五华区"].draft.fairness) == B
