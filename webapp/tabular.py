"""The one way the app writes spreadsheet cells: every .xlsx and .csv it produces goes through here.

Names, rooms and classes come from parents and school staff, so a value is always written as text, never as
a formula: in .xlsx a string cell (with Excel's quote prefix when it starts like a formula), in .csv a leading
apostrophe before `= + - @`, tab, carriage return or newline. Characters a workbook cannot hold (C0 controls,
lone surrogates) become U+FFFD, so stored data can never make an export fail.

A share is written as a number, not as text: wrap it in `Percent` (0.25 for 25 %) and the .xlsx cell holds 0.25
with the number format `PERCENT_FORMAT`, so a spreadsheet shows "25.0%" and still sums and sorts it.

Large exports (rosters of a 3,000-pupil school: hundreds of sheets, ~100,000 styled cells) use `StreamingBook`,
written with XlsxWriter, whose per-cell cost is a fraction of openpyxl's (openpyxl builds a cell object and
serialises its style for every cell). Small workbooks (imports' templates, bureau and hours exports) use
openpyxl through `append_row` / `set_cell`, which follow the same rules.
"""

from __future__ import annotations

import csv
import gc
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Self

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook as XlsxWorkbook
from xlsxwriter.worksheet import Worksheet as XlsxWorksheet

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIMETYPE = "text/csv; charset=utf-8"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
_UNWRITABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_PLAIN_TYPES = (bool, int, float, Decimal, datetime, date, time)
PERCENT_FORMAT = "0.0%"
_NUMBER_FORMATS = {"percent": PERCENT_FORMAT, "date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm:ss",
                   "time": "hh:mm:ss"}


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


class StreamingSheet:
    """One worksheet of a `StreamingBook`: rows are appended top to bottom, the page set up at any time."""

    def __init__(self, book: StreamingBook, worksheet: XlsxWorksheet) -> None:
        self._book = book
        self.worksheet = worksheet
        self.rows = 0  # rows written so far; the next row is `rows + 1` (1-based, as in a spreadsheet)

    @property
    def title(self) -> str:
        return str(self.worksheet.name)

    def widths(self, widths: Sequence[float]) -> None:
        """Column widths in characters, from column A on."""
        for index, width in enumerate(widths):
            self.worksheet.set_column(index, index, width)

    def row_height(self, row: int, height: float) -> None:
        """The height of 1-based `row` in points."""
        self.worksheet.set_row(row - 1, height)

    def freeze(self, cell: str) -> None:
        """Freeze the rows above and the columns left of `cell` ("A4": the first three rows)."""
        self.worksheet.freeze_panes(cell)

    def print_setup(self, *, title_row: int | None = None, landscape: bool = False, fit_width: bool = True,
                    centred: bool = True) -> None:
        """A4; `title_row` repeated on every printed page; landscape or portrait; fit to one page wide."""
        self.worksheet.set_paper(9)  # A4
        if landscape:
            self.worksheet.set_landscape()
        else:
            self.worksheet.set_portrait()
        if title_row is not None:
            self.worksheet.repeat_rows(title_row - 1)
        if fit_width:
            self.worksheet.fit_to_pages(1, 0)
        if centred:
            self.worksheet.center_horizontally()


class StreamingBook:
    """A workbook written row by row (XlsxWriter, in memory), every value through the rules above.

    Use it as a context manager (`with StreamingBook() as book:`) for big exports, see `__enter__`.
    Styles are registered once by name (`style`) and shared by every cell that uses them; a text cell that looks
    like a formula gets the same style with Excel's quote prefix, a `Percent` the same style with `PERCENT_FORMAT`.
    XlsxWriter is told never to turn text into formulas, numbers or links, and every value is written with the
    writer of its own type, so the file holds only string, number, boolean and blank cells.
    """

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self.book = XlsxWorkbook(self._buffer, {
            "in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
            "strings_to_urls": False, "nan_inf_to_errors": True})
        self._styles: dict[str, dict[str, Any]] = {"": {}}
        self._formats: dict[tuple[str, str], Format | None] = {}
        self.sheets: list[StreamingSheet] = []
        self._collecting = False

    def __enter__(self) -> Self:
        """Pause the cyclic garbage collector while the book is built: a big export allocates ~100,000 small
        cell records that hold no cycles, and the collections they trigger (each scanning every object of the
        process) took a third of an export's time. Restored on leaving, whatever happens."""
        self._collecting = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._collecting:
            gc.enable()

    def sheet(self, title: str) -> StreamingSheet:
        """A new worksheet; `title` must already be a valid, unique sheet name (see rosters' `sheet_title`)."""
        sheet = StreamingSheet(self, self.book.add_worksheet(title))
        self.sheets.append(sheet)
        return sheet

    def style(self, name: str, *, bold: bool = False, size: float | None = None, fill: str | None = None,
              border: str | None = None, align: str | None = None, valign: str | None = None,
              wrap: bool = False) -> str:
        """Register the style `name` once: bold, font size, fill colour ("#E8EEF7"), thin border of colour
        `border`, horizontal `align` ("center"), vertical `valign` ("center"), wrapped text. Returns its name."""
        if name not in self._styles:
            properties: dict[str, Any] = {}
            if bold:
                properties["bold"] = True
            if size is not None:
                properties["font_size"] = size
            if fill is not None:
                properties.update(pattern=1, bg_color=fill)
            if border is not None:
                properties.update(border=1, border_color=border)
            if align is not None:
                properties["align"] = align
            if valign is not None:
                properties["valign"] = "vcenter" if valign == "center" else valign
            if wrap:
                properties["text_wrap"] = True
            self._styles[name] = properties
        return name

    def _format(self, style: str, variant: str) -> Format | None:
        """The shared format of `style` ("" for none) for plain cells ("") or a variant ("quote", "percent",
        "date", "datetime", "time"); created on first use."""
        key = (style, variant)
        if key not in self._formats:
            properties = dict(self._styles[style])
            if variant == "quote":
                properties["quote_prefix"] = True
            elif variant:
                properties["num_format"] = _NUMBER_FORMATS[variant]
            self._formats[key] = self.book.add_format(properties) if properties else None
        return self._formats[key]

    def row(self, sheet: StreamingSheet, values: Iterable[Any], style: str | None = None, *,
            merge_to: int | None = None) -> None:
        """Append one row, every cell in `style`. With `merge_to`, the row's single value is written in cells
        1 to `merge_to` merged (a title line)."""
        name = style or ""
        plain = self._format(name, "")
        ws = sheet.worksheet
        row = sheet.rows
        sheet.rows += 1
        if merge_to is not None:
            (value,) = values
            if merge_to > 1:
                ws.merge_range(row, 0, row, merge_to - 1, "", plain)
            self._write(ws, row, 0, value, name, plain)
            return
        write_string, write_number = ws.write_string, ws.write_number
        for column, value in enumerate(values):
            if type(value) is str and value:  # the common case first: a name, a class, a room
                text = _UNWRITABLE.sub("\ufffd", value)
                if text.startswith(FORMULA_STARTS) or text.lstrip(" ").startswith(FORMULA_STARTS[:4]):
                    write_string(row, column, text, self._format(name, "quote"))
                else:
                    write_string(row, column, text, plain)
            elif type(value) is int:
                write_number(row, column, value, plain)
            else:
                self._write(ws, row, column, value, name, plain)

    def _write(self, ws: XlsxWorksheet, row: int, column: int, value: Any, style: str, plain: Format | None) -> None:
        if value is None or value == "":  # an empty cell, styled (its border printed) when there is a style
            if plain is not None:
                ws.write_blank(row, column, None, plain)
        elif isinstance(value, bool):
            ws.write_boolean(row, column, value, plain)
        elif isinstance(value, (int, float, Decimal)):
            ws.write_number(row, column, float(value) if isinstance(value, Decimal) else value, plain)
        elif isinstance(value, Percent):
            ws.write_number(row, column, value.value, self._format(style, "percent"))
        elif isinstance(value, (datetime, date, time)):
            variant = "datetime" if isinstance(value, datetime) else "date" if isinstance(value, date) else "time"
            ws.write_datetime(row, column, value, self._format(style, variant))
        else:
            text = cell_text(value)
            ws.write_string(row, column, text, self._format(style, "quote") if looks_like_formula(text) else plain)

    def bytes(self) -> bytes:
        self.book.close()
        return self._buffer.getvalue()


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
