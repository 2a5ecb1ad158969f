"""Delivering the outbox: exactly once per channel, counted at a real local SMTP server and a fake SMS endpoint.

The killed-worker tests run `flask --app webapp deliver-notifications` as a separate process that exits
(`os._exit`) after N messages (`NOTIFY_TEST_KILL_AFTER`), or is killed with SIGKILL from outside mid-batch, then
run it again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text, update

from tests.conftest import _make_app, make_school
from tests.webapp.factories import create_user
from tests.webapp.notifications.servers import FakeSms, SmtpServer, fake_sms, sms_config, smtp_server  # noqa: F401
from webapp.extensions import db
from webapp.jobs import KINDS, PERIODIC, sweep
from webapp.jobs.periodic import beat_schedule, start_local_scheduler, stop_local_scheduler
from webapp.models import (
    DeliveryState,
    NotificationDelivery,
    NotificationEvent,
    NotificationSweep,
    Pupil,
    RunState,
    Term,
    utcnow,
)
from webapp.notifications import INTERRUPTED, NotificationConfigError, deliver_due, load_settings, notify
from webapp.notifications.delivery import backoff, send_again

REPO = Path(__file__).resolve().parents[3]


def _family(n_messages: int = 1, *, emails: tuple[str, ...] = ("mum@example.com",),
            locale: str | None = None) -> list[int]:
    """Guardians (one per address) of pupil P001, `n_messages` notifications each, committed."""
    school = make_school()
    pupil = db.session.scalar(select(Pupil).where(Pupil.school_id == school.id, Pupil.number == "P001"))
    assert pupil is not None
    for i, address in enumerate(emails):
        user = create_user("parent", login=f"1380013800{i}", pupil=pupil)
        user.email, user.locale = address, locale
    db.session.commit()
    term_id = db.session.scalar(select(Term.id).where(Term.school_id == school.id))
    for version in range(n_messages):
        notify(NotificationEvent.PLAN_AMENDED, pupil_id=pupil.id, term_id=term_id, params={"version": version + 2})
    db.session.commit()
    return [pupil.id]


def _states() -> list[str]:
    return list(db.session.scalars(select(NotificationDelivery.state).order_by(NotificationDelivery.id)))


@pytest.fixture
def mail_app(tmp_path: Any, smtp_server: SmtpServer) -> Iterator[Flask]:  # noqa: F811
    app = _make_app(tmp_path, **smtp_server.config(), SMS_PROVIDER="none", NOTIFY_BACKOFF_SECONDS=60)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# ------------------------------------------------------------------------------------------ e-mail


def test_every_email_is_sent_once_and_a_second_pass_sends_nothing(mail_app: Flask,
                                                                   smtp_server: SmtpServer) -> None:  # noqa: F811
    with mail_app.app_context():
        _family(3, emails=("mum@example.com", "dad@example.com"))
        report = deliver_due()
        assert (report.sent, report.retried, report.failed) == (6, 0, 0)
        assert deliver_due().sent == 0
        assert _states() == [DeliveryState.SENT] * 6
    ids = smtp_server.handler.message_ids()
    assert len(ids) == 6 and len(set(ids)) == 6
    assert all(i.startswith("<delivery-") and i.endswith(".email@school.example>") for i in ids)
    first = smtp_server.handler.received[0]
    assert first["To"] in ("mum@example.com", "dad@example.com")
    assert "学生1" in first.get_payload(decode=True).decode()  # the family's own child, in Chinese by default


def test_a_refused_message_is_retried_after_a_backoff_and_then_sent_once(mail_app: Flask,
                                                                         smtp_server: SmtpServer) -> None:  # noqa: F811
    smtp_server.handler.refuse_next = 1
    with mail_app.app_context():
        _family(1)
        before = utcnow()
        report = deliver_due()
        assert (report.sent, report.retried) == (0, 1)
        row = db.session.scalar(select(NotificationDelivery))
        assert row is not None and row.state == DeliveryState.PENDING and row.attempts == 1
        assert "451" in (row.last_error or "")
        assert row.next_attempt_at >= before + timedelta(seconds=59)
        assert deliver_due().sent == 0  # not due yet: nothing is sent early
        db.session.execute(update(NotificationDelivery).values(next_attempt_at=utcnow()))
        db.session.commit()
        assert deliver_due().sent == 1
        db.session.refresh(row)
        assert (row.state, row.attempts, row.last_error) == (DeliveryState.SENT, 2, None)
    assert smtp_server.handler.refused == 1 and len(smtp_server.handler.received) == 1


def test_backoff_doubles_and_gives_up_after_the_last_attempt(tmp_path: Any,
                                                             smtp_server: SmtpServer) -> None:  # noqa: F811
    assert [backoff(n, 30).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(40, 30) == timedelta(hours=6)
    app = _make_app(tmp_path, **smtp_server.config(), SMS_PROVIDER="none", NOTIFY_BACKOFF_SECONDS=0,
                    NOTIFY_MAX_ATTEMPTS=3)
    smtp_server.handler.refuse_next = 10
    with app.app_context():
        _family(1)
        outcomes = [deliver_due() for _ in range(4)]
        assert [(r.retried, r.failed) for r in outcomes] == [(1, 0), (1, 0), (0, 1), (0, 0)]
        row = db.session.scalar(select(NotificationDelivery))
        assert row is not None and (row.state, row.attempts) == (DeliveryState.FAILED, 3)
        db.session.remove()
        db.engine.dispose()
    assert smtp_server.handler.refused == 3 and not smtp_server.handler.received


def test_a_refused_address_fails_at_once(mail_app: Flask, smtp_server: SmtpServer) -> None:  # noqa: F811
    smtp_server.handler.reject_rcpt = {"gone@example.com"}
    with mail_app.app_context():
        _family(1, emails=("gone@example.com",))
        assert deliver_due().failed == 1
        row = db.session.scalar(select(NotificationDelivery))
        assert row is not None and row.state == DeliveryState.FAILED and row.attempts == 1
        assert "550" in (row.last_error or "")


def test_english_speaking_family_gets_english_mail(mail_app: Flask, smtp_server: SmtpServer) -> None:  # noqa: F811
    with mail_app.app_context():
        _family(1, locale="en")
        deliver_due()
    mail = smtp_server.handler.received[0]
    assert mail["Subject"] == "Timetable changed"
    assert mail["Content-Language"] == "en"
    assert "version 2" in mail.get_payload(decode=True).decode()


# ------------------------------------------------------------------------------------------ SMS


def test_aliyun_sms_is_signed_and_sent_once(tmp_path: Any, fake_sms: FakeSms) -> None:  # noqa: F811
    app = _make_app(tmp_path, **sms_config(fake_sms))
    with app.app_context():
        _family(1)
        assert deliver_due().sent == 1
        assert deliver_due().sent == 0
        row = db.session.scalar(select(NotificationDelivery))
        assert row is not None and (row.channel, row.state) == ("sms", DeliveryState.SENT)
        db.session.remove()
        db.engine.dispose()
    [request] = fake_sms.requests
    assert request["PhoneNumbers"] == "13800138000" and request["SignName"] == "课后服务"
    assert request["TemplateCode"] == "SMS_123456"
    assert json.loads(request["TemplateParam"])["title"] == "课表已调整"
    assert request["OutId"] == f"delivery-{row.id}.sms@afterschool.invalid"


def test_sms_provider_errors_are_retried_or_final_by_their_code(tmp_path: Any, fake_sms: FakeSms) -> None:  # noqa: F811
    fake_sms.answers = [{"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "too many"},
                        {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "bad number"}]
    app = _make_app(tmp_path, **sms_config(fake_sms), NOTIFY_BACKOFF_SECONDS=0)
    with app.app_context():
        _family(1)
        assert deliver_due().retried == 1
        assert deliver_due().failed == 1
        row = db.session.scalar(select(NotificationDelivery))
        assert row is not None and row.state == DeliveryState.FAILED
        assert "MOBILE_NUMBER_ILLEGAL" in (row.last_error or "")
        db.session.remove()
        db.engine.dispose()


def test_a_wrong_secret_is_refused_by_the_endpoint(tmp_path: Any, fake_sms: FakeSms) -> None:  # noqa: F811
    app = _make_app(tmp_path, **{**sms_config(fake_sms), "SMS_ACCESS_KEY_SECRET": "not-the-secret"})
    with app.app_context():
        _family(1)
        assert deliver_due().failed == 1
        row = db.session.scalar(select(NotificationDelivery))
        assert row is not None and "SignatureDoesNotMatch" in (row.last_error or "")
        db.session.remove()
        db.engine.dispose()
    assert not fake_sms.requests


# ------------------------------------------------------------------------------------------ killed worker


@pytest.fixture
def outbox_db(tmp_path: Path, request: pytest.FixtureRequest,
              smtp_server: SmtpServer) -> Iterator[tuple[Flask, str]]:  # noqa: F811
    """An app and its database URL, for a separate delivery process: SQLite, or a fresh PostgreSQL schema."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'outbox.db'}"
        app = _make_app(tmp_path, SQLALCHEMY_DATABASE_URI=url, SMS_PROVIDER="none", **smtp_server.config())
        yield app, url
    else:
        base = os.environ.get("TEST_DATABASE_URL")
        if not base:
            if os.environ.get("REQUIRE_SERVICES") == "1":
                pytest.fail("REQUIRE_SERVICES=1 but TEST_DATABASE_URL is not set")
            pytest.skip("TEST_DATABASE_URL is not set")
        schema = f"outbox_{uuid.uuid4().hex[:10]}"
        admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in base else "?"
        url = f"{base}{separator}options=-csearch_path%3D{schema}"
        app = _make_app(tmp_path, SQLALCHEMY_DATABASE_URI=url, SMS_PROVIDER="none", **smtp_server.config())
        yield app, url
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if kind != "sqlite":
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _deliver_in_process(url: str, smtp: SmtpServer, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "x", "MAIL_SERVER": smtp.host,
                   "MAIL_PORT": str(smtp.port), "MAIL_FROM": "noreply@school.example", "SMS_PROVIDER": "none",
                   "PYTHONPATH": str(REPO), **env}
    for key in ("CELERY_BROKER_URL", "NOTIFY_SWEEP_SECONDS", "NOTIFY_TEST_KILL_AFTER"):
        if key not in env:
            environment.pop(key, None)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "deliver-notifications"],
                          env=environment, cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("outbox_db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_killed_worker_restarted_sends_every_message_exactly_once(outbox_db: tuple[Flask, str],
                                                                  smtp_server: SmtpServer) -> None:  # noqa: F811
    app, url = outbox_db
    with app.app_context():
        _family(4, emails=("mum@example.com", "dad@example.com"))  # 8 e-mails
    killed = _deliver_in_process(url, smtp_server, NOTIFY_TEST_KILL_AFTER="3")
    assert killed.returncode == 75, killed.stderr[-2000:]
    assert len(smtp_server.handler.received) == 3
    again = _deliver_in_process(url, smtp_server)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "sent 5," in again.stdout
    assert _deliver_in_process(url, smtp_server).stdout.strip() == "nothing to deliver"
    ids = smtp_server.handler.message_ids()
    assert len(ids) == 8 and len(set(ids)) == 8
    with app.app_context():
        assert _states() == [DeliveryState.SENT] * 8


@pytest.mark.parametrize("outbox_db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_worker_killed_from_outside_mid_batch_then_restarted(outbox_db: tuple[Flask, str],
                                                            smtp_server: SmtpServer) -> None:  # noqa: F811
    """SIGKILL from outside while messages are going out, at whatever moment that is: after a restart (and the
    lease of the one in flight running out) every message has arrived at the server exactly once, except at most
    the one in flight, which arrived at most once and is marked failed "interrupted", never sent blindly again."""
    app, url = outbox_db
    with app.app_context():
        _family(6, emails=("mum@example.com", "dad@example.com"))  # 12 e-mails
    smtp_server.handler.delay = 0.25
    environment = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "x", "MAIL_SERVER": smtp_server.host,
                   "MAIL_PORT": str(smtp_server.port), "MAIL_FROM": "noreply@school.example", "SMS_PROVIDER": "none",
                   "PYTHONPATH": str(REPO)}
    for key in ("CELERY_BROKER_URL", "NOTIFY_SWEEP_SECONDS", "NOTIFY_TEST_KILL_AFTER"):
        environment.pop(key, None)
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "webapp", "deliver-notifications"],
                              env=environment, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(smtp_server.handler.received) < 4 and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert worker.poll() is None, "the worker finished before it could be killed mid-batch"
        worker.kill()  # SIGKILL: no handler, no cleanup
    finally:
        worker.wait(timeout=30)
    assert worker.returncode == -9
    arrived_before = len(smtp_server.handler.received)
    assert 4 <= arrived_before < 12
    smtp_server.handler.delay = 0.0
    with app.app_context():
        db.session.execute(update(NotificationDelivery).where(NotificationDelivery.state == "sending")
                           .values(lease_until=utcnow() - timedelta(seconds=1)))  # the lease runs out
        db.session.commit()
    again = _deliver_in_process(url, smtp_server)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _deliver_in_process(url, smtp_server).stdout.strip() == "nothing to deliver"
    ids = smtp_server.handler.message_ids()
    assert len(ids) == len(set(ids)), "a message arrived twice"
    with app.app_context():
        rows = list(db.session.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)))
        sent = {f"<delivery-{r.id}.{r.channel}@" for r in rows if r.state == DeliveryState.SENT}
        interrupted = [r for r in rows if r.state == DeliveryState.FAILED]
    assert len(rows) == 12 and len(sent) + len(interrupted) == 12
    assert len(interrupted) <= 1 and all(r.last_error == INTERRUPTED for r in interrupted)
    assert all(sum(i.startswith(prefix) for i in ids) == 1 for prefix in sent)
    assert len(ids) in (len(sent), len(sent) + 1)


def test_a_send_interrupted_before_its_mark_is_not_sent_again(outbox_db: tuple[Flask, str],
                                                              smtp_server: SmtpServer) -> None:  # noqa: F811
    """The interrupted-send rule: accepted by the server, never marked -> failed "interrupted", not resent."""
    app, url = outbox_db
    with app.app_context():
        _family(2)
    killed = _deliver_in_process(url, smtp_server, NOTIFY_TEST_KILL_AFTER="1:send")
    assert killed.returncode == 75
    with app.app_context():
        assert _states() == [DeliveryState.SENDING, DeliveryState.PENDING]
    assert "sent 1," in _deliver_in_process(url, smtp_server).stdout  # the lease still runs: left alone
    with app.app_context():
        assert _states() == [DeliveryState.SENDING, DeliveryState.SENT]
        db.session.execute(update(NotificationDelivery).where(NotificationDelivery.state == "sending")
                           .values(lease_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert "interrupted 1" in _deliver_in_process(url, smtp_server).stdout
    assert len(smtp_server.handler.received) == 2  # the interrupted one arrived once, and only once
    with app.app_context():
        first = db.session.scalar(select(NotificationDelivery).order_by(NotificationDelivery.id))
        assert first is not None and (first.state, first.last_error) == (DeliveryState.FAILED, INTERRUPTED)
        assert send_again(first.id)  # a staff member's explicit choice
        db.session.commit()
    assert "sent 1," in _deliver_in_process(url, smtp_server).stdout
    ids = smtp_server.handler.message_ids()
    assert len(ids) == 3 and ids[0] == ids[2]  # sent again by hand: the same Message-ID


# ------------------------------------------------------------------------------------------ job, CLI, schedule


def test_the_cli_runs_a_pass_through_the_job_runner(mail_app: Flask, smtp_server: SmtpServer) -> None:  # noqa: F811
    runner = mail_app.test_cli_runner()
    assert runner.invoke(args=["deliver-notifications"]).output.strip() == "nothing to deliver"
    with mail_app.app_context():
        assert db.session.scalar(select(NotificationSweep)) is None
        _family(2)
    result = runner.invoke(args=["deliver-notifications", "--limit", "1"])
    assert result.exit_code == 0 and "sent 1," in result.output
    result = runner.invoke(args=["deliver-notifications"])
    assert "sent 1," in result.output
    with mail_app.app_context():
        sweeps = db.session.scalars(select(NotificationSweep).order_by(NotificationSweep.id)).all()
        assert [(s.state, s.sent) for s in sweeps] == [(RunState.DONE, 1), (RunState.DONE, 1)]
    assert "notify" in KINDS
    assert len(smtp_server.handler.received) == 2


def test_bad_settings_stop_the_app_with_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(NotificationConfigError) as caught:
        load_settings({"TESTING": True, "MAIL_SERVER": "smtp.example.com", "MAIL_PORT": "smtp",
                       "SMS_PROVIDER": "aliyun", "SMS_ACCESS_KEY_ID": "id"})
    message = caught.value.format_message()
    for key in ("MAIL_PORT", "MAIL_FROM", "SMS_ACCESS_KEY_SECRET", "SMS_SIGN_NAME", "SMS_TEMPLATE_CODE"):
        assert key in message
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SECRET_KEY": "x",
                   "SMS_PROVIDER": "carrier-pigeon", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "deliver-notifications"],
                            env=environment, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "SMS_PROVIDER must be one of none, logging, aliyun" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_sweep_is_a_periodic_task_for_beat_and_the_local_scheduler(tmp_path: Any,
                                                                         smtp_server: SmtpServer) -> None:  # noqa: F811
    assert "notifications.deliver" in PERIODIC
    entry = beat_schedule({"TESTING": True, "NOTIFY_SWEEP_SECONDS": 15})["notifications.deliver"]
    assert entry == {"task": "webapp.jobs.periodic", "schedule": 15.0, "args": ("notifications.deliver",)}
    assert beat_schedule({"TESTING": True})["notifications.deliver"]["schedule"] == 60.0

    (tmp_path / "quiet").mkdir()
    quiet = _make_app(tmp_path / "quiet", **smtp_server.config())
    assert start_local_scheduler(quiet) is None  # off in tests unless a test turns it on
    with quiet.app_context():
        db.engine.dispose()
    app = _make_app(tmp_path, **smtp_server.config(), SMS_PROVIDER="none", NOTIFY_SWEEP_SECONDS=0.2)
    with app.app_context():
        _family(1)
    app.test_client().get("/login")  # the first request starts the scheduler thread
    try:
        deadline = time.monotonic() + 20
        while not smtp_server.handler.received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(smtp_server.handler.received) == 1
    finally:
        stop_local_scheduler(app)
    with app.app_context():
        assert _states() == [DeliveryState.SENT]
        db.session.remove()
        db.engine.dispose()


def test_a_sweep_with_nothing_due_writes_no_row(mail_app: Flask) -> None:
    with mail_app.app_context():
        assert sweep() is None
        assert db.session.scalar(select(NotificationSweep)) is None
