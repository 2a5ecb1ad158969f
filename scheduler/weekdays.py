"""Weekday names, the one place that spells them: days are numbered 1 (Monday) to 7 (Sunday) everywhere."""

from __future__ import annotations

WEEKDAYS = range(1, 8)
_NAMES: dict[str, tuple[str, ...]] = {
    "zh": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}
_LONG_NAMES: dict[str, tuple[str, ...]] = {
    "zh": ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}


def weekday_name(day: int, lang: str = "zh", *, long: bool = False) -> str:
    """`周一` / `Mon` (or `星期一` / `Monday` when `long`); a number outside 1–7 comes back as digits."""
    names = (_LONG_NAMES if long else _NAMES)["en" if lang.startswith("en") else "zh"]
    return names[day - 1] if day in WEEKDAYS else str(day)

