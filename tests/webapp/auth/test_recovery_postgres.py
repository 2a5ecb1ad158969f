"""The account rules of password recovery, unlinking and deletion on PostgreSQL (foreign keys, one transaction,
a reset code redeemed by two requests at once)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from tests.conftest import make_school
from tests.webapp.factories import create_user, pupil_id
from webapp import create_app
from webapp.accounts import delete_parent_account
from webapp.auth import recovery
from webapp.extensions import db
from webapp.family import unlink_child
from webapp.models import (
    AuditLog,
    CareRequest,
    Guardianship,
    NotificationEvent,
    PasswordResetCode,
    Pupil,
    User,
)
from webapp.notifications import notify
from webapp.parents.service import current_term

PHONE = "13800138000"


@pytest.fixture
def pg_app() -> Iterator[Flask]:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        print("TEST_DATABASE_URL is not set: skipping the PostgreSQL recovery tests")
        pytest.skip("TEST_DATABASE_URL is not set")
    schema = f"recovery_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in url else "?"
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "RATELIMIT_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": f"{url}{separator}options=-csearch_path%3D{schema}"})
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        db.create_all()
        make_school()
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            with db.engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            db.engine.dispose()


@pytest.mark.postgres
def test_unlink_and_delete_on_postgresql(pg_app: Flask) -> None:
    with pg_app.test_request_context():
        pupil = db.session.get(Pupil, pupil_id())
        assert pupil is not None
        parent = create_user("parent", login=PHONE, pupil=pupil)
        term = current_term(pupil)
        assert term is not None
        db.session.add(CareRequest(term_id=term.id, pupil_id=pupil.id, days=[1], pickup_time="16:30",
                                   periods=["P1"], preferences=[], status="active", submitted_by=parent.id))
        notify(NotificationEvent.PLAN_AMENDED, pupil_id=pupil.id)
        db.session.commit()
        assert unlink_child(parent, pupil) is True
        assert unlink_child(parent, pupil) is False
        assert db.session.scalar(select(func.count(Guardianship.id))) == 0
        assert db.session.scalar(select(CareRequest.status)) == "active"

        other = create_user("parent", login="13900000000", pupil=db.session.get(Pupil, pupil_id("P002")))
        other_id = other.id
        delete_parent_account(other)
        assert db.session.get(User, other_id) is None
        assert db.session.scalar(select(AuditLog.detail).where(AuditLog.action == "account.delete")) == \
            {"children": 1}


@pytest.mark.postgres
def test_a_code_redeemed_twice_at_once_works_once(pg_app: Flask) -> None:
    with pg_app.test_request_context():
        parent = create_user("parent", login=PHONE, pupil=db.session.get(Pupil, pupil_id()))
        admin = create_user("school_admin", login="admin", school=parent.guardianships[0].pupil.school)
        code = recovery.issue_slip_code(parent, admin, admin.school_id or 0)
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def redeem(password: str) -> None:
        with pg_app.test_request_context():
            barrier.wait()
            results.append(recovery.reset_password(PHONE, code, password))
            db.session.remove()

    threads = [threading.Thread(target=redeem, args=(f"new passphrase number {i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    with pg_app.app_context():
        assert db.session.scalar(select(func.count(PasswordResetCode.id))
                                 .where(PasswordResetCode.used_at.is_(None))) == 0
