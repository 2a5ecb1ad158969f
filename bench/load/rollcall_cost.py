"""What one roll-call mark costs the server, in-process: SQL statements, CPU time, response size.

    .venv/bin/python -m bench.load.rollcall_cost [--db-url URL] [--marks 500] [--profile 25]
    make bench-rollcall-cost [DB_URL=postgresql://...]

Seeds the roll-call school of `bench.load.rollcall` (3,000 pupils, 60 sessions of 50 today) in a scratch
PostgreSQL schema (or `--database-url sqlite:///...`), signs in one duty teacher through the login form with
the Flask test client (no HTTP, no other load: the numbers do not depend on how busy the machine is, apart
from the CPU seconds' noise), then taps `--marks` times through the session's pupils (present, then late with
a reason, then present again with one: every tap writes a row and its audit row), two ways:

- `fetch`: the phone page's script posts the form (`X-Requested-With: fetch`) and puts the answer, the one row, in
  place (code without that answer redirects: then this is the post alone);
- `reload`: without script the form posts, the answer is a redirect and the phone reloads the whole list;
- `alert`: another teacher's phone marks each of its session's pupils absent once, fetched: the day's first
  unreported absence, which raises the absence alert (the family told; the bench's classes have no class teacher,
  so the alert notes that instead of messaging one). At most the session's pupils less the warm-up are measured.

For each: SQL statements per tap (an SQLAlchemy event listener), CPU milliseconds per tap
(`time.process_time`, this process only: Flask, Jinja, SQLAlchemy, psycopg), the database's time per tap (wall
time spent inside cursor executes) and the response bytes. `--profile N` adds a cProfile of N fetch taps.
`--statements` prints the statements of one tap of each kind. Statement counts are deterministic; the
test `tests/webapp/daily/test_rollcall_cost.py` bounds them.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
CLIENT_RE = re.compile(r'name="client_id" value="([^"]+)"')


@dataclass
class Tally:
    """SQL statements seen while `counting` is on, with the time spent executing them."""

    counting: bool = False
    statements: list[str] = field(default_factory=list)
    seconds: float = 0.0
    started: float = 0.0

    def attach(self, engine: Any) -> None:
        from sqlalchemy import event

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                    executemany: bool) -> None:
            if self.counting:
                self.statements.append(statement)
                self.started = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                   executemany: bool) -> None:
            if self.counting:
                self.seconds += time.perf_counter() - self.started

    @contextmanager
    def on(self) -> Iterator[None]:
        self.counting = True
        try:
            yield
        finally:
            self.counting = False


@dataclass(frozen=True)
class Cost:
    kind: str
    taps: int
    statements: float
    cpu_ms: float
    sql_ms: float
    wall_ms: float
    response_bytes: float


class Phone:
    """One duty teacher's phone on the test client: signed in, the session's page open."""

    def __init__(self, app: Any, plan: dict[str, Any], password: str) -> None:
        self.client = app.test_client()
        login = self.client.get("/login").get_data(as_text=True)
        found = CSRF_RE.search(login)
        assert found is not None, "no CSRF token on the login page"
        signed = self.client.post("/login", data={"csrf_token": found.group(1), "login": plan["login"],
                                                  "password": password})
        assert signed.status_code == 302, signed.status_code
        self.session_id: int = plan["session"]
        self.pupils: list[int] = plan["pupils"]
        self.page = f"/daily/duty/sessions/{self.session_id}"
        html = self.client.get(self.page).get_data(as_text=True)
        token = CSRF_RE.search(html)
        assert token is not None, "no CSRF token on the roll-call page"
        self.csrf = token.group(1)
        self.turn = 0

    def absent(self) -> int:
        """The next pupil marked absent for the first time today, as the page's script sends it."""
        pupil = self.pupils[self.turn]
        self.turn += 1
        body = {"csrf_token": self.csrf, "pupil_id": str(pupil), "session_id": str(self.session_id),
                "client_id": f"alert-{os.getpid()}-{self.turn}-{time.monotonic_ns()}", "status": "absent",
                "reason": ""}
        response = self.client.post(f"{self.page}/mark", data=body, headers={"X-Requested-With": "fetch"})
        text = response.get_data(as_text=True)
        assert response.status_code == 200 and "alert-note" in text, (response.status_code, text[:300])
        return len(response.get_data())

    def tap(self, fetch: bool) -> int:
        """One mark; with `fetch` as the page's script sends it, else as the plain form plus the reload."""
        pupil = self.pupils[self.turn % len(self.pupils)]
        round_no = self.turn // len(self.pupils)
        late = round_no % 2 == 1
        self.turn += 1
        body = {"csrf_token": self.csrf, "pupil_id": str(pupil), "session_id": str(self.session_id),
                "client_id": f"cost-{os.getpid()}-{self.turn}-{int(fetch)}-{time.monotonic_ns()}",
                "status": "late" if late else "present", "reason": "更正" if round_no else ""}
        headers = {"X-Requested-With": "fetch"} if fetch else {}
        response = self.client.post(f"{self.page}/mark", data=body, headers=headers)
        size = len(response.get_data())
        if fetch:
            assert response.status_code in (200, 201, 302), (response.status_code, response.get_data()[:300])
            return size
        assert response.status_code == 302, (response.status_code, response.get_data()[:300])
        page = self.client.get(self.page)
        text = page.get_data(as_text=True)
        assert page.status_code == 200 and "flash-error" not in text, text[text.find("flash-error"):][:300]
        return size + len(page.get_data())


def measure(phone: Phone, tally: Tally, kind: str, taps: int) -> Cost:
    fetch = kind == "fetch"
    tap = phone.absent if kind == "alert" else lambda: phone.tap(fetch)
    if kind == "alert":
        taps = min(taps, len(phone.pupils) - 10)
    for _ in range(10):  # warm: templates compiled, statements cached, connections in the pool
        tap()
    tally.statements.clear()
    tally.seconds = 0.0
    size = 0
    cpu, wall = time.process_time(), time.perf_counter()
    with tally.on():
        for _ in range(taps):
            size += tap()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Cost(kind, taps, len(tally.statements) / taps, cpu * 1000 / taps, tally.seconds * 1000 / taps,
                wall * 1000 / taps, size / taps)


def show_statements(phone: Phone, tally: Tally) -> None:
    for kind in ("fetch", "reload"):
        tally.statements.clear()
        with tally.on():
            phone.tap(kind == "fetch")
        print(f"-- one {kind} tap: {len(tally.statements)} statements")
        for statement in tally.statements:
            print("   " + " ".join(statement.split())[:160])


def run(args: argparse.Namespace) -> list[Cost]:
    from bench.load.rollcall import seed
    from bench.load.rush import PASSWORD, app_config, postgres_schema

    url = args.database_url or os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    scratch = postgres_schema(url) if url.startswith("postgresql") else nullcontext(url)
    with scratch as scoped:
        plan = seed(scoped, args.pupils, args.teachers)
        from webapp import create_app
        from webapp.extensions import db

        app = create_app({**app_config(scoped), "LOGIN_RATE_LIMIT": "1000 per minute"})
        tally = Tally()
        with app.app_context():
            tally.attach(db.engine)
        phone = Phone(app, plan[0], PASSWORD)
        if args.statements:
            show_statements(phone, tally)
        costs = [measure(Phone(app, plan[1], PASSWORD) if kind == "alert" else phone, tally, kind, args.marks)
                 for kind in args.kinds.split(",")]
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.profile):
                phone.tap(True)
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(45)
            print(out.getvalue())
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return costs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load.rollcall_cost")
    parser.add_argument("--db-url", "--database-url", dest="database_url",
                        help="PostgreSQL server (a scratch schema is used and dropped), "
                        "or sqlite:///path")
    parser.add_argument("--pupils", type=int, default=3000)
    parser.add_argument("--teachers", type=int, default=60)
    parser.add_argument("--marks", type=int, default=500, help="taps measured per kind")
    parser.add_argument("--kinds", default="fetch,reload,alert")
    parser.add_argument("--profile", type=int, default=0, help="cProfile this many fetch taps")
    parser.add_argument("--statements", action="store_true", help="print the statements of one tap")
    args = parser.parse_args(argv)
    costs = run(args)
    print(f"roll-call cost per tap: {args.pupils} pupils, {args.teachers} sessions, one teacher, "
          f"in-process; load average {os.getloadavg()[0]:.1f}")
    print("| tap | taps | SQL statements | CPU ms | SQL ms | wall ms | response bytes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for cost in costs:
        print(f"| {cost.kind} | {cost.taps} | {cost.statements:.1f} | {cost.cpu_ms:.1f} | {cost.sql_ms:.1f} | "
              f"{cost.wall_ms:.1f} | {cost.response_bytes:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
