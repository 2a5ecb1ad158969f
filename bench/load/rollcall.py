"""The roll-call rush: 60 duty teachers of a 3,000-pupil school mark their pupils at once, on their phones.

    .venv/bin/python -m bench.load.rollcall [--db-url URL] [--pupils 3000] [--teachers 60] [--seconds 60]
    make bench-rollcall [DB_URL=postgresql://...]        # also run by make bench-load, after the parents' rush

1. a scratch schema on the PostgreSQL server (`--db-url`, else TEST_DATABASE_URL, else the local `test`
   database): one school with `--pupils` pupils, a calendar around today (today a 调休 day running Monday's
   timetable when it falls at a weekend), `--teachers` sessions today with as many duty-teacher accounts
   (`duty00`…), a published run seating every pupil in one of those sessions (about 50 each); dropped at the end;
2. gunicorn on 127.0.0.1 (4 sync workers by default), sign-in throttles raised so 60 sign-ins from one address pass;
3. locust headless, `DutyTeacher` users (`bench/load/locustfile.py`): each signs in through the login form,
   opens its session's roll-call page, then taps: POST a mark (present, or late with a reason the next time
   round, so every tap writes a row) as the page's script sends it, answered with the pupil's row; with
   `--no-script`, as a phone without script: the form posts and the page reloads after the redirect;
4. the table per endpoint (p50/p95/p99 ms); "POST /mark" is the mark itself, "GET roll-call page" the reload;
   and a check that every mark locust counted is a row in `roll_call_marks` with its audit row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.load.measure import read_stats, run_locust, table
from bench.load.rush import PASSWORD, app_config, gunicorn, postgres_schema

MARK = "POST /mark"


def seed(database_url: str, pupils: int, teachers: int) -> list[dict[str, Any]]:
    """Create the schema and the school's day; return one entry per duty teacher: login, session, pupils."""
    from sqlalchemy import insert, select

    from tests.conftest import make_school
    from webapp import create_app
    from webapp.extensions import db
    from webapp.labels import local_date
    from webapp.models import (
        Activity,
        AllocationRun,
        CalendarDay,
        CalendarDayKind,
        DutyTeacher,
        Period,
        Pupil,
        RunAssignment,
        RunStaffing,
        SchoolCalendar,
        Session,
        Teacher,
        Term,
        User,
        utcnow,
    )
    from webapp.security import hash_password

    app = create_app({**app_config(database_url), "TESTING": True, "RATELIMIT_ENABLED": False})
    with app.app_context():
        db.create_all()
        school = make_school("KM-ROLL-0001", n_pupils=pupils)
        term = db.session.scalar(select(Term).where(Term.school_id == school.id))
        assert term is not None
        today = local_date(utcnow())
        weekday = today.isoweekday()
        calendar = SchoolCalendar(term_id=term.id, first_day=today - timedelta(days=30),
                                  last_day=today + timedelta(days=60))
        if weekday > 5:  # a weekend: today is a make-up day running Monday's timetable
            calendar.days = [CalendarDay(day=today, kind=CalendarDayKind.MAKEUP, runs_weekday=1, note="调休")]
            weekday = 1
        db.session.add(calendar)
        period = db.session.scalar(select(Period).where(Period.term_id == term.id, Period.code == "P1"))
        activity = db.session.scalar(select(Activity).where(Activity.term_id == term.id,
                                                            Activity.code == "homework"))
        assert period is not None and activity is not None
        per_session = -(-pupils // teachers)
        sessions = [Session(term_id=term.id, code=f"R{i:02d}", activity_id=activity.id, day=weekday,
                            period_id=period.id, room=f"{i + 1}号教室", capacity=per_session, grade_lo=1,
                            grade_hi=6, pupils_per_teacher=per_session) for i in range(teachers)]
        staff = [Teacher(school_id=school.id, code=f"D{i:02d}", name=f"值班{i:02d}", max_sessions=6)
                 for i in range(teachers)]
        db.session.add_all(sessions + staff)
        db.session.flush()
        pupil_ids = list(db.session.scalars(select(Pupil.id).where(Pupil.school_id == school.id)
                                            .order_by(Pupil.id)))
        run = AllocationRun(term_id=term.id, state="done", stage="done", progress=1.0, status="OPTIMAL")
        db.session.add(run)
        db.session.flush()
        db.session.execute(insert(RunAssignment), [
            {"run_id": run.id, "pupil_id": pid, "session_id": sessions[i // per_session].id}
            for i, pid in enumerate(pupil_ids)])
        db.session.add_all([RunStaffing(run_id=run.id, teacher_id=t.id, session_id=s.id)
                            for t, s in zip(staff, sessions, strict=True)])
        shared_hash = hash_password(PASSWORD)
        db.session.execute(insert(User), [
            {"role": "duty_teacher", "username": f"duty{i:02d}", "password_hash": shared_hash,
             "session_version": 1, "active": True} for i in range(teachers)])
        users = db.session.scalars(select(User).where(User.role == "duty_teacher").order_by(User.username)).all()
        db.session.add_all([DutyTeacher(user_id=u.id, teacher_id=t.id) for u, t in zip(users, staff, strict=True)])
        # Published as it stands: the allocation service would (rightly) refuse a plan no family asked for, and
        # the roster reads only the published run's seats.
        run.is_published, run.published_at, term.published_run_id = True, utcnow(), run.id
        db.session.commit()
        plan = [{"login": user.username, "session": session.id,
                 "pupils": pupil_ids[i * per_session:(i + 1) * per_session]}
                for i, (user, session) in enumerate(zip(users, sessions, strict=True))]
        db.session.remove()
        db.engine.dispose()
    return plan


def stored_marks(database_url: str) -> tuple[int, int]:
    """(roll-call mark rows, their audit rows)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            marks = int(conn.execute(text("SELECT count(*) FROM roll_call_marks")).scalar_one())
            audits = int(conn.execute(text(
                "SELECT count(*) FROM audit_log WHERE action IN ('rollcall.mark', 'rollcall.correct')")).scalar_one())
            return marks, audits
    finally:
        engine.dispose()


def bench(args: argparse.Namespace) -> int:
    url = args.database_url or os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    with tempfile.TemporaryDirectory(prefix="bench-rollcall-") as scratch, postgres_schema(url) as scoped:
        work = Path(scratch)
        plan = seed(scoped, args.pupils, args.teachers)
        plan_file = work / "duty.json"
        plan_file.write_text(json.dumps(plan))
        os.environ["LOAD_DUTY"] = str(plan_file)
        os.environ["LOAD_DUTY_PAUSE"] = args.pause
        os.environ["LOAD_DUTY_RELOAD"] = "1" if args.no_script else ""
        with gunicorn(scoped, work / "gunicorn.log", workers=args.workers, threads=args.threads,
                      config={"LOGIN_RATE_LIMIT": "1000 per minute"}) as base:
            no_tokens = work / "tokens.txt"  # the parents' scenarios read it; duty teachers sign in themselves
            no_tokens.write_text("")
            cores = run_locust(base, no_tokens, ["DutyTeacher"], args.teachers, args.spawn_rate, args.seconds,
                               1, work / "locust", work / "locust.log")
            server_log = (work / "gunicorn.log").read_text(errors="replace")
        marks, audits = stored_marks(scoped)
        try:
            rows = read_stats(work / "locust")
        except (FileNotFoundError, KeyError, ValueError):
            print((work / "locust.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
    mark = next((row for row in rows if row.name == MARK), None)
    script = ", no script: each tap reloads the page" if args.no_script else ""
    print(f"roll-call: load average {os.getloadavg()[0]:.1f} at the end; {args.pupils} pupils, {args.teachers} "
          f"duty teachers at once (pause {args.pause} s between taps{script}), {args.seconds} s steady state, "
          f"gunicorn -w {args.workers} --threads {args.threads}, {os.cpu_count()} cores")
    print(table(rows))
    if mark is not None:
        print(f"marks/s: {mark.per_second:.1f}, p95 per mark {mark.p95:.0f} ms (goal: 200 ms); rows in "
              f"roll_call_marks: {marks}, audit rows: {audits} (locust counted {mark.requests - mark.failures} "
              f"after its statistics reset)")
    print("cores used: " + ", ".join(f"{name} {value:.2f}" for name, value in cores.items()))
    errors = [line for line in server_log.splitlines() if "Traceback" in line or "Error" in line]
    if errors:
        print(f"server log has {len(errors)} error lines, first: {errors[0]}")
    failed = sum(row.failures for row in rows if row.name != "all requests")
    return 1 if failed or errors or marks != audits or (mark is not None and marks < mark.requests) else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load.rollcall")
    parser.add_argument("--db-url", "--database-url", dest="database_url",
                        help="PostgreSQL server (a scratch schema is used and dropped)")
    parser.add_argument("--pupils", type=int, default=3000)
    parser.add_argument("--teachers", type=int, default=60)
    parser.add_argument("--seconds", type=int, default=60, help="steady state measured")
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--pause", default="0.5,1.5", help="seconds between one teacher's taps: low,high")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-script", action="store_true",
                        help="phones without script: each tap posts the form and reloads the page")
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
