"""`python -m bench.city` (`make bench-city`): a Kunming-scale city generated, allocated school by school, measured.

The city (default 950 schools, about half a million pupils, 150 to 3,000 pupils a school with a long tail of
big schools) is written into a fresh SQLite file through `webapp.services` (`school_from_instance`,
`instance_to_term`: the rows the product writes for an imported instance), then every school is allocated with
the local process pool exactly as `flask allocate --all` does. Reported: wall time, schools done, the share whose
coverage is proven optimal, peak memory of this process and of the largest child, and the median time to
render the city dashboard. `--reuse` keeps a database an earlier run wrote and only measures the dashboard.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import resource
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import click
from flask import Flask
from sqlalchemy import func, select, true, update

from scheduler import domain
from scheduler.generate import generate
from webapp import create_app
from webapp.bureau.city import allocate_batch, new_batch_id, solver_threads
from webapp.extensions import db
from webapp.jobs import CoverageProof
from webapp.models import Pupil, School, User
from webapp.services import instance_to_term, school_from_instance

MIN_PUPILS, MAX_PUPILS = 150, 3000
MEAN_PUPILS = 526
"""Kunming: about half a million primary pupils in about 950 schools."""
CITY = "昆明市"

TIME_LIMIT = 6.0
LATER_LEVELS_SECONDS = 0.75
"""Each school's limit, and the cap on its levels after coverage. A school whose coverage is proven in a second
mostly ends at the cap, so the cap sets the city's time and the limit only reaches the schools still unproven (the
rows of `scheduler.day_cuts` need a search of 3 s or more). The whole city on one 2-core machine: 6 s and 0.75 s
proved 890 of 950 schools in 12.2 min, 6 s and 0.5 s 889 in 10.4 min, 3 s and 1 s 869 in 11.8 min. Against 1 s, the
sampled schools' plans had 7 % fewer preference points with 0.75 s and 16 % fewer with 0.5 s
(`docs/benchmarks.md`). Since level 3 seats a plan's staffing by preference when its time is short, 0.75 s gives
the city's first 160 schools 49-60 % more preference points than it did."""


def school_sizes(count: int, seed: int, mean: float = MEAN_PUPILS) -> list[int]:
    """`count` school sizes between 150 and 3,000, right-skewed (log-normal) with the given mean."""
    rng = random.Random(seed)
    raw = [rng.lognormvariate(math.log(380), 0.7) for _ in range(count)]
    scale = 1.0
    for _ in range(30):  # rescale until the clipped sizes have the wanted mean
        sizes = [min(MAX_PUPILS, max(MIN_PUPILS, round(x * scale))) for x in raw]
        average = sum(sizes) / max(1, count)
        if abs(average - mean) < 1:
            break
        scale *= mean / average
    return sizes


def build_city(
    schools: int,
    seed: int,
    *,
    tight_share: float = 0.2,
    sizes: list[int] | None = None,
    echo: Any = click.echo,
) -> tuple[int, int]:
    """Generate the city and store it in the current app's (empty) database; returns (schools, pupils).

    Each school goes in through `webapp.services`, the path seed-demo and the instance import take, so the
    benchmark measures the rows the product writes. Schools are KM-0001..., spread over the districts.
    """
    from scheduler.generate import DISTRICTS

    rng = random.Random(seed)
    sizes = sizes or school_sizes(schools, seed)
    total = 0
    with click.progressbar(sizes, label="generating", file=None) as bar:
        for index, size in enumerate(bar):
            instance = generate(size, seed * 100_000 + index, tight=rng.random() < tight_share)
            district = DISTRICTS[index % len(DISTRICTS)] if index < len(DISTRICTS) else rng.choice(DISTRICTS)
            code = f"KM-{index + 1:04d}"
            instance = dataclasses.replace(instance, school=domain.School(code, instance.school.name, district))
            school = school_from_instance(instance, city=CITY)
            instance_to_term(instance, school)
            total += size
    echo(f"city: {schools} schools, {total} pupils")
    return schools, total


def _peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def dashboard_seconds(app: Any, repeats: int = 5) -> float:
    """Median wall time of GET /bureau/ for a city-wide bureau user (test client, after one warm-up)."""
    from webapp.security import hash_password

    password = secrets.token_urlsafe(12)
    with app.app_context():
        user = User(
            role="bureau", username=f"bench-{secrets.token_hex(3)}", password_hash=hash_password(password)
        )
        db.session.add(user)
        db.session.commit()
        username = user.username
    client = app.test_client()
    response = client.post("/login", data={"login": username, "password": password})
    if response.status_code != 302:
        raise click.ClickException("could not sign in to the dashboard")
    client.get("/bureau/")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get("/bureau/")
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise click.ClickException(f"dashboard answered {response.status_code}")
    return statistics.median(times)


def dashboard_comparison(app: Any) -> list[tuple[str, str]]:
    """The dashboard with each run's stored summary, with summaries lacking their fairness counts, then counted
    from the rows (summaries cleared); same process, same database, so the ratios hold. Also times
    `summarize-runs` storing every run's summary and reading every run's metrics (the fairness figures' other
    possible source)."""
    from webapp import run_summary
    from webapp.models import AllocationRun

    def summarize() -> float:
        with app.app_context():
            started = time.perf_counter()
            run_summary.store(db.session.scalars(select(AllocationRun.id).where(AllocationRun.state == "done")))
            db.session.commit()
            return time.perf_counter() - started

    def read_metrics() -> float:
        """What the fairness figures would cost read from each run's metrics instead of its summary."""
        from webapp.run_metrics import fairness_counts

        with app.app_context():
            started = time.perf_counter()
            for metrics in db.session.scalars(select(AllocationRun.metrics).where(AllocationRun.state == "done")):
                fairness_counts(metrics)
            return time.perf_counter() - started

    backfill = summarize()
    stored = dashboard_seconds(app)
    metrics_read = read_metrics()
    with app.app_context():
        for run_id, summary in db.session.execute(select(AllocationRun.id, AllocationRun.summary)).all():
            kept = {key: value for key, value in (summary or {}).items() if key != "fairness"}
            db.session.execute(update(AllocationRun).where(AllocationRun.id == run_id).values(summary=kept or None))
        db.session.commit()
    without_fairness = dashboard_seconds(app)
    with app.app_context():
        db.session.execute(update(AllocationRun).values(summary=None))
        db.session.commit()
    counted = dashboard_seconds(app)
    summarize()
    return [
        ("dashboard render, stored summaries (median of 5)", f"{stored * 1000:.0f} ms"),
        ("dashboard render, summaries without fairness", f"{without_fairness * 1000:.0f} ms "
                                                         f"({stored / max(without_fairness, 1e-9):.2f}x of it with)"),
        ("reading every run's metrics for fairness instead", f"{metrics_read * 1000:.0f} ms"),
        ("dashboard render, counted from rows (median of 5)", f"{counted * 1000:.0f} ms "
                                                             f"({counted / max(stored, 1e-9):.1f}x slower)"),
        ("summarize-runs, every run of the city", f"{backfill:.1f} s"),
    ]


def preference_totals(run_ids: list[int]) -> tuple[int, int, int]:
    """Level 3 (preference points) of the given runs, summed: (value, bound, runs whose level 3 is proven), from the
    levels each run stored in its stats."""
    from webapp.models import AllocationRun

    value = bound = proven = 0
    for stats in db.session.scalars(select(AllocationRun.stats).where(AllocationRun.id.in_(run_ids))):
        for level in (stats or {}).get("levels", []):
            if level["name"] == "preference" and not level.get("skipped"):
                value, bound = value + level["value"], bound + level["bound"]
                proven += level["status"] == "OPTIMAL"
    return value, bound, proven


def _print_table(table: list[tuple[str, str]]) -> None:
    click.echo("")
    width = max(len(k) for k, _ in table)
    for key, value in table:
        click.echo(f"{key:<{width}}  {value}")


def instance_path() -> str:
    """The web app's instance folder (where `create_app` keeps app.db): the default home of bench-city.db."""
    return Flask("webapp").instance_path


@click.command()
@click.option("--schools", type=int, default=950, show_default=True)
@click.option("--time-limit", type=float, default=TIME_LIMIT, show_default=True, help="seconds per school")
@click.option(
    "--later-levels",
    type=float,
    default=LATER_LEVELS_SECONDS,
    show_default=True,
    help="seconds per school for the levels after coverage (BUREAU_LATER_LEVELS_SECONDS)",
)
@click.option("--workers", type=int, default=None, help="schools solved side by side (default: cpu count)")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite file to (re)create (default: instance/bench-city.db)",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--reuse", is_flag=True, help="keep the database an earlier run wrote and only measure the dashboard"
)
def main(
    schools: int,
    time_limit: float,
    later_levels: float,
    workers: int | None,
    db_path: str | None,
    seed: int,
    reuse: bool,
) -> None:
    """Generate a Kunming-scale city, allocate every school with the process pool, and report."""
    path = Path(db_path or os.path.join(instance_path(), "bench-city.db")).resolve()
    if reuse and not path.exists():
        raise click.UsageError(f"--reuse: {path} does not exist; run bench.city without --reuse first")
    for suffix in ("", "-wal", "-shm"):
        if not reuse:
            Path(str(path) + suffix).unlink(missing_ok=True)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "SECRET_KEY": secrets.token_hex(16),
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "BUREAU_LATER_LEVELS_SECONDS": later_levels,
        }
    )
    pool_size = max(1, workers or os.cpu_count() or 1)
    if reuse:
        with app.app_context():
            n_schools = db.session.scalar(select(func.count()).select_from(School))
            n_pupils = db.session.scalar(select(func.count()).select_from(Pupil))
        click.echo(f"database {path}: {n_schools} schools, {n_pupils} pupils")
        _print_table([("cores", f"{os.cpu_count()}"), *dashboard_comparison(app)])
        return
    with app.app_context():
        db.create_all()
        started = time.monotonic()
        _, pupils = build_city(schools, seed)
        generated = time.monotonic() - started
        click.echo(
            f"database {path} written in {generated:.1f} s; allocating with {pool_size} processes x "
            f"{solver_threads(pool_size)} solver thread(s), {time_limit:g} s per school, at most "
            f"{later_levels:g} s of it after coverage"
        )
        started = time.monotonic()
        results, _ = allocate_batch(
            true(), batch_id=new_batch_id(), pool_size=pool_size, time_limit=time_limit, scope="city"
        )
        wall = time.monotonic() - started
        points, most, preference_proven = preference_totals([r.run_id for r in results if r.state == "done"])
    dashboard = dashboard_comparison(app)
    own, children = _peak_mb()
    done = [r for r in results if r.state == "done"]
    proof = CoverageProof.of([r.short for r in results])
    covered = sum(r.coverage or 0 for r in done)
    solve_times = sorted(r.seconds for r in done) or [0.0]
    table = [
        ("schools", f"{schools}"),
        ("pupils", f"{pupils}"),
        ("cores", f"{os.cpu_count()}"),
        ("pool size x solver threads", f"{pool_size} x {solver_threads(pool_size)}"),
        ("time limit per school", f"{time_limit:g} s"),
        ("levels after coverage, at most", f"{later_levels:g} s"),
        ("city generated and stored", f"{generated:.1f} s"),
        ("allocation wall time", f"{wall:.1f} s ({wall / 60:.1f} min)"),
        ("schools done", f"{len(done)}/{len(results)}"),
        ("coverage proven optimal", f"{proof.proven}/{len(done)} ({100 * proof.proven / max(1, len(done)):.1f}%)"),
        ("the others' coverage short, at most",
         f"{proof.short} weighted pupil-days ({100 * proof.short / max(1, covered):.3f}% of the city's {covered})"),
        ("preference points / bound, summed", f"{points} / {most} ({100 * points / max(1, most):.1f}%), "
                                               f"proven at {preference_proven} schools"),
        ("school time median / max", f"{statistics.median(solve_times):.1f} s / {solve_times[-1]:.1f} s"),
        ("peak memory, this process", f"{own:.0f} MB"),
        ("peak memory, largest child", f"{children:.0f} MB"),
        *dashboard,
    ]
    _print_table(table)
    failed = [r for r in results if r.state != "done"]
    for r in failed:
        click.echo(f"failed: {r.school_code} {r.error}")


if __name__ == "__main__":
    main()
