"""The bureau's .xlsx exports: coverage by district, school, weekday x period and term, and the workbook
builder the hiring plan uses too. Cells are written through `webapp.tabular`, the app's one export path, so a
school or district name can never become a formula, and every rate is a number in percent format (`Percent`).

As on the pages (docs/bureau.md): district, slot and trend figures are those of published allocations; draft
allocations have their own sheet; a school not yet allocated has its requests and no seat-side figure. The
fairness sheet gives the published and draft totals of the export and of each district apart, then each allocated
school, then (below an empty row, under its own header row) pupils served by priority group for the total and each
district, published and drafts apart: counts and shares only, never a pupil.

Every count of children (pupils enrolled, requesting, served, pupil-days, the fairness counts, each weekday x
period's pupils) is written as the bureau's pages show it: a small count, or one that would tell it, is the text
"<5" or "hidden" in the reader's language (`webapp.bureau.stats.shown_area`, `shown_slot`, `shown_groups`), never
its number, and so is a rate or share computed from one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook

from webapp.bureau.stats import (
    CityStats,
    GroupRow,
    Rollup,
    ShownArea,
    ShownPage,
    Source,
    shown_page,
    shown_slot,
)
from webapp.labels import DAY_NAMES
from webapp.models import PriorityGroup
from webapp.tabular import XLSX_MIMETYPE, Percent, append_row, cell_text, workbook_bytes

Sheet = tuple[str, Sequence[Any], Iterable[Sequence[Any]]]
SOURCE_LABELS = {
    Source.PUBLISHED: _l("Published"),
    Source.DRAFT: _l("Draft"),
    Source.NOT_ALLOCATED: _l("Not yet allocated"),
}
RATES = frozenset({"participation", "coverage"})


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


FAIRNESS_HEADERS = (
    ("schools", _l("Schools with fairness figures")),
    ("fully", _l("Pupils served every requested day")),
    ("partly", _l("Pupils served some requested days")),
    ("not_at_all", _l("Pupils served no requested day")),
    ("first", _l("Placements in the 1st choice (%)")),
    ("top", _l("Placements in a top-3 choice (%)")),
    ("unlisted", _l("Placements in no listed choice (%)")),
    ("justified_envy", _l("Justified envy (pupil-days)")),
    ("idle_seats", _l("Empty seats while pupils wait")),
    ("split_families", _l("Families split on a day")),
)
FAIRNESS_SHARES = frozenset({"first", "top", "unlisted"})


GROUP_HEADERS = (
    _l("Pupils requesting"),
    _l("Pupils served every requested day"),
    _l("Pupils served some requested days"),
    _l("Pupils served no requested day"),
    _l("Share served every requested day"),
)


def _group_rows(area: str, source: str, rows: list[GroupRow] | None) -> list[list[Any]]:
    """The rows of one area and source by priority group, as shown (`ShownPage.groups`); one row saying so when
    no school here recorded groups."""
    if rows is None:
        return [[area, source, _("No figures by priority group"), None, None, None, None, None]]
    return [[area, source, row.name, row.requesting, row.fully, row.partly, row.not_at_all,
             row.share_fully if isinstance(row.share_fully, str) else Percent.of(row.share_fully)] for row in rows]


def _cell(value: Any, share: bool) -> Any:
    """A shown figure as a cell: a hidden one stays its text, a share a `Percent`, other numbers as they are."""
    if isinstance(value, str) or value is None:
        return value
    if share:
        return Percent.of(value)
    return round(value, 4) if isinstance(value, float) else value


def _fairness_cells(shown: ShownArea) -> list[Any]:
    row = shown.fairness
    return [_cell(row[key], key in FAIRNESS_SHARES) for key, _ in FAIRNESS_HEADERS]


def _figure_cells(shown: ShownArea) -> list[Any]:
    row = shown.figures
    return [_cell(row[key], key in RATES) for key, _ in FIGURE_HEADERS]


def _counts(rollup: Rollup) -> list[int]:
    return [rollup.schools, rollup.published.schools, rollup.draft.schools, rollup.not_allocated.schools]


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


def coverage_sheets(stats: CityStats, groups: Sequence[PriorityGroup] = (), page: ShownPage | None = None,
                    ) -> list[Sheet]:
    """The bureau's workbook; `groups` are the city's priority groups (`city_groups()`), for the rows by group;
    `page`: what the bureau's page of the same area shows (`shown_page`: by default, `stats` as a whole scope)."""
    headers = [label for _, label in FIGURE_HEADERS]
    counts = [_("Schools"), _("Published"), _("Draft"), _("Not yet allocated")]
    shown = page or shown_page(stats, stats, groups=groups)
    districts = [[d.name or _("No district"), *_counts(d.rollup),
                  *_figure_cells(shown.district(d.district_id, Source.PUBLISHED))] for d in stats.districts]
    drafts = [[d.name or _("No district"), d.rollup.draft.schools,
               *_figure_cells(shown.district(d.district_id, Source.DRAFT))]
              for d in stats.districts if d.rollup.draft.schools]
    schools = [
        [
            s.district_name,
            s.school_code,
            s.school_name,
            s.term_name,
            str(SOURCE_LABELS[s.source]),
            *_figure_cells(shown.schools[s.school_id]),
        ]
        for s in stats.schools
    ]
    published = stats.rollup.published
    slots = []
    for day in stats.weekdays:
        for period in stats.periods:
            asked, seated, value = shown_slot(published, (day, period), shown.headline[Source.PUBLISHED])
            slots.append([str(DAY_NAMES.get(day, day)), period, asked, seated, _cell(value, True)])
    trend = [[name, *_counts(rollup), *_figure_cells(trend_shown)]
             for (name, rollup), trend_shown in zip(stats.trend, shown.trend, strict=True)]
    published_label, draft_label = str(SOURCE_LABELS[Source.PUBLISHED]), str(SOURCE_LABELS[Source.DRAFT])
    fairness = [[_("Total"), None, None, published_label, *_fairness_cells(shown.headline[Source.PUBLISHED])]]
    if stats.rollup.draft.schools:
        fairness.append([_("Total"), None, None, draft_label, *_fairness_cells(shown.headline[Source.DRAFT])])
    for d in stats.districts:
        name = d.name or _("No district")
        fairness.append([name, None, None, published_label,
                         *_fairness_cells(shown.district(d.district_id, Source.PUBLISHED))])
        if d.rollup.draft.schools:
            fairness.append([name, None, None, draft_label,
                             *_fairness_cells(shown.district(d.district_id, Source.DRAFT))])
    fairness += [[s.district_name, s.school_code, s.school_name, str(SOURCE_LABELS[s.source]),
                  *_fairness_cells(shown.schools[s.school_id])] for s in stats.schools if s.figures.allocated]
    fairness += [[], [_("District"), _("Source"), _("Priority group"), *(str(label) for label in GROUP_HEADERS)]]
    fairness += _group_rows(_("Total"), published_label, shown.groups(Source.PUBLISHED))
    if stats.rollup.draft.schools:
        fairness += _group_rows(_("Total"), draft_label, shown.groups(Source.DRAFT))
    for d in stats.districts:
        name = d.name or _("No district")
        fairness += _group_rows(name, published_label, shown.groups(Source.PUBLISHED, d.district_id))
        if d.rollup.draft.schools:
            fairness += _group_rows(name, draft_label, shown.groups(Source.DRAFT, d.district_id))
    return [
        (_("Districts (published)"), [_("District"), *counts, *headers], districts),
        (
            _("Schools"),
            [_("District"), _("School code"), _("School"), _("Term"), _("Source"), *headers],
            schools,
        ),
        (
            _("Weekday x period (published)"),
            [_("Weekday"), _("Period"), _("Pupils requesting"), _("Pupils seated"), _("Coverage")],
            slots,
        ),
        (_("Trend (published)"), [_("Term"), *counts, *headers], trend),
        (_("Drafts (not published)"), [_("District"), _("Schools"), *headers], drafts),
        (
            _("Fairness"),
            [_("District"), _("School code"), _("School"), _("Source"), *(label for _, label in FAIRNESS_HEADERS)],
            fairness,
        ),
    ]
