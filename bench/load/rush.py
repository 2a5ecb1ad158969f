"""Load-test helpers: seed a school with many linked parents, run gunicorn, and a PostgreSQL scratch schema.

Also a command line for the locust scenario (see `bench/load/locustfile.py`):

    .venv/bin/python -m bench.load.rush seed DATABASE_URL [--parents 500]
    .venv/bin/python -m bench.load.rush serve DATABASE_URL [--port 8000]     # gunicorn -w 4 (sync workers)
    .venv/bin/python -m bench.load.rush bench [--scenario rush|browse|ceiling] [--users 300]   # all of it, measured
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "deadline-rush-passphrase"
SECRET = "load-test-secret-key-0123456789abcdef"
PHONE_BASE = 13900000000


def phone(index: int) -> str:
    return str(PHONE_BASE + index)


def app_config(database_url: str) -> dict[str, Any]:
    """The config the server runs with: production-like (rate limits on, in memory), a fixed secret."""
    return {"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": SECRET, "RATELIMIT_STORAGE_URI": "memory://",
            "RATELIMIT_ENABLED": True, "WTF_CSRF_ENABLED": True}


def seed(database_url: str, parents: int) -> dict[str, Any]:
    """Create the schema, one school with `parents` pupils and one linked parent each (same password)."""
    from sqlalchemy import insert, select

    from tests.conftest import make_school
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Guardianship, Pupil, Term, User, utcnow
    from webapp.security import hash_password

    app = create_app({**app_config(database_url), "TESTING": True, "RATELIMIT_ENABLED": False})
    with app.app_context():
        db.create_all()
        school = make_school("KM-LOAD-0001", n_pupils=parents)
        term = db.session.scalar(select(Term).where(Term.school_id == school.id))
        assert term is not None
        query = select(Pupil).where(Pupil.school_id == school.id).order_by(Pupil.id)
        pupils = db.session.scalars(query).all()
        shared_hash = hash_password(PASSWORD)
        now = utcnow()
        db.session.execute(insert(User), [
            {"role": "parent", "phone": phone(i), "password_hash": shared_hash, "display_name": f"家长{i}",
             "consent_policy_version": "2026-01", "consent_at": now, "session_version": 1, "active": True}
            for i in range(parents)])
        users = db.session.scalars(select(User).where(User.role == "parent").order_by(User.phone)).all()
        db.session.execute(insert(Guardianship), [
            {"user_id": user.id, "pupil_id": pupil.id, "relation": "mother",
             "consent_policy_version": "2026-01", "consent_at": now}
            for user, pupil in zip(users, pupils, strict=True)])
        db.session.commit()
        info = {"term_id": term.id, "pupils": [p.id for p in pupils], "phones": [u.phone for u in users]}
        db.session.remove()
        db.engine.dispose()
    return info


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(database_url: str, log_path: Path, *, port: int | None = None, workers: int = 2,
             threads: int = 4, options: Sequence[str] = (), config: dict[str, Any] | None = None) -> Iterator[str]:
    """Run the app under gunicorn on 127.0.0.1 (`config` added to `app_config`); yield its base URL; stop it
    (and only it) afterwards."""
    port = port or free_port()
    target = f"webapp:create_app({ {**app_config(database_url), **(config or {})}!r})"
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads),
               "-b", f"127.0.0.1:{port}", "--timeout", "60", "--error-logfile", "-", *options, target]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("APP_ENV", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    tail = log_path.read_text()[-2000:]
                    raise RuntimeError(f"gunicorn exited with {process.returncode}: {tail}")
                try:
                    with urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=2) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start within 60 s")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema on the server at `url`, used through `search_path`; dropped with everything in it."""
    import psycopg

    from webapp import normalise_database_url

    name = f"rush_{uuid.uuid4().hex[:10]}"
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    separator = "&" if "?" in url else "?"
    scoped = normalise_database_url(url) + f"{separator}options=-csearch_path%3D{name}"
    try:
        yield scoped
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load.rush")
    sub = parser.add_subparsers(dest="command", required=True)
    seed_cmd = sub.add_parser("seed", help="create the schema and a school with linked parents")
    seed_cmd.add_argument("database_url")
    seed_cmd.add_argument("--parents", type=int, default=500)
    serve_cmd = sub.add_parser("serve", help="run gunicorn (4 sync workers) until interrupted")
    serve_cmd.add_argument("database_url")
    serve_cmd.add_argument("--port", type=int, default=8000)
    serve_cmd.add_argument("--workers", type=int, default=4)
    serve_cmd.add_argument("--threads", type=int, default=1)
    from bench.load import measure

    bench_cmd = sub.add_parser("bench", help="seed a scratch schema, serve, sign in, run locust, report")
    measure.add_arguments(bench_cmd)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return measure.bench(args)
    if args.command == "seed":
        info = seed(args.database_url, args.parents)
        phones = info["phones"]
        print(f"seeded {len(phones)} parents {phones[0]}..{phones[-1]}, password {PASSWORD}")
        return 0
    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with gunicorn(args.database_url, Path("gunicorn-load.log"), port=args.port, workers=args.workers,
                  threads=args.threads) as base:
        print(f"serving on {base} (log: gunicorn-load.log); Ctrl-C to stop")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
