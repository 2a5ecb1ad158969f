"""The benchmark CLI: options, the table, the JSON report, and the solver comparison."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench import solver as bench
from scheduler.domain import Instance, Solution
from scheduler.generate import generate


def test_usage_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--sizes", "abc"], ["--variants", "huge"], ["--methods", "magic"], ["--time-limit", "0"],
                 ["--sizes", "0"], ["--nonsense"]):
        assert bench.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), (argv, err)
        assert "Traceback" not in err[0]


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--help"]) == 0
    assert "--time-limit" in capsys.readouterr().out


def test_baselines_only_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = bench.main(["--sizes", "150", "--variants", "normal,tight", "--methods", "lottery,fcfs",
                       "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("machine: ") and " cores" in printed[0]
    header = printed[1]
    titles = ("instance", "method", "coverage", "% demand", "bound", "pref", "max load", "seconds", "peak MB")
    assert all(title in header for title in titles)
    main_table = printed[:printed.index("")]  # the extra tables follow a blank line
    rows = [line for line in main_table if line.startswith("150-")]
    assert [line.split()[:2] for line in rows] == [["150-normal", "lottery"], ["150-normal", "fcfs"],
                                                   ["150-tight", "lottery"], ["150-tight", "fcfs"]]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert len(report["runs"]) == 4 and report["comparisons"] == []
    for run in report["runs"]:
        assert run["valid"] and run["status"] == "FEASIBLE"
        assert 0 < run["coverage"] < run["demand"] == run["coverage_bound"]
        assert run["peak_mb"] > 1
        served = run["fairness"]["served"]
        assert served["fully"] + served["partly"] + served["not_at_all"] > 0
        assert run["levels"] == [] and run["phases"] == {}
    assert "objective levels (solver)" not in printed
    fairness_header = next(i for i, line in enumerate(printed) if line.startswith("fairness ("))
    assert printed[fairness_header + 1].split() == ["instance", "method", "full", "part", "none", "1st", "top3",
                                                    "unranked", "envy", "idle", "split", "worst", "churn"]
    fair_rows = [line.split()[:2] for line in printed[fairness_header + 3:] if line.startswith("150-")]
    assert fair_rows == [["150-normal", "lottery"], ["150-normal", "fcfs"], ["150-tight", "lottery"],
                         ["150-tight", "fcfs"]]


def test_solver_is_skipped_with_a_reason_when_missing(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(bench, "solver_available", lambda: False)
    assert bench.main(["--sizes", "60", "--variants", "normal", "--methods", "solver,lottery"]) == 0
    printed = capsys.readouterr().out
    assert "solver skipped: scheduler.solve is not installed" in printed
    assert "60-normal    solver" not in printed


def test_comparisons_count_extra_pupil_days() -> None:
    runs = [
        {"instance": "x", "method": "solver", "valid": True, "coverage": 120, "covered_pupil_days": 100},
        {"instance": "x", "method": "lottery", "valid": True, "coverage": 100, "covered_pupil_days": 90},
        {"instance": "x", "method": "fcfs", "valid": False, "coverage": 0, "covered_pupil_days": 0},
    ]
    assert bench._comparisons(runs) == [{"instance": "x", "baseline": "lottery", "coverage_ratio": 1.2,
                                          "extra_pupil_days": 10, "extra_children_per_day": 2.0}]


@pytest.mark.skipif(not bench.solver_available(), reason="scheduler.solve is not in this checkout")
def test_full_run_with_the_solver(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--sizes", "200", "--variants", "normal", "--time-limit", "10"]) == 0
    printed = capsys.readouterr().out
    main_table = printed.split("\n\n")[0]
    methods = [line.split()[1] for line in main_table.splitlines() if line.startswith("200-normal ")]
    assert methods == ["solver", "lottery", "fcfs"]
    assert "200-normal: solver/lottery coverage" in printed
    assert "200-normal: solver/fcfs coverage" in printed
    assert "200-normal: coverage proven optimal after" in printed or "not proven optimal within" in printed
    lines = printed.splitlines()
    levels = lines.index("objective levels (solver)")
    assert lines[levels + 1].split() == ["instance", "level", "status", "value", "bound", "gap", "seconds"]
    names = [line.split()[1] for line in lines[levels + 3:] if line.startswith("200-normal ")][:4]
    assert names == ["coverage", "preference", "max_load", "staffing"]
    assert any(line.startswith("200-normal: phases ") and " build " in line for line in lines)
    fairness = lines.index(next(line for line in lines if line.startswith("fairness (")))
    policies = lines.index(next(line for line in lines if line.startswith("seat policies (")))
    fair_rows = [line.split()[1] for line in lines[fairness:policies] if line.startswith("200-normal ")]
    assert fair_rows == ["solver", "lottery", "fcfs"]
    policy_rows = [line.split()[1] for line in lines[policies:] if line.startswith("200-normal ")]
    assert policy_rows == ["spread", "whole_week"]


def test_levels_carry_their_gap_and_fairness_rows_read_the_report() -> None:
    level = bench._level({"name": "preference", "status": "FEASIBLE", "value": 80, "bound": 100, "seconds": 1.5})
    assert level == {"name": "preference", "status": "FEASIBLE", "value": 80, "bound": 100, "gap": 0.25,
                     "seconds": 1.5}
    assert bench._level({"name": "max_load", "status": "OPTIMAL", "value": 0, "bound": 0})["gap"] == 0
    run = bench.run_method("lottery", generate(80, seed=5), bench.Settings(1.0, 1, 0))
    run.update(instance="80-normal")
    row = bench._fairness_row(run)
    served = run["fairness"]["served"]
    assert row[:5] == ["80-normal", "lottery", str(served["fully"]), str(served["partly"]),
                       str(served["not_at_all"])]
    assert row[5].endswith("%") and len(row) == len(bench.FAIRNESS_COLUMNS)
    assert row[-1] == "-"  # a generated school has no previous plan to churn from


def test_churn_counts_the_previous_plans_pairs_kept_lost_and_new() -> None:
    inst = generate(80, seed=5)
    before = bench.run_method("fcfs", inst, bench.Settings(1.0, 1, 0))
    assert before["fairness"]["churn"] is None
    plan = bench._solve_with("fcfs", inst, bench.Settings(1.0, 1, 0))
    kept = plan.assignments[: len(plan.assignments) // 2]
    moved = dataclasses.replace(inst, previous=kept)
    run = bench.run_method("lottery", moved, bench.Settings(1.0, 1, 0))
    run.update(instance="80-normal")
    lottery = bench._solve_with("lottery", moved, bench.Settings(1.0, 1, 0))
    same = len(set(kept) & set(lottery.assignments))
    expected = f"{same}/{len(kept) - same}/{len(lottery.assignments) - same}"
    assert bench._fairness_row(run)[-1] == expected


def test_a_crashing_method_is_a_failed_row_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(method: str, instance: Instance, settings: bench.Settings) -> Solution:
        raise RuntimeError("solver fell over")

    monkeypatch.setattr(bench, "_solve_with", broken)
    result = bench.run_method("solver", generate(30, seed=2), bench.Settings(1.0, 1, 0))
    assert result["valid"] is False and result["error"] == "RuntimeError: solver fell over"
    result.update(instance="30-normal", demand=1)
    assert bench._row(result) == ["30-normal", "solver", "failed: RuntimeError: solver fell over"]


def test_run_method_validates_what_it_measures() -> None:
    result = bench.run_method("lottery", generate(120, seed=4), bench.Settings(1.0, 1, 3))
    assert result["valid"] and result["status"] == "FEASIBLE" and result["violations"] == []
    assert result["coverage_proven"] is False and result["coverage_seconds"] is None


@pytest.mark.skipif(not bench.solver_available(), reason="scheduler.solve is not in this checkout")
def test_one_solver_plan_under_both_seat_policies(capsys: pytest.CaptureFixture[str]) -> None:
    run = bench.run_method("solver", generate(150, seed=2, tight=True), bench.Settings(5.0, 1, 0))
    assert run["valid"]
    spread, whole = run["seat_policies"]
    assert (spread["policy"], whole["policy"]) == ("spread", "whole_week")
    for row in (spread, whole):
        assert row["fully"] + row["partly"] + row["not_at_all"] == run["fairness"]["served"]["fully"] + run[
            "fairness"]["served"]["partly"] + run["fairness"]["served"]["not_at_all"]
        assert row["families"] == run["fairness"]["families"]["requesting"]
    assert spread["families_with_nothing"] <= whole["families_with_nothing"]
    if whole["proven"]:
        assert whole["fully"] >= spread["fully"]
    run.update(instance="150-tight")
    bench._print_seat_policies([run])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("seat policies (") and lines[2].split()[:3] == ["instance", "policy", "no"]
    assert [line.split()[1] for line in lines[4:]] == ["spread", "whole_week"]
    assert bench.run_method("lottery", generate(40, seed=2), bench.Settings(1.0, 1, 0))["seat_policies"] is None
