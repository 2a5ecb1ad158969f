"""The shared display words and times of webapp/labels.py: one zone for every time, term names, relations."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import click
import pytest
from flask import Flask
from flask_babel import force_locale

from tests.conftest import _make_app
from webapp.labels import (
    AMENDMENT_REASONS,
    IMPORT_REASONS,
    amendment_reason,
    from_local,
    relation_label,
    show_date,
    show_time,
    solver_status,
    term_label,
    to_local,
    zone_label,
)


def test_times_show_in_beijing_time_by_default(app: Flask) -> None:
    with app.test_request_context():
        assert show_time(datetime(2026, 9, 1, 0, 30)) == "2026-09-01 08:30"
        assert show_time(None) == "" and show_date(date(2026, 9, 1)) == "2026-09-01"
        assert to_local(datetime(2026, 9, 1, 16, 0)) == datetime(2026, 9, 2, 0, 0)
        assert from_local(datetime(2026, 9, 2, 0, 0)) == datetime(2026, 9, 1, 16, 0)


def test_the_zone_is_one_setting(tmp_path: Path) -> None:
    app = _make_app(tmp_path, TIMEZONE="Europe/London")
    with app.test_request_context():
        assert show_time(datetime(2026, 7, 1, 12, 0)) == "2026-07-01 13:00"  # British summer time
        assert to_local(datetime(2026, 1, 1, 12, 0)) == datetime(2026, 1, 1, 12, 0)


def test_a_wrong_zone_stops_the_app_with_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(click.ClickException, match="TIMEZONE: 'Beijing' is not a time zone name"):
        _make_app(tmp_path, TIMEZONE="Beijing")


def test_words_in_the_readers_language(app: Flask) -> None:
    with app.test_request_context():
        assert term_label("2026-autumn") == "2026年秋季学期" and term_label("2027 Spring") == "2027年春季学期"
        assert term_label("五华一小 2026 秋") == "五华一小 2026 秋"  # a name the school typed stays as it is
        assert relation_label("mother") == "母亲" and relation_label("舅舅") == "舅舅"
        assert solver_status("OPTIMAL") == "最优方案"
        with force_locale("en"):
            assert term_label("2026-autumn") == "Autumn term 2026"
            assert relation_label("mother") == "Mother" and solver_status("FEASIBLE") == "Good plan, not proven best"
        assert term_label("2026-autumn", "en") == "Autumn term 2026"


def test_plan_history_reasons_read_in_the_readers_language(app: Flask) -> None:
    """Reasons the allocation service writes (English, stored) read in the reader's language; typed ones as typed."""
    with app.test_request_context():
        assert amendment_reason("session S11 edited") == "课程班 S11 已修改"
        assert amendment_reason("run 3 published as run version 2") == "分配运行 3 作为第 2 版发布"
        assert amendment_reason("teacher T02 edited (freed seats placed)") == "教师 T02 已修改（空出的名额已安排）"
        assert amendment_reason("教室维修，周二作业辅导暂停") == "教室维修，周二作业辅导暂停"
        with force_locale("en"):
            assert amendment_reason("seat of P001 in S21 removed") == "Seat of P001 in S21 removed"
            assert amendment_reason("the family withdrew its request") == "The family withdrew its request"


def test_every_reason_the_allocation_service_writes_has_a_reading() -> None:
    """Each fixed reason string in webapp/allocation/ (given to `done`, `gate.reason` or `reason=`) has a reading."""
    written = set()
    for path in Path("webapp/allocation").glob("*.py"):
        source = re.sub(r'"\s*\n\s*"', "", path.read_text())  # join implicitly concatenated literals
        written |= set(re.findall(r'(?:done\([^,]+, [^,]+, |gate\.reason\(\s*|reason=)f?"([^"]+)"', source))
    assert len(written) >= 10, written  # the pattern above still reads the service
    for text in written:
        sample = re.sub(r"\{[^}]*\}", "7", text)
        assert any(pattern.match(sample) for pattern, _ in AMENDMENT_REASONS), text


def test_import_reasons_are_one_table_with_their_readings(app: Flask) -> None:
    """The reason an import under a published plan stores (`webapp.allocation.service.import_rows`) and its
    readings come from `IMPORT_REASONS` alone: every kind of file reads in Chinese and in English."""
    assert set(IMPORT_REASONS) == {"sessions", "teachers", "pupils", "left"}
    chinese = {"sessions": "从表格导入了课程班", "teachers": "从表格导入了教师", "pupils": "从表格导入了学生",
               "left": "学生离校"}
    with app.test_request_context():
        for kind, reason in IMPORT_REASONS.items():
            assert amendment_reason(reason.stored) == chinese[kind]
            with force_locale("en"):
                assert amendment_reason(reason.stored) == str(reason.reading) == reason.stored.capitalize()
        assert amendment_reason("teachers imported from a spreadsheet, twice") == (
            "teachers imported from a spreadsheet, twice")  # a typed reason is not mistaken for a fixed one


def test_the_zone_is_named_as_configured(app: Flask, tmp_path: Path) -> None:
    """Staff pages say which clock times are entered in: the configured zone, never a fixed "UTC+8"."""
    with app.test_request_context():
        assert zone_label() == "北京时间（UTC+8）"
        with force_locale("en"):
            assert zone_label() == "China time (UTC+8)"
    (tmp_path / "other").mkdir()
    other = _make_app(tmp_path / "other", TIMEZONE="Asia/Kathmandu")
    with other.test_request_context():
        assert zone_label() == "Asia/Kathmandu (UTC+5:45)"
