"""The bureau's .xlsx exports: coverage by district, school, weekday x period and term, and the workbook
builder the hiring plan uses too. Cells are written through `webapp.tabular`, the app's one export path, so a
school or district name can never become a formula.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook

from webapp.bureau.stats import CityStats, Figures
from webapp.labels import DAY_NAMES
from webapp.tabular import XLSX_MIMETYPE, append_row, cell_text, workbook_bytes

Sheet = tuple[str, Sequence[Any], Iterable[Sequence[Any]]]
SOURCE_LABELS = {"published": _l("Published"), "draft": _l("Draft"), "none": _l("No allocation yet")}


FIGURE_HEADERS = (
    ("offering", _l("Schools offering service")),
    ("enrolled", _l("Pupils enrolled")),
    ("requesting", _l("Pupils requesting")),
    ("served", _l("Pupils served")),
    ("participation", _l("Participation rate")),
    ("requested_days", _l("Requested pupil-days")),
    ("covered_days", _l("Covered pupil-days")),
    ("coverage", _l("Coverage")),
    ("unmet_days", _l("Unmet pupil-days")),
    ("teachers", _l("Teachers taking part")),
    ("avg_load", _l("Average weekly load")),
    ("max_load", _l("Largest weekly load")),
)


def _figure_cells(figures: Figures) -> list[Any]:
    row = figures.as_row()
    return [round(row[key], 4) if isinstance(row[key], float) else row[key] for key, _ in FIGURE_HEADERS]


def workbook(sheets: Iterable[Sheet]) -> bytes:
    """An .xlsx file with one sheet per (title, headers, rows); the header row is frozen, every cell is text
    or a number (see `webapp.tabular`)."""
    book = Workbook()
    first = True
    for title, headers, rows in sheets:
        sheet = book.active if first else book.create_sheet()
        assert sheet is not None
        first = False
        sheet.title = cell_text(title)[:31]
        append_row(sheet, headers)
        for row in rows:
            append_row(sheet, row)
        sheet.freeze_panes = "A2"
    return workbook_bytes(book)


def xlsx_response(data: bytes, name: str) -> Response:
    return Response(data, mimetype=XLSX_MIMETYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def coverage_sheets(stats: CityStats) -> list[Sheet]:
    headers = [label for _, label in FIGURE_HEADERS]
    districts = [
        [d.name or _("No district"), d.figures.schools, *_figure_cells(d.figures)] for d in stats.districts
    ]
    schools = [
        [
            s.district_name,
            s.school_code,
            s.school_name,
            s.term_name,
            str(SOURCE_LABELS[s.source]),
            *_figure_cells(s.figures),
        ]
        for s in stats.schools
    ]
    slots = []
    for day in stats.weekdays:
        for period in stats.periods:
            asked, seated = stats.figures.slots.get((day, period), (0, 0))
            value = stats.figures.slot_coverage((day, period))
            slots.append(
                [
                    str(DAY_NAMES.get(day, day)),
                    period,
                    asked,
                    seated,
                    None if value is None else round(value, 4),
                ]
            )
    trend = [[name, figures.schools, *_figure_cells(figures)] for name, figures in stats.trend]
    return [
        (_("Districts"), [_("District"), _("Schools"), *headers], districts),
        (
            _("Schools"),
            [_("District"), _("School code"), _("School"), _("Term"), _("Source"), *headers],
            schools,
        ),
        (
            _("Weekday x period"),
            [_("Weekday"), _("Period"), _("Pupils requesting"), _("Pupils seated"), _("Coverage")],
            slots,
        ),
        (_("Trend"), [_("Term"), _("Schools"), *headers], trend),
    ]
