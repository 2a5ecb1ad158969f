"""Pupils served by priority group: each run records the group each pupil's weight came from, its summary sums the
split over schools, and the bureau's city and district pages and workbook show it by group, with no pupil named."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.webapp.bureau.test_fairness import _count_fairness, _ids, _workbook, add_fairness, fairness_blocks
from tests.webapp.factories import post_form, publish_finished, seed_city
from webapp.allocation.plan import refresh_reasons
from webapp.bureau.stats import city_stats, served_by_group
from webapp.extensions import db
from webapp.models import AllocationRun, District, PriorityGroup, PriorityTag, Pupil, Term, User, utcnow
from webapp.priority_groups import city_groups, remove_tag, save_group
from webapp.run_metrics import NO_GROUP, compute_metrics, without_names
from webapp.run_summary import fairness_part
from webapp.services import run_to_solution, school_today, term_to_run_input

# The tiny city of test_fairness.py, with tags (days from the school's today when the fixture runs):
# KM-TEST-0001 (五华区, published): P001 served every day, tagged 特殊教育需要 (+60) -> 特殊教育需要;
#   P002 served some days, tagged 建档立卡/低保家庭 (ends today: still counts) and 留守儿童 (+60) -> the heavier
#   建档立卡/低保家庭; P003 served no day, tagged 特殊教育需要 but ended yesterday -> no group; P004 served every
#   day, untagged -> no group. 双职工 has nobody.
# KM-TEST-0002 (五华区, draft): P001 and P003 served every day, untagged; P002 served some days, tagged 留守儿童.
GROUPS = (("特殊教育需要", "Special educational needs", 4), ("建档立卡/低保家庭", "Registered low-income family", 3),
          ("留守儿童", "Left-behind child", 2), ("双职工", "Both parents working", 2))
PUBLISHED = {"特殊教育需要": (1, 0, 0), "建档立卡/低保家庭": (0, 1, 0), "留守儿童": (0, 0, 0), "双职工": (0, 0, 0),
             "无优先群体": (1, 0, 1)}
DRAFT = {"特殊教育需要": (0, 0, 0), "建档立卡/低保家庭": (0, 0, 0), "留守儿童": (0, 1, 0), "双职工": (0, 0, 0),
         "无优先群体": (2, 0, 0)}
# What the bureau sees of PUBLISHED: every count of 1 to 4 is "<5", 0 stays 0, and a share is hidden with the counts
# it would tell ("不公开"); nobody of the group asked: no share, never 0 %.
SMALL, HIDDEN = "<5", "不公开"
PUBLISHED_SHOWN = {"特殊教育需要": [SMALL, SMALL, "0", "0", HIDDEN],
                   "建档立卡/低保家庭": [SMALL, "0", SMALL, "0", HIDDEN],
                   "留守儿童": ["0", "0", "0", "0", "–"], "双职工": ["0", "0", "0", "0", "–"],
                   "无优先群体": [SMALL, SMALL, "0", SMALL, HIDDEN]}


def _tag(school_id: int, number: str, group: PriorityGroup, expires_on: date) -> None:
    pupil = db.session.scalar(select(Pupil).where(Pupil.school_id == school_id, Pupil.number == number))
    assert pupil is not None
    db.session.add(PriorityTag(pupil_id=pupil.id, group_id=group.id, note="证明已查看", expires_on=expires_on))


@pytest.fixture
def group_city(app: Flask) -> dict[str, Any]:
    with app.app_context():
        ids = seed_city()
        groups = {}
        for name_zh, name_en, weight in GROUPS:
            groups[name_zh] = save_group(None, name_zh=name_zh, name_en=name_en, weight=weight, active=True,
                                         user_id=None)
        today = school_today()
        a, b = ids["schools"]["KM-TEST-0001"], ids["schools"]["KM-TEST-0002"]
        _tag(a, "P001", groups["特殊教育需要"], today + timedelta(days=60))
        _tag(a, "P002", groups["建档立卡/低保家庭"], today)
        _tag(a, "P002", groups["留守儿童"], today + timedelta(days=60))
        _tag(a, "P003", groups["特殊教育需要"], today - timedelta(days=1))
        _tag(b, "P002", groups["留守儿童"], today + timedelta(days=60))
        db.session.commit()
        add_fairness(ids)  # the runs' metrics, counted with each pupil's group as the allocation job does
        ids["groups"] = {name: group.id for name, group in groups.items()}
        return ids


def _split(fairness: Any) -> dict[str, tuple[int, int, int]] | None:
    rows = served_by_group(fairness, city_groups())
    return None if rows is None else {row.name: (row.fully, row.partly, row.not_at_all) for row in rows}


def _published_run(ids: dict[str, Any], code: str = "KM-TEST-0001") -> AllocationRun:
    run = db.session.scalar(select(AllocationRun).join(Term, Term.id == AllocationRun.term_id).where(
        Term.school_id == ids["schools"][code], AllocationRun.is_published))
    assert run is not None
    return run


def _bureau(app: Flask, signed_in: Callable[..., User], district: str | None = None) -> User:
    with app.app_context():
        found = db.session.scalar(select(District).where(District.name == district)) if district else None
        return signed_in("bureau", district=found)


def _section(page: str) -> str:
    section = page[page.index('id="priority-groups"'):]
    return section[:section.index("</section>")]


def _table_rows(html: str) -> dict[str, list[str]]:
    """Group name -> the cells after it, of every table row in `html`."""
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        cells = [unescape(re.sub(r"<[^>]+>", "", cell).strip())
                 for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if cells:
            rows[cells[0]] = cells[1:]
    return rows


# --------------------------------------------------------------------------- the split, recorded at run time


def test_a_run_records_each_pupils_counting_group_and_splits_served_by_it(
        app: Flask, group_city: dict[str, Any]) -> None:
    groups = group_city["groups"]
    with app.app_context():
        run = _published_run(group_city)
        assert run.metrics["priority_groups"]["pupils"] == {
            "P001": groups["特殊教育需要"], "P002": groups["建档立卡/低保家庭"]}, "heaviest tag still counting"
        assert run.metrics["fairness"]["served_by_group"] == {
            str(groups["特殊教育需要"]): {"fully": 1, "partly": 0, "not_at_all": 0},
            str(groups["建档立卡/低保家庭"]): {"fully": 0, "partly": 1, "not_at_all": 0},
            NO_GROUP: {"fully": 1, "partly": 0, "not_at_all": 1}}
        assert run.summary["fairness"]["by_group"] == run.metrics["fairness"]["served_by_group"]
        stats = city_stats()
        assert _split(stats.rollup.published.fairness) == PUBLISHED
        assert _split(stats.rollup.draft.fairness) == DRAFT, "drafts are split apart, never into the headline"
        assert stats.rollup.published.fairness.group_schools == 1

        # Publish the draft: the headline sums both schools, group by group.
        draft = db.session.scalar(select(AllocationRun).join(Term, Term.id == AllocationRun.term_id).where(
            Term.school_id == group_city["schools"]["KM-TEST-0002"]))
        assert draft is not None
        publish_finished(draft)
        assert _split(city_stats().rollup.published.fairness) == {
            name: tuple(a + b for a, b in zip(PUBLISHED[name], DRAFT[name], strict=True)) for name in PUBLISHED}
        assert _split(city_stats().rollup.draft.fairness) is None


def test_tags_that_change_after_the_run_do_not_move_its_figures(app: Flask, group_city: dict[str, Any]) -> None:
    """P002's 建档立卡/低保家庭 tag ends on the run's day; P001's tag is removed. A recount of the run's metrics (an
    amendment of the plan) keeps the groups the run recorded, and so do the bureau's figures."""
    with app.app_context():
        before = city_stats().rollup.published.fairness.by_group
        app.config["NOW"] = utcnow() + timedelta(days=2)
        run = _published_run(group_city)
        term = run.term
        tag = db.session.scalar(select(PriorityTag).join(Pupil, Pupil.id == PriorityTag.pupil_id).where(
            Pupil.school_id == term.school_id, Pupil.number == "P001"))
        assert tag is not None
        remove_tag(tag, user_id=None)
        fresh = term_to_run_input(term).groups
        assert fresh == {"P002": group_city["groups"]["留守儿童"]}, "a run made now would count them otherwise"

        refresh_reasons(term, run)
        db.session.commit()
        db.session.refresh(run)
        assert run.metrics["priority_groups"]["pupils"]["P001"] == group_city["groups"]["特殊教育需要"]
        assert city_stats().rollup.published.fairness.by_group == before
        assert _split(city_stats().rollup.published.fairness) == PUBLISHED


def test_a_renamed_group_shows_its_new_name(
        app: Flask, client: FlaskClient, signed_in: Any, group_city: dict[str, Any]) -> None:
    with app.app_context():
        group = db.session.get(PriorityGroup, group_city["groups"]["特殊教育需要"])
        assert group is not None
        save_group(group, name_zh="特殊教育需要学生", name_en="Pupils with special needs", weight=4, active=True,
                   user_id=None)
    _bureau(app, signed_in)
    rows = _table_rows(_section(client.get("/bureau/").get_data(as_text=True)).split("badge-warn", 1)[0])
    assert rows["特殊教育需要学生"] == PUBLISHED_SHOWN["特殊教育需要"] and "特殊教育需要" not in rows


def test_a_group_out_of_use_stays_while_it_has_pupils(app: Flask, group_city: dict[str, Any]) -> None:
    with app.app_context():
        for name in ("建档立卡/低保家庭", "双职工"):
            group = db.session.get(PriorityGroup, group_city["groups"][name])
            assert group is not None
            save_group(group, name_zh=group.name_zh, name_en=group.name_en, weight=group.weight, active=False,
                       user_id=None)
        split = _split(city_stats().rollup.published.fairness)
        assert split is not None and "双职工" not in split and split["建档立卡/低保家庭"] == (0, 1, 0)


def test_metrics_and_summaries_without_groups_are_not_available(
        app: Flask, client: FlaskClient, signed_in: Any, group_city: dict[str, Any]) -> None:
    """A run counted before groups were recorded has no split (never all "no group"); a summary stored before
    the split was has none until `summarize-runs` adds it from the metrics."""
    with app.app_context():
        runs = db.session.scalars(select(AllocationRun).where(AllocationRun.metrics.is_not(None))).all()
        for run in runs:
            run.summary = {**run.summary, "fairness": {key: value for key, value in run.summary["fairness"].items()
                                                       if key != "by_group"}}
        db.session.commit()
        assert city_stats().rollup.published.fairness.group_schools == 0
    _bureau(app, signed_in)
    section = _section(client.get("/bureau/").get_data(as_text=True))
    assert "已发布的分配结果暂无按优先群体的数据" in section and "<table" not in section
    assert fairness_blocks(_workbook(client.get("/bureau/export.xlsx").data))[1][1][2] == "暂无按优先群体的数据"

    result = app.test_cli_runner().invoke(args=["summarize-runs"])
    assert result.exit_code == 0, result.output
    assert f"0 run(s) summarized, {len(runs)} given their fairness figures" in result.output
    rows = _table_rows(_section(client.get("/bureau/").get_data(as_text=True)).split("badge-warn", 1)[0])
    assert rows["无优先群体"] == [SMALL, SMALL, "0", SMALL, HIDDEN], "the split is back, small counts hidden"

    with app.app_context():  # the published school's run counted again the old way: no record, no split
        term, _ = _ids(group_city["schools"]["KM-TEST-0001"])
        _count_fairness(term, groups=False)
        run = _published_run(group_city)
        assert "priority_groups" not in run.metrics and run.summary["fairness"]["by_group"] is None
        assert _split(city_stats().rollup.published.fairness) is None
        assert _split(city_stats().rollup.draft.fairness) == DRAFT


def test_the_record_is_dropped_with_the_names_and_the_split_kept(app: Flask, group_city: dict[str, Any]) -> None:
    with app.app_context():
        run = _published_run(group_city)
        kept = without_names(run.metrics)
        assert kept is not None and "priority_groups" not in kept and "fairness" not in kept
        assert "P001" not in str(kept)
        assert fairness_part(kept) == fairness_part(run.metrics)
        assert fairness_part(kept)["by_group"][NO_GROUP] == {"fully": 1, "partly": 0, "not_at_all": 1}
        term = run.term
        instance = term_to_run_input(term).instance
        assert "served_by_group" not in compute_metrics(instance, run_to_solution(run))["fairness"]


# --------------------------------------------------------------------------- pages and workbook


def test_city_and_district_pages_show_served_by_group_in_both_languages(
        app: Flask, client: FlaskClient, signed_in: Any, group_city: dict[str, Any]) -> None:
    _bureau(app, signed_in)
    city = _section(client.get("/bureau/").get_data(as_text=True))
    assert "按优先群体" in city and "以下为已发布分配结果的 1 所学校中 1 所的数据" in city
    headline, draft = city.split("badge-warn", 1)
    rows = _table_rows(headline)
    assert list(rows) == [*PUBLISHED], "groups heaviest first, then pupils of no group"
    assert rows == PUBLISHED_SHOWN
    assert "1 至 4 人的数目显示为“&lt;5”" in headline, "the page says what the marks mean"
    assert _table_rows(draft)["留守儿童"] == [SMALL, "0", SMALL, "0", HIDDEN]
    assert _table_rows(draft)["无优先群体"] == [SMALL, SMALL, "0", "0", HIDDEN]

    district = _section(client.get(f"/bureau/district/{group_city['districts']['五华区']}").get_data(as_text=True))
    assert _table_rows(district.split("badge-warn", 1)[0]) == rows

    post_form(client, "/lang/en", {"next": "/bureau/"}, token_from="/bureau/")
    english = _table_rows(_section(client.get("/bureau/").get_data(as_text=True)).split("badge-warn", 1)[0])
    assert list(english) == ["Special educational needs", "Registered low-income family", "Left-behind child",
                             "Both parents working", "No priority group"]
    assert english["No priority group"] == [SMALL, SMALL, "0", SMALL, "hidden"]


def test_a_district_user_sees_only_their_districts_groups(
        app: Flask, client: FlaskClient, signed_in: Any, group_city: dict[str, Any]) -> None:
    _bureau(app, signed_in, district="盘龙区")
    assert client.get(f"/bureau/district/{group_city['districts']['五华区']}").status_code == 404
    own = _section(client.get(f"/bureau/district/{group_city['districts']['盘龙区']}").get_data(as_text=True))
    assert "已发布的分配结果暂无按优先群体的数据" in own and "<table" not in own
    _, groups = fairness_blocks(_workbook(client.get("/bureau/export.xlsx").data))
    assert [row[:3] for row in groups[1:]] == [["合计", "已发布", "暂无按优先群体的数据"],
                                               ["盘龙区", "已发布", "暂无按优先群体的数据"]]


def test_a_school_admin_is_refused(app: Flask, client: FlaskClient, signed_in: Any,
                                   group_city: dict[str, Any]) -> None:
    signed_in("school_admin")
    for url in ("/bureau/", f"/bureau/district/{group_city['districts']['五华区']}", "/bureau/export.xlsx"):
        assert client.get(url).status_code == 403, url


def test_the_workbook_has_the_rows_by_group(
        app: Flask, client: FlaskClient, signed_in: Any, group_city: dict[str, Any]) -> None:
    _bureau(app, signed_in)
    _, (header, *rows) = fairness_blocks(_workbook(client.get("/bureau/export.xlsx").data))
    assert header[:8] == ["区", "数据来源", "优先群体", "申请学生", "每个申请日都有托管的学生",
                          "部分申请日有托管的学生", "没有一个申请日有托管的学生", "每个申请日都有托管的比例"]
    by_key = {(row[0], row[1], row[2]): row[3:8] for row in rows}
    for area in ("合计", "五华区"):
        for name, shown in PUBLISHED_SHOWN.items():
            expected = [None if cell == "–" else int(cell) if cell.isdigit() else cell for cell in shown]
            assert by_key[(area, "已发布", name)] == expected, (area, name)
        assert by_key[(area, "草稿", "留守儿童")] == [SMALL, 0, SMALL, 0, HIDDEN], "a hidden count is text"
    assert by_key[("盘龙区", "已发布", "暂无按优先群体的数据")] == [None] * 5


def test_no_pupil_is_named_beside_the_groups(
        app: Flask, client: FlaskClient, signed_in: Any, group_city: dict[str, Any]) -> None:
    with app.app_context():
        named = {str(value) for pupil in db.session.execute(select(Pupil.name, Pupil.number)).all()
                 for value in pupil if value}
    _bureau(app, signed_in)
    district = group_city["districts"]["五华区"]
    sections = [_section(client.get(url).get_data(as_text=True))
                for url in ("/bureau/", f"/bureau/district/{district}")]
    _, rows = fairness_blocks(_workbook(client.get("/bureau/export.xlsx").data))
    cells = {str(cell) for row in rows for cell in row if cell is not None}
    for text in named:
        assert all(text not in section for section in sections) and text not in cells, text


@pytest.mark.postgres
def test_the_split_on_postgresql(request: pytest.FixtureRequest) -> None:
    """Recorded in the run's JSON metrics, copied into its summary by the commit hook, summed on PostgreSQL."""
    app: Flask = request.getfixturevalue("pg_app")
    with app.app_context():
        ids = seed_city()
        group = save_group(None, name_zh="特殊教育需要", name_en="Special educational needs", weight=4, active=True,
                           user_id=None)
        _tag(ids["schools"]["KM-TEST-0001"], "P001", group, school_today() + timedelta(days=60))
        db.session.commit()
        add_fairness(ids)
        split = _split(city_stats().rollup.published.fairness)
        assert split == {"特殊教育需要": (1, 0, 0), "无优先群体": (1, 1, 1)}
        for run in db.session.scalars(select(AllocationRun).where(AllocationRun.metrics.is_not(None))):
            run.metrics = without_names(run.metrics)
        db.session.commit()
        assert _split(city_stats().rollup.published.fairness) == split


# --------------------------------------------------------------------------- small counts


# 五华区's published school as a larger school would count it: 特殊教育需要 has 2 pupils, both served every day.
LARGER = {"特殊教育需要": (2, 0, 0), "建档立卡/低保家庭": (12, 3, 6), "无优先群体": (40, 10, 7)}
GROUPS_BY_NAME = [name for name, _en, _weight in GROUPS]


def _count_larger(app: Flask, ids: dict[str, Any]) -> None:
    """Store the published run's summary with the LARGER counts, by group and in all, as its refresh would."""
    with app.app_context():
        run = _published_run(ids)
        keys = {name: str(ids["groups"][name]) for name in GROUPS_BY_NAME} | {"无优先群体": NO_GROUP}
        by_group = {keys[name]: {"fully": f, "partly": p, "not_at_all": x} for name, (f, p, x) in LARGER.items()}
        served = {key: sum(counts[key] for counts in by_group.values()) for key in ("fully", "partly", "not_at_all")}
        run.summary = {**run.summary, "fairness": {**run.summary["fairness"], "served": served,
                                                   "by_group": by_group}}
        db.session.commit()


def test_a_group_of_two_pupils_is_shown_as_fewer_than_five_on_the_page_and_in_the_workbook(
        app: Flask, client: FlaskClient, signed_in: Any, group_city: dict[str, Any]) -> None:
    _count_larger(app, group_city)
    _bureau(app, signed_in, district="五华区")
    page = _section(client.get(f"/bureau/district/{group_city['districts']['五华区']}").get_data(as_text=True))
    table = page.split("badge-warn", 1)[0]
    rows = _table_rows(table)
    assert rows["特殊教育需要"] == [SMALL, SMALL, "0", "0", HIDDEN]
    assert rows["建档立卡/低保家庭"] == [HIDDEN, HIDDEN, SMALL, HIDDEN, HIDDEN]
    assert rows["无优先群体"] == ["57", "40", HIDDEN, HIDDEN, "70.2%"], "counts that tell nothing stay shown"
    assert rows["留守儿童"] == ["0", "0", "0", "0", "–"]
    cells = [cell for row in rows.values() for cell in row]
    for raw in ("2", "3", "6", "10", "7", "12", "21", "14.3%", "57.1%"):
        assert raw not in cells, raw

    _, (_header, *sheet_rows) = fairness_blocks(_workbook(client.get("/bureau/export.xlsx").data))
    for area in ("合计", "五华区"):
        by_name = {row[2]: row[3:8] for row in sheet_rows if row[:2] == [area, "已发布"]}
        assert by_name["特殊教育需要"] == ["<5", "<5", 0, 0, HIDDEN], "text cells, not numbers"
        assert by_name["建档立卡/低保家庭"] == [HIDDEN, HIDDEN, "<5", HIDDEN, HIDDEN]
        assert by_name["无优先群体"][:2] == [57, 40] and by_name["无优先群体"][4] == pytest.approx(40 / 57, abs=1e-4)
        numbers = [cell for row in by_name.values() for cell in row[:4] if isinstance(cell, int)]
        assert 2 not in numbers and set(numbers) <= {0, 57, 40}, numbers

    post_form(client, "/lang/en", {"next": "/bureau/"}, token_from="/bureau/")
    english = _table_rows(_section(client.get(f"/bureau/district/{group_city['districts']['五华区']}")
                                   .get_data(as_text=True)).split("badge-warn", 1)[0])
    assert english["Special educational needs"] == ["<5", "<5", "0", "0", "hidden"]
    assert english["No priority group"] == ["57", "40", "hidden", "hidden", "70.2%"]


def test_the_threshold_is_the_apps_setting(
        app: Flask, client: FlaskClient, signed_in: Any, group_city: dict[str, Any]) -> None:
    _count_larger(app, group_city)
    app.config["BUREAU_MIN_CELL"] = 13
    _bureau(app, signed_in)
    rows = _table_rows(_section(client.get("/bureau/").get_data(as_text=True)).split("badge-warn", 1)[0])
    assert rows["建档立卡/低保家庭"][:4] == [HIDDEN, "<13", "<13", "<13"]
    assert "1 至 12 人的数目显示为“&lt;13”" in client.get("/bureau/").get_data(as_text=True)
