"""`flask bench-city` end to end on a tiny city: generate, allocate, report, then `--reuse` the database."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskCliRunner


def test_bench_city_small(runner: FlaskCliRunner, tmp_path: Path) -> None:
    db_path = tmp_path / "city.db"
    result = runner.invoke(args=["bench-city", "--schools", "4", "--time-limit", "1", "--workers", "1",
                                 "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "schools done                " in result.output and "4/4" in result.output
    assert "dashboard render, stored summaries" in result.output
    assert "dashboard render, counted from rows" in result.output

    again = runner.invoke(args=["bench-city", "--reuse", "--db", str(db_path)])
    assert again.exit_code == 0, again.output
    assert "4 schools" in again.output and "summarize-runs, every run of the city" in again.output

    missing = runner.invoke(args=["bench-city", "--reuse", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
