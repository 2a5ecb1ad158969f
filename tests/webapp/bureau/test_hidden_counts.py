"""Every count of children the bureau sees goes through the one rule of test_small_counts.py (`suppress_counts`):
the area's own counts (served every / some / no day, pupil-days, requesting, served), a table of areas beside its
total, the school page's counts by priority level, each weekday x period, on the pages and in the workbook.

The tiny city of test_fairness.py has small numbers everywhere (KM-TEST-0001: 4 pupils asking, 2 / 1 / 1 served
every / some / no day, 2 of 6 pupil-days unmet); KM-TEST-0060 (西山区, made here) has 60 pupils asking, 20 / 20 / 20,
10 of each at each of its two priority levels, and 60 of 120 pupil-days unmet: nothing of it is small."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from tests.conftest import make_school
from tests.webapp.bureau.test_fairness import _count_fairness, add_fairness
from tests.webapp.bureau.test_small_counts import _cells, _recoverable
from tests.webapp.factories import _ids, _request, _run, post_form, seed_city
from webapp.bureau.stats import (
    MIN_CELL,
    CityStats,
    DistrictStats,
    Fairness,
    Figures,
    GroupRow,
    Hidden,
    Rollup,
    Source,
    TermStats,
    shown_area,
    shown_page,
    shown_table,
    suppress_counts,
)
from webapp.extensions import db
from webapp.models import District, PriorityGroup, School
from webapp.run_metrics import NO_GROUP

SMALL, HIDDEN = "<5", "不公开"
LARGE = "KM-TEST-0060"
OTHER = "KM-TEST-0048"


# --------------------------------------------------------------------------- the rule beside shown totals


def _column_safe(column: list[int], column_marks: list[Hidden | None], total: int, total_mark: Hidden | None,
                 n: int) -> bool:
    """No hidden count of the column can be worked out from the total as the page shows it, unless hiding every
    count of the column would not help either (the total itself tells it)."""
    cells, marks = [total, *column], [total_mark, *column_marks]
    if not _recoverable(cells, marks, n, None):
        return True
    everything = [total_mark, *(mark or Hidden.PROTECTING for mark in column_marks)]
    return bool(_recoverable(cells, everything, n, None))


def _check_beside(rows: Sequence[tuple[int, ...]], n: int) -> list[list[Hidden | None]]:
    """Hide the area's total as a row alone (as its headline does), then the table beside it; check both."""
    sums = tuple(sum(column) for column in zip(*rows, strict=True))
    [area] = suppress_counts([sums], n, False)
    area_cells = [sum(sums), *sums]
    assert _recoverable(area_cells, area, n, None) == []
    own = [suppress_counts([row], n, False)[0] for row in rows]
    marks = suppress_counts(rows, n, area, own)
    cells = _cells(rows) if len(rows[0]) == 3 else [[sum(row), *row] for row in rows]
    for row, row_marks, kept in zip(cells, marks, own, strict=True):
        assert all(mark is not None for mark, was in zip(row_marks, kept, strict=True) if was is not None), \
            "what a row hides on its own page stays hidden in the table"
        for value, mark in zip(row, row_marks, strict=True):
            assert (mark is Hidden.SMALL) == (0 < value < n), "small counts, and only they, are '<N'"
        assert _recoverable(row, row_marks, n, None) == [], (rows, marks)
    for c in range(len(cells[0])):
        column = [row[c] for row in cells]
        assert _column_safe(column, [m[c] for m in marks], area_cells[c], area[c], n), (rows, c, marks, area)
    return marks


def test_a_hidden_total_is_known_only_as_what_it_shows() -> None:
    s = Hidden.SMALL
    # Served no day: 1 + 0 + 0 = 1, shown "<5" in the headline. The column's one count "<5" beside a total "<5"
    # pins nothing, so the rest of the table is left alone (before, the total was taken as the number 1).
    rows = [(20, 10, 1), (30, 12, 0), (25, 8, 0)]
    marks = _check_beside(rows, 5)
    assert marks[1] == [None, None, None, None] and marks[2] == [None, None, None, None]
    # Four groups of one each under a total of "<5" can only be 1 + 1 + 1 + 1: nothing in the table can hide that,
    # and the rule does not hide every cell for nothing.
    assert suppress_counts([(9, 0, 1)] * 4, 5, [None, None, None, s])[0][3] is s


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)), min_size=2, max_size=3))
def test_no_hidden_count_of_a_table_beside_its_shown_total_can_be_recovered(rows: list[tuple[int, int, int]]) -> None:
    _check_beside(rows, MIN_CELL)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=1, max_size=4))
def test_pupil_days_and_counts_alone_follow_the_same_rule(rows: list[tuple[int, int]]) -> None:
    """Covered and unmet pupil-days of schools beside their district's (rows of two parts)."""
    _check_beside(rows, MIN_CELL)


# --------------------------------------------------------------------------- pages and workbook


def _large_school(code: str, district: str, pupils: int) -> int:
    """A published school whose pupils (priority i % 2) are served every / some / no requested day by thirds."""
    school = make_school(code, district_name=district, n_pupils=pupils)
    term, numbers, sessions, teachers = _ids(school)
    assignments, unserved = [], []
    for i in range(pupils):
        number = f"P{i + 1:03d}"
        _request(term, numbers[number], [1, 2], ["P1"])
        served = ("S11", "S21")[:2 - (i // 2) % 3]
        assignments += [(number, session) for session in served]
        unserved += [(number, day) for day in (1, 2)[len(served):]]
    _run(term, numbers, sessions, teachers, assignments=assignments, unserved=unserved,
         staffing=[("T3", "S11"), ("T3", "S21")], publish=True)
    _count_fairness(term)
    return school.id


@pytest.fixture
def mixed_city(app: Flask) -> dict[str, Any]:
    """The tiny city, with its fairness figures, and two published schools of their own districts: KM-TEST-0060
    (西山区, 60 pupils: 20 / 20 / 20) and KM-TEST-0048 (官渡区, 48 pupils: 16 / 16 / 16)."""
    with app.app_context():
        ids = seed_city()
        add_fairness(ids)
        for code, district, pupils in ((LARGE, "西山区", 60), (OTHER, "官渡区", 48)):
            ids["schools"][code] = _large_school(code, district, pupils)
            ids["districts"][district] = db.session.get(School, ids["schools"][code]).district_id
        return ids


def _section(page: str, anchor: str) -> str:
    section = page[page.index(anchor):]
    return section[:section.index("</section>")]


def _dl(html: str) -> dict[str, str]:
    """Each <dt> of the page with its <dd>, tags stripped."""
    return {unescape(re.sub(r"<[^>]+>", "", dt)).strip(): unescape(re.sub(r"<[^>]+>", "", dd)).strip()
            for dt, dd in re.findall(r"<dt>(.*?)</dt>\s*<dd[^>]*>(.*?)</dd>", html, re.S)}


def _cells_of(row: str) -> list[str]:
    return [unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def _row(html: str, label: str) -> list[str]:
    [row] = [row for row in re.findall(r"<tr>.*?</tr>", html, re.S) if label in row]
    return _cells_of(row)


def _bureau(app: Flask, signed_in: Any) -> None:
    with app.app_context():
        signed_in("bureau")


SERVED, LEVELS = "全部 / 部分 / 没有申请日得到托管的学生", "按优先级的托管情况（全部 / 部分 / 没有）"


def _heat(page: str) -> list[str]:
    """Each weekday x period's "seated / requesting" of the page's heat map."""
    return [unescape(cell) for cell in re.findall(r"<title>[^<]*P\d: ([^<]*)</title>", page)]


def test_the_school_page_hides_small_counts_and_shows_large_ones(
    app: Flask, client: FlaskClient, signed_in: Any, mixed_city: dict[str, Any]
) -> None:
    _bureau(app, signed_in)
    small = client.get(f"/bureau/school/{mixed_city['schools']['KM-TEST-0001']}").get_data(as_text=True)
    tiles = _dl(small)
    assert tiles["覆盖率"] == HIDDEN and tiles["参与率"] == HIDDEN, "4 of 6 pupil-days would tell the 2 unmet"
    assert tiles["获得服务的学生"] == f"{SMALL} / {SMALL}" and tiles["未满足人日"] == SMALL
    assert tiles["参与教师"] == "2", "teachers are not children: shown as they are"
    fairness = _dl(_section(small, 'id="fairness"'))
    assert fairness[SERVED] == f"{SMALL} / {SMALL} / {SMALL}"
    assert fairness["同日兄弟姐妹被拆开的家庭"] == SMALL and fairness["有学生候补时的空名额"] == "57"
    assert fairness["安排在第一志愿 / 前三志愿 / 所填志愿之外"] == f"{HIDDEN} / {HIDDEN} / {HIDDEN}", \
        "2 of 5 placements: the share tells the count"
    # level 0: P001 every day, P003 no day; level 1: P004 every day, P002 some days
    assert fairness[LEVELS] == "0 级: <5 / 0 / <5; 1 级: <5 / <5 / 0"
    assert "66.7%" not in small and "2 / 1 / 1" not in small and "3 / 4" not in small
    heat = _heat(small)
    assert heat and all(re.fullmatch(r"(<5|0|不公开) / (<5|0|不公开)", cell) for cell in heat), heat

    large = client.get(f"/bureau/school/{mixed_city['schools'][LARGE]}").get_data(as_text=True)
    tiles = _dl(large)
    assert tiles["覆盖率"] == "50.0%" and tiles["获得服务的学生"] == "40 / 60" and tiles["未满足人日"] == "60"
    fairness = _dl(_section(large, 'id="fairness"'))
    assert fairness[SERVED] == "20 / 20 / 20" and fairness[LEVELS] == "0 级: 10 / 10 / 10; 1 级: 10 / 10 / 10"
    assert _heat(large)[:2] == ["40 / 60", "20 / 60"]

    # The other large school is what the city's table hides beside 五华区 (38 - 20 - 16 would tell its 2), and its
    # own page, for the same reader, hides it too; its levels are then a table beside hidden totals.
    other = client.get(f"/bureau/school/{mixed_city['schools'][OTHER]}").get_data(as_text=True)
    tiles, fairness = _dl(other), _dl(_section(other, 'id="fairness"'))
    assert tiles["获得服务的学生"] == f"{HIDDEN} / {HIDDEN}" and tiles["覆盖率"] == HIDDEN
    assert fairness[SERVED] == f"{HIDDEN} / {HIDDEN} / {HIDDEN}" and "16" not in fairness[LEVELS]
    assert all(cell == f"{HIDDEN} / {HIDDEN}" or cell == "0 / 0" for cell in _heat(other)), _heat(other)


def test_the_district_and_city_pages_hide_small_counts_and_what_would_tell_them(
    app: Flask, client: FlaskClient, signed_in: Any, mixed_city: dict[str, Any]
) -> None:
    _bureau(app, signed_in)
    wuhua = client.get(f"/bureau/district/{mixed_city['districts']['五华区']}").get_data(as_text=True)
    headline = _dl(wuhua.split('class="figures-apart"')[0])
    assert headline["覆盖率"] == HIDDEN and headline["获得服务的学生"] == f"{SMALL} / {SMALL}"
    drafts = unescape(wuhua.split('class="figures-apart"')[1].split("</ul>")[0])
    assert "覆盖率 不公开，<5 名申请学生中 <5 名获得服务" in drafts
    row = _row(_section(wuhua, "<h2>各校覆盖率"), "KM-TEST-0001")
    # enrolled 6, requesting <5, served <5, participation and coverage hidden, unmet <5, teachers 2
    assert row[3:9] == ["6", SMALL, SMALL, HIDDEN, HIDDEN, SMALL] and row[9] == "2"
    fair = _row(_section(wuhua, 'id="fairness"'), "KM-TEST-0001")
    assert fair[2] == f"{SMALL} / {SMALL} / {SMALL}" and fair[5] == "57" and fair[6] == SMALL

    city = client.get("/bureau/").get_data(as_text=True)
    fairness = _section(city, 'id="fairness"')
    assert _dl(fairness.split("badge-warn")[0])[SERVED] == "38 / 37 / 37"
    assert _row(fairness, "五华区")[2] == f"{SMALL} / {SMALL} / {SMALL}"
    assert _row(fairness, "官渡区")[2] == f"{HIDDEN} / {HIDDEN} / {HIDDEN}", "the next smallest row hides 五华区's"
    assert _row(fairness, "西山区")[2] == "20 / 20 / 20", "a large row nothing needs stays shown"
    coverage = _section(city, "<h2>各区覆盖率")
    assert _row(coverage, "五华区")[5:10] == [SMALL, SMALL, HIDDEN, HIDDEN, SMALL]
    assert _row(coverage, "官渡区")[5:10] == [HIDDEN] * 5
    assert _row(coverage, "西山区")[5:10] == ["60", "40", "66.7%", "50.0%", "60"]
    assert _dl(city.split('id="fairness"')[0])["获得服务的学生"] == "75 / 112"


def _workbook(data: bytes) -> dict[str, list[list[Any]]]:
    book = load_workbook(io.BytesIO(data))
    return {sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)] for sheet in book.worksheets}


def test_the_workbook_holds_the_text_never_the_number(
    app: Flask, client: FlaskClient, signed_in: Any, mixed_city: dict[str, Any]
) -> None:
    _bureau(app, signed_in)
    sheets = _workbook(client.get(f"/bureau/export.xlsx?school={mixed_city['schools']['KM-TEST-0001']}").data)
    [school] = [row for row in sheets["学校"][1:] if row[1] == "KM-TEST-0001"]
    # enrolled, requesting, served, participation, requested / covered / coverage / unmet pupil-days, teachers
    assert school[6:16] == [6, SMALL, SMALL, HIDDEN, 6, SMALL, HIDDEN, SMALL, 2, 1.5]
    [fair] = [row for row in sheets["公平性"][1:] if row[1] == "KM-TEST-0001"]
    assert fair[5:8] == [SMALL, SMALL, SMALL] and fair[8:11] == [HIDDEN, HIDDEN, HIDDEN] and fair[12] == 57
    for row in sheets["星期×节次（已发布）"][1:]:
        assert all(cell in (0, SMALL, HIDDEN, None) for cell in row[2:]), row
    city = _workbook(client.get("/bureau/export.xlsx").data)
    [other] = [row for row in city["学校"][1:] if row[1] == OTHER]
    assert other[7:10] + other[11:14] == [HIDDEN] * 6, "as on the pages: hidden to protect 五华区"
    assert other[10] == 96, "its requested pupil-days: covered + unmet, both hidden, tell neither"
    [district] = [row for row in city["各区（已发布）"][1:] if row[0] == "五华区"]
    assert district[7:14] == [SMALL, SMALL, HIDDEN, 6, SMALL, HIDDEN, SMALL]

    large = _workbook(client.get(f"/bureau/export.xlsx?school={mixed_city['schools'][LARGE]}").data)
    [school] = [row for row in large["学校"][1:] if row[1] == LARGE]
    assert school[6:14] == [60, 60, 40, 0.6667, 120, 60, 0.5, 60]
    [fair] = [row for row in large["公平性"][1:] if row[1] == LARGE]
    assert fair[5:8] == [20, 20, 20]

    post_form(client, "/lang/en", {"next": "/bureau/"}, token_from="/bureau/")
    english = _workbook(client.get(f"/bureau/export.xlsx?school={mixed_city['schools']['KM-TEST-0001']}").data)
    [school] = [row for row in english["Schools"][1:] if row[1] == "KM-TEST-0001"]
    assert school[6:10] == [6, "<5", "<5", "hidden"]


# --------------------------------------------------------------------------- tables by group of several areas


def _school(school_id: int, district_id: int, by_group: dict[str, tuple[int, int, int]]) -> TermStats:
    """A published school whose run recorded its pupils' groups (every pupil asked for two days, all covered)."""
    fully, partly, none = (sum(counts[i] for counts in by_group.values()) for i in range(3))
    fairness = Fairness(schools=1, fully=fully, partly=partly, not_at_all=none, group_schools=1,
                        by_group={key: list(counts) for key, counts in by_group.items()})
    requesting = fully + partly + none
    figures = Figures(schools=1, allocated=1, offering=1, enrolled=requesting + 100, requesting=requesting,
                      served=fully + partly, requested_days=2 * requesting, covered_days=2 * requesting,
                      fairness=fairness)
    return TermStats(school_id, "2026-autumn", school_id, f"S{school_id}", f"S{school_id}", district_id,
                     f"D{district_id}", school_id, Source.PUBLISHED, figures)


def _marks(row: GroupRow) -> list[Hidden | None]:
    return [None if isinstance(value, int) else Hidden.SMALL if value == SMALL else Hidden.PROTECTING
            for value in (row.requesting, row.fully, row.partly, row.not_at_all)]


counts = st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(0, 8))


@settings(max_examples=25, deadline=None,  # the app is only read: the figures are built here, not stored
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(split=st.lists(st.tuples(counts, counts), min_size=4, max_size=4))
def test_no_count_of_a_group_can_be_recovered_across_areas(app: Flask, split: list[Any]) -> None:
    """Two districts of two schools, pupils in group 1 or none: each area's table beside its served counts, and
    each group's row of the districts (of a district's schools) beside the total's (the district's) row."""
    with app.test_request_context():
        groups = [PriorityGroup(id=1, name_zh="特殊教育需要", name_en="Special needs", weight=4, active=True)]
        schools = [_school(i + 1, 1 + i // 2, {"1": group, NO_GROUP: rest}) for i, (group, rest) in enumerate(split)]
        city, districts = Rollup(), []
        for district_id in (1, 2):
            mine = [s for s in schools if s.district_id == district_id]
            rollup = Rollup()
            for school in mine:
                rollup.add(school.source, school.figures)
                city.add(school.source, school.figures)
            districts.append(DistrictStats(district_id, f"D{district_id}", rollup, mine))
        scope = CityStats(city, districts, schools, [], [], [1, 2])
        page = shown_page(scope, scope, groups=groups)
        n = MIN_CELL
        areas = {("total", None): (city.published, page.headline[Source.PUBLISHED])}
        areas |= {("district", d.district_id): (d.rollup.published, page.districts[(d.district_id, Source.PUBLISHED)])
                  for d in districts}
        areas |= {("school", s.school_id): (s.figures, page.schools[s.school_id]) for s in schools}
        tables = {key: page.by_group[(*key, Source.PUBLISHED)] for key in areas}
        cells = {key: [[f + p + x, f, p, x] for f, p, x in (
            tuple(figures.fairness.by_group.get(group, (0, 0, 0))) for group in ("1", NO_GROUP))]
            for key, (figures, _shown) in areas.items()}
        marks = {key: [_marks(row) for row in table or ()] for key, table in tables.items()}
        for key, (figures, shown) in areas.items():
            fair = figures.fairness
            total_cells = [fair.fully + fair.partly + fair.not_at_all, fair.fully, fair.partly, fair.not_at_all]
            for row, row_marks in zip(cells[key], marks[key], strict=True):
                assert _recoverable(row, row_marks, n, None) == [], (key, split)
            for c in range(4):
                assert _column_safe([row[c] for row in cells[key]], [m[c] for m in marks[key]], total_cells[c],
                                    shown.served_marks[c], n), (key, c, split)
        parents = {("total", None): [("district", 1), ("district", 2)],
                   ("district", 1): [("school", 1), ("school", 2)], ("district", 2): [("school", 3), ("school", 4)]}
        for parent, kids in parents.items():
            for g in range(2):
                for c in range(4):
                    assert _column_safe([cells[kid][g][c] for kid in kids], [marks[kid][g][c] for kid in kids],
                                        cells[parent][g][c], marks[parent][g][c], n), (parent, g, c, split)


def test_a_district_without_schools_still_has_its_page(
    app: Flask, client: FlaskClient, signed_in: Any, mixed_city: dict[str, Any]
) -> None:
    with app.app_context():
        district = District(name="呈贡区", city="昆明市")
        db.session.add(district)
        db.session.commit()
        district_id = district.id
    _bureau(app, signed_in)
    assert client.get(f"/bureau/district/{district_id}").status_code == 200
    assert client.get(f"/bureau/export.xlsx?district={district_id}").status_code == 200


# --------------------------------------------------------------------------- a table of areas beside its total


def _mark(value: Any) -> Hidden | None:
    return None if isinstance(value, int) else Hidden.SMALL if value == SMALL else Hidden.PROTECTING


@settings(max_examples=300, deadline=None,  # the app is only read: the figures are built here, not stored
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(counts, min_size=2, max_size=3))
def test_no_count_of_a_table_of_areas_can_be_recovered(app: Flask, rows: list[tuple[int, int, int]]) -> None:
    """Districts beside the city: every identity the page shows holds for each row (requesting = every + some +
    no day = served + no day, served = every + some day) and for each column with the total as shown."""
    with app.test_request_context():
        figures = [_school(i + 1, i + 1, {NO_GROUP: row}).figures for i, row in enumerate(rows)]
        total = Figures()
        for row in figures:
            total.add(row)
        total_shown = shown_area(total)
        shown = shown_table(figures, total_shown, total)

        def cells(area: Figures, seen: Any) -> dict[str, tuple[int, Hidden | None]]:
            fair = area.fairness
            values = {"requesting": area.requesting, "served": area.served, "fully": fair.fully,
                      "partly": fair.partly, "not_at_all": fair.not_at_all}
            texts = {**{key: seen.figures[key] for key in ("requesting", "served")},
                     **{key: seen.fairness[key] for key in ("fully", "partly", "not_at_all")}}
            return {key: (values[key], _mark(texts[key])) for key in values}

        n = MIN_CELL
        table = [cells(area, seen) for area, seen in zip(figures, shown, strict=True)]
        whole = cells(total, total_shown)
        for identity in (("requesting", "fully", "partly", "not_at_all"), ("requesting", "served", "not_at_all"),
                         ("served", "fully", "partly")):
            for row in [*table, whole]:
                assert _recoverable([row[key][0] for key in identity], [row[key][1] for key in identity], n,
                                    None) == [], (identity, rows, row)
        for key in whole:
            assert _column_safe([row[key][0] for row in table], [row[key][1] for row in table], whole[key][0],
                                whole[key][1], n), (key, rows, table, whole)
