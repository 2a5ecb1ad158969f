"""Reading an uploaded table (.xlsx or .csv) into plain rows, and writing the blank templates.

Uploads are hostile until proven otherwise: the byte size, the unpacked size of every zip entry and the row
count are checked before anything is parsed, and every failure becomes one sentence for the user.
"""

from __future__ import annotations

import csv
import io
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from flask_babel import gettext as _
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font

from webapp.tabular import append_row, csv_bytes, workbook_bytes

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
MAX_ROWS = 20_000
MAX_COLUMNS = 100  # the widest template has about 40; cells further right are never read
EXCEL_ERRORS = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A",
                          "#GETTING_DATA"})


class FileRejected(Exception):
    """The file as a whole cannot be read; the message is a sentence in the user's language."""


@dataclass(frozen=True)
class Cell:
    """One cell: its value as read, and whether it is a formula whose result was never saved."""

    value: Any = None
    formula_without_value: bool = False

    @property
    def blank(self) -> bool:
        if self.formula_without_value:
            return False
        return self.value is None or (isinstance(self.value, str) and not clean_text(self.value))


@dataclass
class Table:
    """The first sheet: the header row as written, then data rows numbered as the spreadsheet numbers them."""

    headers: list[str]
    rows: list[tuple[int, list[Cell]]] = field(default_factory=list)


def clean_text(text: str) -> str:
    """Trim ordinary, full-width and zero-width spaces that spreadsheets leave around values."""
    return text.replace("\u200b", "").replace("\ufeff", "").strip(" \t\r\n\u3000\u00a0")


def read_table(filename: str, data: bytes) -> Table:
    """Parse an upload by its content (a zip is .xlsx), falling back on the name; raise FileRejected."""
    if len(data) > MAX_FILE_BYTES:
        raise FileRejected(_("The file is larger than %(mb)d MB. Split it into smaller files.",
                             mb=MAX_FILE_BYTES // (1024 * 1024)))
    if not data.strip():
        raise FileRejected(_("The file is empty."))
    name = filename.lower()
    if data[:4] == b"PK\x03\x04" or name.endswith((".xlsx", ".xlsm")):
        return _table_from_rows(_xlsx_rows(data))
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" or name.endswith(".xls"):
        raise FileRejected(_("Old Excel .xls files cannot be read. Save the file as .xlsx or .csv and "
                             "try again."))
    return _table_from_rows(_csv_rows(data))


def _table_from_rows(rows: Iterable[list[Cell]]) -> Table:
    table: Table | None = None
    for number, cells in enumerate(rows, start=1):
        if all(cell.blank for cell in cells):
            continue
        if table is None:
            table = Table(headers=[clean_text(str(c.value)) if c.value is not None else "" for c in cells])
            continue
        if len(table.rows) >= MAX_ROWS:
            raise _too_many_rows()
        table.rows.append((number, cells))
    if table is None:
        raise FileRejected(_("The file is empty."))
    return table


class _Rfc4180(csv.excel):
    """RFC 4180: fields quoted with `"`, a quote inside a quoted field doubled, anything else an error."""

    strict = True


def _delimiter(header_line: str) -> str:
    """Comma unless the header row is plainly separated by tabs or semicolons (the quoting rules never vary)."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in ",\t;"}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] > counts[","] else ","


def _csv_rows(data: bytes) -> Iterable[list[Cell]]:
    """Rows of an RFC 4180 file; a row that does not parse, or has more cells than the header, refuses it."""
    text = _decode(data)
    dialect = type("_Upload", (_Rfc4180,), {"delimiter": _delimiter(text.split("\n", 1)[0])})
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    width: int | None = None
    overflowing: list[int] = []
    number = 0
    while True:
        number += 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _unreadable_csv_row(number, exc) from None
        cells = [Cell(value) for value in row]
        if width is None and not all(cell.blank for cell in cells):
            width = len(_trimmed(row))
            if width > MAX_COLUMNS:
                raise _too_many_columns()
        elif width is not None and len(_trimmed(row)) > width:
            overflowing.append(number)
        yield cells[:MAX_COLUMNS]
    if overflowing:
        shown = "、".join(str(n) for n in overflowing[:10]) + ("…" if len(overflowing) > 10 else "")
        raise FileRejected(_("Rows %(rows)s have more cells than the header row. Put text that contains a "
                             "comma in double quotes, and write a quote inside it twice (\"\").", rows=shown))


def _trimmed(values: Sequence[Any]) -> Sequence[Any]:
    """`values` without the empty cells at the end of the row."""
    if isinstance(values, tuple) and values.count(None) == len(values):
        return ()  # the padding rows a declared dimension asks for, at C speed
    end = len(values)
    while end and (values[end - 1] is None or (isinstance(values[end - 1], str) and not values[end - 1].strip())):
        end -= 1
    return values[:end]


def _unreadable_csv_row(number: int, error: csv.Error) -> FileRejected:
    if "field larger than field limit" in str(error):
        return FileRejected(_("Row %(row)d: a cell is longer than %(n)d characters.", row=number,
                              n=csv.field_size_limit()))
    return FileRejected(_("Row %(row)d cannot be read as CSV: a quote is not closed or text follows a closing "
                          "quote. Write a quote inside a quoted cell twice (\"\").", row=number))


def _too_many_columns() -> FileRejected:
    return FileRejected(_("The file has more than %(n)d columns. Delete the columns that are not in the "
                          "template.", n=MAX_COLUMNS))


def _decode(data: bytes) -> str:
    """UTF-8 with or without BOM; GB18030 (a superset of the GBK that Chinese Excel writes) otherwise."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileRejected(_("The text encoding of the file could not be read. Save it as .xlsx or as "
                         "UTF-8 CSV."))


def _too_many_rows() -> FileRejected:
    return FileRejected(_("The file has more than %(n)d rows. Split it into smaller files.", n=MAX_ROWS))


def _not_xlsx() -> FileRejected:
    return FileRejected(_("This is not a readable Excel .xlsx file. Save it as .xlsx or .csv and try again."))


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _not_xlsx() from None
    if sum(entry.file_size for entry in entries) > MAX_UNPACKED_BYTES:
        raise FileRejected(_("The file unpacks to more than %(mb)d MB and cannot be imported.",
                             mb=MAX_UNPACKED_BYTES // (1024 * 1024)))
    if not any(entry.filename == "xl/workbook.xml" for entry in entries):
        raise _not_xlsx()


def _xlsx_rows(data: bytes) -> Iterable[list[Cell]]:
    """Cached values from the first sheet, read side by side with the formulas to spot unsaved results.

    The sheet's declared dimension is not trusted: reading stops after MAX_ROWS + 2 rows and MAX_COLUMNS + 1
    columns, so a tiny file claiming a million empty cells costs no more than a full legitimate one.
    """
    _check_zip(data)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values_book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            formula_book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:  # openpyxl raises many kinds on malformed archives; all mean the same to the user
        raise _not_xlsx() from None
    rows: list[list[Cell]] = []
    bounds = {"max_row": MAX_ROWS + 2, "max_col": MAX_COLUMNS + 1, "values_only": True}
    try:
        if not values_book.worksheets:
            raise FileRejected(_("The file is empty."))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = values_book.worksheets[0].iter_rows(**bounds)
            formulas = formula_book.worksheets[0].iter_rows(**bounds)
            for count, (value_row, formula_row) in enumerate(zip_longest(values, formulas, fillvalue=())):
                if count > MAX_ROWS + 1:
                    raise _too_many_rows()
                value_row, formula_row = _trimmed(value_row or ()), _trimmed(formula_row or ())
                if max(len(value_row), len(formula_row)) > MAX_COLUMNS:
                    raise _too_many_columns()
                rows.append([
                    Cell(value, value is None and isinstance(raw, str) and raw.startswith("="))
                    for value, raw in zip_longest(value_row, formula_row)
                ])
    except FileRejected:
        raise
    except Exception:
        raise _not_xlsx() from None
    finally:
        values_book.close()
        formula_book.close()
    return rows


# ------------------------------------------------------------------------------------------ templates


def write_xlsx(headers: Sequence[str], notes: Sequence[Sequence[str]], sheet_title: str,
               notes_title: str) -> bytes:
    """A workbook whose first sheet holds only the header row, and a second sheet explaining each column."""

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_title
    append_row(sheet, headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, header in enumerate(headers):
        letter = sheet.cell(row=1, column=index + 1).column_letter
        sheet.column_dimensions[letter].width = max(10, 3 * len(header))
    help_sheet = book.create_sheet(notes_title)
    for line in notes:
        append_row(help_sheet, line)
    help_sheet.column_dimensions["A"].width = 18
    help_sheet.column_dimensions["B"].width = 80
    return workbook_bytes(book)


def write_csv(headers: Sequence[str]) -> bytes:
    """The header row as UTF-8 with a BOM, so that Excel opens the Chinese headers correctly."""
    return csv_bytes([headers])
