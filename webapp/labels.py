"""Weekday names in the reader's language, for views, templates and messages (`scheduler.weekdays` spells them).

`DAY_NAMES[3]` is "周三" or "Wed" depending on the request's language, so a module-level mapping serves every
request; spreadsheets written for schools use `weekday_name(day, "zh")` directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from flask import has_request_context
from flask_babel import get_locale

from scheduler.weekdays import WEEKDAYS, weekday_name


def current_language() -> str:
    """The language of the current request; Chinese outside a request (CLI, jobs)."""
    locale = get_locale() if has_request_context() else None
    return str(locale or "zh")


class _DayNames(Mapping[int, str]):
    """Day number -> its name in the current language."""

    def __init__(self, *, long: bool) -> None:
        self.long = long

    def __getitem__(self, day: int) -> str:
        if day not in WEEKDAYS:
            raise KeyError(day)
        return weekday_name(day, current_language(), long=self.long)

    def __iter__(self) -> Iterator[int]:
        return iter(WEEKDAYS)

    def __len__(self) -> int:
        return len(WEEKDAYS)


DAY_NAMES: Mapping[int, str] = _DayNames(long=False)
"""周一 … 周日 / Mon … Sun."""
DAY_NAMES_LONG: Mapping[int, str] = _DayNames(long=True)
"""星期一 … 星期日 / Monday … Sunday (printed roster headings)."""


def day_names(days: list[int] | tuple[int, ...]) -> str:
    """"周一、周三" / "Mon, Wed"."""
    separator = ", " if current_language().startswith("en") else "、"
    return separator.join(DAY_NAMES.get(day, str(day)) for day in days)


def clock_span(start: str, end: str) -> str:
    """"15:30–16:20": how a period is shown to families (never its code)."""
    return f"{start}–{end}"


def period_clocks(periods: Iterable[Any]) -> dict[str, str]:
    """Period code -> its clock span, for rows with `code`, `start` and `end` (a term's periods)."""
    return {period.code: clock_span(period.start, period.end) for period in periods}
