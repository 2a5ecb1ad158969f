"""Command line: `python -m scheduler solve|validate|generate ...` (benchmarks: `make bench`, outside the package).

Exit codes: 0 done, 1 no allocation (solve) or a broken solution (validate), 2 bad input or usage,
3 an unexpected internal error. Problems go to stderr one per line as `error: ...`, never as a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from scheduler.domain import SEAT_POLICIES
from scheduler.generate import generate
from scheduler.io import (
    InputError,
    dumps,
    instance_to_json,
    load_instance,
    load_solution,
    solution_to_json,
    write_json,
)
from scheduler.solve import SolverConfig, solve
from scheduler.validation import validate

EXIT_OK = 0
EXIT_NO_SOLUTION = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3

log = logging.getLogger("scheduler")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in the same `error: ...` form and exit code as bad input."""

    def error(self, message: str) -> Any:  # argparse declares NoReturn
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _emit(data: dict[str, Any], output: str | None) -> None:
    if output is None or output == "-":
        sys.stdout.buffer.write(dumps(data).encode("utf-8"))
        sys.stdout.flush()
    else:
        write_json(data, output)


def _fail(problems: Sequence[str]) -> int:
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_solve(args: argparse.Namespace) -> int:
    instance = load_instance(args.instance)
    if args.seat_policy is not None:
        instance = dataclasses.replace(instance, seat_policy=args.seat_policy)

    settings: dict[str, Any] = {}
    if args.time_limit is not None:
        settings["time_limit"] = args.time_limit
    if args.workers is not None:
        settings["workers"] = args.workers
    if args.seed is not None:
        settings["seed"] = args.seed
    started = time.monotonic()
    solution = solve(instance, config=SolverConfig(**settings))
    seconds = time.monotonic() - started
    _emit(solution_to_json(solution), args.output)
    objective = solution.objective
    print(f"{solution.status}: coverage {objective.coverage}/{objective.coverage_bound} "
          f"(demand {instance.demand()}), {len(solution.unserved)} pupil-days unserved, {seconds:.1f} s",
          file=sys.stderr)
    if not solution.has_allocation:
        for entry in solution.unserved[:20]:
            print(f"  {entry.pupil} day {entry.day}: {entry.reason}", file=sys.stderr)
        return EXIT_NO_SOLUTION
    report = validate(instance, solution)
    for violation in report.violations:
        print(f"warning: {violation.message}", file=sys.stderr)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    instance = load_instance(args.instance)
    solution = load_solution(args.solution)

    report = validate(instance, solution)
    for violation in report.violations:
        print(violation.message)
    for mismatch in report.objective_mismatches + report.unserved_mismatches:
        print(f"mismatch: {mismatch}")
    objective = report.objective
    verdict = "valid" if report.consistent else (
        f"{len(report.violations)} violation(s), "
        f"{len(report.objective_mismatches) + len(report.unserved_mismatches)} mismatch(es)")
    print(f"{verdict}: coverage {objective.coverage}, stability {objective.stability}, preference "
          f"{objective.preference}, max teacher load {objective.max_teacher_load}, "
          f"{report.total_staffing} staffing pairs", file=sys.stderr)
    return EXIT_OK if report.consistent else EXIT_NO_SOLUTION


def cmd_generate(args: argparse.Namespace) -> int:

    instance = generate(pupils=args.pupils, seed=args.seed, tight=args.tight)
    _emit(instance_to_json(instance), args.output)
    print(f"generated {len(instance.pupils)} pupils, {len(instance.sessions)} sessions, "
          f"{len(instance.teachers)} teachers (demand {instance.demand()})", file=sys.stderr)
    return EXIT_OK


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m scheduler", description="After-school care allocation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log solver progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    solve = commands.add_parser("solve", help="allocate pupils and teachers for one instance")
    solve.add_argument("instance", help="instance JSON (afterschool-instance/1)")
    solve.add_argument("-o", "--output", help="solution JSON to write (default: stdout)")
    solve.add_argument("--time-limit", type=_positive_float, help="seconds for the whole solve")
    solve.add_argument("--workers", type=_positive_int, help="solver threads")
    solve.add_argument("--seed", type=int, help="random seed (search and lottery among equals)")
    solve.add_argument("--seat-policy", choices=SEAT_POLICIES,
                       help="who among equals gets the seats (overrides the instance's seat_policy): spread "
                            "(fewest families with nothing, the default) or whole_week (most pupils covered every "
                            "day they asked for)")
    solve.set_defaults(run=cmd_solve)

    validate = commands.add_parser("validate", help="check a solution against the hard rules")
    validate.add_argument("instance", help="instance JSON")
    validate.add_argument("solution", help="solution JSON")
    validate.set_defaults(run=cmd_validate)

    generate = commands.add_parser("generate", help="write a realistic random instance")
    generate.add_argument("--pupils", type=_positive_int, required=True, help="number of pupils")
    generate.add_argument("--seed", type=int, required=True, help="random seed")
    generate.add_argument("--tight", action="store_true", help="fewer seats and teachers than demand")
    generate.add_argument("-o", "--output", help="instance JSON to write (default: stdout)")
    generate.set_defaults(run=cmd_generate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    run = args.run
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(run(args))
    except InputError as error:
        return _fail(error.problems)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        return _fail([f"{error.filename or ''}: {error.strerror or error}".lstrip(": ")])
    except ModuleNotFoundError as error:
        print(f"error: this command needs module {error.name}, which is not installed", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as error:  # a bug, not bad input: still one line, with the detail in the debug log
        log.debug("unexpected error", exc_info=True)
        print(f"error: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
