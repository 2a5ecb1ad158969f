"""Benchmark: what-if capacity advice on generated schools, level by level (value, proven bound, seconds).

`python -m bench.advice [--sizes 3000] [--variants tight] [--seed 0] [--time-limit 240] [--demo]` (or
`make bench-advice`). `--demo` adds the demo's 金碧小学 (1,500 pupils, tight, as `webapp.demo` draws it). Each
school runs in a fresh spawned process; the machine's load average is printed with the results.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from bench.crowded import crowded
from scheduler.domain import Instance
from scheduler.generate import generate

DEMO_SCHOOL = (1500, 2036)
"""(pupils, seed) of the demo's tight 金碧小学: `generate(1500, 2026 + 10, tight=True)`."""


def run_advice(instance: Instance, time_limit: float, seed: int) -> dict[str, Any]:
    from scheduler.lexicographic import SolverConfig
    from scheduler.whatif import advise

    advice = advise(instance, SolverConfig(time_limit=time_limit, workers=1, seed=seed))
    return {
        "demand": advice.demand, "coverage_now": advice.coverage_now, "coverage_after": advice.coverage_after,
        "gained": advice.gained, "items_sum": sum(item.pupil_days_covered for item in advice.items),
        "hired": advice.extra_teachers, "seats": advice.extra_seats, "seconds": advice.seconds,
        "levels": [(level.name, level.value, level.bound, str(level.status), level.seconds)
                   for level in advice.levels],
    }


def _instances(args: argparse.Namespace) -> list[tuple[str, Instance]]:
    found = []
    for size in (int(s) for s in args.sizes.split(",") if s):
        for variant in args.variants.split(","):
            instance = (crowded(size, args.seed) if variant == "crowded"
                        else generate(size, args.seed, tight=variant == "tight"))
            found.append((f"{variant}-{size}", instance))
    if args.demo:
        pupils, seed = DEMO_SCHOOL
        found.append(("demo-jinbi", generate(pupils, seed, tight=True)))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.advice", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000")
    parser.add_argument("--variants", default="tight", help="normal, tight and/or crowded, comma separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=240.0, help="seconds for the whole advice")
    parser.add_argument("--demo", action="store_true", help="also the demo's tight 1,500-pupil school")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, instance in _instances(args):
        began = time.monotonic()
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            result = pool.submit(run_advice, instance, args.time_limit, args.seed).result()
        print(f"\n{name}: demand {result['demand']}, covered now {result['coverage_now']}, after "
              f"{result['coverage_after']}; gap {result['gained']} = items {result['items_sum']}; hire "
              f"{result['hired']}, seats {result['seats']}; {time.monotonic() - began:.1f} s wall")
        print(f"  {'level':16} {'value':>7} {'bound':>7} {'status':9} {'seconds':>8}")
        for level, value, bound, status, seconds in result["levels"]:
            print(f"  {level:16} {value:>7} {bound:>7} {status:9} {seconds:>8.1f}")
        print(f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
