"""`flask --app webapp ...` commands: thin click wrappers over plain functions."""

from __future__ import annotations

import click
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select

from webapp import demo, privacy, run_summary
from webapp.bureau.city import allocate_command
from webapp.extensions import MIGRATIONS_DIR, db
from webapp.jobs.notify import sweep
from webapp.jobs.offers import settle_due
from webapp.models import ROLES, AllocationRun, District, DutyTeacher, RunState, School, Teacher, User
from webapp.security import hash_password, password_problem


def init_db() -> None:
    """Bring the schema to the newest migration; running it again changes nothing."""
    upgrade(directory=MIGRATIONS_DIR)


def create_user(role: str, password: str, *, username: str | None = None, phone: str | None = None,
                school_code: str | None = None, district_name: str | None = None,
                display_name: str = "", teacher_code: str | None = None) -> User:
    if role not in ROLES:
        raise click.UsageError(f"role must be one of {', '.join(ROLES)}")
    problem = password_problem(password)
    if problem:
        raise click.UsageError(str(problem))
    user = User(role=role, username=username, phone=phone, password_hash=hash_password(password),
                display_name=display_name or username or phone or "")
    if school_code:
        school = db.session.scalar(select(School).where(School.code == school_code))
        if school is None:
            raise click.UsageError(f"no school with code {school_code!r}")
        user.school_id = school.id
    elif role in ("school_admin", "duty_teacher"):
        raise click.UsageError(f"a {role} needs --school CODE")
    teacher = None
    if role == "duty_teacher":
        teacher = db.session.scalar(select(Teacher).where(Teacher.school_id == user.school_id,
                                                          Teacher.code == (teacher_code or "")))
        if teacher is None:
            raise click.UsageError(f"a duty_teacher needs --teacher CODE of a teacher at {school_code}")
    if district_name:
        district = db.session.scalar(select(District).where(District.name == district_name))
        if district is None:
            raise click.UsageError(f"no district named {district_name!r}")
        user.district_id = district.id
    user.city_wide = role == "bureau" and not district_name
    db.session.add(user)
    if teacher is not None:
        db.session.flush()
        db.session.add(DutyTeacher(user_id=user.id, teacher_id=teacher.id))
    db.session.commit()
    return user



def register(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db_command() -> None:
        """Create or upgrade the database schema."""
        init_db()
        click.echo("database is up to date")

    @app.cli.command("create-user")
    @click.option("--role", type=click.Choice(ROLES), required=True)
    @click.option("--username", default=None)
    @click.option("--phone", default=None)
    @click.option("--school", "school_code", default=None, help="school code, for school_admin and duty_teacher")
    @click.option("--teacher", "teacher_code", default=None, help="the teacher's staff code, for duty_teacher")
    @click.option("--district", "district_name", default=None, help="district name, for bureau (omit: city)")
    @click.option("--name", "display_name", default="")
    @click.password_option()
    def create_user_command(role: str, username: str | None, phone: str | None, school_code: str | None,
                            district_name: str | None, display_name: str, teacher_code: str | None,
                            password: str) -> None:
        """Create a user; the password is prompted twice."""
        if not username and not phone:
            raise click.UsageError("give --username or --phone")
        user = create_user(role, password, username=username, phone=phone, school_code=school_code,
                           district_name=district_name, display_name=display_name, teacher_code=teacher_code)
        click.echo(f"created {user.role} {user.username or user.phone}")

    @app.cli.command("summarize-runs")
    @click.option("--all", "recount_all", is_flag=True, help="recount runs that already have a summary too")
    def summarize_runs_command(recount_all: bool) -> None:
        """Count and store the bureau's figures of finished runs that have none yet, and add the fairness figures
        (and their split by priority group) to summaries counted before they were stored (one transaction)."""
        rows = db.session.execute(select(AllocationRun.id, AllocationRun.summary)
                                  .where(AllocationRun.state == RunState.DONE)).all()
        run_ids = [run_id for run_id, summary in rows if recount_all or not run_summary.is_current(summary)]
        without_fairness = [run_id for run_id, summary in rows
                            if run_id not in run_ids and not run_summary.has_fairness(summary)]
        run_summary.store(run_ids)
        run_summary.store_fairness(without_fairness)
        db.session.commit()
        click.echo(f"{len(run_ids)} run(s) summarized, {len(without_fairness)} given their fairness figures")

    @app.cli.command("expire-offers")
    def expire_offers_command() -> None:
        """Expire waitlist offers whose time is up and apply change requests due today (also run periodically)."""
        expired, applied = settle_due()
        click.echo(f"{expired} offers expired, {applied} change requests applied")

    @app.cli.command("deliver-notifications")
    @click.option("--limit", type=click.IntRange(min=1), default=None,
                  help="deliveries to send at most (default NOTIFY_BATCH_SIZE)")
    def deliver_notifications_command(limit: int | None) -> None:
        """One delivery pass of the notification outbox: due e-mails and SMS are sent, failures retried later."""
        outcome = sweep(limit)
        if outcome is None:
            click.echo("nothing to deliver")
            return
        if outcome["state"] != RunState.DONE:
            raise click.ClickException(f"delivery pass {outcome['id']} {outcome['state']}: {outcome['error']}")
        click.echo(f"sent {outcome['sent']}, to retry {outcome['retried']}, failed {outcome['failed']}, "
                   f"interrupted {outcome['interrupted']}")

    app.cli.add_command(allocate_command)
    privacy.init_app(app)
    demo.register(app)
