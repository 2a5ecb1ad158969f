"""Registration, sign-in, sign-out, roles, CSRF, languages, passwords and linking a child."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from argon2 import PasswordHasher
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import TEST_ENROLMENT_CODE, TEST_PASSWORD, make_school
from tests.webapp.factories import csrf_token, post_form
from webapp.extensions import db
from webapp.family import (
    CODE_ALPHABET,
    hash_enrolment_code,
    issue_enrolment_code,
    link_child,
    make_enrolment_code,
)
from webapp.models import AuditLog, District, Guardianship, Pupil, School, User
from webapp.security import (
    PASSWORD_HASHER,
    bureau_scope,
    parent_owns_pupil,
    password_problem,
    role_required,
    school_admin_required,
    verify_password,
)

REGISTRATION = {"phone": "139 1234 5678", "display_name": "张妈妈", "password": "long enough passphrase",
                "confirm": "long enough passphrase", "consent": "y"}


def test_register_records_consent_then_sign_in(app: Flask, client: FlaskClient) -> None:
    response = post_form(client, "/register", REGISTRATION)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    with app.app_context():
        user = db.session.scalar(select(User).where(User.phone == "13912345678"))
        assert user is not None and user.role == "parent" and user.display_name == "张妈妈"
        assert user.consent_policy_version == app.config["CONSENT_POLICY_VERSION"] and user.consent_at
        assert user.password_hash.startswith("$argon2id$")
        details = [log.detail for log in db.session.scalars(select(AuditLog))]
        assert "13912345678" not in repr(details)
    assert "张妈妈" not in client.get("/", follow_redirects=True).get_data(as_text=True)  # not signed in yet
    signed_in = post_form(client, "/login", {"login": "139 1234 5678", "password": REGISTRATION["password"]})
    assert signed_in.status_code == 302
    assert "张妈妈" in client.get("/", follow_redirects=True).get_data(as_text=True)


@pytest.mark.parametrize("field, value, message", [
    ("phone", "12345", "11 位手机号"),
    ("password", "short", "至少需要 8"),
    ("password", "woaini1314", "太常见"),
    ("consent", "", "请先同意"),
])
def test_register_rejects_bad_input(client: FlaskClient, field: str, value: str, message: str) -> None:
    data = dict(REGISTRATION, **{field: value})
    if field == "password":
        data["confirm"] = value
    if not value:
        data.pop(field)
    response = post_form(client, "/register", data)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)


def test_register_same_phone_twice(app: Flask, client: FlaskClient) -> None:
    first = post_form(client, "/register", REGISTRATION)
    second = post_form(client, "/register", {**REGISTRATION, "password": "another long phrase",
                                             "confirm": "another long phrase"})
    assert first.status_code == second.status_code == 302 and first.location == second.location
    assert "已注册" not in second.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(User.id))) == 1


def test_login_wrong_password_and_unknown_user(app: Flask, client: FlaskClient) -> None:
    from tests.webapp.factories import create_user

    with app.app_context():
        create_user("bureau", login="city")
    for login, password in (("city", "not-the-password"), ("nobody", TEST_PASSWORD)):
        response = post_form(client, "/login", {"login": login, "password": password})
        assert response.status_code == 200
        assert "密码错误" in response.get_data(as_text=True)
    response = post_form(client, "/login", {"login": "city", "password": TEST_PASSWORD})
    assert response.status_code == 302


def test_inactive_user_cannot_log_in(app: Flask, client: FlaskClient) -> None:
    from tests.webapp.factories import create_user

    with app.app_context():
        user = create_user("bureau", login="gone")
        user.active = False
        db.session.commit()
    assert post_form(client, "/login", {"login": "gone", "password": TEST_PASSWORD}).status_code == 200


def test_login_by_phone_with_prefix(app: Flask, client: FlaskClient) -> None:
    from tests.webapp.factories import create_user

    with app.app_context():
        create_user("parent", login="13800001111")
    response = post_form(client, "/login", {"login": "+86 138-0000-1111", "password": TEST_PASSWORD})
    assert response.status_code == 302


def test_login_ignores_offsite_next(app: Flask, client: FlaskClient) -> None:
    from tests.webapp.factories import create_user

    with app.app_context():
        create_user("bureau", login="city")
    token = csrf_token(client)
    response = client.post("/login?next=//evil.example/x",
                           data={"login": "city", "password": TEST_PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and "evil" not in response.location


def test_logout_is_post_only(signed_in: Callable[..., User], client: FlaskClient) -> None:
    signed_in("parent")
    assert client.get("/logout").status_code == 405
    response = post_form(client, "/logout", token_from="/")
    assert response.status_code == 302
    assert client.get("/").location.endswith("/login")


def test_session_cleared_at_login(app: Flask, client: FlaskClient, signed_in: Callable[..., User]) -> None:
    with client.session_transaction() as session:
        session["planted"] = "before-login"
    signed_in("bureau")
    with client.session_transaction() as session:
        assert "planted" not in session


def test_session_version_bump_logs_out_other_sessions(app: Flask, signed_in: Callable[..., User]) -> None:
    user = signed_in("school_admin")
    other = app.test_client()
    post_form(other, "/login", {"login": user.username, "password": TEST_PASSWORD})
    assert not other.get("/").location.endswith("/login")  # signed in: sent to the admin's home page
    with app.app_context():
        fresh = db.session.get(User, user.id)
        assert fresh is not None
        fresh.session_version += 1
        db.session.commit()
    assert other.get("/").location.endswith("/login")


def test_logout_others_keeps_current_session(app: Flask, client: FlaskClient,
                                             signed_in: Callable[..., User]) -> None:
    user = signed_in("bureau")
    other = app.test_client()
    post_form(other, "/login", {"login": user.username, "password": TEST_PASSWORD})
    assert post_form(client, "/logout-others", token_from="/").status_code == 302
    assert not client.get("/").location.endswith("/login")
    assert other.get("/").location.endswith("/login")


def test_csrf_rejected_without_token(client: FlaskClient) -> None:
    response = client.post("/login", data={"login": "x", "password": "y"})
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)
    assert client.post("/lang/en").status_code == 400


def test_language_switch(app: Flask, client: FlaskClient, signed_in: Callable[..., User]) -> None:
    assert "登录" in client.get("/login").get_data(as_text=True)
    response = post_form(client, "/lang/en", {"next": "/login"}, token_from="/login")
    assert response.status_code == 302 and response.location.endswith("/login")
    page = client.get("/login").get_data(as_text=True)
    assert "Log in" in page and "登录" not in page and 'lang="en"' in page
    assert post_form(client, "/lang/xx", token_from="/login").status_code == 400
    user = signed_in("bureau")
    post_form(client, "/lang/zh", token_from="/")
    with app.app_context():
        saved = db.session.get(User, user.id)
        assert saved is not None and saved.locale == "zh"


def _role_app(app: Flask) -> None:
    @app.route("/only-parents")
    @role_required("parent")
    def only_parents() -> str:
        return "parents-page"

    @app.route("/only-admins")
    @school_admin_required
    def only_admins() -> str:
        return f"school:{g.school.code}"


def test_role_decorators(app: Flask, client: FlaskClient, signed_in: Callable[..., User]) -> None:
    _role_app(app)
    response = client.get("/only-parents")
    assert response.status_code == 302 and "/login" in response.location
    signed_in("school_admin")
    assert client.get("/only-admins").get_data(as_text=True) == "school:KM-TEST-0001"
    forbidden = client.get("/only-parents")
    assert forbidden.status_code == 403 and "无权" in forbidden.get_data(as_text=True)


def test_parent_owns_only_linked_pupils(app: Flask, signed_in: Callable[..., User]) -> None:
    user = signed_in("parent")
    with app.app_context():
        parent = db.session.get(User, user.id)
        pupils = {p.number: p.id for p in db.session.scalars(select(Pupil))}
        assert parent is not None
        assert parent_owns_pupil(parent, pupils["P001"])
        assert not parent_owns_pupil(parent, pupils["P002"])


def test_bureau_scope(app: Flask) -> None:
    from tests.webapp.factories import create_user

    with app.app_context():
        make_school("KM-A-0001", district_name="五华区")
        make_school("KM-B-0001", district_name="盘龙区")
        wuhua = db.session.scalar(select(District).where(District.name == "五华区"))
        district_user = create_user("bureau", login="wh", district=wuhua)
        city_user = create_user("bureau", login="city")
        parent = create_user("parent", login="13700000000")
        seen = {u.username or u.phone: sorted(db.session.scalars(select(School.code).where(bureau_scope(u))))
                for u in (district_user, city_user, parent)}
        assert seen == {"wh": ["KM-A-0001"], "city": ["KM-A-0001", "KM-B-0001"], "13700000000": []}


@pytest.mark.parametrize("password, ok", [
    ("short", False), ("12345678", False), ("88888888", False), ("WoAiNi1314", False), ("a123456789", False),
    ("qwertyui", False), ("zzzzzzzzzz", False), ("x" * 129, False),
    ("river-lamp-7", True), ("长城长江黄河泰山", True), ("a" * 63 + "b", True), ("Ab3$" * 32, True),
])
def test_password_policy(app: Flask, password: str, ok: bool) -> None:
    with app.test_request_context():
        assert (password_problem(password) is None) == ok


def test_argon2_parameters_and_rehash(app: Flask) -> None:
    assert PASSWORD_HASHER.type.name == "ID"
    assert (PASSWORD_HASHER.time_cost, PASSWORD_HASHER.memory_cost, PASSWORD_HASHER.parallelism) == (2, 19456, 1)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    user = User(role="bureau", username="old", password_hash=weak.hash("old-but-fine-pass"))
    assert verify_password(user, "old-but-fine-pass")
    assert "m=19456,t=2,p=1" in user.password_hash
    assert not verify_password(user, "wrong")
    assert not verify_password(None, "anything")


def test_enrolment_codes(app: Flask) -> None:
    codes = {make_enrolment_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 8 and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert not set("01ILO") & set(CODE_ALPHABET)
    with app.app_context():
        assert hash_enrolment_code("abcd-2345") == hash_enrolment_code("ABCD2345")
        assert len(hash_enrolment_code("ABCD2345")) == 64


def test_link_child(app: Flask) -> None:
    from tests.webapp.factories import create_user

    with app.app_context():
        make_school()
        user = create_user("parent", login="13600000000")
        assert link_child(user, "KM-TEST-0001", "P002", "wrong123") is None
        assert link_child(user, "KM-NOPE", "P002", TEST_ENROLMENT_CODE) is None
        assert link_child(user, "KM-TEST-0001", "P999", TEST_ENROLMENT_CODE) is None
        pupil = link_child(user, "KM-TEST-0001", "P002", TEST_ENROLMENT_CODE.lower())
        assert pupil is not None and pupil.number == "P002"
        assert link_child(user, "KM-TEST-0001", "P002", TEST_ENROLMENT_CODE) is pupil
        links = db.session.scalars(select(Guardianship).where(Guardianship.user_id == user.id)).all()
        assert len(links) == 1 and links[0].consent_policy_version == "2026-01" and links[0].consent_at
        new_code = issue_enrolment_code(pupil)
        db.session.commit()
        assert link_child(user, "KM-TEST-0001", "P002", TEST_ENROLMENT_CODE) is None
        assert link_child(user, "KM-TEST-0001", "P002", new_code) is pupil
