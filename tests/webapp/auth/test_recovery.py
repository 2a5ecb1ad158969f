"""Password recovery: the school prints a one-time reset slip; with an SMS provider, a code by text message.

Codes are stored hashed, work once, expire, end after too many wrong tries and are rate-limited; the pages
answer the same whether or not a number has an account, and the new password meets the password policy.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import TEST_PASSWORD, _make_app
from tests.webapp.factories import api_token, bearer, create_user, post_form, pupil_id, sign_in
from tests.webapp.notifications.servers import FakeSms, fake_sms, sms_config  # noqa: F401
from webapp.auth import recovery
from webapp.extensions import db
from webapp.models import AuditLog, PasswordResetCode, Pupil, User, utcnow

PHONE = "13800138000"
NEW = "a brand new passphrase"
SLIP_RE = re.compile(r'<dd class="code">([A-Z0-9]{5}-[A-Z0-9]{5})</dd>')
SAME_ANSWER = "该重置码对这个号码无效"


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def admin_and_parent(app: Flask, signed_in: Callable[..., User]) -> tuple[int, int]:
    """A signed-in school admin, and a parent linked to P001; returns (pupil id, parent id)."""
    signed_in("school_admin")
    with app.app_context():
        pupil = db.session.get(Pupil, pupil_id())
        parent = create_user("parent", login=PHONE, pupil=pupil)
        return pupil_id(), parent.id


def print_slip(client: FlaskClient, pupil: int, parent: int) -> str:
    response = post_form(client, f"/admin/pupils/{pupil}/guardians/{parent}/reset-code",
                         token_from=f"/admin/pupils/{pupil}")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    match = SLIP_RE.search(text(response))
    assert match is not None, text(response)
    return match.group(1)


def reset(client: FlaskClient, code: str, password: str = NEW, phone: str = PHONE) -> object:
    return post_form(client, "/password/reset", {"phone": phone, "code": code, "password": password,
                                                 "confirm": password})


def test_admin_prints_a_slip_and_the_family_resets_once(app: Flask, client: FlaskClient,
                                                        admin_and_parent: tuple[int, int]) -> None:
    pupil, parent = admin_and_parent
    page = text(client.get(f"/admin/pupils/{pupil}"))
    assert f'action="/admin/pupils/{pupil}/guardians/{parent}/reset-code"' in page and "打印密码重置单" in page
    assert client.post(f"/admin/pupils/{pupil}/guardians/{parent}/reset-code").status_code == 400  # CSRF
    code = print_slip(client, pupil, parent)
    with app.app_context():
        (row,) = db.session.scalars(select(PasswordResetCode)).all()
        assert row.kind == "slip" and code.replace("-", "") not in row.code_hash and len(row.code_hash) == 64
        assert timedelta(hours=71) < row.expires_at - utcnow() <= timedelta(hours=72)
        audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "auth.reset_code_issue"))
        assert audit is not None and audit.target == f"user:{parent}" and code not in json.dumps(audit.detail)
    token = api_token(app.test_client(), PHONE)

    family = app.test_client()
    assert "学校" in text(family.get("/password/forgot")) and 'href="/password/forgot"' in text(family.get("/login"))
    weak = reset(family, code, password="12345678")
    assert weak.status_code == 422 and "重置码" in text(weak)
    with app.app_context():
        assert db.session.scalars(select(PasswordResetCode)).one().used_at is None  # a refused form uses nothing
    done = reset(family, code.lower().replace("-", " "))  # as typed: case, spaces and dashes do not matter
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    assert app.test_client().get("/api/v1/children", headers=bearer(token)).status_code == 401
    sign_in(family, PHONE, NEW)
    assert family.get("/family/").status_code == 200
    again = reset(app.test_client(), code, password="yet another passphrase")
    assert again.status_code == 422 and SAME_ANSWER in text(again)
    with app.app_context():
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "auth.password_reset")) is not None


def test_wrong_number_and_wrong_code_get_the_same_answer(app: Flask, client: FlaskClient,
                                                         admin_and_parent: tuple[int, int]) -> None:
    code = print_slip(client, *admin_and_parent)
    family = app.test_client()
    answers = [reset(family, "WRONG-CODE2"), reset(family, code, phone="13900000000"),
               reset(family, code, phone="not a phone")]
    assert {r.status_code for r in answers} == {422}  # type: ignore[attr-defined]
    assert all(SAME_ANSWER in text(r) for r in answers)
    with app.app_context():
        rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.password_reset_failed")).all()
        assert len(rows) == 3 and all(r.target.startswith("acct:") for r in rows)
        assert PHONE not in repr([(r.target, r.detail) for r in rows])
    assert reset(family, code).status_code == 302  # one wrong try does not end the code


def test_codes_expire_end_after_wrong_tries_and_a_new_slip_ends_the_old(
        app: Flask, client: FlaskClient, admin_and_parent: tuple[int, int]) -> None:
    pupil, parent = admin_and_parent
    first = print_slip(client, pupil, parent)
    second = print_slip(client, pupil, parent)
    family = app.test_client()
    assert SAME_ANSWER in text(reset(family, first))  # replaced by the second slip

    for _ in range(recovery.MAX_ATTEMPTS):
        reset(family, "WRONG-CODE2")
    assert SAME_ANSWER in text(reset(family, second))  # too many wrong tries: the code is spent

    third = print_slip(client, pupil, parent)
    with app.app_context():
        row = db.session.scalars(select(PasswordResetCode).order_by(PasswordResetCode.id.desc())).first()
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert SAME_ANSWER in text(reset(family, third))
    sign_in(family, PHONE, TEST_PASSWORD)  # the old password still works: nothing was reset
    assert family.get("/family/").status_code == 200


def test_admins_print_slips_only_for_their_own_pupils_guardians(
        app: Flask, client: FlaskClient, admin_and_parent: tuple[int, int]) -> None:
    pupil, parent = admin_and_parent
    with app.app_context():
        stranger = create_user("parent", login="13900000001").id
        other_pupil = pupil_id("P002")
    for url in (f"/admin/pupils/{pupil}/guardians/{stranger}/reset-code",
                f"/admin/pupils/{other_pupil}/guardians/{parent}/reset-code"):
        assert post_form(client, url, token_from=f"/admin/pupils/{pupil}").status_code == 404
    with app.app_context():
        assert db.session.scalars(select(PasswordResetCode)).all() == []


def test_reset_rate_limit_per_number(tmp_path: Path) -> None:
    redis_url = os.environ.get("TEST_REDIS_URL")
    storage = redis_url or "memory://"
    print(f"rate-limit storage: {'Redis' if redis_url else 'memory (TEST_REDIS_URL not set)'}")
    app = _make_app(tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=storage,
                    PASSWORD_RESET_RATE_LIMIT="3 per minute", RATELIMIT_KEY_PREFIX=f"reset-{tmp_path.name}")
    with app.app_context():
        create_user("parent", login=PHONE)
    client = app.test_client()
    statuses = [reset(client, "WRONG-CODE2").status_code for _ in range(4)]  # type: ignore[attr-defined]
    assert statuses == [422, 422, 422, 429]
    # Another number from another address is not held back by this one's failures.
    other = app.test_client()
    response = other.post("/password/reset", environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert response.status_code in (400, 422)


# ------------------------------------------------------------------------------------------ SMS


@pytest.fixture
def sms_app(tmp_path: Path, fake_sms: FakeSms) -> Iterator[tuple[Flask, FakeSms]]:  # noqa: F811
    app = _make_app(tmp_path, **sms_config(fake_sms))
    with app.app_context():
        create_user("parent", login=PHONE)
    yield app, fake_sms
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_sms_code_reaches_the_registered_phone_only(sms_app: tuple[Flask, FakeSms]) -> None:
    app, sms = sms_app
    client = app.test_client()
    assert 'action="/password/sms"' in text(client.get("/password/forgot"))
    unknown = post_form(client, "/password/sms", {"phone": "13900000000"}, token_from="/password/forgot",
                        follow_redirects=True)
    known = post_form(client, "/password/sms", {"phone": PHONE}, token_from="/password/forgot",
                      follow_redirects=True)
    assert unknown.status_code == known.status_code == 200
    sent = "如果该号码已注册，验证码已通过短信发出"
    assert sent in text(unknown) and sent in text(known)
    assert [r["PhoneNumbers"] for r in sms.requests] == [PHONE]
    body = json.loads(sms.requests[0]["TemplateParam"])["body"]
    code = re.search(r"验证码为 (\d{6})", body)
    assert code is not None
    with app.app_context():
        row = db.session.scalars(select(PasswordResetCode)).one()
        assert row.kind == "sms" and code.group(1) not in row.code_hash
        assert timedelta(minutes=14) < row.expires_at - utcnow() <= timedelta(minutes=15)
        audits = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.reset_sms")).all()
        assert [a.detail for a in audits] == [{"known_account": False}, {"known_account": True}]
    assert reset(client, code.group(1)).status_code == 302
    sign_in(client, PHONE, NEW)
    assert client.get("/family/").status_code == 200


def test_without_an_sms_provider_there_is_no_sms_option(app: Flask, client: FlaskClient) -> None:
    page = text(client.get("/password/forgot"))
    assert 'action="/password/sms"' not in page and "班主任" in page
    assert post_form(client, "/password/sms", {"phone": PHONE}, token_from="/password/forgot").status_code == 404
