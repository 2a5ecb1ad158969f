"""The rule that hides small counts of the bureau's table by priority group (`suppress_counts`): a count of 1 to
N - 1 is "<N", and no hidden count can be worked out from a row's counts and its total, nor from a column's counts
and the area's total beside the table, unless that total is itself so small that nothing in the table could hide it.

The checks here enumerate every value a reader could give the hidden counts (independently of the rule's interval
arithmetic): "<N" is 1 to N - 1, a count hidden to protect another is at least N (any number, when it is 0)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.bureau.stats import MIN_CELL, Hidden, check_min_cell, suppress_counts

Marks = list[list[Hidden | None]]
SPAN = 12
"""How far above a count hidden to protect another the enumeration looks (any larger value changes nothing)."""


def _cells(rows: Sequence[tuple[int, int, int]]) -> list[list[int]]:
    return [[f + p + x, f, p, x] for f, p, x in rows]


def _values(value: int, mark: Hidden | None, n: int) -> range:
    """Every value a reader could give a cell shown this way."""
    if mark is None:
        return range(value, value + 1)
    if mark is Hidden.SMALL:
        return range(1, n)
    return range(n if value >= n else 0, value + n + SPAN)


def _recoverable(cells: list[int], marks: list[Hidden | None], n: int, total: int | None) -> list[int]:
    """Indexes of hidden cells a reader can pin to one value: from cells[0] = sum(cells[1:]) when `total` is None,
    else from sum(cells) = total."""
    options = [_values(value, mark, n) for value, mark in zip(cells, marks, strict=True)]
    possible: list[set[int]] = [set() for _ in cells]
    for values in itertools.product(*options):
        fits = values[0] == sum(values[1:]) if total is None else sum(values) == total
        if fits:
            for i, value in enumerate(values):
                possible[i].add(value)
    assert all(possible[i] for i in range(len(cells))), "the true counts always fit"
    return [i for i, mark in enumerate(marks) if mark is not None and len(possible[i]) < 2]


def _check(rows: Sequence[tuple[int, int, int]], n: int, totals_known: bool) -> Marks:
    marks = suppress_counts(rows, n, totals_known)
    cells = _cells(rows)
    for row, row_marks in zip(cells, marks, strict=True):
        for value, mark in zip(row, row_marks, strict=True):
            assert (mark is Hidden.SMALL) == (0 < value < n), "small counts, and only they, are '<N'"
        assert _recoverable(row, row_marks, n, None) == [], (rows, marks)
    if totals_known:
        for c in range(4):
            column = [row[c] for row in cells]
            column_marks = [row_marks[c] for row_marks in marks]
            if _recoverable(column, column_marks, n, sum(column)):
                # only when hiding every count of the column would not help either
                everything = [mark or Hidden.PROTECTING for mark in column_marks]
                assert _recoverable(column, everything, n, sum(column)), (rows, c, marks)
    return marks


def test_examples() -> None:
    s, p = Hidden.SMALL, Hidden.PROTECTING
    assert suppress_counts([(30, 20, 10)], 5, False) == [[None, None, None, None]], "nothing small: all shown"
    assert suppress_counts([(1, 0, 0)], 5, False) == [[s, s, None, None]], "0 is shown as 0"
    assert suppress_counts([(10, 2, 0)], 5, False) == [[None, p, s, None]], "the next smallest non-zero part"
    assert suppress_counts([(20, 3, 2)], 5, False) == [[None, None, s, s]], "two small parts hide each other"
    assert suppress_counts([(8, 1, 1)], 5, False) == [[None, p, s, s]], "1 + 1 = 2 would tell both"
    assert suppress_counts([(5, 1, 0)], 5, False) == [[p, p, s, None]], "5 + <5 = 6 would tell both: total too"
    # A group of 2 among larger ones: its columns need another count hidden, and so does that count's row, and so
    # on until nothing hidden can be worked out.
    marks = _check([(2, 0, 0), (12, 3, 6), (40, 10, 7)], 5, True)
    assert marks == [[s, s, None, None], [p, p, s, p], [None, None, p, p]]


@settings(max_examples=300, deadline=None)
@given(n=st.sampled_from([5, 6, 10]),
       row=st.tuples(st.integers(0, 25), st.integers(0, 25), st.integers(0, 25)))
def test_no_hidden_count_of_a_row_can_be_recovered(n: int, row: tuple[int, int, int]) -> None:
    _check([row], n, totals_known=False)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)), min_size=2, max_size=3))
def test_no_hidden_count_of_a_table_can_be_recovered_from_its_columns(rows: list[tuple[int, int, int]]) -> None:
    _check(rows, MIN_CELL, totals_known=True)


def test_the_setting_is_checked() -> None:
    assert check_min_cell(5) == 5 and check_min_cell(10) == 10
    for wrong in (4, 0, "5", 5.0, True, None):
        with pytest.raises(ValueError, match="BUREAU_MIN_CELL must be a whole number of at least 5"):
            check_min_cell(wrong)
