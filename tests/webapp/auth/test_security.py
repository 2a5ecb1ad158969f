"""Security headers, cookies, error pages, sessions, password change, disabled accounts, throttling, audit."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import TEST_PASSWORD, _make_app, make_school
from tests.webapp.factories import create_user, csrf_token, post_form
from webapp import create_app
from webapp.extensions import db
from webapp.hardening import CSP, limiter_storage_uri
from webapp.models import AuditLog, Pupil, User
from webapp.security import PASSWORD_HASHER, SESSION_VERSION_KEY

TEMPLATES = Path(__file__).resolve().parents[3] / "webapp" / "templates"
NEW_PASSWORD = "a brand new passphrase"
TOKEN_RE = re.compile(r'name="csrf_token"[^>]*value="[^"]+"')


def _login(client: FlaskClient, login: str, password: str = TEST_PASSWORD, **environ: Any) -> Any:
    token = csrf_token(client, "/login")
    return client.post("/login", data={"login": login, "password": password, "csrf_token": token},
                       environ_base=environ)


# ------------------------------------------------------------------------------------------ headers


@pytest.mark.parametrize("path", ["/login", "/register", "/no-such-page", "/static/css/app.css", "/"])
def test_security_headers_on_every_response(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    response.close()
    headers = response.headers
    assert headers["Content-Security-Policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "script-src 'self';" in CSP and "frame-ancestors 'none'" in CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] in ("same-origin", "strict-origin-when-cross-origin")
    assert "Strict-Transport-Security" not in headers


def test_headers_on_errors_and_posts(client: FlaskClient) -> None:
    for response in (client.post("/login", data={}), client.get("/logout"), client.post("/lang/xx")):
        assert response.status_code in (400, 405)
        assert response.headers["Content-Security-Policy"] == CSP
        assert response.headers["X-Frame-Options"] == "DENY"


def test_hsts_only_over_https(client: FlaskClient) -> None:
    secure = client.get("/login", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_session_cookie_flags(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        create_user("bureau", login="city")
    cookies = _login(client, "city").headers.getlist("Set-Cookie")
    switched = post_form(client, "/lang/en", {"next": "/"}, token_from="/account")
    cookies += switched.headers.getlist("Set-Cookie")
    session_cookies = [c for c in cookies if c.startswith("session=")]
    assert session_cookies, cookies
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie
    assert app.config["SESSION_COOKIE_SECURE"] is False  # plain-HTTP tests


def test_production_config(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    app = create_app({"SECRET_KEY": "x" * 32, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}",
                      "DEBUG": True, "RATELIMIT_STORAGE_URI": "memory://",
                      "RATELIMIT_ALLOW_PER_PROCESS": "1"})
    assert app.debug is False and app.config["DEBUG"] is False
    assert app.config["SESSION_COOKIE_SECURE"] is True and app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["RATELIMIT_ENABLED"] is True
    with app.app_context():
        db.engine.dispose()


def test_limiter_storage_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RATELIMIT_STORAGE_URI", "REDIS_URL", "CELERY_BROKER_URL"):
        monkeypatch.delenv(key, raising=False)
    assert limiter_storage_uri({}) == "memory://"
    assert limiter_storage_uri({"CELERY_BROKER_URL": "amqp://x"}) == "memory://"
    assert limiter_storage_uri({"CELERY_BROKER_URL": "redis://r:6379/0"}) == "redis://r:6379/0"
    assert limiter_storage_uri({"REDIS_URL": "redis://a/1", "CELERY_BROKER_URL": "redis://b/0"}) == "redis://a/1"
    assert limiter_storage_uri({"RATELIMIT_STORAGE_URI": "memcached://m", "REDIS_URL": "redis://a"}) \
        == "memcached://m"
    monkeypatch.setenv("REDIS_URL", "redis://env/2")
    assert limiter_storage_uri({}) == "redis://env/2"


INLINE_PATTERNS = {
    "inline <script> block": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "<style> block": re.compile(r"<style[\s>]", re.I),
    "inline event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def test_templates_have_no_inline_script_or_style() -> None:
    """The CSP forbids inline script, inline styles and on* handlers: every template must do without them."""
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for what, pattern in INLINE_PATTERNS.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{path.relative_to(TEMPLATES)}:{line}: {what}")
    assert not problems, "move these into webapp/static (CSP forbids them):\n" + "\n".join(problems)


def test_error_pages_are_generic(tmp_path: Any) -> None:
    app = _make_app(tmp_path, PROPAGATE_EXCEPTIONS=False)

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals /etc/passwd")

    client = app.test_client()
    response = client.get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500 and "出现错误" in body
    assert "Traceback" not in body and "secret internals" not in body
    assert response.headers["Content-Security-Policy"] == CSP
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and "Traceback" not in missing.get_data(as_text=True)
    with app.app_context():
        db.engine.dispose()


# ------------------------------------------------------------------------------------------ sessions


def test_login_issues_a_new_session(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        create_user("bureau", login="city")
    with client.session_transaction() as sess:
        sess["planted"] = "attacker-chosen"
    before = client.get_cookie("session")
    assert before is not None
    assert _login(client, "city").status_code == 302
    after = client.get_cookie("session")
    assert after is not None and after.value != before.value
    with client.session_transaction() as sess:
        assert "planted" not in sess and sess.get(SESSION_VERSION_KEY) == 1
    # the planted pre-login cookie does not carry the login
    stale = app.test_client()
    stale.set_cookie("session", before.value)
    assert stale.get("/account").status_code == 302


def test_logout_ends_the_session_server_side(app: Flask, client: FlaskClient,
                                             signed_in: Callable[..., User]) -> None:
    signed_in("bureau")
    assert client.get("/account").status_code == 200
    stolen = client.get_cookie("session")
    assert stolen is not None
    assert post_form(client, "/logout", token_from="/account").status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", stolen.value)
    response = replay.get("/account")
    assert response.status_code == 302 and "/login" in response.location


def test_password_change_for_every_role(app: Flask, signed_in: Callable[..., User]) -> None:
    for index, role in enumerate(("parent", "school_admin", "bureau")):
        client = app.test_client()
        with app.app_context():
            if index == 0:
                make_school()
            pupil = db.session.scalar(select(Pupil).where(Pupil.number == "P002"))
            assert pupil is not None
            if role == "parent":
                user = create_user(role, login="13900000001", pupil=pupil)
            else:
                user = create_user(role, login=f"{role}-x", school=pupil.school)
            login_name = user.phone or user.username or ""
            user_id = user.id
        assert _login(client, login_name).status_code == 302
        other = app.test_client()
        assert _login(other, login_name).status_code == 302
        assert other.get("/account").status_code == 200

        page = client.get("/account/password")
        assert page.status_code == 200 and "修改密码" in page.get_data(as_text=True)
        wrong = post_form(client, "/account/password",
                          {"current": "not-my-password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert wrong.status_code == 200 and "当前密码不正确" in wrong.get_data(as_text=True)
        weak = post_form(client, "/account/password",
                         {"current": TEST_PASSWORD, "password": "12345678", "confirm": "12345678"})
        assert weak.status_code == 200 and "太常见" in weak.get_data(as_text=True)
        done = post_form(client, "/account/password",
                         {"current": TEST_PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert done.status_code == 302, done.get_data(as_text=True)

        assert client.get("/account").status_code == 200  # this session continues
        assert other.get("/account").status_code == 302  # every other one ended
        fresh = app.test_client()
        assert _login(fresh, login_name).status_code == 200
        assert _login(fresh, login_name, NEW_PASSWORD).status_code == 302
        with app.app_context():
            actions = list(db.session.scalars(select(AuditLog.action).where(AuditLog.user_id == user_id)))
            assert "auth.password_change" in actions and "auth.password_change_failed" in actions


def test_password_change_needs_login_and_csrf(app: Flask, client: FlaskClient,
                                             signed_in: Callable[..., User]) -> None:
    assert client.get("/account/password").status_code == 302
    signed_in("bureau")
    response = client.post("/account/password",
                           data={"current": TEST_PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 400


def test_disable_user_command(app: Flask, signed_in: Callable[..., User]) -> None:
    user = signed_in("school_admin")
    client = app.test_client()
    assert _login(client, user.username or "").status_code == 302
    runner = app.test_cli_runner()
    result = runner.invoke(args=["disable-user", user.username or ""])
    assert result.exit_code == 0 and "disabled school_admin" in result.output
    assert client.get("/account").status_code == 302  # its session ended at once
    refused = _login(app.test_client(), user.username or "")
    assert refused.status_code == 200 and "密码错误" in refused.get_data(as_text=True)
    assert runner.invoke(args=["disable-user", "--enable", user.username or ""]).exit_code == 0
    assert _login(app.test_client(), user.username or "").status_code == 302
    unknown = runner.invoke(args=["disable-user", "nobody"])
    assert unknown.exit_code == 2 and "no user" in unknown.output and "Traceback" not in unknown.output
    with app.app_context():
        actions = set(db.session.scalars(select(AuditLog.action).where(AuditLog.user_id == user.id)))
        assert {"account.disable", "account.enable"} <= actions


def test_disable_user_by_phone(app: Flask) -> None:
    with app.app_context():
        create_user("parent", login="13811112222")
    result = app.test_cli_runner().invoke(args=["disable-user", "+86 138 1111 2222"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.phone == "13811112222"))
        assert user is not None and user.active is False and user.session_version == 2


@pytest.mark.parametrize("password, ok", [
    ("abcdefg", False), ("river-la", True), ("x9" * 32, True), ("长城" * 40, True), ("password", False),
    ("iloveyou", False), ("Password1", False),
])
def test_password_lengths(app: Flask, password: str, ok: bool) -> None:
    from webapp.security import password_problem

    with app.test_request_context():
        assert (password_problem(password) is None) == ok, password


def test_hashes_are_argon2id_at_owasp_parameters(app: Flask) -> None:
    with app.app_context():
        user = create_user("bureau", login="hash-check", password="river-lamp-seven")
        assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert PASSWORD_HASHER.memory_cost >= 19456 and PASSWORD_HASHER.time_cost >= 2


# ------------------------------------------------------------------------------------------ throttling


@pytest.fixture
def limited_app(tmp_path: Any) -> Iterator[Flask]:
    app = _make_app(tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_login_throttled_per_account_and_address_but_the_owner_gets_in(limited_app: Flask) -> None:
    """Finding 6: wrong passwords from one address lock that address out of that account only; the owner signs
    in from another address at once, and spread-out guessing only slows the account down."""
    limited_app.config.update(LOGIN_SLOWDOWN_LIMIT="5 per 10 minutes", LOGIN_SLOWDOWN_SECONDS=0.3)
    with limited_app.app_context():
        create_user("bureau", login="bureau")
    attacker = limited_app.test_client()
    answers = [_login(attacker, "bureau", "wrong-password", REMOTE_ADDR="10.0.0.1").status_code
               for _ in range(11)]
    assert answers == [200] * 10 + [429]
    started = time.monotonic()
    owner = _login(limited_app.test_client(), "bureau", TEST_PASSWORD, REMOTE_ADDR="10.0.1.1")
    assert owner.status_code == 302
    assert time.monotonic() - started >= 0.3  # past the account's slowdown limit: delayed, not refused
    for attempt in range(20):  # guesses from many addresses are never refused for the account as a whole
        guess = _login(limited_app.test_client(), "bureau", "wrong-password", REMOTE_ADDR=f"10.0.2.{attempt}")
        assert guess.status_code == 200
    assert _login(limited_app.test_client(), "bureau", TEST_PASSWORD, REMOTE_ADDR="10.0.3.1").status_code == 302
    # other accounts are unaffected and not slowed down
    with limited_app.app_context():
        create_user("bureau", login="other")
    started = time.monotonic()
    assert _login(limited_app.test_client(), "other", REMOTE_ADDR="10.0.2.1").status_code == 302
    assert time.monotonic() - started < 0.3


def test_login_throttled_per_address_with_the_same_answer(limited_app: Flask) -> None:
    with limited_app.app_context():
        create_user("bureau", login="city")
    client = limited_app.test_client()
    for attempt in range(10):
        login = "city" if attempt % 2 else f"ghost{attempt}"
        assert _login(client, login, "wrong-password", REMOTE_ADDR="10.9.9.9").status_code == 200
    known = _login(client, "city", "wrong-password", REMOTE_ADDR="10.9.9.9")
    unknown = _login(client, "nobody-at-all", "wrong-password", REMOTE_ADDR="10.9.9.9")
    assert known.status_code == unknown.status_code == 429
    assert TOKEN_RE.sub("", known.get_data(as_text=True)) == TOKEN_RE.sub("", unknown.get_data(as_text=True))
    assert _login(limited_app.test_client(), "city", REMOTE_ADDR="10.9.9.10").status_code == 302


def test_successful_logins_are_not_counted(limited_app: Flask) -> None:
    with limited_app.app_context():
        create_user("bureau", login="busy")
    for _ in range(12):
        client = limited_app.test_client()
        assert _login(client, "busy", REMOTE_ADDR="10.1.1.1").status_code == 302


def test_throttle_off_in_tests_by_default(app: Flask, client: FlaskClient) -> None:
    for _ in range(12):
        assert _login(client, "nobody", "wrong-password").status_code == 200


def test_same_answer_and_same_work_for_unknown_accounts(app: Flask, client: FlaskClient,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with app.app_context():
        create_user("bureau", login="city")
    calls: list[str] = []

    class CountingHasher:
        def verify(self, hash_: str, password: str) -> bool:
            calls.append(hash_[:9])
            return PASSWORD_HASHER.verify(hash_, password)

        def check_needs_rehash(self, hash_: str) -> bool:
            return PASSWORD_HASHER.check_needs_rehash(hash_)

    monkeypatch.setattr("webapp.security.PASSWORD_HASHER", CountingHasher())
    wrong = _login(client, "city", "wrong-password")
    unknown = _login(client, "no-such-user", "wrong-password")
    assert calls == ["$argon2id", "$argon2id"]  # one full argon2 verification on both paths
    assert wrong.status_code == unknown.status_code == 200
    unknown_page = unknown.get_data(as_text=True).replace('value="no-such-user"', 'value="city"')
    assert TOKEN_RE.sub("", wrong.get_data(as_text=True)) == TOKEN_RE.sub("", unknown_page)


# ------------------------------------------------------------------------------------------ audit


def test_logins_and_failures_are_audited_without_phone_numbers(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        user = create_user("parent", login="13712345678")
        user_id = user.id
    assert _login(client, "13712345678", "wrong-password").status_code == 200
    assert _login(client, "13999999999", "wrong-password").status_code == 200
    assert _login(client, "137 1234 5678").status_code == 302
    with app.app_context():
        rows = db.session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        actions = [(r.action, r.user_id) for r in rows]
        assert ("auth.login_failed", user_id) in actions and ("auth.login_failed", None) in actions
        assert ("auth.login", user_id) in actions
        dump = repr([(r.action, r.target, r.detail) for r in rows])
        assert "13712345678" not in dump and "13999999999" not in dump and "5678" not in dump
        failed = [r for r in rows if r.action == "auth.login_failed"]
        # the same account typed differently gives the same keyed hash, so repeated attacks can be seen
        assert _login(app.test_client(), "+86 137-1234-5678", "nope-nope").status_code == 200
        again = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.login_failed")
                                   .order_by(AuditLog.id.desc())).first()
        assert again is not None and again.target == failed[0].target != failed[1].target


def _link(client: FlaskClient, code: str, **environ: Any) -> Any:
    token = csrf_token(client, "/family/link")
    data = {"school_code": "KM-TEST-0001", "pupil_number": "P002", "enrolment_code": code, "relation": "mother",
            "consent": "y", "csrf_token": token}
    return client.post("/family/link", data=data, environ_base=environ)


def test_enrolment_codes_cannot_be_guessed(limited_app: Flask) -> None:
    with limited_app.app_context():
        make_school()
        create_user("parent", login="13900000001")
        create_user("parent", login="13900000002")
        db.session.commit()
    guesser = limited_app.test_client()
    assert _login(guesser, "13900000001", REMOTE_ADDR="10.5.0.1").status_code == 302
    answers = [_link(guesser, f"WRONG{n:03d}", REMOTE_ADDR="10.5.0.1").status_code for n in range(5)]
    assert answers == [200] * 5
    # the sixth try is refused even with the right code, and from another address
    assert _link(guesser, "ABCD2345", REMOTE_ADDR="10.5.0.9").status_code == 429
    with limited_app.app_context():
        assert db.session.scalar(select(User).where(User.phone == "13900000001")).guardianships == []
    # another family, elsewhere, links with the right code at once
    other = limited_app.test_client()
    assert _login(other, "13900000002", REMOTE_ADDR="10.6.0.1").status_code == 302
    assert _link(other, "ABCD2345", REMOTE_ADDR="10.6.0.1").status_code == 302
