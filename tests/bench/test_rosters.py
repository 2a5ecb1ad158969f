"""`python -m bench.rosters` end to end on a small school: built, published, every roster timed."""

from __future__ import annotations

from click.testing import CliRunner

from bench import rosters


def test_bench_rosters_small() -> None:
    result = CliRunner().invoke(rosters.main, ["--pupils", "150", "--repeats", "1"])
    assert result.exit_code == 0, result.output
    for label in ("sessions page, one weekday", "sessions page, whole week", "sessions.xlsx",
                  "classes page", "classes.xlsx", "teachers page"):
        assert f"{label} (median of 1)" in result.output
    assert "SQL statements" in result.output
