"""Benchmark: the solver against today's lottery and first-come-first-served on generated schools.

`python -m bench.solver [--sizes 1000,2000,3000] [--variants normal,tight,crowded] [--time-limit 60] ...`
(or `make bench`; `crowded` schools are drawn by `bench.crowded`, in another shape than the generator's)
Every method runs in a fresh spawned process, so the peak memory reported is that method's own; every result
is checked by `validation.validate` before it is counted.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, NoReturn

from bench.crowded import crowded
from scheduler.domain import Instance, Objective, Solution, Status, relative_gap
from scheduler.generate import generate

METHODS = ("solver", "lottery", "fcfs")
VARIANTS = ("normal", "tight", "crowded")
"""`crowded` schools come from `bench.crowded`, a generator of another shape than `scheduler.generate`."""
EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


@dataclass(frozen=True)
class Settings:
    time_limit: float
    workers: int
    seed: int


def solver_available() -> bool:
    return importlib.util.find_spec("scheduler.solve") is not None


def run_method(method: str, instance: Instance, settings: Settings) -> dict[str, Any]:
    """Run one method on one instance and validate it; meant to run in its own process."""
    from scheduler.fairness import fairness
    from scheduler.validation import validate

    started = time.monotonic()
    try:
        solution = _solve_with(method, instance, settings)
    except Exception as error:  # reported as a failed run, with the time and memory it took
        return {"method": method, "valid": False, "error": f"{type(error).__name__}: {error}",
                "seconds": round(time.monotonic() - started, 3), "peak_mb": round(_peak_rss_mb(), 1)}
    seconds = time.monotonic() - started
    report = validate(instance, solution)
    levels = [_level(level) for level in solution.stats.get("levels") or []]
    first = levels[0] if levels else {}
    coverage_proven = first.get("name") == "coverage" and first.get("status") == "OPTIMAL"
    return {
        "method": method,
        "status": solution.status,
        "valid": report.ok and solution.has_allocation,
        "violations": [v.message for v in report.violations[:5]],
        "coverage": report.objective.coverage,
        "coverage_bound": solution.objective.coverage_bound,
        "covered_pupil_days": len(report.covered),
        "preference": report.objective.preference,
        "max_teacher_load": report.objective.max_teacher_load,
        "staffing_pairs": report.total_staffing,
        "seconds": round(float(solution.stats.get("seconds", seconds)), 3),
        "coverage_seconds": solution.stats.get("coverage_seconds"),
        "coverage_proven": coverage_proven,
        "peak_mb": round(_peak_rss_mb(), 1),
        "levels": levels,
        "phases": solution.stats.get("phases", {}),
        "fairness": fairness(instance, solution, _previous(instance)).to_dict() if solution.has_allocation else None,
        "seat_policies": _seat_policies(instance, solution, settings) if method == "solver" else None,
    }


def _seat_policies(instance: Instance, solution: Solution, settings: Settings) -> list[dict[str, Any]] | None:
    """The solver's plan with its seats handed out among equals again under each seat policy (the same counts,
    so the same objective): families with no day, pupils served every/some/no requested day, seconds the choice
    took and whether it was proven."""
    from scheduler.domain import SEAT_POLICIES
    from scheduler.fairness import families_and_served
    from scheduler.seat_policy import reseat

    if not solution.has_allocation:
        return None
    rows = []
    for policy in SEAT_POLICIES:
        started = time.monotonic()
        pairs, choice = reseat(instance, solution.assignments, policy, settings.seed, workers=settings.workers)
        seconds = time.monotonic() - started
        plan = Solution(solution.school, solution.status, pairs, solution.staffing, solution.objective)
        got, counts = families_and_served(instance, plan)
        rows.append({"policy": policy, "families": got.requesting, "families_with_nothing": got.with_nothing,
                     "fully": counts.fully, "partly": counts.partly, "not_at_all": counts.not_at_all,
                     "choice_seconds": round(choice.seconds, 3), "seconds": round(seconds, 3),
                     "proven": choice.proven})
    return rows


def _previous(instance: Instance) -> Solution | None:
    """The plan the instance says pupils sit by now (its `previous` seats), for churn; None when it has none."""
    if not instance.previous:
        return None
    return Solution(instance.school.id, Status.IMPORTED, instance.previous, (), Objective(0, 0, 0, 0, 0))


def _level(level: dict[str, Any]) -> dict[str, Any]:
    """One objective level from `Solution.stats`, with its relative gap: |bound - value| / max(1, |value|)."""
    value, bound = level.get("value", 0), level.get("bound", 0)
    return {"name": level.get("name"), "status": level.get("status"), "value": value, "bound": bound,
            "gap": round(relative_gap(value, bound), 4), "seconds": level.get("seconds")}


def _solve_with(method: str, instance: Instance, settings: Settings) -> Solution:
    if method == "solver":
        from scheduler.solve import SolverConfig, solve

        config = SolverConfig(time_limit=settings.time_limit, workers=settings.workers, seed=settings.seed)
        return solve(instance, config)
    if method == "lottery":
        from scheduler.baselines import lottery

        return lottery(instance, seed=settings.seed)
    if method == "fcfs":
        from scheduler.baselines import first_come_first_served

        return first_come_first_served(instance)
    raise ValueError(f"unknown method {method!r}")


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _isolated(method: str, instance: Instance, settings: Settings) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(run_method, method, instance, settings).result()


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(prog="python -m bench.solver", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000,3000", help="pupil counts, comma separated")
    parser.add_argument("--variants", default="normal,tight", help="normal, tight and/or crowded, comma separated")
    parser.add_argument("--methods", default=",".join(METHODS), help="solver, lottery and/or fcfs")
    parser.add_argument("--time-limit", type=float, default=60.0, help="solver seconds per instance")
    parser.add_argument("--workers", type=int, default=2, help="solver threads")
    parser.add_argument("--seed", type=int, default=1, help="generator, lottery and solver seed")
    parser.add_argument("--json", metavar="OUT", help="also write every result to this JSON file")
    args = parser.parse_args(list(argv))
    try:
        args.sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    except ValueError:
        raise _UsageError(f"--sizes must be whole numbers separated by commas, not '{args.sizes}'") from None
    if not args.sizes or min(args.sizes) < 1:
        raise _UsageError("--sizes needs at least one pupil count >= 1")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    choices = (("--variants", args.variants, VARIANTS), ("--methods", args.methods, METHODS))
    for option, given, known in choices:
        unknown = [value for value in given if value not in known]
        if unknown or not given:
            raise _UsageError(f"{option} takes {', '.join(known)}; got '{','.join(unknown) or 'nothing'}'")
    if not args.time_limit > 0 or args.workers < 1:
        raise _UsageError("--time-limit must be > 0 and --workers >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(argv)
    except _UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as done:  # --help
        return int(done.code or 0)
    settings = Settings(time_limit=args.time_limit, workers=args.workers, seed=args.seed)
    methods = list(args.methods)
    print(f"machine: {os.cpu_count()} cores; solver: {settings.workers} workers, "
          f"{settings.time_limit:g} s limit; seed {settings.seed}")
    if "solver" in methods and not solver_available():
        print("solver skipped: scheduler.solve is not installed in this checkout")
        methods.remove("solver")
    runs: list[dict[str, Any]] = []
    for size in args.sizes:
        for variant in args.variants:
            started = time.monotonic()
            if variant == "crowded":
                instance = crowded(size, args.seed)
            else:
                instance = generate(size, args.seed, tight=variant == "tight")
            generated = time.monotonic() - started
            name = f"{size}-{variant}"
            for method in methods:
                try:
                    result = _isolated(method, instance, settings)
                except Exception as error:  # one broken run must not hide the others
                    result = {"method": method, "valid": False, "error": f"{type(error).__name__}: {error}"}
                result.update(instance=name, pupils=size, variant=variant, demand=instance.demand(),
                              generate_seconds=round(generated, 3))
                runs.append(result)
                print(f"  {name} {method}: {_progress(result)}", file=sys.stderr, flush=True)
    comparisons = _comparisons(runs)
    _print_table(runs, comparisons)
    if args.json:
        from scheduler.io import write_json

        write_json({"cpu_count": os.cpu_count(), "time_limit": settings.time_limit,
                    "workers": settings.workers, "seed": settings.seed, "runs": runs,
                    "comparisons": comparisons}, args.json)
    return EXIT_OK if all(run["valid"] for run in runs) else EXIT_INVALID


def _progress(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"failed ({result['error']})"
    return f"{result['status']} coverage {result['coverage']} in {result['seconds']:.1f} s"


def _comparisons(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Solver coverage against each baseline, per instance, with the extra pupil-days covered."""
    by_instance: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        if run["valid"]:
            by_instance.setdefault(run["instance"], {})[run["method"]] = run
    comparisons = []
    for name, results in by_instance.items():
        solver = results.get("solver")
        if solver is None:
            continue
        for baseline in ("lottery", "fcfs"):
            other = results.get(baseline)
            if other is None:
                continue
            extra_days = solver["covered_pupil_days"] - other["covered_pupil_days"]
            ratio = round(solver["coverage"] / other["coverage"], 4) if other["coverage"] else None
            comparisons.append({
                "instance": name, "baseline": baseline, "coverage_ratio": ratio,
                "extra_pupil_days": extra_days,
                "extra_children_per_day": round(extra_days / 5, 1),
            })
    return comparisons


COLUMNS = (("instance", 14), ("method", 8), ("coverage", 9), ("% demand", 9), ("bound", 8), ("pref", 7),
           ("max load", 9), ("seconds", 8), ("peak MB", 8))


def _row(run: dict[str, Any]) -> list[str]:
    if "error" in run:
        return [run["instance"], run["method"], "failed: " + run["error"]]
    percent = 100 * run["coverage"] / run["demand"] if run["demand"] else 100.0
    flag = "" if run["valid"] else "  INVALID"
    return [run["instance"], run["method"], str(run["coverage"]), f"{percent:.1f}%",
            str(run["coverage_bound"]), str(run["preference"]), str(run["max_teacher_load"]),
            f"{run['seconds']:.2f}",
            f"{run['peak_mb']:.0f}{flag}"]


def _print_table(runs: list[dict[str, Any]], comparisons: list[dict[str, Any]]) -> None:
    _table(COLUMNS, [_row(run) for run in runs])
    for run in runs:
        if run.get("method") == "solver" and run.get("coverage_seconds") is not None:
            verdict = "proven optimal after" if run["coverage_proven"] else "not proven optimal within"
            print(f"{run['instance']}: coverage {verdict} {run['coverage_seconds']:.1f} s "
                  f"(bound {run['coverage_bound']}, demand {run['demand']})")
    for item in comparisons:
        ratio = "n/a" if item["coverage_ratio"] is None else f"{item['coverage_ratio']:.3f}"
        print(f"{item['instance']}: solver/{item['baseline']} coverage {ratio}, "
              f"{item['extra_pupil_days']:+d} pupil-days a week "
              f"({item['extra_children_per_day']:+.1f} children a day)")
    _print_levels(runs)
    _print_fairness(runs)
    _print_seat_policies(runs)
    invalid = [f"{run['instance']} {run['method']}" for run in runs if not run["valid"]]
    if invalid:
        print(f"invalid or failed runs: {', '.join(invalid)}")


def _table(columns: Sequence[tuple[str, int]], rows: list[list[str]]) -> None:
    """Left-aligned first two columns, the rest right-aligned, as the main table."""
    def line(cells: Sequence[str]) -> str:
        return "".join(cell.rjust(width) if i > 1 else cell.ljust(width)
                       for i, (cell, (_, width)) in enumerate(zip(cells, columns, strict=False)))

    header = line([title for title, _ in columns])
    print(header)
    print("-" * len(header))
    for row in rows:
        print(line(row))


LEVEL_COLUMNS = (("instance", 14), ("level", 11), ("status", 10), ("value", 9), ("bound", 9), ("gap", 8),
                 ("seconds", 8))


def _print_levels(runs: list[dict[str, Any]]) -> None:
    """Each objective level of each solver run: value, proven bound, relative gap, seconds."""
    rows = [[run["instance"], level["name"], level["status"], str(level["value"]), str(level["bound"]),
             f"{100 * level['gap']:.2f}%", f"{level['seconds']:.2f}"]
            for run in runs if run.get("method") == "solver" for level in run.get("levels") or []]
    phases = [(run["instance"], run["phases"]) for run in runs
              if run.get("method") == "solver" and run.get("phases")]
    if not rows:
        return
    print()
    print("objective levels (solver)")
    _table(LEVEL_COLUMNS, rows)
    for name, timings in phases:
        print(f"{name}: phases " + ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in timings.items()))


FAIRNESS_COLUMNS = (("instance", 14), ("method", 8), ("full", 6), ("part", 6), ("none", 6), ("1st", 7),
                    ("top3", 7), ("unranked", 9), ("envy", 6), ("idle", 6), ("split", 6), ("worst", 7),
                    ("churn", 16))


def _fairness_row(run: dict[str, Any]) -> list[str]:
    data = run["fairness"]
    served, choices = data["served"], data["choices"]
    worst = data["worst_served"][0] if data["worst_served"] else None
    return [run["instance"], run["method"], str(served["fully"]), str(served["partly"]),
            str(served["not_at_all"]), f"{100 * choices['first']:.1f}%", f"{100 * choices['top']:.1f}%",
            f"{100 * choices['none']:.1f}%", str(data["justified_envy"]["count"]),
            str(data["idle_seats"]["seats"]), str(len(data["split_families"])),
            f"{worst['covered_days']}/{worst['requested_days']}" if worst else "-", _churn(data["churn"])]


def _churn(churn: dict[str, int] | None) -> str:
    """Pairs of the instance's previous plan kept / lost / new; '-' for a school without one."""
    return "-" if churn is None else f"{churn['kept']}/{churn['lost']}/{churn['new']}"


def _print_fairness(runs: list[dict[str, Any]]) -> None:
    """Pupils fully/partly/not served, choice shares, envy, idle seats, split families, the worst served."""
    rows = [_fairness_row(run) for run in runs if run.get("fairness")]
    if not rows:
        return
    print()
    print("fairness (pupils served: full/part/none; placements in 1st, top-3, unranked choice; envious pupil-days;"
          " idle seats with a waitlist; families split on a day; the worst served pupil's covered/requested days;"
          " churn: pairs of the previous plan kept/lost/new, '-' without one)")
    _table(FAIRNESS_COLUMNS, rows)



def _print_seat_policies(runs: list[dict[str, Any]]) -> None:
    """Each solver plan under both seat policies (`_seat_policies`)."""
    rows = [[run["instance"], row["policy"], f"{row['families_with_nothing']}/{row['families']}",
             str(row["fully"]), str(row["partly"]), str(row["not_at_all"]), f"{row['choice_seconds']:.2f}",
             "yes" if row["proven"] else "no"]
            for run in runs for row in run.get("seat_policies") or []]
    if not rows:
        return
    print()
    print("seat policies (one solver plan, its seats among equals handed out under each policy: families with no "
          "day / requesting families; pupils served every/some/no requested day; seconds of the choice; proven)")
    _table((("instance", 14), ("policy", 11), ("no day", 10), ("full", 6), ("part", 6), ("none", 6),
            ("seconds", 8), ("proven", 7)), rows)


if __name__ == "__main__":
    sys.exit(main())
