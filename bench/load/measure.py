"""The locust measurement end to end: `python -m bench.load.rush bench` (or `make bench-load`).

1. a scratch schema on the PostgreSQL server (`--db-url`, else TEST_DATABASE_URL, else the local `test`
   database), seeded with one school and `--parents` linked parents; dropped at the end;
2. gunicorn on 127.0.0.1: 4 sync workers by default (`--workers`, `--threads`), which did best on 2 cores: a
   submission makes about ten trips to PostgreSQL, and threads sharing one interpreter wait for its lock after
   each of them;
3. every parent signs in once over HTTP (argon2, a few at a time), timed on its own: a real parent signs in once
   and keeps the token for weeks, so sign-ins are reported apart from the steady state;
4. locust headless with `FastHttpUser`s holding those tokens; statistics are reset once every user is running,
   then `--seconds` of steady state are measured;
5. a table per endpoint (requests/s, p50/p95/p99 in ms, failures), submissions/s, the CPU each side used, and a
   check that every successful submission left its audit row.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load.rush import PASSWORD, REPO, gunicorn, postgres_schema, seed

LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")
SCENARIOS = {"rush": ["RushParent"], "browse": ["Parent"], "ceiling": ["CeilingParent"]}
SUBMIT = "PUT /request"


@dataclass(frozen=True)
class Row:
    name: str
    requests: int
    failures: int
    per_second: float
    p50: float
    p95: float
    p99: float


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def sign_in(base: str, phones: list[str], concurrency: int) -> tuple[list[str], Row]:
    """Each parent asks for a token once; returns the tokens and the sign-ins' timing."""

    def one(phone: str) -> tuple[float, str]:
        body = json.dumps({"phone": phone, "password": PASSWORD}).encode()
        request = urllib.request.Request(base + "/api/v1/tokens", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            token = json.loads(response.read())["token"]
        return (time.perf_counter() - started) * 1000, token

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, phones))
    elapsed = time.perf_counter() - started
    times = [ms for ms, _ in results]
    row = Row("POST /tokens (sign-in)", len(times), 0, len(times) / elapsed, percentile(times, 0.5),
              percentile(times, 0.95), percentile(times, 0.99))
    return [token for _, token in results], row


class CpuMeter:
    """Average cores used by gunicorn (with its workers), PostgreSQL, locust and the rest while it samples."""

    def __init__(self) -> None:
        import psutil

        self.psutil = psutil
        self.first: dict[int, tuple[str, float]] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.started = self.stopped = self.busy_before = self.busy_after = 0.0

    def _side(self, process: Any) -> str | None:
        cmdline = " ".join(process.info["cmdline"] or [])
        if "gunicorn" in cmdline and "webapp:create_app" in cmdline:
            return "gunicorn"
        if "locust" in cmdline and str(LOCUSTFILE) in cmdline:
            return "locust"
        if (process.info["name"] or "").startswith("postgres"):
            return "postgres"
        return None

    def sample(self) -> None:
        """Remember each process's CPU seconds; the first sample is the baseline (0 for later processes)."""
        baseline = not self.started
        if baseline:
            self.started = time.monotonic()
            self.busy_before = self._busy()
        self.busy_after = self._busy()
        for process in self.psutil.process_iter(["name", "cmdline", "cpu_times"]):
            try:
                side, times = self._side(process), process.info["cpu_times"]
            except (self.psutil.Error, TypeError):
                continue
            if side is None or times is None:
                continue
            used = times.user + times.system
            self.first.setdefault(process.pid, (side, used if baseline else 0.0))
            self.last[process.pid] = (side, used)
        self.stopped = time.monotonic()

    def _busy(self) -> float:
        times = self.psutil.cpu_times()
        return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))

    def cores(self) -> dict[str, float]:
        """Cores used by each side, and by everything else on the machine ("other": noise in the numbers)."""
        seconds = max(1e-9, self.stopped - self.started)
        totals = {"gunicorn": 0.0, "postgres": 0.0, "locust": 0.0}
        for pid, (side, used) in self.last.items():
            totals[side] += max(0.0, used - self.first[pid][1]) / seconds
        totals["other"] = max(0.0, (self.busy_after - self.busy_before) / seconds - sum(totals.values()))
        return totals


def read_stats(prefix: Path) -> list[Row]:
    rows = []
    with Path(f"{prefix}_stats.csv").open(newline="") as handle:
        for item in csv.DictReader(handle):
            name = "all requests" if item["Name"] == "Aggregated" else item["Name"]
            if int(item["Request Count"]) == 0:  # seen only before the statistics were reset
                continue
            rows.append(Row(name, int(item["Request Count"]),
                            int(item["Failure Count"]), float(item["Requests/s"]), float(item["50%"]),
                            float(item["95%"]), float(item["99%"])))
    return rows


def run_locust(base: str, tokens_file: Path, classes: list[str], users: int, spawn_rate: float, seconds: int,
               processes: int, prefix: Path, log: Path) -> dict[str, float]:
    """Run locust; return the cores each side used during the measured seconds."""
    warmup = int(users / spawn_rate) + 5  # every user running, its on_start done, before the statistics restart
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
               "-r", str(spawn_rate), "-t", f"{warmup + seconds}s", "-H", base, "--csv", str(prefix),
               "--only-summary", "--stop-timeout", "10", "--loglevel", "WARNING"]
    if processes > 1:
        command += ["--processes", str(processes)]
    env = {**os.environ, "LOAD_TOKENS": str(tokens_file), "LOAD_WARMUP": str(warmup), "PYTHONPATH": str(REPO)}
    meter = CpuMeter()
    with log.open("wb") as out:
        locust = subprocess.Popen([*command, *classes], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            time.sleep(warmup)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and locust.poll() is None:
                meter.sample()
                time.sleep(1)
            meter.sample()
            locust.wait(timeout=seconds + 60)
        finally:
            if locust.poll() is None:
                locust.kill()
                locust.wait()
    return meter.cores()


def stored_submissions(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM audit_log WHERE action IN ('care_request_submitted', 'care_request_updated')"
            )).scalar_one())
    finally:
        engine.dispose()


def table(rows: list[Row]) -> str:
    lines = ["| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | failures |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row.name} | {row.requests} | {row.per_second:.1f} | {row.p50:.0f} | {row.p95:.0f} | "
                     f"{row.p99:.0f} | {row.failures} |")
    return "\n".join(lines)


def bench(args: argparse.Namespace) -> int:
    url = args.database_url or os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    classes = SCENARIOS[args.scenario]
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch, postgres_schema(url) as scoped:
        work = Path(scratch)
        info = seed(scoped, args.parents)
        with gunicorn(scoped, work / "gunicorn.log", workers=args.workers, threads=args.threads,
                      options=args.gunicorn.split()) as base:
            tokens, signed = sign_in(base, info["phones"], args.sign_in_concurrency)
            tokens_file = work / "tokens.txt"
            tokens_file.write_text("\n".join(tokens))
            cores = run_locust(base, tokens_file, classes, args.users, args.spawn_rate, args.seconds,
                               args.processes, work / "locust", work / "locust.log")
            server_log = (work / "gunicorn.log").read_text(errors="replace")
        stored = stored_submissions(scoped)
        try:
            rows = read_stats(work / "locust")
        except (FileNotFoundError, KeyError, ValueError):
            print((work / "locust.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
    submits = next((row for row in rows if row.name == SUBMIT), None)
    print(f"scenario {args.scenario} ({' '.join(classes)}): {args.users} users, {args.seconds} s steady state, "
          f"gunicorn -w {args.workers} --threads {args.threads} {args.gunicorn}".rstrip() + f", {os.cpu_count()} cores")
    print(f"sign-in of {signed.requests} parents, {args.sign_in_concurrency} at a time: "
          f"{signed.per_second:.1f}/s, p50 {signed.p50:.0f} ms, p95 {signed.p95:.0f} ms")
    print(table(rows))
    if submits is not None:
        print(f"submissions/s: {submits.per_second * (1 - submits.failures / max(1, submits.requests)):.1f}"
              f" (p95 {submits.p95:.0f} ms); audit rows for submissions: {stored} "
              f"(locust counted {submits.requests - submits.failures} after its statistics reset)")
    print("cores used: " + ", ".join(f"{name} {value:.2f}" for name, value in cores.items()))
    errors = [line for line in server_log.splitlines() if "Traceback" in line or "Error" in line]
    if errors:
        print(f"server log has {len(errors)} error lines, first: {errors[0]}")
    failed = sum(row.failures for row in rows if row.name != "all requests")
    return 1 if failed or errors or (submits is not None and stored < submits.requests - submits.failures) else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db-url", "--database-url", dest="database_url",
                        help="PostgreSQL server (a scratch schema is used and dropped)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="rush")
    parser.add_argument("--parents", type=int, default=500)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--spawn-rate", type=float, default=100)
    parser.add_argument("--seconds", type=int, default=60, help="steady state measured")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn processes (sync workers when threads is 1)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gunicorn", default="", help="further gunicorn options, e.g. '--keep-alive 5'")
    parser.add_argument("--processes", type=int, default=1, help="locust processes")
    parser.add_argument("--sign-in-concurrency", type=int, default=4)
