"""`python -m bench.city` end to end on a tiny city: generate, allocate, report, then `--reuse` the database."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select

from bench import city
from webapp.extensions import db
from webapp.models import CareRequest, District, Pupil, School, Term

REPO = Path(__file__).resolve().parents[2]


def test_bench_city_small(tmp_path: Path) -> None:
    runner = CliRunner()
    db_path = tmp_path / "city.db"
    result = runner.invoke(city.main, ["--schools", "4", "--time-limit", "1", "--later-levels", "0.2",
                                       "--workers", "1", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "at most 0.2 s of it after coverage" in result.output
    assert "schools done                " in result.output and "4/4" in result.output
    assert "dashboard render, stored summaries" in result.output
    points = re.search(r"preference points / bound, summed +(\d+) / (\d+) .*proven at (\d+) schools", result.output)
    assert points is not None, result.output
    assert 0 < int(points[1]) <= int(points[2]) and 0 <= int(points[3]) <= 4
    proven = re.search(r"coverage proven optimal +(\d)/4", result.output)
    short = re.search(r"the others' coverage short, at most +(\d+) weighted pupil-days \([\d.]+% of the city's (\d+)\)",
                      result.output)
    assert proven is not None and short is not None, result.output
    assert (int(short[1]) == 0) == (proven[1] == "4") and int(short[2]) > 0
    assert "dashboard render, counted from rows" in result.output
    assert "dashboard render, summaries without fairness" in result.output

    again = runner.invoke(city.main, ["--reuse", "--db", str(db_path)])
    assert again.exit_code == 0, again.output
    assert "4 schools" in again.output and "summarize-runs, every run of the city" in again.output

    missing = runner.invoke(city.main, ["--reuse", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_build_city_stores_schools_through_the_services(app_no_csrf: Flask) -> None:
    sizes = [150, 160, 170]
    with app_no_csrf.app_context():
        city.build_city(3, seed=2, sizes=sizes, echo=lambda _: None)
        codes = db.session.scalars(select(School.code).order_by(School.code)).all()
        assert codes == ["KM-0001", "KM-0002", "KM-0003"]
        assert db.session.scalar(select(func.count()).select_from(Pupil)) == sum(sizes)
        assert db.session.scalar(select(func.count()).select_from(Term)) == 3
        assert db.session.scalar(select(func.count()).select_from(CareRequest)) > 0
        districts = db.session.scalars(select(District.name).join(School).order_by(School.code)).all()
        assert len(set(districts)) == 3 and all(d.city == city.CITY for d in db.session.scalars(select(District)))


def test_help_names_every_option() -> None:
    result = subprocess.run([sys.executable, "-m", "bench.city", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for option in ("--schools", "--time-limit", "--later-levels", "--workers", "--db", "--seed", "--reuse"):
        assert option in result.stdout
    assert "python -m bench.city" in result.stdout
