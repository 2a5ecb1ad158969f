"""Bureau dashboard, exports, scope, privacy, languages, capacity advice and its rollup."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from scheduler.whatif import Advice, AdviceItem, AdviceLevel, advice_to_json
from tests.webapp.bureau.test_hidden_counts import _large_school
from tests.webapp.factories import post_form, seed_city
from webapp.bureau.routes import advice_levels, advice_line, heat_colour
from webapp.bureau.stats import HiringPlan, city_stats, rollup_advice
from webapp.extensions import db
from webapp.models import CapacityAdvice, District, Pupil, School, User
from webapp.run_metrics import compute_metrics
from webapp.services import run_to_solution, term_to_instance
from webapp.tabular import PERCENT_FORMAT


@pytest.fixture
def city(app: Flask) -> dict[str, Any]:
    with app.app_context():
        return seed_city()


def _bureau(app: Flask, signed_in: Callable[..., User], district: str | None = None) -> User:
    with app.app_context():
        found = db.session.scalar(select(District).where(District.name == district)) if district else None
        return signed_in("bureau", district=found)


def _sheets(data: bytes) -> dict[str, list[list[Any]]]:
    book = load_workbook(io.BytesIO(data))
    return {
        sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)] for sheet in book.worksheets
    }


# --------------------------------------------------------------------------- numbers


def test_figures_match_hand_computed_values(app: Flask, city: dict[str, Any]) -> None:
    with app.app_context():
        stats = city_stats()
        by_code = {s.school_code: s for s in stats.schools}
        a = by_code["KM-TEST-0001"]
        assert a.source == "published"
        f = a.figures
        assert (f.offering, f.enrolled, f.requesting, f.served) == (1, 6, 4, 3)
        assert (f.requested_days, f.covered_days, f.unmet_days) == (6, 4, 2)
        assert f.coverage == pytest.approx(4 / 6)
        assert f.participation == pytest.approx(3 / 6)
        assert (f.teachers, f.teacher_sessions, f.max_load) == (2, 3, 2)
        assert f.avg_load == pytest.approx(1.5)
        assert f.slots[(1, "P1")] == [3, 2]
        assert f.slots[(2, "P1")] == [3, 3]
        assert f.slots[(1, "P2")] == [2, 1]
        assert f.slots[(2, "P2")] == [1, 0]
        assert f.slots[(1, "P3")] == [1, 0]

        b = by_code["KM-TEST-0002"]
        assert b.source == "draft"
        assert (b.figures.requesting, b.figures.served, b.figures.requested_days, b.figures.covered_days) == (
            2,
            2,
            3,
            2,
        )
        assert (b.figures.teachers, b.figures.max_load) == (1, 1)

        c = by_code["KM-TEST-0003"]
        assert c.term_name == "2026-autumn" and c.source == "none"
        assert (c.figures.offering, c.figures.requesting, c.figures.requested_days) == (1, 1, 1)
        # Not yet allocated: no seat-side figure at all, never a 0 % rate.
        assert c.figures.coverage is None and c.figures.participation is None and c.figures.unmet_days is None
        assert c.figures.as_row()["served"] is None and c.figures.slot_coverage((3, "P1")) is None

        # The headline is the published allocations only; the draft and the unallocated school stay apart.
        city = stats.rollup
        assert (city.schools, city.published.schools, city.draft.schools, city.not_allocated.schools) == (3, 1, 1, 1)
        assert city.published.coverage == pytest.approx(4 / 6)
        assert city.draft.coverage == pytest.approx(2 / 3)
        assert city.not_allocated.coverage is None and city.not_allocated.requesting == 1
        assert city.enrolled == 13 and city.offering == 3
        wuhua = next(d for d in stats.districts if d.name == "五华区").rollup
        assert (wuhua.schools, wuhua.enrolled) == (2, 10)
        assert (wuhua.published.requesting, wuhua.published.served) == (4, 3)
        assert (wuhua.draft.requesting, wuhua.draft.served, wuhua.draft.covered_days) == (2, 2, 2)
        assert (wuhua.published.teachers, wuhua.published.max_load) == (2, 2)
        panlong = next(d for d in stats.districts if d.name == "盘龙区").rollup
        assert panlong.published.schools == 0 and panlong.published.coverage is None
        assert [name for name, _ in stats.trend] == ["2026-spring", "2026-autumn"]
        spring = dict(stats.trend)["2026-spring"].published
        assert (spring.requested_days, spring.covered_days) == (1, 1)


def test_dashboard_shows_figures_and_svg_charts(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    _bureau(app, signed_in)
    page = client.get("/bureau/").get_data(as_text=True)
    assert "<svg" in page and "五华区" in page and "盘龙区" in page
    # 4 of 6 pupil-days covered: the 2 unmet are a small count, so the coverage that would tell them is hidden,
    # and so is its colour (the figures themselves: test_figures_match_hand_computed_values).
    assert "66.7%" not in page and "不公开" in page and heat_colour(2 / 3) not in page
    assert "60.0%" not in page  # the draft is never summed into the headline
    district = client.get(f"/bureau/district/{city['districts']['五华区']}").get_data(as_text=True)
    assert "66.7%" not in district and "测试小学0001" in district and "测试小学0003" not in district
    school = client.get(f"/bureau/school/{city['schools']['KM-TEST-0001']}").get_data(as_text=True)
    assert "heatmap" in school and "2 / 3" not in school and "&lt;5 / &lt;5" in school


def test_xlsx_export_opens_with_the_same_numbers(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    _bureau(app, signed_in)
    response = client.get("/bureau/export.xlsx")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    sheets = _sheets(response.data)
    assert len(sheets) == 6
    schools = list(sheets.values())[1]
    header, rows = schools[0], {row[1]: dict(zip(schools[0], row, strict=True)) for row in schools[1:]}
    assert len(header) == 17
    row = rows["KM-TEST-0001"]
    values = list(row.values())
    assert values[4] == "已发布"
    # Counts of children of 1 to 4 (and the rates and pupil-days that would tell them) as the pages show them;
    # the numbers behind them: test_figures_match_hand_computed_values.
    assert values[5:] == [1, 6, "<5", "<5", "不公开", 6, "<5", "不公开", "<5", 2, 1.5, 2]
    # The school not yet allocated has its requests and blank seat-side cells, never 0.
    unallocated = list(rows["KM-TEST-0003"].values())
    assert unallocated[4] == "尚未分配"
    assert unallocated[5:] == [1, "<5", "<5", None, None, "<5", None, None, None, None, None, None]
    districts = list(sheets.values())[0]
    assert districts[0][:5] == ["区", "学校", "已发布", "草稿", "尚未分配"]
    by_district = {r[0]: r for r in districts[1:]}
    assert set(by_district) == {"五华区", "盘龙区"}
    assert by_district["五华区"][1:5] == [2, 1, 1, 0] and by_district["五华区"][12] == "不公开"  # 2 unmet
    assert by_district["盘龙区"][1:5] == [1, 0, 0, 1] and by_district["盘龙区"][12] is None
    slots = list(sheets.values())[2]
    assert len(slots) == 1 + 5 * 3
    drafts = list(sheets.values())[4]
    assert [r[:2] for r in drafts[1:]] == [["五华区", 1]] and drafts[1][9] == "不公开"  # the draft: 2 of 3 days


def test_xlsx_rates_are_numbers_in_percent_format(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    with app.app_context():  # schools with nothing small beside the tiny city, whose rates are hidden: the smaller
        _large_school("KM-TEST-0060", "西山区", 60)  # is hidden too, so that the city's total does not tell them
        _large_school("KM-TEST-0048", "官渡区", 48)
    _bureau(app, signed_in)
    book = load_workbook(io.BytesIO(client.get("/bureau/export.xlsx").data))
    percent_columns = {"参与率", "覆盖率"}
    checked = hidden = 0
    for sheet in book.worksheets:
        header = [cell.value for cell in sheet[1]]
        rows = list(sheet.iter_rows(min_row=2))
        table = next((i for i, row in enumerate(rows) if all(cell.value is None for cell in row)), len(rows))
        for column, title in enumerate(header):
            for cell in (row[column] for row in rows[:table]):  # the first table of the sheet, under this header
                if title in percent_columns and isinstance(cell.value, str):
                    assert cell.value == "不公开", (sheet.title, title)  # a rate that would tell a small count
                    hidden += 1
                elif title in percent_columns and cell.value is not None:
                    assert isinstance(cell.value, int | float) and cell.data_type == "n", (sheet.title, title)
                    assert cell.number_format == PERCENT_FORMAT and cell.number_format.endswith("%")
                    checked += 1
                elif isinstance(cell.value, int | float):
                    assert "%" not in cell.number_format, (sheet.title, title)
    assert checked >= 4 and hidden >= 4
    [row] = [row for row in book.worksheets[1].iter_rows(min_row=2) if row[1].value == "KM-TEST-0060"]
    coverage = row[12]
    assert coverage.value == 0.5 and coverage.number_format == "0.0%"


# --------------------------------------------------------------------------- scope


def test_district_user_sees_only_their_district(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    _bureau(app, signed_in, district="盘龙区")
    response = client.get("/bureau/")
    assert (
        response.status_code == 302 and f"/bureau/district/{city['districts']['盘龙区']}" in response.location
    )
    assert client.get(f"/bureau/district/{city['districts']['五华区']}").status_code == 404
    assert client.get(f"/bureau/school/{city['schools']['KM-TEST-0001']}").status_code == 404
    assert client.get(f"/bureau/school/{city['schools']['KM-TEST-0003']}").status_code == 200
    assert client.get(f"/bureau/export.xlsx?school={city['schools']['KM-TEST-0001']}").status_code == 404
    assert client.get(f"/bureau/advice/{city['schools']['KM-TEST-0002']}").status_code == 404
    sheets = _sheets(client.get("/bureau/export.xlsx").data)
    codes = {row[1] for row in list(sheets.values())[1][1:]}
    assert codes == {"KM-TEST-0003"}
    with app.app_context():
        stats = city_stats(School.district_id == city["districts"]["盘龙区"])
        assert [s.school_code for s in stats.schools] == ["KM-TEST-0003"]


@pytest.mark.parametrize("role", ["school_admin", "parent"])
def test_other_roles_are_refused(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any], role: str
) -> None:
    signed_in(role)
    for url in (
        "/bureau/",
        f"/bureau/district/{city['districts']['五华区']}",
        f"/bureau/school/{city['schools']['KM-TEST-0001']}",
        "/bureau/export.xlsx",
        "/bureau/hiring",
        "/bureau/hiring.xlsx",
    ):
        assert client.get(url).status_code == 403, url
    assert post_form(client, "/bureau/batches", {}, token_from="/bureau/").status_code == 403
    assert client.get("/bureau/").status_code == 403


def test_anonymous_users_are_sent_to_login(client: FlaskClient, city: dict[str, Any]) -> None:
    response = client.get("/bureau/")
    assert response.status_code == 302 and "/login" in response.location


def test_batch_start_needs_csrf(app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]) -> None:
    _bureau(app, signed_in)
    assert client.post("/bureau/batches", data={}).status_code == 400


# --------------------------------------------------------------------------- privacy and languages


def _all_pages(client: FlaskClient, city: dict[str, Any]) -> list[tuple[str, bytes]]:
    urls = ["/bureau/", "/bureau/hiring"]
    urls += [f"/bureau/district/{d}" for d in city["districts"].values()]
    urls += [f"/bureau/school/{s}" for s in city["schools"].values()]
    urls += [f"/bureau/advice/{s}" for s in city["schools"].values()]
    out = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        out.append((url, response.data))
    for url in [
        "/bureau/export.xlsx",
        "/bureau/hiring.xlsx",
        *[f"/bureau/export.xlsx?school={s}" for s in city["schools"].values()],
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        text = "\n".join(
            str(cell) for rows in _sheets(response.data).values() for row in rows for cell in row
        )
        out.append((url, text.encode()))
    return out


def test_no_pupil_data_reaches_bureau_pages_or_exports(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    with app.app_context():
        school_id = city["schools"]["KM-TEST-0001"]
        db.session.add(
            CapacityAdvice(
                term_id=db.session.scalar(select(School).where(School.id == school_id)).terms[0].id,
                state="done",
                result=advice_to_json(
                    Advice(
                        10,
                        6,
                        10,
                        {"sports": 1},
                        (AdviceItem(3, "P3", {"sports": 1}, 25, 23),),
                        "OPTIMAL",
                        0.1,
                    )
                ),
            )
        )
        db.session.commit()
        pupils = db.session.execute(select(Pupil.name, Pupil.number)).all()
    parent = _bureau(app, signed_in)
    assert parent.role == "bureau"
    pages = _all_pages(client, city)
    for url, body in pages:
        text = body.decode("utf-8")
        for name, number in pupils:
            assert name not in text, (url, name)
            assert number not in text, (url, number)
        assert "13800138000" not in text


def test_pages_render_in_both_languages(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    _bureau(app, signed_in)
    zh = client.get("/bureau/").get_data(as_text=True)
    assert "覆盖率" in zh
    post_form(client, "/lang/en", {"next": "/bureau/"}, token_from="/bureau/")
    en = client.get("/bureau/").get_data(as_text=True)
    assert "Coverage across the city" in en and "覆盖率" not in en
    for _url, body in _all_pages(client, city):
        assert body


# --------------------------------------------------------------------------- advice


def test_advice_line_reads_like_a_sentence(app: Flask) -> None:
    item = {
        "day": 3,
        "period": "P3",
        "extra_teachers": {"sports": 1},
        "extra_seats": 25,
        "pupil_days_covered": 23,
    }
    with app.test_request_context("/"):
        assert advice_line(item) == "周三 P3：+1 名教师（体育），+25 个名额，可多覆盖 23 人日（按优先级加权）"
    with app.test_request_context("/", headers={"Cookie": "lang=en"}):
        assert advice_line(item) == "Wed P3: +1 teacher(s) (sports), +25 seats, 23 more pupil-days covered (weighted)"
    # advice stored before pupil-days were counted once says what it counted
    legacy = {"day": 3, "period": "P3", "extra_teachers": {}, "extra_seats": 25, "pupils_covered": 23}
    with app.test_request_context("/"):
        assert advice_line(legacy) == "周三 P3：+25 个名额，可多覆盖 23 名学生"


def test_advice_levels_say_what_is_proven(app: Flask) -> None:
    levels = (AdviceLevel("coverage", 40, 40, "OPTIMAL", 0.1), AdviceLevel("hired", 2, 2, "OPTIMAL", 0.1),
              AdviceLevel("hired_qualified", 1, 0, "FEASIBLE", 0.1), AdviceLevel("seats", 30, 27, "FEASIBLE", 0.1))
    result = advice_to_json(Advice(40, 30, 40, {"": 1, "sports": 1}, (), "FEASIBLE", 0.4, levels))
    with app.test_request_context("/"):
        assert advice_levels(result) == [
            "调整后覆盖 40，已证明为最多",
            "最少需要招聘 2 名教师，已证明",
            "其中需要资质的教师至少 0 名，找到的方案需要 1 名",
            "至少需要增加 27 个名额，找到的方案增加 30 个",
        ]
    with app.test_request_context("/", headers={"Cookie": "lang=en"}):
        assert advice_levels(result)[1] == "Teachers to hire: 2, the fewest possible (proven)"
        assert advice_levels(result)[3] == "Seats to add: at least 27; the plan found adds 30"


def _advice(hired: dict[str, int], items: list[AdviceItem], now: int, after: int) -> dict[str, Any]:
    return advice_to_json(
        Advice(
            demand=after,
            coverage_now=now,
            coverage_after=after,
            hired=hired,
            items=tuple(items),
            status="OPTIMAL",
            seconds=0.1,
        )
    )


def test_advice_rolls_up_by_district() -> None:
    a = _advice(
        {"sports": 1, "": 1},
        [
            AdviceItem(3, "P3", {"sports": 1}, 25, 23),
            AdviceItem(1, "P1", {"": 1}, 10, 8),
            AdviceItem(2, "P1", {"": 1}, 0, 4),
        ],
        50,
        85,
    )
    b = _advice({"arts": 2}, [AdviceItem(3, "P3", {"arts": 2}, 40, 30)], 100, 140)
    c = _advice({}, [AdviceItem(1, "P1", {}, 5, 5)], 20, 25)
    by_district, total = rollup_advice([("五华区", a), ("五华区", b), ("盘龙区", c)])
    wuhua = by_district["五华区"]
    assert wuhua.schools == 2
    assert wuhua.teachers == {"sports": 1, "": 1, "arts": 2}  # week totals, not one per slot worked
    assert wuhua.seats == {(3, "P3"): 65, (1, "P1"): 10, (2, "P1"): 0}
    assert wuhua.teachers_by_slot[(3, "P3")] == {"sports": 1, "arts": 2}
    assert wuhua.pupil_days_covered == 23 + 8 + 4 + 30
    assert total.total_teachers == 4 and total.total_seats == 80 and total.schools == 3
    assert total.seats[(1, "P1")] == 15
    assert (total.coverage_now, total.coverage_after) == (170, 250)
    # Without a week total, a tag seen at several slots counts once at its largest.
    legacy = HiringPlan()
    legacy.add(
        {
            "items": [
                {"day": 1, "period": "P1", "extra_teachers": {"": 1}, "extra_seats": 0, "pupils_covered": 1},
                {"day": 2, "period": "P1", "extra_teachers": {"": 2}, "extra_seats": 0, "pupils_covered": 1},
            ]
        }
    )
    assert legacy.teachers == {"": 2}


def test_hiring_plan_page_and_export(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    with app.app_context():
        for code, result in (
            ("KM-TEST-0001", _advice({"sports": 1}, [AdviceItem(3, "P3", {"sports": 1}, 25, 23)], 5, 9)),
            ("KM-TEST-0003", _advice({"": 2}, [AdviceItem(3, "P1", {"": 2}, 12, 10)], 0, 1)),
        ):
            school = db.session.get(School, city["schools"][code])
            assert school is not None
            term = max(school.terms, key=lambda t: t.id)
            db.session.add(CapacityAdvice(term_id=term.id, state="done", result=result))
        db.session.commit()
    _bureau(app, signed_in)
    page = client.get("/bureau/hiring").get_data(as_text=True)
    assert "体育" in page and "不限学科" in page
    sheets = _sheets(client.get("/bureau/hiring.xlsx").data)
    teachers = list(sheets.values())[0]
    total = teachers[-1]
    assert total[0] == "合计" and total[1] == 2 and total[-3:] == [3, 37, 33]
    seats = list(sheets.values())[1]
    assert ["合计", "周三", "P3", 25, "体育 1"] in seats


def test_school_admin_computes_advice_for_own_school_only(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    app.config.update(JOBS_INLINE=True, BUREAU_ADVICE_TIME_LIMIT=5)
    signed_in("school_admin")
    own, other = city["schools"]["KM-TEST-0001"], city["schools"]["KM-TEST-0002"]
    assert client.get(f"/bureau/advice/{other}").status_code == 403
    assert (
        post_form(
            client, f"/bureau/advice/{other}/compute", {}, token_from=f"/bureau/advice/{own}"
        ).status_code
        == 403
    )
    response = post_form(
        client, f"/bureau/advice/{own}/compute", {}, follow_redirects=True, token_from=f"/bureau/advice/{own}"
    )
    assert response.status_code == 200
    with app.app_context():
        row = db.session.scalar(select(CapacityAdvice).order_by(CapacityAdvice.id.desc()))
        assert row is not None and row.state == "done", row.error if row else None
        assert row.result is not None and row.result["demand"] >= row.result["coverage_after"] >= 0
        result = row.result
    page = response.get_data(as_text=True)
    assert "最新建议" in page
    # every level says whether it is proven or how far the proof got; the items add up to the total shown
    assert [level["name"] for level in result["levels"]] == ["coverage", "hired", "hired_qualified", "seats"]
    for level in result["levels"][1:]:
        assert ("已证明" if level["status"] == "OPTIMAL" else "找到的方案") in page
    gained = result["coverage_after"] - result["coverage_now"]
    assert result["gained"] == gained == sum(item["pupil_days_covered"] for item in result["items"])
    if result["items"]:
        assert f"合计可多覆盖 {gained} 人日（按优先级加权）" in page


def test_school_page_shows_fairness_counts_and_no_names(
    app: Flask, client: FlaskClient, signed_in: Any, city: dict[str, Any]
) -> None:
    school_id = city["schools"]["KM-TEST-0001"]
    with app.app_context():
        term = db.session.scalar(select(School).where(School.id == school_id)).terms[0]
        run = term.published_run
        run.metrics = compute_metrics(term_to_instance(term), run_to_solution(run))
        db.session.commit()
        worst = run.metrics["fairness"]["worst_served"]
        pupils = db.session.execute(select(Pupil.name, Pupil.number).where(Pupil.school_id == school_id)).all()
    assert worst, "the school admin's list names pupils the bureau must not see"
    _bureau(app, signed_in)
    page = client.get(f"/bureau/school/{school_id}").get_data(as_text=True)
    section = page[page.index('id="fairness"'):]
    section = section[:section.index("</section>")]
    # P001 and P004 every day, P002 on day 1 of 1-2, P003 on none (the hand-built run of seed_city).
    assert "公平性" in section and "&lt;5 / &lt;5 / &lt;5" in section and "2 / 1 / 1" not in section
    for name, number in pupils:
        assert name not in page and number not in page
    other = client.get(f"/bureau/school/{city['schools']['KM-TEST-0002']}").get_data(as_text=True)
    assert 'id="fairness"' not in other, "a run counted before fairness shows no block"
