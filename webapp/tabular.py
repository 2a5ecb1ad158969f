"""The one way the app writes spreadsheet cells: every .xlsx and .csv it produces goes through here.

Names, rooms and classes come from parents and school staff, so a value is always written as text, never as
a formula: in .xlsx a string cell (with Excel's quote prefix when it starts like a formula), in .csv a leading
apostrophe before `= + - @`, tab, carriage return or newline. Characters a workbook cannot hold (C0 controls,
lone surrogates) become U+FFFD, so stored data can never make an export fail.

A share is written as a number, not as text: wrap it in `Percent` (0.25 for 25 %) and the .xlsx cell holds 0.25
with the number format `PERCENT_FORMAT`, so a spreadsheet shows "25.0%" and still sums and sorts it.

Large exports (rosters of a 3,000-pupil school) use `StreamingBook`: a write-only workbook whose rows go
straight to the file, and whose cell styles are registered once as named styles and then copied by index,
because openpyxl hashes every style object assigned to a cell and that dominates a styled export's time.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from copy import copy
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import NamedStyle
from openpyxl.styles.cell_style import StyleArray
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.worksheet import Worksheet

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIMETYPE = "text/csv; charset=utf-8"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
_UNWRITABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_PLAIN_TYPES = (bool, int, float, Decimal, datetime, date, time)
PERCENT_FORMAT = "0.0%"


@dataclass(frozen=True)
class Percent:
    """A share to be written as a percentage: `Percent(0.25)` is a cell holding 0.25 shown as 25.0%."""

    value: float

    @classmethod
    def of(cls, value: float | None, digits: int = 4) -> Percent | None:
        """`value` rounded to `digits` decimals as a Percent, or None (an empty cell) when there is no value."""
        return None if value is None else cls(round(float(value), digits))


def cell_text(value: Any) -> str:
    """`value` as a string a workbook can hold: unwritable characters replaced by U+FFFD."""
    return _UNWRITABLE.sub("\ufffd", str(value))


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet program could read `text` as a formula (leading spaces do not protect it)."""
    return text.startswith(FORMULA_STARTS) or text.lstrip(" ").startswith(FORMULA_STARTS[:4])


def text_cell(sheet: Worksheet | WriteOnlyWorksheet, value: Any) -> Cell | Any:
    """A cell for `sheet.append`: numbers, dates and None as they are, a `Percent` as a number in percent format,
    anything else as inert text."""
    if value is None or isinstance(value, _PLAIN_TYPES):
        return value
    if isinstance(value, Percent):
        number = Cell(sheet, value=value.value)
        number.number_format = PERCENT_FORMAT
        return number
    text = cell_text(value)
    cell = Cell(sheet, row=1, column=1, value=text)  # placed by append; a write-only sheet needs a position
    cell.data_type = "s"  # openpyxl would otherwise store a leading "=" as a formula
    if looks_like_formula(text):
        cell.quotePrefix = True  # Excel keeps it text even when the cell is edited
    return cell


def append_row(sheet: Worksheet, values: Iterable[Any]) -> None:
    """Append one row of values to `sheet`, each written through `text_cell`."""
    sheet.append([text_cell(sheet, value) for value in values])


def set_cell(sheet: Worksheet, row: int, column: int, value: Any) -> Cell:
    """Write `value` at (row, column) the way `text_cell` does and return the cell for styling."""
    cell: Cell = sheet.cell(row=row, column=column)
    written = text_cell(sheet, value)
    if isinstance(written, Cell):
        cell.value = written.value
        if written.data_type == "s":
            cell.data_type = "s"
            cell.quotePrefix = written.quotePrefix
        else:
            cell.number_format = written.number_format
    else:
        cell.value = written
    return cell


class _StreamingSheet(WriteOnlyWorksheet):
    """A write-only sheet fed ready-made cells by `StreamingBook.row`, placed as they are (openpyxl's own
    write-only sheet tries each value as a plain value first and only then as a cell, which costs an exception
    per cell)."""

    def _values_to_row(self, values: Iterable[Cell], row_idx: int) -> Iterator[Cell]:
        for col_idx, cell in enumerate(values, start=1):
            cell.row = row_idx
            cell.column = col_idx
            yield cell


class StreamingBook:
    """A write-only workbook: sheets are written top to bottom, row by row, every value through `text_cell`.

    A sheet's column widths, frozen panes and print setup must be set before its first row (they precede the
    rows in the file); merged ranges may be added at any time with `merge`.
    """

    def __init__(self) -> None:
        self.book = Workbook(write_only=True)
        self._styles: dict[str, StyleArray] = {}

    def sheet(self, title: str) -> WriteOnlyWorksheet:
        sheet = _StreamingSheet(parent=self.book, title=title)
        self.book._add_sheet(sheet)  # what `create_sheet` does for its own write-only sheets
        return sheet

    def style(self, name: str, **attributes: Any) -> str:
        """Register the named style `name` (font=, fill=, border=, alignment=) once; returns its name."""
        if name not in self._styles:
            style = NamedStyle(name=name, **attributes)
            self.book.add_named_style(style)
            self._styles[name] = style.as_tuple()
        return name

    def row(self, sheet: WriteOnlyWorksheet, values: Iterable[Any], style: str | None = None) -> None:
        """Append one row; every cell gets the named style `style`, shared by index (no style hashing)."""
        shared = self._styles[style] if style is not None else None
        cells = []
        for value in values:
            cell = text_cell(sheet, value)
            if not isinstance(cell, Cell):
                cell = Cell(sheet, row=1, column=1, value=cell)
            if shared is not None:
                if cell.quotePrefix:
                    cell._style = copy(shared)
                    cell.quotePrefix = True
                else:
                    cell._style = shared  # written at once and dropped, so one array serves every cell
            cells.append(cell)
        sheet.append(cells)

    @staticmethod
    def merge(sheet: WriteOnlyWorksheet, row: int, first_column: int, last_column: int) -> None:
        sheet.merged_cells.add(CellRange(min_row=row, max_row=row, min_col=first_column, max_col=last_column))

    def bytes(self) -> bytes:
        return workbook_bytes(self.book)


def workbook_bytes(book: Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def csv_value(value: Any) -> Any:
    """A CSV field: text that could start a formula gets a leading apostrophe, as spreadsheet programs expect."""
    if value is None or isinstance(value, _PLAIN_TYPES):
        return "" if value is None else value
    if isinstance(value, Percent):
        return value.value
    text = cell_text(value)
    return "'" + text if looks_like_formula(text) else text


def csv_bytes(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as RFC 4180 CSV in UTF-8 with a BOM, so that Excel opens Chinese text correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect=csv.excel, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_value(value) for value in row])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")
