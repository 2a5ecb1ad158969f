"""The streaming workbook behind large roster exports, and the roster reads' statement counts."""

from __future__ import annotations

import gc
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import event

from tests.webapp.rosters.test_rosters import World, _base
from tests.webapp.rosters.test_rosters import admin as admin  # noqa: F401  (fixture)
from tests.webapp.rosters.test_rosters import world as world  # noqa: F401  (fixture)
from webapp.extensions import db
from webapp.tabular import PERCENT_FORMAT, Percent, StreamingBook


def test_streaming_book_keeps_text_inert_and_styles_every_cell() -> None:
    book = StreamingBook()
    sheet = book.sheet("名单")
    bold = book.style("bold-boxed", bold=True, border="#999999")
    sheet.widths([18])
    sheet.freeze("A2")
    book.row(sheet, ["=HYPERLINK(\"x\")", 7, None, "李\x01明"], bold)
    book.row(sheet, ["plain", "+1+1", "  @SUM(A1)", "-", "1.5", "https://example.org"])
    book.row(sheet, ["merged"], merge_to=4)
    ws = load_workbook(io.BytesIO(book.bytes()))["名单"]
    assert [c.value for c in ws[1]][:4] == ['=HYPERLINK("x")', 7, None, "李\ufffd明"]
    assert ws["A1"].data_type == "s" and ws["A1"].quotePrefix and ws["A1"].font.b
    assert ws["B1"].font.b and ws["C1"].border.left.style == "thin" and not ws["B1"].quotePrefix
    assert ws["A2"].font.b is False and ws["B2"].data_type == "s" and ws["B2"].quotePrefix
    assert ws["C2"].quotePrefix and ws["D2"].quotePrefix
    assert [ws.cell(2, c).data_type for c in (5, 6)] == ["s", "s"] and ws["E2"].value == "1.5"
    assert not ws["E2"].quotePrefix and not ws["F2"].hyperlink
    assert str(ws.merged_cells) == "A3:D3" and ws["A3"].value == "merged" and ws.freeze_panes == "A2"
    assert ws.column_dimensions["A"].width == pytest.approx(18, abs=1)


def test_streaming_book_writes_shares_dates_and_page_setup() -> None:
    book = StreamingBook()
    sheet = book.sheet("比例")
    sheet.print_setup(title_row=2, landscape=True)
    sheet.row_height(2, 36)
    boxed = book.style("boxed", border="#999999", wrap=True, valign="center")
    book.row(sheet, [Percent(0.256), Percent(0.5), date(2026, 9, 1), Decimal("2.5"), True, 3.25], boxed)
    book.row(sheet, [Percent(0.1)])
    ws = load_workbook(io.BytesIO(book.bytes()))["比例"]
    assert ws["A1"].value == 0.256 and ws["A1"].number_format == PERCENT_FORMAT and ws["A1"].border.top.style
    assert ws["A1"].alignment.wrap_text and ws["A1"].alignment.vertical == "center"
    assert ws["C1"].value == datetime(2026, 9, 1) and ws["C1"].is_date
    assert [ws["D1"].value, ws["E1"].value, ws["F1"].value] == [2.5, True, 3.25]
    assert ws["A2"].value == 0.1 and ws["A2"].number_format == PERCENT_FORMAT
    assert ws.page_setup.orientation == "landscape" and str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4
    assert ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight == 0  # 1 is the default
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.print_title_rows.replace("$", "") == "2:2" and ws.row_dimensions[2].height == 36


def test_streaming_book_pauses_collection_only_while_building() -> None:
    assert gc.isenabled()
    with pytest.raises(ValueError), StreamingBook() as book:
        assert not gc.isenabled()
        book.row(book.sheet("一"), [1])
        raise ValueError("a failed export")
    assert gc.isenabled()  # restored after a failure too
    gc.disable()
    try:
        with StreamingBook() as book:
            book.row(book.sheet("一"), [1])
            assert load_workbook(io.BytesIO(book.bytes()))["一"]["A1"].value == 1
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def _statements(app: Flask, client: FlaskClient, url: str) -> int:
    with app.app_context():
        engine = db.engine
    count = 0

    def counted(*_args: object) -> None:
        nonlocal count
        count += 1

    event.listen(engine, "before_cursor_execute", counted)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count


def test_roster_reads_one_query_per_table(app: Flask, admin: FlaskClient, world: World) -> None:  # noqa: F811
    """The sheets come from a fixed number of statements whatever the school's size (no lazy load per row)."""
    for page in ("sessions", "sessions.xlsx", "classes", "teachers"):
        assert _statements(app, admin, f"{_base(world)}/{page}") <= 12, page


def test_sessions_page_one_weekday_at_a_time(app: Flask, admin: FlaskClient, world: World) -> None:  # noqa: F811
    from sqlalchemy import select

    from webapp.models import RunAssignment, Session
    with app.app_context():
        days = sorted(set(db.session.scalars(select(Session.day).join(
            RunAssignment, RunAssignment.session_id == Session.id).where(RunAssignment.run_id == world.run_id))))
        codes = {day: set(db.session.scalars(select(Session.code).join(
            RunAssignment, RunAssignment.session_id == Session.id)
            .where(RunAssignment.run_id == world.run_id, Session.day == day))) for day in days}
    assert len(days) > 1

    def shown(query: str) -> set[str]:
        page = admin.get(f"{_base(world)}/sessions{query}").get_data(as_text=True)
        return {code for day_codes in codes.values() for code in day_codes if f"<h1>{code} " in page}

    assert shown("") == codes[days[0]]  # the first weekday by default
    assert shown(f"?day={days[1]}") == codes[days[1]]
    assert shown("?day=all") == set().union(*codes.values())
    assert shown("?day=9") == codes[days[0]]


def test_prebuilt_page_rows_escape_names_and_show_each_day(app: Flask, admin: FlaskClient,  # noqa: F811
                                                           world: World) -> None:  # noqa: F811
    """The attendance and dismissal rows built in Python escape what parents and staff typed, like Jinja."""
    from sqlalchemy import select

    from webapp.models import Period, Pupil, RunAssignment, Session
    with app.app_context():
        seat = db.session.execute(select(RunAssignment).where(RunAssignment.run_id == world.run_id)).scalars().first()
        assert seat is not None
        pupil, session = db.session.get(Pupil, seat.pupil_id), db.session.get(Session, seat.session_id)
        assert pupil is not None and session is not None
        period = db.session.get(Period, session.period_id)
        assert period is not None
        pupil.name, session.room = '<b>"小&明"</b>', "<i>101</i>"
        class_name, number, day, start = pupil.class_name, pupil.number, session.day, period.start
        db.session.commit()
    week = admin.get(f"{_base(world)}/sessions?day=all").get_data(as_text=True)
    assert "<b>" not in week and '<td>&lt;b&gt;&#34;小&amp;明&#34;&lt;/b&gt;</td>' in week
    assert f"<td>{number}</td>" in week and "<i>" not in week
    page = admin.get(f"{_base(world)}/classes/{class_name}").get_data(as_text=True)
    assert "<b>" not in page and "<i>" not in page and "&lt;b&gt;&#34;小&amp;明&#34;&lt;/b&gt;" in page
    assert " · &lt;i&gt;101&lt;/i&gt;</div>" in page and f"<div>{start} " in page
    assert '<div class="pickup">' in page and " 接</div>" in page
    whole = admin.get(f"{_base(world)}/classes").get_data(as_text=True)
    assert '<td><span class="home">回家/家长接</span></td>' in whole and day in range(1, 8)


def test_roster_reads_on_postgresql(pg_app: Flask) -> None:
    """The seats read as id pairs and the pupils once give the same sheets on PostgreSQL: every seat on its
    session's sheet and its pupil's dismissal row, and the workbook has one row per seat."""
    from sqlalchemy import func, select

    from tests.webapp.factories import create_user, generated_term, sign_in
    from webapp.models import RunAssignment
    with pg_app.app_context():
        term, run = generated_term()
        create_user("school_admin", school=term.school, login="pg-roster-admin")
        term_id, run_id = term.id, run.id
        seats = db.session.scalar(select(func.count()).select_from(RunAssignment)
                                  .where(RunAssignment.run_id == run_id))
    client = pg_app.test_client()
    sign_in(client, "pg-roster-admin")
    week = client.get(f"/admin/rosters/{term_id}/sessions?day=all").get_data(as_text=True)
    assert week.count('<td class="tick">') == seats > 0
    classes = client.get(f"/admin/rosters/{term_id}/classes").get_data(as_text=True)
    assert classes.count("</div><div class=\"pickup\">") > 0
    response = client.get(f"/admin/rosters/{term_id}/sessions.xlsx")
    wb = load_workbook(io.BytesIO(response.data))
    assert sum(ws.max_row - 3 for ws in wb.worksheets) == seats


def test_sheet_titles_fit_excel_counting_utf16_units() -> None:
    """A name of emoji (two UTF-16 units each) or with apostrophes still gives a sheet XlsxWriter accepts."""
    from webapp.rosters.exports import sheet_title
    taken: set[str] = set()
    book = StreamingBook()
    names = ["🏀" * 40, "🏀" * 40, "'" + "a" * 29 + "'b", "a" * 30 + "'" + "c", "课[1]:*?/\\"]
    for name in names:
        book.row(book.sheet(sheet_title(name, taken)), [name])
    wb = load_workbook(io.BytesIO(book.bytes()))
    assert len(wb.sheetnames) == 5 and len({title.lower() for title in wb.sheetnames}) == 5
    assert all(len(title.encode("utf-16-le")) <= 62 and not title.endswith("'") for title in wb.sheetnames)
    assert wb.sheetnames[0] == "🏀" * 15 and wb.sheetnames[1] == "🏀" * 14 + "~2"
    assert wb.sheetnames[4] == "课_1______"


def test_roster_workbooks_keep_their_print_look(admin: FlaskClient, world: World) -> None:  # noqa: F811
    """Title, header and body styles, merged title rows, print titles, A4 fit to width, teachers' row heights."""
    def book(kind: str) -> Any:
        return load_workbook(io.BytesIO(admin.get(f"{_base(world)}/{kind}.xlsx").data))

    ws = book("sessions").worksheets[0]
    assert ws["A1"].font.b and ws["A1"].font.sz == 14 and {"A1:E1", "A2:E2"} <= set(map(str, ws.merged_cells))
    header, body = ws["A3"], ws["C4"]
    assert header.font.b and header.fill.fgColor.rgb.endswith("E8EEF7") and header.border.bottom.style == "thin"
    assert header.alignment.horizontal == "center" and header.alignment.vertical == "center"
    assert body.border.left.style == "thin" and body.alignment.wrap_text and not body.font.b
    assert ws["E4"].value is None and ws["E4"].border.right.style == "thin"  # the empty tick box is boxed
    assert ws.print_title_rows.replace("$", "") == "3:3" and ws.page_setup.orientation == "portrait"
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToHeight == 0
    assert ws.print_options.horizontalCentered
    assert book("classes").worksheets[0].page_setup.orientation == "landscape"
    teachers = book("teachers").worksheets[0]
    assert teachers.freeze_panes == "B4" and teachers.row_dimensions[4].height == 36
