"""`python -m bench.rosters` (`make bench-rosters`): the roster pages of one big published school, timed.

A school of 3,000 pupils (`scheduler.generate`) is written into a fresh SQLite file (or the empty database at
`--db-url`) through `webapp.services`, the lottery baseline gives it a plan (a real, valid allocation that takes
a second rather than a solver run), and `allocation.service.publish_run` publishes it. A signed-in school admin
then fetches the attendance sheets page (one weekday, the default, and the whole week), its `.xlsx` and the other
roster pages through the test client: one warm-up, then the median
of `--repeats`, with the number of SQL statements each request sends. Targets: page <= 300 ms, .xlsx <= 1 s.
"""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import event

from scheduler.baselines import lottery
from scheduler.generate import generate
from webapp import create_app
from webapp.allocation.service import clock, publish_run
from webapp.extensions import db
from webapp.models import AllocationRun, User
from webapp.security import hash_password
from webapp.services import instance_to_term, school_from_instance, store_solution

PAGE_TARGET, XLSX_TARGET = 0.300, 1.0


def build_school(pupils: int, seed: int) -> tuple[int, str, str]:
    """A published school of `pupils` pupils and its admin's sign-in; returns (term id, login, password)."""
    instance = generate(pupils, seed)
    school = school_from_instance(instance, city="昆明市")
    term = instance_to_term(instance, school)
    term.requests_close_at = clock() - timedelta(days=1)
    run = AllocationRun(term=term, state="running")
    db.session.add(run)
    db.session.commit()
    store_solution(term, lottery(instance, seed), run, instance=instance)
    publish_run(run, None)
    password = secrets.token_urlsafe(12)
    admin = User(role="school_admin", username=f"bench-{secrets.token_hex(3)}", school_id=school.id,
                 password_hash=hash_password(password))
    db.session.add(admin)
    db.session.commit()
    return term.id, str(admin.username), password


class StatementCounter:
    """Counts the SQL statements the engine sends while it is attached."""

    def __init__(self, engine: Any) -> None:
        self.count = 0
        self.engine = engine

    def __call__(self, *_args: Any) -> None:
        self.count += 1

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self)


def timed(app: Any, client: Any, url: str, repeats: int) -> tuple[float, int, int]:
    """(median seconds, statements per request, body bytes) of GET `url` after one warm-up."""
    response = client.get(url)
    if response.status_code != 200:
        raise click.ClickException(f"{url} answered {response.status_code}")
    with app.app_context():
        engine = db.engine
    times = []
    with StatementCounter(engine) as counter:
        for _ in range(repeats):
            started = time.perf_counter()
            response = client.get(url)
            body = response.get_data()
            times.append(time.perf_counter() - started)
    return statistics.median(times), counter.count // repeats, len(body)


@click.command()
@click.option("--pupils", type=int, default=3000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--repeats", type=int, default=5, show_default=True)
@click.option("--db-url", default=None, help="an empty database to use (default: a temporary SQLite file)")
def main(pupils: int, seed: int, repeats: int, db_url: str | None) -> None:
    """Build a published school of PUPILS pupils and time its attendance sheets page and workbook."""
    with tempfile.TemporaryDirectory() as folder:
        url = db_url or f"sqlite:///{Path(folder) / 'bench-rosters.db'}"
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secrets.token_hex(16),
                          "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
        started = time.perf_counter()
        with app.app_context():
            db.create_all()
            term_id, login, password = build_school(pupils, seed)
        built = time.perf_counter() - started
        client = app.test_client()
        if client.post("/login", data={"login": login, "password": password}).status_code != 302:
            raise click.ClickException("could not sign in as the school admin")
        rows = [("pupils", f"{pupils}"), ("cores", f"{os.cpu_count()}"),
                ("school built and published", f"{built:.1f} s")]
        for label, path, target in (("sessions page, one weekday", "sessions", PAGE_TARGET),
                                    ("sessions page, whole week", "sessions?day=all", None),
                                    ("sessions.xlsx", "sessions.xlsx", XLSX_TARGET),
                                    ("classes page", "classes", None), ("classes.xlsx", "classes.xlsx", None),
                                    ("teachers page", "teachers", None)):
            seconds, statements, size = timed(app, client, f"/admin/rosters/{term_id}/{path}", repeats)
            verdict = "" if target is None else ("  ok" if seconds <= target else f"  OVER {target * 1000:.0f} ms")
            rows.append((f"{label} (median of {repeats})",
                         f"{seconds * 1000:.0f} ms, {statements} SQL statements, {size // 1024} KiB{verdict}"))
        width = max(len(key) for key, _ in rows)
        for key, value in rows:
            click.echo(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
