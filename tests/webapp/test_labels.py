"""The shared display words and times of webapp/labels.py: one zone for every time, term names, relations."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click
import pytest
from flask import Flask
from flask_babel import force_locale

from tests.conftest import _make_app
from webapp.labels import from_local, relation_label, show_date, show_time, solver_status, term_label, to_local


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
