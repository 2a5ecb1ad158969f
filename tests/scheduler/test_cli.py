from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scheduler.io import instance_to_json, load_instance, load_solution, write_json
from scheduler.validation import validate
from tests.scheduler.builders import (
    example_instance_json,
    example_solution_json,
    instance,
    pupil,
    request,
    session,
)

REPO = Path(__file__).resolve().parents[2]

needs_solver = pytest.mark.skipif(importlib.util.find_spec("scheduler.solve") is None,
                                  reason="scheduler.solve is not in this checkout yet")
needs_generator = pytest.mark.skipif(importlib.util.find_spec("scheduler.generate") is None,
                                     reason="scheduler.generate is not in this checkout yet")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "scheduler", *map(str, args)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


# ---------------------------------------------------------------- validate


def test_validate_clean_example(example_files: tuple[Path, Path]) -> None:
    result = run("validate", *example_files)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "valid: coverage 9" in result.stderr


def test_validate_lists_violations_and_exits_1(tmp_path: Path) -> None:
    inst = write(tmp_path / "i.json", example_instance_json())
    sol_data = example_solution_json()
    sol_data["staffing"] = [s for s in sol_data["staffing"] if s["session"] != "S3"]
    sol_data["assignments"].append({"pupil": "P404", "session": "S1"})
    result = run("validate", inst, write(tmp_path / "s.json", sol_data))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "rule 5: session S3 has 2 pupils and 0 teacher(s), needs 1 (one per 15)" in lines
    assert "rule 1: assignment (P404, S1): unknown pupil P404" in lines


def test_validate_flags_a_wrong_reported_objective(tmp_path: Path) -> None:
    inst = write(tmp_path / "i.json", example_instance_json())
    sol_data = example_solution_json()
    sol_data["objective"]["coverage"] = 10
    result = run("validate", inst, write(tmp_path / "s.json", sol_data))
    assert result.returncode == 1
    assert "mismatch: objective.coverage is 10, recomputed 9" in result.stdout


def test_validate_bad_input_lists_every_problem(tmp_path: Path) -> None:
    data = example_instance_json()
    data["sessions"][0]["capacity"] = -5
    data["pupils"][1]["grade"] = 9
    data["requests"][2]["pupil"] = "P999"
    result = run("validate", write(tmp_path / "i.json", data), tmp_path / "missing.json")
    assert result.returncode == 2
    assert error_lines(result) == [
        "error: sessions[0].capacity: must be an integer >= 0",
        "error: pupils[1].grade: must be an integer from 1 to 6",
        "error: requests[2].pupil: unknown pupil id 'P999'",
    ]


def test_validate_missing_solution_file(example_files: tuple[Path, Path], tmp_path: Path) -> None:
    result = run("validate", example_files[0], tmp_path / "missing.json")
    assert result.returncode == 2
    assert error_lines(result) == [f"error: {tmp_path / 'missing.json'}: file not found"]


def test_not_json_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "i.json"
    path.write_text('{"format": "afterschool-instance/1",\n "school": }', encoding="utf-8")
    result = run("validate", path, path)
    assert result.returncode == 2
    assert error_lines(result)[0].startswith("error: line 2 column 12: not valid JSON: ")


def test_usage_errors_exit_2() -> None:
    assert run().returncode == 2
    result = run("solve")
    assert result.returncode == 2
    assert "error: the following arguments are required: instance" in result.stderr
    assert run("solve", "x.json", "--time-limit", "soon").returncode == 2


# ---------------------------------------------------------------- solve


def test_solve_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    data = example_instance_json()
    data["format"] = "something-else"
    data["teachers"][0]["available"] = [[9, "P1"]]
    result = run("solve", write(tmp_path / "i.json", data))
    assert result.returncode == 2
    assert result.stdout == ""
    assert error_lines(result) == [
        "error: format: must be 'afterschool-instance/1', not \"something-else\"",
        "error: teachers[0].available[0][0]: day 9 is not one of the instance's weekdays",
    ]


@needs_solver
def test_solve_example_to_file(example_files: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = run("solve", example_files[0], "-o", out, "--time-limit", "30", "--workers", "1", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("OPTIMAL: coverage 9/9")
    solution = load_solution(out)
    report = validate(load_instance(example_files[0]), solution)
    assert report.ok and report.consistent, report
    assert report.objective.coverage == 9 and report.objective.preference == 7


@needs_solver
def test_solve_to_stdout(example_files: tuple[Path, Path]) -> None:
    result = run("solve", example_files[0], "--time-limit", "30")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["format"] == "afterschool-solution/1"
    assert data["objective"]["coverage"] == 9


@needs_solver
def test_solve_infeasible_fixed_pairs_exit_1(tmp_path: Path) -> None:
    # Two pupils pinned into a one-seat session: no allocation can hold both.
    inst = instance([session("S1", capacity=1)], [], [pupil("A"), pupil("B")], [request("A"), request("B")],
                    fixed=(("A", "S1"), ("B", "S1")))
    path = tmp_path / "i.json"
    write_json(instance_to_json(inst), path)
    out = tmp_path / "out.json"
    result = run("solve", path, "-o", out, "--time-limit", "20")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("INFEASIBLE")
    assert json.loads(out.read_text(encoding="utf-8"))["status"] == "INFEASIBLE"


# ---------------------------------------------------------------- generate


@needs_generator
def test_generate_writes_a_loadable_instance(tmp_path: Path) -> None:
    out = tmp_path / "gen.json"
    result = run("generate", "--pupils", "40", "--seed", "5", "-o", out)
    assert result.returncode == 0, result.stderr
    assert len(load_instance(out).pupils) == 40


def test_generate_rejects_bad_counts() -> None:
    result = run("generate", "--pupils", "0", "--seed", "1")
    assert result.returncode == 2
    assert "must be >= 1" in result.stderr


def test_bench_is_not_a_scheduler_command() -> None:
    """The benchmarks live in `bench/` at the repository root (`make bench`), not in the installed package."""
    result = run("bench", "--help")
    assert result.returncode == 2
    assert "invalid choice: 'bench'" in result.stderr
