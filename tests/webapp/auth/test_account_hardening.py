"""Accounts: registration reveals nothing about registered numbers, consent comes before linking a child, and
a trusted reverse proxy's forwarded headers are honoured (and only then). Purging idle accounts: test_privacy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request, url_for
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import TEST_ENROLMENT_CODE, TEST_PASSWORD, _make_app, make_school
from tests.webapp.factories import create_user, post_form
from webapp.extensions import db
from webapp.family import ConsentMissing, link_child, record_consent
from webapp.models import AuditLog, Guardianship, User

REGISTRATION = {"phone": "13912345678", "display_name": "新家长", "password": "a brand new passphrase",
                "confirm": "a brand new passphrase", "consent": "y"}
CSRF_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+"')


# ------------------------------------------------------------------------------------------ registration


def _answer(client: FlaskClient, phone: str) -> tuple[int, str | None, str]:
    """What an anonymous visitor learns from registering `phone`: status, where to, and the page shown next."""
    response = post_form(client, "/register", {**REGISTRATION, "phone": phone})
    page = client.get(response.location).get_data(as_text=True) if response.location else ""
    return response.status_code, response.location, CSRF_VALUE.sub(r"\1…", page)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_registration_answers_alike_for_new_and_registered_numbers(app: Flask, language: str) -> None:
    with app.app_context():
        create_user("parent", login="13700000001")
    answers = []
    for phone in ("13700000001", "13700000002"):  # registered, then new
        client = app.test_client()
        client.set_cookie("lang", language)
        answers.append(_answer(client, phone))
    assert answers[0] == answers[1]
    status, location, page = answers[0]
    assert status == 302 and location == "/login"
    expected = {"zh": "如果该手机号此前未注册，您的账户已创建，请登录",
                "en": "If this number was not registered yet, your account is ready: please log in."}
    assert expected[language] in page


def test_registered_account_is_never_changed(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        user = create_user("parent", login="13700000001")
        before = {column: getattr(user, column) for column in
                  ("password_hash", "display_name", "locale", "session_version", "consent_policy_version",
                   "consent_at", "active", "last_login_at")}
    client.set_cookie("lang", "en")
    post_form(client, "/register", {**REGISTRATION, "phone": "137 0000 0001"})
    with app.app_context():
        found = db.session.scalars(select(User).where(User.phone == "13700000001")).one()
        assert {column: getattr(found, column) for column in before} == before
        assert db.session.scalar(select(func.count(User.id))) == 1
        attempt = db.session.scalar(select(AuditLog).where(AuditLog.action == "auth.register_existing"))
        assert attempt is not None and attempt.user_id == found.id and "13700000001" not in repr(
            (attempt.target, attempt.detail))
    assert post_form(client, "/login", {"login": "13700000001", "password": REGISTRATION["password"]}
                     ).status_code == 200  # the newcomer's password opens nothing
    assert post_form(client, "/login", {"login": "13700000001", "password": TEST_PASSWORD}).status_code == 302


def test_registration_hashes_the_password_on_both_paths(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same costly work for a registered number as for a new one, so timing tells nothing."""
    import webapp.accounts as auth_routes

    hashed: list[str] = []
    real_hash = auth_routes.hash_password

    def counting_hash(password: str) -> str:
        hashed.append(password)
        return real_hash(password)

    monkeypatch.setattr(auth_routes, "hash_password", counting_hash)
    with app.app_context():
        create_user("parent", login="13700000001")
    for phone in ("13700000001", "13700000002"):
        post_form(app.test_client(), "/register", {**REGISTRATION, "phone": phone})
    assert hashed == [REGISTRATION["password"]] * 2


def test_new_registrant_signs_in_as_usual(app: Flask, client: FlaskClient) -> None:
    assert post_form(client, "/register", REGISTRATION).status_code == 302
    assert client.get("/family/").status_code == 302  # registering does not sign anyone in
    assert post_form(client, "/login", {"login": REGISTRATION["phone"],
                                        "password": REGISTRATION["password"]}).status_code == 302
    assert "还没有绑定孩子" in client.get("/family/").get_data(as_text=True)


# ------------------------------------------------------------------------------------------ consent before linking


def _parent_without_consent(phone: str = "13700000009") -> User:
    user = create_user("parent", login=phone)
    user.consent_policy_version, user.consent_at = None, None
    db.session.commit()
    return user


def test_link_child_refuses_without_consent(app: Flask) -> None:
    with app.app_context():
        make_school()
        user = _parent_without_consent()
        with pytest.raises(ConsentMissing):
            link_child(user, "KM-TEST-0001", "P002", TEST_ENROLMENT_CODE)
        assert db.session.scalar(select(func.count(Guardianship.id))) == 0
        record_consent(user)
        db.session.commit()
        pupil = link_child(user, "KM-TEST-0001", "P002", TEST_ENROLMENT_CODE)
        assert pupil is not None
        link = db.session.scalars(select(Guardianship)).one()
        assert link.consent_policy_version == app.config["CONSENT_POLICY_VERSION"] == user.consent_policy_version
        assert user.consent_at is not None and link.consent_at is not None and link.consent_at >= user.consent_at


def test_link_form_sends_a_parent_without_consent_to_the_consent_step(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        make_school()
        user_id = _parent_without_consent().id
    assert post_form(client, "/login", {"login": "13700000009", "password": TEST_PASSWORD}).status_code == 302
    step = "/family/consent?next=/family/link"
    assert client.get("/family/link").location == step
    link_form = {"school_code": "KM-TEST-0001", "pupil_number": "P002", "enrolment_code": TEST_ENROLMENT_CODE,
                 "relation": "father", "consent": "y"}
    refused = post_form(client, "/family/link", link_form, token_from="/family/")
    assert refused.status_code == 302 and refused.location == step
    page = client.get(step).get_data(as_text=True)
    assert "绑定孩子之前，请先同意信息处理说明" in page and "说明版本 2026-01" in page
    with app.app_context():
        assert db.session.scalar(select(func.count(Guardianship.id))) == 0
        found = db.session.get(User, user_id)
        assert found is not None and found.consent_policy_version is None

    assert "请先同意信息处理说明" in post_form(client, step, {}).get_data(as_text=True)  # unticked
    agreed = post_form(client, step, {"consent": "y"})
    assert agreed.status_code == 302 and agreed.location == "/family/link"
    with app.app_context():
        found = db.session.get(User, user_id)
        assert found is not None and found.consent_policy_version == "2026-01" and found.consent_at
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "family.consent")) is not None
    linked = post_form(client, "/family/link", link_form)
    assert linked.status_code == 302 and linked.location.startswith("/family/child/")
    assert client.get(step).location == "/family/link"  # recorded once, the step lets the parent through


def test_consent_step_follows_only_local_next(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        make_school()
        _parent_without_consent()
    post_form(client, "/login", {"login": "13700000009", "password": TEST_PASSWORD})
    agreed = post_form(client, "/family/consent?next=//evil.example/x", {"consent": "y"},
                       token_from="/family/consent")
    assert agreed.status_code == 302 and agreed.location == "/family/"


# ------------------------------------------------------------------------------------------ reverse proxy

PROXY = {"REMOTE_ADDR": "10.0.0.2"}
FORWARDED = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7", "X-Forwarded-Proto": "https"}
"""What the proxy at 10.0.0.2 sends: the client's own (forged) header first, then the address it saw."""


def _proxied_app(tmp_path: Path, **config: Any) -> Flask:
    app = _make_app(tmp_path, **config)

    @app.route("/_probe")
    def probe() -> dict[str, Any]:
        return {"addr": request.remote_addr, "secure": request.is_secure,
                "login_url": url_for("auth.login", _external=True)}

    return app


@pytest.mark.parametrize("proxies", [None, 0])
def test_forwarded_headers_are_ignored_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  proxies: int | None) -> None:
    monkeypatch.delenv("TRUSTED_PROXY_COUNT", raising=False)
    app = _proxied_app(tmp_path, **({} if proxies is None else {"TRUSTED_PROXY_COUNT": proxies}))
    client = app.test_client()
    seen = client.get("/_probe", headers=FORWARDED, environ_base=PROXY).get_json()
    assert seen == {"addr": "10.0.0.2", "secure": False, "login_url": "http://localhost/login"}
    assert "Strict-Transport-Security" not in client.get("/login", headers=FORWARDED, environ_base=PROXY).headers


@pytest.mark.parametrize("source", ["config", "environment"])
def test_trusted_proxy_forwards_client_address_and_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          source: str) -> None:
    if source == "config":
        monkeypatch.delenv("TRUSTED_PROXY_COUNT", raising=False)
        app = _proxied_app(tmp_path, TRUSTED_PROXY_COUNT=1)
    else:
        monkeypatch.setenv("TRUSTED_PROXY_COUNT", "1")
        app = _proxied_app(tmp_path)
    client = app.test_client()
    seen = client.get("/_probe", headers=FORWARDED, environ_base=PROXY).get_json()
    # one proxy: only the address it appended counts, the forged one before it does not
    assert seen == {"addr": "198.51.100.7", "secure": True, "login_url": "https://localhost/login"}
    login_page = client.get("/login", headers=FORWARDED, environ_base=PROXY)
    assert login_page.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def _register_via_proxy(client: FlaskClient, client_addr: str, phone: str) -> int:
    headers = {"X-Forwarded-For": client_addr, "X-Forwarded-Proto": "https",
               "Referer": "https://localhost/register"}  # CSRF checks the referrer on HTTPS
    page = client.get("/register", headers=headers, environ_base=PROXY).get_data(as_text=True)
    match = CSRF_VALUE.search(page)
    assert match is not None
    token = re.search(r'value="([^"]+)"', match.group(0))
    assert token is not None
    response = client.post("/register", data={**REGISTRATION, "phone": phone, "csrf_token": token.group(1)},
                           headers=headers, environ_base=PROXY)
    return response.status_code


@pytest.mark.parametrize("proxies, other_client", [(1, 302), (0, 429)])
def test_per_address_limits_see_the_client_behind_a_trusted_proxy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proxies: int, other_client: int) -> None:
    monkeypatch.delenv("TRUSTED_PROXY_COUNT", raising=False)
    app = _make_app(tmp_path, TRUSTED_PROXY_COUNT=proxies, RATELIMIT_ENABLED=True,
                    RATELIMIT_STORAGE_URI="memory://", REGISTER_RATE_LIMIT="1 per minute")
    first, second = app.test_client(), app.test_client()
    assert _register_via_proxy(first, "198.51.100.7", "13700000001") == 302
    assert _register_via_proxy(first, "198.51.100.7", "13700000002") == 429
    assert _register_via_proxy(second, "203.0.113.9", "13700000003") == other_client


@pytest.mark.parametrize("value", ["two", "-1"])
def test_bad_proxy_count_is_a_clear_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(RuntimeError, match="TRUSTED_PROXY_COUNT must be a whole number"):
        _make_app(tmp_path, TRUSTED_PROXY_COUNT=value)
